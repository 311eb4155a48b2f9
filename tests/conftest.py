"""Shared fixtures. No test reaches the internet: the OpenAI presets' keys are unset here."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

# A test that forgot to fake a backend must fail, never spend money.
for _var in ("OPENAI_API_KEY", "TOGETHER_API_KEY", "GROQ_API_KEY", "OPENROUTER_API_KEY", "ANTHROPIC_API_KEY"):
    os.environ.pop(_var, None)


@pytest.fixture(autouse=True)
def _isolated_db(tmp_path, monkeypatch):
    """Every test gets its own default database, never ./archon.db."""
    monkeypatch.setenv("ARCHON_DB_URL", f"sqlite:///{tmp_path / 'archon.db'}")
    yield


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def search_over_fake_server(tmp_path: Path, space: str, items: list[dict], reply, *, trials: int, seed: int) -> tuple[dict, str]:
    """``archon search SPACE`` as a user runs it (a subprocess, ``--json``), its backend ``srv`` a fake
    OpenAI-compatible server on 127.0.0.1 answering ``reply(prompt, k)``: the result, after checking
    that the calls it reports reached the server and that the best pipeline it writes validates, and
    that pipeline's YAML."""
    import json
    import subprocess
    import sys

    from archon.testing.fake_server import FakeOpenAIServer

    data = write(tmp_path, "items.jsonl", "".join(json.dumps(item) + "\n" for item in items))
    best = tmp_path / "best.yaml"
    with FakeOpenAIServer(reply=reply) as srv:
        env = {**os.environ, "ARCHON_BASE_URL": srv.base_url, "ARCHON_DB_URL": f"sqlite:///{tmp_path / 's.db'}"}
        out = subprocess.run([sys.executable, "-m", "archon", "search", str(write(tmp_path, "space.yaml", space)), "--benchmark", str(data),
                              "--trials", str(trials), "--sampler", "random", "--seed", str(seed), "--out", str(best), "--json"],
                             capture_output=True, text=True, env=env, timeout=300)
        assert out.returncode == 0, out.stderr
        res = json.loads(out.stdout)
        assert len(res["leaderboard"]) == trials and res["calls_issued"] == srv.requests
        check = subprocess.run([sys.executable, "-m", "archon", "validate", str(best)], capture_output=True, text=True, env=env)
        assert check.returncode == 0, check.stderr
    return res, best.read_text()
