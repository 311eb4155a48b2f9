"""Selectors that abstain: verify and unit_test answer nothing when no candidate passes."""

from __future__ import annotations

import pytest

from archon import Pipeline, SpecError, run
from backends.doubles import FunctionBackend


def fn(req, k):
    t = req.prompt_text()
    if "Verdict" in t:
        return "Verdict: incorrect"
    if "Judgement:" in t:
        return "1: FAIL"
    if "Requirements:" in t:
        return "1. Says 4"
    return f"answer {k}"


@pytest.mark.parametrize("op, settings", [
    ("verify", {"model": "fake/v"}),
    ("unit_test", {"model": "fake/j", "style": "nl", "tests": "model"}),
])
def test_no_candidate_passes_so_the_run_abstains(op, settings):
    p = Pipeline("abstain")
    p.add("draft", "generate", model="fake/m", samples=3)
    p.add("check", op, inputs="draft", abstain=True, **settings)
    res = run(p, "What is 2 + 2?", backends={"fake": FunctionBackend(fn)}, db=False)
    assert res.abstained and res.output == "" and res.to_dict()["abstained"] is True
    assert any("none of 3 candidates" in n and "abstained" in n for n in res.notes)

    p = Pipeline("keep")  # without abstain: the fallback keeps every candidate, unverified
    p.add("draft", "generate", model="fake/m", samples=3)
    p.add("check", op, inputs="draft", **settings)
    res = run(p, "What is 2 + 2?", backends={"fake": FunctionBackend(fn)}, db=False)
    assert not res.abstained and res.output == "answer 0" and len(res.candidates["check"]) == 3


def test_a_passing_candidate_is_answered_as_usual():
    p = Pipeline("abstain")
    p.add("draft", "generate", model="fake/m", samples=3)
    p.add("check", "verify", inputs="draft", model="fake/v", abstain=True)
    ok = FunctionBackend(lambda req, k: "Verdict: correct" if "Verdict" in req.prompt_text() else f"answer {k}")
    res = run(p, "q", backends={"fake": ok}, db=False)
    assert not res.abstained and res.output == "answer 0"


def test_only_the_output_node_may_abstain():
    p = Pipeline("abstain")
    p.add("draft", "generate", model="fake/m", samples=3)
    p.add("check", "verify", inputs="draft", model="fake/v", abstain=True)
    p.add("answer", "fuse", inputs="check", model="fake/f")
    with pytest.raises(SpecError, match="node 'check': field 'abstain': only the output node may abstain"):
        p.build()
