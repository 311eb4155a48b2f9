"""The store contract, run identically on SQLite and PostgreSQL (see conftest.db_url)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, text

import stores
from archon.exceptions import ConfigError, RunFailed, UserError
from stores import CachedSample, CallRecord, Store, get_store
from stores.tables import TextRow

CALL_FIELDS = {
    "id", "run_id", "node_id", "backend", "model", "prompt_tokens", "completion_tokens", "cost_usd",
    "latency_ms", "status", "error", "attempts", "cached", "trial", "created_at", "n", "saved_usd",
}
RUN_FIELDS = {"id", "pipeline", "status", "calls", "prompt_tokens", "completion_tokens", "cost_usd",
              "started_at", "finished_at"}


def call(run_id: str | None, **kw) -> CallRecord:
    kw.setdefault("backend", "openai")
    kw.setdefault("model", "gpt-4o-mini")
    kw.setdefault("prompt_text", "[user]\nhello")
    kw.setdefault("response_texts", ["hi"])
    return CallRecord(run_id=run_id, **kw)


def test_public_surface():
    assert set(stores.__all__) == {
        "DB_URL_ENV", "DEFAULT_DB_URL", "PRICING_ENV", "Batch", "CachedSample", "CallRecord", "EvalResult", "EvalStart",
        "Price", "Pricing", "Recorder", "RunFinish", "RunStart", "Store", "get_store",
    }
    for name in stores.__all__:
        assert hasattr(stores, name)


def test_run_lifecycle(store: Store):
    run_id = store.start_run("sample-rank-fuse", "What is 2+2?", trial=3)
    assert isinstance(run_id, str) and len(run_id) == 32
    [run] = store.runs()
    assert RUN_FIELDS <= set(run)
    assert (run["id"], run["pipeline"], run["status"], run["trial"]) == (run_id, "sample-rank-fuse", "running", 3)
    assert run["finished_at"] is None and run["output"] is None

    store.finish_run(run_id, "ok", output="4")
    [run] = store.runs()
    assert (run["status"], run["output"], run["error"]) == ("ok", "4", None)
    started = datetime.fromisoformat(run["started_at"])
    finished = datetime.fromisoformat(run["finished_at"])
    assert started.utcoffset() == timedelta(0) and started <= finished

    failed = store.start_run("p", "x")
    store.finish_run(failed, "error", error="backend 'openai': 500")
    assert store.runs()[0]["id"] == failed  # newest first
    assert store.runs()[0]["error"] == "backend 'openai': 500"
    assert [r["id"] for r in store.runs(limit=1)] == [failed]


def test_finish_run_rejects_unknown_run_and_status(store: Store):
    with pytest.raises(RunFailed, match="no run 'nope'"):
        store.finish_run("nope", "ok")
    run_id = store.start_run("p", "x")
    with pytest.raises(ValueError):
        store.finish_run(run_id, "done")


def test_calls_have_the_contract_fields_and_types(store: Store):
    run_id = store.start_run("p", "q")
    store.record_calls([
        call(run_id, node_id="draft", n=2, response_texts=["a", "b"], prompt_tokens=10, completion_tokens=4,
             cost_usd=0.25, latency_ms=12.5, attempts=2, trial=7),
        call(run_id, node_id="fuse", model="unpriced", cost_usd=None, status="error", error="timeout",
             response_texts=[]),
        call(run_id, node_id="draft", cached=True, cost_usd=0.0, saved_usd=0.25),
    ])
    store.record_calls([call(None, node_id=None)])  # a call outside any run

    calls = store.calls(run_id)
    assert [c["node_id"] for c in calls] == ["draft", "fuse", "draft"]
    for c in calls:
        assert set(c) == CALL_FIELDS
        assert isinstance(c["id"], int) and isinstance(c["cached"], bool)
        assert isinstance(c["latency_ms"], float) and isinstance(c["attempts"], int)
        created = datetime.fromisoformat(c["created_at"])
        assert created.tzinfo is not None and created.utcoffset() == timedelta(0)
    first, second, third = calls
    assert (first["n"], first["prompt_tokens"], first["completion_tokens"]) == (2, 10, 4)
    assert (first["cost_usd"], first["latency_ms"], first["attempts"], first["trial"]) == (0.25, 12.5, 2, 7)
    assert (second["cost_usd"], second["status"], second["error"]) == (None, "error", "timeout")
    assert (third["cached"], third["saved_usd"], third["trial"]) == (True, 0.25, None)
    json.dumps(calls)  # what `archon calls --json` prints

    everything = store.calls()
    assert [c["id"] for c in everything] == sorted(c["id"] for c in everything)  # newest last
    assert len(everything) == 4 and everything[-1]["run_id"] is None
    assert [c["id"] for c in store.calls(limit=2)] == [c["id"] for c in everything[-2:]]
    assert [c["id"] for c in store.calls(run_id, limit=1)] == [third["id"]]
    assert store.calls("no-such-run") == [] and store.calls(limit=0) == []


def test_created_at_is_kept_in_utc(store: Store):
    when = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=2)))
    store.record_calls([call(None, created_at=when)])
    [c] = store.calls()
    assert c["created_at"] == "2025-01-02T01:04:05.678901+00:00"


def test_run_totals_equal_sums_over_calls(store: Store):
    mixed = store.start_run("p", "known and unknown prices")
    store.record_calls([call(mixed, prompt_tokens=100, completion_tokens=10, cost_usd=0.125),
                        call(mixed, prompt_tokens=50, completion_tokens=5, cost_usd=None)])
    store.record_calls([call(mixed, prompt_tokens=1, completion_tokens=2, cost_usd=0.5)])
    unknown = store.start_run("p", "no known price")
    store.record_calls([call(unknown, prompt_tokens=7, cost_usd=None), call(unknown, cost_usd=None)])
    empty = store.start_run("p", "no calls")
    store.record_calls([call(None, prompt_tokens=1000, cost_usd=9.0)])  # must not count toward any run

    runs = {r["id"]: r for r in store.runs()}
    assert [r["id"] for r in store.runs()] == [empty, unknown, mixed]
    for run_id, run in runs.items():
        calls = store.calls(run_id)
        assert run["calls"] == len(calls)
        assert run["prompt_tokens"] == sum(c["prompt_tokens"] for c in calls)
        assert run["completion_tokens"] == sum(c["completion_tokens"] for c in calls)
    assert runs[mixed]["cost_usd"] == pytest.approx(0.625)
    assert runs[unknown]["cost_usd"] is None  # every price unknown: the total is unknown too
    assert runs[empty]["cost_usd"] == 0.0 and runs[empty]["calls"] == 0
    assert isinstance(runs[mixed]["prompt_tokens"], int)


def test_texts_are_stored_once(store: Store):
    prompt = "[system]\nbe brief\n\n[user]\nnaïve question — 日本語"
    store.record_calls([call(None, prompt_text=prompt, response_texts=["x"]) for _ in range(3)])
    store.record_calls([call(None, prompt_text=prompt, response_texts=["y", "z\x00"], n=2)])
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(TextRow)).scalar() == 3

    first, *_, last = store.calls()
    assert store.call_texts(first["id"]) == (prompt, ["x"])
    assert store.call_texts(last["id"]) == (prompt, ["y", "z\x00"])
    with pytest.raises(UserError, match="no call with id 999"):
        store.call_texts(999)


def test_nul_characters_do_not_fail_a_run(store: Store):
    run_id = store.start_run("p", "in\x00put")
    store.record_calls([call(run_id, prompt_text="a\x00b", error="e\x00")])
    store.finish_run(run_id, "ok", output="out\x00")
    prompt, _ = store.call_texts(store.calls(run_id)[0]["id"])
    assert prompt == "a\ufffdb" and store.runs()[0]["output"] == "out\ufffd"


def test_lone_surrogates_do_not_fail_a_run(store: Store):
    # JSON can carry half a surrogate pair ("\ud800"): such a string cannot be encoded for any database.
    run_id = store.start_run("p", "in\ud800put")
    store.record_calls([call(run_id, prompt_text="a\udfffb", response_texts=["r\ud800"])])
    store.finish_run(run_id, "ok", output="out\ud800")
    prompt, responses = store.call_texts(store.calls(run_id)[0]["id"])
    assert prompt == "a\ufffdb" and responses == ["r\ufffd"] and store.runs()[0]["output"] == "out\ufffd"


def test_cache_get_and_put(store: Store):
    def sample(k: int, text: str, logprobs=None) -> CachedSample:
        return CachedSample("key1", k, "openai", "gpt-4o-mini", text, logprobs, 10, 3, 0.001)

    assert store.cache_get("key1", [0, 1]) == {}
    store.cache_put([sample(0, "zero", [-0.5, -1.25]), sample(1, "one")])
    store.cache_put([sample(1, "one again"), sample(1, "dup in batch"), sample(2, "two")])  # no error
    store.cache_put([])

    got = store.cache_get("key1", [0, 1, 2, 3])
    assert sorted(got) == [0, 1, 2]
    assert got[0] == sample(0, "zero", [-0.5, -1.25])
    assert got[1].text == "one" and got[1].logprobs is None  # the first writer wins
    assert got[2].text == "two"
    assert store.cache_get("key1", []) == {} and store.cache_get("other", [0]) == {}


WORKER = """
import sys
from stores import CachedSample, CallRecord, Store
url, tag, batches, per = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
store = Store(url)
run = store.start_run("concurrent", tag)
for b in range(batches):
    store.record_calls([CallRecord(run_id=run, backend="b", model="m", prompt_text="shared prompt",
                                   response_texts=[f"{tag}-{b}-{i}"], prompt_tokens=1) for i in range(per)])
    store.cache_put([CachedSample("shared", b % 3, "b", "m", tag)])
