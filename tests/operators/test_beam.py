"""beam (step-level search, beam and particle) on the test doubles: the must-show (beam search finds the
one right step sequence where a greedy chain does not), its cost against call_bound, fallbacks, the
cache, and `archon search` over a space with {choices} on its settings."""

from __future__ import annotations

import re

import pytest

from archon import Pipeline, SpecError, run
from archon.bounds import calls_per_query
from backends.doubles import FunctionBackend
from tests.conftest import search_over_fake_server

QUERY = "Make 24 from 3, 4 and 2."
RIGHT = ["Step 1: 3 * 4 = 12.", "Step 2: 12 * 2 = 24.", "Step 3: The answer is 24."]
# The sample index of the right next step at each depth (k % 3): sample 0 is wrong at the first step,
# so a greedy chain (one sample per step) takes a wrong turn at once and never recovers.
RIGHT_OPTION = [1, 2, 0]


def steps_so_far(prompt: str) -> list[str]:
    partial = prompt.split("Steps so far:\n", 1)[1].split("\n\nNext step:", 1)[0]
    return partial.split("\n\n") if partial else []


def next_step(steps: list[str], k: int) -> str:
    """Three possible next steps (k % 3); only the right option after a right prefix stays right."""
    depth, option = len(steps), k % 3
    if steps == RIGHT[:depth] and option == RIGHT_OPTION[depth]:
        return RIGHT[depth]
    if depth == 2:
        return f"Step 3: The answer is {20 + option}."
    return f"Step {depth + 1}: 3 + 4 = 7, guess {option}."


def rate(prompt: str) -> str:
    """A process scorer that knows the right steps: each step of a right prefix [[9]], any later one [[2]]."""
    lines = re.findall(r"^Step \d+: (.*)$", prompt.split("Solution steps:\n", 1)[1], re.MULTILINE)
    right = 0
    while right < len(lines) and right < len(RIGHT) and lines[right] == RIGHT[right]:
        right += 1
    return "\n".join(f"Step {i}: [[{9 if i <= right else 2}]]" for i in range(1, len(lines) + 1))


def puzzle(req, k: int) -> str:
    prompt = req.prompt_text()
    return rate(prompt) if "Step ratings:" in prompt else next_step(steps_so_far(prompt), k)


def searched(**settings) -> Pipeline:
    p = Pipeline("beam")
    p.add("solve", "beam", **{"model": "fake/m", "scorer": "fake/prm", **settings})
    return p


def solve(fn, **settings):
    be = FunctionBackend(fn)
    spec = searched(**settings).build()
    res = run(spec, QUERY, backends={"fake": be}, db=False)
    assert res.calls == len(be.requests)
    return res, len(be.requests), calls_per_query(spec)


# -- the must-show ------------------------------------------------------------------------------------


def test_beam_search_finds_the_one_right_sequence_a_greedy_chain_misses():
    greedy, greedy_calls, greedy_bound = solve(puzzle, width=1, expansions=1, max_steps=5)
    beam, beam_calls, beam_bound = solve(puzzle, width=2, expansions=3, max_steps=5)
    print(f"\ngreedy chain: {greedy.output!r} in {greedy_calls} calls (bound {greedy_bound}); "
          f"beam 2x3: {beam.output!r} in {beam_calls} calls (bound {beam_bound})")
    assert greedy.output.endswith("The answer is 20.")
    assert beam.output == "\n\n".join(RIGHT)
    (best,) = beam.candidates["solve"]
    assert best.score == pytest.approx(0.9) and best.meta["steps"] == 3 and best.meta["finished"]
    assert best.meta["step_ratings"] == [9.0, 9.0, 9.0] and not best.notes
    # Both finish after 3 of 5 steps: greedy 3 x (1 request + 1 score); beam: 1 request (6 samples, 3
    # distinct steps scored), then 2 x (2 requests + 6 scores).
    assert greedy_calls == 6 < greedy_bound == 10
    assert beam_calls == 1 + 3 + 2 * (2 + 6) < beam_bound == 1 + 4 * 2 + 5 * 6


def test_particle_filtering_finds_it_too_and_replays_the_same_draws():
    settings = {"method": "particle", "width": 4, "expansions": 1, "max_steps": 4, "resample_temperature": 0.1}
    first, calls, bound = solve(puzzle, **settings)
    again, _, _ = solve(puzzle, **settings)
    assert first.output == again.output == "\n\n".join(RIGHT)
    assert first.candidates["solve"][0].meta["method"] == "particle"
    assert calls <= bound == 1 + 3 * 4 + 4 * 4


