"""Wrappers that give every backend caching, recording and limits (retrying lives in ``retry``).

The chain built for each backend, outermost first (DESIGN.md):

    CachedBackend -> RecordingBackend -> LimitedBackend -> RetryingBackend -> backend

A cache hit issues no request and is logged by the cache wrapper as a ``cached`` call with the cost
it saved; a miss goes down the chain and is logged once by the recorder, with its attempts.
Rows are buffered in a ``CallLog`` and written in one transaction per flush (at the end of each run),
so the store never sits on the hot path of a model call.

Each wrapper also passes streams through (``stream``, see ``backends.base``): a streamed call is
recorded once, when its final ``Completion`` arrives; a cached answer is replayed as one delta.
"""

from __future__ import annotations

__all__ = ["CallLog", "CachedBackend", "RecordingBackend", "LimitedBackend", "RunTotals"]

import asyncio
import logging
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import tenacity

from archon.exceptions import BackendError, StoreUnavailable
from backends.base import (
    Backend, Completion, CompletionRequest, StreamItem, Usage, can_stream, request_key, server_identity,
)

if TYPE_CHECKING:
    from stores.pricing import Pricing
    from stores.store import CachedSample, CallRecord, Store


_log = logging.getLogger("archon.store")
HEARTBEAT_EVERY = 300.0  # seconds; a run is taken for interrupted after an hour without one (stores.STALE_AFTER)


@dataclass
class RunTotals:
    """A run's calls, tokens and cost. Tokens a server did not report stay unknown (None) in the sum,
    and so does the cost they would have priced; an unpriced model alone leaves the priced calls' sum."""

    calls: int = 0
    cached_calls: int = 0
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = None
    cost_unknown: bool = False
    notes: list[str] = field(default_factory=list)

    def add(self, usage: Usage, cost: float | None, cached: bool, counts: bool = True) -> None:
        self.calls += int(counts)
        self.cached_calls += int(cached and counts)
        self.usage = self.usage + usage
        if cost is None and not usage.known:
            self.cost_unknown, self.cost_usd = True, None
        elif cost is not None and not self.cost_unknown:
            self.cost_usd = (self.cost_usd or 0.0) + cost

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


