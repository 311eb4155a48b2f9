"""A reply without usage is unknown tokens and unknown cost (NULL), never 0 tokens and $0."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

from archon import Pipeline, run
from archon.evals.report import format_summary, summarize
from archon.testing.fake_server import FakeOpenAIServer
from backends.base import CompletionRequest, Usage
from backends.budget import Budget, BudgetedBackend
from backends.doubles import FunctionBackend
from backends.openai_compat import OpenAIBackend
from backends.presets import OpenAISettings
from stores.pricing import Pricing
from stores.store import Store
from tests.conftest import write

PIPELINE = """
name: priced
backends:
  fast: {base_url: "%s"}
nodes:
  - {id: draft, op: generate, model: fast/m, samples: 2}
  - {id: answer, op: fuse, inputs: [draft], model: fast/m}
output: answer
"""


@pytest.fixture(autouse=True)
def _priced(tmp_path, monkeypatch):
    """fast/m has a price: a missing usage must not be priced as zero tokens."""
    monkeypatch.setenv("ARCHON_PRICING", str(write(tmp_path, "prices.yaml", "fast/m: {input: 1.0, output: 2.0}\n")))


def _run(tmp_path, srv, db):
    return run(write(tmp_path, "p.yaml", PIPELINE % srv.base_url), "What is 2+2?", db=db)


def test_a_reply_without_usage_is_recorded_as_unknown_not_zero(tmp_path):
    db = str(tmp_path / "u.db")
    with FakeOpenAIServer(usage=()) as srv:
        res = _run(tmp_path, srv, db)
        assert srv.requests == 2
        again = _run(tmp_path, srv, db)  # replayed from the cache: still unknown tokens, and free
        assert srv.requests == 2
    assert res.usage == Usage(None, None) and res.cost_usd is None
    assert any("did not report token usage" in n for n in res.notes)
    assert again.usage == Usage(None, None) and again.cached_calls == 2 and again.cost_usd == 0.0
    listed = subprocess.run([sys.executable, "-m", "archon", "calls", "--json", "--db", db],
                            capture_output=True, text=True, timeout=60)
    calls = json.loads(listed.stdout)
    assert len(calls) == 4
    for c in calls:
        assert c["prompt_tokens"] is None and c["completion_tokens"] is None
        assert c["cost_usd"] is None if not c["cached"] else c["cost_usd"] == 0.0
    table = subprocess.run([sys.executable, "-m", "archon", "calls", "--db", db], capture_output=True, text=True, timeout=60,
                           env={**os.environ, "COLUMNS": "200"})
    assert "unknown" in table.stdout
    with Store(db) as store:
        first = next(r for r in store.runs() if r["id"] == res.run_id)
        assert first["prompt_tokens"] is None and first["completion_tokens"] is None and first["cost_usd"] is None
        assert store.spend([res.run_id, again.run_id])["unknown_usage_calls"] == 4


def test_a_partial_usage_leaves_only_the_missing_count_unknown(tmp_path):
    db = str(tmp_path / "p.db")
    with FakeOpenAIServer(usage=("prompt_tokens",)) as srv:
        res = _run(tmp_path, srv, db)
    assert res.usage.prompt_tokens and res.usage.prompt_tokens > 0
    assert res.usage.completion_tokens is None and res.cost_usd is None
    with Store(db) as store:
        calls = store.calls(run_id=res.run_id)
    assert all(c["prompt_tokens"] > 0 and c["completion_tokens"] is None and c["cost_usd"] is None for c in calls)


def test_a_full_usage_is_still_priced(tmp_path):
    with FakeOpenAIServer() as srv:
        res = _run(tmp_path, srv, str(tmp_path / "f.db"))
    assert res.usage.known and res.cost_usd and res.cost_usd > 0


def test_a_stream_without_usage_is_unknown():
    async def go(srv):
        backend = OpenAIBackend("fast", OpenAISettings(base_url=srv.base_url))
        try:
            req = CompletionRequest(model="m", messages=({"role": "user", "content": "hi"},))
            return [item async for item in backend.stream(req)][-1]
        finally:
            await backend.aclose()

    with FakeOpenAIServer(usage=()) as srv:
        assert asyncio.run(go(srv)).usage == Usage(None, None)


def test_doubles_without_usage_make_run_and_eval_totals_unknown(tmp_path):
    p = Pipeline("mixed")
    d = p.add("draft", "generate", model="known/m", samples=2)
    p.add("answer", "fuse", inputs=[d], model="silent/m")
    backends = {"known": FunctionBackend(lambda r, k: f"draft {k}", name="known"),
                "silent": FunctionBackend(lambda r, k: "fused", name="silent", reports_usage=False)}
    res = run(p, "q", backends=backends, db=str(tmp_path / "d.db"))
    assert res.usage.prompt_tokens is None and res.usage.completion_tokens is None
    assert res.to_dict()["prompt_tokens"] is None
    item = {"item_id": "a", "status": "ok", "score": 1.0, "latency_ms": 1.0, "cost_usd": res.cost_usd,
            "prompt_tokens": res.usage.prompt_tokens, "completion_tokens": res.usage.completion_tokens, "calls": res.calls}
    priced = {**item, "item_id": "b", "cost_usd": 0.5, "prompt_tokens": 10, "completion_tokens": 5}
    s = summarize([item, priced])
    assert s.prompt_tokens is None and s.tokens_per_item is None and s.cost_usd is None
    assert "tokens unknown" in format_summary(s) and "cost unknown" in format_summary(s)
    assert summarize([priced]).cost_usd == 0.5


def test_usage_arithmetic_and_prices_keep_unknown_unknown():
    assert Usage(3, None) + Usage(1, 2) == Usage(4, None)
    assert Usage(None, 5).total_tokens is None and not Usage(None, 5).known
    assert Usage(None, 5).split(2) == [Usage(None, 3), Usage(None, 2)]
    prices = Pricing.load()
    assert prices.cost("fast", "m", None, 10) is None and prices.cost("local", "m", 1, None) is None


def test_the_budget_counts_an_unknown_usage_as_its_worst_case():
    budget = Budget(tokens=10_000)
    backend = BudgetedBackend(FunctionBackend(lambda r, k: "x", reports_usage=False), budget)
    req = CompletionRequest(model="m", messages=({"role": "user", "content": "hi"},), max_tokens=100)
    asyncio.run(backend.complete(req))
    assert budget.spent.tokens == budget.worst_case("fake", req).tokens > 100
