"""``archon search``: an Optuna study over a search space, each trial scored by ``archon eval`` on a
growing subset of the dev items (poor trials pruned early), all trials sharing the response cache.

The study lives in the same database as the store, so running the same command again resumes it,
and several workers pointed at one PostgreSQL database share it.
"""

from __future__ import annotations

__all__ = ["SearchResult", "make_sampler", "run_search", "subset_sizes"]

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from archon.exceptions import ConfigError, UserError, suggest
from archon.evals.report import summarize

if TYPE_CHECKING:
    from archon.context import Runtime
    from archon.evals.datasets import Benchmark
    from search.space import SearchSpace

SAMPLERS = ("tpe", "random", "grid", "nsga2")


def make_sampler(name: str, seed: int | None, space: SearchSpace | None = None):
    import optuna

    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if name == "grid":
        if space is None:
            raise ConfigError("the grid sampler needs the search space")
        return optuna.samplers.GridSampler(_grid(space), seed=seed)
    raise UserError(f"unknown sampler '{name}'.{suggest(name, SAMPLERS)} Valid: {', '.join(SAMPLERS)}")


def _grid(space: SearchSpace) -> dict[str, list[Any]]:
    """Every parameter's values; ranges must have a step to be gridded."""
    from search.space import _Recorder

    grid: dict[str, list[Any]] = {}

    class Collect(_Recorder):
        def suggest_categorical(self, name, choices):
            grid[name] = list(choices)
            return choices[0]

        def suggest_int(self, name, low, high, step=1, log=False):
            grid[name] = list(range(low, high + 1, step))
            return low

        def suggest_float(self, name, low, high, step=None, log=False):
            if step is None:
                raise UserError(f"the grid sampler needs a 'step' on the float range '{name}'")
            n = int(round((high - low) / step))
            grid[name] = [round(low + i * step, 10) for i in range(n + 1)]
            return low

    space.sample(Collect())
    return grid


def subset_sizes(total: int, steps: int = 3, first: int = 5) -> list[int]:
    """Growing dev subsets, e.g. 50 items -> [12, 25, 50]: cheap looks first, the whole set last."""
    sizes = sorted({max(min(first, total), total * (k + 1) // steps) for k in range(steps)})
    return [s for s in sizes if s > 0] or [total]


@dataclass
class SearchResult:
    study_name: str
    trials: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] | None = None
    stopped: str | None = None  # why the search stopped early (a budget), if it did
    wall_s: float = 0.0

    @property
    def requested_calls(self) -> int:
        return sum(t.get("calls", 0) for t in self.trials)

    @property
    def issued_calls(self) -> int:
        return sum(t.get("calls", 0) - t.get("cached_calls", 0) for t in self.trials)


async def run_search(
    space: SearchSpace,
    benchmark: Benchmark,
    runtime: Runtime,
    *,
    storage: str,
    trials: int,
    study_name: str | None = None,
    sampler: str = "tpe",
    seed: int | None = None,
    steps: int = 3,
    concurrency: int = 8,
    budget_usd: float | None = None,
    max_calls: int | None = None,
    progress: Any = None,
) -> SearchResult:
    """Run trials until the study holds ``trials`` finished ones (counting earlier runs), or a budget stops it."""
    import optuna

    from archon.evals.runner import evaluate

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    name = study_name or f"{space.name}@{benchmark.name}"
    study = optuna.create_study(
        study_name=name, storage=storage, load_if_exists=True, direction="maximize",
        sampler=make_sampler(sampler, seed, space), pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0),
    )
    sizes = subset_sizes(len(benchmark.items), steps)
    result = SearchResult(name)
    started = time.perf_counter()
    while True:
        done = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
        spent = sum(t.user_attrs.get("cost_usd") or 0.0 for t in done)
        calls = sum(t.user_attrs.get("calls", 0) - t.user_attrs.get("cached_calls", 0) for t in done)
        if len(done) >= trials:
            break
        if budget_usd is not None and spent >= budget_usd:
            result.stopped = f"dollar budget reached: ${spent:.4f} of ${budget_usd:.4f}"
            break
        if max_calls is not None and calls >= max_calls:
            result.stopped = f"call budget reached: {calls} of {max_calls} calls issued"
            break
        trial = study.ask()
        spec = space.sample(trial)
        trial.set_user_attr("pipeline", spec.to_yaml())
        state, score, totals = optuna.trial.TrialState.COMPLETE, None, {}
        for step, n in enumerate(sizes):
            run = await evaluate(spec, benchmark.head(n), runtime, concurrency=concurrency, trial=trial.number)
            totals = summarize(run.results)
            score = totals["score"] if totals["score"] is not None else 0.0
            trial.report(score, step)
            if budget_usd is not None and spent + (totals["cost_usd"] or 0.0) >= budget_usd and step < len(sizes) - 1:
                break  # keep what this trial has: stop growing its subset
            if trial.should_prune():
                state = optuna.trial.TrialState.PRUNED
                break
        for key in ("n", "ci_low", "ci_high", "cost_usd", "calls", "cached_calls", "calls_per_item", "failed"):
            trial.set_user_attr(key, totals.get(key))
        study.tell(trial, score if state == optuna.trial.TrialState.COMPLETE else None, state=state)
        if progress is not None:
            progress(trial.number, state.name.lower(), score, totals)
    await runtime.flush()
    result.trials = leaderboard(study)
    complete = [t for t in result.trials if t["state"] == "complete"]
    result.best = complete[0] if complete else None
    result.wall_s = time.perf_counter() - started
    return result


def leaderboard(study: Any) -> list[dict[str, Any]]:
    """Finished trials, best first: score with interval, cost and calls per query, the pipeline."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        if not t.state.is_finished():
            continue
        a = t.user_attrs
        rows.append({
            "trial": t.number, "state": t.state.name.lower(),
            "score": t.value if t.value is not None else (max(t.intermediate_values.values()) if t.intermediate_values else None),
            "ci_low": a.get("ci_low"), "ci_high": a.get("ci_high"), "n": a.get("n"),
            "cost_usd": a.get("cost_usd"), "calls": a.get("calls", 0), "cached_calls": a.get("cached_calls", 0),
            "calls_per_item": a.get("calls_per_item"), "pipeline": a.get("pipeline", ""), "params": dict(t.params),
        })
    rows.sort(key=lambda r: (r["state"] != "complete", -(r["score"] or 0.0), r["calls_per_item"] or 0))
    return rows
