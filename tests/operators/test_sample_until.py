"""sample_until (adaptive sampling) on the doubles: the must-show mix of easy and hard items, the
verifier stop rule, waves that replay from the cache, settings checked, and the eval report's
mean samples per query."""

from __future__ import annotations

import json
import random
import re

import pytest

import archon
from archon import Pipeline, run
from archon.exceptions import SpecError
from archon.spec import parse_pipeline
from backends.doubles import FunctionBackend
from tests.conftest import search_over_fake_server, write

EASY, HARD = 70, 30
MAX = 16


def _truth(i: int) -> int:
    return 100 + i


def _item_reply(request, k: int) -> str:
    """Item i's sample k. Easy items (i < 70) always answer right. Hard item j is right with
    probability 0.3 + 0.4 * j / 29 (0.30 to 0.70), else one of three wrong answers, drawn from a
    generator seeded by (item, sample): the same sample whichever run or wave asks for it."""
    i = int(re.search(r"Item (\d+):", request.prompt_text()).group(1))
    if i < EASY:
        return f"The answer is {_truth(i)}."
    rng = random.Random(f"{i}-{k}")
    p_right = 0.3 + 0.4 * (i - EASY) / (HARD - 1)
    answer = _truth(i) if rng.random() < p_right else _truth(i) + rng.choice([1, 2, 3])
    return f"Reasoning... The answer is {answer}."


def _items(tmp_path):
    rows = [{"id": f"q{i}", "question": f"Item {i}: what is the number?", "answer": str(_truth(i))} for i in range(EASY + HARD)]
    return write(tmp_path, "mix.jsonl", "".join(json.dumps(r) + "\n" for r in rows))


def _voted(name: str, op: str, **settings) -> Pipeline:
    p = Pipeline(name)
    p.add("vote", "vote", inputs=p.add("draft", op, model="fake/m", temperature=0.8, **settings))
    return p


def test_adaptive_keeps_90_percent_of_16_sample_accuracy_with_40_percent_of_the_samples(tmp_path):
    items = _items(tmp_path)
    # Two stores: with one, the adaptive run would replay every sample from the 16-sample run's cache.
    fixed = archon.evaluate(_voted("vote-16", "generate", samples=MAX), str(items), backends={"fake": FunctionBackend(_item_reply)},
                            db=f"sqlite:///{tmp_path / 'fixed.db'}")
    backend = FunctionBackend(_item_reply)
    adaptive = archon.evaluate(_voted("adaptive", "sample_until", max_samples=MAX), str(items), backends={"fake": backend},
                               db=f"sqlite:///{tmp_path / 'adaptive.db'}")
    assert fixed.ok and adaptive.ok and fixed.n == adaptive.n == EASY + HARD
    drawn = sum(len(r.samples) for r in backend.requests)
    assert adaptive.samples_per_query == drawn / adaptive.n  # the report counts what reached the model
    assert fixed.samples_per_query is None  # no adaptive node: nothing to report
    kept, spent = adaptive.score / fixed.score, adaptive.samples_per_query / MAX
    print(f"\n16-sample vote: accuracy {fixed.score:.2f} at {MAX} samples per query; adaptive: accuracy "
          f"{adaptive.score:.2f} at {adaptive.samples_per_query} samples per query ({kept:.0%} of the accuracy, {spent:.0%} of the samples)")
    assert kept >= 0.9 and spent <= 0.4
    assert "samples per query" in str(adaptive) and adaptive.to_dict()["samples_per_query"] == adaptive.samples_per_query
    # The count is stored with each item: a resumed evaluation that runs nothing reports it the same.
    again = archon.evaluate(_voted("adaptive", "sample_until", max_samples=MAX), str(items), backends={"fake": backend},
                            db=f"sqlite:///{tmp_path / 'adaptive.db'}")
    assert again.ran == 0 and again.score == adaptive.score and again.samples_per_query == adaptive.samples_per_query


def test_easy_query_stops_after_one_wave_hard_one_at_max_samples():
    p = Pipeline("adaptive")
    p.add("draft", "sample_until", model="fake/m", max_samples=8, wave=2, stop=["END"])
    easy = FunctionBackend(lambda r, k: "42")
    res = run(p.build(), "q", backends={"fake": easy}, db=False)
    assert [r.samples for r in easy.requests] == [(0, 1)] and res.samples_used == 2
    assert easy.requests[0].stop == ("END",)  # 'stop' is the stop sequences, as for generate; the rule is 'until'
    assert res.candidates["draft"][0].meta == {"samples_used": 2, "stopped": "agree", "agreement": 1.0} and not res.notes
    hard = FunctionBackend(lambda r, k: f"answer {k % 3}")
    res = run(p.build(), "q", backends={"fake": hard}, db=False)
    assert [r.samples for r in hard.requests] == [(0, 1), (2, 3), (4, 5), (6, 7)] and res.samples_used == 8
    out = res.candidates["draft"]
    assert [c.sample for c in out] == [0, 3, 6, 1, 2, 4, 5, 7]  # the plurality (answer 0) first, then the rest as drawn
    assert out[0].meta["stopped"] == "max" and "no stop after 8 samples (agreement 0.38 < 0.75)" in res.notes[0]


