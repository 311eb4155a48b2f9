"""AlpacaEval's length-controlled win rate against the alpaca-eval package's own GLM (when installed) on
synthetic annotations, the weighted preference from a judge that hands back log-probabilities, and
``archon eval --benchmark alpaca-eval --judge ...`` end to end against a local server. Every data
file here, ``df_gamed.csv`` included, is made up by the test."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import random
import subprocess
import sys
from typing import Any

import pytest

import archon
from archon import Pipeline, registry
from archon.evals import load_benchmark
from archon.evals.alpacaeval import is_switched
from archon.evals.alpacaeval_lc import length_controlled_win_rate, read_gamed
from archon.testing.fake_server import FakeOpenAIServer
from archon.types import Candidate, Query
from backends.doubles import FunctionBackend
from operators.base import OpConfig, Operator
from tests.conftest import write





def gamed_csv(path, n: int, seed: int = 7):
    """A df_gamed.csv of AlpacaEval's shape: two gamed baselines' rows over n instructions."""
    rng = random.Random(seed)
    difficulty = [rng.uniform(-1.5, 1.5) for _ in range(n)]
    lines = ["model,index,instruction_difficulty,not_gamed_baseline,std_delta_len,preference"]
    for model, sign in (("gamed_concise", 1), ("gamed_verbose", -1)):
        for i in range(n):
            lines.append(f"{model},{i},{difficulty[i]!r},False,{sign * rng.uniform(0.2, 2.0)!r},{rng.uniform(0.05, 0.95)!r}")
    path.write_text("\n".join(lines) + "\n")
    return path


def annotations(n: int, seed: int = 3) -> tuple[list[float | None], list[int], list[int]]:
    """Preferences that favour the longer answer, so length control must pull the win rate in."""
    rng = random.Random(seed)
    prefs: list[float | None] = []
    len_1, len_2 = [], []
    for i in range(n):
        ref, ours = rng.randint(200, 1200), rng.randint(100, 2500)
        p = 1 + 1 / (1 + math.exp(-(ours - ref) / 400 + rng.gauss(0, 0.3)))
        prefs.append(None if i == 5 else p)
        len_1.append(ref)
        len_2.append(ours)
    return prefs, len_1, len_2


def test_length_control_pulls_a_length_driven_win_rate_towards_half(tmp_path):
    pytest.importorskip("sklearn")
    n = 60
    gamed = read_gamed(gamed_csv(tmp_path / "df_gamed.csv", n))
    prefs, len_1, len_2 = annotations(n)
    out = length_controlled_win_rate(prefs, len_1, len_2, list(range(n)), gamed)
    raw = 100 * sum(p - 1 for p in prefs if p is not None) / (n - 1)
    assert 0 < out["length_controlled_winrate"] < 100 and out["lc_standard_error"] > 0
    assert abs(out["length_controlled_winrate"] - 50) < abs(raw - 50)
    assert out["glm_weights"]["np.tanh(std_delta_len)"] < 0  # a longer answer (reference minus ours < 0) wins more
    assert length_controlled_win_rate(prefs, len_1, len_2, list(range(n)), gamed) == out  # seeded: the same every time


def test_length_control_equals_the_packages(tmp_path, monkeypatch):
    """alpaca-eval's get_length_controlled_winrate on the same annotations, its download of
    df_gamed.csv pointed at the synthetic file."""
    pd = pytest.importorskip("pandas")
    glm = pytest.importorskip("alpaca_eval.metrics.glm_winrate")
    n = 60
    path = gamed_csv(tmp_path / "df_gamed.csv", n)
    monkeypatch.setattr(glm, "hf_hub_download", lambda **kw: str(path))
    prefs, len_1, len_2 = annotations(n)
    df = pd.DataFrame({"preference": [math.nan if p is None else p for p in prefs], "output_1": ["r" * k for k in len_1],
                       "output_2": ["o" * k for k in len_2], "generator_1": "ref", "generator_2": "ours", "annotator": "synthetic"})
    try:
        theirs = glm.get_length_controlled_winrate(df, save_weights_dir=None, is_warn_extreme_changes=False)
    finally:
        import sklearn

        sklearn.set_config(enable_metadata_routing=False)  # the package turns it on for the whole process
    ours = length_controlled_win_rate(prefs, len_1, len_2, list(range(n)), read_gamed(path))
    assert ours["length_controlled_winrate"] == pytest.approx(theirs["length_controlled_winrate"], abs=1e-6)
    assert ours["lc_standard_error"] == pytest.approx(theirs["lc_standard_error"], abs=1e-6)


# ---- a judge that hands back the first token's log-probabilities ----------------------------------------

class LogprobJudge(Operator[OpConfig]):
    """Prefers the pipeline's answer to item i with probability 0.1 + 0.08 i, as first-token logprobs."""

    kind = "logprob_judge"

    async def __call__(self, inputs: list[Candidate], query: Query, ctx: Any) -> list[Candidate]:
        user = query.messages[-1]["content"]
        i = int(user.split("Write line ")[1].split(".")[0])
        p = 0.1 + 0.08 * i
        ours_first = user.index("OURS") < user.index("REF ")
        first, second = (p, 1 - p) if ours_first else (1 - p, p)
        top = [{"token": "m", "logprob": math.log(first)}, {"token": "M", "logprob": math.log(second)}]
        return [Candidate(text="m" if first > second else "M", node=self.node_id, meta={"top_logprobs": top})]


