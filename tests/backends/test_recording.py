"""The recording and caching wrappers, through their two small interfaces (``backends.ports``):
what rows reach the sink, and how a run's meter counts them."""

from __future__ import annotations

import pytest

from archon.exceptions import BackendError
from archon.records import CachedSample, CallRecord, RunTotals
from backends.base import CallMeta, CompletionRequest, Usage
from backends.doubles import FunctionBackend, ScriptedBackend
from backends.ports import CallSink, SampleCache
from backends.wrappers import CachedBackend, RecordingBackend


class ListSink:
    def __init__(self):
        self.rows: list[CallRecord] = []

    def record_call(self, record: CallRecord) -> None:
        self.rows.append(record)


class DictCache:
    def __init__(self):
        self.entries: dict[tuple[str, int], CachedSample] = {}

    async def get_samples(self, key, samples):
        return {k: self.entries[(key, k)] for k in samples if (key, k) in self.entries}

    def put_samples(self, entries):
        self.entries.update({(e.key, e.sample): e for e in entries})


class FlatPrice:
    def cost(self, backend, model, prompt_tokens, completion_tokens):
        return None if prompt_tokens is None or completion_tokens is None else 0.001 * (prompt_tokens + completion_tokens)


def request(meter: RunTotals, samples=(0,)) -> CompletionRequest:
    return CompletionRequest(model="m", messages=({"role": "user", "content": "hi"},), samples=samples,
                             meta=CallMeta("run", "node", None, meter))


def test_the_doubles_here_satisfy_the_ports():
    assert isinstance(ListSink(), CallSink) and isinstance(DictCache(), SampleCache)


async def test_recording_prices_and_meters_answered_and_failed_calls():
    sink, meter = ListSink(), RunTotals()
    ok = RecordingBackend(FunctionBackend(lambda r, k: "four"), sink, FlatPrice())
    done = await ok.complete(request(meter))
    assert done.cost_usd == pytest.approx(0.001 * done.usage.total_tokens)
    failing = RecordingBackend(ScriptedBackend([BackendError("boom")]), sink, FlatPrice())
    with pytest.raises(BackendError):
        await failing.complete(request(meter))
    assert [r.status for r in sink.rows] == ["ok", "error"]
    assert (sink.rows[0].run_id, sink.rows[0].node_id) == ("run", "node")
    assert meter.calls == 2 and meter.cost_usd == pytest.approx(done.cost_usd)  # a failed call counts, at no cost


async def test_a_partly_cached_request_counts_once_and_its_replay_is_logged_as_cached():
    sink, cache = ListSink(), DictCache()
    backend = FunctionBackend(lambda r, k: f"sample {k}")
    first = RunTotals()
    chain = CachedBackend(RecordingBackend(backend, sink, FlatPrice()), cache, sink)
    await chain.complete(request(first, samples=(0,)))
    assert (first.calls, first.cached_calls) == (1, 0) and len(cache.entries) == 1
    second = RunTotals()
    answer = await chain.complete(request(second, samples=(0, 1)))
    assert answer.texts == ["sample 0", "sample 1"]
    assert [(r.cached, r.n) for r in sink.rows[1:]] == [(False, 1), (True, 1)]  # the live part, then the replay
    assert (second.calls, second.cached_calls) == (1, 0)  # one request, partly cached: counted once, as live
    third = RunTotals()
    await chain.complete(request(third, samples=(0, 1)))
    assert (third.calls, third.cached_calls, third.cost_usd) == (1, 1, 0.0)


async def test_unknown_usage_stays_unknown_and_is_noted_once():
    sink, meter = ListSink(), RunTotals()
    chain = RecordingBackend(FunctionBackend(lambda r, k: "x", reports_usage=False), sink, FlatPrice())
    for _ in range(3):
        await chain.complete(request(meter))
    assert meter.usage == Usage(None, None) and meter.cost_usd is None and meter.calls == 3
    assert len(meter.notes) == 1 and "did not report token usage" in meter.notes[0]
    assert sink.rows[0].prompt_tokens is None and sink.rows[0].cost_usd is None


async def test_a_call_outside_any_run_is_recorded_but_metered_nowhere():
    sink = ListSink()
    chain = RecordingBackend(FunctionBackend(lambda r, k: "x"), sink)
    await chain.complete(CompletionRequest(model="m", prompt="hi", mode="completion"))
    assert len(sink.rows) == 1 and sink.rows[0].run_id is None and sink.rows[0].cost_usd is None