def test_agreement_needs_min_agree_and_is_pooled_over_an_ensemble():
    p = Pipeline("ensemble")
    p.add("draft", "sample_until", model=["fake/a", "fake/b"], wave=1, max_samples=4, keep="first")
    be = FunctionBackend(lambda r, k: "7" if r.model == "a" or k >= 1 else "8")
    res = run(p.build(), "q", backends={"fake": be}, db=False)
    # wave 1: 7 and 8 (share 0.5); wave 2: 7, 7 -> 3 of 4 agree
    assert len(be.requests) == 4 and res.output == "7" and res.samples_used == 4 and len(res.candidates["draft"]) == 1
    single = Pipeline("one")
    single.add("draft", "sample_until", model="fake/a", wave=1, max_samples=3)
    be = FunctionBackend(lambda r, k: "7")
    assert run(single.build(), "q", backends={"fake": be}, db=False).samples_used == 2  # one sample never agrees with itself


def _verifying(**kw) -> Pipeline:
    p = Pipeline("verified")
    p.add("draft", "sample_until", model="fake/m", verifier="fake/judge", until="verify", wave=2, max_samples=6, **kw)
    return p


def test_verify_stops_at_the_first_verified_sample_and_puts_it_first():
    def reply(r, k):
        if r.model == "judge":
            return "Looks right.\nVerdict: correct" if "draft 3" in r.prompt_text() else "Verdict: incorrect"
        return f"draft {k}"

    be = FunctionBackend(reply)
    res = run(_verifying().build(), "q", backends={"fake": be}, db=False)
    judged = [r for r in be.requests if r.model == "judge"]
    assert len(be.requests) == 2 + 4 and len(judged) == 4 and all(r.temperature == 0 for r in judged)
    assert res.output == "draft 3" and res.samples_used == 4
    assert [c.text for c in res.candidates["draft"]] == ["draft 3", "draft 0", "draft 1", "draft 2"]
    none = FunctionBackend(lambda r, k: "Verdict: incorrect" if r.model == "judge" else f"draft {k}")
    res = run(_verifying().build(), "q", backends={"fake": none}, db=False)
    assert res.samples_used == 6 and res.output == "draft 0" and "no sample verified" in res.notes[0]


def test_waves_continue_the_sample_indices_so_reruns_and_generate_share_the_cache(tmp_path):
    db = f"sqlite:///{tmp_path / 'c.db'}"
    be = FunctionBackend(lambda r, k: f"answer {k % 3}")
    pre = Pipeline("pre")
    pre.add("draft", "generate", model="fake/m", samples=4, temperature=0.8)
    run(pre.build(), "q", backends={"fake": be}, db=db)
    p = Pipeline("adaptive")
    p.add("draft", "sample_until", model="fake/m", max_samples=6, wave=2, temperature=0.8)
    first = run(p.build(), "q", backends={"fake": be}, db=db)
    assert [r.samples for r in be.requests] == [(0, 1, 2, 3), (4, 5)]  # the first two waves came from generate's samples
    again = run(p.build(), "q", backends={"fake": be}, db=db)
    assert len(be.requests) == 2 and again.output == first.output and again.cached_calls == again.calls == 3


@pytest.mark.parametrize(("settings", "message"), [
    ({"until": "verify"}, "until 'verify' needs 'verifier'"),
    ({"extractor": "regex"}, "extractor 'regex' needs 'pattern'"),
    ({"threshold": 0}, "threshold"),
    ({"pattern": "Answer: (", "extractor": "regex"}, "not a valid regular expression"),
])
def test_bad_settings_name_the_node_and_the_fix(settings, message):
    data = {"name": "bad", "nodes": [{"id": "draft", "op": "sample_until", "model": "fake/m", **settings}]}
    with pytest.raises(SpecError, match="draft") as err:
        parse_pipeline(data, check_backends=False)
    assert message in str(err.value)


def test_a_wave_larger_than_max_samples_is_one_wave():
    p = Pipeline("big-wave")
    p.add("draft", "sample_until", model="fake/m", max_samples=3, wave=8)
    be = FunctionBackend(lambda r, k: f"answer {k}")
    assert run(p.build(), "q", backends={"fake": be}, db=False).samples_used == 3 and [r.samples for r in be.requests] == [(0, 1, 2)]


def test_public_names():
    import operators.sample_until as mod

    assert mod.__all__ == ["SampleUntil", "SampleUntilConfig"]


SPACE = """
name: adaptive-space
backends:
  srv: {base_url: "${ARCHON_BASE_URL}"}
nodes:
  - id: draft
    op: sample_until
    model: srv/m
    verifier: srv/judge
    until: {choices: [agree, verify]}
    wave: {choices: [1, 2, 4]}
    max_samples: {choices: [4, 8]}
    threshold: {choices: [0.6, 0.9]}
  - id: answer
    op: vote
    optional: true
    inputs: [draft]
"""


def test_archon_search_over_a_space_with_sample_until(tmp_path):
    def reply(prompt: str, k: int) -> str:
        if "Verdict" in prompt:
            return "Verdict: correct" if "is 1." in prompt else "Verdict: incorrect"
        return "The answer is 1." if k % 2 == 0 else "The answer is 2."

    items = [{"id": f"q{i}", "question": f"What is {i} times zero plus one?", "answer": "1"} for i in range(4)]
    res, best = search_over_fake_server(tmp_path, SPACE, items, reply, trials=5, seed=3)
    params = {k for row in res["leaderboard"] for k in row["params"]}
    assert {"draft.until", "draft.wave", "draft.max_samples", "draft.threshold"} <= params
    assert "op: sample_until" in best
