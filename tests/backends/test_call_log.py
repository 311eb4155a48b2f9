"""The call log: what it keeps, and what it drops, when the store fails to write."""

from __future__ import annotations

import pytest


def test_rows_the_database_rejects_are_dropped_but_a_lost_connection_keeps_them():
    """A row that can never be written must not block every later write; a transient failure must not lose rows."""
    from sqlalchemy.exc import DataError, OperationalError

    from archon.exceptions import RunFailed
    from backends.wrappers import CallLog

    class FlakyStore:
        dialect = "postgresql"

        def __init__(self):
            self.failures, self.written = [], []

        def write(self, **rows):
            if self.failures:
                cause = self.failures.pop(0)
                raise RunFailed("store: writing failed") from cause
            self.written.append(rows)

    store = FlakyStore()
    log = CallLog(store, None)
    store.failures = [OperationalError("INSERT", {}, Exception("connection lost"))]
    log.start_run("p", "q1", None)
    with pytest.raises(RunFailed):
        log.write()
    log.write()  # the connection is back: the run is written now
    assert len(store.written) == 1 and len(store.written[0]["starts"]) == 1
    store.failures = [DataError("INSERT", {}, Exception("invalid byte sequence"))]
    log.start_run("p", "bad\udc80", None)
    with pytest.raises(RunFailed):
        log.write()
    log.start_run("p", "q3", None)
    log.write()  # the rejected run is gone; later ones are written
    assert [s[2] for s in store.written[-1]["starts"]] == ["q3"]


async def test_an_outage_keeps_rows_until_the_store_is_back_then_gives_up_past_the_limit():
    """Inside an event loop a lost connection raises nothing: rows wait, a background task writes
    them when the store answers again; past the outage limit the next write says so."""
    import asyncio

    from sqlalchemy.exc import OperationalError

    from archon.exceptions import RunFailed, StoreUnavailable
    from backends.wrappers import CallLog

    class DownStore:
        dialect = "postgresql"

        def __init__(self):
            self.down, self.written, self.beats = True, [], []

        def write(self, **rows):
            if self.down:
                err = RunFailed("store: recording the run failed: connection refused")
                err.db_error = OperationalError("INSERT", {}, Exception("connection refused"))
                raise err
            self.written.append(rows)

        def heartbeat(self, ids):
            self.beats.append(list(ids))

    store = DownStore()
    log = CallLog(store, None, outage_limit=5.0)
    run_id = log.start_run("p", "q", None)
    log.write()  # no error: kept and retried in the background
    assert log.pending() == 1 and not store.written
    await asyncio.sleep(0.2)
    store.down = False
    await log.drain()
    assert log.pending() == 0 and store.written[-1]["starts"][0][0] == run_id
    store.down = True
    log.outage_limit = 0.3
    log.finish_run(run_id, "ok", "out", None)
    log.write()
    await asyncio.sleep(0.5)
    with pytest.raises(StoreUnavailable, match="unreachable"):
        log.write()
    assert log.pending() == 1  # still kept: a later write, or a rerun, may yet store it


def test_runs_in_progress_get_heartbeats(monkeypatch):
    from backends import wrappers
    from backends.wrappers import CallLog

    class Store:
        dialect = "sqlite"

        def __init__(self):
            self.beats = []

        def write(self, **rows):
            pass

        def heartbeat(self, ids):
            self.beats.append(list(ids))

    monkeypatch.setattr(wrappers, "HEARTBEAT_EVERY", 0.0)
    store = Store()
    log = CallLog(store, None)
    a, b = log.start_run("p", "q1", None), log.start_run("p", "q2", None)
    log.write()
    log.finish_run(a, "ok", "x", None)
    log.start_run("p", "q3", None)
    log.write()
    assert store.beats[0] == sorted([a, b]) and a not in store.beats[-1] and b in store.beats[-1]
