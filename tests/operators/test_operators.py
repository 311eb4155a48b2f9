"""critique, verify, vote, route and merge on the test doubles: behaviour, cost in calls, fallbacks."""

from __future__ import annotations

import pytest

from archon import Pipeline, SpecError, run
from backends.doubles import FunctionBackend
from operators.answers import extract
from operators.vote import tally


def by_prompt(**rules):
    """A backend answering by the first rule whose key occurs in the prompt ('default' otherwise)."""

    def fn(req, k):
        text = req.prompt_text()
        for key, reply in rules.items():
            if key != "default" and key in text:
                return reply(text, k) if callable(reply) else reply
        d = rules.get("default", "")
        return d(text, k) if callable(d) else d

    return FunctionBackend(fn)


def drafts(p: Pipeline, n: int = 4, **kw) -> str:
    return p.add("draft", "generate", model="fake/m", samples=n, **kw)


# -- critique -------------------------------------------------------------------------------------


def test_critique_per_candidate_travels_to_rank_and_fuse():
    be = by_prompt(**{"Strengths and weaknesses:": lambda t, k: f"critique of {t.split('Response:')[1].split()[0]}",
                      "Ranking:": "[2] > [1]", "Candidate responses": "fused", "default": lambda t, k: f"d{k}"})
    p = Pipeline("c")
    d = drafts(p, 2)
    c = p.add("crit", "critique", inputs=d, model="fake/m")
    r = p.add("top", "rank", inputs=c, model="fake/m", top_k=2)
    p.add("answer", "fuse", inputs=r, model="fake/m")
    res = run(p, "q", backends={"fake": be}, db=False)
    assert [x.critique for x in res.candidates["crit"]] == ["critique of d0", "critique of d1"]
    assert res.calls == 1 + 2 + 1 + 1
    rank_prompt = next(r.prompt_text() for r in be.requests if "Ranking:" in r.prompt_text())
    assert "Critique of [1]: critique of d0" in rank_prompt
    fuse_prompt = be.requests[-1].prompt_text()
    assert "critique of d1" in fuse_prompt


def test_critique_all_in_one_call_with_fallback_note():
    be = by_prompt(**{"Reviews:": "[1]\nStrengths: short\nWeaknesses: wrong", "default": lambda t, k: f"d{k}"})
    p = Pipeline("c")
    p.add("crit", "critique", inputs=drafts(p, 2), model="fake/m", per="all")
    res = run(p, "q", backends={"fake": be}, db=False)
    a, b = res.candidates["crit"]
    assert a.critique == "Strengths: short\nWeaknesses: wrong" and not a.notes
    assert b.critique is None and "critique fallback" in b.notes[0]
    assert res.calls == 2


# -- verify ---------------------------------------------------------------------------------------


def test_verify_keeps_verified_and_stops_at_first_k():
    verdicts = {"d0": "Verdict: incorrect", "d1": "reasoning...\nVerdict: correct", "d2": "Verdict: correct", "d3": "Verdict: correct"}
    be = by_prompt(**{"Verdict": lambda t, k: verdicts[t.split("Response:")[1].split()[0]], "default": lambda t, k: f"d{k}"})
    p = Pipeline("v")
    p.add("check", "verify", inputs=drafts(p, 4), model="fake/m", first_k=1, batch=2)
    res = run(p, "q", backends={"fake": be}, db=False)
    assert [c.text for c in res.candidates["check"]] == ["d1"]
    assert res.calls == 1 + 2  # the second wave never ran


def test_verify_none_pass_keeps_all_unverified_and_unparseable_noted():
    be = by_prompt(**{"Verdict": lambda t, k: "I am not sure." if "d0" in t else "Verdict: incorrect", "default": lambda t, k: f"d{k}"})
    p = Pipeline("v")
    p.add("check", "verify", inputs=drafts(p, 3), model="fake/m")
    res = run(p, "q", backends={"fake": be}, db=False)
    out = res.candidates["check"]
    assert [c.text for c in out] == ["d0", "d1", "d2"]
    assert all(c.meta["verified"] is False for c in out)
    assert all(any("verify fallback" in n for n in c.notes) for c in out)
    assert any("no verdict found" in n for n in out[0].notes)


