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
