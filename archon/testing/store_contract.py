"""The conformance suite of the store: what every store passes, on every database it supports.

    from archon.testing.store_contract import StoreContract

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store(self):
            s = Store("postgresql+psycopg://...")   # an empty database
            yield s
            s.close()

Each test gets an EMPTY store from the ``store`` fixture and uses only the public API: one batch
written in one transaction (``write_batch``), read back through ``runs``/``calls``/``call_texts``,
cache lookups by key and sample, evaluations and their results, and rewrites that must be idempotent.
Needs pytest (the ``dev`` extra).
"""

from __future__ import annotations

__all__ = ["StoreContract"]

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from archon.exceptions import RunFailed
from stores import Batch, CachedSample, CallRecord, EvalResult, EvalStart, RunFinish, RunStart

_RUN = "a" * 32


def _call(run_id: str | None, node: str, **kw: Any) -> CallRecord:
    kw.setdefault("prompt_text", "[user]\nWhat is 2+2?")
    kw.setdefault("response_texts", ["4"])
    return CallRecord(backend="fast", model="m", run_id=run_id, node_id=node, **kw)


def _sample(k: int, text: str, key: str = "key-1") -> CachedSample:
    return CachedSample(key, k, "fast", "m", text, logprobs=[-0.5, -0.25] if k == 0 else None,
                        prompt_tokens=5, completion_tokens=k, cost_usd=0.001)


