"""``archon search`` as processes: killed and resumed, and two workers sharing one PostgreSQL study."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import optuna
import pytest

from archon.testing.fake_server import FakeOpenAIServer
from stores.testing import postgres_unavailable, temporary_database
from tests.conftest import write
from tests.search.test_search_http import SPACE, reply


def _setup(tmp_path, srv, db):
    data = write(tmp_path, "items.jsonl", "".join(
        json.dumps({"id": f"q{i}", "question": f"What is {i} plus one?", "answer": str(i + 1)}) + "\n" for i in range(6)))
    space = write(tmp_path, "space.yaml", SPACE)
    env = {**os.environ, "ARCHON_BASE_URL": srv.base_url, "ARCHON_DB_URL": db}
    return [sys.executable, "-m", "archon", "search", str(space), "--benchmark", str(data), "--sampler", "random"], env


def _evaluated(db: str, name: str) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name=name, storage=db)
    return [t for t in study.get_trials() if t.state.name in ("COMPLETE", "PRUNED") and not t.user_attrs.get("skipped")]


def test_sigkill_then_the_same_command_finishes_the_study(tmp_path):
    db = f"sqlite:///{tmp_path / 's.db'}"
    with FakeOpenAIServer(reply=reply, delay=0.05) as srv:
        cmd, env = _setup(tmp_path, srv, db)
        cmd += ["--trials", "6", "--seed", "4", "--study", "killed"]
        proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
        seen = []
        for line in proc.stderr:  # progress: one line per finished trial
            seen.append(line)
            if sum(ln.startswith("trial ") for ln in seen) >= 2:
                break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        before = len(_evaluated(db, "killed"))
        assert 2 <= before < 6, "".join(seen)
        again = subprocess.run(cmd + ["--json"], capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stderr
    res = json.loads(again.stdout)
    assert len(_evaluated(db, "killed")) == 6 == len(res["leaderboard"])
    assert res["ran"] == 6 - before  # it continued the study rather than starting over


@pytest.mark.postgres
def test_two_workers_on_postgresql_share_one_study(tmp_path):
    if reason := postgres_unavailable():
        pytest.skip(reason)
    with temporary_database("postgresql") as db, FakeOpenAIServer(reply=reply, delay=0.2) as srv:
        cmd, env = _setup(tmp_path, srv, db)
        cmd += ["--trials", "10", "--study", "shared", "--json"]
        workers = [subprocess.Popen(cmd + ["--seed", str(i)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
                   for i in range(2)]
        outs = [w.communicate(timeout=600) for w in workers]
        for w, (_, err) in zip(workers, outs):
            assert w.returncode == 0, err
        ran = [json.loads(out)["ran"] for out, _ in outs]
        trials = _evaluated(db, "shared")
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers)) == 10
    assert sum(ran) == 10 and min(ran) >= 1, ran
