"""Streaming an answer as server-sent events in OpenAI's ``chat.completion.chunk`` format.

What streams: when the pipeline's output node is one model call (``generate`` or ``fuse`` with one
model and one sample) and that backend can stream (the OpenAI-compatible backend; the embedded model),
its tokens go out as the backend produces them; the earlier nodes run first, as always. Otherwise,
and for an answer replayed from the cache, the answer goes out in pieces once the run is done. Either
way the stream ends with a chunk carrying ``finish_reason``, the usage summed over every call and the
``archon`` object, then ``data: [DONE]``.

Nothing is sent until the first piece of the answer exists, so an error before it (a backend that
fails, the timeout) is still an ordinary HTTP error status. An error after it can only travel in the
stream: one ``data: {"error": {...}}`` event, which OpenAI clients raise as ``APIError``.
"""

from __future__ import annotations

__all__ = ["AnswerStream", "DONE", "split_text", "sse"]

import asyncio
import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from typing import Any

from pydantic import BaseModel

from archon.runner import CompiledPipeline
from archon.serve.errors import ServeError
from archon.serve.protocol import ArchonInfo, ChatCompletionChunk, ChunkChoice, Delta, UsageInfo
from archon.types import Query, RunResult

log = logging.getLogger("archon.serve")

DONE = b"data: [DONE]\n\n"
_END = object()  # put on the queue when the run is over, however it ended
_PIECE = re.compile(r"\S*\s*")


def sse(payload: BaseModel | dict[str, Any]) -> bytes:
    """One server-sent event holding ``payload`` as JSON."""
    if isinstance(payload, BaseModel):
        return b"data: " + payload.model_dump_json().encode() + b"\n\n"
    import json

    return b"data: " + json.dumps(payload, ensure_ascii=False).encode() + b"\n\n"


def split_text(text: str, size: int = 64) -> list[str]:
    """``text`` in pieces of about ``size`` characters, cut after whitespace (a finished answer as chunks)."""
    pieces, current = [], ""
    for word in _PIECE.findall(text):
        if current and len(current) + len(word) > size:
            pieces.append(current)
            current = ""
        current += word
    if current:
        pieces.append(current)
    return pieces


def usage_and_info(result: RunResult, pipeline: str) -> tuple[UsageInfo, ArchonInfo]:
    u = result.usage
    usage = UsageInfo(prompt_tokens=u.prompt_tokens, completion_tokens=u.completion_tokens, total_tokens=u.total_tokens)
    info = ArchonInfo(run_id=result.run_id, pipeline=pipeline, cost_usd=result.cost_usd, calls=result.calls,
                      cached_calls=result.cached_calls, latency_ms=round(result.latency_ms, 3))
    return usage, info


class AnswerStream:
    """One streamed request: runs the pipeline in a task and turns its deltas and result into events.

    ``error_of`` maps what the run raised (its failure, or ``TimeoutError`` after ``timeout_s``) to
    the answer the client gets.
    """

    def __init__(self, compiled: CompiledPipeline, query: Query, runtime: Any, *, completion_id: str, created: int,
                 model: str, include_usage: bool, timeout_s: float, error_of: Callable[[BaseException], ServeError]):
        self.compiled, self.query, self.runtime = compiled, query, runtime
        self.completion_id, self.created, self.model = completion_id, created, model
        self.include_usage = include_usage
        self.timeout_s = timeout_s
        self.error_of = error_of
        self._queue: asyncio.Queue = asyncio.Queue()

    async def start(self) -> AsyncIterator[bytes]:
        """The events, once the first one exists; a failure before it raises ``ServeError`` instead."""
        events = self._events()
        try:
            first = await anext(events)
        except StopAsyncIteration:  # cannot happen: every stream has at least its finishing chunk
            raise ServeError(500, "the stream ended before it began", code="internal_error") from None
        return _chain(first, events)

    async def _run(self) -> RunResult:
        try:
            async with asyncio.timeout(self.timeout_s):
                return await self.compiled.run(self.query, self.runtime, on_delta=self._queue.put_nowait)
        finally:
            self._queue.put_nowait(_END)

    async def _events(self) -> AsyncGenerator[bytes, None]:
        task = asyncio.create_task(self._run())
        task.add_done_callback(_retrieve)
        sent: list[str] = []
        try:
            try:
                while (delta := await self._queue.get()) is not _END:
                    yield self._chunk(delta, first=not sent)
                    sent.append(delta)
                result = task.result()
            except Exception as exc:
                error = self.error_of(exc)
                if not sent:
                    raise error from exc
                yield sse(error.body())  # too late for a status code
                return
            streamed = "".join(sent)
            rest = result.output[len(streamed):]
            if not result.output.startswith(streamed):  # a backend's deltas that do not add up to its answer
                log.warning("run %s: the streamed text is not a prefix of the answer; sent the difference only", result.run_id)
                rest = ""
            for piece in split_text(rest) or ([""] if not sent else []):
                yield self._chunk(piece, first=not sent)
                sent.append(piece)
            usage, info = usage_and_info(result, self.model)
            finish = ChunkChoice(delta=Delta(), finish_reason="stop")
            if self.include_usage:  # OpenAI's way: usage alone in a last chunk with no choices
                yield sse(self._make([finish]))
                yield sse(self._make([], usage=usage, archon=info))
            else:
                yield sse(self._make([finish], usage=usage, archon=info))
            yield DONE
        finally:
            if not task.done():  # the client went away, or the stream was closed early
                task.cancel()

    def _chunk(self, text: str, *, first: bool) -> bytes:
        delta = Delta(role="assistant", content=text) if first else Delta(content=text)
        return sse(self._make([ChunkChoice(delta=delta, finish_reason=None)]))

    def _make(self, choices: list[ChunkChoice], **extra: Any) -> ChatCompletionChunk:
        return ChatCompletionChunk(id=self.completion_id, created=self.created, model=self.model, choices=choices, **extra)


async def _chain(first: bytes, rest: AsyncGenerator[bytes, None]) -> AsyncIterator[bytes]:
    async with aclosing(rest):
        yield first
        async for item in rest:
            yield item


def _retrieve(task: asyncio.Task) -> None:
    # A run abandoned by its client still ends (recorded as an error); nobody awaits it, so take its
    # exception here rather than have asyncio complain that it was never retrieved.
    if not task.cancelled():
        task.exception()
