"""Throwaway databases for tests: the same store tests run on SQLite and on a real PostgreSQL.

    with temporary_database("sqlite") as url: ...        # a file in a temporary directory
    with temporary_database("postgresql") as url: ...    # a fresh database, dropped afterwards

PostgreSQL databases are created through the admin URL in ``ARCHON_TEST_POSTGRES_URL`` (default: the
local server, user ``postgres``, trust auth). ``postgres_unavailable()`` tells a test suite why to skip.
"""

from __future__ import annotations

__all__ = ["DB_KINDS", "POSTGRES_ADMIN_ENV", "postgres_admin_url", "postgres_unavailable", "temporary_database"]

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from archon.exceptions import ConfigError

DB_KINDS = ("sqlite", "postgresql")
POSTGRES_ADMIN_ENV = "ARCHON_TEST_POSTGRES_URL"
_DEFAULT_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def postgres_admin_url() -> str:
    """A URL to a database on the test server from which others can be created and dropped."""
    return os.environ.get(POSTGRES_ADMIN_ENV) or _DEFAULT_ADMIN


def postgres_unavailable() -> str | None:
    """Why PostgreSQL tests cannot run here (a skip reason), or None when the server answers."""
    from sqlalchemy import create_engine, make_url
    from sqlalchemy.exc import SQLAlchemyError

    url = make_url(postgres_admin_url())
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
    except ModuleNotFoundError:
        return "psycopg is not installed: pip install 'archon-llm[postgres]'"
    try:
        with engine.connect():
            return None
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        return (
            f"PostgreSQL at {url.render_as_string(hide_password=True)} is not reachable ({reason}); "
            f"start it or set {POSTGRES_ADMIN_ENV}"
        )
    finally:
        engine.dispose()


@contextmanager
def temporary_database(kind: Literal["sqlite", "postgresql"]) -> Iterator[str]:
    """Yield the URL of an empty database of ``kind`` that is deleted when the block ends."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="archon-test-") as tmp:
            yield f"sqlite:///{Path(tmp) / 'archon.db'}"
    elif kind == "postgresql":
        with _postgres_database() as url:
            yield url
    else:
        raise ValueError(f"unknown database kind {kind!r}; choose one of {', '.join(DB_KINDS)}")


@contextmanager
def _postgres_database() -> Iterator[str]:
    from sqlalchemy import create_engine, make_url
    from sqlalchemy.exc import SQLAlchemyError

    admin_url = make_url(postgres_admin_url())
    name = f"archon_test_{uuid.uuid4().hex[:12]}"
    # CREATE/DROP DATABASE cannot run inside a transaction.
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except SQLAlchemyError as exc:
        admin.dispose()
        shown = admin_url.render_as_string(hide_password=True)
        raise ConfigError(f"cannot create a test database through {shown}: {exc}; set {POSTGRES_ADMIN_ENV}") from exc
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        try:
            with admin.connect() as conn:
                # FORCE: a test that forgot to close its store must not leave the database behind.
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            admin.dispose()
