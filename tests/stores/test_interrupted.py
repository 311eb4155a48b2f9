"""Runs left 'running' by a process that died are marked 'interrupted' when a store next opens;
live runs (here or on another host with a fresh heartbeat) are left alone."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import insert

from stores import Store
from stores.liveness import host_id
from stores.tables import RunRow, utcnow

ROOT = Path(__file__).resolve().parents[2]
_DIE = "import os, sys; from stores import Store; print(Store(sys.argv[1]).start_run('p', 'q'), flush=True); os._exit(0)"


def add_run(store: Store, run_id: str, **kw) -> None:
    row = {"id": run_id, "pipeline": "p", "status": "running", "input": "q", "started_at": utcnow(), **kw}
    with store.engine.begin() as conn:
        conn.execute(insert(RunRow.__table__), row)


def statuses(store: Store) -> dict[str, str]:
    return {r["id"]: r["status"] for r in store.runs()}


def test_run_of_a_dead_process_is_interrupted(db_url):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    died = subprocess.run([sys.executable, "-c", _DIE, db_url], capture_output=True, text=True, env=env, timeout=60)
    run_id = died.stdout.strip()
    assert died.returncode == 0 and run_id, died.stderr
    with Store(db_url) as store:
        (run,) = store.runs()
    assert (run["id"], run["status"]) == (run_id, "interrupted")
    assert f"on {host_id()}" in run["error"]
    cli = subprocess.run([sys.executable, "-m", "archon", "runs", "--json", "--db", db_url],
                         capture_output=True, text=True, env=env, timeout=60)
    assert cli.returncode == 0, cli.stderr
    assert [(r["id"], r["status"]) for r in json.loads(cli.stdout)] == [(run_id, "interrupted")]


def test_live_runs_stay_running(store):
    mine = store.start_run("p", "q")
    old = utcnow() - timedelta(hours=2)
    add_run(store, "elsewhere-live", host="other-host", pid=1, started_at=old, heartbeat_at=utcnow())
    add_run(store, "elsewhere-stale", host="other-host", pid=1, started_at=old, heartbeat_at=old)
    # Another container with this machine's host name (host networking): its pids are not ours to check.
    add_run(store, "other-pid-namespace", host=f"{socket.gethostname()} pid:[1]", pid=2**22 + 1, heartbeat_at=utcnow())
    add_run(store, "legacy-recent", host=None, pid=None, heartbeat_at=None)
    add_run(store, "legacy-old", host=None, pid=None, heartbeat_at=None, started_at=old)
    assert sorted(store.mark_interrupted()) == ["elsewhere-stale", "legacy-old"]
    assert statuses(store) == {mine: "running", "elsewhere-live": "running", "legacy-recent": "running",
                               "other-pid-namespace": "running",
                               "elsewhere-stale": "interrupted", "legacy-old": "interrupted"}
    assert store.mark_interrupted() == []


def test_heartbeat_keeps_a_long_run_alive(store):
    add_run(store, "long", host="other-host", pid=1, started_at=utcnow() - timedelta(hours=2),
            heartbeat_at=utcnow() - timedelta(minutes=90))
    store.heartbeat(["long"])
    assert store.mark_interrupted() == []
    assert store.mark_interrupted(stale_after=timedelta(0)) == ["long"]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="process start times come from /proc")
def test_a_reused_pid_does_not_keep_a_run_alive(store):
    """A restarted container is pid 1 again under the same host name: the pid alone proves nothing."""
    add_run(store, "before-restart", host=host_id(), pid=os.getpid(),
            started_at=datetime(2020, 1, 1, tzinfo=timezone.utc))
    assert store.mark_interrupted() == ["before-restart"]


def test_a_run_marked_too_early_is_set_right_when_it_finishes(store):
    add_run(store, "slow", host="other-host", pid=1, started_at=utcnow() - timedelta(hours=2),
            heartbeat_at=utcnow() - timedelta(hours=2))
    assert store.mark_interrupted() == ["slow"]
    store.finish_run("slow", "ok", output="done")
    assert statuses(store) == {"slow": "ok"}
