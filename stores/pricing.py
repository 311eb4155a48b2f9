"""Dollar cost of a model call, from a table of prices per million tokens.

The table ships with the package (``stores/pricing.yaml``); a user file named by ``ARCHON_PRICING``
(or passed to ``Pricing.load``) overrides and extends it. A missing price is not an error: ``cost``
returns None and the call is recorded with cost NULL.
"""

from __future__ import annotations

__all__ = ["PRICING_ENV", "Price", "Pricing"]

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from archon.exceptions import ConfigError

PRICING_ENV = "ARCHON_PRICING"

_SHIPPED = Path(__file__).with_name("pricing.yaml")
_FREE_BACKENDS = frozenset({"local"})  # the embedded model runs on the user's own machine
_EXAMPLE = "openai/gpt-4o-mini: {input: 0.15, output: 0.60}"


@dataclass(frozen=True, slots=True)
class Price:
    """Dollars per million input (prompt) and output (completion) tokens."""

    input: float
    output: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input + completion_tokens * self.output) / 1_000_000


class Pricing:
    """A price table keyed by ``"backend/model"`` or bare ``"model"``."""

    def __init__(self, prices: Mapping[str, Price] | None = None):
        self.prices: dict[str, Price] = dict(prices or {})

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> Pricing:
        """The shipped prices, overridden and extended by ``path`` (default: ``$ARCHON_PRICING``)."""
        prices = _read(_SHIPPED, source="the shipped price table")
        if path is None:
            path = os.environ.get(PRICING_ENV) or None
            source = f"the file named by {PRICING_ENV}"
        else:
            source = "the pricing file"
        if path is not None:
            prices.update(_read(Path(path).expanduser(), source=source))
        return cls(prices)

    def price(self, backend: str, model: str) -> Price | None:
        """The price of ``model`` on ``backend``: ``"backend/model"`` first, then ``"model"``."""
        return self.prices.get(f"{backend}/{model}") or self.prices.get(model)

    def cost(self, backend: str, model: str, prompt_tokens: int | None, completion_tokens: int | None) -> float | None:
        """Dollars for one call, or None when the price or the usage (None tokens) is unknown. Never raises."""
        if prompt_tokens is None or completion_tokens is None:
            return None  # unknown usage is never priced as zero tokens
        if backend in _FREE_BACKENDS:
            return 0.0
        try:
            price = self.price(backend, model)
            return None if price is None else price.cost(int(prompt_tokens), int(completion_tokens))
        except (TypeError, ValueError):
            # Recording a call must never fail over its price.
            return None

    def __contains__(self, key: str) -> bool:
        return key in self.prices

    def __len__(self) -> int:
        return len(self.prices)

    def __repr__(self) -> str:
        return f"Pricing({len(self.prices)} prices)"


def _read(path: Path, *, source: str) -> dict[str, Price]:
    """Parse one price file; every problem names the file and the fix."""
    unset = f" or unset {PRICING_ENV}" if source.endswith(PRICING_ENV) else ""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(
            f"{path}: no such pricing file ({source}); create it{unset} "
            f"(format, one line per model: '{_EXAMPLE}')"
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the pricing file ({source}): {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({source}): {exc}; fix the file{unset}") from exc

    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{path}: a pricing file maps 'backend/model' to prices, e.g. '{_EXAMPLE}'; "
            f"got a {type(raw).__name__} at the top level"
        )
    prices: dict[str, Price] = {}
    for key, entry in raw.items():
        prices[str(key)] = _entry(path, str(key), entry)
    return prices


def _entry(path: Path, key: str, entry: object) -> Price:
    def bad(why: str) -> ConfigError:
        return ConfigError(
            f"{path}: entry '{key}': {why}; write it as "
            f"'{key}: {{input: <$ per 1M input tokens>, output: <$ per 1M output tokens>}}'"
        )

    if not isinstance(entry, dict):
        raise bad(f"expected a mapping with 'input' and 'output', got {entry!r}")
    unknown = sorted(set(map(str, entry)) - {"input", "output"})
    if unknown:
        raise bad(f"unknown key(s) {', '.join(repr(k) for k in unknown)} (valid: 'input', 'output')")
    values: dict[str, float] = {}
    for side in ("input", "output"):
        if side not in entry:
            raise bad(f"missing '{side}'")
        value = entry[side]
        # bool is an int subclass; "input: yes" is a typo, not a price.
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad(f"'{side}' must be a number of dollars, got {value!r}")
        if not math.isfinite(value) or value < 0:
            raise bad(f"'{side}' must be a finite number >= 0, got {value!r}")
        values[side] = float(value)
    return Price(values["input"], values["output"])
