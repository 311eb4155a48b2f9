"""The store: runs, model calls, their texts and the response cache, in one SQL database.

``get_store(None | url | path | Store)`` turns what the user gave into a ``Store`` once, at the
boundary. The default is a SQLite file in WAL mode, safe for several processes writing at once;
PostgreSQL (``postgresql+psycopg://``) is the path for many workers on many machines.

Every method is synchronous; the async runner calls them through ``asyncio.to_thread``. Database
errors are translated here: a URL that cannot be opened is a ``ConfigError`` (exit 2, the user's
fix), a failure while running is ``RunFailed`` (exit 1).
"""

from __future__ import annotations

__all__ = ["DB_URL_ENV", "DEFAULT_DB_URL", "STALE_AFTER", "CachedSample", "CallRecord", "Store", "get_store"]
# CachedSample and CallRecord live in archon.records (backends build them too); re-exported as the rows the store takes.

import contextlib
import hashlib
import json
import logging
import os
import re
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import fields
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (Connection, Table, URL, and_, bindparam, case, create_engine, event, func, insert, make_url, or_, select,
                        update)
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from archon.exceptions import ConfigError, MissingDependency, RunFailed, UserError
from archon.records import CachedSample, CallRecord

from . import evals
from .batch import Batch, RunFinish, RunStart
from .liveness import interrupted_because
from .schema import ensure_schema
from .tables import CacheRow, CallRow, RunRow, TextRow, utcnow

if TYPE_CHECKING:
    from sqlalchemy.dialects.postgresql import Insert as PostgresInsert
    from sqlalchemy.dialects.sqlite import Insert as SQLiteInsert

_log = logging.getLogger("archon.store")

DB_URL_ENV = "ARCHON_DB_URL"
DEFAULT_DB_URL = "sqlite:///./archon.db"
# How long a run from another host may go without a heartbeat before it counts as interrupted.
STALE_AFTER = timedelta(hours=1)

_runs: Table = RunRow.__table__  # type: ignore[assignment]
_calls: Table = CallRow.__table__  # type: ignore[assignment]
_texts: Table = TextRow.__table__  # type: ignore[assignment]
_cache: Table = CacheRow.__table__  # type: ignore[assignment]

_URL_HELP = "use sqlite:///path/to/archon.db or postgresql+psycopg://user:password@host:5432/dbname"
_BUSY_TIMEOUT_MS = 30_000


def get_store(target: None | str | os.PathLike[str] | Store = None) -> Store:
    """A ``Store`` from an instance, a SQLAlchemy URL, a SQLite file path, or None (the default)."""
    if isinstance(target, Store):
        return target
    if target is None:
        target = os.environ.get(DB_URL_ENV) or DEFAULT_DB_URL
    return Store(target)


