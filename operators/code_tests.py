"""Tests for generated code: where they come from, how a candidate becomes a program, and the
harness that runs a program against them inside the sandbox.

A test is a small dict, so it travels through candidates' ``meta`` and into the sandbox as JSON:

    {"kind": "assert",  "code": "assert add(1, 2) == 3"}
    {"kind": "check",   "code": "def check(candidate): ...", "entry_point": "add"}   # HumanEval
    {"kind": "doctest", "source": "add(1, 2)", "want": "3"}
"""

from __future__ import annotations

__all__ = [
    "build_program",
    "doctest_tests",
    "entry_point_of",
    "extract_code",
    "item_tests",
    "run_tests",
    "example_inputs",
]

import doctest
import json
import re
from typing import Any

from archon.types import Query
from operators.base import render

_FENCE = re.compile(r"```(?:python|py|Python)?[ \t]*\n(.*?)```", re.DOTALL)
_RESULT = "__ARCHON_TEST_RESULT__"


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
    """Tests a benchmark item brings: ``test_list`` / ``tests`` (assert lines) or HumanEval's
    ``test`` (a ``check(candidate)`` function) with ``entry_point``."""
    data = query.data
    for key in ("tests", "test_list"):
        given = data.get(key)
        if isinstance(given, list) and given and all(isinstance(t, str) for t in given):
            return [{"kind": "assert", "code": t} for t in given]
    test, ep = data.get("test"), data.get("entry_point")
    if isinstance(test, str) and "def check" in test and ep:
        return [{"kind": "check", "code": test, "entry_point": ep}]
    return []


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


# The harness runs in the sandbox: it executes the program once, then each test on its own (with
# an alarm so one endless test cannot eat the others' time), and prints one JSON line. Filled in
# one pass (render): the program is model output, and a "{tests}" inside it must stay its own text.
_HARNESS = r'''
import contextlib, doctest, io, json, signal, sys
PROGRAM = {program}
TESTS = json.loads({tests})
EXPRS = json.loads({exprs})
PER_TEST = {per_test}

class _Timeout(BaseException):
    pass

def _alarm(*_):
    raise _Timeout()

signal.signal(signal.SIGALRM, _alarm)
ns = {"__name__": "__main__"}
out = {"passed": 0, "total": len(TESTS), "results": [], "error": None, "outputs": None}
sink = io.StringIO()
try:
    signal.alarm(PER_TEST)
    with contextlib.redirect_stdout(sink):
        exec(compile(PROGRAM, "solution.py", "exec"), ns)
    signal.alarm(0)
except BaseException as e:
    signal.alarm(0)
    out["error"] = (type(e).__name__ + ": " + str(e))[:300]
    TESTS, EXPRS = [], []
runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS, verbose=False)
for t in TESTS:
    ok, why = False, None
    try:
        signal.alarm(PER_TEST)
        with contextlib.redirect_stdout(sink):
            if t["kind"] == "assert":
                exec(t["code"], ns)
                ok = True
            elif t["kind"] == "check":
                exec(t["code"], ns)
                ns["check"](ns[t["entry_point"]])
                ok = True
            else:
                ex = doctest.Example(t["source"] + "\n", t["want"] + "\n")
                test = doctest.DocTest([ex], ns, "example", None, 0, None)
                ok = runner.run(test, out=lambda s: None, clear_globs=False).failed == 0
        signal.alarm(0)
    except BaseException as e:
        signal.alarm(0)
        why = (type(e).__name__ + ": " + str(e))[:200]
    out["results"].append([ok, why])
    out["passed"] += ok
if EXPRS:
    vals = []
    for e in EXPRS:
        try:
            signal.alarm(PER_TEST)
            with contextlib.redirect_stdout(sink):
                vals.append(repr(eval(e, ns)))
            signal.alarm(0)
        except BaseException as exc:
            signal.alarm(0)
            vals.append("<" + type(exc).__name__ + ">")
    out["outputs"] = vals
sys.stdout.write("\n{mark}" + json.dumps(out) + "\n")
'''


def _harness(program: str, tests: list[dict[str, Any]], exprs: list[str], per_test: int) -> str:
    return render(_HARNESS, program=repr(program), tests=repr(json.dumps(tests)), exprs=repr(json.dumps(exprs)),
                  per_test=per_test, mark=_RESULT)


async def run_tests(
    program: str, tests: list[dict[str, Any]], *, timeout: float = 10.0, exprs: list[str] | None = None
) -> dict[str, Any]:
    """Run ``program`` against ``tests`` in the sandbox.

    Returns {"passed", "total", "status" (passed | failed | timeout | error), "error", "outputs"}.
    """
    from archon.sandbox import Limits, arun_python

    per_test = max(1, int(timeout // 2))
    res = await arun_python(_harness(program, tests, exprs or [], per_test), limits=Limits(wall_seconds=timeout, cpu_seconds=int(timeout) + 1))
    line = next((ln for ln in reversed(res.stdout.splitlines()) if ln.startswith(_RESULT)), None)
    if line is None:
        reason = res.reason or (res.stderr.strip().splitlines() or ["no result"])[-1][:300]
        return {"passed": 0, "total": len(tests), "status": "timeout" if res.status == "timeout" else "error",
                "error": reason, "outputs": None}
    out = json.loads(line[len(_RESULT):])
    status = "error" if out["error"] else ("passed" if out["passed"] == out["total"] else "failed")
    return {"passed": out["passed"], "total": out["total"], "status": status, "error": out["error"], "outputs": out["outputs"]}
