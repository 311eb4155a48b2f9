"""The backend seam: one async method, ``complete(CompletionRequest) -> Completion``.

Every backend (an OpenAI-compatible server, the embedded llama.cpp model, a test double) implements
only this. Caching, recording, limiting and retrying are wrappers around any backend
(``backends.wrappers``), so a new backend gets all of them for free.

A backend that can stream tokens may also offer ``stream(request)`` (``StreamingBackend``): an async
iterator of text deltas (``str``) that ends with exactly one ``Completion``, the whole answer with its
usage, whose text is the deltas joined. Streams are for one sample (``request.n == 1``). The wrappers
pass streams through with the same caching, recording, limits and retries; ``can_stream`` says
whether a backend, or a whole wrapper chain, really streams.

A backend that can score text with a reward model may also offer ``reward(request)``
(``RewardBackend``): the request's messages are the conversation to score (the prompt as the user's
turn, the response as the assistant's), and the answer is a ``Completion`` whose one text is the
server's class probabilities as a JSON list (``"[0.93]"`` for a one-output reward model) and whose
usage is the conversation's tokens with 0 completion tokens. Text, so that the cache replays it and
the store records it like any answer. The wrappers pass it through (``can_reward`` says whether a
chain really scores).
"""

from __future__ import annotations

__all__ = [
    "Backend",
    "CallFn",
    "CallMeta",
    "Completion",
    "CompletionRequest",
    "Message",
    "RewardBackend",
    "StreamItem",
    "StreamingBackend",
    "Usage",
    "can_reward",
    "can_stream",
    "open_stream",
    "request_key",
    "reward_of",
    "server_identity",
]

import hashlib
import json
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, TypedDict, cast, runtime_checkable

# Usage is plain data shared with the store (see archon.records); it is re-exported here, its home for backends.
from archon.records import RunTotals, Usage


class Message(TypedDict):
    role: str
    content: str


@dataclass(frozen=True, slots=True)
class CallMeta:
    """Where a call comes from. Recorded with the call, never part of the cache key."""

    run_id: str | None = None
    node_id: str | None = None
    trial: int | None = None
    #: The run's meter: the recording and caching wrappers count each call there as it happens.
    meter: RunTotals | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    """One request for ``len(samples)`` completions of the same prompt.

    ``samples`` holds the sample indices asked for (``n`` is its length): sample k of a request is
    cached, seeded and replayed on its own, so a later run asking for 16 samples reuses the first 8.
    """

    model: str
    messages: tuple[Message, ...] = ()
    prompt: str | None = None
    mode: Literal["chat", "completion"] = "chat"
    temperature: float = 0.7
    max_tokens: int | None = 512
    stop: tuple[str, ...] = ()
    samples: tuple[int, ...] = (0,)
    logprobs: int | None = None
    top_p: float | None = None  # nucleus sampling; None: the server's default
    seed: int | None = None  # a base seed: a server is sent seed + the request's first sample index
    meta: CallMeta = field(default_factory=CallMeta, compare=False)

    @property
    def n(self) -> int:
        return len(self.samples)

    def with_samples(self, samples: tuple[int, ...]) -> CompletionRequest:
        return _replace(self, samples=samples)

    def with_meta(self, meta: CallMeta) -> CompletionRequest:
        return _replace(self, meta=meta)

    def prompt_text(self) -> str:
        """The prompt as one string, for the store (chat turns joined with their roles)."""
        if self.mode == "completion":
            return self.prompt or ""
        return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in self.messages)


def _replace(req: CompletionRequest, **changes: Any) -> CompletionRequest:
    return replace(req, **changes)


@dataclass(slots=True)
class Completion:
    """The answer to a request: one text per requested sample, in the order of ``request.samples``."""

    texts: list[str]
    usage: Usage = field(default_factory=Usage)
    logprobs: list[list[float]] | None = None
    finish_reasons: list[str | None] | None = None
    latency_ms: float = 0.0
    attempts: int = 1
    cached: bool = False
    cost_usd: float | None = None


