"""Archon's power ranking: before a search, each available model alone (one ``generate`` node, one
sample) is scored on a sample of the benchmark; the ranking, best first, decides which models the
search's ``model_top_k`` generators (and top-j fusers, critic, ranker ...) are.

Every call goes through the runtime like any other, so it is recorded and cached: the same ranking
run again costs nothing, and a trial whose generator is one model alone replays these very calls.
Ties keep the models' given order.
"""

from __future__ import annotations

__all__ = ["ModelPower", "power_rank", "rank_space"]

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from archon.context import Runtime
    from archon.evals.datasets import Benchmark
    from search.archon_space import ArchonSpace


@dataclass(frozen=True)
class ModelPower:
    """One model's place in the power ranking."""

    model: str
    score: float
    n: int  # items it was scored on
    calls: int = 0
    cached_calls: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


async def power_rank(models: list[str], benchmark: Benchmark, runtime: Runtime, *, backends: dict[str, Any] | None = None,
                     temperature: float = 0.7, max_tokens: int = 2048, concurrency: int = 8) -> list[ModelPower]:
    """Score each of ``models`` alone on ``benchmark`` (all its items: pass a sample); best first."""
    from archon.evals.runner import evaluate
    from archon.spec import parse_pipeline
    from search.final import measure

    powers = []
    for model in models:
        data: dict[str, Any] = {"name": f"power-rank {model}", "output": "generate", "nodes": [
            {"id": "generate", "op": "generate", "model": model, "samples": 1, "temperature": temperature, "max_tokens": max_tokens}]}
        if backends:
            data["backends"] = backends
        spec = parse_pipeline(data, source="power ranking", check_backends=False)
        run = await evaluate(spec, benchmark, runtime, concurrency=concurrency)
        m = measure(run.results, runtime)
        powers.append(ModelPower(model, float(m["score"]), m["n"], m["calls"] or 0, m["cached_calls"] or 0))
    order = sorted(range(len(powers)), key=lambda i: (-powers[i].score, i))
    return [powers[i] for i in order]


async def rank_space(space: ArchonSpace, benchmark: Benchmark, runtime: Runtime, *, items: float | None = None,
                     concurrency: int = 8) -> list[ModelPower]:
    """Power-rank ``space``'s models on the first ``items`` of ``benchmark`` (a fraction when below 1;
    default: the space's ``power_rank``; 0: none) and order the space by it. No setting: the models' order stays."""
    setting = items if items is not None else space.axes.power_rank
    n = space.items_for(setting, len(benchmark.items)) if setting else None  # 0: no ranking
    if not n:
        return []
    a = space.axes
    ranked = await power_rank(list(a.models), benchmark.head(n), runtime, backends=space.backends,
                              temperature=a.temperature, max_tokens=a.max_tokens, concurrency=concurrency)
    space.ranking = [p.model for p in ranked]
    space.power = [p.to_dict() for p in ranked]
    return ranked
