"""write_tests and unit_test on the doubles, with code really run in the sandbox."""

from __future__ import annotations

import pytest

from archon import Pipeline, Query, RunFailed, run
from backends.doubles import FunctionBackend
from operators.code_tests import build_program, doctest_tests, extract_code, item_tests, example_inputs, run_tests

PROMPT = '''def add(a, b):
    """Add two numbers.
    >>> add(2, 3)
    5
    >>> add(-1, 1)
    0
    """
'''
RIGHT = "    return a + b\n"
WRONG = "    return a - b\n"
HALF = "    return 5 if a == 2 else a * b\n"  # passes the first example only


def candidates(*texts):
    return FunctionBackend(lambda r, k: texts[k])


def ut_pipeline(n: int, **settings) -> Pipeline:
    p = Pipeline("ut")
    p.add("draft", "generate", model="fake/m", samples=n, mode="completion")
    p.add("best", "unit_test", inputs="draft", **settings)
    return p


def test_doctests_from_the_prompt_pick_the_right_candidate():
    res = run(ut_pipeline(3, tests="doctest"), Query(PROMPT), backends={"fake": candidates(WRONG, HALF, RIGHT)}, db=False)
    best = res.candidates["best"]
    assert [c.text for c in best] == [RIGHT, HALF, WRONG]
    assert [c.score for c in best] == [1.0, 0.5, 0.0]
    assert best[0].meta["tests"] == {"passed": 2, "total": 2, "status": "passed", "source": "doctest"}
    assert res.output == RIGHT and res.calls == 1  # the tests cost no model call


def test_item_tests_mbpp_and_humaneval_shapes_and_top_k():
    mbpp = Query("Write a function add(a, b).", data={"test_list": ["assert add(1, 2) == 3", "assert add(0, 0) == 0"]})
    res = run(ut_pipeline(2, tests="item", top_k=1), mbpp,
              backends={"fake": candidates("```python\ndef add(a, b):\n    return a * b\n```", "def add(a, b):\n    return a + b")}, db=False)
    (best,) = res.candidates["best"]
    assert best.score == 1.0 and "a + b" in best.text
    he = Query(PROMPT, data={"test": "def check(candidate):\n    assert candidate(4, 4) == 8\n", "entry_point": "add"})
    res = run(ut_pipeline(2, tests="item"), he, backends={"fake": candidates(WRONG, RIGHT)}, db=False)
    assert res.output == RIGHT and res.candidates["best"][0].meta["tests"]["source"] == "item"


def test_model_written_tests_via_write_tests_node():
    def fn(req, k):
        if "assert statements" in req.prompt_text():
            return "assert add(1, 1) == 2\nassert add(2, 2) == 4\nnot a test"
        return [WRONG, RIGHT][k]

    p = Pipeline("wt")
    p.add("tests", "write_tests", model="fake/m")
    p.add("draft", "generate", model="fake/m", samples=2, mode="completion")
    p.add("best", "unit_test", inputs=["draft", "tests"], top_k=1)
    res = run(p, Query(PROMPT), backends={"fake": FunctionBackend(fn)}, db=False)
    assert res.candidates["tests"][0].meta["tests"] == [{"kind": "assert", "code": "assert add(1, 1) == 2"},
                                                        {"kind": "assert", "code": "assert add(2, 2) == 4"}]
    assert res.output == RIGHT and res.candidates["best"][0].meta["tests"]["source"] == "inputs"


def test_nl_checks_judged_by_a_model():
    def fn(req, k):
        t = req.prompt_text()
        if "Judgement:" in t:
            return "1: PASS\n2: PASS" if "Canberra" in t.split("Requirements:")[0] else "1: PASS\n2: FAIL"
        if "Requirements:" in t:
            return "1. Names a city\n2. The city is Canberra"
        return ["Sydney", "Canberra"][k]

    p = Pipeline("nl")
    p.add("draft", "generate", model="fake/m", samples=2)
    p.add("best", "unit_test", inputs="draft", style="nl", tests="model", model="fake/judge", top_k=1)
    res = run(p, "Capital of Australia?", backends={"fake": FunctionBackend(fn)}, db=False)
    assert res.output == "Canberra" and res.candidates["best"][0].score == 1.0


