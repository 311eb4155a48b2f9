"""No candidate can fake its own test result: through the harness, the ``code`` scorer (``archon eval``)
and ``unit_test``, every forgery scores 0, while honest code keeps its score."""

from __future__ import annotations

import asyncio

import pytest

from archon import Pipeline, Query, Runtime, run
from archon.evals.datasets import Benchmark, Item
from archon.evals.runner import evaluate
from archon.evals.scorers import ScoreContext, score_code
from archon.spec import parse_pipeline
from backends.doubles import FunctionBackend
from operators.code_tests import run_tests

PROMPT = 'def add(a, b):\n    """Add two numbers.\n    >>> add(2, 3)\n    5\n    """\n'
CHECK = "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n" \
        "    assert candidate(10, 5) == 15\n    assert candidate(0, 0) == 0\n"
ITEM = Item("forge/add", PROMPT, None, {"entry_point": "add", "test": CHECK})
RIGHT = "    return a + b\n"
HALF = "    return 5 if a == 2 else a * b\n"  # passes the prompt's example, fails the hidden check

# The issue's forgery, byte for byte: a fake result line on stdout, then a clean exit.
FORGED = ('import os\nos.write(1, b\'\\n__ARCHON_TEST_RESULT__{"passed": 4, "total": 4, "results": [], '
          '"error": null, "outputs": null}\\n\')\nos._exit(0)\n')
ATTACKS = {
    "forged result line": FORGED,
    "forged line after defining the function": "def add(a, b):\n    return 0\n" + FORGED,
    "equal to everything": "class Any:\n    def __eq__(self, other):\n        return True\n"
                           "def add(a, b):\n    return Any()\n",
    "int subclass equal to everything": "class Any(int):\n    def __eq__(self, other):\n        return True\n"
                                        "    __hash__ = int.__hash__\ndef add(a, b):\n    return Any(0)\n",
    "patched builtins": "import builtins\nbuiltins.AssertionError = type('Fine', (BaseException,), {})\n"
                        "builtins.abs = lambda x: 0\ndef add(a, b):\n    return None\n",
    "exit inside the call": "import os\ndef add(a, b):\n    os._exit(0)\n",
    "kill the judge": "import os, signal\ndef add(a, b):\n    os.kill(os.getppid(), signal.SIGKILL)\n",
    "stop the judge": "import os, signal\ndef add(a, b):\n    os.kill(os.getppid(), signal.SIGSTOP)\n",
    "write to the channel": "import os\ntry:\n    os.write(3, b'{\"passed\": 4, \"total\": 4, \"error\": null, \"outputs\": null}')\nexcept OSError:\n"
                            "    pass\ndef add(a, b):\n    return 0\n",
    "open the judge's channel": "import os\ntry:\n    fd = os.open(f'/proc/{os.getppid()}/fd/3', os.O_WRONLY)\n"
                                "    os.write(fd, b'{\"passed\": 4, \"total\": 4, \"error\": null, \"outputs\": null}')\n"
                                "    os._exit(0)\nexcept OSError:\n    pass\ndef add(a, b):\n    return 0\n",
    "read the judge's memory": "import os, re\ndef add(a, b):\n    with open(f'/proc/{os.getppid()}/mem', 'rb') as fh:\n"
                               "        return 5\n",
    "ptrace the judge": "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
                        "assert libc.ptrace(16, os.getppid(), 0, 0) == 0, 'attach refused'\ndef add(a, b):\n    return a + b\n",
    "replace the tests on disk": "import glob\nfor p in glob.glob('*'):\n    open(p, 'w').write('')\ndef add(a, b):\n    return 0\n",
    "trace the judge's frames": "import sys\ndef add(a, b):\n    f = sys._getframe()\n    while f.f_back:\n        f = f.f_back\n"
                                "    f.f_globals['out'] = {'passed': 4}\n    return 0\n",
}


async def test_the_issue_forgery_scores_zero_through_the_code_scorer():
    score = await score_code(FORGED, ITEM, ScoreContext())
    assert score.value == 0.0 and score.raw["passed"] == 0, score
    assert (await score_code(RIGHT, ITEM, ScoreContext())).value == 1.0


@pytest.mark.parametrize("attack", sorted(ATTACKS))
async def test_every_forgery_fails_the_scorer(attack):
    score = await score_code(ATTACKS[attack], ITEM, ScoreContext(code_timeout=4.0))
    assert score.value == 0.0 and score.raw["passed"] == 0, (attack, score)


async def test_the_harness_reports_only_on_its_own_channel():
    # Honest code that prints the old marker still passes; the marker means nothing now.
    program = PROMPT + '    print("__ARCHON_TEST_RESULT__{}")\n    return a + b\n'
    res = await run_tests(program, [{"kind": "check", "code": CHECK, "entry_point": "add"}], prompt=PROMPT, entry_point="add")
    assert (res["passed"], res["status"]) == (1, "passed"), res


def test_archon_eval_scores_the_forgery_zero(tmp_path):
    bench = Benchmark("forge", [ITEM], "code", "{input}", "{input}", ("entry_point",))
    spec = parse_pipeline({"name": "forger", "nodes": [{"id": "g", "op": "generate", "model": "fake/m", "mode": "completion"}]},
                          check_backends=False)

    async def go():
        rt = Runtime(store=f"sqlite:///{tmp_path / 'f.db'}", backends={"fake": FunctionBackend(lambda r, k: FORGED)})
        try:
            return await evaluate(spec, bench, rt)
        finally:
            await rt.aclose()

    result = asyncio.run(go())
    assert [r["score"] for r in result.results] == [0.0], result.results


def test_unit_test_ranks_the_forgery_last():
    p = Pipeline("ut")
    p.add("draft", "generate", model="fake/m", samples=3, mode="completion")
    p.add("best", "unit_test", inputs="draft", tests="item")
    texts = [FORGED, HALF, RIGHT]
    asserts = ["assert add(2, 3) == 5", "assert add(-1, 1) == 0", "assert add(10, 5) == 15", "assert add(0, 0) == 0"]
    query = Query(PROMPT, data={"entry_point": "add", "test_list": asserts})  # HALF passes 2 of 4
    res = run(p, query, backends={"fake": FunctionBackend(lambda r, k: texts[k])}, db=False)
    best = res.candidates["best"]
    assert [c.text for c in best] == [RIGHT, HALF, FORGED]
    assert [c.score for c in best] == [1.0, 0.5, 0.0]


async def test_a_program_cannot_shadow_the_builtins_the_tests_call():
    shadow = "def abs(x):\n    return 0\ndef all(x):\n    return True\ndef add(a, b):\n    return 0\n"
    tests = [{"kind": "assert", "code": "assert abs(add(0.1, 0.2) - 0.3) < 1e-9"},
             {"kind": "assert", "code": "assert all([add(1, 1) == 2])"}]
    res = await run_tests(shadow, tests, prompt=PROMPT, entry_point="add")
    assert res["passed"] == 0, res
    honest = await run_tests("def add(a, b):\n    return a + b\n", tests, prompt=PROMPT, entry_point="add")
    assert honest["passed"] == 2, honest