store.finish_run(run, "ok")
store.close()
"""


def test_concurrent_processes_write_every_call(db_url: str):
    # The workers also race to create the tables of the fresh database.
    workers, batches, per = 6, 25, 4
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, db_url, f"w{i}", str(batches), str(per)],
                              stderr=subprocess.PIPE, text=True) for i in range(workers)]
    errors = [p.communicate(timeout=240)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * workers, "\n".join(errors)
    with Store(db_url) as store:
        runs = store.runs()
        assert len(runs) == workers and {r["status"] for r in runs} == {"ok"}
        assert len(store.calls()) == workers * batches * per
        assert all(r["calls"] == r["prompt_tokens"] == batches * per for r in runs)
        assert sorted(store.cache_get("shared", range(5))) == [0, 1, 2]


def test_concurrent_threads_share_one_store(store: Store):
    run_id = store.start_run("p", "threads")
    failures: list[BaseException] = []

    def write(t: int) -> None:
        try:
            for b in range(20):
                store.record_calls([call(run_id, node_id=f"t{t}", response_texts=[f"{t}-{b}"])])
                store.calls(run_id, limit=5)
        except BaseException as exc:  # surfaced by the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert failures == []
    assert len(store.calls(run_id)) == 160 and store.runs()[0]["calls"] == 160


def test_sqlite_runs_in_wal_mode(tmp_path):
    with Store(tmp_path / "archon.db") as store, store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30000
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL


def test_in_memory_sqlite_works_across_threads():
    with get_store("sqlite://") as store:
        run_id = store.start_run("p", "x")
        threads = [threading.Thread(target=store.record_calls, args=([call(run_id)],)) for _ in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert store.runs()[0]["calls"] == 8


def test_get_store_turns_names_into_stores(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ARCHON_DB_URL", raising=False)
    with get_store(None) as default:
        assert default.url.database == "./archon.db" and (tmp_path / "archon.db").exists()
        assert get_store(default) is default
    monkeypatch.setenv("ARCHON_DB_URL", f"sqlite:///{tmp_path / 'env.db'}")
    with get_store(None):
        assert (tmp_path / "env.db").exists()
    with get_store(str(tmp_path / "nested" / "dir" / "plain.db")) as plain:
        assert plain.dialect == "sqlite" and (tmp_path / "nested" / "dir" / "plain.db").exists()


@pytest.mark.parametrize("url, fix", [
    ("nosuchdb://host/db", "supports SQLite and PostgreSQL"),
    ("mysql+pymysql://u:secret@host/db", "postgresql+psycopg://"),
    ("postgresql+psycopg://u:secret@127.0.0.1:1/db", "check that the server is running"),
    ("postgresql://u:secret@127.0.0.1:1/db", "check that the server is running"),  # psycopg 3, not psycopg2
    ("  ", "empty"),
])
def test_bad_urls_are_config_errors_that_hide_the_password(url: str, fix: str):
    with pytest.raises(ConfigError) as info:
        get_store(url)
    message = str(info.value)
    assert fix in message and "secret" not in message
    assert info.value.exit_code == 2


def test_database_failures_at_run_time_are_run_failed(store: Store):
    with store.engine.begin() as conn:
        conn.execute(text("DROP TABLE calls"))
    with pytest.raises(RunFailed, match="recording the run failed") as info:
        store.record_calls([call(None)])
    assert info.value.db_error is not None and info.value.exit_code == 1
    assert info.value.__cause__ is None  # SQLAlchemy's message holds the SQL and its parameters: never chained
