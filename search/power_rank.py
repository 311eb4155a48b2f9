"""Archon's power ranking: before a search, each available model alone (one ``generate`` node, one
sample) is scored on a sample of the benchmark; the ranking, best first, decides which models the
search's ``model_top_k`` generators (and top-j fusers, critic, ranker ...) are.

Every call goes through the runtime like any other, so it is recorded, cached and metered by the
search's budget: the same ranking run again costs nothing, and a trial whose generator is one model
alone replays these very calls. Ties keep the models' given order.

A search keeps its ranking in the study (``study_ranking``), keyed by what it was measured on (the
models in their given order, the items, the benchmark, temperature and tokens): a resumed search
reuses it, ``archon search --show`` prints it, and a space whose models changed is ranked again.
"""

from __future__ import annotations

__all__ = ["RANKING_ATTR", "ModelPower", "power_rank", "rank_space", "ranking_items", "study_ranking"]

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from archon.context import Runtime
    from archon.evals.datasets import Benchmark
    from search.archon_space import ArchonSpace

RANKING_ATTR = "power_ranking"  # the study's user attribute holding the ranking and what ranking has spent


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


def ranking_items(space: ArchonSpace, total: int, items: float | None = None) -> int | None:
    """Items each model is scored on, of ``total`` dev items: ``items`` (a fraction when below 1; 0: none),
    default the space's ``power_rank``. None: no ranking, the models keep their given order."""
    setting = items if items is not None else space.axes.power_rank
    return space.items_for(setting, total) if setting else None


async def rank_space(space: ArchonSpace, benchmark: Benchmark, runtime: Runtime, *, items: float | None = None,
                     concurrency: int = 8) -> list[ModelPower]:
    """Power-rank ``space``'s models on the first ``items`` of ``benchmark`` (a fraction when below 1;
    default: the space's ``power_rank``; 0: none) and order the space by it. No setting: the models' order stays."""
    n = ranking_items(space, len(benchmark.items), items)
    if not n:
        return []
    a = space.axes
    ranked = await power_rank(list(a.models), benchmark.head(n), runtime, backends=space.backends,
                              temperature=a.temperature, max_tokens=a.max_tokens, concurrency=concurrency)
    _apply(space, [p.to_dict() for p in ranked])
    return ranked


async def study_ranking(space: ArchonSpace, dev: Benchmark, runtime: Runtime, study: Any, *, items: float | None = None,
                        concurrency: int = 8) -> bool:
    """Order ``space`` by the power ranking ``study`` holds when it was measured the same way, else rank
    on ``dev`` through ``runtime`` (the search's, so its budget bounds the ranking) and keep the ranking in
    ``study``. Returns whether it ranked here.

    The study's record also sums what every ranking of the study requested and spent (``calls``,
    ``issued_calls``, ``spent_usd``, ``spent_tokens``): the search's totals and budget count them. A
    ranking the budget cut short is not kept (its unasked models would score 0); its spend is.
    """
    n = ranking_items(space, len(dev.items), items)
    if not n:
        return False
    a = space.axes
    key = {"models": list(a.models), "items": n, "benchmark": dev.name, "temperature": a.temperature, "max_tokens": a.max_tokens}
    held = dict(study.user_attrs.get(RANKING_ATTR) or {})
    if held.get("key") == key and held.get("ranking"):
        _apply(space, held["ranking"])
        return False
    before = runtime.budget.spent
    ranked = await power_rank(list(a.models), dev.head(n), runtime, backends=space.backends,
                              temperature=a.temperature, max_tokens=a.max_tokens, concurrency=concurrency)
    spent = runtime.budget.spent - before
    complete = not runtime.budget.exhausted
    rows = [p.to_dict() for p in ranked] if complete else []
    study.set_user_attr(RANKING_ATTR, {
        "key": key if complete else None, "ranking": rows,
        "calls": (held.get("calls") or 0) + sum(p.calls for p in ranked),
        "issued_calls": (held.get("issued_calls") or 0) + spent.calls,
        "spent_usd": (held.get("spent_usd") or 0.0) + spent.usd,
        "spent_tokens": (held.get("spent_tokens") or 0) + spent.tokens,
    })
    if complete:
        _apply(space, rows)
    return True


def _apply(space: ArchonSpace, rows: list[dict[str, Any]]) -> None:
    space.ranking = [str(r["model"]) for r in rows]
    space.power = rows
