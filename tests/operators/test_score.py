"""score (judge, yes_prob, process) and vote's weights on the test doubles: parsing, order, fallbacks, cost."""

from __future__ import annotations

import math

import pytest

from archon import Pipeline, SpecError, run
from archon.types import Candidate
from backends.doubles import FunctionBackend, Sampled, ScriptedBackend
from operators.score import parse_rating, parse_step_ratings, parse_yes_no, split_steps
from operators.vote import log_weights


def drafts(p: Pipeline, n: int, **kw) -> str:
    return p.add("draft", "generate", model="fake/m", samples=n, **kw)


def judge_by_candidate(ratings: dict[str, str], default: str = "d"):
    """A backend: drafts answer ``d{k}``; the judge's reply depends on which draft its prompt shows."""

    def fn(req, k):
        text = req.prompt_text()
        if "Response:" not in text and "Solution steps:" not in text:
            return f"{default}{k}"
        for draft, reply in ratings.items():
            if f"\n{draft}\n" in text:
                return reply
        return "no idea"

    return FunctionBackend(fn)


# -- parsing ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("reply, rating", [
    ("Good answer. Rating: [[7]]", 7.0),
    ("Rating: [[7.5]]", 7.5),
    ("[[3]] at first... on reflection [[10]]", 10.0),
    ("Some reasoning.\nRating: 8/10", 8.0),
    ("**Rating:** 6", 6.0),
    ("Rating: [[11]]", None),       # out of range
    ("I'd give it a 7.", None),     # no marked rating
    ("Rating: 7 because it is close", None),  # a bare number must end its line
    ("", None),
])
def test_parse_rating_is_strict(reply, rating):
    assert parse_rating(reply) == rating


def test_parse_step_ratings_and_split_steps():
    assert parse_step_ratings("Step 1: [[9]]\nStep 2: 3/10\nStep 2: [[10]]\nStep 7: [[1]]\nnoise", 3) == {1: 9.0, 2: 3.0}
    assert split_steps("a = 1\nb = 2\n\n") == ["a = 1", "b = 2"]
    assert split_steps("First,\nstill first.\n\nSecond.") == ["First,\nstill first.", "Second."]


@pytest.mark.parametrize("reply, answer, opens", [
    ("Yes", True, True), ("No.", False, True), (" yes", True, True), ("\nYes", True, False), ("**Correct**", True, False),
    ("Maybe", None, False), ("", None, False),
])
def test_parse_yes_no(reply, answer, opens):
    assert parse_yes_no(reply) == (answer, opens)


# -- score: judge, order, top_k, fallbacks -----------------------------------------------------------


def test_judge_scores_sorts_and_keeps_top_k():
    be = judge_by_candidate({"d0": "Rating: [[4]]", "d1": "Fine. Rating: [[9]]", "d2": "no rating here", "d3": "[[9]]"})
    p = Pipeline("s")
    p.add("best", "score", inputs=drafts(p, 4), model="fake/judge", top_k=3)
    res = run(p, "q", backends={"fake": be}, db=False)
    best = res.candidates["best"]
    # Best first, the tie (d1, d3) in input order; the unscored d2 ranks last and is cut by top_k.
    assert [c.text for c in best] == ["d1", "d3", "d0"]
    assert [c.score for c in best] == [0.9, 0.9, 0.4]
    assert best[0].meta["rating"] == 9.0 and best[0].meta["score_method"] == "judge"
    assert res.calls == 1 + 4 and res.output == "d1"


def test_unparseable_rating_leaves_the_candidate_unscored_with_a_note():
    be = judge_by_candidate({"d0": "looks good", "d1": "Rating: [[2]]"})
    p = Pipeline("s")
    p.add("best", "score", inputs=drafts(p, 2), model="fake/judge")
    res = run(p, "q", backends={"fake": be}, db=False)
    d1, d0 = res.candidates["best"]
    assert (d1.text, d1.score, d0.text, d0.score) == ("d1", 0.2, "d0", None)
    assert any("no 'Rating: [[0-10]]'" in n for n in d0.notes) and not d1.notes


def test_a_candidate_cannot_score_itself():
    be = FunctionBackend(lambda req, k: "I cannot tell." if "Evaluation:" in req.prompt_text() else "4. Rating: [[10]]")
    p = Pipeline("s")
    p.add("best", "score", inputs=drafts(p, 1), model="fake/judge")
    assert run(p, "q", backends={"fake": be}, db=False).candidates["best"][0].score is None


# -- score: yes_prob ---------------------------------------------------------------------------------


