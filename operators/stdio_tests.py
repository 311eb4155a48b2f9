"""Stdin/stdout tests (competitive programming, CodeContests): run a whole program on each test's
input in the sandbox and compare what it prints with the expected output.

A test is ``{"kind": "stdio", "input": "...", "output": "..."}``. Outputs are compared line by line
with trailing whitespace ignored on every line and blank lines ignored at the end (the usual judge's
tolerance, and the one CodeContests' outputs need: they were stored ``.strip()``'d). Every test runs
in a fresh interpreter, all of a program's tests in one sandbox run (operators/_stdio_harness.py).
"""

from __future__ import annotations

__all__ = ["outputs_match", "run_stdio_tests", "stdio_tests"]

import json
from pathlib import Path
from typing import Any

_HARNESS = Path(__file__).with_name("_stdio_harness.py").read_text(encoding="utf-8")
MAX_OUTPUT = 1 << 20  # bytes a test may print; a program printing more fails that test


def stdio_tests(value: Any) -> list[dict[str, Any]]:
    """Tests from a list of ``{"input", "output"}`` records (CodeContests' shape); [] for anything else."""
    if not isinstance(value, list) or not value:
        return []
    if not all(isinstance(t, dict) and isinstance(t.get("input"), str) and isinstance(t.get("output"), str) for t in value):
        return []
    return [{"kind": "stdio", "input": t["input"], "output": t["output"]} for t in value]


def _canon(text: str) -> list[str]:
    return [line.rstrip() for line in text.rstrip().split("\n")] if text.strip() else []


def outputs_match(got: str, want: str) -> bool:
    """The same lines, ignoring trailing whitespace on each line and blank lines at the end.
    (The harness compares the same way; this is its twin for callers and tests.)"""
    return _canon(got.replace("\r\n", "\n")) == _canon(want.replace("\r\n", "\n"))


async def run_stdio_tests(program: str, tests: list[dict[str, Any]], *, timeout: float = 10.0,
                          stop_on_failure: bool = False) -> dict[str, Any]:
    """Run ``program`` on every test's input, ``timeout`` seconds per test; after a test times out
    (or, with ``stop_on_failure``, fails) the rest count as failed without running. Returns {"passed", "total", "status" (passed | failed |
    timeout | error), "error", "results": [[ok, why, seconds], ...]}."""
    from archon.sandbox import Limits, arun_python

    if not tests:
        return {"passed": 0, "total": 0, "status": "error", "error": "no tests", "results": []}
    job = {"program": program, "tests": [{"input": t["input"], "output": t["output"]} for t in tests],
           "per_test": timeout, "max_output": MAX_OUTPUT, "stop_on_failure": stop_on_failure}
    # One interpreter per test, one test at a time: the wall budget covers every test plus start-up.
    wall = timeout * len(tests) + 5.0
    res = await arun_python(_HARNESS, files={"job.json": json.dumps(job)}, channel=True,
                            limits=Limits(wall_seconds=wall, cpu_seconds=int(timeout) + 2, max_file_mb=4))
    try:
        out: Any = json.loads(res.channel) if res.channel else None
        passed = int(out["passed"])
    except (ValueError, TypeError, KeyError):
        reason = res.reason or (res.stderr.strip().splitlines() or ["the stdio harness reported no result"])[-1][:300]
        return {"passed": 0, "total": len(tests), "status": "timeout" if res.status == "timeout" else "error",
                "error": reason, "results": []}
    results = out["results"]
    timed_out = any(r[1] and str(r[1]).startswith("timed out") for r in results)
    status = "passed" if passed == len(tests) else ("timeout" if timed_out else "failed")
    first = next((r[1] for r in results if not r[0]), None)
    error = None if status == "passed" else f"test {next(i for i, r in enumerate(results) if not r[0]) + 1}: {first}"
    return {"passed": passed, "total": len(tests), "status": status, "error": error, "results": results}
