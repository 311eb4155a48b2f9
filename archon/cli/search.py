"""``archon search``: its options, a line per trial, and the result ``archon.search`` (or, with
``--show``, ``search.api.show_study``) returns, printed as text or JSON, the best pipeline and a plot."""

from __future__ import annotations

__all__ = ["import_search_config", "search"]

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from archon.cli import DbOpt, JsonOpt, app, echo_json, err
from archon.exceptions import UserError

if TYPE_CHECKING:
    from search.study import SearchResult, TrialProgress

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
    power_rank: Annotated[Optional[float], _Opt("--power-rank", min=0, help="Archon spaces: score each model alone on the first N dev "
                                                                              "items (a fraction when below 1; 0: none) and rank them first "
                                                                              "(default: the space's power_rank).")] = None,
    study: Annotated[Optional[str], _Opt("--study", help="Study name (default: <space>@<benchmark>).")] = None,
    out: Annotated[Optional[Path], _Opt("--out", "-o", help="Write the best pipeline here as YAML.")] = None,
    plot: Annotated[Optional[Path], _Opt("--plot", help="Write score against cost here (PNG; an .html beside it where plotly is installed).")] = None,
    show: Annotated[bool, _Opt("--show", help="Print a finished study again; runs nothing.")] = False,
    storage: Annotated[Optional[str], _Opt("--storage", help="Study database (default: the store's, --db).")] = None,
    db: DbOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Search the space for the pipeline that scores best on the benchmark under a budget; resumable, workers share a study."""
    from search.api import search as run_search
    from search.api import show_study
    from search.study import PerQuery

    if show:
        result = show_study(study, space=space, benchmark=benchmark, storage=storage, db=db)
    else:
        if space is None or benchmark is None:
            raise UserError("archon search needs a search space and --benchmark (or --show --study NAME to print a finished study).")
        result = run_search(
            space, benchmark, trials=trials, limit=limit, holdout=holdout, trial_items=trial_items, rescore=rescore,
            baseline=baseline, sampler=sampler, seed=seed, cost=cost, budget_usd=budget_usd, budget_tokens=budget_tokens,
            max_calls=max_calls, per_query=PerQuery(calls=max_calls_per_query, tokens=max_tokens_per_query, usd=max_usd_per_query),
            concurrency=concurrency, power_rank=power_rank, study=study, db=db, storage=storage,
            progress=None if json_out else _print_trial)
    _output(result, out, plot, json_out)


def import_search_config(config: Path, out: Path | None, backend: str | None) -> None:
    """``archon import-archon --search CONFIG.json``: an ITAS search config written as an Archon search space."""
    import json

    from archon.exceptions import SpecError
    from search.itas_config import from_search_config, space_text

    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"{config}: cannot read it ({exc.strerror}).") from exc
    except json.JSONDecodeError as exc:
        raise SpecError(f"{config}: not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}") from exc
    space, notes = from_search_config(data, source=str(config), backend=backend)
    if out is not None and out.suffix not in (".yaml", ".yml", ".py"):
        raise UserError(f"--out {out}: a search space is written as .yaml or .py.")
    text = space_text(space, notes, out or Path("space.yaml"))
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        err(f"wrote {out} (an Archon search space over {len(space['archon']['models'])} models)")
    for note in notes:
        err(f"note: {note}")


def _print_trial(t: TrialProgress) -> None:
    score = "-" if t.score is None else f"{t.score:.1%}"
    err(f"trial {t.trial}: {t.state}, score {score} on {t.n} items, {t.calls_per_item or 0} calls/query, "
        f"{t.calls} calls ({t.cached_calls} cached)")


def _output(result: SearchResult, out: Path | None, plot: Path | None, json_out: bool) -> None:
    from search.report import write_plot

    notes = []
    if out is not None and result.best is not None:
        out.write_text(result.best["pipeline"], encoding="utf-8")
        notes.append(f"best pipeline (trial {result.best['trial']}) written to {out}")
    if plot is not None:
        paths = write_plot(result.trials, plot, cost_key=result.cost_key or "cost_per_query_usd", title=result.study_name)
        notes.append("plot written to " + ", ".join(str(p) for p in paths))
    if json_out:
        echo_json(result.to_dict())
    else:
        typer.echo(str(result))
    for note in notes:
        err(note)
