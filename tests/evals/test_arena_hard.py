"""Arena-Hard-Auto v0.1 from its judge config: the prompt byte for byte, the verdict parser on crafted
replies, both games against the baseline with a ">>" verdict counting 3 battles, the retry when a
reply has no verdict, and the Bradley-Terry win rate with its bootstrap interval on known data."""

from __future__ import annotations

import json
import math

import pytest
import yaml

import archon
from archon import Pipeline
from archon.evals import load_benchmark
from archon.evals.arena_hard import CONTINUE, WEIGHT, aggregate, battles, parse_verdict, user_prompt, win_rate
from archon.evals.judge_prompts import ARENA_HARD_SYSTEM, ARENA_HARD_TEMPLATE, ARENA_HARD_VERDICT
from backends.doubles import FunctionBackend
from tests.conftest import write


@pytest.mark.parametrize("name", ["arena_hard_v0.1_judge_config.yaml", "arena_hard_judge_config_archon.yaml"])
def test_prompt_template_and_pattern_are_the_configs(data_dir, name):
    config = yaml.safe_load((data_dir / name).read_text(encoding="utf-8"))
    assert (ARENA_HARD_SYSTEM, [ARENA_HARD_TEMPLATE], ARENA_HARD_VERDICT) == \
        (config["system_prompt"], config["prompt_template"], config["regex_pattern"])
    assert config["pairwise"] and config["number_of_judgment_attempts"] == 2


@pytest.mark.parametrize("reply, verdict", [
    ("My final verdict is tie: [[A=B]]", ("A=B", False)),
    ("Assistant B is significantly better: [[B>>A]]", ("B>>A", False)),
    ("[[A>B]] ... so again: [[A>B]]", ("A>B", False)),        # the same label twice is still one verdict
    ("first [[A>B]], on reflection [[B>A]]", (None, False)),  # two different labels: no verdict, no retry
    ("Both are fine. [[C]]", (None, True)),                   # MT-Bench's label is not Arena-Hard's: ask again
    ("no verdict at all", (None, True)),
])
def test_verdict_parser(reply, verdict):
    assert parse_verdict(reply) == verdict


def test_both_games_give_battles_with_weight_3_for_a_clear_verdict():
    assert WEIGHT == 3
    assert battles(["B>>A", "A>>B"]) == ["win"] * 6      # ours is B in game 1, A in game 2
    assert battles(["A>B", "B>A"]) == ["loss", "loss"]
    assert battles(["A=B", "A>>B"]) == ["tie"] + ["win"] * 3
    assert battles(["A>>B", None]) == ["loss"] * 3       # a game without a verdict is no battle
    assert battles([None, "A<B"]) == []


def test_win_rate_on_a_known_set():
    outcomes = ["win"] * 6 + ["loss"] * 2 + ["tie"] * 2
    result = win_rate(outcomes)
    assert result["win_rate"] == pytest.approx(0.7) and result["win_rate_pct"] == 70.0  # (6 + 2/2) / 10
    assert result["elo"] == pytest.approx(1000 + 400 * math.log10(0.7 / 0.3), abs=1e-3)
    assert result["ci_low"] < 0.7 < result["ci_high"] and 0 <= result["ci_low"] and result["ci_high"] <= 1
    assert win_rate(outcomes) == result  # seeded: the same interval every time
    assert win_rate(["win"] * 5)["win_rate"] == pytest.approx(1.0) and win_rate([])["win_rate"] is None
    even = win_rate(["win", "loss"] * 50)
    assert even["win_rate"] == pytest.approx(0.5) and even["ci_low"] < 0.5 < even["ci_high"]


@pytest.mark.filterwarnings("ignore::FutureWarning")  # penalty=None, as arena-hard writes it
def test_the_closed_form_is_arena_hards_logistic_regression():
    """compute_mle_elo as arena-hard writes it: battles doubled, a tie a win in the first copy and a
    loss in the second, an unpenalised logistic regression without intercept, baseline at 1000."""
    sklearn = pytest.importorskip("sklearn.linear_model")
    np = pytest.importorskip("numpy")
    outcomes = ["win"] * 7 + ["loss"] * 4 + ["tie"] * 3
    n = len(outcomes)
    # model_a is the baseline (index 0), model_b the pipeline (index 1); Y = 1 when model_a wins
    X = np.zeros([2 * n, 2])
    X[:, 0], X[:, 1] = math.log(10), -math.log(10)
    Y = np.zeros(2 * n)
    for i, o in enumerate(outcomes * 2):
        Y[i] = 1.0 if o == "loss" or (o == "tie" and i < n) else 0.0
    lr = sklearn.LogisticRegression(fit_intercept=False, penalty=None, tol=1e-8).fit(X, Y)
    elo = 400 * lr.coef_[0] + 1000
    elo += 1000 - elo[0]
    expected = 1 / (1 + 10 ** ((elo[0] - elo[1]) / 400))
    assert win_rate(outcomes)["win_rate"] == pytest.approx(expected, abs=1e-4)


