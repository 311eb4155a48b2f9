"""The store's tables (SQLAlchemy 2.0 declarative).

Four tables so far: ``runs`` (one row per pipeline run), ``calls`` (one row per model call),
``texts`` (prompts and responses, deduplicated by sha256) and ``cache`` (one row per sample of a
cached request). Later tables (eval items and results, ...) subclass ``Base`` so that
``Base.metadata.create_all`` creates them too; the module defining them must be imported before the
store is opened.

Changing a table needs a new revision in stores/migrations/versions/ (see stores/schema.py).

Optuna keeps its own tables (``studies``, ``trials``, ``trial_*``, ``study_*``, ``version_info``,
``alembic_version``) in the same database when a search uses it: never reuse those names.
"""

from __future__ import annotations

__all__ = ["Base", "CacheRow", "CallRow", "RunRow", "TextRow", "UTCDateTime", "utcnow"]

import os
from datetime import datetime, timezone

from sqlalchemy import JSON, Boolean, DateTime, Float, Integer, MetaData, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from archon.records import utcnow  # one clock for rows built anywhere (re-exported for the store's modules)

from .liveness import host_id


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every database.

    SQLite has no time zones and PostgreSQL answers in the session's zone; both are normalised here
    so callers always get aware UTC datetimes back and never compare naive with aware ones.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        # A naive datetime is taken to be UTC already: the store only ever writes UTC.
        value = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
        if dialect.name == "sqlite":
            # Stored as naive UTC text, so string order is time order (``ORDER BY started_at``).
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


# Explicit constraint names keep migrations (and two apps sharing one PostgreSQL schema) predictable.
_NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=_NAMING)


class RunRow(Base):
    """One run of a pipeline on one input."""

    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # uuid4().hex
    pipeline: Mapped[str] = mapped_column(String)
    status: Mapped[str] = mapped_column(String(16), index=True)  # "running" | "ok" | "error" | "interrupted"
    input: Mapped[str] = mapped_column(Text)
    output: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    trial: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Filled in at insert (every writer gets them without passing them), so that a later open can tell
    # a run still in progress from one whose process died: see Store.mark_interrupted.
    host: Mapped[str | None] = mapped_column(String, default=host_id)
    pid: Mapped[int | None] = mapped_column(Integer, default=lambda: os.getpid())
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow)


class CallRow(Base):
    """One model call (one request for ``n`` samples), cached or not, successful or not.

    ``run_id`` is deliberately not a foreign key: calls also happen outside runs (a scorer, a
    one-off ``ctx.complete``), and writers in other processes must never fail on ordering.
    """

    __tablename__ = "calls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str | None] = mapped_column(String(32), index=True)
    node_id: Mapped[str | None] = mapped_column(String)
    backend: Mapped[str] = mapped_column(String)
    model: Mapped[str] = mapped_column(String)
    n: Mapped[int] = mapped_column(Integer, default=1)
    # NULL when the server did not report them: unknown, never counted as 0.
    prompt_tokens: Mapped[int | None] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int | None] = mapped_column(Integer, default=0)
    # NULL when the price is unknown: a missing price never fails a run.
    cost_usd: Mapped[float | None] = mapped_column(Float)
    # For a cached call, what it would have cost (its own cost_usd is then 0).
    saved_usd: Mapped[float | None] = mapped_column(Float)
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    status: Mapped[str] = mapped_column(String(16))  # "ok" | "error"
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    cached: Mapped[bool] = mapped_column(Boolean, default=False)
    trial: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    prompt_hash: Mapped[str | None] = mapped_column(String(64))  # -> texts.hash
    response_hash: Mapped[str | None] = mapped_column(String(64))  # -> texts.hash (a JSON list)


class TextRow(Base):
    """A prompt or a response list, stored once however many calls share it (sampling repeats prompts)."""

    __tablename__ = "texts"

    hash: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex of body
    body: Mapped[str] = mapped_column(Text)


class CacheRow(Base):
    """One sample of a cached request: sample k of a request replays on its own."""

    __tablename__ = "cache"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # backends.base.request_key
    sample: Mapped[int] = mapped_column(Integer, primary_key=True)
    backend: Mapped[str] = mapped_column(String)
    model: Mapped[str] = mapped_column(String)
    text: Mapped[str] = mapped_column(Text)
    logprobs: Mapped[list[float] | None] = mapped_column(JSON(none_as_null=True))
    prompt_tokens: Mapped[int | None] = mapped_column(Integer, default=0)  # NULL: unknown
    completion_tokens: Mapped[int | None] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
