"""Framework overhead per model call: Archon vs the bare ``openai`` async client.

Both make the same calls, one at a time, to a zero-latency OpenAI-compatible server running in a
separate process on 127.0.0.1, so what differs is only the client-side work. Archon's path is the
full one: compiled LangGraph, cache lookup (every query is new, so every lookup misses), recording
to a SQLite store, limits and retries. Two shapes: one call per run (worst case: the run's own
bookkeeping is paid by a single call) and sample -> rank -> fuse (3 calls per run).

    python bench/overhead.py [--calls 300] [--out bench/results/overhead.json]
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

from openai import AsyncOpenAI  # noqa: E402

from archon import CompiledPipeline, Pipeline, Runtime  # noqa: E402
from backends.presets import OpenAISettings  # noqa: E402


def start_server() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "archon.testing.fake_server", "--delay", "0"], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    url = proc.stdout.readline().strip()
    return proc, url


def one_call() -> Pipeline:
    p = Pipeline("one-call")
    p.add("ask", "generate", model="srv/m", max_tokens=64)
    return p


def srf() -> Pipeline:
    p = Pipeline("srf")
    d = p.add("draft", "generate", model="srv/m", samples=4, max_tokens=64)
    t = p.add("top", "rank", inputs=[d], model="srv/m", top_k=2)
    p.add("answer", "fuse", inputs=[t], model="srv/m", max_tokens=64)
    return p


async def bare(url: str, runs: int, shape: str) -> float:
    """The same requests Archon sends, made directly; returns seconds per call."""
    client = AsyncOpenAI(base_url=url, api_key="x", max_retries=0)
    calls = 0
    start = time.perf_counter()
    for i in range(runs):
        msg = [{"role": "user", "content": f"query {i} bare"}]
        if shape == "one":
            await client.chat.completions.create(model="m", messages=msg, max_tokens=64, temperature=0.7)
            calls += 1
        else:
            r = await client.chat.completions.create(model="m", messages=msg, max_tokens=64, temperature=0.7, n=4)
            listing = "\n\n".join(f"[{k}]\n{c.message.content}" for k, c in enumerate(r.choices, 1))
            await client.chat.completions.create(model="m", messages=[{"role": "user", "content": listing + "\nRanking:"}],
                                                 max_tokens=256, temperature=0.0)
            await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "fuse " + listing}],
                                                 max_tokens=64, temperature=0.7)
            calls += 3
    elapsed = time.perf_counter() - start
    await client.close()
    return elapsed / calls


async def archon(url: str, runs: int, shape: str, db: str) -> float:
    spec = (one_call() if shape == "one" else srf()).build()
    cp = CompiledPipeline(spec)
    runtime = Runtime({"srv": OpenAISettings(base_url=url)}, store=db)
    calls = 0
    start = time.perf_counter()
    for i in range(runs):
        res = await cp.run(f"query {i} archon", runtime)
        calls += res.calls
    elapsed = time.perf_counter() - start
    await runtime.aclose()
    return elapsed / calls


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=300, help="Runs per measurement.")
    ap.add_argument("--rounds", type=int, default=3, help="Alternating rounds (the median is reported).")
    ap.add_argument("--out", default="bench/results/overhead.json")
    args = ap.parse_args()
    proc, url = start_server()
    results = {}
    try:
        tmp = tempfile.mkdtemp()
        for shape in ("one", "srf"):
            await bare(url, 20, shape)
            await archon(url, 20, shape, f"{tmp}/warm-{shape}.db")
            b, a = [], []
            for r in range(args.rounds):  # alternate to cancel drift on a noisy machine
                b.append(await bare(url, args.calls, shape))
                a.append(await archon(url, args.calls, shape, f"{tmp}/{shape}-{r}.db"))
            bm, am = sorted(b)[len(b) // 2], sorted(a)[len(a) // 2]
            results[shape] = {
                "bare_ms_per_call": round(bm * 1000, 3),
                "archon_ms_per_call": round(am * 1000, 3),
                "ratio": round(am / bm, 3),
                "added_ms_per_call": round((am - bm) * 1000, 3),
            }
            r = results[shape]
            print(f"{shape:4s} bare {r['bare_ms_per_call']:.3f} ms/call   archon {r['archon_ms_per_call']:.3f} ms/call   "
                  f"ratio {r['ratio']:.3f}x   added {r['added_ms_per_call']:.3f} ms/call")
    finally:
        proc.terminate()
        proc.wait()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    asyncio.run(main())
