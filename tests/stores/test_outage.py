"""A PostgreSQL outage in the middle of ``archon eval``: no item fails because of it, the summary is
printed, no traceback (nor SQL) reaches the terminal, and the store ends up holding every call the
model server answered exactly once. Checked five times in a row, each on a fresh database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import make_url

from archon.testing.fake_server import FakeOpenAIServer
from stores.testing import temporary_database
from tests.stores.conftest import _postgres_skip_reason
from tests.stores.proxy import CuttableProxy
from tests.stores.test_kill_resume import kill_resume

ROOT = Path(__file__).resolve().parents[2]
ITEMS = 60
PIPELINE = kill_resume.PIPELINE  # generate(4) -> fuse on one OpenAI-compatible server


def reply(prompt: str, k: int) -> str:
    return f"The answer is {len(prompt) % 7}."


def archon(*args: str, db: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ARCHON_DB_URL": db}
    return subprocess.run([sys.executable, "-m", "archon", *args, "--db", db], capture_output=True, text=True,
                          env=env, timeout=300)


def cut_after(server: FakeOpenAIServer, proxy: CuttableProxy, requests: int) -> None:
    deadline = time.monotonic() + 120
    while server.requests < requests and time.monotonic() < deadline:
        time.sleep(0.01)
    proxy.cut(2.5)


@pytest.mark.postgres
def test_eval_survives_five_database_outages(tmp_path):
    if reason := _postgres_skip_reason():
        pytest.skip(reason)
    data = tmp_path / "items.jsonl"
    data.write_text("".join(json.dumps({"id": f"q{i}", "question": f"What is {i} + {i}?", "answer": "0"}) + "\n"
                            for i in range(ITEMS)))
    counts = []
    for round_ in range(5):
        with FakeOpenAIServer(reply=reply, delay=0.3) as server, temporary_database("postgresql") as direct, \
                CuttableProxy(make_url(direct).port or 5432) as proxy:
            pipeline = tmp_path / "p.yaml"
            pipeline.write_text(PIPELINE.format(url=server.base_url))
            via_proxy = make_url(direct).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
            # The outage starts once the eval is well under way (a different moment each round) and
            # lasts 2.5 s, a restart's length.
            cutter = threading.Thread(target=cut_after, args=(server, proxy, 10 + 15 * round_), daemon=True)
            cutter.start()
            res = archon("eval", str(pipeline), "--benchmark", str(data), "--concurrency", "8", "--json", db=via_proxy)
            cutter.join(timeout=10)
            assert proxy.cuts == 1, "the outage did not happen during the eval"
            assert res.returncode == 0, (res.returncode, res.stderr[-2000:])
            summary = json.loads(res.stdout)
            assert (summary["n"], summary["failed"]) == (ITEMS, 0), summary
            assert "Traceback" not in res.stderr and "[SQL" not in res.stderr and "parameters" not in res.stderr, res.stderr
            calls = json.loads(archon("calls", "--json", "--limit", "100000", db=direct).stdout)
            answered = [c for c in calls if not c["cached"] and c["status"] == "ok"]
            # Each request the server answered is in the store once: no row lost, none written twice.
            assert len(answered) == server.requests, (len(answered), server.requests)
            counts.append({"items_failed": summary["failed"], "calls_stored": len(answered), "server_requests": server.requests,
                           "outage_warned": "retrying" in res.stderr})
    print("outage rounds:", counts)
    assert all(c["outage_warned"] for c in counts), counts
