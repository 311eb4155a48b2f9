"""Load on ``archon serve``: 64 concurrent clients x 10 requests, against the same pipeline run in-process.

The pipeline is generate (4 samples) -> fuse: two sequential model calls, each answered by a backend
double that takes 50 ms, so no request can take less than ~100 ms. The server runs in its own
process (uvicorn, as ``archon serve`` runs it, one worker, SQLite store, response cache on) and the
clients use the official ``openai`` client (``AsyncOpenAI``, no retries, so any error counts). The
in-process row runs ``CompiledPipeline.run`` directly at the same concurrency: the difference is
what HTTP, JSON, auth and the server's limits cost per request. Every query is distinct, so the
cache never answers.

    python bench/serve_load.py [--clients 64] [--requests 10] [--delay 0.05] [--stream] [--out bench/results/serve_load.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
import openai  # noqa: E402

from archon import CompiledPipeline, Pipeline, Runtime  # noqa: E402
from backends.doubles import FunctionBackend  # noqa: E402
from backends.presets import BackendSpec  # noqa: E402

KEY = "sk-bench"


def pipeline() -> Pipeline:
    p = Pipeline("draft-fuse")
    d = p.add("draft", "generate", model="fake/small", samples=4, temperature=0.8)
    p.add("answer", "fuse", inputs=[d], model="fake/big")
    return p


def backend(delay: float) -> FunctionBackend:
    return FunctionBackend(lambda r, k: "fused answer" if "Candidate" in r.prompt_text() else f"draft {k}", delay=delay)


def runtime(delay: float, db: str) -> Runtime:
    # The backend's own concurrency limit (16 by default) would make calls queue at 64 clients and
    # hide what is measured here; a served model behind vLLM would be configured about like this.
    return Runtime({"fake": BackendSpec(max_concurrency=256)}, backends={"fake": backend(delay)}, store=db)


def serve(port: int, db: str, delay: float, max_in_flight: int) -> None:
    """The server process: the app ``archon serve`` builds, on the backend double."""
    import uvicorn

    from archon.serve import create_app

    spec = pipeline().build()
    app = create_app({spec.name: spec}, lambda: runtime(delay, db), api_keys=[KEY],
                     max_in_flight=max_in_flight)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def percentiles(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] * 1000, 1)

    return {"p50_ms": pct(50), "p90_ms": pct(90), "p99_ms": pct(99), "max_ms": round(ordered[-1] * 1000, 1),
            "mean_ms": round(statistics.fmean(ordered) * 1000, 1)}


async def load(ask, clients: int, requests: int) -> dict:
    """``clients`` concurrent loops of ``requests`` calls to ``ask(client, request)`` (which returns the
    answer): errors and latency percentiles."""
    latencies: list[float] = []
    errors: list[str] = []

    async def one_client(c: int) -> None:
        for r in range(requests):
            start = time.perf_counter()
            try:
                text = await ask(c, r)
                if text != "fused answer":
                    raise AssertionError(f"unexpected answer {text!r}")
            except Exception as exc:  # every failure is a data point here
                errors.append(f"{type(exc).__name__}: {exc}"[:200])
                continue
            latencies.append(time.perf_counter() - start)

    wall = time.perf_counter()
    await asyncio.gather(*(one_client(c) for c in range(clients)))
    wall = time.perf_counter() - wall
    return {"requests": clients * requests, "errors": len(errors), "error_samples": sorted(set(errors))[:5],
            "wall_s": round(wall, 3), "requests_per_s": round(clients * requests / wall, 1), **percentiles(latencies)}


async def through_server(client: openai.AsyncOpenAI, clients: int, requests: int, stream: bool) -> dict:
    async def ask(c: int, r: int) -> str:
        messages = [{"role": "user", "content": f"{'stream ' if stream else ''}client {c} question {r}"}]
        if stream:
            events = await client.chat.completions.create(model="draft-fuse", messages=messages, stream=True)
            return "".join([ch.choices[0].delta.content or "" async for ch in events if ch.choices])
        return (await client.chat.completions.create(model="draft-fuse", messages=messages)).choices[0].message.content

    return await load(ask, clients, requests)


async def server_rows(url: str, clients: int, requests: int, stream: bool) -> dict:
    # One client for all phases: the warm-up opens the connections every later request reuses
    # (keep-alive is the steady state of a service), so connection setup is not what is measured.
    client = openai.AsyncOpenAI(base_url=url, api_key=KEY, max_retries=0, timeout=60)
    try:
        await through_server(client, clients, 1, False)
        rows = {"server": await through_server(client, clients, requests, False)}
        if stream:
            rows["server_stream"] = await through_server(client, clients, requests, True)
        return rows
    finally:
        await client.close()


async def in_process(db: str, delay: float, clients: int, requests: int) -> dict:
    rt = runtime(delay, db)
    compiled = CompiledPipeline(pipeline().build())

    async def ask(c: int, r: int) -> str:
        return (await compiled.run(f"in-process client {c} question {r}", rt)).output

    try:
        return await load(ask, clients, requests)
    finally:
        await rt.aclose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, db: str, delay: float, max_in_flight: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, __file__, "--serve", "--port", str(port), "--db", db, "--delay", str(delay),
                             "--max-in-flight", str(max_in_flight)])
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the server did not start")
        time.sleep(0.1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--requests", type=int, default=10, help="Sequential requests per client.")
    ap.add_argument("--delay", type=float, default=0.05, help="Seconds per model call.")
    ap.add_argument("--max-in-flight", type=int, default=64)
    ap.add_argument("--stream", action="store_true", help="Also measure stream: true requests.")
    ap.add_argument("--out", default="bench/results/serve_load.json")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--db", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.port, args.db, args.delay, args.max_in_flight)
        return

    tmp = tempfile.mkdtemp()
    results: dict = {"clients": args.clients, "requests_per_client": args.requests, "delay_s": args.delay,
                     "calls_per_request": 2, "floor_ms": round(2 * args.delay * 1000, 1), "cpus": os.cpu_count()}
    port = free_port()
    server = start_server(port, f"sqlite:///{tmp}/server.db", args.delay, args.max_in_flight)
    try:
        results.update(asyncio.run(server_rows(f"http://127.0.0.1:{port}/v1", args.clients, args.requests, args.stream)))
    finally:
        server.terminate()
        server.wait(timeout=60)
    asyncio.run(in_process(f"sqlite:///{tmp}/warm.db", args.delay, args.clients, 1))
    results["in_process"] = asyncio.run(in_process(f"sqlite:///{tmp}/in_process.db", args.delay, args.clients, args.requests))

    print(f"{args.clients} clients x {args.requests} requests; pipeline generate(4) -> fuse, {args.delay * 1000:g} ms per call "
          f"(floor {results['floor_ms']:g} ms)")
    for name in ("server", "server_stream", "in_process"):
        r = results.get(name)
        if r:
            print(f"  {name:14s} errors {r['errors']:3d}   p50 {r['p50_ms']:7.1f} ms   p99 {r['p99_ms']:7.1f} ms   "
                  f"mean {r['mean_ms']:7.1f} ms   {r['requests_per_s']:6.1f} req/s   wall {r['wall_s']:.2f} s")
    results["server_overhead_p50_ms"] = round(results["server"]["p50_ms"] - results["in_process"]["p50_ms"], 1)
    results["server_overhead_p99_ms"] = round(results["server"]["p99_ms"] - results["in_process"]["p99_ms"], 1)
    print(f"  server - in-process: p50 +{results['server_overhead_p50_ms']:g} ms, p99 +{results['server_overhead_p99_ms']:g} ms")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