def test_verify_in_two_steps_reads_the_reasoning_in_the_verdict_call():
    """steps 2 (the original Archon's verifier): a reasoning call with no verdict asked, then a
    verdict call that sees the reasoning; the verdict decides."""
    be = by_prompt(**{"Evaluation:": lambda t, k: "Verdict: correct" if "because d1" in t else "Verdict: incorrect",
                      "no verdict": lambda t, k: f"because {t.split('Response:')[1].split()[0]}",
                      "default": lambda t, k: f"d{k}"})
    p = Pipeline("v")
    p.add("check", "verify", inputs=drafts(p, 3), model="fake/m", steps=2)
    res = run(p, "q", backends={"fake": be}, db=False)
    assert [c.text for c in res.candidates["check"]] == ["d1"]
    assert res.calls == 1 + 2 * 3
    verdict_calls = [r.prompt_text() for r in be.requests if "Evaluation:" in r.prompt_text()]
    assert len(verdict_calls) == 3 and all("Verdict" not in r.prompt_text() for r in be.requests if "no verdict" in r.prompt_text())


# -- vote -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extractor, texts, answer",
    [
        ("last_number", ["so 12", "it is 12.0", "answer: 13"], "12"),
        ("boxed", ["\\boxed{x+1}", "\\boxed{ x + 1 }", "\\boxed{2}"], "x+1"),
        ("choice", ["The answer is (B)", "B", "answer: C"], "B"),
        ("text", ["Paris", " paris. ", "Lyon"], "paris"),
    ],
)
def test_vote_extractors(extractor, texts, answer):
    be = FunctionBackend(lambda r, k: texts[k])
    p = Pipeline("v")
    p.add("vote", "vote", inputs=drafts(p, 3), extractor=extractor)
    res = run(p, "q", backends={"fake": be}, db=False)
    (win,) = res.candidates["vote"]
    assert win.meta["answer"] == answer and win.score == pytest.approx(2 / 3) and win.meta["votes"] == 2
    assert res.calls == 1  # voting itself makes no call


def test_vote_regex_keep_all_and_tie_rule():
    texts = ["Answer: A", "Answer: B", "Answer: B", "Answer: A", "nothing"]
    be = FunctionBackend(lambda r, k: texts[k])
    p = Pipeline("v")
    p.add("vote", "vote", inputs=drafts(p, 5), extractor="regex", pattern=r"Answer: (\w)", keep="all")
    res = run(p, "q", backends={"fake": be}, db=False)
    out = res.candidates["vote"]
    # A and B tie 2-2: A's first candidate comes first in input order, so A wins
    assert [c.meta["answer"] for c in out] == ["A", "B"] and out[0].score == 0.5
    assert tally(["x", None, "y", "y"]) == [("y", [2, 3]), ("x", [0])]


def test_vote_with_no_answers_passes_inputs_through():
    be = FunctionBackend(lambda r, k: "no digits here")
    p = Pipeline("v")
    p.add("vote", "vote", inputs=drafts(p, 2))
    res = run(p, "q", backends={"fake": be}, db=False)
    assert len(res.candidates["vote"]) == 2 and "vote fallback" in res.candidates["vote"][0].notes[0]


def test_vote_regex_needs_pattern():
    with pytest.raises(SpecError, match="needs 'pattern'"):
        p = Pipeline("v")
        p.add("vote", "vote", inputs=drafts(p, 2), extractor="regex")
        p.build()


# -- route ----------------------------------------------------------------------------------------


def routed(signal: str = "agreement", **kw) -> Pipeline:
    p = Pipeline("routed")
    p.add("gauge", "route", model="fake/cheap", signal=signal, samples=5, thresholds=[0.6], branches=["strong", "cheap"], **kw)
    p.add("strong", "generate", inputs="gauge", model="fake/strong", prompt="{query}")
    p.add("cheap", "vote", inputs="gauge")
    p.add("answer", "merge", inputs=["strong", "cheap"])
    return p


def test_route_easy_query_takes_cheap_branch_and_reuses_samples():
    be = FunctionBackend(lambda r, k: "42" if r.model == "cheap" else "strong says 42")
    res = run(routed(), "easy", backends={"fake": be}, db=False)
    assert res.output == "42"
    assert [r.model for r in be.requests] == ["cheap"]  # the strong branch never ran
    assert res.candidates["strong"] == []
    assert res.candidates["gauge"][0].meta["route"] == {"signal": "agreement", "confidence": 1.0, "branch": "cheap"}


