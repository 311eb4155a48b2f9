"""Visibility is a guarantee: whatever the benchmark (built-in, JSONL, YAML), a pipeline run by
``archon eval`` or ``archon search`` is handed the visible fields only, in its query's data and in its
prompt; a prompt naming a hidden field is refused at load; and a benchmark says when its scoring
tests are visible."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any, ClassVar

import pytest
import yaml

from archon import Candidate, Runtime, SpecError, registry
from archon.evals import benchmark_names, load_benchmark
from archon.evals._builtins import BUILTINS
from archon.evals.datasets import Benchmark, prompt_fields
from archon.evals.runner import evaluate
from archon.spec import parse_pipeline
from archon.types import Query
from operators.base import OpConfig, Operator, placeholders, render
from tests.conftest import write

MIN_LEAK = 16  # shorter hidden strings ("Level 2", "writing") may appear in a prompt by coincidence


class SpyConfig(OpConfig):
    label: str = "a"  # a setting for a search space to choose


class Spy(Operator):
    """Records every query it is handed: its id, data and text."""

    kind = "visibility_spy"
    Config = SpyConfig
    seen: ClassVar[list[Query]] = []

    async def __call__(self, inputs: list[Candidate], query: Query, ctx: Any) -> list[Candidate]:
        Spy.seen.append(query)
        return [Candidate(text="spied", node=self.node_id)]


@pytest.fixture
def spy():
    with registry.OPERATORS.registered(Spy.kind, Spy):  # the registration ends with the test
        Spy.seen = []
        yield Spy


SPY_PIPELINE = {"name": "spy", "nodes": [{"id": "spy", "op": "visibility_spy"}]}
SECRET = "the secret rationale nobody may read"
RECORDS = [{"id": f"s{i}", "question": f"What colour is thing {i}?", "answer": "blue", "hint": f"think of the sky ({i})",
            "rationale": f"{SECRET} #{i}", "hidden_tests": [f"assert colour({i}) == 'blue'"]} for i in range(6)]
YAML_BENCH = """
data: items.jsonl
prompt: "{input}\\nHint: {hint}"
completion_prompt: "Q: {input} ({hint})\\nA:"
visible: [hint]
"""


def _strings(value: Any):
    if isinstance(value, str):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)


def assert_never_seen(bench: Benchmark, seen: list[Query]) -> None:
    """Every query's data keys are visible ones, and no hidden string reached its text (unless the
    same string is also shown: part of the question or of a visible field)."""
    by_id = {it.id: it for it in bench.items}
    assert seen and {q.id for q in seen} <= set(by_id)
    for q in seen:
        item = by_id[q.id]
        assert set(q.data) <= set(bench.visible), (bench.name, q.id, sorted(q.data))
        shown = [item.input, *_strings({k: item.data[k] for k in bench.visible if k in item.data})]
        for s in _strings({k: item.data[k] for k in bench.hidden if k in item.data}):
            if len(s) >= MIN_LEAK and not any(s in v for v in shown):
                assert s not in q.text, (bench.name, q.id, s[:60])


def hidden_benchmarks(tmp_path) -> list[Benchmark]:
    """A plain JSONL file (nothing visible) and a YAML description showing 'hint' only."""
    data = write(tmp_path, "items.jsonl", "".join(json.dumps(r) + "\n" for r in RECORDS))
    return [load_benchmark(str(data)), load_benchmark(str(write(tmp_path, "bench.yaml", YAML_BENCH)))]


async def _eval_spy(bench: Benchmark, db: str, style: str) -> None:
    rt = Runtime(store=db)
    try:
        # A cheap scorer: the point is what the pipeline sees, not how code or a judge would grade it.
        # First turns only: a later MT-Bench turn shows its own (hidden until then) question by design;
        # tests/evals/test_mtbench.py checks what it holds.
        await evaluate(parse_pipeline(SPY_PIPELINE, check_backends=False), replace(bench, scorer="exact", followup=None), rt,
                       concurrency=16, style=style)
    finally:
        await rt.aclose()


def alpaca_eval_file(tmp_path) -> Benchmark:
    """AlpacaEval's data is never shipped or shared: a file of its shape, made up here."""
    recs = [{"instruction": f"Describe colour {i}.", "output": f"{SECRET}: the reference output {i}", "generator": "ref",
             "dataset": "made-up"} for i in range(4)]
    return load_benchmark(str(write(tmp_path, "alpaca_eval.json", json.dumps(recs))))


