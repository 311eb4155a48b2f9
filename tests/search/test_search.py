"""Search spaces and the search loop on the test doubles (a real Optuna study in SQLite)."""

from __future__ import annotations

import asyncio
import json

import pytest
import yaml

from archon import Runtime, SpecError
from archon.evals.datasets import load_benchmark
from backends.doubles import FunctionBackend
from search.space import SearchSpace, space_json_schema
from search.study import run_search, subset_sizes
from tests.conftest import write

SPACE = """
name: demo
nodes:
  - id: draft
    op: generate
    model: {choices: [fake/weak, fake/strong]}
    samples: {choices: [1, 3]}
    temperature: {low: 0.2, high: 1.0}
  - id: critic
    op: critique
    optional: true
    inputs: [draft]
    model: fake/weak
  - id: answer
    op: fuse
    repeat: {choices: [1, 2]}
    inputs: [critic]
    model: fake/weak
"""


def reply(req, k):
    """The strong model knows the answer; the weak one is off by one; fusers repeat the first number."""
    text = req.prompt_text()
    nums = [int(t.strip("?.")) for t in text.split() if t.strip("?.").isdigit()]
    if "Candidate responses" in text or "Strengths" in text:
        first = text.split("[1]")[1] if "[1]" in text else text
        return " ".join(t for t in first.split() if t.strip(".").isdigit())[:12] or "0"
    return f"The answer is {nums[0] + 1 if req.model == 'strong' else nums[0]}."


def test_space_samples_valid_pipelines_and_names_parameters():
    space = SearchSpace(yaml.safe_load(SPACE))
    assert space.params() == ["draft.model", "draft.samples", "draft.temperature", "critic.enabled", "answer.repeat"]

    class Pick:
        def __init__(self, **v):
            self.v = v

        def suggest_categorical(self, name, choices):
            return self.v.get(name, choices[0])

        def suggest_int(self, name, low, high, step=1, log=False):
            return self.v.get(name, low)

        def suggest_float(self, name, low, high, step=None, log=False):
            return self.v.get(name, high)

    spec = space.sample(Pick(**{"critic.enabled": False, "answer.repeat": 2}))
    assert [(n.id, n.inputs) for n in spec.nodes] == [("draft", ()), ("answer_1", ("draft",)), ("answer_2", ("answer_1",))]
    assert spec.output == "answer_2" and spec.node("draft").config.temperature == 1.0


@pytest.mark.parametrize(
    "change, message",
    [
        (("samples: {choices: [1, 3]}", "samples: {choices: []}"), "non-empty list"),
        (("    optional: true\n    inputs: [draft]\n", "    optional: true\n"), "needs 'inputs'"),
        (("samples: {choices: [1, 3]}", "sampels: {choices: [1, 3]}"), "Did you mean 'samples'?"),
    ],
)
def test_bad_spaces_are_rejected(change, message):
    with pytest.raises(SpecError, match=message):
        SearchSpace(yaml.safe_load(SPACE.replace(*change)))


def test_score_and_weighted_vote_settings_are_searchable():
    space = SearchSpace(yaml.safe_load("""
name: best-of-n
nodes:
  - {id: draft, op: generate, model: fake/m, samples: {choices: [4, 8]}, logprobs: true}
  - id: scored
    op: score
    inputs: [draft]
    model: {choices: [fake/judge, fake/prm]}
    method: {choices: [judge, yes_prob, process]}
    top_k: {choices: [1, 4]}
  - {id: vote, op: vote, inputs: [scored], weight: {choices: [none, score, logprob, perplexity]}}
"""))
    assert space.params() == ["draft.samples", "scored.model", "scored.method", "scored.top_k", "vote.weight"]

    class Last:
        def suggest_categorical(self, name, choices):
            return choices[-1]

    spec = space.sample(Last())
    scored, vote = spec.node("scored").config, spec.node("vote").config
    assert (scored.model, scored.method, scored.top_k, vote.weight) == ("fake/prm", "process", 4, "perplexity")
    assert space.sample_first().node("scored").config.method == "judge"


def test_space_schema_allows_choices():
    schema = space_json_schema()
    assert "Choice" in schema["$defs"] and "optional" in schema["$defs"]["GenerateNode"]["properties"]
    json.dumps(schema)


