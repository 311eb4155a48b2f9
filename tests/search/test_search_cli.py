"""``archon search`` from the command line against a real server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from backends.fake_server import FakeOpenAIServer
from tests.conftest import write

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


def test_search_cli_writes_the_best_pipeline(tmp_path):
    with FakeOpenAIServer(reply=lambda prompt, k: "[1]" if "Ranking:" in prompt else "The answer is 1.") as srv:
        data = write(tmp_path, "items.jsonl", "".join(json.dumps({"id": f"q{i}", "question": f"What is {i} plus one?", "answer": "1"}) + "\n" for i in range(6)))
        space = write(tmp_path, "space.yaml", SPACE)
        env = {**os.environ, "ARCHON_BASE_URL": srv.base_url, "ARCHON_DB_URL": f"sqlite:///{tmp_path / 's.db'}"}
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
