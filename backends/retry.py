"""Retrying as a wrapper around any backend, so no backend writes its own retry loop.

Only errors that say they are worth retrying (``retryable = True``: rate limits, 5xx, timeouts,
dropped connections) are retried; a wrong key or a bad request fails at once. A server's
``Retry-After`` is honoured (up to ``max_wait``), otherwise the wait grows exponentially with jitter,
so many callers hitting the same limit do not come back in lockstep.

A stream is retried only until its first delta: once tokens have gone out they cannot be taken back.
"""

from __future__ import annotations

__all__ = ["RetryingBackend"]

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import cast

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from archon.exceptions import BackendError
from backends.base import (
    Backend, CallFn, Completion, CompletionRequest, StreamingBackend, StreamItem, can_reward, can_stream, reward_of,
)

SleepFn = Callable[[float], Awaitable[None]]


def _retryable(exc: BaseException) -> bool:
    return getattr(exc, "retryable", False) is True


class RetryingBackend:
    """Retries ``inner``'s retryable failures; at most ``1 + max_retries`` attempts per call.

    ``Completion.attempts`` (on success) and ``BackendError.attempts`` (on the final failure) say how
    many attempts were made. ``sleep`` replaces ``asyncio.sleep`` between attempts (tests).
    """

    def __init__(self, inner: Backend, *, max_retries: int, max_wait: float, base_wait: float = 0.5,
                 sleep: SleepFn | None = None):
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.inner = inner
        self.name = inner.name
        self.max_retries = max_retries
        self.max_wait = max_wait
        self.base_wait = base_wait
        self._sleep = sleep or asyncio.sleep
        self._backoff = wait_exponential_jitter(multiplier=base_wait, max=max_wait, jitter=base_wait)
        # A template: each call iterates over its own copy, since AsyncRetrying keeps per-loop state.
        self._retrying = AsyncRetrying(
            sleep=sleep or asyncio.sleep,
            stop=stop_after_attempt(1 + max_retries),
            wait=self._wait,
            retry=retry_if_exception(_retryable),
            reraise=True,
        )

    def __repr__(self) -> str:
        return f"RetryingBackend({self.inner!r}, max_retries={self.max_retries}, max_wait={self.max_wait:g})"

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return min(max(float(retry_after), 0.0), self.max_wait)
        return self._backoff(state)

    async def complete(self, request: CompletionRequest) -> Completion:
        return await self._retried(self.inner.complete, request)

    @property
    def can_reward(self) -> bool:
        return can_reward(self.inner)

    async def reward(self, request: CompletionRequest) -> Completion:
        return await self._retried(reward_of(self.inner), request)

    async def _retried(self, call: CallFn, request: CompletionRequest) -> Completion:
        attempts = 0
        try:
            async for attempt in self._retrying.copy():
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    completion = await call(request)
        except BackendError as exc:
            exc.attempts = attempts
            raise
        completion.attempts = attempts
        return completion

    @property
    def can_stream(self) -> bool:
        return can_stream(self.inner)

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamItem]:
        # A loop of its own rather than tenacity's: an attempt must not span a ``yield``, or closing
        # the stream early would be caught as a failed attempt.
        attempt = 0
        while True:
            attempt += 1
            started = False
            try:
                # stream() is only called when can_stream(self.inner) said the inner backend streams.
                # StreamingBackend.stream is typed AsyncIterator (backends/base.py), but every stream is
                # an async generator, which aclosing needs.
                stream = cast(StreamingBackend, self.inner).stream(request)
                async with aclosing(stream) as items:  # type: ignore[type-var]
                    async for item in items:
                        if isinstance(item, Completion):
                            item.attempts = attempt
                        started = True
                        yield item
                return
            except BackendError as exc:
                exc.attempts = attempt
                if started or not _retryable(exc) or attempt > self.max_retries:
                    raise
                await self._sleep(self._stream_wait(exc, attempt))

    def _stream_wait(self, exc: BackendError, attempt: int) -> float:
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return min(max(float(retry_after), 0.0), self.max_wait)
        return min(self.base_wait * 2 ** (attempt - 1) + random.uniform(0, self.base_wait), self.max_wait)

    async def aclose(self) -> None:
        close = getattr(self.inner, "aclose", None)
        if close is not None:
            await close()
