"""Wrappers that give every backend caching, recording and limits (retrying lives in ``retry``).

The chain built for each backend, outermost first (DESIGN.md):

    CachedBackend -> RecordingBackend -> LimitedBackend -> RetryingBackend -> backend

A cache hit issues no request and is logged by the cache wrapper as a ``cached`` call with the cost
it saved; a miss goes down the chain and is logged once by the recorder, with its attempts.
The wrappers only see the small interfaces of ``backends.ports``: rows go to a ``CallSink`` and
samples to and from a ``SampleCache`` (the store's recorder implements both and writes in batches,
off the hot path); each call is also counted on its run's meter (``CallMeta.meter``) as it happens.

Each wrapper also passes streams through (``stream``, see ``backends.base``): a streamed call is
recorded once, when its final ``Completion`` arrives; a cached answer is replayed as one delta. A
reward model's score (``reward``) goes through the same chain as a completion: cached under a key of
its own kind, recorded with the conversation as its prompt and 0 completion tokens, limited, retried.
"""

from __future__ import annotations

__all__ = ["CachedBackend", "LimitedBackend", "RecordingBackend"]

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from archon.exceptions import BackendError
from archon.records import CachedSample, CallRecord
from backends.base import (
    Backend, CallFn, Completion, CompletionRequest, StreamItem, Usage, can_reward, can_stream, open_stream, request_key,
    reward_of, server_identity,
)
from backends.ports import CallSink, PriceTable, SampleCache


def _log(sink: CallSink, request: CompletionRequest, record: CallRecord, *, counts: bool = True) -> None:
    """Count a call on its run's meter and hand its row to the sink."""
    meter = request.meta.meter
    if meter is not None:
        meter.add_call(record, counts=counts)
    sink.record_call(record)


#: A request in flight: identical requests wait on it for the samples it answers, by sample index.
_Flight = asyncio.Future[dict[int, CachedSample]]


def _record(req: CompletionRequest, backend: str, **kw: Any) -> CallRecord:
    return CallRecord(
        run_id=req.meta.run_id, node_id=req.meta.node_id, trial=req.meta.trial, backend=backend,
        model=req.model, n=req.n, prompt_text=req.prompt_text(), **kw,
    )


class RecordingBackend:
    """Logs every call that reaches the backend: tokens, latency, cost, attempts, errors."""

    def __init__(self, inner: Backend, sink: CallSink, pricing: PriceTable | None = None):
        self.inner = inner
        self.name = inner.name
        self.sink = sink
        self.pricing = pricing

    @property
    def can_stream(self) -> bool:
        return can_stream(self.inner)

    @property
    def can_reward(self) -> bool:
        return can_reward(self.inner)

    async def complete(self, request: CompletionRequest) -> Completion:
        return await self._call(self.inner.complete, request)

    async def reward(self, request: CompletionRequest) -> Completion:
        return await self._call(reward_of(self.inner), request)

    async def _call(self, call: CallFn, request: CompletionRequest) -> Completion:
        start = time.perf_counter()
        try:
            completion = await call(request)
        except BackendError as exc:
            self._failed(request, exc, start)
            raise
        self._answered(request, completion, start)
        return completion

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamItem]:
        start = time.perf_counter()
        try:
            async with aclosing(open_stream(self.inner, request)) as items:
                async for item in items:
                    if isinstance(item, Completion):
                        self._answered(request, item, start)
                    yield item
        except BackendError as exc:
            self._failed(request, exc, start)
            raise

    def _answered(self, request: CompletionRequest, completion: Completion, start: float) -> None:
        latency = (time.perf_counter() - start) * 1000
        completion.latency_ms = latency
        usage = completion.usage
        completion.cost_usd = (None if self.pricing is None
                               else self.pricing.cost(self.name, request.model, usage.prompt_tokens, usage.completion_tokens))
        _log(self.sink, request, _record(
            request, self.name, response_texts=completion.texts, prompt_tokens=completion.usage.prompt_tokens,
            completion_tokens=completion.usage.completion_tokens, cost_usd=completion.cost_usd, saved_usd=None,
            latency_ms=latency, status="ok", error=None, attempts=completion.attempts, cached=False,
        ))

    def _failed(self, request: CompletionRequest, exc: BackendError, start: float) -> None:
        exc.node = exc.node or request.meta.node_id
        exc.backend = exc.backend or self.name
        exc.model = exc.model or request.model
        _log(self.sink, request, _record(
            request, self.name, response_texts=[], prompt_tokens=0, completion_tokens=0, cost_usd=None,
            saved_usd=None, latency_ms=(time.perf_counter() - start) * 1000, status="error",
            error=str(exc), attempts=exc.attempts, cached=False,
        ))


