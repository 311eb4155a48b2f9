"""Store operations for evaluations (kept beside store.py, which holds runs, calls and the cache)."""

from __future__ import annotations

__all__ = ["EvalResult", "eval_results", "insert_eval_results", "past_scores", "start_eval"]

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, insert, select

from .eval_tables import EvalResultRow, EvalRow
from .tables import utcnow

if TYPE_CHECKING:
    from .store import Store

_evals = EvalRow.__table__
_results = EvalResultRow.__table__


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


def start_eval(store: Store, eval_id: str, pipeline: str, benchmark: str, settings: dict[str, Any], trial: int | None = None) -> None:
    """Create the evaluation's row unless an earlier run of the same command did."""
    row = {"id": eval_id, "pipeline": pipeline, "benchmark": benchmark, "settings": settings, "trial": trial, "created_at": utcnow()}
    with store._tx("starting an evaluation") as conn:
        conn.execute(store._upsert(_evals).on_conflict_do_nothing(), [row])


def eval_results(store: Store, eval_id: str) -> list[dict[str, Any]]:
    """Every recorded item result of an evaluation, in item order of recording."""
    query = select(_results).where(_results.c.eval_id == eval_id).order_by(_results.c.created_at)
    with store._tx("reading evaluation results", write=False) as conn:
        return [dict(r) for r in conn.execute(query).mappings().all()]


def insert_eval_results(store: Store, conn: Connection, rows: Sequence[EvalResult]) -> None:
    """Insert results; a later result for the same item (a failed item retried) replaces the earlier."""
    if not rows:
        return
    values = [asdict(r) for r in rows]
    for v in values:
        v["raw"] = _jsonable(v["raw"])
    stmt = store._upsert(_results)
    cols = {c: stmt.excluded[c] for c in values[0] if c not in ("eval_id", "item_id")}
    conn.execute(stmt.on_conflict_do_update(index_elements=["eval_id", "item_id"], set_=cols), values)


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)


def past_scores(store: Store, pipeline: str, limit: int = 5000) -> list[tuple[str, float]]:
    """(query text, score) of a pipeline's scored eval items, newest first: training data for
    routing classifiers ("how likely is this pipeline to get such a query right?")."""
    from .tables import RunRow

    runs = RunRow.__table__
    query = (
        select(runs.c.input, _results.c.score)
        .join(_results, _results.c.run_id == runs.c.id)
        .where(runs.c.pipeline == pipeline, _results.c.status == "ok", _results.c.score.is_not(None))
        .order_by(_results.c.created_at.desc())
        .limit(limit)
    )
    with store._tx("reading past evaluation results", write=False) as conn:
        return [(r[0], float(r[1])) for r in conn.execute(query).all()]
