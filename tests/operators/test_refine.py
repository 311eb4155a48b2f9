"""refine on the doubles: code really runs in the sandbox, the models are scripted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from archon import Pipeline, Query, SpecError, run
from archon.bounds import calls_per_query
from archon.spec import parse_pipeline
from archon.testing.fake_server import FakeOpenAIServer
from backends.doubles import FunctionBackend
from operators.refine import Refine, as_comment, parse_rating
from tests.conftest import write
from tests.operators.test_unit_test import HALF, PROMPT, RIGHT, WRONG  # add(a, b): its doctests, right, wrong, half right


def refined(fn, *, samples: int = 1, query: str | Query = PROMPT, **settings):
    """(the refine node's candidates, the requests the model saw) of generate -> refine on ``fn``."""
    p = Pipeline("refine")
    p.add("draft", "generate", model="fake/m", samples=samples, mode="completion")
    p.add("fix", "refine", inputs="draft", model="fake/m", mode="completion", **settings)
    be = FunctionBackend(fn)
    res = run(p, query if isinstance(query, Query) else Query(query), backends={"fake": be}, db=False)
    assert res.calls == len(be.requests) <= calls_per_query(p.build())
    return res.candidates["fix"], be.requests


def repairs(requests) -> list[str]:
    return [r.prompt_text() for r in requests if "# A corrected version:" in r.prompt_text()]


def learns_from_failure(req, k: int) -> str:
    """Writes a - b first; writes a + b once its prompt shows the failing example and what it got."""
    text = req.prompt_text()
    return RIGHT if ">>> add(2, 3)" in text and "Got:\n#     -1" in text else WRONG


def test_the_failing_test_reaches_the_repair_and_refine_stops_once_clean():
    out, requests = refined(learns_from_failure, rounds=3, tests="doctest")
    assert [c.text for c in out] == [RIGHT]
    assert len(requests) == 2  # the draft and one repair: the repaired code passes, no second round
    info = out[0].meta["refine"]
    assert info["rounds_used"] == 1 and info["kept"] == 1 and info["clean"] is True
    assert info["scores"] == [0.0, 1.0] and info["feedback"][1] == "2 of 2 tests passed."
    assert out[0].meta["tests"] == {"passed": 2, "total": 2, "status": "passed"} and out[0].score == 1.0
    assert out[0].node == "fix" and "refine tests: 2 from doctest" in out[0].notes
    # A base model's prompt: the failing program, the feedback as comments, the task's header again.
    (prompt,) = repairs(requests)
    assert prompt.startswith(PROMPT + WRONG.rstrip("\n")) and prompt.endswith("# A corrected version:\n" + PROMPT)
    assert "# 0 of 2 tests passed. The first failing test:\n# >>> add(2, 3)\n# Expected:\n#     5\n# Got:\n#     -1" in prompt


def test_a_model_that_never_fixes_gets_exactly_rounds_repairs():
    out, requests = refined(lambda r, k: WRONG, samples=2, rounds=3)
    assert len(requests) == 1 + 2 * 3
    assert [c.meta["refine"]["rounds_used"] for c in out] == [3, 3]
    assert all(c.meta["refine"]["clean"] is False and c.text == WRONG for c in out)


def test_a_clean_candidate_is_never_repaired():
    out, requests = refined(lambda r, k: RIGHT, rounds=2)
    assert len(requests) == 1 and out[0].text == RIGHT and out[0].node == "draft"
    assert out[0].meta["refine"] == {"rounds_used": 0, "kept": 0, "clean": True, "feedback": ["2 of 2 tests passed."], "scores": [1.0]}


def test_keep_best_returns_the_version_that_passed_most():
    draft_then_worse = lambda r, k: WRONG if "# A corrected" in r.prompt_text() else HALF  # noqa: E731
    best, _ = refined(draft_then_worse, rounds=2)
    assert best[0].text == HALF and best[0].score == 0.5 and best[0].meta["refine"]["kept"] == 0
    last, _ = refined(draft_then_worse, rounds=2, keep="last")
    assert last[0].text == WRONG and last[0].score == 0.0 and last[0].meta["refine"]["kept"] == 2


def test_candidates_are_refined_independently_in_input_order():
    # sample 0 is right already; sample 1 is repaired (its repair asks for sample 1, so two equal
    # prompts from two candidates would not share one cached reply).
    fn = lambda r, k: learns_from_failure(r, k) if "# A corrected" in r.prompt_text() else [RIGHT, WRONG][k]  # noqa: E731
    out, requests = refined(fn, samples=2)
    assert [c.text for c in out] == [RIGHT, RIGHT]
    assert [c.meta["refine"]["rounds_used"] for c in out] == [0, 1]
    assert [r.samples for r in requests if "# A corrected" in r.prompt_text()] == [(1,)]


def test_chat_repairs_see_the_whole_program_and_may_answer_with_a_fenced_function():
    fixed = "```python\ndef add(a, b):\n    return a + b\n```"
    fn = lambda r, k: fixed if "Improved response:" in r.prompt_text() else WRONG  # noqa: E731
    p = Pipeline("refine-chat-code")
    p.add("draft", "generate", model="fake/m", mode="completion")
    p.add("fix", "refine", inputs="draft", model="fake/m")
    be = FunctionBackend(fn)
    out = run(p, Query(PROMPT), backends={"fake": be}, db=False).candidates["fix"]
    assert out[0].text == fixed and out[0].meta["refine"]["clean"] is True
    assert "Response:\n" + PROMPT + WRONG.rstrip("\n") + "\n\nFeedback:\n0 of 2 tests passed." in be.requests[1].prompt_text()


def test_without_tests_candidates_pass_through_with_a_note():
    out, requests = refined(lambda r, k: "four", query="What is 2 + 2?")
    assert len(requests) == 1 and out[0].text == "four"
    assert any("refine fallback: no tests found" in n for n in out[0].notes)


def test_candidate_text_reaches_the_prompt_byte_for_byte():
    hostile = "    return a - b  # {feedback} {query} {program}\n"
    fn = lambda r, k: RIGHT if "# A corrected" in r.prompt_text() else hostile  # noqa: E731
    out, requests = refined(fn, rounds=1)
    (prompt,) = repairs(requests)
    assert hostile.rstrip("\n") in prompt and prompt.count("{feedback}") == 1 and out[0].text == RIGHT


@pytest.mark.parametrize("body, tests, failure", [
    (WRONG, [{"kind": "assert", "code": "assert add(1, 2) == 3"}], "assert add(1, 2) == 3\nAssertionError"),
    ("    return 1 / 0\n", [{"kind": "doctest", "source": "add(2, 3)", "want": "5"}], ">>> add(2, 3)\nraised ZeroDivisionError: division by zero"),
    ("    return (\n", [{"kind": "doctest", "source": "add(2, 3)", "want": "5"}], "The program did not run: SyntaxError"),
    (RIGHT, [{"kind": "doctest", "source": "add(2, 3)", "want": "5"}], None),
])
def test_the_sandbox_names_the_first_failure(body, tests, failure):
    import asyncio

    from operators.unit_test import run_code_tests

    got = asyncio.run(run_code_tests(body, tests, Query(PROMPT), 10))["failure"]
    assert got == failure if failure is None else got.startswith(failure)


def test_feedback_lines_stay_comments():
    assert as_comment("a\n\nb = 1\n") == "# a\n#\n# b = 1"
    assert parse_rating("bad.\nRating: 3") == 3 and parse_rating("Rating: 10/10") == 10 and parse_rating("none") is None


# -- verifier and judge feedback (chat) --------------------------------------------------------------


def checked(fn, feedback: str, **settings):
    p = Pipeline("refine-chat")
    p.add("draft", "generate", model="fake/m")
    p.add("fix", "refine", inputs="draft", model="fake/m", critic="fake/critic", feedback=feedback, **settings)
    be = FunctionBackend(fn)
    res = run(p, "What is 2 + 2?", backends={"fake": be}, db=False)
    assert res.calls == len(be.requests) <= calls_per_query(p.build())
    return res.candidates["fix"], be.requests


def chat_model(req, k: int) -> str:
    """Answers five; the verifier rejects five and explains; the repair reads the explanation."""
    text = req.prompt_text()
    if "Verdict" in text.split("Response:")[0]:
        answer = text.split("Response:\n")[1].split("\n")[0]
        return "Verdict: correct" if answer == "4" else "Two plus two is 4, not five.\nVerdict: incorrect"
    if "Rating: N" in text:
        return "Rating: 9" if "Response:\n4" in text else "Wrong: 2 + 2 is 4.\nRating: 2"
    if "Improved response:" in text:
        return "4" if "is 4" in text.split("Feedback:")[1] else "five"
    return "five"


def test_verifier_feedback_repairs_from_the_reasoning():
    out, requests = checked(chat_model, "verifier", rounds=3)
    assert out[0].text == "4" and out[0].meta["refine"]["clean"] is True
    assert out[0].meta["refine"]["feedback"][0].startswith("Two plus two is 4, not five.")
    assert [r.model for r in requests] == ["m", "critic", "m", "critic"]  # draft, check, repair, check: stopped


def test_judge_feedback_stops_at_the_threshold():
    out, requests = checked(chat_model, "judge", rounds=2, threshold=8)
    assert out[0].text == "4" and out[0].score == 0.9 and len(requests) == 4
    strict, requests = checked(chat_model, "judge", rounds=2, threshold=10)
    assert strict[0].meta["refine"]["rounds_used"] == 2 and len(requests) == 1 + 2 * 2 + 1  # never clean: the bound


def test_a_reply_without_a_verdict_is_not_clean_and_is_noted():
    out, requests = checked(lambda r, k: "hmm", "verifier", rounds=1, keep="last")
    assert len(requests) == 1 + 2 and out[0].meta["refine"]["clean"] is None  # keep last: the last repair goes unchecked
    assert any("no verdict" in n for n in out[0].notes)


# -- settings ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("change, message", [
    ({"rounds": 0}, "rounds"),
    ({"rounds": 11}, "rounds"),
    ({"feedback": "vibes"}, "feedback"),
    ({"prompt": "{query} {candidate}"}, "must contain {feedback}"),
    ({"feedback_prompt": "{query}"}, "must contain {candidate}"),
])
def test_bad_settings_name_the_node(change, message):
    node = {"id": "fix", "op": "refine", "inputs": ["draft"], "model": "fake/m", **change}
    with pytest.raises(SpecError, match=message) as err:
        parse_pipeline({"name": "x", "nodes": [{"id": "draft", "op": "generate", "model": "fake/m"}, node]}, check_backends=False)
    assert "fix" in str(err.value)


