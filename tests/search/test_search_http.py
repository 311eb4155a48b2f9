"""Searches against a real OpenAI-compatible server on 127.0.0.1: never paying twice, and budgets."""

from __future__ import annotations

import asyncio
import json
import re

import yaml

from archon import Runtime
from archon.evals.datasets import load_benchmark
from archon.testing.fake_server import FakeOpenAIServer
from search.space import SearchSpace
from search.study import PerQuery, run_search
from stores.store import get_store
from tests.conftest import write

SPACE = """
name: http-demo
backends:
  srv: {base_url: "${ARCHON_BASE_URL}"}
nodes:
  - id: draft
    op: generate
    model: {choices: [srv/weak, srv/mid, srv/strong]}
    samples: 2
    temperature: {choices: [0.2, 0.7]}
    max_tokens: 16
  - id: critic
    op: critique
    optional: true
    inputs: [draft]
    model: srv/weak
    max_tokens: 16
  - id: top
    op: rank
    optional: true
    inputs: [critic]
    model: {choices: [srv/weak, srv/strong]}
    top_k: {choices: [1, 2]}
    max_tokens: 16
  - id: answer
    op: fuse
    inputs: [top]
    model: {choices: [srv/weak, srv/strong]}
    max_tokens: 16
"""


def reply(prompt: str, k: int) -> str:
    if "Ranking" in prompt or "rank" in prompt.lower():
        return "[2] > [1]"
    nums = [int(n) for n in re.findall(r"\b\d+\b", prompt)]
    return f"The answer is {nums[0] + 1 if nums else 0}."


def _items(tmp_path, n=6):
    return write(tmp_path, "items.jsonl", "".join(
        json.dumps({"id": f"q{i}", "question": f"What is {i} plus one?", "answer": str(i + 1)}) + "\n" for i in range(n)))


def _search(tmp_path, monkeypatch, srv, **kw):
    monkeypatch.setenv("ARCHON_BASE_URL", srv.base_url)
    space = SearchSpace(yaml.safe_load(SPACE))
    db = f"sqlite:///{tmp_path / 's.db'}"

    async def go():
        rt = Runtime(space.sample_first().backends, store=db)
        try:
            return await run_search(space, load_benchmark(str(_items(tmp_path))), rt, storage=db, **kw)
        finally:
            await rt.aclose()

    return asyncio.run(go()), db


def test_twenty_trials_issue_no_duplicate_request(tmp_path, monkeypatch):
    with FakeOpenAIServer(reply=reply) as srv:
        res, _ = _search(tmp_path, monkeypatch, srv, trials=20, sampler="tpe", seed=7)
        bodies = [json.dumps(e.body, sort_keys=True) for e in srv.log]
    assert len(res.trials) == 20 and res.ran == 20
    # samples are fixed in this space, so a request body names one call: no body twice
    assert len(bodies) == len(set(bodies)) == res.calls_issued
    assert res.calls_requested > res.calls_issued  # trials shared the cache


def test_dollar_budget_stops_at_or_below_and_keeps_finished_trials(tmp_path, monkeypatch):
    prices = write(tmp_path, "prices.yaml", "srv/weak: {input: 100, output: 200}\nsrv/mid: {input: 100, output: 200}\n"
                                            "srv/strong: {input: 300, output: 600}\n")
    monkeypatch.setenv("ARCHON_PRICING", str(prices))
    limit = 0.5
    with FakeOpenAIServer(reply=reply) as srv:
        res, db = _search(tmp_path, monkeypatch, srv, trials=40, sampler="random", seed=1, budget_usd=limit)
        sent = len(srv.log)
    paid = sum(c["cost_usd"] or 0.0 for c in get_store(db).calls() if not c["cached"])
    assert res.stopped and "dollar budget" in res.stopped
    assert 0 < paid <= limit and abs(res.spent_usd - paid) < 1e-9
    assert sent == res.calls_issued
    finished = [r for r in res.trials if r["state"] in ("complete", "pruned")]
    assert 2 <= len(finished) < 40 and all(r["score"] is not None for r in finished)
    # the same command with more money resumes: earlier trials are kept and nothing is paid for twice
    with FakeOpenAIServer(reply=reply) as srv2:
        more, _ = _search(tmp_path, monkeypatch, srv2, trials=len(finished) + 2, sampler="random", seed=1, budget_usd=limit * 3)
    assert more.stopped is None and len([r for r in more.trials if r["state"] in ("complete", "pruned")]) == len(finished) + 2
    assert {r["trial"] for r in finished} <= {r["trial"] for r in more.trials}


def test_per_query_limits_keep_only_pipelines_within_them(tmp_path, monkeypatch):
    with FakeOpenAIServer(reply=reply) as srv:
        res, _ = _search(tmp_path, monkeypatch, srv, trials=8, sampler="random", seed=2, per_query=PerQuery(calls=2, tokens=400))
    # generate + fuse is 2 calls; any critique or rank makes 3 or more: those are ruled out before running
    assert res.trials and all(r["calls_bound"] <= 2 for r in res.trials)
    assert all((r["calls_per_item"] or 0) <= 2 for r in res.trials)
    assert all(r["state"] == "infeasible" or (r["tokens_per_query"] or 0) <= 400 for r in res.trials)
    assert res.best is not None and res.best["state"] == "complete"


def test_nsga2_gives_a_pareto_front_of_score_and_cost(tmp_path, monkeypatch):
    with FakeOpenAIServer(reply=reply) as srv:
        res, _ = _search(tmp_path, monkeypatch, srv, trials=8, sampler="nsga2", seed=3, cost="tokens")
    assert len(res.trials) == 8 and res.pareto
    front = [(r["score"], r["tokens_per_query"]) for r in res.pareto]
    complete = [(r["score"], r["tokens_per_query"]) for r in res.trials if r["state"] == "complete"]
    for s, c in front:  # nothing complete dominates a front member
        assert not any((s2 >= s and c2 <= c) and (s2 > s or c2 < c) for s2, c2 in complete)
