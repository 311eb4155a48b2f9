"""Tokens per second through Archon's LocalBackend vs llama-cpp-python called directly.

Both sides load the same GGUF file with the same n_ctx and n_threads into their own llama.cpp
context, and complete the same code prompts greedily (temperature 0) with the same max_tokens. Calls
alternate between the two sides, and which side goes first alternates too, so slow drift on a shared
machine (thermal, other processes) falls on both alike. The warm-up call of each side (model load,
first page faults) is not counted. Time is wall time around each call, as a caller sees it: for
Archon that includes the hop to the model's executor thread and back.

    python bench/local_throughput.py [--rounds 3] [--max-tokens 128] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from backends.base import CompletionRequest
from backends.local import DEFAULT_MODEL, LocalBackend, default_model_path
from backends.presets import PRESETS

PROMPTS = [
    "def fibonacci(n):\n",
    "def is_prime(n: int) -> bool:\n",
    "class Stack:\n    def __init__(self):\n",
    "import json\n\ndef load_config(path):\n",
    "def binary_search(items, target):\n",
    "def merge_sorted(a, b):\n    \"\"\"Merge two sorted lists.\"\"\"\n",
]

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "local_throughput.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="passes over the prompts (each side once per prompt per pass)")
    parser.add_argument("--max-tokens", type=int, default=128, help="tokens generated per call")
    parser.add_argument("--n-ctx", type=int, default=PRESETS["local"].n_ctx, help="context length for both sides")
    parser.add_argument("--n-threads", type=int, default=os.cpu_count() or 1, help="llama.cpp threads for both sides")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the JSON result")
    return parser.parse_args(argv)


async def measure(args: argparse.Namespace) -> dict:
    from llama_cpp import Llama, __version__ as llama_cpp_version

    model_path = default_model_path()
    direct = Llama(
        model_path=str(model_path),
        n_ctx=args.n_ctx,
        n_threads=args.n_threads,
        n_threads_batch=args.n_threads,
        logits_all=False,
        verbose=False,
    )
    spec = PRESETS["local"].model_copy(update={"n_ctx": args.n_ctx, "n_threads": args.n_threads})
    archon = LocalBackend("local", spec)

    def call_direct(prompt: str) -> tuple[str, int]:
        out = direct.create_completion(prompt, max_tokens=args.max_tokens, temperature=0.0, seed=0)
        return out["choices"][0]["text"], out["usage"]["completion_tokens"]

    async def call_archon(prompt: str) -> tuple[str, int]:
        request = CompletionRequest(
            model=DEFAULT_MODEL, prompt=prompt, mode="completion", temperature=0.0, max_tokens=args.max_tokens
        )
        out = await archon.complete(request)
        return out.texts[0], out.usage.completion_tokens

    async def timed(side: str, prompt: str) -> tuple[str, int, float]:
        started = time.perf_counter()
        text, tokens = call_direct(prompt) if side == "direct" else await call_archon(prompt)
        return text, tokens, time.perf_counter() - started

    for side in ("direct", "archon"):  # warm-up: loads Archon's model, faults the weights in
        await timed(side, PROMPTS[0])

    totals = {"direct": [0, 0.0], "archon": [0, 0.0]}
    same = {"direct": [0, 0.0], "archon": [0, 0.0]}  # only pairs that generated the very same text
    pair_ratios, same_text, calls = [], 0, 0
    for round_ in range(args.rounds):
        for i, prompt in enumerate(PROMPTS):
            order = ("direct", "archon") if (round_ * len(PROMPTS) + i) % 2 == 0 else ("archon", "direct")
            got = {}
            for side in order:
                got[side] = await timed(side, prompt)
                totals[side][0] += got[side][1]
                totals[side][1] += got[side][2]
            rate = {side: tokens / seconds for side, (_, tokens, seconds) in got.items()}
            pair_ratios.append(rate["archon"] / rate["direct"])
            if got["archon"][0] == got["direct"][0]:
                same_text += 1
                for side, (_, tokens, seconds) in got.items():
                    same[side][0] += tokens
                    same[side][1] += seconds
            calls += 1

    direct_tps = totals["direct"][0] / totals["direct"][1]
    archon_tps = totals["archon"][0] / totals["archon"][1]
    return {
        "benchmark": "local_throughput",
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": DEFAULT_MODEL,
        "model_file": model_path.name,
        "llama_cpp_python": llama_cpp_version,
        "python": platform.python_version(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "settings": {
            "n_ctx": args.n_ctx,
            "n_threads": args.n_threads,
            "max_tokens": args.max_tokens,
            "temperature": 0.0,
            "rounds": args.rounds,
            "prompts": len(PROMPTS),
        },
        "calls_per_side": calls,
        "direct": {"tokens": totals["direct"][0], "seconds": round(totals["direct"][1], 4), "tokens_per_s": round(direct_tps, 2)},
        "archon": {"tokens": totals["archon"][0], "seconds": round(totals["archon"][1], 4), "tokens_per_s": round(archon_tps, 2)},
        "ratio": round(archon_tps / direct_tps, 4),
        "median_pair_ratio": round(statistics.median(pair_ratios), 4),
        "identical_outputs": same_text,
        # Archon decodes every request from an empty KV cache (so samples replay exactly); plain
        # llama-cpp-python reuses the previous call's cache, which can flip a greedy token. On the
        # pairs with the same text both sides did exactly the same work: the purest overhead figure.
        "ratio_identical_outputs": round((same["archon"][0] / same["archon"][1]) / (same["direct"][0] / same["direct"][1]), 4)
        if same_text
        else None,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        print("llama-cpp-python is not installed: pip install 'archon-llm[local]'", file=sys.stderr)
        return 2
    started = time.perf_counter()
    result = asyncio.run(measure(args))
    result["wall_seconds"] = round(time.perf_counter() - started, 1)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"llama-cpp-python direct : {result['direct']['tokens_per_s']:8.2f} tokens/s ({result['direct']['tokens']} tokens)")
    print(f"Archon LocalBackend     : {result['archon']['tokens_per_s']:8.2f} tokens/s ({result['archon']['tokens']} tokens)")
    print(f"ratio (Archon / direct) : {result['ratio']:8.4f}  (median per prompt {result['median_pair_ratio']:.4f})")
    print(
        f"identical outputs       : {result['identical_outputs']}/{result['calls_per_side']}"
        f" (ratio on those: {result['ratio_identical_outputs']})"
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
