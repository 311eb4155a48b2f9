"""Running pipelines on the test doubles: parallel steps, cache replay, usage sums, failures."""

from __future__ import annotations

import asyncio
import time

import pytest

from archon import CompiledPipeline, Pipeline, RunFailed, Runtime, run
from archon.exceptions import BackendAuthError, BackendUnavailable
from backends.doubles import EchoBackend, FunctionBackend, ScriptedBackend
from stores.store import Store


def srf(samples: int = 8, top_k: int = 3) -> Pipeline:
    p = Pipeline("srf")
    d = p.add("draft", "generate", model="fake/small", samples=samples, temperature=0.8)
    t = p.add("top", "rank", inputs=[d], model="fake/small", top_k=top_k)
    p.add("answer", "fuse", inputs=[t], model="fake/big")
    return p


def ranker_says(order: str):
    def fn(req, k):
        text = req.prompt_text()
        if "Ranking:" in text:
            return order
        if "Candidate responses" in text:
            return "fused"
        return f"draft {k}"

    return fn


def test_sample_rank_fuse_end_to_end(tmp_path):
    be = FunctionBackend(ranker_says("[3] > [1] > [2]"))
    res = run(srf(), "What is 2+2?", backends={"fake": be}, db=str(tmp_path / "a.db"))
    assert res.output == "fused"
    assert [c.text for c in res.candidates["top"]] == ["draft 2", "draft 0", "draft 1"]
    assert res.calls == 3 and res.cached_calls == 0
    # one request asked for all 8 samples
    assert be.requests[0].samples == tuple(range(8))
    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    calls = store.calls(run_id=res.run_id)
    assert [c["node_id"] for c in calls] == ["draft", "top", "answer"]
    assert sum(c["prompt_tokens"] for c in calls) == res.usage.prompt_tokens
    (row,) = store.runs()
    assert row["status"] == "ok" and row["calls"] == 3


def test_independent_nodes_share_a_step():
    """Depth 2 with 3 branches of 0.2 s each -> about 0.4 s, not 0.8 s."""
    p = Pipeline("wide")
    for name in ("a", "b", "c"):
        p.add(name, "generate", model=f"fake/{name}", samples=4)
    p.add("answer", "fuse", inputs=["a", "b", "c"], model="fake/f")
    be = FunctionBackend(lambda r, k: f"{r.model}{k}", delay=0.2)

    async def go():
        cp = CompiledPipeline(p.build())
        rt = Runtime(store=False, backends={"fake": be})
        start = time.perf_counter()
        res = await cp.run("q", rt)
        return res, time.perf_counter() - start

    res, wall = asyncio.run(go())
    assert len(res.candidates["a"]) == 4 and res.output == "f0"
    assert wall < 0.7, wall  # sequential would be 0.8 s; generous bound for noisy machines


def test_unparseable_ranking_keeps_input_order_and_notes_reason():
    be = FunctionBackend(ranker_says("I like them all."))
    res = run(srf(samples=4, top_k=2), "q", backends={"fake": be}, db=False)
    top = res.candidates["top"]
    assert [c.text for c in top] == ["draft 0", "draft 1"]
    assert any("rank fallback" in n for n in top[0].notes)
    assert any("rank fallback" in n for n in res.notes)


def test_second_run_is_fully_cached(tmp_path):
    db = str(tmp_path / "c.db")
    be = FunctionBackend(ranker_says("[2] > [1]"))
    first = run(srf(samples=4), "q", backends={"fake": be}, db=db)
    n = len(be.requests)
    second = run(srf(samples=4), "q", backends={"fake": be}, db=db)
    assert len(be.requests) == n, "the second run must issue no request"
    assert second.output == first.output and second.cached_calls == second.calls == 3
    calls = Store(db).calls(run_id=second.run_id)
    assert calls and all(c["cached"] for c in calls)
    # more samples later: only the new ones are requested
    third = run(srf(samples=6), "q", backends={"fake": be}, db=db)
    assert be.requests[n].samples == (4, 5)
    # the partly replayed generate is still one call of the pipeline (3 in all), and not a cached one
    assert third.calls == 3 and [c["cached"] for c in Store(db).calls(run_id=third.run_id) if c["node_id"] == "draft"] == [False, True]  # live row first (written by the recorder), then the replayed part
    assert third.cached_calls <= 1  # at most the fuse, if the ranking kept the same top candidates


def test_no_cache_calls_again(tmp_path):
    db = str(tmp_path / "c.db")
    be = FunctionBackend(ranker_says("[1]"))
    run(srf(samples=2), "q", backends={"fake": be}, db=db)
    n = len(be.requests)
    run(srf(samples=2), "q", backends={"fake": be}, db=db, use_cache=False)
    assert len(be.requests) == 2 * n


def test_failure_is_recorded_and_raised(tmp_path):
    db = str(tmp_path / "f.db")
    be = ScriptedBackend([BackendAuthError("HTTP 401: check FAKE_KEY")])
    p = Pipeline("one")
    p.add("only", "generate", model="fake/m")
    with pytest.raises(RunFailed) as info:
        run(p, "q", backends={"fake": be}, db=db)
    assert "node 'only'" in str(info.value) and "FAKE_KEY" in str(info.value)
    store = Store(db)
    (r,) = store.runs()
    assert r["status"] == "error" and "FAKE_KEY" in r["error"]
    (c,) = store.calls()
    assert c["status"] == "error" and c["node_id"] == "only"


def test_retryable_failure_then_success_counts_attempts(tmp_path):
    db = str(tmp_path / "r.db")
    be = ScriptedBackend([BackendUnavailable("HTTP 500", retry_after=0.01), "ok"])
    p = Pipeline("one")
    p.add("only", "generate", model="fake/m")
    res = run(p, "q", backends={"fake": be}, db=db)
    assert res.output == "ok"
    (c,) = Store(db).calls()
    assert c["attempts"] == 2 and c["status"] == "ok"


def test_ensemble_and_multiple_fusers():
    p = Pipeline("moa")
    p.add("props", "ensemble", model=["fake/a", "fake/b"], samples=2)
    p.add("answer", "fuse", inputs="props", model=["fake/f1", "fake/f2"])
    res = run(p, "q", backends={"fake": EchoBackend()}, db=False)
    assert sorted({c.model for c in res.candidates["props"]}) == ["fake/a", "fake/b"]
    assert len(res.candidates["props"]) == 4
    assert [c.model for c in res.candidates["answer"]] == ["fake/f1", "fake/f2"]


def test_completion_mode_and_prompt_template():
    seen = []

    def fn(req, k):
        seen.append(req)
        return " 42"

    p = Pipeline("c")
    p.add("g", "generate", model="fake/base", mode="completion", prompt="Q: {query}\nA:", stop=["\n"], system="Be brief.")
    run(p, "6*7?", backends={"fake": FunctionBackend(fn)}, db=False)
    assert seen[0].mode == "completion" and seen[0].prompt == "Be brief.\n\nQ: 6*7?\nA:" and seen[0].stop == ("\n",)


def test_unknown_backend_at_run_time_is_a_config_error():
    from archon.exceptions import ConfigError

    p = Pipeline("x")
    p.add("g", "generate", model="fak/m")
    with pytest.raises(ConfigError, match="Did you mean 'fake'"):
        run(p, "q", backends={"fake": EchoBackend()}, db=False)