def distinct(req, k: int) -> str:
    """Every step distinct, none final, every step rated: each step runs at its worst case."""
    prompt = req.prompt_text()
    if "Step ratings:" in prompt:
        n = prompt.split("Solution steps:\n", 1)[1].count("\nStep ") + 1
        return "\n".join(f"Step {i}: [[{(len(prompt) + i) % 11}]]" for i in range(1, n + 1))
    return f"Try {len(steps_so_far(prompt))}.{k}"


@pytest.mark.parametrize("width, expansions, max_steps", [(1, 1, 3), (2, 3, 3), (3, 2, 4), (4, 1, 2)])
def test_calls_equal_call_bound_when_nothing_finishes(width, expansions, max_steps):
    res, calls, bound = solve(distinct, width=width, expansions=expansions, max_steps=max_steps)
    assert calls == bound == 1 + (max_steps - 1) * width + max_steps * width * expansions
    (best,) = res.candidates["solve"]
    assert best.meta["steps"] == max_steps and not best.meta["finished"]
    assert best.notes == (f"beam: no solution finished within {max_steps} steps (no step matched 'done'); kept the best partial",)


def test_particle_calls_stay_within_the_bound():
    _, calls, bound = solve(distinct, method="particle", width=3, expansions=2, max_steps=3)
    assert calls <= bound == 1 + 2 * 3 + 3 * 6


# -- requests, fallbacks, cache -----------------------------------------------------------------------


def test_each_request_stops_at_the_delimiter_and_shows_the_partial_in_completion_mode():
    be = FunctionBackend(lambda req, k: "Step 2: [[5]]\nStep 1: [[5]]" if "Step ratings:" in req.prompt_text()
                         else f"line {k}\n\nmore that a server ignoring stop sent")
    spec = searched(mode="completion", width=1, expansions=2, max_steps=2, step_delimiter="\n\n", keep=2).build()
    res = run(spec, QUERY, backends={"fake": be}, db=False)
    gens = [r for r in be.requests if "Step ratings:" not in r.prompt_text()]
    assert [r.prompt for r in gens] == [f"{QUERY}\n\n", f"{QUERY}\n\nline 0\n\n"]
    assert all(r.stop == ("\n\n",) and r.mode == "completion" for r in gens)
    assert [r.samples for r in gens] == [(0, 1), (0, 1)]
    assert [c.text for c in res.candidates["solve"]] == ["line 0\n\nline 0", "line 0\n\nline 1"]


def test_an_unrated_search_keeps_the_order_sampled_with_a_note():
    res, _, _ = solve(lambda req, k: "no ratings" if "Step ratings:" in req.prompt_text() else f"The answer is {k}.",
                      width=2, expansions=2)
    (best,) = res.candidates["solve"]
    assert best.text == "The answer is 0." and best.score is None
    assert "beam: the scorer rated none of the steps of 4 of 4 partial solutions; those ranked last" in best.notes


def test_a_rerun_replays_every_call_from_the_cache(tmp_path):
    be, db = FunctionBackend(puzzle), str(tmp_path / "c.db")
    first = run(searched(width=2, expansions=3), QUERY, backends={"fake": be}, db=db)
    second = run(searched(width=2, expansions=3), QUERY, backends={"fake": be}, db=db)
    assert len(be.requests) == first.calls and second.cached_calls == second.calls == first.calls
    assert first.output == second.output == "\n\n".join(RIGHT)


@pytest.mark.parametrize("settings, field", [({"width": 0}, "width"), ({"method": "greedy"}, "method"),
                                             ({"done": "("}, "done"), ({"step_delimiter": ""}, "step_delimiter")])
def test_settings_are_checked(settings, field):
    with pytest.raises(SpecError, match=field):
        searched(**settings).build()


# -- archon search --------------------------------------------------------------------------------------

SPACE = """
name: beam-space
backends:
  srv: {base_url: "${ARCHON_BASE_URL}"}
nodes:
  - id: solve
    op: beam
    model: srv/m
    method: {choices: [beam, particle]}
    width: {choices: [1, 2]}
    expansions: {choices: [1, 3]}
    max_steps: 4
    resample_temperature: 0.1
"""


def test_archon_search_over_a_space_with_beam(tmp_path):
    def reply(prompt: str, k: int) -> str:
        return rate(prompt) if "Step ratings:" in prompt else next_step(steps_so_far(prompt), k)

    items = [{"id": f"q{i}", "question": QUERY, "answer": "24"} for i in range(3)]
    res, best = search_over_fake_server(tmp_path, SPACE, items, reply, trials=4, seed=1)
    assert {"solve.method", "solve.width", "solve.expansions"} <= {k for row in res["leaderboard"] for k in row["params"]}
    # No score is asserted: the fake server numbers a request's choices from 0, so a trial that reuses
    # another's cached first samples gets different texts for the rest than a fresh run would.
    assert all(0 <= row["score"] <= 1 for row in res["leaderboard"]) and "op: beam" in best