def test_call_bound_per_feedback():
    cfg = Refine.Config.model_validate
    assert Refine("r", cfg({"model": "a/m", "rounds": 3})).call_bound(2) == (6, 2)
    assert Refine("r", cfg({"model": "a/m", "rounds": 3, "feedback": "verifier"})).call_bound(2) == (14, 2)
    assert Refine("r", cfg({"model": "a/m", "rounds": 3, "feedback": "judge", "keep": "last"})).call_bound(2) == (12, 2)


# -- archon search over a space with refine ---------------------------------------------------------

SPACE = """
name: refine-search
backends:
  srv: {base_url: "${ARCHON_BASE_URL}"}
nodes:
  - id: draft
    op: generate
    model: srv/m
    mode: completion
    prompt: "{query}"
    temperature: 0.0
  - id: fix
    op: refine
    optional: true
    inputs: [draft]
    model: srv/m
    mode: completion
    rounds: {choices: [1, 2]}
    keep: {choices: [best, last]}
"""


def test_archon_search_runs_a_space_with_refine(tmp_path):
    """The starter benchmark on a server whose drafts are wrong and whose repairs are the canonical solutions."""
    import archon.evals

    lines = (Path(archon.evals.__file__).with_name("data") / "code_starter.jsonl").read_text().splitlines()[:3]
    canonical = {row["prompt"]: row["canonical_solution"] for row in map(json.loads, lines)}

    def reply(prompt: str, k: int) -> str:
        if "# A corrected version:" in prompt:
            return next((s for p, s in canonical.items() if prompt.endswith(p)), "    pass\n")
        return "    return None\n"

    with FakeOpenAIServer(reply=reply) as srv:
        space = write(tmp_path, "space.yaml", SPACE)
        env = {**os.environ, "ARCHON_BASE_URL": srv.base_url, "ARCHON_DB_URL": f"sqlite:///{tmp_path / 's.db'}"}
        out = subprocess.run([sys.executable, "-m", "archon", "search", str(space), "--benchmark", "starter", "--limit", "3",
                              "--trials", "4", "--sampler", "random", "--seed", "1", "--json"],
                             capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert len(res["leaderboard"]) == 4 and res["best"]["score"] == 1.0 and "refine" in res["best"]["pipeline"]