def _records(n: int) -> list[dict]:
    return [{"instruction": f"Write line {i}.", "output": f"REF {i} " + "y" * (7 * i % 50), "generator": "ref_model",
             "dataset": "synthetic"} for i in range(n)]


def test_weighted_preferences_from_logprobs_give_the_mean_win_rate(tmp_path):
    data = tmp_path / "alpaca_eval_gpt4_baseline.json"
    data.write_text(json.dumps(_records(10)))
    gamed_csv(tmp_path / "df_gamed.csv", 10)
    p = Pipeline("one")
    p.add("answer", "generate", model="fake/m")
    j = Pipeline("judge")
    j.add("verdict", "logprob_judge")
    model = FunctionBackend(lambda req, k: "OURS " + "z" * (3 * len(req.messages[-1]["content"]) % 40))
    with registry.OPERATORS.registered(LogprobJudge.kind, LogprobJudge):
        report = archon.evaluate(p, load_benchmark(str(data)), judge=j, backends={"fake": model})
    wins = [0.1 + 0.08 * i for i in range(10)]
    assert [r["raw"]["preference"] for r in report.results] == pytest.approx([1 + w for w in wins])
    assert [r["raw"]["switched"] for r in report.results] == [is_switched(f"Write line {i}.") for i in range(10)]
    mean = sum(wins) / 10
    sem = math.sqrt(sum((w - mean) ** 2 for w in wins) / 9) / math.sqrt(10)
    official = report.official
    assert official is not None and official["preferences"] == {"logprobs": 10}
    assert official["win_rate"] == pytest.approx(100 * mean, abs=1e-4) and official["standard_error"] == pytest.approx(100 * sem, abs=1e-4)
    assert report.score == pytest.approx(mean)
    if importlib.util.find_spec("sklearn") is None:
        assert official["length_controlled_winrate"] is None and "archon-llm[alpacaeval]" in official["lc_note"]
    else:
        assert official["length_controlled_winrate"] is not None and 0 < official["length_controlled_winrate"] < 100


# ---- archon eval, end to end ---------------------------------------------------------------------------

# Registers the scorer first when the installed metadata predates its entry point, then runs the CLI.
PIPELINE = """
backends:
  srv: {base_url: "${ARCHON_BASE_URL}", max_retries: 0}
nodes:
  - {id: answer, op: generate, model: srv/m}
"""
JUDGE = """
backends:
  srv: {base_url: "${ARCHON_BASE_URL}", max_retries: 0}
nodes:
  - {id: verdict, op: generate, model: srv/judge, temperature: 0.0, max_tokens: 1}
"""


def archon_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "archon", *args], capture_output=True, text=True, env={**os.environ, **env}, timeout=120)


def _reply(prompt: str, k: int) -> str:
    if "## Best Model Identifier" in prompt:  # the judge: the pipeline's answer wins on even lines only
        ours_first = prompt.index("OURS") < prompt.index("REF ")
        i = int(prompt.split("Write line ")[1].split(".")[0])
        return "m" if ours_first == (i % 2 == 0) else "M"
    return "OURS: " + prompt[-20:]


def test_archon_eval_alpaca_eval_with_a_judge(tmp_path):
    data = tmp_path / "alpaca_eval_gpt4_baseline.json"
    data.write_text(json.dumps(_records(6)))
    env = {"ARCHON_DB_URL": f"sqlite:///{tmp_path / 'e.db'}", "ARCHON_OFFLINE": "1", "XDG_CACHE_HOME": str(tmp_path / "cache")}
    with FakeOpenAIServer(reply=_reply) as srv:
        env["ARCHON_BASE_URL"] = srv.base_url
        res = archon_cli("eval", str(write(tmp_path, "p.yaml", PIPELINE)), "--benchmark", str(data),
                         "--judge", str(write(tmp_path, "judge.yaml", JUDGE)), "--json", env=env)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["n"] == 6 and out["score"] == pytest.approx(0.5)
    assert out["official"]["win_rate"] == 50.0 and out["official"]["n_total"] == 6 and out["official"]["preferences"] == {"text": 6}
    assert "df_gamed.csv" in out["official"]["lc_note"]


def test_archon_eval_without_the_data_exits_2_naming_the_file(tmp_path):
    env = {"ARCHON_DB_URL": f"sqlite:///{tmp_path / 'e.db'}", "ARCHON_OFFLINE": "1", "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "ARCHON_BASE_URL": "http://127.0.0.1:9/v1", "ARCHON_DATA_DIR": str(tmp_path)}
    res = archon_cli("eval", str(write(tmp_path, "p.yaml", PIPELINE)), "--benchmark", "alpaca-eval",
                     "--judge", str(write(tmp_path, "judge.yaml", JUDGE)), env=env)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "alpaca_eval_gpt4_baseline.json" in res.stderr and "non-commercial" in res.stderr and str(tmp_path) in res.stderr
