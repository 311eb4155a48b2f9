"""The operator seam.

An operator is a class with a ``kind`` (its name in pipeline files), a pydantic ``Config`` that
rejects unknown keys, and ``async __call__(inputs, query, ctx) -> list[Candidate]``. It never talks
HTTP, never writes to the store and never retries: it asks ``ctx.complete`` for completions.
"""

from __future__ import annotations

__all__ = [
    "ConfigT", "ModelCallConfig", "OpConfig", "Operator", "Regex", "Routed", "build_request", "placeholders", "render",
    "abstention", "split_tests",
]

import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Generic, Literal, TypeVar, get_args, get_origin

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from archon.types import Candidate, Query
from backends.base import CompletionRequest, Message

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

    def pipeline_refs(self) -> list[str]:
        """Pipeline files this node runs (e.g. a ``score`` node's judge), as written: the core loads and
        checks each with the pipeline that holds it, and hands the node a way to run it (``ctx.run_pipeline``)."""
        return []


class ModelCallConfig(OpConfig):
    """Settings shared by operators that call a model."""

    temperature: float = Field(default=0.7, ge=0, le=2, description="Sampling temperature.")
    max_tokens: int = Field(default=512, ge=1, description="Most tokens generated per completion.")
    system: str | None = Field(default=None, description="System prompt (chat mode).")
    stop: list[str] = Field(default_factory=list, description="Stop sequences.")
    top_p: float | None = Field(default=None, gt=0, le=1, description="Nucleus sampling: sample from the smallest set of "
                                "tokens whose probability reaches top_p. Default: the server's.")
    seed: int | None = Field(default=None, ge=0, description="Base seed for servers that take one (OpenAI, vLLM, llama.cpp): "
                             "sample k is drawn with its own seed derived from it. Default: none (the embedded model "
                             "seeds every sample from the request anyway).")
    mode: Literal["chat", "completion"] = Field(
        default="chat", description="'chat' sends messages; 'completion' sends the rendered prompt as plain text (base models)."
    )


ConfigT = TypeVar("ConfigT", bound=OpConfig)


class Routed(list[Candidate]):
    """What a routing operator returns: its candidates, the branch it chose (one of its
    ``Operator.branches()``) and an optional note (e.g. why it fell back). The graph runs the chosen
    branch and skips the others; being a list, it is also the node's output as it is."""

    def __init__(self, candidates: Iterable[Candidate], branch: str, note: str | None = None):
        super().__init__(candidates)
        self.branch = branch
        self.note = note


class Operator(Generic[ConfigT]):
    """Base class: subclasses set ``kind``, name their settings model and implement ``__call__``.

    ``class Generate(Operator[GenerateConfig])`` types ``self.config`` as a ``GenerateConfig`` and
    sets ``Config = GenerateConfig`` (what the spec validates a node's settings with). A class that
    sets ``Config`` itself, like a plug-in written against the untyped base, works too; setting both
    to disagreeing models is a TypeError when the class is defined, not a wrong type at run time.
    """

    kind: ClassVar[str]
    # type[OpConfig], not type[ConfigT]: a ClassVar cannot hold a type variable. __init_subclass__
    # keeps the two in step instead.
    Config: ClassVar[type[OpConfig]] = OpConfig
    #: One line for docs and ``archon schema``.
    summary: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declared = _config_parameter(cls)
        if declared is None:
            return
        if "Config" not in cls.__dict__:
            cls.Config = declared
        elif not issubclass(cls.Config, declared):
            raise TypeError(f"{cls.__qualname__}: Config = {cls.Config.__qualname__} is not a {declared.__qualname__}, "
                            f"the model named in Operator[{declared.__qualname__}]; make them agree.")

    def __init__(self, node_id: str, config: ConfigT):
        self.node_id = node_id
        self.config: ConfigT = config

    async def __call__(self, inputs: list[Candidate], query: Query, ctx: OpContext) -> list[Candidate]:
        raise NotImplementedError

    def branches(self) -> tuple[str, ...]:
        """The node ids this node routes between: empty for an ordinary node. A node with branches
        returns a ``Routed`` from ``__call__``; the graph then runs its chosen branch and skips the
        other branches (and every node that reads only skipped nodes)."""
        return ()

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

    def pipeline_runs(self, fan_in: int) -> dict[str, int]:
        """How many times this node runs each of its ``Config.pipeline_refs()`` for one query, given
        ``fan_in``. Those runs' calls are not in ``call_bound``: ``archon.bounds`` adds each pipeline's
        own bound times its runs, since only the core knows what a pipeline file holds."""
        return {}


def _config_parameter(cls: type) -> type[OpConfig] | None:
    """The settings model ``cls`` names in its ``Operator[...]`` base, if it names a concrete one
    (not for a subclass that inherits it, nor for a still-generic ``Operator[ConfigT]``)."""
    for base in cls.__dict__.get("__orig_bases__", ()):
        origin = get_origin(base)
        if isinstance(origin, type) and issubclass(origin, Operator):
            (arg,) = get_args(base)
            if isinstance(arg, type) and issubclass(arg, OpConfig):
                return arg
    return None


_PLACEHOLDER = re.compile(r"\{([A-Za-z_]\w*)\}")


def render(template: str, /, **values: Any) -> str:
    """Replace ``{name}`` placeholders for the given names only, in one pass over the template.

    One pass because the values are user and model text: a value holding "{context}" or "{n}" is
    inserted as it is, never rescanned, so nothing a query or candidate contains can change what
    reaches a prompt. Unknown names and any other brace (code, LaTeX, JSON) are left alone.
    ``template`` is positional-only so that a value may be called "template".
    """
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), template)


def abstention(node: str, reason: str) -> Candidate:
    """The one candidate of a node that abstains: no answer (an empty text, ``meta.abstained``), and why.
    A selector that cannot trust any candidate says so, rather than passing on one it could not check."""
    return Candidate(text="", node=node, meta={"abstained": True}).noted(reason)


def split_tests(inputs: list[Candidate]) -> tuple[str, list[Candidate]]:
    """The tests a ``write_tests`` input carries, one "- test" line each (the original Archon's form,
    for a ``{tests}`` placeholder), and the other inputs: a test list is never a candidate answer."""
    tests = [t.get("code") or t.get("text", "") for c in inputs if c.meta.get("kind") == "tests" for t in c.meta.get("tests", [])]
    return "\n".join(f"- {t}" for t in tests), [c for c in inputs if c.meta.get("kind") != "tests"]


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
            stop=tuple(cfg.stop), samples=tuple(samples), top_p=cfg.top_p, seed=cfg.seed,
        )
    messages: list[Message] = [{"role": "system", "content": cfg.system}] if cfg.system else []
    messages.append({"role": "user", "content": prompt})
    return CompletionRequest(
        model=model, messages=tuple(messages), mode="chat", temperature=temp, max_tokens=cfg.max_tokens,
        stop=tuple(cfg.stop), samples=tuple(samples), top_p=cfg.top_p, seed=cfg.seed,
    )
