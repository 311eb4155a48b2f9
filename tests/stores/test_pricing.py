"""Price lookups, the shipped table and user override files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import stores
from archon.exceptions import ConfigError
from stores import PRICING_ENV, Price, Pricing

SHIPPED = Path(stores.__file__).with_name("pricing.yaml")


@pytest.fixture(autouse=True)
def _no_user_pricing(monkeypatch):
    monkeypatch.delenv(PRICING_ENV, raising=False)


def test_shipped_table_prices_common_models():
    pricing = Pricing.load()
    assert pricing.cost("openai", "gpt-4o-mini", 1_000_000, 1_000_000) == pytest.approx(0.15 + 0.60)
    assert pricing.cost("openai", "gpt-4o-mini", 2000, 500) == pytest.approx((2000 * 0.15 + 500 * 0.60) / 1e6)
    for backend, model in [("anthropic", "claude-3-5-haiku-20241022"), ("groq", "llama-3.1-8b-instant"),
                           ("together", "meta-llama/Llama-3.3-70B-Instruct-Turbo")]:
        assert pricing.cost(backend, model, 1000, 1000) > 0


def test_shipped_file_is_well_formed():
    raw = yaml.safe_load(SHIPPED.read_text())
    assert len(raw) >= 20
    for key, entry in raw.items():
        backend = key.split("/", 1)[0]
        assert backend in {"openai", "anthropic", "together", "groq"}, key
        assert set(entry) == {"input", "output"} and entry["input"] >= 0 and entry["output"] > 0, key


def test_lookup_order_and_unknown_models():
    pricing = Pricing({"fast/m": Price(1.0, 2.0), "m": Price(10.0, 20.0), "openai/gpt-x": Price(3.0, 4.0)})
    assert pricing.cost("fast", "m", 1_000_000, 0) == 1.0  # "backend/model" first
    assert pricing.cost("slow", "m", 1_000_000, 0) == 10.0  # then the bare model
    # OpenRouter's "vendor/model" names reach the vendor's entry through the bare-model lookup.
    assert pricing.cost("openrouter", "openai/gpt-x", 0, 1_000_000) == 4.0
    assert pricing.cost("fast", "unknown", 10, 10) is None
    assert pricing.cost("local", "anything-at-all", 10_000, 10_000) == 0.0
    assert pricing.cost("fast", "m", None, 3) is None  # type: ignore[arg-type]  # never raises
    assert pricing.price("fast", "m") == Price(1.0, 2.0) and pricing.price("x", "y") is None


def test_user_file_overrides_and_extends(tmp_path, monkeypatch):
    user = tmp_path / "prices.yaml"
    user.write_text("openai/gpt-4o-mini: {input: 1, output: 2}\nmy-model: {input: 0.5, output: 0.5}\n")
    monkeypatch.setenv(PRICING_ENV, str(user))
    pricing = Pricing.load()
    assert pricing.cost("openai", "gpt-4o-mini", 1_000_000, 1_000_000) == 3.0
    assert pricing.cost("vllm", "my-model", 2_000_000, 0) == 1.0
    assert pricing.cost("openai", "gpt-4o", 1_000_000, 0) == 2.5  # shipped entries remain

    explicit = tmp_path / "explicit.yaml"
    explicit.write_text("openai/gpt-4o-mini: {input: 0, output: 0}\n")
    assert Pricing.load(explicit).cost("openai", "gpt-4o-mini", 10, 10) == 0.0  # the argument wins
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing yet\n")
    assert len(Pricing.load(empty)) == len(Pricing.load(None)) - 1  # minus the env file's extra model


def test_missing_env_file_names_the_file_and_the_variable(tmp_path, monkeypatch):
    missing = tmp_path / "nope.yaml"
    monkeypatch.setenv(PRICING_ENV, str(missing))
    with pytest.raises(ConfigError) as info:
        Pricing.load()
    assert str(missing) in str(info.value) and PRICING_ENV in str(info.value)


@pytest.mark.parametrize("body, problem", [
    ("openai/m: {input: 1, output: [2\n", "not valid YAML"),
    ("- openai/m\n", "at the top level"),
    ("openai/m: 0.5\n", "expected a mapping"),
    ("openai/m: {input: 1}\n", "missing 'output'"),
    ("openai/m: {input: 1, output: 2, cached: 0.1}\n", "unknown key(s) 'cached'"),
    ("openai/m: {input: -1, output: 2}\n", ">= 0"),
    ("openai/m: {input: yes, output: 2}\n", "must be a number"),
    ("openai/m: {input: '1', output: 2}\n", "must be a number"),
])
def test_bad_files_are_config_errors_that_name_file_and_fix(tmp_path, body: str, problem: str):
    bad = tmp_path / "bad.yaml"
    bad.write_text(body)
    with pytest.raises(ConfigError) as info:
        Pricing.load(bad)
    message = str(info.value)
    assert str(bad) in message and problem in message
    if "entry" in message:
        assert "{input: <$ per 1M input tokens>, output: <$ per 1M output tokens>}" in message
