"""The store's schema version: Alembic migrations that open and upgrade any Archon database in place.

``ensure_schema`` runs once per ``Store`` open. A database at the latest revision costs one read,
and Alembic (half a second to import) is imported only when an older store needs upgrading.
A database with no Archon tables gets them from the models directly (``create_all``) and is stamped
at the latest revision: one transaction instead of replaying history, and exactly the tables the code
reads and writes (tests/stores/test_migrations.py checks that the migrations build the same schema).
A store written before schema versions existed (no version table, but Archon's tables) is stamped
at nothing and upgraded from the first revision, which creates only the tables it lacks.

Archon records its revision in ``archon_alembic_version``: Optuna keeps its own ``alembic_version``
(and ``studies``, ``trials``, ...) in the same database, and ``include_name`` keeps every Alembic
operation of ours away from tables that are not Archon's.

A new revision (after changing tables.py), from a database at the latest revision:

    python -c "from alembic import command; from stores.schema import alembic_config; \
command.revision(alembic_config(url='sqlite:///dev.db'), 'what changed', autogenerate=True)"
"""

from __future__ import annotations

__all__ = ["HEAD", "REVISIONS", "VERSION_TABLE", "alembic_config", "current_revision", "ensure_schema", "include_name"]

from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, Connection, Engine, MetaData, PrimaryKeyConstraint, String, Table, inspect, select, text

from archon.exceptions import ConfigError

from . import eval_tables  # noqa: F401  (registers the eval tables with Base)
from .tables import Base

if TYPE_CHECKING:
    from alembic.config import Config

VERSION_TABLE = "archon_alembic_version"
# Every revision in migrations/versions, oldest first (tests check this against the scripts):
# knowing them without Alembic keeps its import off every command's start.
REVISIONS = ("0001_landed", "0002_run_liveness", "0003_unknown_usage", "0004_eval_detail")
HEAD = REVISIONS[-1]
# Any fixed 64-bit number: PostgreSQL advisory locks are keyed by one, per database.
_PG_LOCK_KEY = 0x41524348_4F4E5343  # "ARCHONSC"
# The table Alembic itself would create, so a new database is stamped without importing it.
_version = Table(VERSION_TABLE, MetaData(), Column("version_num", String(32), nullable=False),
                 PrimaryKeyConstraint("version_num", name=f"{VERSION_TABLE}_pkc"))


def alembic_config(connection: Connection | None = None, *, url: str | None = None) -> Config:
    """An Alembic Config built in code: the scripts ship inside the package, no alembic.ini needed."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", "stores:migrations")
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url)
    cfg.attributes["connection"] = connection
    return cfg


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Only Archon's tables take part in migrations; Optuna's and anyone else's are not ours.

    (Alembic leaves its version table, ``VERSION_TABLE`` here, out by itself.)
    """
    return type_ != "table" or name in Base.metadata.tables


def current_revision(conn: Connection) -> str | None:
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    return conn.execute(select(_version.c.version_num)).scalar()


def ensure_schema(engine: Engine, reader: Engine, shown: str) -> None:
    """Bring the database at ``engine`` to the latest revision; ``shown`` names it in errors.

    ``reader`` is the same engine with read-only transactions (SQLite takes no write lock for it).
    Raises ConfigError when the database was written by a newer Archon.
    """
    with reader.connect() as conn:
        if current_revision(conn) == HEAD:
            return
    # One transaction under a lock: workers opening a new database together wait for the first one,
    # then find it at the latest revision. SQLite's BEGIN IMMEDIATE (store.py) is that lock there.
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        _upgrade(conn, shown)


def _upgrade(conn: Connection, shown: str) -> None:
    current = current_revision(conn)
    if current == HEAD:
        return
    if current is None and not inspect(conn).has_table("runs"):
        Base.metadata.create_all(conn)
        _version.create(conn, checkfirst=True)
        conn.execute(_version.insert(), {"version_num": HEAD})
        return
    if current is not None and current not in REVISIONS:
        raise ConfigError(
            f"the database {shown} has Archon schema version '{current}', newer than this Archon "
            f"(version {_archon_version()}, schema '{HEAD}'); a newer Archon wrote it: upgrade Archon "
            "(pip install -U archon-llm) to open it, or use another --db"
        )
    from alembic import command

    command.upgrade(alembic_config(conn), "head")


def _archon_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("archon-llm")
    except PackageNotFoundError:
        return "unknown"