@pytest.mark.parametrize("batch, judged", [(1, 3), (2, 4), (8, 6)])
def test_first_k_stops_judging_once_enough_pass(batch, judged):
    """Archon's evaluator: candidates checked in input order, stopping at the first_k-th passing every check."""
    answers = ["Sydney", "Canberra A", "Canberra B", "Perth", "Canberra C", "Darwin"]
    judged_texts: list[str] = []

    def fn(req, k):
        t = req.prompt_text()
        if "Judgement:" in t:
            response = t.split("Response:")[1].split("Requirements:")[0].strip()
            judged_texts.append(response)
            return "1: PASS\n2: PASS" if "Canberra" in response else "1: PASS\n2: FAIL"
        if "Requirements:" in t:
            return "1. Names a city\n2. The city is Canberra"
        return answers[k]

    def pipeline(first_k: int) -> Pipeline:
        p = Pipeline("nl")
        p.add("draft", "generate", model="fake/m", samples=6)
        p.add("best", "unit_test", inputs="draft", style="nl", tests="model", model="fake/judge", first_k=first_k, batch=batch)
        return p

    res = run(pipeline(2), "Capital of Australia?", backends={"fake": FunctionBackend(fn)}, db=False)
    assert [c.text for c in res.candidates["best"]] == ["Canberra A", "Canberra B"]
    assert len(judged_texts) == judged  # batch 1: Sydney, Canberra A, Canberra B; batch 2: two waves; 8: one wave

    judged_texts.clear()  # fewer pass than first_k: every candidate was judged, all kept best first
    res = run(pipeline(4), "Capital of Australia?", backends={"fake": FunctionBackend(fn)}, db=False)
    assert [c.text for c in res.candidates["best"]][:3] == ["Canberra A", "Canberra B", "Canberra C"]
    assert len(res.candidates["best"]) == 6 and len(judged_texts) == 6


def test_nl_checks_from_an_input_without_a_judge_model_say_what_to_set():
    def fn(req, k):
        return "1. Names a city" if "Requirements:" in req.prompt_text() else "Canberra"

    p = Pipeline("nl")
    p.add("checks", "write_tests", model="fake/m", style="nl")
    p.add("draft", "generate", model="fake/m")
    p.add("best", "unit_test", inputs=["draft", "checks"], style="nl", tests="inputs")
    with pytest.raises(RunFailed, match="node 'best': the natural-language checks .* set 'model' on this unit_test node"):
        run(p, "Capital of Australia?", backends={"fake": FunctionBackend(fn)}, db=False)


def test_unreadable_judge_and_no_tests_fall_back_with_notes():
    def fn(req, k):
        t = req.prompt_text()
        if "Judgement:" in t:
            return "looks fine to me"
        if "Requirements:" in t:
            return "1. Be right"
        return f"answer {k}"

    p = Pipeline("nl")
    p.add("draft", "generate", model="fake/m", samples=2)
    p.add("best", "unit_test", inputs="draft", style="nl", tests="model", model="fake/judge")
    res = run(p, "q", backends={"fake": FunctionBackend(fn)}, db=False)
    assert all(c.score == 0 and "PASS/FAIL" in c.notes[0] for c in res.candidates["best"])
    res = run(ut_pipeline(2), "no code here", backends={"fake": candidates("a", "b")}, db=False)
    assert [c.text for c in res.candidates["best"]] == ["a", "b"] and "no tests found" in res.candidates["best"][0].notes[0]


@pytest.mark.parametrize("query, settings, note", [
    (Query("Write add(a, b).", data={"test_list": ["assert add(1, 2) == 3", "assert add(0, 0) == 0"]}), {"tests": "item"},
     "unit_test tests: 2 from item field 'test_list'"),
    (Query(PROMPT, data={"test": "def check(candidate):\n    assert candidate(4, 4) == 8\n", "entry_point": "add"}), {},
     "unit_test tests: 1 from item field 'test'"),  # auto: the tests the query carries win over the prompt's examples
    (Query(PROMPT), {}, "unit_test tests: 2 from doctest"),
    (Query(PROMPT), {"tests": "model", "model": "fake/m"}, "unit_test tests: 1 from model"),
])
def test_the_tests_used_are_noted_once_per_node(query, settings, note):
    def fn(req, k):
        return "assert add(2, 2) == 4" if "assert statements" in req.prompt_text() else [WRONG, RIGHT][k]

    res = run(ut_pipeline(2, **settings), query, backends={"fake": FunctionBackend(fn)}, db=False)
    assert [n for n in res.notes if "unit_test tests" in n] == [f"best: {note}"]
    assert all(note in c.notes for c in res.candidates["best"])


