"""The ``archon`` command: a thin layer that parses, calls the library and prints.

Exit codes: 0 success; 1 the run failed; 2 the user's input is wrong. No traceback for 1 or 2
unless ``--debug``.
"""

from __future__ import annotations

__all__ = ["app", "main"]

import asyncio
import contextlib
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Annotated, Optional

import typer

from archon.exceptions import ArchonError, SpecError, StoreUnavailable, UserError

app = typer.Typer(
    name="archon",
    help="Build, run, score, search and serve LLM pipelines made of inference-time techniques.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_state = {"debug": False}
DbOpt = Annotated[Optional[str], typer.Option("--db", help="Store URL (default: $ARCHON_DB_URL, else ./archon.db).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@app.callback()
def _root(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False) -> None:
    _state["debug"] = debug or bool(os.environ.get("ARCHON_DEBUG"))


def _err(msg: str) -> None:
    typer.echo(msg, err=True)


@app.command()
def run(
    pipeline: Annotated[Path, typer.Argument(help="Pipeline file (YAML).", show_default=False)],
    input: Annotated[Optional[str], typer.Option("--input", "-i", help="The query text.")] = None,
    input_file: Annotated[Optional[Path], typer.Option("--input-file", help="Read the query from a file.")] = None,
    db: DbOpt = None,
    json_out: JsonOpt = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Call the models even when a cached answer exists.")] = False,
) -> None:
    """Run a pipeline on one query and print the answer."""
    from archon.context import Runtime
    from archon.runner import CompiledPipeline
    from archon.spec import load_pipeline

    text = _read_input(input, input_file)
    spec = load_pipeline(pipeline)
    compiled = CompiledPipeline(spec)

    async def go():
        runtime = Runtime.for_pipeline(spec, store=db, use_cache=not no_cache)
        try:
            runtime.check_backends(spec)
            return await compiled.run(text, runtime)
        finally:
            await runtime.aclose()

    result = asyncio.run(go())
    if json_out:
        typer.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
        return
    typer.echo(result.output)
    for note in sorted(set(result.notes)):
        _err(f"note: {note}")
    cost = "unknown cost" if result.cost_usd is None else f"${result.cost_usd:.6f}"
    u = result.usage
    tokens = f"{u.prompt_tokens}+{u.completion_tokens} tokens" if u.known else "unknown tokens"
    _err(
        f"run {result.run_id or '-'}: {result.calls} calls ({result.cached_calls} cached), "
        f"{tokens}, {cost}, {result.latency_ms / 1000:.2f} s"
    )


def _read_input(text: str | None, path: Path | None) -> str:
    from archon.files import find_surrogate, read_text, utf8_error

    if text is not None and path is not None:
        raise UserError("give either --input or --input-file, not both.")
    if path is not None:
        return read_text(path, "input")
    if text is not None:
        # Python decodes argv bytes that are not UTF-8 to lone surrogates, which no store can write.
        if find_surrogate(text):
            raise UserError("--input holds bytes that are not UTF-8; pass UTF-8 text, or use --input-file.")
        return text
    if not sys.stdin.isatty():
        raw = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
        try:
            data = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UserError(f"standard input: {utf8_error(raw, exc)}") from None
        if data.strip():
            return data
    raise UserError("no query: give --input TEXT, --input-file FILE, or pipe the query on standard input.")


@app.command()
def validate(pipelines: Annotated[list[Path], typer.Argument(help="Pipeline files to check.", show_default=False)]) -> None:
    """Check pipeline files; exit 2 naming the file, node and field of every problem."""
    from archon.spec import load_pipeline

    bad = 0
    for path in pipelines:
        try:
            spec = load_pipeline(path)
        except SpecError as exc:
            bad += 1
            for line in exc.problems:
                _err(line)
            continue
        typer.echo(f"{path}: ok ({len(spec.nodes)} nodes, output '{spec.output}')")
    if bad:
        raise typer.Exit(2)


@app.command()
def schema() -> None:
    """Print the JSON Schema of the pipeline file (for editors)."""
    from archon.spec import pipeline_json_schema

    typer.echo(json.dumps(pipeline_json_schema(), indent=2))


@app.command("eval")
def eval_(
    pipelines: Annotated[list[Path], typer.Argument(help="A pipeline file; two files are compared item by item.", show_default=False)],
    benchmark: Annotated[str, typer.Option("--benchmark", "-b", help="A built-in name (gsm8k, math500, humaneval, mbpp, mmlu, arc, commonsenseqa, hotpotqa, mt-bench, starter) or a .jsonl/.yaml file.")],
    limit: Annotated[Optional[int], typer.Option("--limit", "-n", min=1, help="Only the first N items.")] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1, help="Items run at once.")] = 8,
    compare: Annotated[Optional[Path], typer.Option("--compare", help="A second pipeline to compare against (paired).")] = None,
    style: Annotated[str, typer.Option("--style", help="Prompt style: auto (completion when every node is in completion mode), chat, completion.")] = "auto",
    judge: Annotated[Optional[Path], typer.Option("--judge", help="Judge pipeline for judged benchmarks (mt-bench, vicuna-bench).")] = None,
    db: DbOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Score a pipeline on a benchmark: score with 95% interval, failures, cost, tokens, calls, latency.

    Results are written as items finish; running the same command again resumes. Exit code 1 when
    some items failed (they are listed), 0 otherwise.
    """
    from archon.evals.datasets import load_benchmark
    from archon.evals.report import compare as paired, format_comparison, format_summary, summarize
    from archon.spec import load_pipeline

    if style not in ("auto", "chat", "completion"):
        raise UserError(f"--style must be auto, chat or completion (got '{style}').")
    files = list(pipelines) + ([compare] if compare else [])
    if len(files) > 2:
        raise UserError("give one pipeline, or two to compare (as two arguments or with --compare).")
    specs = [load_pipeline(f) for f in files]
    judge_spec = load_pipeline(judge) if judge else None
    bench = load_benchmark(benchmark, limit=limit)
    runs = [asyncio.run(_eval_one(spec, bench, db, concurrency, style, judge_spec, show_progress=not json_out)) for spec in specs]
    summaries = [summarize(r.results, pipeline=r.pipeline, benchmark=r.benchmark, scoring_visible=r.scoring_visible) for r in runs]
    comparison = paired(runs[0].results, runs[1].results) if len(runs) == 2 else None
    if json_out:
        out: dict = summaries[0] if len(runs) == 1 else {"a": summaries[0], "b": summaries[1], "comparison": comparison}
        typer.echo(json.dumps(out, indent=2, default=str))
    else:
        for s in summaries:
            typer.echo(format_summary(s))
        if comparison:
            typer.echo(format_comparison(comparison, specs[0].name, specs[1].name))
    for run in runs:
        if run.store_error:
            typer.echo(f"error: {run.store_error}", err=True)
    if any(s["failed"] for s in summaries) or any(run.store_error for run in runs):
        raise typer.Exit(1)


async def _eval_one(spec, bench, db, concurrency: int, style: str, judge_spec, *, show_progress: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from archon.context import Runtime
    from archon.evals.runner import evaluate
    from archon.evals.scorers import ScoreContext
    from archon.runner import CompiledPipeline

    backends = {**spec.backends, **(judge_spec.backends if judge_spec else {})}
    runtime = Runtime(backends, store=db)
    try:
        runtime.check_backends(spec)
        score_ctx = ScoreContext(runtime=runtime)
        if judge_spec is not None:
            runtime.check_backends(judge_spec)
            score_ctx = ScoreContext(runtime=runtime, judge=CompiledPipeline(judge_spec))
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      TextColumn("{task.fields[stats]}"), console=_stderr_console(), disable=not show_progress, transient=False) as bar:
            task = bar.add_task(f"{spec.name} on {bench.name}", total=len(bench.items), stats="")

            def progress(done: int, total: int, results: dict) -> None:
                ok = [r for r in results.values() if r["status"] == "ok"]
                failed = sum(1 for r in results.values() if r["status"] != "ok")
                score = sum(r["score"] for r in ok) / len(ok) if ok else 0.0
                cost = sum(r["cost_usd"] or 0.0 for r in results.values())
                bar.update(task, completed=done, stats=f"score {score:.1%}  failed {failed}  cost ${cost:.4f}")

            result = await evaluate(spec, bench, runtime, concurrency=concurrency, style=style, progress=progress,
                                    scorer_context=score_ctx)
    except BaseException:
        with contextlib.suppress(Exception):  # the eval's own error is the one to report
            await runtime.aclose()
        raise
    try:
        await runtime.aclose()
    except StoreUnavailable:
        if not result.store_error:
            raise  # else already reported with the results
    return result


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True)


@app.command("import-archon")
def import_archon(
    config: Annotated[Path, typer.Argument(help="An original Archon JSON config.", show_default=False)],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write the pipeline YAML here (default: stdout).")] = None,
    backend: Annotated[Optional[str], typer.Option("--backend", help="Use this backend for every model instead of mapping model_type.")] = None,
) -> None:
    """Translate an original Archon config (layers of generators, fusers, ...) into a pipeline file."""
    from archon.import_archon import from_archon
    from archon.spec import parse_pipeline

    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"{config}: cannot read it ({exc.strerror}).") from exc
    except json.JSONDecodeError as exc:
        raise SpecError(f"{config}: not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}") from exc
    spec = parse_pipeline(from_archon(data, source=str(config), backend=backend), source=str(config),
                          default_name=config.stem, check_backends=backend is None)
    text = spec.to_yaml()
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        _err(f"wrote {out} ({len(spec.nodes)} nodes)")


@app.command()
def calls(
    run: Annotated[Optional[str], typer.Option("--run", help="Only this run's calls.")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", "-n", min=1, help="Only the last N calls.")] = None,
    db: DbOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List model calls with tokens, latency and cost."""
    from stores.store import get_store

    rows = get_store(db).calls(run_id=run, limit=limit)
    if json_out:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    _table(rows, ["id", "run_id", "node_id", "backend", "model", "prompt_tokens", "completion_tokens",
                  "cost_usd", "latency_ms", "status", "attempts", "cached"])


@app.command()
def runs(
    limit: Annotated[Optional[int], typer.Option("--limit", "-n", min=1, help="Only the last N runs.")] = None,
    db: DbOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List pipeline runs with their totals."""
    from stores.store import get_store

    rows = get_store(db).runs(limit=limit)
    if json_out:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    _table(rows, ["id", "pipeline", "status", "calls", "prompt_tokens", "completion_tokens", "cost_usd", "started_at"])


# Columns whose NULL means "not known" (no usage reported, no price), never "nothing".
_UNKNOWN_WHEN_NULL = frozenset({"prompt_tokens", "completion_tokens", "cost_usd"})


def _table(rows: list[dict], cols: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(*cols, box=None)
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c)
            if c == "run_id" or (c == "id" and isinstance(v, str)):
                v = (v or "")[:8]
            elif isinstance(v, float):
                v = f"{v:.6f}" if c == "cost_usd" else f"{v:.1f}"
            cells.append(("unknown" if c in _UNKNOWN_WHEN_NULL else "") if v is None else str(v))
        table.add_row(*cells)
    Console().print(table)


def main() -> None:
    try:
        code = app(standalone_mode=False)
    except ArchonError as exc:
        if _state["debug"]:
            traceback.print_exc()
        _err(f"error: {exc}" if not isinstance(exc, SpecError) else str(exc))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _err("interrupted")
        sys.exit(130)
    except typer.Abort:
        sys.exit(130)
    except Exception as exc:  # click's usage errors (typer may vendor click) and anything unexpected
        if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()
            sys.exit(2)
        if _state["debug"]:
            traceback.print_exc()
        _err(f"error: unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)")
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


# Registers ``archon search`` on ``app`` (kept in its own module: it is the largest command).
from archon import cli_search as _cli_search  # noqa: E402,F401
# Registers ``archon serve`` on ``app`` (its server code is imported only when it runs).
from archon import cli_serve as _cli_serve  # noqa: E402,F401
