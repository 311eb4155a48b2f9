"""``archon run``: one pipeline on one query (``archon.run``)."""

from __future__ import annotations

__all__ = ["run"]

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from archon.cli import DbOpt, JsonOpt, app, err
from archon.exceptions import UserError


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
    from archon.runner import run as run_pipeline

    result = run_pipeline(pipeline, _read_input(input, input_file), db=db, use_cache=not no_cache)
    if json_out:
        typer.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
        return
    typer.echo(result.output)
    for note in sorted(set(result.notes)):
        err(f"note: {note}")
    cost = "unknown cost" if result.cost_usd is None else f"${result.cost_usd:.6f}"
    u = result.usage
    tokens = f"{u.prompt_tokens}+{u.completion_tokens} tokens" if u.known else "unknown tokens"
    err(f"run {result.run_id or '-'}: {result.calls} calls ({result.cached_calls} cached), "
        f"{tokens}, {cost}, {result.latency_ms / 1000:.2f} s")


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