def test_tests_from_a_write_tests_input_are_noted():
    def fn(req, k):
        return "assert add(1, 1) == 2\nassert add(2, 2) == 4" if "assert statements" in req.prompt_text() else [WRONG, RIGHT][k]

    p = Pipeline("wt")
    p.add("tests", "write_tests", model="fake/m")
    p.add("draft", "generate", model="fake/m", samples=2, mode="completion")
    p.add("best", "unit_test", inputs=["draft", "tests"])
    res = run(p, Query(PROMPT), backends={"fake": FunctionBackend(fn)}, db=False)
    assert "best: unit_test tests: 2 from inputs" in res.notes


def test_crashing_and_endless_candidates_are_contained():
    res = run(ut_pipeline(3, tests="doctest", timeout=3), Query(PROMPT),
              backends={"fake": candidates("    while True: pass\n", "    raise SystemExit(3)\n", RIGHT)}, db=False)
    best = res.candidates["best"]
    assert best[0].text == RIGHT
    statuses = {c.text: c.meta["tests"]["status"] for c in best}
    assert statuses["    raise SystemExit(3)\n"] in ("error", "failed")
    assert statuses["    while True: pass\n"] in ("timeout", "failed", "error")


def test_vote_on_code_outputs():
    res = run(
        _vote_pipeline(), Query(PROMPT),
        backends={"fake": candidates("    return b + a\n", WRONG, RIGHT)}, db=False,
    )
    (win,) = res.candidates["vote"]
    assert win.meta["votes"] == 2 and win.meta["answer"] == "5|0"


def _vote_pipeline() -> Pipeline:
    p = Pipeline("v")
    p.add("draft", "generate", model="fake/m", samples=3, mode="completion")
    p.add("vote", "vote", inputs="draft", extractor="code_outputs")
    return p


def test_helpers():
    assert extract_code("text\n```python\nx = 1\n```\nmore") == "x = 1\n"
    assert doctest_tests(PROMPT) == [{"kind": "doctest", "source": "add(2, 3)", "want": "5"},
                                     {"kind": "doctest", "source": "add(-1, 1)", "want": "0"}]
    arrow = 'def f(x):\n    """Square it.\n    f(2) ➞ 4\n    f(3) == 9"""\n'
    assert [(t["source"], t["want"]) for t in doctest_tests(arrow, "f")] == [("f(2)", "4"), ("f(3)", "9")]
    q = Query(PROMPT, data={"entry_point": "add"})
    assert build_program(RIGHT, q) == PROMPT + RIGHT
    assert build_program("from typing import List\ndef add(a, b):\n    return a + b", q).startswith("from typing import List\ndef add")
    assert example_inputs([{"kind": "assert", "code": "assert add(1, 2) == 3"}]) == ["add(1, 2)"]
    assert item_tests(Query("x")) == []


def test_unit_test_settings_checked():
    from archon import SpecError

    with pytest.raises(SpecError, match="set 'model'"):
        ut_pipeline(1, tests="model").build()


async def test_a_program_holding_the_harness_placeholders_runs_as_written():
    """The harness is filled in one pass: model code naming its slots (or the old ones) stays its own."""
    words = "{program} {tests} {exprs} {per_test} {mark} __PROGRAM__ __TESTS__ __EXPRS__ __PER_TEST__ __MARK__"
    program = f"def f():\n    return {words!r}\n"
    res = await run_tests(program, [{"kind": "assert", "code": f"assert f() == {words!r}"}], exprs=["f()"])
    assert (res["status"], res["passed"], res["outputs"]) == ("passed", 1, [repr(words)])
