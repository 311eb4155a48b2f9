"""Parallelism: 8 samples -> rank -> fuse against a server that takes 200 ms per call.

Archon should need about three steps of server time (3 x 0.2 s); a sequential runner making the
same ten calls one after another needs ten (2 s). Both run against the same real HTTP server on
127.0.0.1; server time is measured by the server, from the first request's arrival to the last
reply. Also measured: a server that ignores ``n`` (Archon then sends the 8 samples as 8 parallel
requests).

    python bench/parallel.py [--delay 0.2] [--out bench/results/parallel.json]
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from openai import AsyncOpenAI  # noqa: E402

from archon import CompiledPipeline, Pipeline, Runtime  # noqa: E402
from archon.testing.fake_server import FakeOpenAIServer  # noqa: E402
from backends.presets import OpenAISettings  # noqa: E402


def reply(prompt: str, k: int) -> str:
    return "[3] > [1] > [2]" if "Ranking:" in prompt else f"answer {k}"


def pipeline() -> Pipeline:
    p = Pipeline("sample-rank-fuse")
    d = p.add("draft", "generate", model="srv/m", samples=8, temperature=0.8)
    t = p.add("top", "rank", inputs=[d], model="srv/m", top_k=3)
    p.add("answer", "fuse", inputs=[t], model="srv/m")
    return p


def server_span(srv: FakeOpenAIServer) -> tuple[float, int]:
    log = list(srv.log)
    return max(e.end for e in log) - min(e.start for e in log), len(log)


async def archon_once(srv: FakeOpenAIServer, runtime: Runtime, query: str) -> tuple[float, float, int]:
    srv.reset()
    cp = CompiledPipeline(pipeline().build())
    start = time.perf_counter()
    await cp.run(query, runtime)
    wall = time.perf_counter() - start
    span, n = server_span(srv)
    return span, wall, n


def runtime_for(srv: FakeOpenAIServer, db: str) -> Runtime:
    # One runtime per server, as in `archon eval` or `archon serve`: the warm-up run also teaches the
    # backend whether the server honours `n`.
    return Runtime({"srv": OpenAISettings(base_url=srv.base_url, max_concurrency=32)}, store=db, use_cache=False)


async def sequential_once(srv: FakeOpenAIServer, query: str) -> tuple[float, float, int]:
    """The baseline: the same ten calls, one at a time (what a naive loop over nodes and samples does)."""
    srv.reset()
    client = AsyncOpenAI(base_url=srv.base_url, api_key="x", max_retries=0)
    start = time.perf_counter()
    drafts = []
    for _ in range(8):
        r = await client.chat.completions.create(model="m", messages=[{"role": "user", "content": query}], temperature=0.8)
        drafts.append(r.choices[0].message.content)
    listing = "\n\n".join(f"[{i}]\n{d}" for i, d in enumerate(drafts, 1))
    await client.chat.completions.create(model="m", messages=[{"role": "user", "content": f"{listing}\nRanking:"}])
    await client.chat.completions.create(model="m", messages=[{"role": "user", "content": f"fuse {listing}"}])
    wall = time.perf_counter() - start
    await client.close()
    span, n = server_span(srv)
    return span, wall, n


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--delay", type=float, default=0.2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="bench/results/parallel.json")
    args = ap.parse_args()
    db = os.path.join(tempfile.mkdtemp(), "bench.db")
    results = {}
    with FakeOpenAIServer(reply=reply, delay=args.delay) as srv:
        runtime = runtime_for(srv, db)
        await archon_once(srv, runtime, "warm-up")
        rows = [await archon_once(srv, runtime, f"question {i}") for i in range(args.repeats)]
        await runtime.aclose()
        results["archon"] = _summary(rows)
        rows = [await sequential_once(srv, f"question {i}") for i in range(args.repeats)]
        results["sequential"] = _summary(rows)
    with FakeOpenAIServer(reply=reply, delay=args.delay, honor_n=False) as srv:
        runtime = runtime_for(srv, db)
        await archon_once(srv, runtime, "warm-up")
        rows = [await archon_once(srv, runtime, f"question {i}") for i in range(args.repeats)]
        await runtime.aclose()
        results["archon_server_ignores_n"] = _summary(rows)
    results["delay_s"] = args.delay
    results["speedup"] = results["sequential"]["server_time_s"] / results["archon"]["server_time_s"]
    for name in ("archon", "archon_server_ignores_n", "sequential"):
        r = results[name]
        print(f"{name:26s} server time {r['server_time_s']:.3f} s   wall {r['wall_s']:.3f} s   requests {r['requests']}")
    print(f"speedup (sequential / archon server time): {results['speedup']:.2f}x")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


def _summary(rows):
    # the median run of the repeats
    rows = sorted(rows)
    span, wall, n = rows[len(rows) // 2]
    return {"server_time_s": round(span, 4), "wall_s": round(wall, 4), "requests": n, "all_server_times_s": [round(r[0], 4) for r in rows]}


if __name__ == "__main__":
    asyncio.run(main())
