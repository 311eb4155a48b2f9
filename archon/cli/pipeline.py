"""``archon validate``, ``archon schema`` and ``archon import-archon``: pipeline files, checked,
described and translated."""

from __future__ import annotations

__all__ = ["import_archon", "schema", "validate"]

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from archon.cli import app, err
from archon.exceptions import SpecError, UserError


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
                err(line)
            continue
        typer.echo(f"{path}: ok ({len(spec.nodes)} nodes, output '{spec.output}')")
    if bad:
        raise typer.Exit(2)


@app.command()
def schema() -> None:
    """Print the JSON Schema of the pipeline file (for editors)."""
    from archon.spec import pipeline_json_schema

    typer.echo(json.dumps(pipeline_json_schema(), indent=2))


@app.command("import-archon")
def import_archon(
    config: Annotated[Path, typer.Argument(help="An original Archon JSON config.", show_default=False)],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write the pipeline YAML here (default: stdout).")] = None,
    backend: Annotated[Optional[str], typer.Option("--backend", help="Use this backend for every model instead of mapping model_type.")] = None,
    search: Annotated[bool, typer.Option("--search", help="CONFIG is an ITAS search config: write an Archon search space (--out space.yaml or .py).")] = False,
) -> None:
    """Translate an original Archon config (layers of generators, fusers, ...) into a pipeline file."""
    if search:
        from archon.cli.search import import_search_config

        return import_search_config(config, out, backend)
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
        err(f"wrote {out} ({len(spec.nodes)} nodes)")
