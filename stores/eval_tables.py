"""The eval tables: one row per evaluation (a pipeline on a benchmark with given settings) and one
per item result, so an interrupted ``archon eval`` resumes where it stopped."""

from __future__ import annotations

__all__ = ["EvalRow", "EvalResultRow"]

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .tables import Base, UTCDateTime


class EvalRow(Base):
    """An evaluation. ``id`` is a hash of what determines the results (pipeline, benchmark, prompt
    style, scorer), so the same command finds its earlier results and skips the finished items."""

    __tablename__ = "evals"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    pipeline: Mapped[str] = mapped_column(String)
    benchmark: Mapped[str] = mapped_column(String)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    trial: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class EvalResultRow(Base):
    """One item's result: scored ("ok") or failed (its run failed; ``error`` says why)."""

    __tablename__ = "eval_results"

    eval_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    item_id: Mapped[str] = mapped_column(String, primary_key=True)
    run_id: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))  # "ok" | "failed"
    score: Mapped[float | None] = mapped_column(Float)
    raw: Mapped[Any | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    output: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer, default=0)  # NULL: unknown
    completion_tokens: Mapped[int | None] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float | None] = mapped_column(Float)
    calls: Mapped[int] = mapped_column(Integer, default=0)
    cached_calls: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # What the run says of its answer beyond the score: abstained, picked as passing, samples drawn.
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
