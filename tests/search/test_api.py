"""``archon.search`` from Python on the test doubles: the typed result the CLI prints, the best pipeline
ready to run, a finished study shown again, and a caller's runtime, budget and warning filters left as
they were."""

from __future__ import annotations

import asyncio
import json
import warnings

import optuna
import yaml

import archon
from archon import Runtime, SearchResult
from backends.budget import Spend
from backends.doubles import FunctionBackend
from search.space import SearchSpace
from search.study import run_search
from tests.conftest import write

SPACE = """
name: api-demo
nodes:
  - id: draft
    op: generate
    model: {choices: [fake/weak, fake/strong]}
    samples: {choices: [1, 2]}
"""


def _answer(request, k: int) -> str:
    n = int(next(t for t in request.prompt_text().replace("?", " ").split() if t.isdigit()))
    return f"The answer is {n + 1 if request.model == 'strong' else n}."


def _items(tmp_path, n: int = 4):
    return write(tmp_path, "items.jsonl", "".join(
        json.dumps({"id": f"q{i}", "question": f"What is {i} plus one?", "answer": str(i + 1)}) + "\n" for i in range(n)))


def test_search_returns_the_result_the_cli_prints_and_the_best_pipeline_runs(tmp_path):
    fake = FunctionBackend(_answer)
    seen = []
    res = archon.search(write(tmp_path, "space.yaml", SPACE), str(_items(tmp_path)), trials=4, sampler="random", seed=1,
                        backends={"fake": fake}, progress=seen.append)
    assert isinstance(res, SearchResult) and res.study_name == "api-demo@items" and len(res.trials) == 4
    assert res.best["score"] == 1.0 and "fake/strong" in res.best["pipeline"] and res.ran == 4
    assert [t.state for t in seen] == ["complete"] * 4 and {t.trial for t in seen} == {r["trial"] for r in res.trials}
    assert "calls requested" in str(res) and res.to_dict()["leaderboard"] == res.trials
    assert archon.run(res.best_spec, "What is 41 plus one?", backends={"fake": fake}).output == "The answer is 42."
    shown = archon.show_study("api-demo@items")
    assert str(shown) == str(res) and shown.best == res.best


def test_run_search_leaves_the_callers_runtime_budget_and_warning_filters_alone(tmp_path):
    db = f"sqlite:///{tmp_path / 's.db'}"
    filters, verbosity = list(warnings.filters), optuna.logging.get_verbosity()

    async def go():
        async with Runtime(store=db, backends={"fake": FunctionBackend(_answer)}) as rt:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                res = await run_search(SearchSpace(yaml.safe_load(SPACE)), archon.evals.load_benchmark(str(_items(tmp_path))), rt,
                                       storage=db, trials=4, sampler="random", seed=0, max_calls=3)
            after = await archon.arun(_single(), "What is 1 plus one?", runtime=rt)  # not stopped by the search's budget
            return res, rt.budget, caught, after

    res, budget, caught, after = asyncio.run(go())
    assert res.stopped and "call budget" in res.stopped and res.calls_issued <= 3
    assert (budget.usd, budget.tokens, budget.calls, budget.base, budget.exhausted) == (None, None, None, Spend(), None)
    assert after.output == "The answer is 2." and after.calls == 1
    noise = [w for w in caught if issubclass(w.category, optuna.exceptions.ExperimentalWarning) or "Heartbeat" in str(w.message)]
    assert noise == []  # silenced around Optuna's own calls
    assert warnings.filters == filters and optuna.logging.get_verbosity() == verbosity


def _single():
    p = archon.Pipeline("single")
    p.add("a", "generate", model="fake/strong")
    return p