def _judge_backend(prefer: str, *, first_without_verdict: bool = False) -> FunctionBackend:
    def judge(req, k):
        user = req.messages[1]["content"]
        if first_without_verdict and len(req.messages) == 2:
            return "Let me think about it."
        a = user.split("<|The Start of Assistant A's Answer|>")[1].split("<|The End of Assistant A's Answer|>")[0]
        return "My final verdict: [[A>>B]]" if prefer in a else "My final verdict: [[B>>A]]"

    return FunctionBackend(judge, name="judge")


def _arena_files(tmp_path, n: int = 4):
    qs = [{"question_id": f"q{i}", "category": "arena-hard-v0.1", "cluster": "c", "turns": [{"content": f"Question {i}?"}]}
          for i in range(n)]
    base = [{"question_id": f"q{i}", "model_id": "gpt-4-0314", "choices": [{"index": 0, "turns": [{"content": f"BASE {i}"}]}]}
            for i in range(n)]
    write(tmp_path, "arena_hard_v0.1_baseline_gpt-4-0314_500.jsonl", "".join(json.dumps(b) + "\n" for b in base))
    return write(tmp_path, "arena_hard_v0.1_questions_500.jsonl", "".join(json.dumps(q) + "\n" for q in qs))


def _pipelines(answer):
    p = Pipeline("one")
    p.add("answer", "generate", model="fake/m")
    j = Pipeline("judge")
    j.add("verdict", "generate", model="judge/j", temperature=0.0)
    return p, j, FunctionBackend(answer)


def test_judged_in_both_orders_against_the_baseline(tmp_path):
    bench = load_benchmark(str(_arena_files(tmp_path)))
    assert bench.scorer == "arena-hard" and bench.items[0].data["baseline"] == "BASE 0" and "baseline" in bench.hidden
    assert bench.query(bench.items[0]).data == {}
    p, j, model = _pipelines(lambda req, k: "OURS: " + req.messages[-1]["content"])
    judge = _judge_backend("OURS")
    report = archon.evaluate(p, bench, judge=j, backends={"fake": model, "judge": judge})
    assert report.ok and report.score == 1.0 and len(judge.requests) == 8
    game1, game2 = judge.requests[0], judge.requests[1]
    assert game1.messages[0] == {"role": "system", "content": ARENA_HARD_SYSTEM}
    assert {game1.messages[1]["content"], game2.messages[1]["content"]} == \
        {user_prompt("Question 0?", "BASE 0", "OURS: Question 0?"), user_prompt("Question 0?", "OURS: Question 0?", "BASE 0")}
    assert report.results[0]["raw"] == {"games": ["B>>A", "A>>B"]}
    assert report.official is not None and report.official["win_rate"] == 1.0 and report.official["battles"] == 4 * 2 * WEIGHT


def test_a_reply_without_verdict_is_asked_to_continue(tmp_path):
    p, j, model = _pipelines(lambda req, k: "weak answer")
    judge = _judge_backend("BASE", first_without_verdict=True)
    report = archon.evaluate(p, str(_arena_files(tmp_path, 1)), judge=j, backends={"fake": model, "judge": judge})
    assert report.ok and report.score == 0.0 and len(judge.requests) == 4
    retry = next(r for r in judge.requests if len(r.messages) == 4)
    assert [m["role"] for m in retry.messages] == ["system", "user", "assistant", "user"]
    assert retry.messages[2]["content"] == "Let me think about it." and retry.messages[3]["content"] == CONTINUE
    assert report.official is not None and report.official["win_rate"] == 0.0 and report.official["losses"] == 6


def test_aggregate_reads_the_games_of_ok_items_only():
    results = [{"status": "ok", "raw": {"games": ["B>A", "A>B"]}}, {"status": "ok", "raw": {"games": ["A=B", "A=B"]}},
               {"status": "ok", "raw": {"games": ["A>>B", "B>>A"]}}, {"status": "failed", "raw": None}]
    out = aggregate(results)
    assert (out["wins"], out["ties"], out["losses"], out["battles"]) == (2, 2, 6, 10)
    assert out["win_rate"] == pytest.approx(0.3)


def test_missing_baseline_file_is_named(tmp_path):
    path = _arena_files(tmp_path)
    (tmp_path / "arena_hard_v0.1_baseline_gpt-4-0314_500.jsonl").unlink()
    with pytest.raises(archon.exceptions.SpecError, match="arena_hard_v0.1_baseline_gpt-4-0314_500.jsonl"):
        load_benchmark(str(path))
