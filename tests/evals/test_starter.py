"""The starter benchmark ships with Archon: every canonical solution passes its hidden tests and its
prompt's examples, wrong answers fail, and the copy under examples/ is the same file."""

from __future__ import annotations

import asyncio

from archon.evals import ScoreContext, get_scorer, load_benchmark
from archon.evals.datasets import read_jsonl
from operators.code_tests import doctest_tests, run_tests
from tests.conftest import ROOT


def test_starter_needs_no_data_dir():
    bench = load_benchmark("starter")
    assert len(bench.items) >= 30 and bench.scorer == "code" and bench.visible == ("entry_point",)
    assert len({it.data["entry_point"] for it in bench.items}) == len(bench.items)
    for item in bench.items:
        assert ">>>" in item.input and "def check(candidate)" in item.data["test"]
        assert bench.query(item, "completion").text == item.input


def test_examples_copy_is_in_sync():
    shipped = ROOT / "archon" / "evals" / "data" / "code_starter.jsonl"
    example = ROOT / "examples" / "data" / "code_starter.jsonl"
    assert shipped.read_bytes() == example.read_bytes()
    assert load_benchmark(str(example)).items == load_benchmark("starter").items


async def test_canonical_solutions_pass_tests_and_examples():
    bench = load_benchmark("starter")
    scorer = get_scorer("code")

    async def check(item):
        hidden = await scorer(item.data["canonical_solution"], item, ScoreContext())
        program = item.input + item.data["canonical_solution"]
        examples = await run_tests(program, doctest_tests(item.input, item.data["entry_point"]))
        return item.id, hidden.value, hidden.detail, examples["status"], examples["total"]

    results = await asyncio.gather(*(check(it) for it in bench.items))
    assert [r for r in results if r[1] != 1.0 or r[3] != "passed" or r[4] < 2] == []


async def test_a_wrong_body_fails():
    bench = load_benchmark("starter")
    scores = await asyncio.gather(*(get_scorer("code")("    return None\n", it, ScoreContext()) for it in bench.items))
    assert all(s.value == 0.0 for s in scores)


def test_records_have_the_humaneval_fields():
    for _, rec in read_jsonl(ROOT / "archon" / "evals" / "data" / "code_starter.jsonl"):
        assert set(rec) == {"task_id", "prompt", "entry_point", "canonical_solution", "test"}
        assert rec["task_id"] == f"starter/{rec['entry_point']}"
