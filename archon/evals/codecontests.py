"""CodeContests (Li et al. 2022), as Archon evaluates it: write a whole Python program that reads
standard input and writes standard output; it is run on the problem's tests in the sandbox.

The pipeline sees the problem statement and, in ``query.data["public_tests"]``, the public tests
(the statement's own examples), which selection nodes such as ``unit_test`` run candidates against.
The ``stdio`` scorer runs the answer's program on the *private and generated* tests, hidden from the
pipeline, and compares stdout with the expected output ignoring trailing whitespace on each line and
at the end (operators/stdio_tests.py); an item scores 1 when every one of them passes.

Where this differs from the original Archon (archon/benchmarks.py, which took the harness of
ScalingIntelligence/large_language_monkeys): Archon grades on public + private + generated tests
with each problem's own time limit plus 10 s, and prefixes one solved training problem as a
few-shot example. Here the public tests only select (grading on tests the pipeline saw would be
optimistic), every test gets ``ScoreContext.code_timeout`` seconds (the subset does not carry the
time limits), and no few-shot example is shown (the shipped subset is itself from the train split).
"""

from __future__ import annotations

__all__ = ["CODECONTESTS", "codecontests_item", "score_stdio"]

from typing import TYPE_CHECKING, Any

from archon.evals.prompts import PromptSet
from operators.code_tests import extract_code
from operators.stdio_tests import run_stdio_tests, stdio_tests

if TYPE_CHECKING:
    from archon.evals.datasets import Item
    from archon.evals.scorers import Score, ScoreContext

# The fields of a record the scorer grades by; ``public_tests`` are the visible ones.
HIDDEN_TESTS = "private_tests"

# Archon's prompt (archon/benchmarks.py PROMPT, sent with the system message "You are a coding
# assistant."; give a generate node that `system:` to match it). The same text serves base models,
# which continue after "A:".
_ARCHON_PROMPT = ("Q: Write python code to solve the following coding problem that obeys the constraints and passes the "
                  "example test cases. The output code needs to read from and write to standard IO. Please wrap your code "
                  "answer using ```:\n{input}\nA:")
CODECONTESTS = PromptSet(chat=_ARCHON_PROMPT, completion=_ARCHON_PROMPT, stop=("\nQ: ",))


def codecontests_item(rec: dict[str, Any], where: str, n: int) -> Item:
    """One problem of ``codecontests_subset.jsonl`` (fields: see its NOTICE)."""
    from archon.evals._builtins import _item, _need
    from archon.exceptions import SpecError

    description = _need(rec, "description", where)
    public, private = rec.get("public_tests") or [], _need(rec, "private_or_generated_tests", where, list)
    if not stdio_tests(private):
        raise SpecError(f"{where}: field 'private_or_generated_tests' must be a non-empty list of "
                        "{\"input\": ..., \"output\": ...} records (the tests that score the program).")
    if public and not stdio_tests(public):
        raise SpecError(f"{where}: field 'public_tests' must be a list of {{\"input\": ..., \"output\": ...}} records.")
    data: dict[str, Any] = {"public_tests": public, HIDDEN_TESTS: private}
    for key in ("name", "source", "difficulty", "cf_tags", "exact_match_may_reject_correct_output"):
        if key in rec:
            data[key] = rec[key]
    if isinstance(rec.get("reference_solution_python3"), str):
        data["reference_solution"] = rec["reference_solution_python3"]
    return _item(rec.get("id", f"codecontests-{n}"), description, None, data)


async def score_stdio(output: str, item: Item, ctx: ScoreContext) -> Score:
    """1 when the program in ``output`` (the largest fenced code block, else the whole text) passes
    every hidden stdin/stdout test of the item, ``ScoreContext.code_timeout`` seconds each; ``raw``
    counts the tests passed before the first failure."""
    from archon.evals.scorers import Score

    tests = stdio_tests(item.data.get(HIDDEN_TESTS))
    if not tests:
        return Score(0.0, detail=f"the item has no '{HIDDEN_TESTS}' ([{{\"input\", \"output\"}}, ...]) to score by")
    # Pass or fail is all the score keeps, so the first failing test ends the run (as Archon's harness does).
    res = await run_stdio_tests(extract_code(output), tests, timeout=ctx.code_timeout, stop_on_failure=True)
    raw = {"passed": res["passed"], "total": res["total"], "status": res["status"]}
    ok = res["status"] == "passed"
    return Score(1.0 if ok else 0.0, raw=raw, detail=None if ok else (res["error"] or f"{res['passed']}/{res['total']} tests passed"))