class CachedBackend:
    """Replays sample k of an identical earlier request instead of calling the backend again.

    Identical requests in flight at the same time (two equal candidates critiqued at once, two
    trials sharing a prefix) are sent once: later ones wait for the first one's answer and are
    logged as cached, so even concurrent work never pays twice.

    ``origin`` is the backend at the bottom of the chain, whose server identity goes into the key;
    by default it is found by following the wrappers' ``inner``.
    """

    def __init__(self, inner: Backend, cache: SampleCache, sink: CallSink, *, origin: Backend | None = None):
        self.inner = inner
        self.name = inner.name
        self.cache = cache
        self.sink = sink
        if origin is None:
            origin = inner
            while (wrapped := getattr(origin, "inner", None)) is not None:
                origin = wrapped
        self.origin = origin
        self._inflight: dict[tuple[str, int], _Flight] = {}

    @property
    def can_stream(self) -> bool:
        return can_stream(self.inner)

    @property
    def can_reward(self) -> bool:
        return can_reward(self.inner)

    async def complete(self, request: CompletionRequest) -> Completion:
        return await self._cached(self.inner.complete, request, self._key(request))

    async def reward(self, request: CompletionRequest) -> Completion:
        key = request_key(self.name, request, server_identity(self.origin, request.model), kind="reward")
        return await self._cached(reward_of(self.inner), request, key)

    async def _cached(self, call: CallFn, request: CompletionRequest, key: str) -> Completion:
        start = time.perf_counter()
        hits = await self.cache.get_samples(key, request.samples)
        waiting = {k: self._inflight[(key, k)] for k in request.samples if k not in hits and (key, k) in self._inflight}
        missing = tuple(k for k in request.samples if k not in hits and k not in waiting)
        live, flight = None, None
        if missing:
            flight = asyncio.get_running_loop().create_future()
            for k in missing:
                self._inflight[(key, k)] = flight
        try:
            for k, fut in waiting.items():
                hits[k] = (await asyncio.shield(fut))[k]
            if missing:
                live = await call(request.with_samples(missing))
        except BaseException as exc:
            if flight is not None:
                _fail(flight, exc)
            raise
        finally:
            for k in missing:
                self._inflight.pop((key, k), None)
        texts: dict[int, str] = {k: h.text for k, h in hits.items()}
        logprobs: dict[int, list[float] | None] = {k: h.logprobs for k, h in hits.items()}
        usage, saved = Usage(), None
        if hits:
            usage = sum((Usage(h.prompt_tokens, h.completion_tokens) for h in hits.values()), Usage())
            known = [h.cost_usd for h in hits.values() if h.cost_usd is not None]
            saved = sum(known) if known else None
            hit_req = request.with_samples(tuple(k for k in request.samples if k in hits))
            _log(self.sink, hit_req, _record(
                hit_req, self.name, response_texts=[texts[k] for k in hit_req.samples], prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens, cost_usd=0.0, saved_usd=saved,
                latency_ms=(time.perf_counter() - start) * 1000, status="ok", error=None, attempts=0, cached=True,
            ), counts=not missing)
        if live is not None:
            assert flight is not None  # a live call answers the missing samples, each of which has a flight
            for k, entry in self._keep(key, request, missing, live, flight).items():
                texts[k], logprobs[k] = entry.text, entry.logprobs
            usage = usage + live.usage
        has_lp = any(v is not None for v in logprobs.values())
        return Completion(
            texts=[texts[k] for k in request.samples],
            usage=usage,
            logprobs=[logprobs[k] or [] for k in request.samples] if has_lp else None,
            latency_ms=live.latency_ms if live else (time.perf_counter() - start) * 1000,
            attempts=live.attempts if live else 0,
            cached=not missing,
            cost_usd=live.cost_usd if live else 0.0,
        )

    def _key(self, request: CompletionRequest) -> str:
        return request_key(self.name, request, server_identity(self.origin, request.model))

    def _keep(self, key: str, request: CompletionRequest, missing: tuple[int, ...], live: Completion,
              flight: _Flight) -> dict[int, CachedSample]:
        """Cache the samples a live call answered, and hand them to identical requests waiting on it."""
        shares = live.usage.split(len(missing))
        share_cost = None if live.cost_usd is None else live.cost_usd / len(missing)
        entries: dict[int, CachedSample] = {}
        for i, k in enumerate(missing):
            entries[k] = CachedSample(
                key=key, sample=k, backend=self.name, model=request.model, text=live.texts[i],
                logprobs=live.logprobs[i] if live.logprobs else None, prompt_tokens=shares[i].prompt_tokens,
                completion_tokens=shares[i].completion_tokens, cost_usd=share_cost,
            )
        flight.set_result(entries)
        self.cache.put_samples(list(entries.values()))
        return entries

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamItem]:
        """Streams a miss from the backend; replays a hit (or an identical call in flight) as one delta."""
        key = self._key(request)
        sample = request.samples[0]
        if (key, sample) in self._inflight or await self.cache.get_samples(key, request.samples):
            completion = await self.complete(request)  # replays, and logs the call as cached
            yield completion.texts[0]
            yield completion
            return
        flight = asyncio.get_running_loop().create_future()
        self._inflight[(key, sample)] = flight
        try:
            async with aclosing(open_stream(self.inner, request)) as items:
                async for item in items:
                    if isinstance(item, Completion):
                        self._keep(key, request, (sample,), item, flight)
                    yield item
        except BaseException as exc:
            _fail(flight, exc)
            raise
        finally:
            self._inflight.pop((key, sample), None)
            _fail(flight, BackendError("the stream ended without an answer"))  # waiters must not hang


