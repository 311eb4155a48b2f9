"""``archon.search``: search a space of pipelines for the one that scores best on a benchmark, from
Python, exactly as ``archon search`` does from the command line; and ``show_study``, a finished study
printed again (``archon search --show``).

    import archon
    result = archon.search("examples/spaces/starter.yaml", "starter", limit=10, trials=8, seed=0)
    print(result)                       # the leaderboard; result.to_dict() is `archon search --json`
    archon.run(result.best_spec, "def fibonacci(n):")

A space may be a ``SearchSpace``/``FunctionSpace``, a YAML file, or Python (``space.py``,
``space.py:fn``, ``package.module:fn``); a benchmark a ``Benchmark``, a built-in name or a file.
The study lives in the store's database unless ``storage`` names another, so the same call resumes it.
"""

from __future__ import annotations

__all__ = ["as_space", "asearch", "search", "show_study"]

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archon.exceptions import UserError, suggest
from archon.runner import as_spec, blocking, open_runtime
from search.study import PerQuery, SearchResult, TrialProgress, quiet_optuna, run_search

if TYPE_CHECKING:
    from archon.context import Runtime
    from search.space import FunctionSpace, SearchSpace


def as_space(space: Any) -> SearchSpace | FunctionSpace:
    """A search space object, a YAML file, or a Python reference (``space.py``, ``space.py:fn``, ``module:fn``)."""
    from search.space import FunctionSpace, SearchSpace, load_space

    if isinstance(space, (SearchSpace, FunctionSpace)):
        return space
    if isinstance(space, (str, Path)):
        return load_space(space)
    raise UserError(f"space: give a SearchSpace, a file path or 'module:function', not {type(space).__name__}")


async def asearch(
    space: Any,
    benchmark: Any,
    *,
    trials: int = 20,
    limit: int | None = None,
    holdout: int = 0,
    trial_items: int | None = None,
    rescore: int = 3,
    baseline: Any = None,
    sampler: str = "tpe",
    seed: int | None = None,
    cost: str = "auto",
    budget_usd: float | None = None,
    budget_tokens: int | None = None,
    max_calls: int | None = None,
    per_query: PerQuery | None = None,
    concurrency: int = 8,
    power_rank: float | None = None,
    study: str | None = None,
    db: Any = None,
    storage: str | None = None,
    backends: dict[str, Any] | None = None,
    runtime: Runtime | None = None,
    progress: Callable[[TrialProgress], None] | None = None,
) -> SearchResult:
    """Search ``space`` for the pipeline that scores best on ``benchmark`` under a budget. Async;
    ``search`` is its blocking twin. Resumable: the study holds every trial, and workers share it.

    ``trials``: evaluated trials the study should hold (earlier runs and other workers count).
    ``limit``: the first N items, ``holdout`` the last N of them kept apart and scored once at the end.
    ``trial_items``: most dev items a trial is scored on. ``rescore``: best N rescored on all dev items.
    ``baseline``: a pipeline scored beside the best. ``sampler``: tpe, random, grid, nsga2. ``cost``:
    usd, tokens, calls or auto. ``budget_usd``/``budget_tokens``/``max_calls``: what the whole search
    may spend. ``per_query``: ``PerQuery(calls=, tokens=, usd=)`` limits every pipeline must respect.
    ``study``: its name (default ``<space>@<benchmark>``). ``db``: the store; ``storage``: the study's
    database (default: the store's). ``backends``/``runtime``: as for ``archon.evaluate``.
    ``progress``: called with a ``TrialProgress`` after each trial. ``power_rank``: for an Archon space
    (``search.archon_space``), the dev items each model is first scored on alone (a fraction when below
    1; 0: none; default: the space's ``power_rank``); the ranking orders its models and is in the result.
    """
    from archon.evals.api import as_benchmark

    sp = as_space(space)
    bench = as_benchmark(benchmark, limit)
    base = as_spec(baseline) if baseline is not None else None
    specs = [sp.sample_first()] + ([base] if base is not None else [])
    async with open_runtime(specs, runtime=runtime, db=db, backends=backends) as rt:
        url = storage or _store_url(rt.store)
        per_query, trial_items = _archon_settings(sp, bench, per_query or PerQuery(), trial_items, holdout)
        # The power ranking runs inside run_search: through the search's budget, and kept in its study.
        return await run_search(sp, bench, rt, storage=url, trials=trials, study_name=study, sampler=sampler, seed=seed,
                                concurrency=concurrency, budget_usd=budget_usd, budget_tokens=budget_tokens, max_calls=max_calls,
                                per_query=per_query, trial_items=trial_items, rescore=rescore, holdout=holdout,
                                baseline=base, cost=cost, power_rank=power_rank, progress=progress)


def _archon_settings(sp: Any, bench: Any, per_query: PerQuery, trial_items: int | None, holdout: int) -> tuple[PerQuery, int | None]:
    """An Archon space's own settings: its call limit and trial sample."""
    from dataclasses import replace

    from search.archon_space import ArchonSpace

    if not isinstance(sp, ArchonSpace):
        return per_query, trial_items
    if holdout and holdout >= len(bench.items):
        raise UserError(f"--holdout {holdout} leaves no dev items: the benchmark has {len(bench.items)}.")
    if sp.max_calls is not None:
        per_query = replace(per_query, calls=min(per_query.calls or sp.max_calls, sp.max_calls))
    if trial_items is None:
        trial_items = sp.items_for(sp.axes.search_sample, len(bench.items) - holdout)
    return per_query, trial_items


search = blocking(asearch, "search")


def show_study(study: str | None = None, *, space: Any = None, benchmark: Any = None, storage: str | None = None,
               db: Any = None) -> SearchResult:
    """A finished study as a result, from its database alone (runs nothing): by name, or by the space and
    benchmark it ran with (the default name ``<space>@<benchmark>``)."""
    import optuna

    from archon.evals.api import as_benchmark
    from search.final import study_summary
    from stores.store import get_store

    url = storage or _store_url(get_store(db))
    if study is None:
        if space is None or benchmark is None:
            raise UserError("archon search --show needs --study NAME, or the search space and --benchmark it ran with.")
        study = f"{as_space(space).name}@{as_benchmark(benchmark).name}"
    with quiet_optuna():
        names = optuna.get_all_study_names(url)
        if study not in names:
            listed = ", ".join(names) if names else "none yet"
            raise UserError(f"no study '{study}' in {url}.{suggest(study, names)} Studies there: {listed}.")
        return SearchResult.from_summary(study_summary(optuna.load_study(study_name=study, storage=url)))


def _store_url(store: Any) -> str:
    if store is None:
        raise UserError("a search keeps its study in a database: give storage=URL, or a store (db=...) rather than none.")
    return store.url.render_as_string(hide_password=False)
