"""Evaluations in the store: the result record, and the SQL the store runs for evaluations.

``Store`` (store.py) owns transactions and offers the public methods (``write_batch`` with
``evals``/``eval_results``, ``eval_results``, ``past_scores``); this module only says what to
insert and select, on a connection it is given, so it never needs the store's internals.
"""

from __future__ import annotations

__all__ = ["EvalResult", "EvalStart"]

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, Select, select

from .eval_tables import EvalResultRow, EvalRow
from .tables import RunRow, utcnow

_evals = EvalRow.__table__
_results = EvalResultRow.__table__
_runs = RunRow.__table__


class EvalStart(NamedTuple):
    """An evaluation's row; writing it again (a resumed evaluation) keeps the first."""

    eval_id: str
    pipeline: str
    benchmark: str
    settings: dict[str, Any]
    trial: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EvalResult:
    eval_id: str
    item_id: str
    status: str  # "ok" | "failed"
    score: float | None = None
    raw: Any = None
    output: str | None = None
    error: str | None = None
    run_id: str | None = None
    latency_ms: float = 0.0
    prompt_tokens: int | None = 0  # None: unknown (a server did not report usage)
    completion_tokens: int | None = 0
    cost_usd: float | None = None
    calls: int = 0
    cached_calls: int = 0
    created_at: datetime = field(default_factory=utcnow)
    detail: dict[str, Any] | None = None  # {"abstained": True}, {"selected": "passed"}, {"samples": n}


def insert_evals(conn: Connection, upsert: Callable[..., Any], rows: Sequence[EvalStart]) -> None:
    """Create evaluations' rows; one an earlier run of the same command created is kept as it is."""
    if not rows:
        return
    now = utcnow()
    values = [{"id": e.eval_id, "pipeline": e.pipeline, "benchmark": e.benchmark, "settings": e.settings,
               "trial": e.trial, "created_at": now} for e in rows]
    conn.execute(upsert(_evals).on_conflict_do_nothing(), values)


def insert_eval_results(conn: Connection, upsert: Callable[..., Any], rows: Sequence[EvalResult]) -> None:
    """Insert results; a later result for the same item (a failed item retried) replaces the earlier."""
    if not rows:
        return
    values = [asdict(r) for r in rows]
    for v in values:
        v["raw"] = _jsonable(v["raw"])
        v["detail"] = _jsonable(v["detail"])
    stmt = upsert(_results)
    cols = {c: stmt.excluded[c] for c in values[0] if c not in ("eval_id", "item_id")}
    conn.execute(stmt.on_conflict_do_update(index_elements=["eval_id", "item_id"], set_=cols), values)


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)


def results_query(eval_id: str) -> Select:
    """Every recorded item result of an evaluation, in order of recording."""
    return select(_results).where(_results.c.eval_id == eval_id).order_by(_results.c.created_at)


def past_scores_query(pipeline: str, limit: int) -> Select:
    """(query text, score) of a pipeline's scored eval items, newest first."""
    return (
        select(_runs.c.input, _results.c.score)
        .join(_results, _results.c.run_id == _runs.c.id)
        .where(_runs.c.pipeline == pipeline, _results.c.status == "ok", _results.c.score.is_not(None))
        .order_by(_results.c.created_at.desc())
        .limit(limit)
    )