def test_yes_prob_reads_the_first_tokens_logprob():
    replies = {"d0": Sampled("Yes", [math.log(0.8)]), "d1": Sampled("No", [math.log(0.7), -0.1]), "d2": Sampled("Maybe", [-1.0])}

    def fn(req, k):
        text = req.prompt_text()
        if "Yes or No" not in text:
            return f"d{k}"
        assert req.logprobs == 0 and req.max_tokens == 4 and req.temperature == 0.0
        return next(r for d, r in replies.items() if f"\n{d}\n" in text)

    p = Pipeline("s")
    p.add("best", "score", inputs=drafts(p, 3), model="fake/judge", method="yes_prob")
    best = run(p, "q", backends={"fake": FunctionBackend(fn)}, db=False).candidates["best"]
    assert [c.text for c in best] == ["d0", "d1", "d2"]
    assert best[0].score == pytest.approx(0.8) and best[1].score == pytest.approx(0.3) and best[2].score is None
    assert best[0].meta["score_source"] == "logprobs" and not best[0].notes


def test_yes_prob_without_logprobs_falls_back_to_the_text():
    be = judge_by_candidate({"d0": "No", "d1": "Yes, it is."})
    p = Pipeline("s")
    p.add("best", "score", inputs=drafts(p, 2), model="fake/judge", method="yes_prob")
    d1, d0 = run(p, "q", backends={"fake": be}, db=False).candidates["best"]
    assert (d1.score, d0.score) == (1.0, 0.0) and d1.meta["score_source"] == "text"
    assert "score fallback: the backend returned no logprobs; scored the text's Yes as 1.0" in d1.notes


# -- score: process (PRM) -----------------------------------------------------------------------------


@pytest.mark.parametrize("aggregate, score", [("last", 0.8), ("min", 0.3)])
def test_process_rates_each_step(aggregate, score):
    seen = []

    def fn(req, k):
        text = req.prompt_text()
        if "Solution steps:" not in text:
            return "x = 2\ny = x + 1\nanswer: 3"
        seen.append(text)
        return "Step 1: [[9]]\nStep 2: [[3]]\nStep 3: [[8]]"

    p = Pipeline("s")
    p.add("best", "score", inputs=drafts(p, 1), model="fake/prm", method="process", aggregate=aggregate)
    (c,) = run(p, "q", backends={"fake": FunctionBackend(fn)}, db=False).candidates["best"]
    assert c.score == pytest.approx(score) and c.meta["step_ratings"] == [9.0, 3.0, 8.0]
    assert "Step 1: x = 2\nStep 2: y = x + 1\nStep 3: answer: 3" in seen[0]


def test_process_with_missing_steps_notes_it():
    be = ScriptedBackend(["a\nb\nc", "Step 1: [[6]]\nStep 2: [[7]]"])
    p = Pipeline("s")
    p.add("best", "score", inputs=drafts(p, 1), model="fake/prm", method="process")
    (c,) = run(p, "q", backends={"fake": be}, db=False).candidates["best"]
    assert c.score == pytest.approx(0.7) and c.meta["step_ratings"] == [6.0, 7.0, None]
    assert "score: the judge rated 2 of 3 steps; scored on those" in c.notes


def test_score_settings_are_checked():
    with pytest.raises(SpecError, match="method"):
        p = Pipeline("s")
        p.add("best", "score", inputs=drafts(p, 1), model="fake/j", method="vibes")
        p.build()
    with pytest.raises(SpecError, match="top_k"):
        p = Pipeline("s")
        p.add("best", "score", inputs=drafts(p, 1), model="fake/j", top_k=0)
        p.build()


# -- generate's logprobs and the weighted vote: the must-show ----------------------------------------


def sampled(answers: dict[int, tuple[str, float]]):
    """Sample k reasons its own way (distinct texts, as sampled paths are) to ``answers[k][0]``, with
    4 tokens of logprob ``answers[k][1]`` each."""
    return FunctionBackend(lambda req, k: Sampled(f"Path {k}: the answer is {answers[k][0]}", [answers[k][1]] * 4))


def answer(res) -> str:
    return res.candidates["vote"][0].meta["answer"]


def voted(weight: str, n: int) -> Pipeline:
    p = Pipeline("v")
    p.add("vote", "vote", inputs=drafts(p, n, logprobs=True), weight=weight)
    return p


# Three confident-looking but improbable samples say 5; two probable ones say 4 (the right answer).
MAJORITY_WRONG = {0: ("5", -2.0), 1: ("4", -0.1), 2: ("5", -2.5), 3: ("4", -0.2), 4: ("5", -1.5)}
MAJORITY_RIGHT = {0: ("4", -0.1), 1: ("5", -2.0), 2: ("4", -0.3), 3: ("5", -0.2), 4: ("4", -1.0)}


def test_generate_keeps_the_sampled_tokens_logprobs():
    res = run(voted("none", 5), "q", backends={"fake": sampled(MAJORITY_WRONG)}, db=False)
    draft = res.candidates["draft"]
    assert draft[1].logprobs == (-0.1,) * 4 and draft[1].mean_logprob() == pytest.approx(-0.1)