def test_subset_sizes():
    assert subset_sizes(50) == [16, 33, 50]
    assert subset_sizes(4) == [4]


def test_search_finds_the_strong_model_and_never_pays_twice(tmp_path):
    data = write(tmp_path, "items.jsonl", "".join(
        json.dumps({"id": f"q{i}", "question": f"What is {i} plus one?", "answer": str(i + 1)}) + "\n" for i in range(12)))
    db = f"sqlite:///{tmp_path / 's.db'}"
    be = FunctionBackend(reply)

    async def go(trials):
        rt = Runtime(store=db, backends={"fake": be})
        try:
            return await run_search(SearchSpace(yaml.safe_load(SPACE)), load_benchmark(str(data)), rt, storage=db,
                                    trials=trials, sampler="random", seed=3)
        finally:
            await rt.aclose()

    res = asyncio.run(go(12))
    assert len(res.trials) == 12
    assert res.best["score"] == 1.0 and "fake/strong" in res.best["pipeline"]
    # every request the backend saw was distinct: trials share the cache
    keys = [json.dumps([r.model, r.prompt_text(), r.samples, r.temperature]) for r in be.requests]
    assert len(keys) == len(set(keys))
    assert res.calls_issued == len(be.requests) < res.calls_requested
    # the same command again resumes the study: nothing more to do
    again = asyncio.run(go(12))
    assert len(again.trials) == 12 and len(be.requests) == len(keys)


def test_example_spaces_load():
    from search.space import load_space
    from tests.conftest import EXAMPLES

    for path in sorted((EXAMPLES / "spaces").glob("*.yaml")):
        assert load_space(path).params()


PY_SPACE = '''
from archon import Pipeline

NAME = "py-demo"


def space(trial):
    p = Pipeline("py-demo")
    n = trial.suggest_categorical("samples", [1, 3])
    draft = p.add("draft", "generate", model=trial.suggest_categorical("model", ["fake/weak", "fake/strong"]), samples=n)
    if n > 1 and trial.suggest_categorical("rank", [True, False]):
        p.add("top", "rank", inputs=[draft], model="fake/weak", top_k=1)
    return p
'''


def test_python_space_is_define_by_run_and_searchable(tmp_path):
    import optuna

    from search.space import load_space

    path = write(tmp_path, "space.py", PY_SPACE)
    space = load_space(path)
    assert space.name == "py-demo" and space.params() == ["samples", "model"]
    spec = space.sample(optuna.trial.FixedTrial({"samples": 3, "model": "fake/strong", "rank": True}))
    assert [n.id for n in spec.nodes] == ["draft", "top"] and spec.node("draft").config.samples == 3
    data = write(tmp_path, "items.jsonl", "".join(
        json.dumps({"id": f"q{i}", "question": f"What is {i} plus one?", "answer": str(i + 1)}) + "\n" for i in range(6)))
    db = f"sqlite:///{tmp_path / 's.db'}"

    async def go():
        rt = Runtime(store=db, backends={"fake": FunctionBackend(reply)})
        try:
            return await run_search(load_space(f"{path}:space"), load_benchmark(str(data)), rt, storage=db, trials=6, sampler="grid")
        finally:
            await rt.aclose()

    res = asyncio.run(go())
    assert res.best["score"] == 1.0 and "fake/strong" in res.best["pipeline"]

    async def whole_grid(trials: int):  # the grid has 8 points; optuna's own stop() raises under ask/tell
        rt = Runtime(store=db, backends={"fake": FunctionBackend(reply)})
        try:
            return await run_search(load_space(f"{path}:space"), load_benchmark(str(data)), rt, storage=db, trials=trials,
                                    sampler="grid", study_name="whole-grid")
        finally:
            await rt.aclose()

    for trials in (8, 10):
        res = asyncio.run(whole_grid(trials))
        assert res.best["score"] == 1.0 and len(res.trials) == 6  # 8 grid points, 6 distinct pipelines (rank needs samples > 1)


@pytest.mark.parametrize("ref, message", [("nowhere.py", "no such search-space file"),
                                          ("archon.spec:nothing", "no function 'nothing"),
                                          ("no_such_module_xyz:space", "cannot import module")])
