"""``archon eval``: its options, a progress bar, and the report ``archon.evaluate`` (or
``archon.compare``) returns, printed as text or JSON."""

from __future__ import annotations

__all__ = ["eval_"]

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from archon.cli import DbOpt, JsonOpt, app, echo_json, err
from archon.exceptions import UserError

if TYPE_CHECKING:
    from archon.evals.api import EvalComparison, EvalProgress, EvalReport

_Opt = typer.Option


@app.command("eval")
def eval_(
    pipelines: Annotated[list[Path], typer.Argument(help="A pipeline file; two files are compared item by item.", show_default=False)],
    benchmark: Annotated[str, _Opt("--benchmark", "-b", help="A built-in name (gsm8k, math500, humaneval, mbpp, mmlu, arc, commonsenseqa, hotpotqa, mt-bench, starter) or a .jsonl/.yaml file.")],
    limit: Annotated[Optional[int], _Opt("--limit", "-n", min=1, help="Only the first N items.")] = None,
    concurrency: Annotated[int, _Opt("--concurrency", "-c", min=1, help="Items run at once.")] = 8,
    compare: Annotated[Optional[Path], _Opt("--compare", help="A second pipeline to compare against (paired).")] = None,
    style: Annotated[str, _Opt("--style", help="Prompt style: auto (completion when every node is in completion mode), chat, completion.")] = "auto",
    judge: Annotated[Optional[Path], _Opt("--judge", help="Judge pipeline for judged benchmarks (mt-bench, vicuna-bench).")] = None,
    pass_at: Annotated[Optional[str], _Opt("--pass-at", help="Also score every candidate of one node and report the unbiased pass@k "
                                             "for these k (e.g. 1,5,10), its coverage and the selection gap (coverage - score).")] = None,
    coverage: Annotated[bool, _Opt("--coverage", help="Coverage and selection gap only (as --pass-at, without k).")] = False,
    pass_at_node: Annotated[Optional[str], _Opt("--pass-at-node", help="The node of --pass-at, --coverage, --samples-curve "
                                                 "(default: the node that can output the most candidates).")] = None,
    samples_curve: Annotated[Optional[str], _Opt("--samples-curve", help="Rerun with that node's samples at each point (e.g. "
                                                  "1,2,4,8,16): score and coverage per point; the node samples only as much as the largest point.")] = None,
    plot: Annotated[Optional[Path], _Opt("--plot", help="Write the samples curve here (PNG, log x-axis); needs --samples-curve.")] = None,
    db: DbOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Score a pipeline on a benchmark: score with 95% interval, failures, cost, tokens, calls, latency.

    Results are written as items finish; running the same command again resumes. Exit code 1 when
    some items failed (they are listed), 0 otherwise.
    """
    from archon.evals.api import compare as compare_pipelines
    from archon.evals.api import evaluate
    from archon.evals.curve import parse_ints, require_matplotlib, write_curve_plot

    if style not in ("auto", "chat", "completion"):
        raise UserError(f"--style must be auto, chat or completion (got '{style}').")
    files = list(pipelines) + ([compare] if compare else [])
    if len(files) > 2:
        raise UserError("give one pipeline, or two to compare (as two arguments or with --compare).")
    if plot is not None and samples_curve is None:
        raise UserError("--plot draws the samples curve: give --samples-curve too (e.g. --samples-curve 1,2,4,8,16).")
    curve = parse_ints(samples_curve, "--samples-curve", most=1024)  # bad lists fail before anything runs
    if plot is not None:
        require_matplotlib()
    with _progress_bar(disable=json_out) as progress:
        options: dict[str, Any] = {"limit": limit, "concurrency": concurrency, "style": style, "judge": judge, "db": db, "progress": progress,
                                   "pass_at": parse_ints(pass_at, "--pass-at"), "coverage": coverage, "pass_at_node": pass_at_node,
                                   "samples_curve": curve}
        report: EvalReport | EvalComparison
        if len(files) == 1:
            single = evaluate(files[0], benchmark, **options)
            report, reports = single, [single]
        else:
            paired = compare_pipelines(files[0], files[1], benchmark, **options)
            report, reports = paired, [paired.a, paired.b]
    if plot is not None:
        for r in reports:  # two pipelines: one plot each, the second beside the first
            path = plot if r is reports[0] else plot.with_name(f"{plot.stem}-{r.pipeline}{plot.suffix}")
            write_curve_plot(r.samples_curve or [], path, title=f"{r.pipeline} on {r.benchmark}: node '{r.pass_at_node}'")
            err(f"samples curve plotted to {path}")
    if json_out:
        echo_json(report.to_dict())
    else:
        typer.echo(str(report))
    for r in reports:
        if r.store_error:
            err(f"error: {r.store_error}")
    if not report.ok:
        raise typer.Exit(1)


@contextlib.contextmanager
def _progress_bar(*, disable: bool) -> Iterator[Callable[[EvalProgress], None]]:
    """A bar per evaluation on standard error: items done, score so far, failures and cost."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  TextColumn("{task.fields[stats]}"), console=Console(stderr=True), disable=disable, transient=False) as bar:
        tasks: dict[str, object] = {}

        def update(p: EvalProgress) -> None:
            name = f"{p.pipeline} on {p.benchmark}"
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=p.total, stats="")
            bar.update(tasks[name], completed=p.done,  # type: ignore[arg-type]
                       stats=f"score {p.score or 0.0:.1%}  failed {p.failed}  cost ${p.cost_usd:.4f}")

        yield update