@pytest.mark.parametrize("weight", ["logprob", "perplexity"])
def test_weighted_vote_picks_the_probable_minority_plain_vote_does_not(weight):
    plain = run(voted("none", 5), "q", backends={"fake": sampled(MAJORITY_WRONG)}, db=False)
    weighted = run(voted(weight, 5), "q", backends={"fake": sampled(MAJORITY_WRONG)}, db=False)
    assert answer(plain) == "5" and plain.candidates["vote"][0].score == pytest.approx(0.6)
    assert answer(weighted) == "4"
    top = weighted.candidates["vote"][0]
    assert top.meta["weighted_by"] == weight and top.meta["votes"] == 2 and top.score > 0.5 and not top.notes


@pytest.mark.parametrize("weight", ["none", "logprob", "perplexity"])
def test_a_probable_majority_wins_either_way(weight):
    res = run(voted(weight, 5), "q", backends={"fake": sampled(MAJORITY_RIGHT)}, db=False)
    assert answer(res) == "4"


def test_score_weighted_vote_picks_the_better_scored_minority():
    def fn(req, k):
        text = req.prompt_text()
        if "Response:" in text:
            return "Rating: [[9]]" if "is 4" in text else "Rating: [[2]]"
        return f"The answer is {MAJORITY_WRONG[k][0]}"

    def pipeline(weight: str) -> Pipeline:
        p = Pipeline("sv")
        s = p.add("scored", "score", inputs=drafts(p, 5), model="fake/judge")
        p.add("vote", "vote", inputs=s, weight=weight)
        return p

    plain = run(pipeline("none"), "q", backends={"fake": FunctionBackend(fn)}, db=False)
    weighted = run(pipeline("score"), "q", backends={"fake": FunctionBackend(fn)}, db=False)
    assert plain.output == "The answer is 5"
    assert weighted.output == "The answer is 4"
    assert weighted.candidates["vote"][0].score == pytest.approx(1.8 / (1.8 + 0.6))


def test_weighted_vote_without_logprobs_falls_back_to_the_majority():
    be = FunctionBackend(lambda req, k: f"The answer is {MAJORITY_WRONG[k][0]}")  # no Sampled: no logprobs
    res = run(voted("logprob", 5), "q", backends={"fake": be}, db=False)
    assert answer(res) == "5"
    assert any("vote fallback: 5 of 5 voters lack logprobs" in n for n in res.notes)
    assert any("returned no logprobs" in n for n in res.notes)  # generate says so too


def test_logprob_weights_count_identical_paths_once():
    cands = [Candidate("a 1", node="d", logprobs=(-1.0, -1.0)), Candidate("a 1", node="d", logprobs=(-1.0, -1.0)),
             Candidate("b 2", node="d", logprobs=(-0.5,)), Candidate("c", node="d", score=0.0)]
    assert log_weights(cands, "logprob") == [-2.0, -math.inf, -0.5, None]
    assert log_weights(cands, "perplexity") == [-1.0, -1.0, -0.5, None]
    assert log_weights(cands, "score")[3] == -math.inf and log_weights(cands, "none") == [0.0] * 4


def test_long_paths_do_not_underflow():
    # exp(-2000) is 0.0 in floating point; summed in log space the more probable path still wins.
    answers = {0: ("7", -500.0), 1: ("7", -500.0), 2: ("8", -499.0)}  # 7: 2 e^-2000 < 8: e^-1996
    res = run(voted("logprob", 3), "q", backends={"fake": sampled(answers)}, db=False)
    assert answer(res) == "8"


def test_a_repeated_path_counts_once_under_logprob_weights():
    # Three copies of one path (probability e^-4) against one other path (e^-3.5): RPC sums distinct
    # paths, so the more probable answer wins; counted per copy it would lose (3 e^-4 > e^-3.5).
    replies = [Sampled("The answer is 5", [-1.0] * 4)] * 3 + [Sampled("I get 4", [-0.875] * 4)]
    res = run(voted("logprob", 4), "q", backends={"fake": ScriptedBackend(replies)}, db=False)
    assert answer(res) == "4" and res.candidates["vote"][0].meta["votes"] == 1


def test_scores_and_logprobs_replay_from_the_cache(tmp_path):
    def fn(req, k):
        if "Yes or No" in req.prompt_text():
            return Sampled("Yes", [math.log(0.9)]) if "is 4" in req.prompt_text() else Sampled("No", [math.log(0.6)])
        return Sampled(f"Path {k}: the answer is {MAJORITY_WRONG[k][0]}", [MAJORITY_WRONG[k][1]] * 4)

    p = Pipeline("cached")
    s = p.add("scored", "score", inputs=drafts(p, 5, logprobs=True), model="fake/judge", method="yes_prob")
    p.add("vote", "vote", inputs=s, weight="score")
    be, db = FunctionBackend(fn), str(tmp_path / "a.db")
    first = run(p, "q", backends={"fake": be}, db=db)
    second = run(p, "q", backends={"fake": be}, db=db)
    assert len(be.requests) == first.calls == 6 and second.cached_calls == second.calls == 6
    assert answer(first) == answer(second) == "4"
    assert [c.score for c in second.candidates["scored"]] == [c.score for c in first.candidates["scored"]]
    assert [c.logprobs for c in second.candidates["draft"]] == [c.logprobs for c in first.candidates["draft"]]
