"""Test doubles: backends that answer from a list or a function, with no network and no cost."""

from __future__ import annotations

__all__ = ["FunctionBackend", "ScriptedBackend", "EchoBackend", "Sampled"]

import asyncio
import itertools
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import NamedTuple

from backends.base import Completion, CompletionRequest, StreamItem, Usage


class Sampled(NamedTuple):
    """A reply with the log-probabilities of its tokens, for a double to answer instead of a bare string.

    The logprobs reach the ``Completion`` only when the request asks for them (``request.logprobs``),
    as from a real server; a request answered with bare strings only gets none, like a server that
    offers none (what the operators' fallbacks are for).
    """

    text: str
    logprobs: list[float]


Reply = str | Sampled


def _usage(req: CompletionRequest, texts: list[str]) -> Usage:
    # Word counts stand in for tokens: deterministic and good enough to check sums.
    return Usage(len(req.prompt_text().split()) * len(texts), sum(len(t.split()) for t in texts))


class FunctionBackend:
    """Answers each sample with ``fn(request, sample_index)``; ``fn`` may be async or raise.

    ``fn`` returns the text, or a ``Sampled(text, logprobs)`` to answer a request for logprobs.

    ``delay`` seconds are awaited per call, to test concurrency. ``requests`` keeps every request.
    With ``streams=True`` it can also stream (``stream``): the answer word by word, ``delay`` seconds
    before the first word and ``word_delay`` between words. ``reports_usage=False`` answers with
    unknown usage, like a server that sends none.
    """

    def __init__(self, fn: Callable[[CompletionRequest, int], Reply | Awaitable[Reply]], *, name: str = "fake", delay: float = 0.0,
                 streams: bool = False, word_delay: float = 0.0, reports_usage: bool = True):
        self.fn = fn
        self.reports_usage = reports_usage
        self.name = name
        self.delay = delay
        self.can_stream = streams
        self.word_delay = word_delay
        self.requests: list[CompletionRequest] = []

    async def complete(self, request: CompletionRequest) -> Completion:
        self.requests.append(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        replies: list[Reply] = []
        for k in request.samples:
            out = self.fn(request, k)
            replies.append(await out if isinstance(out, Awaitable) else out)
        texts = [r.text if isinstance(r, Sampled) else r for r in replies]
        usage = _usage(request, texts) if self.reports_usage else Usage(None, None)
        logprobs = None
        if request.logprobs is not None and any(isinstance(r, Sampled) for r in replies):
            logprobs = [list(r.logprobs) if isinstance(r, Sampled) else [] for r in replies]
        return Completion(texts=texts, usage=usage, logprobs=logprobs, finish_reasons=["stop"] * len(texts))

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamItem]:
        if not self.can_stream:
            raise AssertionError("this FunctionBackend was made without streams=True")
        whole = await self.complete(request)  # the same answer, usage and failures as complete
        for i, word in enumerate(re.findall(r"\s*\S+\s*|\s+", whole.texts[0])):
            if i and self.word_delay:
                await asyncio.sleep(self.word_delay)
            yield word
        yield whole


class ScriptedBackend(FunctionBackend):
    """Answers with the given replies (texts or ``Sampled``) in order, one per sample; an Exception in the list is raised."""

    def __init__(self, replies: Iterable[Reply | Exception], *, name: str = "fake", delay: float = 0.0, cycle: bool = False):
        items = list(replies)
        self._replies = itertools.cycle(items) if cycle else iter(items)
        super().__init__(self._next, name=name, delay=delay)

    def _next(self, request: CompletionRequest, k: int) -> Reply:
        try:
            item = next(self._replies)
        except StopIteration:
            raise AssertionError(f"ScriptedBackend ran out of replies (request for model '{request.model}')") from None
        if isinstance(item, Exception):
            raise item
        return item


class EchoBackend(FunctionBackend):
    """Answers "<model>#<sample>: <last line of the prompt>": handy to see where text came from."""

    def __init__(self, *, name: str = "fake", delay: float = 0.0):
        super().__init__(lambda r, k: f"{r.model}#{k}: {r.prompt_text().strip().splitlines()[-1][:80]}", name=name, delay=delay)
