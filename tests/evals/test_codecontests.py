"""CodeContests: public tests visible (selection), private/generated tests hidden (scoring), programs
run on stdin/stdout in the sandbox with output compared up to trailing whitespace."""

from __future__ import annotations

import asyncio
import time

import pytest

from archon import Pipeline, Query, SpecError, run
from archon.evals import Item, ScoreContext, get_scorer, load_benchmark
from backends.doubles import FunctionBackend
from operators.code_tests import item_test_field, item_tests
from operators.stdio_tests import outputs_match, run_stdio_tests, stdio_tests

ADD = "a, b = map(int, input().split())\nprint(a + b)\n"
TESTS = [{"input": "1 2", "output": "3"}, {"input": "10 -4", "output": "6"}, {"input": "0 0", "output": "0"}]


def item(private=TESTS, public=None) -> Item:
    return Item("t/1", "Add two numbers.", None, {"public_tests": public or TESTS[:1], "private_tests": private})


def test_outputs_match_ignores_trailing_whitespace_only():
    assert outputs_match("3\n", "3") and outputs_match("1 2 \n3\t\n\n\n", "1 2\n3") and outputs_match("a\r\nb\r\n", "a\nb")
    assert outputs_match("", "") and outputs_match("\n \n", "")
    assert not outputs_match(" 3", "3")             # leading space: a different line
    assert not outputs_match("1\n\n2", "1\n2")      # a blank line inside
    assert not outputs_match("1 2", "1  2") and not outputs_match("3", "3\n4") and not outputs_match("", "0")


def test_stdio_tests_take_only_input_output_records():
    assert stdio_tests(TESTS[:1]) == [{"kind": "stdio", "input": "1 2", "output": "3"}]
    assert stdio_tests([]) == [] and stdio_tests(["assert f()"]) == [] and stdio_tests([{"input": "1"}]) == []
    q = Query("x", data={"public_tests": TESTS})
    assert item_test_field(q.data) == "public_tests" and [t["kind"] for t in item_tests(q)] == ["stdio"] * 3


async def test_scorer_runs_the_program_on_the_hidden_tests():
    score = get_scorer("stdio")
    right = await score(f"Here it is:\n```python\n{ADD}```\nIt reads two numbers.", item(), ScoreContext())
    assert right.value == 1.0 and right.raw == {"passed": 3, "total": 3, "status": "passed"}
    spaced = await score("a, b = map(int, input().split())\nprint(a + b, '  ')\nprint()\n", item(), ScoreContext())
    assert spaced.value == 1.0  # trailing spaces and a trailing blank line are tolerated
    wrong = await score("a, b = map(int, input().split())\nprint(a * b)\n", item(), ScoreContext())
    assert wrong.value == 0.0 and wrong.detail == "test 1: wrong answer"
    crash = await score("raise SystemExit(3)", item(), ScoreContext())
    assert crash.value == 0.0 and crash.detail and "exit code 3" in crash.detail
    # Only the private tests score: a program that hard-codes the public answer fails them.
    assert (await score("print(3)", item(), ScoreContext())).value == 0.0


async def test_every_test_starts_fresh():
    """State a program leaves behind (a file in its directory, a module global) never reaches the
    next test: each runs in a new interpreter and an empty directory."""
    counter = ("import os\nn = int(open('count').read()) + 1 if os.path.exists('count') else 1\n"
               "open('count', 'w').write(str(n))\ninput()\nprint(n)\n")
    res = await run_stdio_tests(counter, stdio_tests([{"input": "x", "output": "1"}] * 3))
    assert res["status"] == "passed" and res["passed"] == 3


async def test_a_timeout_stops_the_run():
    slow = "import sys\nif sys.stdin.readline().strip() == 'loop':\n    while True: pass\nprint('ok')\n"
    tests = stdio_tests([{"input": "a", "output": "ok"}, {"input": "loop", "output": "ok"}, {"input": "b", "output": "ok"}])
    started = time.monotonic()
    res = await run_stdio_tests(slow, tests, timeout=1.0)
    assert res["status"] == "timeout" and res["passed"] == 1 and time.monotonic() - started < 8
    assert res["results"][1][1].startswith("timed out") and res["results"][2][1].startswith("not run")


def test_unit_test_selects_by_the_public_tests():
    wrong = "```python\na, b = map(int, input().split())\nprint(a - b)\n```"
    right = f"```python\n{ADD}```"
    p = Pipeline("cc")
    p.add("draft", "generate", model="fake/m", samples=2)
    p.add("best", "unit_test", inputs="draft", tests="item")
    query = Query("Add two numbers.", data={"public_tests": TESTS})
    res = run(p, query, backends={"fake": FunctionBackend(lambda r, k: [wrong, right][k])}, db=False)
    best = res.candidates["best"]
    assert res.output == right and [c.score for c in best] == [1.0, pytest.approx(1 / 3)]
    assert best[0].meta["tests"] == {"passed": 3, "total": 3, "status": "passed", "source": "item"}


