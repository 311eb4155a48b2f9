"""``archon eval`` throughput: 500 items x a 3-step pipeline at --concurrency 32 against a server
taking 100 ms per call. The ideal is 500 x 3 x 0.1 s / 32 = 4.69 s; the target is within 1.3x.

The server runs in a separate process on 127.0.0.1 so its work does not share our interpreter.

    python bench/eval_throughput.py [--items 500] [--concurrency 32] [--delay 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from archon import Pipeline, Runtime  # noqa: E402
from archon.evals.datasets import load_benchmark  # noqa: E402
from archon.evals.report import summarize  # noqa: E402
from archon.evals.runner import evaluate  # noqa: E402
from backends.presets import OpenAISettings  # noqa: E402


def pipeline() -> Pipeline:
    p = Pipeline("three-steps")
    d = p.add("draft", "generate", model="srv/m", samples=4, max_tokens=32)
    t = p.add("top", "rank", inputs=[d], model="srv/m", top_k=2)
    p.add("answer", "fuse", inputs=[t], model="srv/m", max_tokens=32)
    return p


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--delay", type=float, default=0.1)
    ap.add_argument("--out", default="bench/results/eval_throughput.json")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    data = tmp / "items.jsonl"
    data.write_text("".join(json.dumps({"id": f"q{i}", "question": f"What is {i} + 1?", "answer": str(i + 1)}) + "\n"
                            for i in range(args.items)))
    proc = subprocess.Popen([sys.executable, "-m", "archon.testing.fake_server", "--delay", str(args.delay)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    url = proc.stdout.readline().strip()
    try:
        bench = load_benchmark(str(data))
        runtime = Runtime({"srv": OpenAISettings(base_url=url, max_concurrency=256)}, store=str(tmp / "eval.db"))
        # Warm-up on other items (a different benchmark file): first-use imports and connections
        # are paid once per process and are not what this measures.
        warm = tmp / "warm.jsonl"
        warm.write_text("".join(json.dumps({"id": f"w{i}", "question": f"Warm {i}?", "answer": "0"}) + "\n" for i in range(64)))
        await evaluate(pipeline().build(), load_benchmark(str(warm)), runtime, concurrency=args.concurrency)
        start = time.perf_counter()
        run = await evaluate(pipeline().build(), bench, runtime, concurrency=args.concurrency)
        wall = time.perf_counter() - start
        await runtime.aclose()
    finally:
        proc.terminate()
        proc.wait()
    s = summarize(run.results)
    ideal = args.items * 3 * args.delay / args.concurrency
    result = {"items": args.items, "concurrency": args.concurrency, "delay_s": args.delay, "wall_s": round(wall, 3),
              "ideal_s": round(ideal, 3), "ratio_to_ideal": round(wall / ideal, 3), "calls": s.calls, "failed": s.failed}
    print(f"{args.items} items x 3 steps at concurrency {args.concurrency}, {args.delay * 1000:.0f} ms per call: "
          f"{wall:.2f} s (ideal {ideal:.2f} s, ratio {wall / ideal:.3f}x), {s.calls} calls, {s.failed} failed")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    asyncio.run(main())
