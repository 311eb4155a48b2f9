"""Benchmarks and scorers for ``archon eval`` and ``archon search``.

    from archon.evals import load_benchmark, get_scorer, ScoreContext
    bench = load_benchmark("gsm8k", limit=20)          # or "path/to/file.jsonl", "bench.yaml"
    item = bench.items[0]
    query = bench.query(item, "chat")                    # the prompt, plus only the visible data
    score = await get_scorer(bench.scorer)(output, item, ScoreContext())

Names resolve lazily, so importing one submodule (the eval runner) does not load the others.
"""

from __future__ import annotations

__all__ = [
    "Benchmark",
    "Item",
    "Score",
    "ScoreContext",
    "Scorer",
    "benchmark_names",
    "get_scorer",
    "load_benchmark",
    "register_scorer",
    "scorer_names",
]

import importlib
from typing import TYPE_CHECKING, Any

_HOMES = {
    "Benchmark": "datasets",
    "Item": "datasets",
    "benchmark_names": "datasets",
    "load_benchmark": "datasets",
    "Score": "scorers",
    "ScoreContext": "scorers",
    "Scorer": "scorers",
    "get_scorer": "scorers",
    "register_scorer": "scorers",
    "scorer_names": "scorers",
}

if TYPE_CHECKING:
    from archon.evals.datasets import Benchmark, Item, benchmark_names, load_benchmark
    from archon.evals.scorers import Score, ScoreContext, Scorer, get_scorer, register_scorer, scorer_names


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'archon.evals' has no attribute '{name}'")
    value = getattr(importlib.import_module(f"archon.evals.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
