"""OpenAIBackend against a real HTTP server on 127.0.0.1 (archon.testing.fake_server), faults included."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
import urllib.request

import openai
import pytest

from archon.exceptions import (
    BackendAuthError,
    BackendRateLimited,
    BackendRequestError,
    BackendResponseError,
    BackendTimeout,
    BackendUnavailable,
    ConfigError,
)
from archon.testing.fake_server import FakeOpenAIServer, default_reply
from backends.base import Backend, CompletionRequest
from backends.openai_compat import OpenAIBackend, parse_retry_after
from backends.presets import OpenAISettings

MODEL = "fake-model"


@pytest.fixture(scope="module")
def server():
    with FakeOpenAIServer() as srv:
        yield srv


@pytest.fixture
def srv(server):
    server.reset()
    server.reply, server.honor_n, server.delay = default_reply, True, 0.0
    yield server
    server.reset()
    server.reply, server.honor_n, server.delay = default_reply, True, 0.0


@pytest.fixture
async def backend(srv):
    b = OpenAIBackend("fast", OpenAISettings(base_url=srv.base_url, timeout=5))
    yield b
    await b.aclose()


def chat(text: str = "What is the capital of France?", **kw) -> CompletionRequest:
    return CompletionRequest(model=MODEL, messages=({"role": "user", "content": text},), **kw)


def words(text: str) -> int:
    return len(text.split())


# -- round trips --------------------------------------------------------------------------------


async def test_chat_round_trip(backend, srv):
    req = chat()
    out = await backend.complete(req)
    expected = default_reply(req.prompt_text(), 0)
    assert out.texts == [expected]
    assert out.usage.prompt_tokens == words(req.prompt_text())
    assert out.usage.completion_tokens == words(expected)
    assert out.finish_reasons == ["stop"]
    assert out.logprobs is None
    assert out.latency_ms > 0
    (entry,) = srv.log
    assert entry.path == "/v1/chat/completions"
    assert entry.body["model"] == MODEL
    assert entry.body["messages"] == [{"role": "user", "content": "What is the capital of France?"}]
    assert "stop" not in entry.body and "n" not in entry.body  # empty stop and n=1 are not sent
    assert isinstance(backend, Backend) and backend.name == "fast"


async def test_completion_mode_round_trip(backend, srv):
    req = CompletionRequest(model=MODEL, prompt="Once upon a time", mode="completion", max_tokens=50)
    out = await backend.complete(req)
    assert out.texts == [default_reply("Once upon a time", 0)]
    assert out.usage.prompt_tokens == 4
    (entry,) = srv.log
    assert entry.path == "/v1/completions"
    assert entry.body["prompt"] == "Once upon a time" and entry.body["max_tokens"] == 50


async def test_n_samples_in_one_request(backend, srv):
    req = chat(samples=(0, 1, 2))
    out = await backend.complete(req)
    assert out.texts == [default_reply(req.prompt_text(), i) for i in range(3)]
    assert srv.requests == 1 and srv.log[0].body["n"] == 3
    assert out.usage.completion_tokens == sum(words(t) for t in out.texts)


async def test_server_ignoring_n_gets_parallel_requests(backend, srv):
    srv.honor_n, srv.delay = False, 0.2
    req = chat(samples=(0, 1, 2, 3))
    started = time.monotonic()
    out = await backend.complete(req)
    elapsed = time.monotonic() - started
    assert len(out.texts) == 4 and out.finish_reasons == ["stop"] * 4
    assert srv.requests == 4  # the first (n=4) plus three n=1 requests
    assert [e.body.get("n", 1) for e in sorted(srv.log, key=lambda e: e.start)] == [4, 1, 1, 1]
    assert out.usage.prompt_tokens == 4 * words(req.prompt_text())  # usage summed over the requests
    assert elapsed < 0.2 * 3, "the missing samples should be asked for in parallel"

    # Learned: the next multi-sample call goes out as n parallel requests at once (one round trip).
    srv.reset()
    started = time.monotonic()
    out = await backend.complete(chat("another question", samples=(0, 1, 2, 3)))
    assert len(out.texts) == 4 and srv.requests == 4
    assert [e.body.get("n", 1) for e in srv.log] == [1, 1, 1, 1]
    assert time.monotonic() - started < 0.2 * 2


async def test_stop_is_sent_and_honoured(backend, srv):
    srv.reply = lambda prompt, i: "alpha beta END gamma"
    out = await backend.complete(chat(stop=("END", "zzz")))
    assert out.texts == ["alpha beta "]
    assert srv.log[0].body["stop"] == ["END", "zzz"]


async def test_top_p_and_seed_are_sent_seed_offset_by_the_first_sample(backend, srv):
    await backend.complete(chat(samples=(0, 1), top_p=0.9, seed=7))
    await backend.complete(chat(samples=(3, 4), top_p=0.9, seed=7))  # the cache asks only for the samples it lacks
    await backend.complete(chat())
    bodies = [e.body for e in srv.log]
    assert [(b.get("top_p"), b.get("seed")) for b in bodies] == [(0.9, 7), (0.9, 10), (None, None)]


def test_top_p_and_seed_are_part_of_the_cache_key_only_when_set():
    from backends.base import request_key

    plain = chat()
    keys = {request_key("fast", r) for r in (plain, chat(top_p=0.9), chat(seed=1), chat(seed=2))}
    assert len(keys) == 4
    # Unset, the key is what it was before the settings existed: earlier caches still replay
    # (tests/stores/test_migrations.py replays a store the landed main wrote).
    assert request_key("fast", plain) == request_key("fast", chat(top_p=None, seed=None))


async def test_chat_logprobs(backend, srv):
    out = await backend.complete(chat(samples=(0, 1), logprobs=2))
    body = srv.log[0].body
    assert body["logprobs"] is True and body["top_logprobs"] == 2
    assert out.logprobs is not None and len(out.logprobs) == 2
    for text, lps in zip(out.texts, out.logprobs):
        assert len(lps) == words(text) and all(isinstance(x, float) and x <= 0 for x in lps)


async def test_completion_logprobs(backend, srv):
    out = await backend.complete(CompletionRequest(model=MODEL, prompt="one two", mode="completion", logprobs=0))
    assert srv.log[0].body["logprobs"] == 0
    assert out.logprobs is not None and len(out.logprobs[0]) == words(out.texts[0])


async def test_concurrent_calls_overlap(backend, srv):
    srv.delay = 0.2
    started = time.monotonic()
    outs = await asyncio.gather(*(backend.complete(chat(f"question {i}")) for i in range(8)))
    assert time.monotonic() - started < 0.2 * 3
    assert [o.texts[0] for o in outs] == [default_reply(chat(f"question {i}").prompt_text(), 0) for i in range(8)]


# -- errors -------------------------------------------------------------------------------------


async def test_429_carries_retry_after(backend, srv):
    srv.fail_next(429, retry_after=1.5)
    with pytest.raises(BackendRateLimited) as info:
        await backend.complete(chat())
    err = info.value
    assert err.retry_after == 1.5 and err.retryable
    assert err.backend == "fast" and err.model == MODEL
    assert isinstance(err.__cause__, openai.RateLimitError)
    assert "backend 'fast', model 'fake-model'" in str(err)


async def test_429_retry_after_ms(backend, srv):
    srv.fail_next(429, headers={"retry-after-ms": "250"})
    with pytest.raises(BackendRateLimited) as info:
        await backend.complete(chat())
    assert info.value.retry_after == 0.25


async def test_500_is_unavailable(backend, srv):
    srv.fail_next(503, retry_after=2)
    with pytest.raises(BackendUnavailable) as info:
        await backend.complete(chat())
    assert info.value.retryable and info.value.retry_after == 2.0
    assert "503" in str(info.value)


async def test_401_names_the_key_variable(srv, monkeypatch):
    monkeypatch.setenv("FAST_API_KEY", "sk-wrong")
    b = OpenAIBackend("fast", OpenAISettings(base_url=srv.base_url, api_key_env="FAST_API_KEY"))
    srv.fail_next(401)
    with pytest.raises(BackendAuthError) as info:
        await b.complete(chat())
    await b.aclose()
    assert "FAST_API_KEY" in str(info.value) and "Incorrect API key" in str(info.value)
    assert not info.value.retryable
    assert srv.log[0].authorization == "Bearer sk-wrong"


@pytest.mark.parametrize("status", [400, 404, 422])
async def test_bad_request_includes_server_message(backend, srv, status):
    srv.fail_next(status, body={"error": {"message": "model 'nope' does not exist", "type": "x"}})
    with pytest.raises(BackendRequestError) as info:
        await backend.complete(chat())
    assert "model 'nope' does not exist" in str(info.value) and str(status) in str(info.value)
    assert not info.value.retryable


async def test_hang_times_out_quickly(srv):
    b = OpenAIBackend("fast", OpenAISettings(base_url=srv.base_url, timeout=0.5))
    srv.hang_next()
    started = time.monotonic()
    with pytest.raises(BackendTimeout) as info:
        await b.complete(chat())
    await b.aclose()
    assert time.monotonic() - started < 1.5
    assert "0.5 s" in str(info.value) and info.value.retryable
    assert isinstance(info.value.__cause__, openai.APITimeoutError)


async def test_non_json_200_is_a_response_error(backend, srv):
    # What the client itself does with such a body: a bare JSONDecodeError, not an openai error.
    client = openai.AsyncOpenAI(api_key="x", base_url=srv.base_url, max_retries=0)
    srv.garbage_next()
    with pytest.raises(json.JSONDecodeError):
        await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    await client.close()

    srv.garbage_next()
    with pytest.raises(BackendResponseError) as info:
        await backend.complete(chat())
    assert "the server's reply was not valid JSON: <html><body>502" in str(info.value)
    assert not info.value.retryable


@pytest.mark.parametrize("body", ['{"object": "chat.completion"}', '{"choices": []}', "[]", '{"choices": [1]}'])
async def test_reply_without_choices_is_a_response_error(backend, srv, body):
    srv.garbage_next(body=body)
    with pytest.raises(BackendResponseError):
        await backend.complete(chat())


async def test_refused_connection_is_unavailable():
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    b = OpenAIBackend("fast", OpenAISettings(base_url=f"http://127.0.0.1:{port}/v1", timeout=5))
    with pytest.raises(BackendUnavailable) as info:
        await b.complete(chat())
    await b.aclose()
    assert isinstance(info.value.__cause__, openai.APIConnectionError)


async def test_error_in_a_fallback_request_is_raised(backend, srv):
    srv.honor_n, srv.delay = False, 0.1
    task = asyncio.create_task(backend.complete(chat(samples=(0, 1))))
    while srv.requests < 1:  # the first request is in; script the fallback request to fail
        await asyncio.sleep(0.005)
    srv.fail_next(500)
    with pytest.raises(BackendUnavailable):
        await task
    assert srv.requests == 2


# -- keys ---------------------------------------------------------------------------------------


def test_missing_key_variable_is_a_config_error(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError) as info:
        OpenAIBackend("openai", OpenAISettings(base_url="http://127.0.0.1:9/v1", api_key_env="OPENAI_API_KEY"))
    assert str(info.value) == "backend 'openai' needs an API key: set the OPENAI_API_KEY environment variable"
    assert info.value.exit_code == 2


def test_key_lists_and_comma_separated_keys(monkeypatch):
    monkeypatch.setenv("K_A", "a1, a2")
    monkeypatch.setenv("K_B", "b1")
    monkeypatch.delenv("K_C", raising=False)
    b = OpenAIBackend("multi", OpenAISettings(base_url="http://127.0.0.1:9/v1", api_key_env=["K_A", "K_B"]))
    assert [c.api_key for c in b._clients] == ["a1", "a2", "b1"]
    with pytest.raises(ConfigError, match="K_C"):
        OpenAIBackend("multi", OpenAISettings(base_url="http://127.0.0.1:9/v1", api_key_env=["K_A", "K_C"]))
    monkeypatch.setenv("K_C", " , ")
    with pytest.raises(ConfigError, match="K_C holds no key"):
        OpenAIBackend("multi", OpenAISettings(base_url="http://127.0.0.1:9/v1", api_key_env="K_C"))


async def test_no_key_variable_sends_a_dummy_key(backend, srv):
    await backend.complete(chat())
    assert srv.log[0].authorization == "Bearer not-needed"


async def test_rate_limit_rotates_to_the_next_key(srv, monkeypatch):
    monkeypatch.setenv("FAST_KEYS", "key-one,key-two")
    b = OpenAIBackend("fast", OpenAISettings(base_url=srv.base_url, api_key_env="FAST_KEYS"))
    srv.fail_next(429)
    with pytest.raises(BackendRateLimited):
        await b.complete(chat())
    await b.complete(chat())
    await b.complete(chat())  # stays on the key that works
    srv.fail_next(429)
    with pytest.raises(BackendRateLimited):
        await b.complete(chat())
    await b.complete(chat())  # and wraps around
    await b.aclose()
    assert srv.authorizations() == ["Bearer key-one", "Bearer key-two", "Bearer key-two",
                                    "Bearer key-two", "Bearer key-one"]


def test_parse_retry_after():
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({}) is None and parse_retry_after(None) is None
    assert parse_retry_after({"retry-after": "soon"}) is None
    future = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 < parse_retry_after({"retry-after": future}) <= 31


# -- the fake server itself ---------------------------------------------------------------------


def test_models_endpoint(srv):
    with urllib.request.urlopen(f"{srv.base_url}/models", timeout=5) as resp:
        data = json.load(resp)
    assert data["data"][0]["id"] == MODEL


def test_runs_as_a_separate_process():
    cmd = [sys.executable, "-m", "archon.testing.fake_server", "--port", "0", "--delay", "0"]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as proc:
        try:
            base_url = proc.stdout.readline().strip()
            assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
            with urllib.request.urlopen(f"{base_url}/models", timeout=5) as resp:
                assert resp.status == 200
        finally:
            proc.terminate()
            proc.wait(timeout=10)


async def test_an_http_client_can_be_given_so_tests_need_no_socket():
    """``http_client=`` takes an httpx client; with ``httpx.MockTransport`` the seam is a plain function."""
    import httpx

    from archon.exceptions import BackendRateLimited

    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append((request.url.path, body["model"], request.headers.get("authorization")))
        if body["messages"][0]["content"] == "too fast":
            return httpx.Response(429, headers={"retry-after": "3"}, json={"error": {"message": "slow down"}})
        return httpx.Response(200, json={
            "id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}})

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    b = OpenAIBackend("fast", OpenAISettings(base_url="http://mock.invalid/v1"), http_client=client)
    try:
        ask = lambda text: CompletionRequest(model="m", messages=({"role": "user", "content": text},))  # noqa: E731
        done = await b.complete(ask("hi"))
        assert done.texts == ["hello"] and (done.usage.prompt_tokens, done.usage.completion_tokens) == (3, 1)
        with pytest.raises(BackendRateLimited) as info:
            await b.complete(ask("too fast"))
        assert info.value.retry_after == 3.0
        assert [s[:2] for s in seen] == [("/v1/chat/completions", "m")] * 2
    finally:
        await b.aclose()