def test_eval_hands_every_benchmark_only_its_visible_fields(data_dir, spy, tmp_path):
    names = [name for name in benchmark_names() if name != "alpaca-eval"]
    benches = [load_benchmark(name) for name in names] + [alpaca_eval_file(tmp_path)] + hidden_benchmarks(tmp_path)
    for bench in benches:
        for style in ("chat", "completion"):
            spy.seen = []
            asyncio.run(_eval_spy(bench, f"sqlite:///{tmp_path / 'v.db'}", style))
            assert len(spy.seen) == len(bench.items), bench.name
            assert_never_seen(bench, spy.seen)
    plain, described = benches[-2:]
    assert plain.visible == () and set(plain.hidden) == {"id", "hint", "rationale", "hidden_tests"}
    assert described.visible == ("hint",) and "(think of the sky (0))" in spy.seen[0].text  # the last run: completion


def test_the_check_catches_a_benchmark_that_passes_all_data(spy, tmp_path, monkeypatch):
    """The test above has teeth: a Benchmark.query that hands over all data fails it."""

    def leaky(self, item, style="chat"):
        fields = prompt_fields(item, tuple(item.data))
        return Query(render(self.chat_prompt + " {rationale}", **fields), id=item.id, data=dict(item.data))

    plain, described = hidden_benchmarks(tmp_path)
    monkeypatch.setattr(Benchmark, "query", leaky)
    for bench in (plain, described):
        spy.seen = []
        asyncio.run(_eval_spy(bench, f"sqlite:///{tmp_path / 'leak.db'}", "chat"))
        with pytest.raises(AssertionError):
            assert_never_seen(bench, spy.seen)
        spy.seen = [replace(q, data={}) for q in spy.seen]  # the data kept back, the prompt still leaks
        with pytest.raises(AssertionError):
            assert_never_seen(bench, spy.seen)


def _search_spy(bench: Benchmark, db: str, **options: Any) -> Any:
    """A tiny ``archon search`` whose every trial is the spy (it chooses only a label)."""
    from search.space import SearchSpace
    from search.study import run_search

    space = SearchSpace({"name": "spy-space", "nodes": [{"id": "spy", "op": "visibility_spy", "label": {"choices": ["a", "b"]}}]})

    async def go():
        rt = Runtime(store=db)
        try:
            return await run_search(space, bench, rt, storage=db, sampler="random", seed=1, **options)
        finally:
            await rt.aclose()

    return asyncio.run(go())


def test_search_hands_the_pipeline_only_visible_fields(spy, tmp_path):
    plain, _ = hidden_benchmarks(tmp_path)
    res = _search_spy(plain, f"sqlite:///{tmp_path / 's.db'}", trials=2, holdout=2)
    assert len(res.trials) == 2 and {q.id for q in spy.seen} == {it.id for it in plain.items}  # holdout included
    assert_never_seen(plain, spy.seen)
    assert res.scoring_visible == [] and res.warnings == []


def test_search_reports_scoring_tests_the_pipeline_saw(spy, tmp_path):
    """A description listing its test field under visible: the search report, its JSON and --show say so."""
    import optuna

    from search.final import study_summary
    from search.report import render_text

    write(tmp_path, "code.jsonl", "".join(json.dumps({"id": f"c{i}", "prompt": f"Write inc{i}(x).", "tests": [f"assert inc{i}(1) == 2"]}) + "\n"
                                          for i in range(2)))
    bench = load_benchmark(str(write(tmp_path, "shown.yaml", yaml.safe_dump({"data": "code.jsonl", "scorer": "code", "visible": ["tests"]}))))
    db = f"sqlite:///{tmp_path / 'w.db'}"
    res = _search_spy(bench, db, trials=1, study_name="w")
    line = "selection saw the scoring tests: scores are optimistic (visible scoring fields: tests)"
    assert res.scoring_visible == ["tests"] and res.warnings == [line]
    assert f"warning: {line}" in render_text(res.to_dict())
    assert study_summary(optuna.load_study(study_name="w", storage=db))["warnings"] == [line]  # what --show prints
    assert {tuple(q.data) for q in spy.seen} == {("tests",)}


