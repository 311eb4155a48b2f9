"""Alembic's entry point: run the migrations on the connection ``stores.schema`` hands over.

With no connection (a developer's ``command.revision(..., autogenerate=True)``), it connects to the
``sqlalchemy.url`` given to ``alembic_config(url=...)``.
"""

from alembic import context
from sqlalchemy import Connection, create_engine

from stores.schema import VERSION_TABLE, include_name
from stores.tables import Base


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=Base.metadata, version_table=VERSION_TABLE,
                      include_name=include_name,
                      render_as_batch=True)  # SQLite alters tables by copying them: batch mode does that
    # Inside the caller's transaction this begins nothing: the caller commits, holding its lock.
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("Archon's migrations run online only (stores.schema.ensure_schema)")
_conn = context.config.attributes.get("connection")
if _conn is not None:
    _run(_conn)
else:
    _url = context.config.get_main_option("sqlalchemy.url")
    if _url is None:
        raise SystemExit("No connection and no URL: pass one, as in stores.schema.alembic_config(url='sqlite:///dev.db')")
    with create_engine(_url).begin() as _c:
        _run(_c)
