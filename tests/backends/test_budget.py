"""Spending limits (never crossed, even with requests in flight) and single-flight caching."""

from __future__ import annotations

import asyncio

import pytest

from archon import Runtime
from archon.exceptions import BudgetExhausted
from backends.base import CompletionRequest
from backends.budget import Budget, Spend
from backends.doubles import FunctionBackend
from stores.pricing import Price, Pricing


def _req(i: int, max_tokens: int = 10) -> CompletionRequest:
    return CompletionRequest(model="m", prompt=f"question {i}", mode="completion", max_tokens=max_tokens)


def test_worst_case_bounds_tokens_and_dollars():
    b = Budget(pricing=Pricing({"fake/m": Price(1_000_000.0, 2_000_000.0)}))  # $1 per prompt token, $2 per completion token
    est = b.worst_case("fake", _req(1, max_tokens=10).with_samples((0, 1)))
    prompt = len(b"question 1") + 16  # bytes plus the per-message allowance
    assert est == Spend(usd=prompt * 1.0 + 20 * 2.0, tokens=prompt + 20, calls=1)


def test_dollar_limit_is_never_crossed_with_many_requests_in_flight(tmp_path, monkeypatch):
    prices = tmp_path / "prices.yaml"
    prices.write_text("fake/m: {input: 100, output: 200}\n")
    monkeypatch.setenv("ARCHON_PRICING", str(prices))
    budget = Budget(usd=0.02)  # priced like the calls it meters: from the runtime's table
    be = FunctionBackend(lambda req, k: "a b c", delay=0.01)
    rt = Runtime(backends={"fake": be}, store=f"sqlite:///{tmp_path / 's.db'}", budget=budget)

    async def go():
        try:
            return await asyncio.gather(*(rt.backend("fake").complete(_req(i)) for i in range(200)), return_exceptions=True)
        finally:
            await rt.aclose()

    out = asyncio.run(go())
    done = [o for o in out if not isinstance(o, BaseException)]
    refused = [o for o in out if isinstance(o, BudgetExhausted)]
    assert done and refused and len(done) + len(refused) == 200
    paid = sum(c["cost_usd"] for c in rt.store.calls() if not c["cached"])
    assert paid == pytest.approx(budget.spent.usd) and paid <= 0.02
    assert len(be.requests) == len(done) == budget.spent.calls  # refused requests were never sent
    assert "dollar budget" in budget.exhausted


def test_call_limit_counts_only_requests_that_reach_the_backend(tmp_path):
    be = FunctionBackend(lambda req, k: "ok")
    rt = Runtime(backends={"fake": be}, store=f"sqlite:///{tmp_path / 's.db'}", budget=Budget(calls=3))

    async def go():
        try:
            for i in range(3):
                await rt.backend("fake").complete(_req(i))
            await rt.backend("fake").complete(_req(0))  # a cache hit spends nothing
            with pytest.raises(BudgetExhausted, match="call budget"):
                await rt.backend("fake").complete(_req(99))
        finally:
            await rt.aclose()

    asyncio.run(go())
    assert len(be.requests) == 3


def test_identical_requests_in_flight_are_sent_once(tmp_path):
    be = FunctionBackend(lambda req, k: f"answer {k}", delay=0.05)
    rt = Runtime(backends={"fake": be}, store=f"sqlite:///{tmp_path / 's.db'}")

    async def go():
        try:
            req = _req(7).with_samples((0, 1, 2))
            return await asyncio.gather(rt.backend("fake").complete(req), rt.backend("fake").complete(req.with_samples((1, 2, 3))))
        finally:
            await rt.aclose()

    first, second = asyncio.run(go())
    assert first.texts == ["answer 0", "answer 1", "answer 2"]
    assert second.texts == ["answer 1", "answer 2", "answer 3"]  # only sample 3 was asked of the backend
    assert [r.samples for r in be.requests] == [(0, 1, 2), (3,)]
    assert [c["cached"] for c in rt.store.calls()].count(True) == 1


def test_a_failed_request_fails_its_waiters_too(tmp_path):
    calls = {"n": 0}

    async def flaky(req, k):
        calls["n"] += 1
        await asyncio.sleep(0.05)
        raise RuntimeError("boom")

    rt = Runtime(backends={"fake": FunctionBackend(flaky)}, store=f"sqlite:///{tmp_path / 's.db'}")

    async def go():
        try:
            return await asyncio.gather(*(rt.backend("fake").complete(_req(1)) for _ in range(3)), return_exceptions=True)
        finally:
            await rt.aclose()

    out = asyncio.run(go())
    assert all(isinstance(o, Exception) for o in out) and calls["n"] == 1


def test_refuses_rather_than_waits_forever_once_nothing_is_in_flight():
    """Float sums of reservations need not return to exactly 0: refusal must not depend on it."""
    costs = iter([0.1, 0.2, 0.7, 0.7])

    class Fixed(Budget):
        def worst_case(self, backend, request):
            return Spend(usd=next(costs), tokens=0, calls=1)

    async def go():
        b = Fixed(usd=0.75)
        first, second = await b.reserve("fake", _req(1)), await b.reserve("fake", _req(2))
        await b.settle(first, Spend(0.0, 0, 1))
        await b.settle(second, Spend(0.0, 0, 1))  # reserved is now 0.1 + 0.2 - 0.1 - 0.2, not always 0.0
        third = await b.reserve("fake", _req(3))
        waiting = asyncio.create_task(b.reserve("fake", _req(4)))  # 0.7 + 0.7 > 0.75: waits for the third
        await asyncio.sleep(0.01)
        assert not waiting.done()
        await b.settle(third, Spend(0.5, 0, 1))  # spent 0.5: the fourth's 0.7 can never fit
        with pytest.raises(BudgetExhausted):
            await asyncio.wait_for(waiting, 2)

    asyncio.run(go())

