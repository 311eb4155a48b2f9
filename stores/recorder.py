"""The recorder: buffers what runs leave behind and writes it to the store in batches (group commit).

The backend wrappers see it only as a ``CallSink`` and a ``SampleCache`` (``backends.ports``); the
runner hands it run starts and finishes, an evaluation its item results. A model call never waits
for the database: rows are buffered, and whatever has queued up is written in one transaction.

Where a batch is written: PostgreSQL batches, and every batch in durable mode, are committed by ONE
writer task in a worker thread (the default executor, as ``asyncio.to_thread`` uses), so the event
loop goes on while the database answers. A SQLite batch outside durable mode is written on the loop,
a few times a second: it is CPU work under the GIL, which a thread cannot overlap with the loop,
and the hop cost 0.1-0.6 ms of CPU per one-call run on this machine's benchmark (each waiting
reply is held up to the interpreter's 5 ms switch interval too).

When rows are written:
- normally at most every ``flush_interval`` seconds, when ``max_buffer`` rows wait, or when a run
  fails, at the end of a run; always on ``drain``;
- in durable mode (evaluations) as soon as an answered call's samples arrive, so a killed eval
  replays them instead of paying for them again; a burst of replies costs about two commits of
  latency, not one per reply.

While the store is unreachable (a database restart, a dropped connection) rows wait in memory and
a background task retries (tenacity); past ``outage_limit`` seconds or ``max_pending`` rows the next
write raises ``StoreUnavailable`` instead of growing without bound. Rows the database refuses for
what they hold are dropped, so they never block later writes. Runs in progress get a heartbeat at
most every ``HEARTBEAT_EVERY`` seconds, so other hosts do not take them for interrupted.
"""

from __future__ import annotations

__all__ = ["HEARTBEAT_EVERY", "Recorder"]

import asyncio
import functools
import logging
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

import tenacity
from sqlalchemy.exc import DataError, DisconnectionError, IntegrityError, InterfaceError, OperationalError

from archon.exceptions import StoreUnavailable
from archon.records import CachedSample, CallRecord

from .batch import Batch, RunFinish, RunStart
from .evals import EvalResult

if TYPE_CHECKING:
    from .store import Store

_log = logging.getLogger("archon.store")
HEARTBEAT_EVERY = 300.0  # seconds; a run is taken for interrupted after an hour without one (stores.STALE_AFTER)