class Store:
    """Runs, calls, texts and cache rows in one SQLite or PostgreSQL database."""

    def __init__(self, url: str | os.PathLike[str] | URL):
        self.url: URL = url if isinstance(url, URL) else _parse_url(url)
        # str(URL) masks the password; keep it that way in every message.
        self._shown = self.url.render_as_string(hide_password=True)
        self.dialect = self.url.get_backend_name()
        # INSERT ... ON CONFLICT is spelled by each dialect's own insert().
        self._upsert: Callable[[Table], SQLiteInsert | PostgresInsert]
        if self.dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert
            self._upsert = sqlite_insert
        elif self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as postgres_insert
            self._upsert = postgres_insert
        else:
            raise ConfigError(f"database URL {self._shown}: the store supports SQLite and PostgreSQL; {_URL_HELP}")
        memory = self.dialect == "sqlite" and self.url.database in (None, "", ":memory:")
        # One shared connection holds an in-memory database, so its users must take turns.
        self._lock: Any = threading.Lock() if memory else contextlib.nullcontext()
        self.engine = self._create_engine(memory)
        # Reads in SQLite take a plain deferred BEGIN; writes take BEGIN IMMEDIATE (see _sqlite_hooks).
        self._reader = self.engine.execution_options(archon_read=True)
        self._create_tables()
        # SQLite files get a fast read path for cache lookups (see _cache_get_sqlite).
        self._raw_reads = threading.local() if self.dialect == "sqlite" and not memory else None
        try:
            self.mark_interrupted()
        except RunFailed as exc:
            # Bookkeeping, not the caller's job: a read-only or busy database still opens.
            _log.warning("could not mark interrupted runs: %s", exc)

    def start_run(self, pipeline: str, input_text: str, trial: int | None = None, run_id: str | None = None) -> str:
        run_id = run_id or uuid.uuid4().hex
        self.write_batch(Batch(starts=[RunStart(run_id, pipeline, input_text, trial)]))
        return run_id

    def mark_interrupted(self, stale_after: timedelta = STALE_AFTER) -> list[str]:
        """Mark the runs left 'running' by a process that died as 'interrupted'; returns their ids.

        On this host a run is interrupted when its process is gone; a run from another host (or
        from before runs recorded their host) when its heartbeat is older than ``stale_after``
        (see ``liveness.interrupted_because``). Called once when a store opens. A run marked wrongly
        (a slow one elsewhere) is set right when it finishes: finishing overwrites the status.
        """
        cols = (_runs.c.id, _runs.c.host, _runs.c.pid, _runs.c.started_at, _runs.c.heartbeat_at)
        with self._tx("looking for interrupted runs", write=False) as conn:
            running = conn.execute(select(*cols).where(_runs.c.status == "running")).all()
        if not running:
            return []
        cutoff = utcnow() - stale_after
        gone = {r.id: why for r in running if (why := interrupted_because(r.host, r.pid, r.started_at, r.heartbeat_at, cutoff))}
        marked = []
        if gone:
            with self._tx("marking interrupted runs") as conn:
                for run_id, why in gone.items():
                    # Only while still 'running': the run may have finished since it was read.
                    if conn.execute(update(_runs).where(_runs.c.id == run_id, _runs.c.status == "running")
                                    .values(status="interrupted", error=why)).rowcount:
                        marked.append(run_id)
        return marked

    def heartbeat(self, run_ids: Sequence[str]) -> None:
        """Note that these runs are alive now, so other hosts do not take them for interrupted."""
        ids = [r for r in run_ids if r]
        if not ids:
            return
        with self._tx("noting live runs") as conn:
            for i in range(0, len(ids), 500):  # stay under every database's bound-parameter limit
                conn.execute(update(_runs).where(_runs.c.id.in_(ids[i:i + 500]), _runs.c.status == "running")
                             .values(heartbeat_at=utcnow()))

    def finish_run(self, run_id: str, status: str, output: str | None = None, error: str | None = None) -> None:
        self.write_batch(Batch(finishes=[RunFinish(run_id, status, output, error)]))

    def write(self, **rows: Sequence[Any]) -> None:
        """``write_batch`` from keyword lists: ``write(starts=[...], calls=[...])``."""
        self.write_batch(Batch(**rows))

    def write_batch(self, batch: Batch) -> None:
        """Write every row of ``batch`` in ONE transaction: runs started, cache entries, calls, runs
        finished, evaluations started and their results, in that order.

        The recorder (``stores.recorder``) groups whatever has queued up into one batch, so a burst
        of short runs costs one commit rather than several each. Rewriting cache entries, texts and
        evaluations keeps the first; rewriting an item's result replaces it.
        """
        for f in batch.finishes:
            if f[1] not in ("ok", "error"):
                raise ValueError(f"finish_run status must be 'ok' or 'error', not {f[1]!r}")
        if not batch:
            return
        with self._tx("recording the run") as conn:
            now = utcnow()
            # A run that starts and finishes within one batch (most do: a batch spans ~0.25 s) is
            # inserted finished; the others are updated in one executemany, not one statement each.
            finishing = {f[0]: f for f in batch.finishes}
            if batch.starts:
                rows = []
                for rid, pipe, inp, trial in batch.starts:
                    done = finishing.pop(rid, None)
                    rows.append({"id": rid, "pipeline": pipe, "input": _clean(inp), "trial": trial, "started_at": now,
                                 "status": done[1] if done else "running", "output": _clean(done[2]) if done else None,
                                 "error": _clean(done[3]) if done else None, "finished_at": now if done else None})
                conn.execute(insert(_runs), rows)
            self._insert_cache(conn, batch.cache)
            self._insert_calls(conn, batch.calls)
            if finishing:
                self._finish_runs(conn, list(finishing.values()), now)
            evals.insert_evals(conn, self._upsert, batch.evals)
            evals.insert_eval_results(conn, self._upsert, batch.eval_results)

    def _finish_runs(self, conn: Connection, finishes: list[Any], now: Any) -> None:
        # Bound names differ from the columns': SQLAlchemy reserves a column's own name in SET.
        values = [{"rid": rid, "new_status": status, "new_output": _clean(output), "new_error": _clean(error), "at": now}
                  for rid, status, output, error in finishes]
        stmt = update(_runs).where(_runs.c.id == bindparam("rid")).values(
            status=bindparam("new_status"), output=bindparam("new_output"), error=bindparam("new_error"), finished_at=bindparam("at"))
        if conn.execute(stmt, values).rowcount != len(values):  # summed over the rows by the driver
            ids = {r[0] for r in conn.execute(select(_runs.c.id).where(_runs.c.id.in_([v["rid"] for v in values])))}
            raise _NoSuchRun(next(v["rid"] for v in values if v["rid"] not in ids))

    def start_eval(self, eval_id: str, pipeline: str, benchmark: str, settings: dict[str, Any],
                   trial: int | None = None) -> None:
        """Create an evaluation's row unless an earlier run of the same command did."""
        self.write_batch(Batch(evals=[evals.EvalStart(eval_id, pipeline, benchmark, settings, trial)]))

    def eval_results(self, eval_id: str) -> list[dict[str, Any]]:
        """Every recorded item result of an evaluation, in order of recording."""
        with self._tx("reading evaluation results", write=False) as conn:
            return [dict(r) for r in conn.execute(evals.results_query(eval_id)).mappings().all()]

    def past_scores(self, pipeline: str, limit: int = 5000) -> list[tuple[str, float]]:
        """(query text, score) of a pipeline's scored eval items, newest first: training data for
        routing classifiers ("how likely is this pipeline to get such a query right?")."""
        with self._tx("reading past evaluation results", write=False) as conn:
            return [(r[0], float(r[1])) for r in conn.execute(evals.past_scores_query(pipeline, limit)).all()]

    def runs(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Runs newest first, with totals summed in SQL over each run's calls."""
        recent = select(_runs).order_by(_runs.c.started_at.desc(), _runs.c.id.desc())
        if limit is not None:
            recent = recent.limit(max(limit, 0))
        r = recent.subquery()
        kept = [r.c.id, r.c.pipeline, r.c.status, r.c.trial, r.c.started_at, r.c.finished_at, r.c.error, r.c.output]
        query = (
            select(
                *kept,
                func.count(_calls.c.id).label("calls"),
                _known_sum(_calls.c.prompt_tokens).label("prompt_tokens"),
                _known_sum(_calls.c.completion_tokens).label("completion_tokens"),
                # SUM skips NULLs and is NULL when all are: unknown prices never hide known costs. A call
                # with unknown usage and no cost makes the total unknown: its cost was never zero.
                case((func.sum(_UNPRICEABLE) > 0, None), else_=func.sum(_calls.c.cost_usd)).label("cost_usd"),
            )
            .select_from(r.outerjoin(_calls, _calls.c.run_id == r.c.id))
            .group_by(*kept)
            .order_by(r.c.started_at.desc(), r.c.id.desc())
        )
        with self._tx("listing runs", write=False) as conn:
            rows = conn.execute(query).mappings().all()
        return [_run_dict(row) for row in rows]

    def spend(self, run_ids: Sequence[str]) -> dict[str, float]:
        """What the calls of these runs cost (``cost_usd``, paid) and saved (``saved_usd``, replayed from the cache).

        Their sum is what the runs would cost with no cache: a pipeline's own price, not this run's luck.
        ``unknown_usage_calls`` counts calls (paid or replayed) whose usage the server never reported: their
        cost is in neither sum.
        """
        cost = saved = 0.0
        unknown = 0
        ids = [r for r in run_ids if r]
        with self._tx("summing run costs", write=False) as conn:
            for i in range(0, len(ids), 500):  # stay under every database's bound-parameter limit
                row = conn.execute(
                    select(func.coalesce(func.sum(_calls.c.cost_usd), 0.0), func.coalesce(func.sum(_calls.c.saved_usd), 0.0),
                           func.coalesce(func.sum(_UNKNOWN_USAGE), 0))
                    .where(_calls.c.run_id.in_(ids[i:i + 500]))
                ).one()
                cost += float(row[0])
                saved += float(row[1])
                unknown += int(row[2])
        return {"cost_usd": cost, "saved_usd": saved, "unknown_usage_calls": unknown}

    def record_calls(self, rows: Sequence[CallRecord]) -> None:
        """Insert a batch of calls in one transaction; their texts are stored once per distinct text."""
        self.write_batch(Batch(calls=rows))

    def _insert_calls(self, conn: Connection, rows: Sequence[CallRecord]) -> None:
        if not rows:
            return
        texts: dict[str, str] = {}
        values = []
        for rec in rows:
            prompt = _clean(rec.prompt_text) or ""
            # JSON escapes control characters, so responses round-trip exactly on every database.
            responses = _clean(json.dumps(list(rec.response_texts), ensure_ascii=False)) or "[]"
            prompt_hash, response_hash = _sha256(prompt), _sha256(responses)
            texts[prompt_hash] = prompt
            texts[response_hash] = responses
            values.append({
                "run_id": rec.run_id, "node_id": rec.node_id, "backend": rec.backend, "model": rec.model,
                "n": rec.n, "prompt_tokens": rec.prompt_tokens, "completion_tokens": rec.completion_tokens,
                "cost_usd": rec.cost_usd, "saved_usd": rec.saved_usd, "latency_ms": rec.latency_ms,
                "status": rec.status, "error": _clean(rec.error), "attempts": rec.attempts,
                "cached": bool(rec.cached), "trial": rec.trial, "created_at": rec.created_at,
                "prompt_hash": prompt_hash, "response_hash": response_hash,
            })
        # Sorted keys: concurrent PostgreSQL writers then lock shared texts in the same order (no deadlock).
        text_rows = [{"hash": h, "body": texts[h]} for h in sorted(texts)]
        conn.execute(self._upsert(_texts).on_conflict_do_nothing(), text_rows)
        conn.execute(insert(_calls), values)

    def calls(self, run_id: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Calls oldest first (by id); with ``limit``, the last ``limit`` of them."""
        cols = [_calls.c[name] for name in _CALL_FIELDS]
        query = select(*cols)
        if run_id is not None:
            query = query.where(_calls.c.run_id == run_id)
        if limit is not None:
            query = query.order_by(_calls.c.id.desc()).limit(max(limit, 0))
        else:
            query = query.order_by(_calls.c.id)
        with self._tx("listing calls", write=False) as conn:
            rows = conn.execute(query).mappings().all()
        if limit is not None:
            rows = list(reversed(rows))
        return [_call_dict(row) for row in rows]

    def call_texts(self, call_id: int) -> tuple[str, list[str]]:
        """The prompt and the responses of one call."""
        with self._tx("reading a call's texts", write=False) as conn:
            row = conn.execute(
                select(_calls.c.prompt_hash, _calls.c.response_hash).where(_calls.c.id == call_id)
            ).first()
            if row is not None:
                hashes = [h for h in row if h is not None]
                bodies = dict(conn.execute(select(_texts.c.hash, _texts.c.body).where(_texts.c.hash.in_(hashes))).all())
        if row is None:
            raise UserError(f"no call with id {call_id} in {self._shown}; list them with 'archon calls'")
        return bodies.get(row.prompt_hash, ""), json.loads(bodies.get(row.response_hash) or "[]")

    def cache_get(self, key: str, samples: Sequence[int]) -> dict[int, CachedSample]:
        """The cached samples among ``samples`` of request ``key``; missing ones are absent."""
        wanted = sorted(set(samples))
        if not wanted:
            return {}
        if self._raw_reads is not None:
            return self._cache_get_sqlite(self._raw_reads, key, set(wanted))
        query = select(_cache).where(_cache.c.key == key, _cache.c.sample.in_(wanted))
        with self._tx("reading the response cache", write=False) as conn:
            rows = conn.execute(query).mappings().all()
        return {row["sample"]: CachedSample(**{f: row[f] for f in _SAMPLE_FIELDS}) for row in rows}

    def _cache_get_sqlite(self, raw_reads: threading.local, key: str, wanted: set[int]) -> dict[int, CachedSample]:
        # The hot path of every model call: a plain sqlite3 query on a per-thread connection costs
        # ~20 us where SQLAlchemy's Core round trip (pool, events, compiled statement) costs ~200 us.
        conn = getattr(raw_reads, "conn", None)
        try:
            if conn is None:
                conn = raw_reads.conn = self.engine.raw_connection()
            rows = conn.driver_connection.execute(_SQLITE_CACHE_GET, (key,)).fetchall()
        except sqlite3.Error as exc:
            raise RunFailed(f"store {self._shown}: reading the response cache failed: {exc}") from exc
        out = {}
        for row in rows:
            if row[1] in wanted:
                lp = json.loads(row[5]) if row[5] is not None else None
                out[row[1]] = CachedSample(key=row[0], sample=row[1], backend=row[2], model=row[3], text=row[4], logprobs=lp,
                                           prompt_tokens=row[6], completion_tokens=row[7], cost_usd=row[8])
        return out

    def cache_put(self, entries: Sequence[CachedSample]) -> None:
        """Store samples; a sample already cached (by another worker, say) is kept as it is."""
        self.write_batch(Batch(cache=entries))

    def _insert_cache(self, conn: Connection, entries: Sequence[CachedSample]) -> None:
        unique = {(e.key, e.sample): e for e in reversed(list(entries))}  # first entry wins
        if not unique:
            return
        now = utcnow()
        rows = [{**{f: getattr(e, f) for f in _SAMPLE_FIELDS}, "text": _clean(e.text), "created_at": now}
                for _, e in sorted(unique.items())]
        conn.execute(self._upsert(_cache).on_conflict_do_nothing(), rows)

    def close(self) -> None:
        raw_reads = self._raw_reads
        if raw_reads is not None and (conn := getattr(raw_reads, "conn", None)) is not None:
            conn.close()
            raw_reads.conn = None
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self._shown!r})"

    def _create_engine(self, memory: bool):
        kw: dict[str, Any] = {}
        if self.dialect == "sqlite":
            kw["connect_args"] = {"check_same_thread": False, "timeout": _BUSY_TIMEOUT_MS / 1000}
            if memory:
                kw["poolclass"] = StaticPool
            elif self.url.database:
                try:
                    Path(self.url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise ConfigError(f"database {self._shown}: cannot create its directory: {exc}") from exc
        else:
            kw["pool_pre_ping"] = True  # a worker outlives server restarts and idle-connection reaping
            if "connect_timeout" not in self.url.query:
                kw["connect_args"] = {"connect_timeout": 10}
        try:
            engine = create_engine(self.url, **kw)
        except ModuleNotFoundError as exc:
            raise MissingDependency(f"the database URL {self._shown}", "postgres") from exc
        except ArgumentError as exc:
            raise ConfigError(f"database URL {self._shown}: {exc}; {_URL_HELP}") from exc
        if self.dialect == "sqlite":
            _sqlite_hooks(engine, wal=not memory)
        return engine

    def _create_tables(self) -> None:
        # Creates a new database's tables, or upgrades an older one in place (stores/schema.py); a
        # lock there makes workers opening a new PostgreSQL database together take turns.
        try:
            ensure_schema(self.engine, self._reader, self._shown)
        except OperationalError as exc:
            raise ConfigError(
                f"cannot open the database {self._shown}: {_reason(exc)}; check that the server is "
                f"running and the URL (--db or {DB_URL_ENV}) is right, or {_URL_HELP}"
            ) from exc
        except SQLAlchemyError as exc:
            raise ConfigError(f"cannot open the database {self._shown}: {_reason(exc)}") from exc

    @contextlib.contextmanager
    def _tx(self, action: str, *, write: bool = True) -> Iterator[Connection]:
        with self._lock:
            try:
                with (self.engine if write else self._reader).begin() as conn:
                    yield conn
            except _NoSuchRun as exc:
                raise RunFailed(f"store {self._shown}: no run '{exc.args[0]}' to finish (was it started in another database?)") from None
            except SQLAlchemyError as exc:
                hint = ""
                if "database is locked" in str(exc):
                    hint = (f"; another process held the SQLite write lock for over {_BUSY_TIMEOUT_MS // 1000} s:"
                            " for many concurrent workers use PostgreSQL (postgresql+psycopg://...)")
                failed = RunFailed(f"store {self._shown}: {action} failed: {_reason(exc)}{hint}")
                # Not chained: SQLAlchemy's message carries the SQL and its parameters (prompts,
                # answers), which must never reach a traceback. Callers classify by ``db_error``.
                failed.db_error = exc
                raise failed from None


class _NoSuchRun(Exception):
    pass


def _set_wal(cur: sqlite3.Cursor) -> None:
    """Switch to WAL. Switching needs the database to itself, and SQLite answers "database is locked"
    at once, without its busy timeout, while another connection holds it: workers opening a new
    database together meet that (measured: 7 of 900 opens, 6 threads at a time). Waited out here."""
    import tenacity

    for attempt in tenacity.Retrying(
        retry=tenacity.retry_if_exception(lambda exc: isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)),
        wait=tenacity.wait_random_exponential(multiplier=0.005, max=0.25),
        stop=tenacity.stop_after_delay(_BUSY_TIMEOUT_MS / 1000), reraise=True,
    ):
        with attempt:
            cur.execute("PRAGMA journal_mode=WAL")


def _sqlite_hooks(engine, *, wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        # Take BEGIN away from the sqlite3 module so _on_begin decides how each transaction starts.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
            if wal:
                # WAL lets readers run beside the one writer; NORMAL is durable enough under WAL.
                _set_wal(cur)
            cur.execute("PRAGMA synchronous=NORMAL")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A deferred transaction that turns into a write fails at once with "database is locked"
        # when another process writes; BEGIN IMMEDIATE takes the lock up front, so busy_timeout waits.
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get("archon_read") else "BEGIN IMMEDIATE")


_SECRET_IN_URL = re.compile(r"(://[^:/@]*:)[^@/]*@")


def _parse_url(target: str | os.PathLike[str]) -> URL:
    raw = os.fspath(target)
    if not raw.strip():
        raise ConfigError(f"the database URL is empty; {_URL_HELP}, or unset {DB_URL_ENV}")
    if "://" not in raw:
        # A bare path is a SQLite file, but one whose first part holds ':' ("::::", "sqlite:x.db",
        # "postgres:host") is a mistyped URL far more often than a file name: refuse to create it.
        first = raw.split("/", 1)[0]
        if (raw != ":memory:" and ":" in first) or not raw.isprintable():
            shown = _SECRET_IN_URL.sub(r"\1***@", raw).encode("unicode_escape").decode()
            raise ConfigError(f"'{shown}' is neither a database URL (scheme://...) nor a plain file path; {_URL_HELP}")
        return URL.create("sqlite", database=os.path.expanduser(raw))
    try:
        url = make_url(raw)
    except (ArgumentError, ValueError) as exc:  # ValueError: a bad port, e.g. postgresql://u@[::1
        shown = _SECRET_IN_URL.sub(r"\1***@", raw)
        raise ConfigError(f"'{shown}' is not a database URL; {_URL_HELP}") from exc
    # psycopg 3 is the driver Archon installs; the bare scheme would look for psycopg2.
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url


# 1 for a call whose tokens the server did not report; _UNPRICEABLE if it also has no cost (a replay costs 0).
_UNKNOWN_USAGE = case((or_(_calls.c.prompt_tokens.is_(None), _calls.c.completion_tokens.is_(None)), 1), else_=0)
_UNPRICEABLE = case((and_(_UNKNOWN_USAGE == 1, _calls.c.cost_usd.is_(None)), 1), else_=0)


def _known_sum(column: Any) -> Any:
    """SUM of a token column, NULL (unknown) when any call's count is unknown; 0 over no calls."""
    return case((func.count(_calls.c.id) == func.count(column), func.coalesce(func.sum(column), 0)), else_=None)


_SAMPLE_FIELDS = tuple(f.name for f in fields(CachedSample))
_SQLITE_CACHE_GET = (
    "SELECT key, sample, backend, model, text, logprobs, prompt_tokens, completion_tokens, cost_usd FROM cache WHERE key = ?"
)
_CALL_FIELDS = ("id", "run_id", "node_id", "backend", "model", "n", "prompt_tokens", "completion_tokens",
                "cost_usd", "saved_usd", "latency_ms", "status", "error", "attempts", "cached", "trial",
                "created_at")


def _call_dict(row: Any) -> dict[str, Any]:
    out = {name: row[name] for name in _CALL_FIELDS}
    out["cached"] = bool(out["cached"])
    out["created_at"] = _iso(out["created_at"])
    return out


def _run_dict(row: Any) -> dict[str, Any]:
    calls = int(row["calls"])
    cost = row["cost_usd"]
    return {
        "id": row["id"], "pipeline": row["pipeline"], "status": row["status"], "calls": calls,
        "prompt_tokens": _int(row["prompt_tokens"]), "completion_tokens": _int(row["completion_tokens"]),
        # A run without calls cost nothing; NULL is kept for "some calls, no known price".
        "cost_usd": float(cost) if cost is not None else (0.0 if calls == 0 else None),
        "started_at": _iso(row["started_at"]), "finished_at": _iso(row["finished_at"]),
        "trial": row["trial"], "error": row["error"], "output": row["output"],
    }


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_SURROGATE = re.compile("[\ud800-\udfff]")


def _clean(text: str | None) -> str | None:
    # PostgreSQL text cannot hold NUL; replacing it everywhere keeps both databases identical.
    if text is None:
        return text
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (JSON's "\ud800" decodes to one): not storable text
        text = _SURROGATE.sub("\ufffd", text)
    return text


def _reason(exc: SQLAlchemyError) -> str:
    """The driver's own message, first line only: SQLAlchemy appends the SQL and a docs link."""
    orig = getattr(exc, "orig", None)
    text = str(orig) if orig is not None else str(exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__
