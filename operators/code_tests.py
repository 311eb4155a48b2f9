"""Tests for generated code: where they come from, how a candidate becomes a program, and the
harness that runs a program against them inside the sandbox.

A test is a small dict, so it travels through candidates' ``meta`` and into the sandbox as JSON:

    {"kind": "assert",  "code": "assert add(1, 2) == 3"}
    {"kind": "check",   "code": "def check(candidate): ...", "entry_point": "add"}   # HumanEval
    {"kind": "doctest", "source": "add(1, 2)", "want": "3"}
    {"kind": "stdio",   "input": "1 2\n", "output": "3"}                          # whole programs: operators/stdio_tests.py
"""

from __future__ import annotations

__all__ = [
    "build_program",
    "doctest_tests",
    "entry_point_of",
    "extract_code",
    "item_test_field",
    "item_tests",
    "run_tests",
    "example_inputs",
    "first_failure",
]

import doctest
import json
import re
from pathlib import Path
from typing import Any

from archon.types import Query

_FENCE = re.compile(r"```(?:python|py|Python)?[ \t]*\n(.*?)```", re.DOTALL)


def extract_code(text: str) -> str:
    """The largest fenced code block in ``text``, or the text itself when there is none."""
    blocks = _FENCE.findall(text)
    if blocks:
        return max(blocks, key=len)
    if "```" in text:  # an unterminated fence: take what follows it
        return text.split("```", 1)[1].split("\n", 1)[-1]
    return text


def entry_point_of(query: Query) -> str | None:
    """The function a code task asks for: the item's ``entry_point``, else the prompt's last ``def``."""
    ep = query.data.get("entry_point")
    if ep:
        return str(ep)
    defs = re.findall(r"^def\s+([A-Za-z_]\w*)\s*\(", query.text, re.MULTILINE)
    return defs[-1] if defs else None


def build_program(candidate: str, query: Query) -> str:
    """A runnable program from a candidate: the code itself when it defines the entry point (with the
    prompt's imports), else the prompt followed by the candidate (a completion of the prompt)."""
    code = extract_code(candidate)
    ep = entry_point_of(query)
    if ep and re.search(rf"^\s*def\s+{re.escape(ep)}\s*\(", code, re.MULTILINE):
        imports = [ln for ln in query.text.splitlines() if re.match(r"^(from\s+\S+\s+)?import\s", ln)]
        return "\n".join(imports + [code])
    if ep and re.search(rf"^def\s+{re.escape(ep)}\s*\(", query.text, re.MULTILINE):
        return query.text + code
    return code


def doctest_tests(prompt: str, entry_point: str | None = None) -> list[dict[str, Any]]:
    """Tests from the examples in a code prompt: ``>>> f(x)`` / expected lines, and lines such as
    ``f(x) == y``, ``f(x) ➞ y`` or ``f(x) => y`` that name the entry point."""
    tests: list[dict[str, Any]] = []
    # Parse inside the docstrings: parsed whole, a prompt's closing quotes would end up in the
    # last example's expected output.
    docstrings = [a or b for a, b in re.findall(r'"""(.*?)"""|\'\'\'(.*?)\'\'\'', prompt, re.DOTALL)] or [prompt]
    examples = []
    for doc in docstrings:
        try:
            examples += doctest.DocTestParser().get_examples(doc)
        except ValueError:
            continue
    for ex in examples:
        if ex.want.strip():
            tests.append({"kind": "doctest", "source": ex.source.strip(), "want": ex.want.strip()})
    if tests or not entry_point:
        return tests
    arrow = re.compile(rf"^\s*({re.escape(entry_point)}\(.*\))\s*(?:==>|➞|=>|->|==|should return|returns?)\s*(.+?)\s*$", re.MULTILINE)
    for call, want in arrow.findall("\n".join(docstrings)):
        tests.append({"kind": "doctest", "source": call.strip(), "want": want.strip().rstrip(".")})
    return tests


def item_tests(query: Query) -> list[dict[str, Any]]:
    """Tests a benchmark item brings: ``test_list`` / ``tests`` (assert lines), ``public_tests``
    (stdin/stdout pairs, CodeContests) or HumanEval's ``test`` (a ``check(candidate)`` function)
    with ``entry_point``."""
    from operators.stdio_tests import stdio_tests

    data = query.data
    for key in ("tests", "test_list"):
        given = data.get(key)
        if isinstance(given, list) and given and all(isinstance(t, str) for t in given):
            return [{"kind": "assert", "code": t} for t in given]
    if io := stdio_tests(data.get("public_tests")):
        return io
    test, ep = data.get("test"), data.get("entry_point")
    if isinstance(test, str) and "def check" in test and ep:
        return [{"kind": "check", "code": test, "entry_point": ep}]
    return []