def test_route_hard_query_takes_strong_branch():
    be = FunctionBackend(lambda r, k: str(k) if r.model == "cheap" else "strong answer")
    res = run(routed(), "hard", backends={"fake": be}, db=False)
    assert res.output == "strong answer"
    assert sorted(r.model for r in be.requests) == ["cheap", "strong"]
    assert res.candidates["cheap"] == []


def test_route_self_rating_and_unreadable_rating():
    be = FunctionBackend(lambda r, k: ("8" if "easy" in r.prompt_text() else "no idea") if r.model == "cheap" else "S")
    p = Pipeline("rated")
    p.add("gauge", "route", model="fake/cheap", signal="self_rating", thresholds=[0.5], branches=["strong", "cheap"])
    p.add("strong", "generate", inputs="gauge", model="fake/strong", prompt="{query}")
    p.add("cheap", "generate", inputs="gauge", model="fake/cheap", prompt="{query}")
    p.add("answer", "merge", inputs=["strong", "cheap"])
    assert run(p, "easy one", backends={"fake": be}, db=False).candidates["cheap"]
    res = run(p, "hard one", backends={"fake": be}, db=False)
    assert res.output == "S" and any("route fallback: no rating" in n for n in res.notes)
    assert res.candidates["gauge"] == []


def test_route_verifier_signal():
    def fn(r, k):
        t = r.prompt_text()
        if "Verdict" in t:
            return "Verdict: correct" if "good" in t else "Verdict: incorrect"
        return "good" if r.model == "cheap" else "S"

    res = run(routed(signal="verifier"), "q", backends={"fake": FunctionBackend(fn)}, db=False)
    assert res.candidates["gauge"][0].meta["route"]["confidence"] == 1.0 and res.candidates["strong"] == []


@pytest.mark.parametrize(
    "change, message",
    [
        ({"branches": ["strong", "nope"]}, "no node 'nope'"),
        ({"thresholds": [0.6, 0.8]}, "2 thresholds make 3 bands"),
        ({"thresholds": [1.5]}, "ascending numbers between 0 and 1"),
    ],
)
def test_route_settings_are_checked(change, message):
    p = routed()
    p.nodes[0].update(change)
    with pytest.raises(SpecError, match=message):
        p.build()


def test_route_branch_must_read_the_route():
    p = routed()
    p.nodes[1]["inputs"] = []
    p.nodes[1]["prompt"] = "{query}"
    with pytest.raises(SpecError, match="must list it in 'inputs'"):
        p.build()


# -- the routing experiment -----------------------------------------------------------------------


def test_routing_keeps_strong_accuracy_with_fewer_strong_calls(capsys):
    """Items of known difficulty: the cheap model is right with probability p(item) and scatters its
    wrong answers; the strong model is right 95% of the time. Routing on agreement should keep >= 95%
    of always-strong accuracy while making <= 60% of its strong calls."""
    import random

    items = [(f"item {i}", (i * 7919) % 100 / 100) for i in range(100)]  # difficulty spread evenly over [0, 1)
    p_right = {q: 1.0 - d for q, d in items}  # easy items (d small): the cheap model is nearly always right

    def fn(req, k):
        q = req.prompt_text().split("]\n", 1)[-1].strip()
        rng = random.Random(f"{req.model}|{q}|{k}")
        p = p_right[q] if req.model == "cheap" else 0.95
        return "7" if rng.random() < p else str(rng.randint(100, 999))

    def accuracy(pipeline: Pipeline) -> tuple[float, int]:
        be = FunctionBackend(fn)
        right = sum(run(pipeline, q, backends={"fake": be}, db=False).output.strip() == "7" for q, _ in items)
        return right / len(items), sum(r.model == "strong" for r in be.requests)

    strong = Pipeline("strong")
    strong.add("answer", "generate", model="fake/strong")
    strong_acc, strong_calls = accuracy(strong)
    routed_acc, routed_calls = accuracy(routed())
    with capsys.disabled():
        print(f"\nrouting: always-strong accuracy {strong_acc:.2f} with {strong_calls} strong calls; "
              f"routed {routed_acc:.2f} with {routed_calls} strong calls "
              f"({routed_acc / strong_acc:.1%} of the accuracy, {routed_calls / strong_calls:.0%} of the strong calls)")
    assert routed_acc >= 0.95 * strong_acc
    assert routed_calls <= 0.60 * strong_calls


def test_extract_regex_first_group():
    assert extract("x Answer: 12 y Answer: 13", "regex", r"Answer: (\d+)") == "13"