# ---- the shipped subset ------------------------------------------------------------------------------

def test_benchmark_shows_public_tests_and_hides_the_scoring_ones(data_dir):
    bench = load_benchmark("codecontests")
    assert len(bench.items) == 60 and bench.scorer == "stdio"
    assert bench.visible == ("public_tests",) and {"private_tests", "reference_solution"} <= set(bench.hidden)
    assert bench.scoring_fields == ("private_tests",) and bench.scoring_visible == ()
    it = bench.items[0]
    q = bench.query(it)
    assert set(q.data) == {"public_tests"} and it.input in q.text and "standard IO" in q.text
    assert all(len(i.data["public_tests"]) + len(i.data["private_tests"]) == 10 for i in bench.items)


def test_reference_solutions_pass_and_an_empty_program_fails(data_dir, capsys):
    """The must-show: 60/60 for the reference solutions, 0/60 for an empty program (about 600
    sandboxed runs: one sandbox per program and problem, a fresh interpreter per test)."""
    bench = load_benchmark("codecontests")
    score = get_scorer("stdio")

    async def all_scores(answers: list[str]) -> list[float]:
        ctx = ScoreContext(code_timeout=20.0)
        return [s.value for s in await asyncio.gather(*(score(a, it, ctx) for a, it in zip(answers, bench.items)))]

    started = time.monotonic()
    refs = asyncio.run(all_scores([f"```python\n{it.data['reference_solution']}\n```" for it in bench.items]))
    middle = time.monotonic()
    empty = asyncio.run(all_scores([""] * len(bench.items)))
    done = time.monotonic()
    with capsys.disabled():
        print(f"\ncodecontests: references {sum(refs):.0f}/60 in {middle - started:.1f} s, "
              f"empty program {sum(empty):.0f}/60 in {done - middle:.1f} s")
    assert sum(refs) == 60 and sum(empty) == 0


def test_a_file_of_that_shape_is_read_as_codecontests(tmp_path):
    import json

    rec = {"id": "p1", "description": "Add two numbers.", "public_tests": TESTS[:1], "private_or_generated_tests": TESTS[1:],
           "reference_solution_python3": ADD}
    path = tmp_path / "mine.jsonl"
    path.write_text(json.dumps(rec) + "\n")
    bench = load_benchmark(str(path))
    assert bench.scorer == "stdio" and bench.visible == ("public_tests",) and bench.items[0].data["private_tests"] == TESTS[1:]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({**rec, "private_or_generated_tests": [{"input": "1"}]}) + "\n")
    with pytest.raises(SpecError, match=r"bad\.jsonl:1: field 'private_or_generated_tests' must be a non-empty list"):
        load_benchmark(str(bad))


def test_public_names():
    import archon.evals.codecontests as cc
    import operators.stdio_tests as st

    for mod in (cc, st):
        assert all(getattr(mod, name) is not None for name in mod.__all__)


async def test_contest_idioms_work():
    """exit() and quit() (absent from a `python -S` interpreter), sys.stdin reads, __name__ guards."""
    progs = ["a, b = map(int, input().split())\nprint(a + b)\nexit()\nprint('never')",
             "import sys\ndef main():\n    a, b = map(int, sys.stdin.read().split())\n    print(a + b)\n    quit(0)\n"
             "if __name__ == '__main__':\n    main()\n"]
    for prog in progs:
        assert (await run_stdio_tests(prog, stdio_tests(TESTS)))["status"] == "passed", prog
    assert (await run_stdio_tests("exit(2)", stdio_tests(TESTS[:1])))["error"].startswith("test 1: exit code 2")


def test_eval_selects_by_public_tests_and_scores_on_hidden_ones(data_dir, tmp_path):
    """archon.evaluate end to end: two drafts per problem (a wrong program and the reference),
    unit_test keeps the one passing the public tests, and the hidden tests score it."""
    import archon
    from dataclasses import replace

    bench = load_benchmark("codecontests")
    bench = replace(bench, items=[it for it in bench.items if it.data["public_tests"]][:3])
    by_text = {it.input: it.data["reference_solution"] for it in bench.items}

    def draft(req, k):
        ref = next(code for text, code in by_text.items() if text in req.prompt_text())
        return ["```python\nprint(0)\n```", f"```python\n{ref}\n```"][k]

    def pipeline(select: bool) -> Pipeline:
        p = Pipeline("cc-select" if select else "cc-first")
        p.add("draft", "generate", model="fake/m", samples=2)
        if select:
            p.add("best", "unit_test", inputs="draft", tests="item", top_k=1)
        return p

    kw = {"backends": {"fake": FunctionBackend(draft)}, "db": f"sqlite:///{tmp_path / 'e.db'}"}
    assert archon.evaluate(pipeline(True), bench, **kw).score == 1.0
    assert archon.evaluate(pipeline(False), bench, **kw).score == 0.0  # the first draft, unselected