def test_a_prompt_naming_a_hidden_field_is_refused_at_load(tmp_path):
    write(tmp_path, "items.jsonl", "".join(json.dumps(r) + "\n" for r in RECORDS))
    bad = write(tmp_path, "bad.yaml", YAML_BENCH.replace("Hint: {hint}", "Why: {rationale}"))
    with pytest.raises(SpecError) as err:
        load_benchmark(str(bad))
    msg = str(err.value)
    assert "bad.yaml" in msg and "field 'prompt'" in msg and "'rationale'" in msg and "add it to visible: [hint, rationale]" in msg
    bad = write(tmp_path, "bad2.yaml", YAML_BENCH.replace("({hint})", "({hidden_tests})"))
    with pytest.raises(SpecError, match=r"bad2\.yaml: field 'completion_prompt' names the hidden field 'hidden_tests'"):
        load_benchmark(str(bad))
    typo = write(tmp_path, "typo.yaml", YAML_BENCH.replace("visible: [hint]", "visible: [hnit]"))
    with pytest.raises(SpecError, match=r"typo\.yaml: field 'visible': no record has a field 'hnit'\. Did you mean 'hint'\?"):
        load_benchmark(str(typo))
    # Braces that name no field (code, LaTeX) stay allowed, as before.
    ok = write(tmp_path, "ok.yaml", YAML_BENCH.replace("Hint: {hint}", "Hint: {hint} {x^2}"))
    assert load_benchmark(str(ok)).query(load_benchmark(str(ok)).items[0]).text.endswith("{x^2}")


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_builtin_prompts_name_only_visible_fields(name):
    spec = BUILTINS[name]
    named = placeholders(spec.prompts.chat) | placeholders(spec.prompts.completion)
    assert named <= {"input", *spec.visible}, named


def test_what_is_hidden_and_whether_the_scoring_tests_are_visible(data_dir):
    mbpp, humaneval = load_benchmark("mbpp", limit=5), load_benchmark("humaneval", limit=5)
    assert mbpp.scoring_fields == ("test_list",) and mbpp.scoring_visible == ("test_list",)
    assert "challenge_test_list" in mbpp.hidden and "code" in mbpp.hidden
    assert humaneval.scoring_fields == ("test",) and humaneval.scoring_visible == () and "test" in humaneval.hidden
    for name in ("mmlu", "arc", "commonsenseqa"):  # the answer lives in Item.reference only
        mc = load_benchmark(name, limit=20)
        assert mc.visible == ("choices",) and not {"answer", "answer_index", "answer_letter"} & {k for it in mc.items for k in it.data}
    for name in ("gsm8k", "math500", "hotpotqa", "mt-bench"):
        assert load_benchmark(name, limit=5).scoring_fields == ()


def test_a_description_showing_its_test_field_is_flagged(tmp_path):
    write(tmp_path, "code.jsonl", json.dumps({"id": "c1", "prompt": "Write inc(x).", "tests": ["assert inc(1) == 2"]}) + "\n")
    desc = {"data": "code.jsonl", "scorer": "code", "visible": ["tests"]}
    shown = load_benchmark(str(write(tmp_path, "shown.yaml", yaml.safe_dump(desc))))
    assert shown.scoring_visible == ("tests",)
    kept = load_benchmark(str(write(tmp_path, "kept.yaml", yaml.safe_dump({**desc, "visible": []}))))
    assert kept.scoring_fields == ("tests",) and kept.scoring_visible == () and kept.query(kept.items[0]).data == {}
