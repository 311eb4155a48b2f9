"""Self-repair on the embedded model: does `generate -> refine(tests: doctest)` beat `generate` alone?

On the starter benchmark (30 short Python tasks), with the embedded Gemma 3 270M (a base model, in
completion mode), three pipelines, each scored by the items' hidden tests in the sandbox:

    generate        examples/single-call.yaml: one greedy draft
    refine          examples/refine.yaml: the same draft -> refine(rounds: 2, feedback: tests, tests: doctest),
                    greedy repairs
    refine_sampled  the same with repairs sampled at temperature 0.8

refine only sees the examples in each prompt's docstring (the benchmark hides its tests from
pipelines). The draft is the same request in every pipeline, so the shared store replays it from
the cache: the refine pipelines pay only for repairs. Each refine pipeline is compared with
`generate` paired item by item (`archon.acompare`, as `archon eval A B`): the mean difference and
its 95% interval.

    python bench/refine.py [--limit 30] [--db URL] [--out bench/results/refine.json]
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

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from archon import Runtime, acompare, load_pipeline  # noqa: E402
from archon.spec import PipelineSpec, parse_pipeline  # noqa: E402


def pipelines() -> dict[str, PipelineSpec]:
    base = load_pipeline(ROOT / "examples/single-call.yaml")
    refine = load_pipeline(ROOT / "examples/refine.yaml")
    data = yaml.safe_load((ROOT / "examples/refine.yaml").read_text())
    data["name"] = "refine-sampled"
    for node in data["nodes"]:
        if node["op"] == "refine":
            node["temperature"] = 0.8
    return {"generate": base, "refine": refine, "refine_sampled": parse_pipeline(data)}


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=30, help="Starter items (the first N; 30 is all).")
    ap.add_argument("--db", default=None, help="Store URL (default: a temporary SQLite file).")
    ap.add_argument("--out", default="bench/results/refine.json")
    args = ap.parse_args()
    db = args.db or "sqlite:///" + os.path.join(tempfile.mkdtemp(), "refine.db")
    specs = pipelines()
    runtime = Runtime(store=db)
    started = time.perf_counter()
    out: dict = {"benchmark": "starter", "model": "local/gemma-3-270m", "limit": args.limit, "pipelines": {}, "paired": {}}
    try:
        for name in ("refine", "refine_sampled"):
            t0 = time.perf_counter()
            cmp = await acompare(specs["generate"], specs[name], "starter", limit=args.limit, concurrency=2, runtime=runtime)
            print(cmp, flush=True)
            for label, report in (("generate", cmp.a), (name, cmp.b)):
                out["pipelines"][label] = {k: report.to_dict()[k] for k in (
                    "score", "ci_low", "ci_high", "n", "failed", "calls", "calls_per_item", "cached_calls", "completion_tokens")}
            # the drafts are generate's very requests, so the rest of the refine pipeline's calls are repairs
            out["pipelines"][name]["repair_calls"] = cmp.b.calls - cmp.a.calls
            out["paired"][f"{name} - generate"] = {**cmp.comparison.to_dict(), "wall_s": round(time.perf_counter() - t0, 1)}
    finally:
        await runtime.aclose()
    out["wall_s"] = round(time.perf_counter() - started, 1)
    print()
    for label, p in out["pipelines"].items():
        print(f"{label:15s} pass@1 {p['score']:.1%} (95% CI {p['ci_low']:.1%} - {p['ci_high']:.1%}), "
              f"{p['calls_per_item']} calls per item ({p['cached_calls']} cached), n={p['n']}"
              + (f", {p['repair_calls']} repair calls" if "repair_calls" in p else ""))
    for label, c in out["paired"].items():
        print(f"{label}: {c['difference']:+.1%} (95% CI {c['ci_low']:+.1%} to {c['ci_high']:+.1%}) on {c['n']} paired items; "
              f"better on {c['b_better']}, worse on {c['a_better']}, {c['ties']} ties")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    asyncio.run(main())
