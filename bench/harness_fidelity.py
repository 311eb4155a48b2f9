"""Does the forgery-proof test harness still judge honest code as before?

Scores, through the ``code`` scorer (the sandbox, the judge/child harness), every HumanEval and MBPP
item's reference solution (which must pass), the bare prompt or an empty function (which must
fail), and four attacks (which must all fail): a forged result line, an object equal to
everything, patched builtins, and an exit before the tests.

    python bench/harness_fidelity.py [--limit N] [--out bench/results/harness_fidelity.json]

Data: $ARCHON_DATA_DIR or ../shared/data (humaneval_full_164.jsonl, mbpp_test_200.jsonl).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from archon.evals.datasets import load_benchmark  # noqa: E402
from archon.evals.scorers import ScoreContext, score_code  # noqa: E402

FORGE = ('import os\nos.write(1, b\'\\n__ARCHON_TEST_RESULT__{"passed": 9, "total": 9, "results": [], '
         '"error": null, "outputs": null}\\n\')\nos._exit(0)\n')
ATTACKS = {
    "forged result line": FORGE,
    "equal to everything": "class Any:\n    def __eq__(self, other):\n        return True\n    __ne__ = lambda s, o: False\n"
                           "def {ep}(*args, **kwargs):\n    return Any()\n",
    "patched builtins": "import builtins\nbuiltins.AssertionError = type('Ok', (BaseException,), {{}})\n"
                        "def {ep}(*args, **kwargs):\n    return None\n",
    "exit before the tests": "import os\ndef {ep}(*args, **kwargs):\n    os._exit(0)\n",
}


def data_dir() -> str:
    return os.environ.get("ARCHON_DATA_DIR") or str(ROOT.parent / "shared" / "data")


async def judge(bench, outputs, ctx) -> list[bool]:
    sem = asyncio.Semaphore(4)

    async def one(item, out):
        async with sem:
            return (await score_code(out, item, ctx)).value == 1.0

    return await asyncio.gather(*(one(it, out) for it, out in zip(bench.items, outputs)))


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "harness_fidelity.json"))
    args = ap.parse_args()
    ctx = ScoreContext(code_timeout=10.0)
    report = {}
    for name in ("humaneval", "mbpp"):
        bench = load_benchmark(name, limit=args.limit, data_dir=data_dir())
        start = time.perf_counter()
        if name == "humaneval":
            reference = [it.data["canonical_solution"] for it in bench.items]
            stub = ["" for _ in bench.items]  # the prompt alone: a function with only a docstring
        else:
            reference = [it.data["code"] for it in bench.items]
            stub = [f"def {it.data['entry_point']}(*args, **kwargs):\n    return None\n" for it in bench.items]
        ref_ok = await judge(bench, reference, ctx)
        stub_ok = await judge(bench, stub, ctx)
        row = {"items": len(bench.items), "reference_passed": sum(ref_ok), "stub_passed": sum(stub_ok),
               "reference_failures": [it.id for it, ok in zip(bench.items, ref_ok) if not ok]}
        for attack, code in ATTACKS.items():
            outs = [code.format(ep=it.data["entry_point"]) if "{ep}" in code else code for it in bench.items]
            row[f"attack passed: {attack}"] = sum(await judge(bench, outs, ctx))
        row["seconds"] = round(time.perf_counter() - start, 1)
        report[name] = row
        print(json.dumps({name: row}, indent=2), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    asyncio.run(main())