class Recorder:
    """Buffers runs, calls, cache entries and eval results for one store, and writes them in batches.

    With ``store=None`` it records nothing and caches nothing (a runtime without a store).
    """

    def __init__(self, store: Store | None, *, flush_interval: float = 0.25, max_buffer: int = 2000,
                 outage_limit: float = 120.0, max_pending: int = 200_000):
        self.store = store
        self.flush_interval = flush_interval
        self.max_buffer = max_buffer
        self.outage_limit = outage_limit
        self.max_pending = max_pending
        #: Durable: every answered call's samples are committed as they arrive (see module docstring).
        self.durable = False
        self._starts: list[RunStart] = []
        self._calls: list[CallRecord] = []
        self._finishes: list[RunFinish] = []
        self._eval_results: list[EvalResult] = []
        self._cache: dict[tuple[str, int], CachedSample] = {}  # not yet written, this process
        # Runs started and not yet finished, and when the store last heard they are alive.
        self._open: set[str] = set()
        self._last_heartbeat = time.monotonic()
        self._last_write = time.monotonic()
        self._outage_since: float | None = None
        self._outage_reason = ""
        self._writer: asyncio.Task | None = None
        self._retrier: asyncio.Task | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None
        self._lock = asyncio.Lock()
        # SQLite answers a key lookup in ~0.02 ms (see Store._cache_get_sqlite) and writes a batch in a
        # few ms of CPU: cheaper on the loop than a hop to a thread (see the module docstring).
        self._inline = store is not None and store.dialect == "sqlite"

    # -- what runs hand in ------------------------------------------------------------------------

    def start_run(self, pipeline: str, input_text: str, trial: int | None) -> str | None:
        """A new run's id (None without a store); the run's row is written with the next batch."""
        if self.store is None:
            return None
        run_id = uuid.uuid4().hex
        self._starts.append(RunStart(run_id, pipeline, input_text, trial))
        self._open.add(run_id)
        return run_id

    def finish_run(self, run_id: str | None, status: str, output: str | None, error: str | None) -> None:
        if run_id is None:
            return
        self._open.discard(run_id)
        self._finishes.append(RunFinish(run_id, status, output, error))
        if (time.monotonic() - self._last_write >= self.flush_interval
                or len(self._calls) + len(self._cache) >= self.max_buffer or status == "error"):
            self.write()

    def record_call(self, record: CallRecord) -> None:
        """``CallSink``: keep a call's row for the next batch."""
        if self.store is not None:
            self._calls.append(record)

    def add_eval_result(self, result: EvalResult) -> None:
        """Queue an eval item's result; it is written with the calls that produced it, right away.
        Never raises: past the outage limit the result stays queued, and the final ``drain`` says so."""
        self._eval_results.append(result)
        try:
            self.write()
        except StoreUnavailable as exc:
            _log.error("writing to the store failed: %s", exc)

    async def get_samples(self, key: str, samples: Sequence[int]) -> dict[int, CachedSample]:
        """``SampleCache``: samples of request ``key`` answered before, here or in the store."""
        hits = {k: self._cache[(key, k)] for k in samples if (key, k) in self._cache}
        rest = [k for k in samples if k not in hits]
        if rest and self.store is not None:
            if self._inline:
                hits.update(self.store.cache_get(key, rest))
            else:
                async for attempt in self.retrying():
                    with attempt:
                        hits.update(await asyncio.to_thread(self.store.cache_get, key, rest))
        return hits

    def put_samples(self, entries: Sequence[CachedSample]) -> None:
        """``SampleCache``: keep freshly answered samples (visible to ``get_samples`` at once)."""
        if self.store is None:
            return
        for e in entries:
            self._cache[(e.key, e.sample)] = e
        if self.durable:
            self.write()

    def pending(self) -> int:
        """Rows waiting to be written."""
        return len(self._starts) + len(self._calls) + len(self._cache) + len(self._finishes) + len(self._eval_results)

    # -- writing ----------------------------------------------------------------------------------

    def write(self) -> None:
        """Write everything buffered: in an event loop, by the writer task (this returns at once), or
        here for SQLite outside durable mode; without a loop, here. Here, what the store raised is
        raised (the rows are kept for the next try), except a lost connection inside a loop.

        During an outage the rows wait for the retrier; past the outage limit this raises
        ``StoreUnavailable``.
        """
        if self.store is None or not self.pending():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._write_here()
            return
        if self._retrier is not None and not self._retrier.done():
            self._check_limits()
            return  # the retrier writes them when the store is back
        # Inline only when no threaded write is in flight: a run's end must never overtake its start.
        if self._inline and not self.durable and not self._io_lock().locked():
            try:
                self._write_here()
            except Exception as exc:
                if not connection_lost(exc):
                    raise
                self._retrier = loop.create_task(self._retry_in_background())
        elif self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._write_while_pending())
        if self._outage_since is not None:
            self._check_limits()

    async def drain(self) -> None:
        """Write everything buffered now; while the store is unreachable, retry until ``outage_limit``
        seconds have passed, then raise StoreUnavailable (the rows are kept)."""
        if self.store is None:
            return
        for task in (self._writer, self._retrier):
            if task is not None and not task.done():
                await asyncio.shield(task)
        await self._write_retrying()

    def retrying(self) -> tenacity.AsyncRetrying:
        """Retries for store I/O that failed for want of a connection, until the outage limit."""
        def give_up(state: tenacity.RetryCallState) -> bool:
            return self._outage_since is not None and time.monotonic() - self._outage_since > self.outage_limit

        return tenacity.AsyncRetrying(retry=tenacity.retry_if_exception(connection_lost),
                                      wait=tenacity.wait_exponential(multiplier=0.05, max=2.0), stop=give_up,
                                      before_sleep=lambda state: self._note_outage(state.outcome.exception() if state.outcome else None),
                                      retry_error_callback=lambda state: self._check_limits(force=True))

    def _write_here(self) -> None:
        assert self.store is not None  # write() returns before this without a store
        batch, beat = self._take()
        try:
            _commit(self.store, batch, beat)
        except BaseException as exc:
            self._settle(batch, exc)
            if connection_lost(exc):
                self._note_outage(exc)
            raise
        self._written(batch)

    async def _write_while_pending(self) -> None:
        """The writer task: one transaction at a time, each taking everything waiting (group commit)."""
        while self.pending():
            if self._retrier is not None and not self._retrier.done():
                return  # the retrier has them
            try:
                await self._write_async()
            except Exception as exc:  # a task has no caller: say it in one line, and keep the rows
                if not connection_lost(exc):
                    _log.error("writing to the store failed: %s", exc)
                    return
                self._note_outage(exc)
                self._retrier = asyncio.get_running_loop().create_task(self._retry_in_background())
                return

    async def _write_retrying(self) -> None:
        async for attempt in self.retrying():
            with attempt:
                await self._write_async()

    async def _write_async(self) -> None:
        async with self._io_lock():  # one transaction at a time: a run's end never overtakes its start
            if self.store is None or not self.pending():
                return
            batch, beat = self._take()
            # What asyncio.to_thread does, but as a plain future: a loop shutting down cancels its
            # tasks, never this, so the rows are settled when the thread's commit really ends (rows
            # it wrote must never be put back and written twice), even if this task is cancelled.
            commit = asyncio.get_running_loop().run_in_executor(None, _commit, self.store, batch, beat)
            commit.add_done_callback(functools.partial(self._settled, batch))
            await asyncio.shield(commit)

    def _settled(self, batch: Batch, commit: asyncio.Future) -> None:
        if commit.cancelled():
            self._settle(batch, asyncio.CancelledError())
        elif (exc := commit.exception()) is not None:
            self._settle(batch, exc)
        else:
            self._written(batch)

    def _io_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock_loop is not loop:  # a Runtime may serve several event loops, one after another
            self._lock_loop, self._lock = loop, asyncio.Lock()
        return self._lock

    async def _retry_in_background(self) -> None:
        try:
            await self._write_retrying()
        except StoreUnavailable as exc:
            _log.error("%s", exc)  # the next write, or the final drain, raises it to its caller

    # -- bookkeeping ------------------------------------------------------------------------------

    def _take(self) -> tuple[Batch, list[str] | None]:
        """Everything waiting, as one batch; and the runs to give a heartbeat, when one is due."""
        batch = Batch(starts=self._starts, calls=self._calls, cache=list(self._cache.values()),
                      finishes=self._finishes, eval_results=self._eval_results)
        self._starts, self._calls, self._finishes, self._eval_results = [], [], [], []
        beat = None
        now = time.monotonic()
        if self._open and now - self._last_heartbeat > HEARTBEAT_EVERY:
            self._last_heartbeat, beat = now, sorted(self._open)
        return batch, beat

    def _settle(self, batch: Batch, exc: BaseException) -> None:
        """A failed write: keep its rows for the next one, unless the database refused the rows themselves."""
        if _never_writable(exc):
            # Retrying rows the database rejects for what they hold would block every later write.
            for e in batch.cache:
                self._cache.pop((e.key, e.sample), None)
            _log.error("dropped %d runs, %d calls and %d results the store rejected: %s",
                       len(batch.starts), len(batch.calls), len(batch.eval_results), exc)
            return
        self._starts[:0], self._calls[:0] = batch.starts, batch.calls
        self._finishes[:0], self._eval_results[:0] = batch.finishes, batch.eval_results

    def _written(self, batch: Batch) -> None:
        for e in batch.cache:
            if self._cache.get((e.key, e.sample)) is e:
                del self._cache[(e.key, e.sample)]
        self._last_write = time.monotonic()
        if self._outage_since is not None:
            _log.warning("the store is back after %.1f s; the rows kept meanwhile are written",
                         time.monotonic() - self._outage_since)
            self._outage_since = None

    def _note_outage(self, exc: BaseException | None) -> None:
        if self._outage_since is None:
            self._outage_since, self._outage_reason = time.monotonic(), str(exc)
            _log.warning("%s; keeping %d rows in memory and retrying for up to %.0f s", exc, self.pending(), self.outage_limit)

    def _check_limits(self, force: bool = False) -> None:
        waited = time.monotonic() - self._outage_since if self._outage_since is not None else 0.0
        if force or waited > self.outage_limit or self.pending() > self.max_pending:
            raise StoreUnavailable(
                f"the store has been unreachable for {waited:.0f} s ({self._outage_reason or 'no connection'}); "
                f"{self.pending()} rows wait to be written: rerun the same command when the database is back to resume")


def _commit(store: Store, batch: Batch, beat: list[str] | None) -> None:
    """One transaction (in the writer's thread), then the heartbeat if one is due."""
    store.write_batch(batch)
    if beat:
        try:
            store.heartbeat(beat)
        except Exception as exc:  # a missed heartbeat only risks a premature "interrupted", set right at the finish
            _log.warning("could not note the runs in progress: %s", exc)


def _cause(exc: BaseException) -> BaseException:
    # The store raises its own RunFailed with the database's error as ``db_error`` (never chained:
    # SQLAlchemy's message carries the rows); other callers chain it.
    return getattr(exc, "db_error", None) or exc.__cause__ or exc


def connection_lost(exc: BaseException) -> bool:
    """The database could not be reached or dropped the connection: writing again later can help."""
    return isinstance(_cause(exc), (OperationalError, InterfaceError, DisconnectionError))


def _never_writable(exc: BaseException) -> bool:
    """The database refused the rows themselves (bad data, a broken constraint), not the connection:
    writing the same rows again can only fail again."""
    return isinstance(_cause(exc), (DataError, IntegrityError))
