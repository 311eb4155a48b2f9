"""The operator seam.

An operator is a class with a ``kind`` (its name in pipeline files), a pydantic ``Config`` that
rejects unknown keys, and ``async __call__(inputs, query, ctx) -> list[Candidate]``. It never talks
HTTP, never writes to the store and never retries: it asks ``ctx.complete`` for completions.
"""

from __future__ import annotations

__all__ = ["ModelCallConfig", "OpConfig", "Operator", "Regex", "build_request", "placeholders", "render"]

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from archon.types import Candidate, Query
from backends.base import CompletionRequest, Usage

if TYPE_CHECKING:
    from operators.context import OpContext


def _compiles(pattern: str) -> str:
    try:
        re.compile(pattern)
    except (re.error, OverflowError, RecursionError) as exc:
        raise ValueError(f"not a valid regular expression ({exc}); e.g. 'Answer: (.+)' (escape ( ) [ ] with a backslash)") from None
    return pattern


#: A regular-expression setting, compiled when the file is read so a bad one fails validation
#: (exit 2, naming node and field) instead of the first candidate that reaches it.
Regex = Annotated[str, AfterValidator(_compiles)]


class OpConfig(BaseModel):
    """Base of every operator's settings: unknown keys are an error, every field is described."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def model_refs(self) -> list[str]:
        """The "<backend>/<model>" references this node calls (used to check and resolve backends)."""
        return []

    def node_refs(self) -> list[str]:
        """Other node ids named in the settings (e.g. a route's branches), checked like inputs."""
        return []


class ModelCallConfig(OpConfig):
    """Settings shared by operators that call a model."""

    temperature: float = Field(0.7, ge=0, le=2, description="Sampling temperature.")
    max_tokens: int = Field(512, ge=1, description="Most tokens generated per completion.")
    system: str | None = Field(None, description="System prompt (chat mode).")
    stop: list[str] = Field(default_factory=list, description="Stop sequences.")
    mode: Literal["chat", "completion"] = Field(
        "chat", description="'chat' sends messages; 'completion' sends the rendered prompt as plain text (base models)."
    )


class Operator:
    """Base class: subclasses set ``kind`` and ``Config`` and implement ``__call__``."""

    kind: ClassVar[str]
    Config: ClassVar[type[OpConfig]] = OpConfig
    #: One line for docs and ``archon schema``.
    summary: ClassVar[str] = ""

    def __init__(self, node_id: str, config: OpConfig):
        self.node_id = node_id
        self.config = config

    async def __call__(self, inputs: list[Candidate], query: Query, ctx: OpContext) -> list[Candidate]:
        raise NotImplementedError

    def streams_output(self) -> bool:
        """True when this node's one candidate is exactly the text of its one model call (one model,
        one sample), so that call's tokens can be streamed as the pipeline's answer (``archon serve``)."""
        return False

    def call_bound(self, fan_in: int) -> tuple[int, int]:
        """(most model calls this node makes for one query, most candidates it outputs), given
        ``fan_in``, the most candidates its inputs can hand it (1 for a node without inputs).

        A call is one request as the store records it: a request for n samples is one call. The
        default (no call, inputs passed through) suits operators that call no model; one that
        does must override this, or ``archon.bounds.calls_per_query`` under-counts it.
        """
        return 0, fan_in


_PLACEHOLDER = re.compile(r"\{([A-Za-z_]\w*)\}")


def render(template: str, /, **values: Any) -> str:
    """Replace ``{name}`` placeholders for the given names only, in one pass over the template.

    One pass because the values are user and model text: a value holding "{context}" or "{n}" is
    inserted as it is, never rescanned, so nothing a query or candidate contains can change what
    reaches a prompt. Unknown names and any other brace (code, LaTeX, JSON) are left alone.
    ``template`` is positional-only so that a value may be called "template".
    """
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), template)


def placeholders(template: str) -> set[str]:
    """The names of the ``{name}`` placeholders in ``template`` (what ``render`` would fill)."""
    return set(_PLACEHOLDER.findall(template))


def build_request(
    cfg: ModelCallConfig, model: str, prompt: str, *, samples: Sequence[int] = (0,), temperature: float | None = None
) -> CompletionRequest:
    """A request for ``prompt`` in the node's mode: chat (system + user turn) or plain completion."""
    temp = cfg.temperature if temperature is None else temperature
    if cfg.mode == "completion":
        text = f"{cfg.system}\n\n{prompt}" if cfg.system else prompt
        return CompletionRequest(
            model=model, prompt=text, mode="completion", temperature=temp, max_tokens=cfg.max_tokens,
            stop=tuple(cfg.stop), samples=tuple(samples),
        )
    messages = ([{"role": "system", "content": cfg.system}] if cfg.system else []) + [{"role": "user", "content": prompt}]
    return CompletionRequest(
        model=model, messages=tuple(messages), mode="chat", temperature=temp, max_tokens=cfg.max_tokens,
        stop=tuple(cfg.stop), samples=tuple(samples),
    )
