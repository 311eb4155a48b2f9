"""RetryingBackend: what is retried, how long it waits, and how attempts are reported."""

from __future__ import annotations

import asyncio
import time

import pytest

from archon.exceptions import (
    BackendAuthError,
    BackendError,
    BackendRateLimited,
    BackendTimeout,
    BackendUnavailable,
)
from archon.testing.fake_server import FakeOpenAIServer
from backends.base import Backend, Completion, CompletionRequest
from backends.openai_compat import OpenAIBackend
from backends.presets import OpenAISettings
from backends.retry import RetryingBackend

REQ = CompletionRequest(model="m", messages=({"role": "user", "content": "hi"},))


class Scripted:
    """Raises the scripted errors in turn, then answers; counts its calls."""

    def __init__(self, *errors: BaseException, name: str = "scripted"):
        self.name = name
        self.errors = list(errors)
        self.calls = 0

    async def complete(self, request: CompletionRequest) -> Completion:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return Completion(texts=["ok"])


class Sleeps:
    """A stand-in for asyncio.sleep that records the waits instead of waiting."""

    def __init__(self):
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def limited(retry_after=None):
    return BackendRateLimited("rate limited", retry_after=retry_after, backend="scripted", model="m")


async def test_retry_after_is_honoured_then_success():
    inner = Scripted(limited(0.1), limited(0.1))
    retrying = RetryingBackend(inner, max_retries=4, max_wait=5)
    started = time.monotonic()
    out = await retrying.complete(REQ)
    elapsed = time.monotonic() - started
    assert out.texts == ["ok"] and out.attempts == 3 and inner.calls == 3
    assert 0.2 <= elapsed < 1.0  # two real 0.1 s waits, not the exponential backoff


async def test_retry_after_waits_are_passed_to_sleep():
    sleeps = Sleeps()
    retrying = RetryingBackend(Scripted(limited(0.1), limited(0.3)), max_retries=4, max_wait=5, sleep=sleeps)
    out = await retrying.complete(REQ)
    assert out.attempts == 3 and sleeps.waits == [0.1, 0.3]


async def test_retry_after_is_capped_at_max_wait():
    sleeps = Sleeps()
    retrying = RetryingBackend(Scripted(limited(30)), max_retries=2, max_wait=0.5, sleep=sleeps)
    assert (await retrying.complete(REQ)).attempts == 2
    assert sleeps.waits == [0.5]


async def test_backoff_grows_with_jitter_and_is_capped():
    sleeps = Sleeps()
    errors = [BackendUnavailable("down") for _ in range(5)]
    retrying = RetryingBackend(Scripted(*errors), max_retries=5, max_wait=0.35, base_wait=0.05, sleep=sleeps)
    await retrying.complete(REQ)
    w = sleeps.waits
    assert len(w) == 5
    assert 0.05 <= w[0] <= 0.10 and 0.10 <= w[1] <= 0.15 and 0.20 <= w[2] <= 0.25
    assert w[3] == w[4] == 0.35


async def test_500_then_success_takes_two_attempts():
    retrying = RetryingBackend(Scripted(BackendUnavailable("502")), max_retries=3, max_wait=1, base_wait=0.01)
    out = await retrying.complete(REQ)
    assert out.attempts == 2


async def test_timeout_is_retried():
    retrying = RetryingBackend(Scripted(BackendTimeout("slow")), max_retries=1, max_wait=1, sleep=Sleeps())
    assert (await retrying.complete(REQ)).attempts == 2


async def test_auth_error_fails_at_once():
    inner = Scripted(BackendAuthError("bad key"))
    retrying = RetryingBackend(inner, max_retries=5, max_wait=10, base_wait=1)
    started = time.monotonic()
    with pytest.raises(BackendAuthError) as info:
        await retrying.complete(REQ)
    assert time.monotonic() - started < 0.5
    assert inner.calls == 1 and info.value.attempts == 1


async def test_exhausted_retries_raise_the_last_error_with_attempts():
    errors = [BackendUnavailable(f"down {i}") for i in range(10)]
    inner = Scripted(*errors)
    retrying = RetryingBackend(inner, max_retries=3, max_wait=1, sleep=Sleeps())
    with pytest.raises(BackendUnavailable) as info:
        await retrying.complete(REQ)
    assert info.value is errors[3] and info.value.attempts == 4 and inner.calls == 4


async def test_zero_retries_means_one_attempt():
    retrying = RetryingBackend(Scripted(limited(0.01)), max_retries=0, max_wait=1, sleep=Sleeps())
    with pytest.raises(BackendRateLimited) as info:
        await retrying.complete(REQ)
    assert info.value.attempts == 1


async def test_foreign_errors_are_not_retried():
    inner = Scripted(ValueError("a bug"))
    with pytest.raises(ValueError):
        await RetryingBackend(inner, max_retries=3, max_wait=1, sleep=Sleeps()).complete(REQ)
    assert inner.calls == 1


async def test_concurrent_calls_count_their_own_attempts():
    class PerPrompt:
        name = "per-prompt"

        def __init__(self):
            self.failures = {"a": 0, "b": 2, "c": 1}

        async def complete(self, request):
            key = request.messages[0]["content"]
            await asyncio.sleep(0)
            if self.failures[key]:
                self.failures[key] -= 1
                raise BackendUnavailable("down")
            return Completion(texts=[key])

    retrying = RetryingBackend(PerPrompt(), max_retries=3, max_wait=0.01, base_wait=0.001)
    reqs = [CompletionRequest(model="m", messages=({"role": "user", "content": k},)) for k in "abc"]
    outs = await asyncio.gather(*(retrying.complete(r) for r in reqs))
    assert [o.attempts for o in outs] == [1, 3, 2]


def test_wrapper_is_a_backend_with_the_inner_name():
    retrying = RetryingBackend(Scripted(name="fast"), max_retries=1, max_wait=1)
    assert isinstance(retrying, Backend) and retrying.name == "fast"


# -- over HTTP ----------------------------------------------------------------------------------


async def test_over_http_rate_limits_then_success_uses_the_next_key(monkeypatch):
    monkeypatch.setenv("FAST_KEYS", "key-one,key-two")
    with FakeOpenAIServer() as srv:
        inner = OpenAIBackend("fast", OpenAISettings(base_url=srv.base_url, api_key_env="FAST_KEYS"))
        retrying = RetryingBackend(inner, max_retries=4, max_wait=5)
        srv.fail_next(429, times=2, retry_after=0.1)
        started = time.monotonic()
        out = await retrying.complete(REQ)
        elapsed = time.monotonic() - started
        await retrying.aclose()
    assert out.attempts == 3 and srv.requests == 3
    assert 0.2 <= elapsed < 1.5
    assert srv.authorizations() == ["Bearer key-one", "Bearer key-two", "Bearer key-one"]


async def test_over_http_401_is_not_retried(monkeypatch):
    monkeypatch.setenv("FAST_API_KEY", "wrong")
    with FakeOpenAIServer() as srv:
        inner = OpenAIBackend("fast", OpenAISettings(base_url=srv.base_url, api_key_env="FAST_API_KEY"))
        srv.fail_next(401, times=5)
        started = time.monotonic()
        with pytest.raises(BackendError) as info:
            await RetryingBackend(inner, max_retries=4, max_wait=5).complete(REQ)
        await inner.aclose()
    assert isinstance(info.value, BackendAuthError) and "FAST_API_KEY" in str(info.value)
    assert info.value.attempts == 1 and srv.requests == 1
    assert time.monotonic() - started < 1.0