def test_bad_python_space_references_are_user_errors(tmp_path, ref, message):
    from archon.exceptions import UserError
    from search.space import load_space

    with pytest.raises(UserError, match=message):
        load_space(ref)


def test_best_few_are_rescored_on_all_dev_items_and_the_holdout_is_reported_apart(tmp_path):
    from archon.spec import parse_pipeline

    data = write(tmp_path, "items.jsonl", "".join(
        json.dumps({"id": f"q{i}", "question": f"What is {i} plus one?", "answer": str(i + 1)}) + "\n" for i in range(12)))
    db = f"sqlite:///{tmp_path / 's.db'}"
    baseline = parse_pipeline({"name": "weak-once", "nodes": [{"id": "a", "op": "generate", "model": "fake/weak"}]}, check_backends=False)
    be = FunctionBackend(reply)

    async def go():
        rt = Runtime(store=db, backends={"fake": be})
        try:
            return await run_search(SearchSpace(yaml.safe_load(SPACE)), load_benchmark(str(data)), rt, storage=db, trials=6,
                                    sampler="random", seed=5, trial_items=4, rescore=2, holdout=4, baseline=baseline)
        finally:
            await rt.aclose()

    res = asyncio.run(go())
    assert all(r["n"] <= 4 for r in res.trials)  # trials saw at most 4 dev items
    rescored = [r for r in res.trials if r["final_n"] is not None]
    assert len(rescored) == 2 and all(r["final_n"] == 8 for r in rescored)  # the 8 dev items, never the held-out 4
    assert res.best["trial"] in {r["trial"] for r in rescored} and res.best["final_score"] == 1.0
    assert res.baseline["n"] == 8 and res.baseline["score"] == 0.0 and res.baseline["difference"]["difference"] == 1.0
    assert res.holdout["n"] == 4 and res.holdout["best"]["score"] == 1.0 and res.holdout["baseline"]["score"] == 0.0
    asked = {r.prompt_text() for r in be.requests}
    held_out = [f"What is {i} plus one?" for i in range(8, 12)]
    # held-out questions reached the backend only for the best pipeline and the baseline
    assert all(any(q in p for p in asked) for q in held_out)


def test_an_error_during_a_trial_fails_that_trial_at_once(tmp_path):
    import optuna

    from archon.builder import Pipeline
    from search.space import FunctionSpace

    def space(trial):
        if trial.suggest_categorical("broken", [False, True]) and not isinstance(trial, optuna.trial.FixedTrial):
            raise ValueError("a bug in the space function")
        p = Pipeline("fragile")
        p.add("draft", "generate", model="fake/strong")
        return p

    data = write(tmp_path, "items.jsonl", json.dumps({"id": "q0", "question": "What is 1 plus one?", "answer": "2"}) + "\n")
    db = f"sqlite:///{tmp_path / 's.db'}"

    async def go():
        rt = Runtime(store=db, backends={"fake": FunctionBackend(reply)})
        try:
            return await run_search(FunctionSpace(space, "fragile", "test"), load_benchmark(str(data)), rt, storage=db,
                                    trials=8, sampler="random", seed=0)
        finally:
            await rt.aclose()

    with pytest.raises(ValueError, match="a bug"):
        asyncio.run(go())
    states = {t.state.name for t in optuna.load_study(study_name="fragile@items", storage=db).trials}
    assert "RUNNING" not in states and "FAIL" in states


def test_a_study_keeps_its_objectives(tmp_path):
    from archon.exceptions import UserError

    data = write(tmp_path, "items.jsonl", json.dumps({"id": "q0", "question": "What is 1 plus one?", "answer": "2"}) + "\n")
    db = f"sqlite:///{tmp_path / 's.db'}"

    async def go(sampler):
        rt = Runtime(store=db, backends={"fake": FunctionBackend(reply)})
        try:
            return await run_search(SearchSpace(yaml.safe_load(SPACE)), load_benchmark(str(data)), rt, storage=db,
                                    trials=1, sampler=sampler, seed=0)
        finally:
            await rt.aclose()

    asyncio.run(go("tpe"))
    with pytest.raises(UserError, match="nsga2 score-and-cost objective"):
        asyncio.run(go("nsga2"))
