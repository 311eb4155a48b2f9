"""``archon eval --pass-at / --coverage / --samples-curve / --plot`` end to end against a real server on
127.0.0.1: the JSON keys, the text lines, the plot, and bad flags refused with exit code 2."""

from __future__ import annotations

import json

import pytest

from archon.testing.fake_server import FakeOpenAIServer
from tests.conftest import write
from tests.evals.test_eval_cli import archon, items

PIPELINE = """
name: sample-vote
backends:
  srv: {base_url: "${ARCHON_BASE_URL}", max_retries: 0}
nodes:
  - {id: draft, op: generate, model: srv/m, samples: 10, temperature: 0.8}
  - {id: answer, op: vote, inputs: [draft]}
"""


def reply(prompt: str, k: int) -> str:
    # Right on even questions for samples 0-2 only (coverage 50%); the wrong "101" outvotes them (score 0).
    n = next(int(t) for t in prompt.replace("?", " ").split() if t.isdigit())
    return f"The answer is {n + 1 if n % 2 == 0 and k < 3 else 100 + k % 2}."


@pytest.fixture
def env(tmp_path):
    with FakeOpenAIServer(reply=reply) as srv:
        yield {"ARCHON_BASE_URL": srv.base_url, "ARCHON_DB_URL": f"sqlite:///{tmp_path / 'p.db'}"}


def test_pass_at_json_text_and_plot(env, tmp_path):
    pipe, data = write(tmp_path, "p.yaml", PIPELINE), items(tmp_path, 6)
    out = archon("eval", str(pipe), "-b", str(data), "--pass-at", "1,5,10", "--json", env=env)
    assert out.returncode == 0, out.stderr
    rep = json.loads(out.stdout)
    assert rep["pass_at_node"] == "draft" and set(rep["pass_at"]) == {"1", "5", "10"}
    assert rep["coverage"] == 0.5 and rep["pass_at"]["1"] == pytest.approx(0.5 * 0.3)
    assert rep["pass_at"]["10"] == 0.5 and rep["score"] == 0.0 and rep["selection_gap"] == 0.5
    assert rep["pass_at_samples"] == {"min": 10, "max": 10, "items": 6}
    png = tmp_path / "curve.png"
    text = archon("eval", str(pipe), "-b", str(data), "--pass-at", "1,5,10", "--samples-curve", "1,2,4", "--plot", str(png), env=env)
    assert text.returncode == 0, text.stderr
    assert "node 'draft' (10 candidates per item, 6 items): coverage 50.0%, selection gap +50.0 points" in text.stdout
    assert "pass@1 15.0%, pass@5 45.8%, pass@10 50.0%" in text.stdout
    assert "samples curve of node 'draft':" in text.stdout
    assert "   1 samples: score 50.0%, coverage 50.0%, calls 6 (6 cached)" in text.stdout  # one sample: no vote to lose
    assert png.read_bytes()[:4] == b"\x89PNG" and "samples curve plotted to" in text.stderr


BAD = [
    (["--pass-at", "0,5"], "--pass-at: give numbers of at least 1"),
    (["--pass-at", "one"], "--pass-at takes whole numbers"),
    (["--samples-curve", "1,2000"], "at most 1024"),
    (["--plot", "x.png"], "--plot draws the samples curve"),
    (["--pass-at", "1", "--pass-at-node", "nope"], "no node 'nope' (its nodes: draft, answer)"),
    (["--samples-curve", "1,2", "--pass-at-node", "answer"], "has no 'samples' setting"),
    (["--pass-at-node", "draft"], "give one of them too"),
]


@pytest.mark.parametrize(("flags", "message"), BAD)
def test_bad_flags_exit_2_before_anything_runs(tmp_path, monkeypatch, capsys, flags, message):
    from archon.cli import main

    monkeypatch.setenv("ARCHON_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens: no call may be made
    argv = ["archon", "eval", str(write(tmp_path, "p.yaml", PIPELINE)), "-b", str(items(tmp_path, 2)), *flags]
    monkeypatch.setattr("sys.argv", argv)
    with pytest.raises(SystemExit) as exit_:
        main()
    stderr = capsys.readouterr().err
    assert exit_.value.code == 2 and message in stderr, stderr
    assert "Traceback" not in stderr