# The query.data fields item_tests reads, in its order of preference ('test' goes with 'entry_point').
_ITEM_TEST_FIELDS = ("tests", "test_list", "public_tests", "test")


def item_test_field(data: dict[str, Any]) -> str | None:
    """The field of ``data`` that ``item_tests`` takes its tests from, or None when it finds none.

    ``item_tests`` itself is asked, one field at a time, so the two never disagree on what counts as
    tests. Benchmarks use this to tell whether their scoring tests are visible."""
    for key in _ITEM_TEST_FIELDS:
        alone = {key: data.get(key), "entry_point": data.get("entry_point")} if key == "test" else {key: data.get(key)}
        if item_tests(Query("", data=alone)):
            return key
    return None


def example_inputs(tests: list[dict[str, Any]]) -> list[str]:
    """The expressions the tests evaluate (for voting on outputs): doctest sources, and the call on
    the left of ``assert f(x) == y``."""
    out = []
    for t in tests:
        if t["kind"] == "doctest":
            out.append(t["source"])
        elif t["kind"] == "assert":
            m = re.match(r"\s*assert\s+(.+?)\s*==\s*.+$", t["code"], re.DOTALL)
            if m:
                out.append(m.group(1))
    return out


# The harness (operators/_test_harness.py) runs in the sandbox as main.py: a judge process runs the
# tests and reports on the sandbox's result channel; the program runs in a child that never sees it.
_HARNESS = Path(__file__).with_name("_test_harness.py").read_text(encoding="utf-8")


async def run_tests(
    program: str, tests: list[dict[str, Any]], *, prompt: str = "", setup: str = "", entry_point: str | None = None,
    timeout: float = 10.0, exprs: list[str] | None = None,
) -> dict[str, Any]:
    """Run ``program`` against ``tests`` in the sandbox.

    ``prompt`` (the task's code, whose helper definitions the tests may use), ``setup`` (test setup
    code, run before the program and the tests) and ``entry_point`` (the function the tests call)
    shape the judge's namespace; see operators/_test_harness.py.
    Returns {"passed", "total", "status" (passed | failed | timeout | error), "error", "outputs",
    "failure" (``first_failure``: the first failing test and why, or None)}.
    """
    from archon.sandbox import Limits, arun_python

    per_test = max(1, int(timeout // 2))
    job = {"program": program, "tests": tests, "exprs": exprs or [], "per_test": per_test, "prompt": prompt,
           "setup": setup, "entry_point": entry_point}
    res = await arun_python(_HARNESS, files={"job.json": json.dumps(job)}, channel=True,
                            limits=Limits(wall_seconds=timeout, cpu_seconds=int(timeout) + 1))
    try:
        out: Any = json.loads(res.channel) if res.channel else None  # no reply: the TypeError below
        passed, total = int(out["passed"]), len(tests)
    except (ValueError, TypeError, KeyError):
        out = None
    if out is None:
        reason = res.reason or (res.stderr.strip().splitlines() or ["the test harness reported no result"])[-1][:300]
        return {"passed": 0, "total": len(tests), "status": "timeout" if res.status == "timeout" else "error",
                "error": reason, "outputs": None, "failure": first_failure(tests, [], reason)}
    status = "error" if out["error"] else ("passed" if passed == total else "failed")
    return {"passed": passed, "total": total, "status": status, "error": out["error"], "outputs": out["outputs"],
            "failure": first_failure(tests, out["results"], out["error"])}


#: The most characters of a failure description: enough for a call, its expected and actual value,
#: short enough that a long traceback or a huge output cannot crowd a repair prompt.
FAILURE_CHARS = 600


def first_failure(tests: list[dict[str, Any]], results: list[list[Any]], error: str | None = None) -> str | None:
    """The first failing test and why it failed, as a short text for a prompt (``refine`` reads it);
    None when every test passed. ``results`` are a harness's ``[ok, why, ...]`` rows, in test order;
    ``error`` is why the program could not run at all (it then names no test)."""
    if error:
        return f"The program did not run: {error}"[:FAILURE_CHARS]
    for test, (ok, why, *_) in zip(tests, results):
        if not ok:
            return f"{_test_text(test)}\n{str(why or 'failed').rstrip(': ')}"[:FAILURE_CHARS]  # a bare assert's "AssertionError: "
    return None


def _test_text(test: dict[str, Any]) -> str:
    kind = test.get("kind")
    if kind == "doctest":
        return f">>> {test['source']}"
    if kind == "check":
        return f"check({test.get('entry_point', '')})"  # the check function is long; its name says where it failed
    if kind == "stdio":
        return f"Input:\n{str(test['input'])[:200]}\nExpected output:\n{str(test['output'])[:200]}"
    return str(test.get("code", ""))[:300]
