"""``archon.evaluate`` and ``archon.compare`` from Python, on the test doubles: the same report the CLI
prints, inputs given as names, paths or objects, progress, resume, and a runtime left to its owner."""

from __future__ import annotations

import asyncio
import json

import pytest

import archon
from archon import EvalComparison, EvalReport, Pipeline, Runtime, UserError
from archon.evals.datasets import load_benchmark
from backends.doubles import FunctionBackend
from tests.conftest import write


def _items(tmp_path, n: int = 6):
    return write(tmp_path, "items.jsonl", "".join(
        json.dumps({"id": f"q{i}", "question": f"What is {i} plus one?", "answer": str(i + 1)}) + "\n" for i in range(n)))


def _answer(request, k: int) -> str:
    """Strong knows every answer; weak only the even questions' answers."""
    n = int(next(t for t in request.prompt_text().replace("?", " ").split() if t.isdigit()))
    return f"The answer is {n + 1 if request.model == 'strong' or n % 2 == 0 else n}."


def _one(model: str) -> Pipeline:
    p = Pipeline(f"one-{model}")
    p.add("answer", "generate", model=f"fake/{model}")
    return p


def test_evaluate_returns_the_report_the_cli_prints(tmp_path):
    fake = FunctionBackend(_answer)
    seen = []
    report = archon.evaluate(_one("weak"), str(_items(tmp_path)), backends={"fake": fake}, progress=seen.append)
    assert isinstance(report, EvalReport) and report.ok
    assert (report.n, report.failed, report.score, report.calls) == (6, 0, 0.5, 6)
    assert report.ci_low < 0.5 < report.ci_high and len(report.results) == 6 and report.ran == 6
    data = report.to_dict()
    for key in ("score", "ci_low", "ci_high", "n", "failed", "cost_usd", "prompt_tokens", "completion_tokens", "calls",
                "latency_p50_ms", "latency_p95_ms", "failures", "warnings", "eval_id"):
        assert key in data, key
    assert "results" not in data and json.loads(json.dumps(data)) == data
    assert "one-weak on items: score 50.0% (95% CI" in str(report)
    assert [p.done for p in seen] == list(range(7)) and seen[-1].total == 6 and seen[-1].score == 0.5
    # the same evaluation again resumes: nothing runs, the same id and score
    again = archon.evaluate(_one("weak"), load_benchmark(str(_items(tmp_path))), backends={"fake": fake})
    assert again.ran == 0 and again.eval_id == report.eval_id and again.score == 0.5 and len(fake.requests) == 6


def test_compare_pairs_two_pipelines_on_the_same_items(tmp_path):
    a = write(tmp_path, "weak.yaml", "backends: {fake: {base_url: 'http://127.0.0.1:9/v1'}}\n"
                                     "nodes:\n  - {id: answer, op: generate, model: fake/weak}\n")
    res = archon.compare(a, _one("strong"), _items(tmp_path), limit=4, backends={"fake": FunctionBackend(_answer)})
    assert isinstance(res, EvalComparison) and res.ok
    assert (res.a.n, res.b.n, res.a.score, res.b.score) == (4, 4, 0.5, 1.0)
    c = res.comparison
    assert (c.n, c.difference, c.b_better, c.a_better, c.ties) == (4, 0.5, 2, 0, 2)
    assert set(res.to_dict()) == {"a", "b", "comparison"}
    text = str(res)
    assert text.startswith(str(res.a)) and "one-strong - weak: +50.0%" in text and "on 4 paired items" in text


def test_failed_items_make_the_report_not_ok(tmp_path):
    def flaky(request, k):
        if "3 plus" in request.prompt_text():
            raise archon.BackendError("the model is down")
        return _answer(request, k)

    report = archon.evaluate(_one("strong"), _items(tmp_path), backends={"fake": FunctionBackend(flaky)})
    assert not report.ok and report.failed == 1 and report.n == 5 and report.failures[0]["item_id"] == "q3"


def test_a_given_runtime_is_checked_used_and_left_open(tmp_path):
    async def go():
        async with Runtime(store=str(tmp_path / "r.db"), backends={"fake": FunctionBackend(_answer)}) as rt:
            first = await archon.aevaluate(_one("strong"), _items(tmp_path), runtime=rt)
            second = await archon.aevaluate(_one("weak"), _items(tmp_path), runtime=rt)  # still open
            with pytest.raises(archon.ConfigError, match="unknown backend 'nowhere'"):  # checked before any item runs
                await archon.aevaluate(_nowhere(), _items(tmp_path), runtime=rt)
            return first, second

    first, second = asyncio.run(go())
    assert first.score == 1.0 and second.score == 0.5


def _nowhere():
    from archon.spec import parse_pipeline

    return parse_pipeline({"name": "nowhere", "nodes": [{"id": "a", "op": "generate", "model": "nowhere/m"}]}, check_backends=False)


@pytest.mark.parametrize("kw, message", [({"style": "prose"}, "style must be auto, chat or completion"),
                                         ({"benchmark": 42}, "benchmark: give a Benchmark, a built-in name or a file path")])
def test_bad_arguments_are_user_errors(tmp_path, kw, message):
    args = {"benchmark": _items(tmp_path), **kw}
    with pytest.raises(UserError, match=message):
        archon.evaluate(_one("weak"), args.pop("benchmark"), backends={"fake": FunctionBackend(_answer)}, **args)
