"""``archon search``: its options, and printing a search (or a finished study, ``--show``)."""

from __future__ import annotations

__all__ = ["search"]

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from archon.cli import DbOpt, JsonOpt, _err, app
from archon.exceptions import UserError, suggest

_Opt = typer.Option


@app.command()
def search(
    space: Annotated[Optional[str], typer.Argument(help="Search space: a YAML file (a pipeline file whose values may be choices), "
                                                        "or Python: space.py, space.py:fn, package.module:fn.", show_default=False)] = None,
    benchmark: Annotated[Optional[str], _Opt("--benchmark", "-b", help="Benchmark name or file (as for archon eval).")] = None,
    trials: Annotated[int, _Opt("--trials", "-t", min=1, help="Evaluated trials the study should hold (earlier runs and other workers count).")] = 20,
    limit: Annotated[Optional[int], _Opt("--limit", "-n", min=1, help="Items used (the first N), held-out split included.")] = None,
    holdout: Annotated[int, _Opt("--holdout", min=0, help="The last N items: never searched on, scored once at the end and reported apart.")] = 0,
    trial_items: Annotated[Optional[int], _Opt("--trial-items", min=1, help="Most dev items a trial is scored on (default: all).")] = None,
    rescore: Annotated[int, _Opt("--rescore", min=1, help="Score the best N trials on the whole dev set at the end.")] = 3,
    baseline: Annotated[Optional[Path], _Opt("--baseline", help="A pipeline file scored beside the best one (e.g. a single call).")] = None,
    sampler: Annotated[str, _Opt("--sampler", help="tpe, random, grid, or nsga2 (score and cost together: a Pareto front).")] = "tpe",
    seed: Annotated[Optional[int], _Opt("--seed", help="Sampler seed, for reproducible searches.")] = None,
    cost: Annotated[str, _Opt("--cost", help="Cost per query for nsga2, the Pareto front and the plot: usd, tokens, calls, or auto "
                                               "(usd when the models have prices, else tokens).")] = "auto",
    budget_usd: Annotated[Optional[float], _Opt("--budget-usd", min=0, help="Total the search may spend, in dollars; it never crosses it.")] = None,
    budget_tokens: Annotated[Optional[int], _Opt("--budget-tokens", min=1, help="Total tokens the search may spend.")] = None,
    max_calls: Annotated[Optional[int], _Opt("--max-calls", min=1, help="Total model calls the search may issue.")] = None,
    max_calls_per_query: Annotated[Optional[int], _Opt("--max-calls-per-query", min=1, help="Only pipelines making at most N calls per query (known before running).")] = None,
    max_tokens_per_query: Annotated[Optional[float], _Opt("--max-tokens-per-query", min=1, help="Only pipelines using at most N tokens per query (measured).")] = None,
    max_usd_per_query: Annotated[Optional[float], _Opt("--max-usd-per-query", min=0, help="Only pipelines costing at most this many dollars per query (measured).")] = None,
    concurrency: Annotated[int, _Opt("--concurrency", "-c", min=1, help="Items run at once within a trial.")] = 8,
    study: Annotated[Optional[str], _Opt("--study", help="Study name (default: <space>@<benchmark>).")] = None,
    out: Annotated[Optional[Path], _Opt("--out", "-o", help="Write the best pipeline here as YAML.")] = None,
    plot: Annotated[Optional[Path], _Opt("--plot", help="Write score against cost here (PNG; an .html beside it where plotly is installed).")] = None,
    show: Annotated[bool, _Opt("--show", help="Print a finished study again; runs nothing.")] = False,
    storage: Annotated[Optional[str], _Opt("--storage", help="Study database (default: the store's, --db).")] = None,
    db: DbOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Search the space for the pipeline that scores best on the benchmark under a budget; resumable, workers share a study."""
    from archon.context import Runtime
    from archon.evals.datasets import load_benchmark
    from search.space import load_space
    from search.study import PerQuery

    if show:
        summary = _load_summary(study, space, benchmark, storage, db)
    else:
        if space is None or benchmark is None:
            raise UserError("archon search needs a search space and --benchmark (or --show --study NAME to print a finished study).")
        sp = load_space(space)
        bench = load_benchmark(benchmark, limit=limit)
        base = _load_baseline(baseline)
        runtime = Runtime(sp.sample_first().backends, store=db)
        summary = asyncio.run(_search(sp, bench, runtime, storage, base, json_out, dict(
            trials=trials, study_name=study, sampler=sampler, seed=seed, concurrency=concurrency, budget_usd=budget_usd,
            budget_tokens=budget_tokens, max_calls=max_calls, trial_items=trial_items, rescore=rescore, holdout=holdout,
            cost=cost, per_query=PerQuery(calls=max_calls_per_query, tokens=max_tokens_per_query, usd=max_usd_per_query))))
    _output(summary, out, plot, json_out)


def _load_baseline(path: Path | None):
    if path is None:
        return None
    from archon.spec import load_pipeline

    return load_pipeline(path)


async def _search(sp, bench, runtime, storage, baseline, quiet, options) -> dict[str, Any]:
    from search.study import run_search

    def progress(number: int, state: str, m: dict[str, Any]) -> None:
        if not quiet:
            score = "-" if m.get("score") is None else f"{m['score']:.1%}"
            _err(f"trial {number}: {state}, score {score} on {m.get('n', 0)} items, {m.get('calls_per_item') or 0} calls/query, "
                 f"{m.get('calls', 0)} calls ({m.get('cached_calls', 0)} cached)")

    try:
        url = storage or runtime.store.url.render_as_string(hide_password=False)
        res = await run_search(sp, bench, runtime, storage=url, baseline=baseline, progress=progress, **options)
    finally:
        await runtime.aclose()
    return res.to_dict()


def _load_summary(study: str | None, space: str | None, benchmark: str | None, storage: str | None, db: str | None) -> dict[str, Any]:
    import optuna

    from search.final import study_summary
    from stores.store import get_store

    url = storage or get_store(db).url.render_as_string(hide_password=False)
    if study is None:
        if space is None or benchmark is None:
            raise UserError("archon search --show needs --study NAME, or the search space and --benchmark it ran with.")
        from archon.evals.datasets import load_benchmark
        from search.space import load_space

        study = f"{load_space(space).name}@{load_benchmark(benchmark).name}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    names = optuna.get_all_study_names(url)
    if study not in names:
        listed = ", ".join(names) if names else "none yet"
        raise UserError(f"no study '{study}' in {url}.{suggest(study, names)} Studies there: {listed}.")
    return study_summary(optuna.load_study(study_name=study, storage=url))


def _output(summary: dict[str, Any], out: Path | None, plot: Path | None, json_out: bool) -> None:
    from search.report import render_text, write_plot

    best = summary.get("best")
    notes = []
    if out is not None and best is not None:
        out.write_text(best["pipeline"], encoding="utf-8")
        notes.append(f"best pipeline (trial {best['trial']}) written to {out}")
    if plot is not None:
        paths = write_plot(summary["leaderboard"], plot, cost_key=summary.get("cost_key") or "cost_per_query_usd", title=summary["study"])
        notes.append("plot written to " + ", ".join(str(p) for p in paths))
    if json_out:
        typer.echo(json.dumps(summary, indent=2, default=str))
    else:
        typer.echo(render_text(summary))
    for note in notes:
        _err(note)
