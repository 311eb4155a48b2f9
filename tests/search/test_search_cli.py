"""``archon search`` from the command line against a real server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from archon.testing.fake_server import FakeOpenAIServer
from tests.conftest import EXAMPLES, write

SPACE = """
name: cli-demo
backends:
  srv: {base_url: "${ARCHON_BASE_URL}"}
nodes:
  - id: draft
    op: generate
    model: {choices: [srv/weak, srv/strong]}
    samples: {choices: [1, 2]}
  - id: top
    op: rank
    optional: true
    inputs: [draft]
    model: srv/weak
    top_k: 1
"""


def _reply(prompt: str, k: int) -> str:
    return "[1]" if "Ranking:" in prompt else "The answer is 1."


def _setup(tmp_path, srv):
    """Six items whose answer is 1, the space, and the environment pointing at ``srv`` and a fresh store."""
    data = write(tmp_path, "items.jsonl", "".join(json.dumps({"id": f"q{i}", "question": f"What is {i} plus one?", "answer": "1"}) + "\n" for i in range(6)))
    space = write(tmp_path, "space.yaml", SPACE)
    return data, space, {**os.environ, "ARCHON_BASE_URL": srv.base_url, "ARCHON_DB_URL": f"sqlite:///{tmp_path / 's.db'}"}


def test_search_cli_writes_the_best_pipeline(tmp_path):
    with FakeOpenAIServer(reply=_reply) as srv:
        data, space, env = _setup(tmp_path, srv)
        out = subprocess.run([sys.executable, "-m", "archon", "search", str(space), "--benchmark", str(data), "--trials", "4",
                              "--sampler", "random", "--seed", "1", "--out", str(tmp_path / "best.yaml"), "--json"],
                             capture_output=True, text=True, env=env, timeout=120)
        assert out.returncode == 0, out.stderr
        res = json.loads(out.stdout)
        assert len(res["leaderboard"]) == 4 and res["best"]["score"] == 1.0
        assert res["calls_issued"] <= res["calls_requested"] and res["calls_issued"] == srv.requests
        check = subprocess.run([sys.executable, "-m", "archon", "validate", str(tmp_path / "best.yaml")], capture_output=True, text=True, env=env)
        assert check.returncode == 0, check.stderr
        again = subprocess.run([sys.executable, "-m", "archon", "search", str(space), "--benchmark", str(data), "--trials", "4"],
                               capture_output=True, text=True, env=env, timeout=120)
        assert again.returncode == 0 and "calls requested" in again.stdout


def test_show_prints_a_finished_study_and_plots_it(tmp_path):
    with FakeOpenAIServer(reply=_reply) as srv:
        data, space, env = _setup(tmp_path, srv)
        run = subprocess.run([sys.executable, "-m", "archon", "search", str(space), "--benchmark", str(data), "--trials", "3",
                              "--sampler", "random", "--seed", "2", "--study", "s1"], capture_output=True, text=True, env=env, timeout=120)
        assert run.returncode == 0, run.stderr
        requests = srv.requests
        shown = subprocess.run([sys.executable, "-m", "archon", "search", "--show", "--study", "s1", "--plot", str(tmp_path / "p.png")],
                               capture_output=True, text=True, env=env, timeout=120)
        assert shown.returncode == 0, shown.stderr
        assert srv.requests == requests  # showing runs nothing
    assert shown.stdout == run.stdout
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    missing = subprocess.run([sys.executable, "-m", "archon", "search", "--show", "--study", "s2"], capture_output=True, text=True, env=env)
    assert missing.returncode == 2 and "no study 's2'" in missing.stderr and "s1" in missing.stderr and "Traceback" not in missing.stderr


@pytest.mark.local_model
def test_quickstart_search_runs_on_the_embedded_model(tmp_path):
    """The README's quick-start search, on fewer items and trials so CI stays quick."""
    pytest.importorskip("llama_cpp", reason="needs the 'local' extra: pip install 'archon-llm[local]'")
    env = {**os.environ, "ARCHON_DB_URL": f"sqlite:///{tmp_path / 'q.db'}"}
    cmd = [sys.executable, "-m", "archon", "search", str(EXAMPLES / "spaces" / "starter.yaml"), "--benchmark", "starter",
           "--limit", "2", "--trials", "2", "--seed", "0", "--baseline", str(EXAMPLES / "single-call.yaml"),
           "--out", str(tmp_path / "best.yaml"), "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert len(res["leaderboard"]) == 2 and res["baseline"]["n"] == 2 and res["best"]["final_score"] is not None
    run = subprocess.run([sys.executable, "-m", "archon", "run", str(tmp_path / "best.yaml"), "--input", "def add(a, b):"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0 and run.stdout.strip(), run.stderr
