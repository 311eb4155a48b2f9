"""The cache is per server: one backend name pointed at two servers never replays across them."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os

from archon.context import RunContext, Runtime
from archon.testing.fake_server import FakeOpenAIServer
from backends.base import CompletionRequest, request_key, server_identity
from backends.doubles import EchoBackend
from backends.local import LocalBackend
from backends.openai_compat import OpenAIBackend, normalize_base_url
from backends.presets import LocalSettings, OpenAISettings
from stores.store import CachedSample, get_store

REQUESTS = [CompletionRequest(model="m", messages=({"role": "user", "content": f"question {i}"},), samples=(0, 1))
            for i in range(3)]


def _ask(base_url: str, db: str) -> list[list[str]]:
    """Every request of REQUESTS through backend ``fast`` at ``base_url``, sharing the cache in ``db``."""

    async def go():
        rt = Runtime({"fast": OpenAISettings(base_url=base_url)}, store=db)
        try:
            ctx = RunContext(rt)
            return [(await ctx.complete("fast/m", r)).texts for r in REQUESTS]
        finally:
            await rt.aclose()

    return asyncio.run(go())


def test_one_backend_name_at_two_servers_never_replays_across_them(tmp_path):
    db = f"sqlite:///{tmp_path / 'c.db'}"
    with FakeOpenAIServer(reply=lambda p, k: f"A{k}: {p}") as a, FakeOpenAIServer(reply=lambda p, k: f"B{k}: {p}") as b:
        from_a = _ask(a.base_url, db)
        from_b = _ask(b.base_url, db)
        assert a.requests == len(REQUESTS) and b.requests == len(REQUESTS)  # each server was asked
        assert all(t.startswith("A") for ts in from_a for t in ts)
        assert all(t.startswith("B") for ts in from_b for t in ts)
        # The same server replays, however its URL is spelled: no request the second time.
        assert _ask(a.base_url + "/", db) == from_a and a.requests == len(REQUESTS)
        assert _ask(b.base_url.replace("http://", "HTTP://"), db) == from_b
        assert b.requests == len(REQUESTS)


def _old_key(backend: str, request: CompletionRequest) -> str:
    """The key scheme before the server was part of it (scheme 1): no server, no scheme number."""
    payload = {"backend": backend, "model": request.model, "mode": request.mode, "messages": list(request.messages),
               "prompt": request.prompt, "temperature": request.temperature, "max_tokens": request.max_tokens,
               "stop": list(request.stop), "logprobs": request.logprobs}
    raw = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()


def test_rows_cached_under_the_old_key_scheme_are_never_replayed(tmp_path):
    db = f"sqlite:///{tmp_path / 'c.db'}"
    with get_store(db) as store:
        store.cache_put([CachedSample(key=_old_key("fast", r), sample=k, backend="fast", model="m", text="stale")
                         for r in REQUESTS for k in r.samples])
    with FakeOpenAIServer(reply=lambda p, k: "fresh") as srv:
        texts = _ask(srv.base_url, db)
        assert srv.requests == len(REQUESTS)
    assert {t for ts in texts for t in ts} == {"fresh"}


def test_the_key_covers_the_server_and_never_the_api_key(monkeypatch):
    monkeypatch.setenv("K1", "sk-one")
    monkeypatch.setenv("K2", "sk-two")
    one = OpenAIBackend("fast", OpenAISettings(base_url="HTTP://User:pw@LocalHost:80/v1/", api_key_env="K1"))
    two = OpenAIBackend("fast", OpenAISettings(base_url="http://localhost/v1", api_key_env="K2"))
    other = OpenAIBackend("fast", OpenAISettings(base_url="http://localhost:8001/v1"))
    assert server_identity(one, "m") == server_identity(two, "m") == "openai:http://localhost/v1"
    assert "sk-" not in server_identity(one, "m") and "pw" not in server_identity(one, "m")
    keys = {request_key("fast", REQUESTS[0], server_identity(b, "m")) for b in (one, two, other)}
    assert len(keys) == 2
    assert normalize_base_url("https://api.example.com:443/v1//") == "https://api.example.com/v1"
    assert normalize_base_url("http://[::1]:8000/v1/") == "http://[::1]:8000/v1"


def test_backends_without_a_server_are_identified_by_their_class():
    assert server_identity(EchoBackend(), "m") == server_identity(EchoBackend(name="x"), "m") == "backends.doubles.EchoBackend"


def test_a_local_model_file_is_identified_by_path_size_and_mtime(tmp_path):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF one")
    backend = LocalBackend("local", LocalSettings())
    first = server_identity(backend, str(gguf))
    assert str(gguf) in first and first == server_identity(backend, str(gguf))
    gguf.write_bytes(b"GGUF two, longer")
    os.utime(gguf, ns=(1, 1))
    assert server_identity(backend, str(gguf)) != first