@runtime_checkable
class Backend(Protocol):
    """Anything that turns a request into a completion. ``name`` is the backend's name in pipelines."""

    name: str

    async def complete(self, request: CompletionRequest) -> Completion: ...


#: What a stream yields: text deltas, then one ``Completion`` (the whole answer and its usage) last.
StreamItem = str | Completion


@runtime_checkable
class StreamingBackend(Backend, Protocol):
    """A backend that can also stream one sample's tokens as they are generated (optional)."""

    def stream(self, request: CompletionRequest) -> AsyncIterator[StreamItem]: ...


def can_stream(backend: Any) -> bool:
    """Whether ``backend.stream`` really streams. Wrappers have the method whatever they wrap, so
    they answer through a ``can_stream`` attribute for the backend inside them."""
    flag = getattr(backend, "can_stream", None)
    if flag is not None:
        return bool(flag)
    return callable(getattr(backend, "stream", None))


@runtime_checkable
class RewardBackend(Backend, Protocol):
    """A backend that can also score a conversation with a reward model (optional; see the module docstring)."""

    async def reward(self, request: CompletionRequest) -> Completion: ...


#: A backend's ``complete`` or ``reward``: the wrappers treat both alike.
CallFn = Callable[[CompletionRequest], Awaitable[Completion]]


def reward_of(backend: Backend) -> CallFn:
    """``backend.reward``, for a caller that asked ``can_reward(backend)`` first."""
    return cast(RewardBackend, backend).reward


def can_reward(backend: Any) -> bool:
    """Whether ``backend.reward`` really scores (wrappers answer for the backend inside them, as for streams)."""
    flag = getattr(backend, "can_reward", None)
    if flag is not None:
        return bool(flag)
    return callable(getattr(backend, "reward", None))


def open_stream(backend: Backend, request: CompletionRequest) -> AsyncGenerator[StreamItem, None]:
    """``backend.stream(request)``, for a caller that asked ``can_stream(backend)`` first.

    Typed as the async generator every stream is (``contextlib.aclosing`` needs its ``aclose``), where
    ``StreamingBackend.stream`` promises only an ``AsyncIterator``."""
    return cast("AsyncGenerator[StreamItem, None]", cast(StreamingBackend, backend).stream(request))


#: Bumped whenever what a key covers changes, so rows written under an older scheme are never replayed.
_KEY_SCHEME = 2


def server_identity(backend: Any, model: str) -> str:
    """Which server (or model file) answers ``model`` on ``backend``: part of the cache key, so a
    backend name repointed at another server never replays the old server's answers.

    A backend says so through ``cache_identity(model)``; one without it (a test double, a plug-in)
    is identified by its class, which is all that distinguishes two instances of it.
    """
    identify = getattr(backend, "cache_identity", None)
    if callable(identify):
        return str(identify(model))
    cls = type(backend)
    return f"{cls.__module__}.{cls.__qualname__}"


def request_key(backend: str, request: CompletionRequest, server: str = "", *, kind: str = "complete") -> str:
    """The cache key of a request, without its sample indices: backend name, server identity
    (``server_identity``), model, prompt and parameters; ``kind`` "reward" for a reward model's score
    of the same messages, which must never replay as (or from) a completion."""
    payload: dict[str, Any] = {
        "scheme": _KEY_SCHEME,
        "backend": backend,
        "server": server,
        "model": request.model,
        "mode": request.mode,
        "messages": list(request.messages),
        "prompt": request.prompt,
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
        "stop": list(request.stop),
        "logprobs": request.logprobs,
    }
    # Only when set, so that every key written before these settings existed stays the same.
    if request.top_p is not None:
        payload["top_p"] = request.top_p
    if request.seed is not None:
        payload["seed"] = request.seed
    if kind != "complete":
        payload["kind"] = kind
    raw = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()
