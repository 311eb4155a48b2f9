"""rank's pairwise method: tournaments on a scripted judge, and their exact call counts."""

from __future__ import annotations

import re

import pytest

from archon import Pipeline, run
from archon.bounds import calls_per_query
from backends.doubles import FunctionBackend

QUALITY = [3, 9, 1, 7, 5]  # the hidden quality of "answer <q>"; the best is 9, then 7, 5, 3, 1


def pipeline(**rank) -> Pipeline:
    p = Pipeline("pairwise")
    p.add("draft", "generate", model="fake/gen", samples=len(QUALITY))
    p.add("best", "rank", inputs="draft", model="fake/judge", method="pairwise", top_k=len(QUALITY), **rank)
    return p


def backend(judge=None) -> FunctionBackend:
    def fn(req, k):
        t = req.prompt_text()
        if "Better: A" not in t:
            return f"answer {QUALITY[k]}"
        a, b = (int(x) for x in re.findall(r"\[[AB]\]\nanswer (\d+)", t))
        return (judge or (lambda a, b: "A" if a > b else "B"))(a, b)

    return FunctionBackend(fn)


def judge_calls(be: FunctionBackend) -> int:
    return sum("Better: A" in r.prompt_text() for r in be.requests)


@pytest.mark.parametrize("tournament, calls", [("knockout", 4), ("round_robin", 10)])
@pytest.mark.parametrize("both_orders", [False, True])
def test_a_tournament_finds_the_best_with_its_exact_calls(tournament, calls, both_orders):
    be = backend(lambda a, b: f"Reasons...\nBetter: {'A' if a > b else 'B'}")
    spec = pipeline(tournament=tournament, both_orders=both_orders)
    res = run(spec, "Which answer?", backends={"fake": be}, db=False)
    texts = [c.text for c in res.candidates["best"]]
    assert texts[0] == "answer 9"
    if tournament == "round_robin":  # every pair judged: the whole order is known
        assert texts == ["answer 9", "answer 7", "answer 5", "answer 3", "answer 1"]
    want = calls * (2 if both_orders else 1)
    assert judge_calls(be) == want and calls_per_query(spec.build()) == want + 1  # + the generate call
    assert not any(c.notes for c in res.candidates["best"])


def test_a_position_biased_judge_is_caught_by_both_orders():
    biased = backend(lambda a, b: "Better: A")  # always the first shown
    res = run(pipeline(tournament="round_robin"), "q", backends={"fake": biased}, db=False)
    assert res.candidates["best"][0].text == "answer 3"  # one order: position wins, the first candidate sweeps
    res = run(pipeline(tournament="round_robin", both_orders=True), "q", backends={"fake": backend(lambda a, b: "Better: A")},
              db=False)
    best = res.candidates["best"]
    assert [c.text for c in best] == [f"answer {q}" for q in QUALITY]  # every verdict split: all tie, input order
    assert "10 pairwise comparison(s) had no clear verdict" in best[0].notes[0]


def test_no_verdict_lets_the_earlier_candidate_advance_in_a_knockout():
    res = run(pipeline(), "q", backends={"fake": backend(lambda a, b: "I cannot decide")}, db=False)
    best = res.candidates["best"]
    assert best[0].text == "answer 3" and "4 pairwise comparison(s)" in best[0].notes[0]


def test_pairwise_settings_are_validated():
    from archon.exceptions import SpecError

    with pytest.raises(SpecError, match="tournament"):
        run(pipeline(tournament="swiss"), "q", backends={"fake": backend()}, db=False)
