"""The recorder: what it keeps, and what it drops, when the store fails to write; and where it writes."""

from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy.exc import DataError, OperationalError

from archon.exceptions import RunFailed, StoreUnavailable
from archon.records import CachedSample, CallRecord
from stores import recorder as recorder_module
from stores.batch import Batch
from stores.recorder import Recorder


class FakeStore:
    """A store double: records each batch (and the thread that wrote it); fails as told."""

    def __init__(self, dialect: str = "postgresql"):
        self.dialect = dialect
        self.failures: list[BaseException] = []
        self.down = False
        self.written: list[Batch] = []
        self.threads: list[str] = []
        self.beats: list[list[str]] = []

    def write_batch(self, batch: Batch) -> None:
        self.threads.append(threading.current_thread().name)
        if self.down:
            err = RunFailed("store: recording the run failed: connection refused")
            err.db_error = OperationalError("INSERT", {}, Exception("connection refused"))
            raise err
        if self.failures:
            raise RunFailed("store: writing failed") from self.failures.pop(0)
        self.written.append(batch)

    def heartbeat(self, ids):
        self.beats.append(list(ids))

    def cache_get(self, key, samples):
        return {}


def test_rows_the_database_rejects_are_dropped_but_a_lost_connection_keeps_them():
    """A row that can never be written must not block every later write; a transient failure must not lose rows."""
    store = FakeStore()
    log = Recorder(store)
    store.failures = [OperationalError("INSERT", {}, Exception("connection lost"))]
    log.start_run("p", "q1", None)
    with pytest.raises(RunFailed):
        log.write()  # no event loop: written here, and the caller sees the failure
    log.write()  # the connection is back: the run is written now
    assert len(store.written) == 1 and len(store.written[0].starts) == 1
    store.failures = [DataError("INSERT", {}, Exception("invalid byte sequence"))]
    log.start_run("p", "bad\udc80", None)
    with pytest.raises(RunFailed):
        log.write()
    log.start_run("p", "q3", None)
    log.write()  # the rejected run is gone; later ones are written
    assert [s.input for s in store.written[-1].starts] == ["q3"]


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])  # written by the writer thread / on the loop
async def test_an_outage_keeps_rows_until_the_store_is_back_then_gives_up_past_the_limit(dialect):
    """Inside an event loop a lost connection raises nothing: rows wait, a background task writes
    them when the store answers again; past the outage limit the next write says so."""
    store = FakeStore(dialect)
    store.down = True
    log = Recorder(store, outage_limit=5.0)
    run_id = log.start_run("p", "q", None)
    log.write()  # no error: kept and retried in the background
    await asyncio.sleep(0.2)
    assert log.pending() == 1 and not store.written
    store.down = False
    await log.drain()
    assert log.pending() == 0 and store.written[-1].starts[0].run_id == run_id
    store.down = True
    log.outage_limit = 0.3
    log.finish_run(run_id, "ok", "out", None)
    log.write()
    await asyncio.sleep(0.5)
    with pytest.raises(StoreUnavailable, match="unreachable"):
        log.write()
    assert log.pending() == 1  # still kept: a later write, or a rerun, may yet store it
    store.down = False
    await log.drain()  # the store is back: the finish is written, and the outage is over
    assert log.pending() == 0 and store.written[-1].finishes[0].run_id == run_id
    log.write()


def test_runs_in_progress_get_heartbeats(monkeypatch):
    monkeypatch.setattr(recorder_module, "HEARTBEAT_EVERY", 0.0)
    store = FakeStore()
    log = Recorder(store)
    a, b = log.start_run("p", "q1", None), log.start_run("p", "q2", None)
    log.write()
    log.finish_run(a, "ok", "x", None)
    log.start_run("p", "q3", None)
    log.write()
    assert store.beats[0] == sorted([a, b]) and a not in store.beats[-1] and b in store.beats[-1]


async def test_server_writes_happen_off_the_event_loop_in_one_group_commit():
    store = FakeStore("postgresql")
    log = Recorder(store, flush_interval=0.0)
    ids = [log.start_run("p", f"q{i}", None) for i in range(5)]
    for run_id in ids:
        log.record_call(CallRecord(run_id=run_id, backend="b", model="m"))
        log.finish_run(run_id, "ok", "x", None)  # each asks for a write; one writer takes them all
    await log.drain()
    assert sum(len(b.starts) for b in store.written) == 5 and len(store.written) <= 2
    assert threading.main_thread().name not in store.threads


async def test_sqlite_writes_on_the_loop_except_in_durable_mode():
    """A SQLite batch is CPU work under the GIL: cheaper on the loop than a hop to a thread."""
    store = FakeStore("sqlite")
    log = Recorder(store)
    log.start_run("p", "q", None)
    log.write()
    assert store.threads == [threading.main_thread().name]  # written before write() returned
    log.durable = True
    log.put_samples([CachedSample("k", 0, "b", "m", "t")])
    await log.drain()
    assert len(store.threads) == 2 and store.threads[-1] != threading.main_thread().name


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
async def test_durable_mode_commits_answered_samples_without_waiting_for_the_run(dialect):
    store = FakeStore(dialect)
    log = Recorder(store, flush_interval=3600.0)
    sample = CachedSample("k", 0, "b", "m", "text")
    log.put_samples([sample])
    await asyncio.sleep(0.05)
    assert not store.written and await log.get_samples("k", (0, 1)) == {0: sample}  # buffered, yet a hit
    log.durable = True
    log.put_samples([CachedSample("k", 1, "b", "m", "more")])
    for _ in range(100):
        if store.written:
            break
        await asyncio.sleep(0.01)
    assert [(e.key, e.sample) for e in store.written[0].cache] == [("k", 0), ("k", 1)]
    assert log.pending() == 0


async def test_a_cancelled_writer_never_writes_a_batch_twice():
    """The commit goes on in its thread when the writer task is cancelled: its rows count as written."""
    gate = threading.Event()

    class SlowStore(FakeStore):
        def write_batch(self, batch):
            gate.wait(5)
            super().write_batch(batch)

    store = SlowStore()
    log = Recorder(store)
    log.start_run("p", "q", None)
    log.write()
    await asyncio.sleep(0.05)
    log._writer.cancel()
    gate.set()
    await asyncio.sleep(0.1)
    await log.drain()
    assert len(store.written) == 1 and log.pending() == 0


def test_without_a_store_nothing_is_kept():
    log = Recorder(None)
    assert log.start_run("p", "q", None) is None
    log.record_call(CallRecord(backend="b", model="m"))
    log.put_samples([CachedSample("k", 0, "b", "m", "t")])
    log.write()
    assert log.pending() == 0
