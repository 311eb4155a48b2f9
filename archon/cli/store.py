"""``archon calls`` and ``archon runs``: what the store recorded, as a table or JSON."""

from __future__ import annotations

__all__ = ["calls", "runs"]

from typing import Annotated, Optional

import typer

from archon.cli import DbOpt, JsonOpt, app, echo_json

# Columns whose NULL means "not known" (no usage reported, no price), never "nothing".
_UNKNOWN_WHEN_NULL = frozenset({"prompt_tokens", "completion_tokens", "cost_usd"})


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
        echo_json(rows)
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
        echo_json(rows)
        return
    _table(rows, ["id", "pipeline", "status", "calls", "prompt_tokens", "completion_tokens", "cost_usd", "started_at"])


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
