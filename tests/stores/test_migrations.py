"""Schema versions: a store written by the landed main upgrades in place, migrations and models agree,
a newer store is refused clearly, Optuna's tables are left alone, and workers may open a new database together."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, create_engine, insert, inspect, select, text

from archon import ConfigError, Pipeline, run
from backends.doubles import FunctionBackend
from stores import Store
from stores.schema import HEAD, REVISIONS, VERSION_TABLE, alembic_config, current_revision, include_name
from stores.tables import Base

FIXTURE = Path(__file__).parent / "fixtures" / "landed_main.db"
ROOT = Path(__file__).resolve().parents[2]
# What make_landed_store.py wrote with the landed code.
OK_RUNS = {"3a1639c29db14af68a7670ad30b31ff8", "78765f051e5c4ad296b37d72f1c9fe56"}
DIED_RUN = "d60611499a9b44f99abd495f2c744825"


def landed_pipeline() -> tuple[Pipeline, FunctionBackend]:
    """The pipeline and backend make_landed_store.py ran: the cache keys must come out the same."""
    p = Pipeline("landed")
    d = p.add("draft", "generate", model="fake/small", samples=2, temperature=0.8)
    p.add("answer", "fuse", inputs=[d], model="fake/big")
    return p, FunctionBackend(lambda req, k: "fused" if "Candidate responses" in req.prompt_text() else f"draft {k}")


def landed_copy(db_url: str, tmp_path: Path) -> None:
    """Put the landed main's store into the empty database at ``db_url``, as main left it (no version table)."""
    if db_url.startswith("sqlite"):
        shutil.copy(FIXTURE, db_url.removeprefix("sqlite:///"))
        return
    # PostgreSQL: the first revision's tables, then the fixture's rows copied over. The file is in
    # WAL mode, so even reading it writes beside it: read a copy.
    copy = shutil.copy(FIXTURE, tmp_path / "landed.db")
    engine, old = create_engine(db_url), create_engine(f"sqlite:///{copy}")
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "0001_landed")
            conn.execute(text(f"DROP TABLE {VERSION_TABLE}"))
        legacy = MetaData()
        legacy.reflect(old)
        with old.connect() as src, engine.begin() as dst:
            for table in legacy.sorted_tables:
                rows = [dict(r) for r in src.execute(select(table)).mappings()]
                if rows:
                    dst.execute(insert(table), rows)
            # Rows copied with their ids leave the id sequence behind; main's own inserts would not.
            dst.execute(text("SELECT setval(pg_get_serial_sequence('calls', 'id'), (SELECT max(id) FROM calls))"))
    finally:
        engine.dispose()
        old.dispose()


def test_landed_store_upgrades_in_place(db_url, tmp_path):
    landed_copy(db_url, tmp_path)
    with Store(db_url) as store:
        with store.engine.connect() as conn:
            assert current_revision(conn) == HEAD
        runs = {r["id"]: r for r in store.runs()}
        assert {i for i, r in runs.items() if r["status"] == "ok"} == OK_RUNS
        # The landed code had no liveness columns; its run started long ago and never finished.
        assert runs[DIED_RUN]["status"] == "interrupted"
        assert [r["calls"] for r in runs.values() if r["id"] in OK_RUNS] == [2, 2]
        calls = store.calls()
        assert [c["cached"] for c in calls] == [False, False, True, True]
        prompt, responses = store.call_texts(calls[0]["id"])
        assert "What is 2+2?" in prompt and responses == ["draft 0", "draft 1"]
        # The old cache rows still read back as they were written...
        with store.engine.connect() as conn:
            keys = [row[0] for row in conn.exec_driver_sql("SELECT DISTINCT key FROM cache")]
        texts = sorted(s.text for k in keys for s in store.cache_get(k, [0, 1]).values())
        assert "draft 0" in texts and "draft 1" in texts
    # ...but are never replayed: their keys do not name the server that answered them (a cache key
    # now does), so the same pipeline asks its backend again rather than trust them.
    p, be = landed_pipeline()
    res = run(p, "What is 2+2?", backends={"fake": be}, db=db_url)
    assert res.output == "fused" and res.cached_calls == 0 and len(be.requests) == 2
    with Store(db_url) as store:
        (new,) = [r for r in store.runs() if r["id"] == res.run_id]
        assert new["status"] == "ok"


@pytest.mark.parametrize("path", ["fresh", "migrated"])
def test_migrations_build_the_models_schema(db_url, path):
    """A fresh store (create_all + stamp) and a migrated one have the schema tables.py describes."""
    engine = create_engine(db_url)
    try:
        if path == "fresh":
            Store(db_url).close()
        else:
            with engine.begin() as conn:
                command.upgrade(alembic_config(conn), "head")
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={
                "include_name": include_name, "compare_type": True, "version_table": VERSION_TABLE})
            assert compare_metadata(ctx, Base.metadata) == []
            assert current_revision(conn) == HEAD
    finally:
        engine.dispose()


def test_a_store_stamped_without_alembic_downgrades_and_upgrades_with_it(db_url):
    Store(db_url).close()
    engine = create_engine(db_url)
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0001_landed")
        assert "host" not in {c["name"] for c in inspect(conn).get_columns("runs")}
    Store(db_url).close()
    with engine.connect() as conn:
        assert current_revision(conn) == HEAD
        assert "host" in {c["name"] for c in inspect(conn).get_columns("runs")}
    engine.dispose()


def test_revisions_match_the_scripts():
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(alembic_config())
    assert scripts.get_heads() == [HEAD]
    assert [r.revision for r in reversed(list(scripts.walk_revisions()))] == list(REVISIONS)


def test_store_opens_without_importing_alembic(tmp_path):
    """Half a second of import on every command: a new store and one at the latest revision need none."""
    code = ("import sys; from stores import Store; Store(sys.argv[1]).close(); Store(sys.argv[1]).close(); "
            "print('alembic' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "a.db")], capture_output=True, text=True, env=env, timeout=60)
    assert proc.stdout.strip() == "False", proc.stderr


def test_newer_store_is_refused(db_url):
    Store(db_url).close()
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '9999_future'"))
    engine.dispose()
    with pytest.raises(ConfigError) as err:
        Store(db_url)
    msg = str(err.value)
    assert "9999_future" in msg and HEAD in msg and "upgrade Archon" in msg
    assert db_url.split("/")[-1] in msg


def test_newer_store_exits_2_from_the_cli(tmp_path):
    db = tmp_path / "archon.db"
    Store(db).close()
    engine = create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '9999_future'"))
    engine.dispose()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "archon", "runs", "--db", str(db)],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert str(db) in proc.stderr and "9999_future" in proc.stderr and "upgrade Archon" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_optuna_tables_are_left_alone(db_url):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.create_study(study_name="s", storage=db_url).optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    engine = create_engine(db_url)
    with engine.connect() as conn:
        optuna_version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    Store(db_url).close()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == optuna_version
        assert current_revision(conn) == HEAD
        tables = set(inspect(conn).get_table_names())
    engine.dispose()
    assert {"studies", "trials", "runs", "calls", VERSION_TABLE} <= tables
    assert len(optuna.load_study(study_name="s", storage=db_url).trials) == 2


def test_workers_open_a_new_database_together(db_url):
    barrier, errors, stores = threading.Barrier(4), [], []

    def open_store() -> None:
        try:
            barrier.wait()
            stores.append(Store(db_url))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    run_id = stores[0].start_run("p", "q")
    assert [r["id"] for r in stores[3].runs()] == [run_id]
    for s in stores:
        s.close()