class StoreContract:
    """Tests every store passes. A subclass provides the ``store`` fixture: an empty store."""

    @pytest.fixture
    def store(self) -> Any:
        raise NotImplementedError("a StoreContract subclass provides the 'store' fixture: an empty store")

    def test_one_batch_writes_runs_calls_cache_and_finishes(self, store: Any) -> None:
        store.write_batch(Batch(
            starts=[RunStart(_RUN, "p", "What is 2+2?", trial=3)],
            calls=[_call(_RUN, "draft", n=2, response_texts=["4", "four"], prompt_tokens=10, completion_tokens=4,
                         cost_usd=0.25, attempts=2, trial=3),
                   _call(_RUN, "fuse", status="error", error="timeout", response_texts=[], cost_usd=None)],
            cache=[_sample(0, "4"), _sample(1, "four")],
            finishes=[RunFinish(_RUN, "ok", output="4")],
        ))
        [run] = store.runs()
        assert (run["id"], run["pipeline"], run["status"], run["output"], run["trial"]) == (_RUN, "p", "ok", "4", 3)
        assert (run["calls"], run["prompt_tokens"], run["completion_tokens"], run["cost_usd"]) == (2, 10, 4, 0.25)
        draft, fuse = store.calls(_RUN)
        assert (draft["node_id"], draft["n"], draft["attempts"], draft["cached"], draft["status"]) == ("draft", 2, 2, False, "ok")
        assert (fuse["status"], fuse["error"], fuse["cost_usd"]) == ("error", "timeout", None)
        assert store.call_texts(draft["id"]) == ("[user]\nWhat is 2+2?", ["4", "four"])
        assert set(store.cache_get("key-1", [0, 1])) == {0, 1}

    def test_an_empty_batch_writes_nothing(self, store: Any) -> None:
        store.write_batch(Batch())
        assert store.runs() == [] and store.calls() == []

    def test_a_batch_is_one_transaction(self, store: Any) -> None:
        """A batch that fails (here: finishing a run that does not exist) leaves nothing behind."""
        with pytest.raises(RunFailed, match="no run"):
            store.write_batch(Batch(starts=[RunStart(_RUN, "p", "q")], calls=[_call(_RUN, "n")],
                                    finishes=[RunFinish("b" * 32, "ok")]))
        assert store.runs() == [] and store.calls() == []

    def test_cache_lookups_by_key_and_sample(self, store: Any) -> None:
        store.write_batch(Batch(cache=[_sample(0, "zero"), _sample(2, "two"), _sample(0, "other key", key="key-2")]))
        got = store.cache_get("key-1", [0, 1, 2])
        assert sorted(got) == [0, 2]  # sample 1 was never answered
        assert got[0] == _sample(0, "zero") and got[2].text == "two" and got[2].logprobs is None
        assert store.cache_get("key-2", [0])[0].text == "other key"
        assert store.cache_get("key-3", [0]) == {} and store.cache_get("key-1", []) == {}

    def test_unknown_usage_round_trips_as_none(self, store: Any) -> None:
        store.write_batch(Batch(calls=[_call(None, "n", prompt_tokens=None, completion_tokens=None)],
                                cache=[CachedSample("k", 0, "fast", "m", "t", prompt_tokens=None, completion_tokens=None)]))
        [c] = store.calls()
        assert (c["prompt_tokens"], c["completion_tokens"]) == (None, None)
        assert store.cache_get("k", [0])[0].prompt_tokens is None

    def test_rewrites_are_idempotent(self, store: Any) -> None:
        """Cache entries, texts and evaluations written twice (a retried batch, another worker) keep the first."""
        store.write_batch(Batch(cache=[_sample(0, "first")], evals=[EvalStart("e1", "p", "bench", {"n": 1})]))
        store.write_batch(Batch(cache=[_sample(0, "second"), _sample(0, "third")],
                                evals=[EvalStart("e1", "p", "bench", {"n": 2})]))
        assert store.cache_get("key-1", [0])[0].text == "first"
        store.start_eval("e1", "p", "bench", {"n": 3})  # no error
        for _ in range(2):
            store.write_batch(Batch(calls=[_call(None, "n", prompt_text="same prompt", response_texts=["same"])]))
        texts = [store.call_texts(c["id"]) for c in store.calls()]
        assert texts == [("same prompt", ["same"])] * 2

    def test_eval_results_are_written_read_and_replaced(self, store: Any) -> None:
        early = datetime(2025, 1, 1, tzinfo=timezone.utc)
        store.start_eval("e1", "p", "bench", {"style": "chat"})
        store.write_batch(Batch(
            starts=[RunStart(_RUN, "p", "easy question")], finishes=[RunFinish(_RUN, "ok", "4")],
            eval_results=[EvalResult(eval_id="e1", item_id="i1", status="failed", error="timeout", created_at=early),
                          EvalResult(eval_id="e1", item_id="i2", status="ok", score=1.0, run_id=_RUN, raw={"why": "exact"},
                                     prompt_tokens=None, created_at=early + timedelta(seconds=1))],
        ))
        store.write_batch(Batch(eval_results=[EvalResult(eval_id="e1", item_id="i1", status="ok", score=0.0,
                                                         created_at=early + timedelta(seconds=2))]))
        rows = {r["item_id"]: r for r in store.eval_results("e1")}
        assert set(rows) == {"i1", "i2"}  # the retried item replaced its failed result
        assert (rows["i1"]["status"], rows["i1"]["score"], rows["i1"]["error"]) == ("ok", 0.0, None)
        assert (rows["i2"]["raw"], rows["i2"]["run_id"], rows["i2"]["prompt_tokens"]) == ({"why": "exact"}, _RUN, None)
        assert store.eval_results("no-such-eval") == []
        assert store.past_scores("p") == [("easy question", 1.0)]  # only scored items with a run
        assert store.past_scores("other pipeline") == []

    def test_heartbeats_and_finishes_of_running_runs(self, store: Any) -> None:
        store.write_batch(Batch(starts=[RunStart(_RUN, "p", "q")]))
        store.heartbeat([_RUN, "", "c" * 32])  # unknown ids are ignored
        assert store.runs()[0]["status"] == "running"
        store.write_batch(Batch(finishes=[RunFinish(_RUN, "error", error="boom")]))
        run = store.runs()[0]
        assert (run["status"], run["error"]) == ("error", "boom") and run["finished_at"] is not None
