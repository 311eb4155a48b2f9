"""Streams through the wrapper chain: recorded once, cached and replayed, limited, budgeted, retried
only before the first delta; and a run handing its output node's tokens to ``on_delta``."""

from __future__ import annotations

import asyncio

import pytest

from archon import CompiledPipeline, Pipeline, Runtime
from archon.exceptions import BackendUnavailable, BudgetExhausted
from backends.base import Completion, CompletionRequest, Usage, can_stream
from backends.budget import Budget
from backends.doubles import FunctionBackend
from backends.retry import RetryingBackend
from backends.wrappers import LimitedBackend
from stores.store import Store


def ask(text: str = "hello there") -> CompletionRequest:
    return CompletionRequest(model="m", messages=({"role": "user", "content": text},))


async def collect(stream) -> tuple[list[str], Completion]:
    deltas, final = [], None
    async for item in stream:
        if isinstance(item, Completion):
            final = item
        else:
            deltas.append(item)
    assert final is not None
    return deltas, final


class Flaky:
    """Streams 'a b c'; the first ``fail_before`` streams fail at once, ``fail_after`` more after one delta."""

    name = "flaky"
    can_stream = True

    def __init__(self, fail_before: int = 0, fail_after: int = 0):
        self.fail_before, self.fail_after, self.calls = fail_before, fail_after, 0

    async def complete(self, request):
        raise AssertionError("not used")

    async def stream(self, request):
        self.calls += 1
        if self.fail_before:
            self.fail_before -= 1
            raise BackendUnavailable("busy", backend=self.name)
        yield "a "
        if self.fail_after:
            self.fail_after -= 1
            raise BackendUnavailable("dropped", backend=self.name)
        yield "b c"
        yield Completion(texts=["a b c"], usage=Usage(3, 3))


def test_can_stream_sees_through_wrappers():
    assert not can_stream(FunctionBackend(lambda r, k: "x"))
    assert can_stream(FunctionBackend(lambda r, k: "x", streams=True))
    rt = Runtime(backends={"fake": FunctionBackend(lambda r, k: "x", streams=True), "plain": FunctionBackend(lambda r, k: "x")},
                 store=False)
    assert can_stream(rt.backend("fake")) and not can_stream(rt.backend("plain"))


async def test_a_streamed_call_is_recorded_once_then_replayed_from_the_cache_as_one_delta(tmp_path):
    be = FunctionBackend(lambda r, k: "one two three", streams=True)
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    rt = Runtime(backends={"fake": be}, store=store)
    chain = rt.backend("fake")
    deltas, final = await collect(chain.stream(ask()))
    assert deltas == ["one ", "two ", "three"] and final.texts == ["one two three"] and not final.cached
    again, replay = await collect(chain.stream(ask()))
    assert again == ["one two three"] and replay.cached and replay.usage == final.usage
    assert len(be.requests) == 1  # the replay issued no request
    await rt.aclose()
    rows = store.calls()
    assert [(r["cached"], r["status"]) for r in rows] == [(False, "ok"), (True, "ok")]
    assert rows[0]["completion_tokens"] == 3 and rows[0]["latency_ms"] > 0
    # and a plain complete() of the same request replays the streamed answer too
    rt2 = Runtime(backends={"fake": be}, store=store)
    assert (await rt2.backend("fake").complete(ask())).texts == ["one two three"]
    await rt2.aclose()


async def test_identical_streams_in_flight_are_sent_once():
    be = FunctionBackend(lambda r, k: "same answer", streams=True, delay=0.05)
    rt = Runtime(backends={"fake": be}, store="sqlite:///:memory:")
    results = await asyncio.gather(*(collect(rt.backend("fake").stream(ask())) for _ in range(3)))
    assert len(be.requests) == 1
    assert all("".join(d) == "same answer" for d, _ in results)
    assert sorted(f.cached for _, f in results) == [False, True, True]
    await rt.aclose()


async def test_retries_before_the_first_delta_never_after():
    flaky = Flaky(fail_before=2)
    deltas, final = await collect(RetryingBackend(flaky, max_retries=3, max_wait=0, base_wait=0).stream(ask()))
    assert "".join(deltas) == "a b c" and final.attempts == 3 and flaky.calls == 3

    flaky = Flaky(fail_after=1)
    seen = []
    with pytest.raises(BackendUnavailable) as info:
        async for item in RetryingBackend(flaky, max_retries=3, max_wait=0, base_wait=0).stream(ask()):
            seen.append(item)
    assert seen == ["a "] and flaky.calls == 1 and info.value.attempts == 1


async def test_a_failed_stream_is_recorded_as_an_error(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    rt = Runtime(backends={"flaky": Flaky(fail_after=5)}, store=store)
    with pytest.raises(BackendUnavailable):
        await collect(rt.backend("flaky").stream(ask()))
    await rt.aclose()
    (row,) = store.calls()
    assert row["status"] == "error" and "dropped" in row["error"]


async def test_a_stream_holds_its_concurrency_slot_until_its_last_delta():
    be = FunctionBackend(lambda r, k: "w1 w2 w3", streams=True, word_delay=0.02)
    limited = LimitedBackend(be, 1)
    order = []

    async def one(tag):
        async for item in limited.stream(ask(tag)):
            if isinstance(item, Completion):
                order.append(tag)

    await asyncio.gather(one("a"), one("b"))
    assert order == ["a", "b"] and len(be.requests) == 2


async def test_a_budget_meters_and_refuses_streams():
    be = FunctionBackend(lambda r, k: "x y", streams=True)
    budget = Budget(calls=1)
    rt = Runtime(backends={"fake": be}, store=False, budget=budget)
    await collect(rt.backend("fake").stream(ask()))
    assert budget.spent.calls == 1 and budget.spent.tokens > 0
    with pytest.raises(BudgetExhausted):
        await collect(rt.backend("fake").stream(ask("another")))


def srf(samples: int = 1) -> Pipeline:
    p = Pipeline("stream-me")
    d = p.add("draft", "generate", model="fake/small", samples=3)
    p.add("answer", "fuse", inputs=[d], model="fake/big", samples=samples)
    return p


async def test_a_run_streams_its_output_nodes_tokens_only():
    be = FunctionBackend(lambda r, k: "fused answer here" if "Candidate" in r.prompt_text() else f"draft {k}", streams=True)
    rt = Runtime(backends={"fake": be}, store=False)
    compiled = CompiledPipeline(srf().build())
    assert compiled.streams
    deltas: list[str] = []
    result = await compiled.run("q", rt, on_delta=deltas.append)
    assert deltas == ["fused ", "answer ", "here"] and result.output == "fused answer here"
    assert result.calls == 2 and result.usage.completion_tokens == 3 * 2 + 3

    # Two fused samples: the answer is the first of two calls' candidates, so nothing streams.
    many = CompiledPipeline(srf(samples=2).build())
    assert not many.streams
    deltas.clear()
    assert (await many.run("q", rt, on_delta=deltas.append)).output == "fused answer here"
    assert deltas == []
