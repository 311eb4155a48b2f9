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
    config: Annotated[Path, typer.Argument(help="An original Archon JSON config, or a folder of them (searched recursively).",
                                           show_default=False)],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="One config: write the pipeline YAML here (default: stdout).")] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out-dir", help="A folder: write one YAML per config here, "
                                                    "mirroring the folder's layout (default: only check them).")] = None,
    backend: Annotated[Optional[str], typer.Option("--backend", help="Use this backend for every model instead of mapping model_type.")] = None,
    search: Annotated[bool, typer.Option("--search", help="CONFIG is an ITAS search config: write an Archon search space (--out space.yaml or .py).")] = False,
) -> None:
    """Translate original Archon configs (layers of generators, fusers, ...) into pipeline files.

    A folder prints a summary (converted N, refused M with a reason each) and exits 2 when any file
    was refused (a file that is not valid JSON counts as refused)."""
    if search:
        from archon.cli.search import import_search_config

        return import_search_config(config, out, backend)
    from archon.import_archon import convert_file, convert_folder

    if config.is_dir():
        if out is not None:
            raise UserError(f"--out names one file, but {config} is a folder; use --out-dir DIR.")
        _import_folder(config, out_dir, backend, convert_folder)
        return
    if out_dir is not None:
        raise UserError(f"--out-dir is for a folder of configs; for the file {config} use --out FILE.")
    if not config.exists():
        raise UserError(f"{config}: no such file or folder.")
    done = convert_file(config, backend)
    if done.spec is None:
        raise SpecError(done.problems)
    for note in done.notes:
        err(f"note: {note}")
    text = done.spec.to_yaml()
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        err(f"wrote {out} ({len(done.spec.nodes)} nodes)")


def _import_folder(root: Path, out_dir: Path | None, backend: str | None, convert_folder) -> None:
    from collections import Counter

    results = convert_folder(root, backend)
    if not results:
        raise UserError(f"{root}: no .json file in this folder.")
    notes: Counter[str] = Counter()
    for r in results:
        if r.spec is not None and out_dir is not None:
            target = (out_dir / r.path.relative_to(root)).with_suffix(".yaml")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(r.spec.to_yaml(), encoding="utf-8")
        notes.update(n.split(": ", 1)[-1] for n in r.notes)
    refused = [r for r in results if r.spec is None]
    where = f" into {out_dir}" if out_dir is not None else ""
    typer.echo(f"converted {len(results) - len(refused)}{where}, refused {len(refused)} (of {len(results)} files in {root})")
    for r in refused:
        more = f" (+{len(r.problems) - 1} more)" if len(r.problems) > 1 else ""
        typer.echo(f"  refused {r.problems[0]}{more}")
    for note, n in sorted(notes.items(), key=lambda kv: (-kv[1], kv[0])):
        typer.echo(f"  note ({n} file{'s' if n > 1 else ''}): {note}")
    if refused:
        raise typer.Exit(2)