class CallLog:
    """Buffers runs, call rows and cache entries, and writes them in batches (group commit).

    A write happens at most every ``flush_interval`` seconds (or when ``max_buffer`` rows wait),
    at the end of a run, in one transaction, and always on ``drain``. Writing on the event loop
    in batches beats a writer thread here: a background thread doing SQLAlchemy work holds the
    GIL for up to the interpreter's switch interval (5 ms) while a reply waits to be read.
    """

    def __init__(self, store: Store | None, pricing: Pricing | None, *, flush_interval: float = 0.25, max_buffer: int = 2000,
                 outage_limit: float = 120.0, max_pending: int = 200_000):
        self.store = store
        # While the store is unreachable (a database restart, a dropped connection), rows wait here
        # and are retried in the background; past ``outage_limit`` seconds or ``max_pending`` rows the
        # next write raises StoreUnavailable instead of growing without bound.
        self.outage_limit = outage_limit
        self.max_pending = max_pending
        self._outage_since: float | None = None
        # Runs started and not yet finished, and when the store last heard they are alive (a run
        # silent for an hour may be taken for interrupted by a worker on another host).
        self._open: set[str] = set()
        self._last_heartbeat = time.monotonic()
        self._outage_reason = ""
        self._retrier: asyncio.Task | None = None
        self._writer: asyncio.Task | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None
        self._lock = asyncio.Lock()
        self.pricing = pricing
        self.flush_interval = flush_interval
        self.max_buffer = max_buffer
        # Durable: every answered call is committed as it arrives (see _kick_writer), so a killed
        # eval replays it instead of paying for it again.
        self.durable = False
        self._write_scheduled = False
        self._eval_results: list[Any] = []
        self._starts: list[tuple] = []
        self._calls: list[CallRecord] = []
        self._finishes: list[tuple] = []
        self._cache: dict[tuple[str, int], CachedSample] = {}  # not yet written, this process
        self.totals: dict[str | None, RunTotals] = {}
        self._last_write = time.monotonic()
        # SQLite answers a key lookup in ~0.2 ms: cheaper than a hop to a thread. A server does not.
        self._sync_reads = store is not None and store.dialect == "sqlite"

    def price(self, backend: str, model: str, usage: Usage) -> float | None:
        if self.pricing is None:
            return None
        return self.pricing.cost(backend, model, usage.prompt_tokens, usage.completion_tokens)

    def add_call(self, record: CallRecord, *, counts: bool = True) -> None:
        """Log a call row; ``counts=False`` for the replayed part of a partly cached request, which the
        run's totals count once, as the request it was (its tokens still add up)."""
        totals = self.totals.setdefault(record.run_id, RunTotals())
        usage = Usage(record.prompt_tokens, record.completion_tokens)
        totals.add(usage, record.cost_usd, record.cached, counts)
        if record.status == "ok" and not usage.known:
            totals.note(f"{record.backend}/{record.model}: the server did not report token usage, so tokens"
                        f"{'' if record.cached else ' and cost'} are unknown")
        if self.store is not None:
            self._calls.append(record)

    async def cache_get(self, key: str, samples: tuple[int, ...]) -> dict[int, CachedSample]:
        hits = {k: self._cache[(key, k)] for k in samples if (key, k) in self._cache}
        rest = [k for k in samples if k not in hits]
        if rest and self.store is not None:
            if self._sync_reads:
                hits.update(self.store.cache_get(key, rest))
            else:
                async for attempt in self.retrying():
                    with attempt:
                        hits.update(await asyncio.to_thread(self.store.cache_get, key, rest))
        return hits

    def retrying(self) -> tenacity.AsyncRetrying:
        """Retries for store I/O that failed for want of a connection, until the outage limit."""
        def give_up(state: tenacity.RetryCallState) -> bool:
            return self._outage_since is not None and time.monotonic() - self._outage_since > self.outage_limit

        return tenacity.AsyncRetrying(retry=tenacity.retry_if_exception(_connection_lost),
                                      wait=tenacity.wait_exponential(multiplier=0.05, max=2.0), stop=give_up,
                                      before_sleep=lambda state: self._note_outage(state.outcome.exception()),
                                      retry_error_callback=self._gave_up)

    def _note_outage(self, exc: BaseException | None) -> None:
        if self._outage_since is None:
            self._outage_since, self._outage_reason = time.monotonic(), str(exc)
            _log.warning("%s; keeping %d rows in memory and retrying for up to %.0f s", exc, self.pending(), self.outage_limit)

    def _gave_up(self, state: tenacity.RetryCallState) -> None:
        self._check_limits(force=True)

    def pending(self) -> int:
        """Rows waiting to be written."""
        return len(self._starts) + len(self._calls) + len(self._cache) + len(self._finishes) + len(self._eval_results)

    def cache_add(self, entries: list[CachedSample]) -> None:
        for e in entries:
            self._cache[(e.key, e.sample)] = e
        if self.durable:
            self.write()

    def add_eval_result(self, result: Any) -> None:
        """Queue an eval item's result; it is written with the calls that produced it, right away."""
        self._eval_results.append(result)
        self._schedule_write()

    def _schedule_write(self) -> None:
        if self.store is None or self._write_scheduled:
            return
        self._write_scheduled = True
        asyncio.get_running_loop().call_soon(self._scheduled_write)

    def _scheduled_write(self) -> None:
        self._write_scheduled = False
        try:
            self.write()
        except Exception as exc:  # a callback has no caller: say it in one line, and keep the rows
            _log.error("writing to the store failed: %s", exc)

    def start_run(self, pipeline: str, input_text: str, trial: int | None) -> str | None:
        if self.store is None:
            return None
        run_id = uuid.uuid4().hex
        self._starts.append((run_id, pipeline, input_text, trial))
        self._open.add(run_id)
        return run_id

    def finish_run(self, run_id: str | None, status: str, output: str | None, error: str | None) -> None:
        if run_id is None:
            return
        self._open.discard(run_id)
        self._finishes.append((run_id, status, output, error))
        if (time.monotonic() - self._last_write >= self.flush_interval
                or len(self._calls) + len(self._cache) >= self.max_buffer or status == "error"):
            self.write()

    def write(self) -> None:
        """Write everything buffered in one transaction.

        If the store cannot be reached, the rows stay buffered and a background task retries
        (see ``outage_limit``); nothing is raised until the limit is passed.
        """
        if self.store is None or not self.pending():
            return
        if self._retrier is not None and not self._retrier.done():
            self._check_limits()
            return  # the retrier writes them when the store is back
        if self.durable and self._kick_writer():
            return
        batch = self._take()
        try:
            self.store.write(**batch)
        except BaseException as exc:
            self._settle(batch, exc)
            if not _connection_lost(exc):
                raise
            self._note_outage(exc)
            if not self._start_retrier():
                raise
            self._check_limits()
            return
        self._written(batch)

    async def drain(self) -> None:
        """Write everything buffered now, off the event loop; while the store is unreachable, retry
        until ``outage_limit`` seconds have passed, then raise StoreUnavailable (the rows are kept)."""
        if self.store is None:
            return
        for task in (self._writer, self._retrier):
            if task is not None and not task.done():
                await asyncio.shield(task)
        await self._write_retrying()

    async def _write_retrying(self) -> None:
        async for attempt in self.retrying():
            with attempt:
                await self._write_async()

    async def _write_async(self) -> None:
        async with self._io_lock():  # one transaction at a time: a run's end never overtakes its start
            if not self.pending():
                return
            batch = self._take()
            try:
                await asyncio.to_thread(self.store.write, **batch)
            except BaseException as exc:
                self._settle(batch, exc)
                raise
            self._written(batch)

    def _io_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock_loop is not loop:  # a Runtime may serve several event loops, one after another
            self._lock_loop, self._lock = loop, asyncio.Lock()
        return self._lock

    def _kick_writer(self) -> bool:
        """Durable mode: answered calls are committed as they arrive, off the event loop, by one
        writer that takes everything waiting at each commit (group commit). So a burst of replies
        costs about two commits of latency, not one per reply, and a kill loses only what arrived
        during the last commit. False when no event loop runs (the caller then writes itself)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._write_while_pending())
        return True

    async def _write_while_pending(self) -> None:
        while self.pending():
            if self._retrier is not None and not self._retrier.done():
                return  # the retrier has them
            try:
                await self._write_async()
            except Exception as exc:
                if not _connection_lost(exc):
                    _log.error("writing to the store failed: %s", exc)
                    return
                self._note_outage(exc)
                self._start_retrier()
                return

    def _take(self) -> dict[str, list]:
        batch = {"starts": self._starts, "calls": self._calls, "cache": list(self._cache.values()),
                 "finishes": self._finishes, "eval_results": self._eval_results}
        self._starts, self._calls, self._finishes, self._eval_results = [], [], [], []
        return batch

    def _settle(self, batch: dict[str, list], exc: BaseException) -> None:
        """A failed write: keep its rows for the next one, unless the database refused the rows themselves."""
        if _never_writable(exc):
            # Retrying rows the database rejects for what they hold would block every later write.
            for e in batch["cache"]:
                self._cache.pop((e.key, e.sample), None)
            _log.error("dropped %d runs, %d calls and %d results the store rejected: %s",
                       len(batch["starts"]), len(batch["calls"]), len(batch["eval_results"]), exc)
            return
        self._starts[:0], self._calls[:0] = batch["starts"], batch["calls"]
        self._finishes[:0], self._eval_results[:0] = batch["finishes"], batch["eval_results"]

    def _written(self, batch: dict[str, list]) -> None:
        for e in batch["cache"]:
            self._cache.pop((e.key, e.sample), None)
        self._last_write = time.monotonic()
        if self._open and self._last_write - self._last_heartbeat > HEARTBEAT_EVERY:
            self._last_heartbeat = self._last_write
            try:
                self.store.heartbeat(sorted(self._open))
            except Exception as exc:  # a missed heartbeat only risks a premature "interrupted", set right at the finish
                _log.warning("could not note the runs in progress: %s", exc)
        if self._outage_since is not None:
            _log.warning("the store is back after %.1f s; the rows kept meanwhile are written",
                         time.monotonic() - self._outage_since)
            self._outage_since = None

    def _start_retrier(self) -> bool:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False  # no event loop (a synchronous caller): it sees the error and may retry
        self._retrier = loop.create_task(self._retry_in_background())
        return True

    async def _retry_in_background(self) -> None:
        try:
            await self._write_retrying()
        except StoreUnavailable as exc:
            _log.error("%s", exc)  # the next write, or the final drain, raises it to its caller

    def _check_limits(self, force: bool = False) -> None:
        waited = time.monotonic() - self._outage_since if self._outage_since is not None else 0.0
        if force or waited > self.outage_limit or self.pending() > self.max_pending:
            raise StoreUnavailable(
                f"the store has been unreachable for {waited:.0f} s ({self._outage_reason or 'no connection'}); "
                f"{self.pending()} rows wait to be written: rerun the same command when the database is back to resume")


def _connection_lost(exc: BaseException) -> bool:
    """The database could not be reached or dropped the connection: writing again later can help."""
    from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError

    cause = getattr(exc, "db_error", None) or exc.__cause__ or exc
    return isinstance(cause, (OperationalError, InterfaceError, DisconnectionError))


def _never_writable(exc: BaseException) -> bool:
    """The database refused the rows themselves (bad data, a broken constraint), not the connection:
    writing the same rows again can only fail again."""
    from sqlalchemy.exc import DataError, IntegrityError

    cause = getattr(exc, "db_error", None) or exc.__cause__ or exc
    return isinstance(cause, (DataError, IntegrityError))


def _record(req: CompletionRequest, backend: str, **kw) -> CallRecord:
    from stores.store import CallRecord

    return CallRecord(
        run_id=req.meta.run_id, node_id=req.meta.node_id, trial=req.meta.trial, backend=backend,
        model=req.model, n=req.n, prompt_text=req.prompt_text(), **kw,
    )


class RecordingBackend:
    """Logs every call that reaches the backend: tokens, latency, cost, attempts, errors."""

    def __init__(self, inner: Backend, log: CallLog):
        self.inner = inner
        self.name = inner.name
        self.log = log

    @property
    def can_stream(self) -> bool:
        return can_stream(self.inner)

    async def complete(self, request: CompletionRequest) -> Completion:
        start = time.perf_counter()
        try:
            completion = await self.inner.complete(request)
        except BackendError as exc:
            self._failed(request, exc, start)
            raise
        self._answered(request, completion, start)
        return completion

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamItem]:
        start = time.perf_counter()
        try:
            async with aclosing(self.inner.stream(request)) as items:
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
        completion.cost_usd = self.log.price(self.name, request.model, completion.usage)
        self.log.add_call(_record(
            request, self.name, response_texts=completion.texts, prompt_tokens=completion.usage.prompt_tokens,
            completion_tokens=completion.usage.completion_tokens, cost_usd=completion.cost_usd, saved_usd=None,
            latency_ms=latency, status="ok", error=None, attempts=completion.attempts, cached=False,
        ))

    def _failed(self, request: CompletionRequest, exc: BackendError, start: float) -> None:
        exc.node = exc.node or request.meta.node_id
        exc.backend = exc.backend or self.name
        exc.model = exc.model or request.model
        self.log.add_call(_record(
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

    def __init__(self, inner: Backend, log: CallLog, *, origin: Backend | None = None):
        self.inner = inner
        self.name = inner.name
        self.log = log
        if origin is None:
            origin = inner
            while getattr(origin, "inner", None) is not None:
                origin = origin.inner  # type: ignore[attr-defined]
        self.origin = origin
        self._inflight: dict[tuple[str, int], asyncio.Future] = {}

    @property
    def can_stream(self) -> bool:
        return can_stream(self.inner)

    async def complete(self, request: CompletionRequest) -> Completion:
        start = time.perf_counter()
        key = self._key(request)
        hits = await self.log.cache_get(key, request.samples)
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
                live = await self.inner.complete(request.with_samples(missing))
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
            self.log.add_call(_record(
                hit_req, self.name, response_texts=[texts[k] for k in hit_req.samples], prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens, cost_usd=0.0, saved_usd=saved,
                latency_ms=(time.perf_counter() - start) * 1000, status="ok", error=None, attempts=0, cached=True,
            ), counts=not missing)
        if live is not None:
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
              flight: asyncio.Future) -> dict:
        """Cache the samples a live call answered, and hand them to identical requests waiting on it."""
        from stores.store import CachedSample

        shares = live.usage.split(len(missing))
        share_cost = None if live.cost_usd is None else live.cost_usd / len(missing)
        entries = {}
        for i, k in enumerate(missing):
            entries[k] = CachedSample(
                key=key, sample=k, backend=self.name, model=request.model, text=live.texts[i],
                logprobs=live.logprobs[i] if live.logprobs else None, prompt_tokens=shares[i].prompt_tokens,
                completion_tokens=shares[i].completion_tokens, cost_usd=share_cost,
            )
        flight.set_result(entries)
        self.log.cache_add(list(entries.values()))
        return entries

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamItem]:
        """Streams a miss from the backend; replays a hit (or an identical call in flight) as one delta."""
        key = self._key(request)
        sample = request.samples[0]
        if (key, sample) in self._inflight or await self.log.cache_get(key, request.samples):
            completion = await self.complete(request)  # replays, and logs the call as cached
            yield completion.texts[0]
            yield completion
            return
        flight = asyncio.get_running_loop().create_future()
        self._inflight[(key, sample)] = flight
        try:
            async with aclosing(self.inner.stream(request)) as items:
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


def _fail(flight: asyncio.Future, exc: BaseException) -> None:
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

    async def complete(self, request: CompletionRequest) -> Completion:
        async with self._sem:
            if self._global is None:
                return await self.inner.complete(request)
            async with self._global:
                return await self.inner.complete(request)

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamItem]:
        # A streamed call holds its slots until its last token: it is in flight all that time.
        async with self._sem, (self._global or contextlib.nullcontext()):
            async with aclosing(self.inner.stream(request)) as items:
                async for item in items:
                    yield item