def _fail(flight: _Flight, exc: BaseException) -> None:
    """Hand ``exc`` to the identical requests waiting on ``flight``, unless it already has its answer."""
    if flight.done():
        return
    flight.set_exception(exc if isinstance(exc, Exception) else BackendError("the request was cancelled"))
    flight.exception()  # waiters see it; with none, asyncio must not warn that nobody did


class LimitedBackend:
    """Bounds calls in flight: per backend (``max_concurrency``) and across all backends (global)."""

    def __init__(self, inner: Backend, limit: int, global_limit: asyncio.Semaphore | None = None):
        self.inner = inner
        self.name = inner.name
        self._sem = asyncio.Semaphore(limit)
        self._global = global_limit

    @property
    def can_stream(self) -> bool:
        return can_stream(self.inner)

    @property
    def can_reward(self) -> bool:
        return can_reward(self.inner)

    async def complete(self, request: CompletionRequest) -> Completion:
        return await self._limited(self.inner.complete, request)

    async def reward(self, request: CompletionRequest) -> Completion:
        return await self._limited(reward_of(self.inner), request)

    async def _limited(self, call: CallFn, request: CompletionRequest) -> Completion:
        async with self._sem:
            if self._global is None:
                return await call(request)
            async with self._global:
                return await call(request)

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamItem]:
        # A streamed call holds its slots until its last token: it is in flight all that time.
        async with self._sem, (self._global or contextlib.nullcontext()):
            async with aclosing(open_stream(self.inner, request)) as items:
                async for item in items:
                    yield item
