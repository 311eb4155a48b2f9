"""The backend for any OpenAI-compatible server: OpenAI itself, Together, Groq, vLLM, Ollama, llama.cpp.

Built on ``openai.AsyncOpenAI`` with the client's own retries switched off: retrying is
``backends.retry.RetryingBackend``'s job, and two retry loops would multiply each other. Every error
the client raises is translated here into Archon's tree (``archon.exceptions``) with ``from exc``.

Replies are read raw and decoded here rather than through the client's pydantic models: a body that
is not JSON then becomes a clear ``BackendResponseError`` (the client lets a bare ``JSONDecodeError``
escape), and the hot path skips building models only to take three fields out of them.

``reward`` scores a conversation with a reward model through vLLM's Classification API: a POST of
``{"model", "messages"}`` to ``/classify`` at the server's root (the base URL without its ``/v1``),
where vLLM applies the model's chat template and answers ``data[0].probs``, the class probabilities
(one value, the sigmoid of the reward, for a one-output reward model such as Skywork-Reward-V2).

``stream`` (one sample) asks the server for ``stream: true`` with ``stream_options.include_usage``
and yields the text deltas as they arrive, then the whole ``Completion``. A server that reports no
usage (in a reply or its stream) leaves the usage unknown (``None``), never zero.
"""

from __future__ import annotations

__all__ = ["OpenAIBackend", "normalize_base_url", "parse_retry_after"]

import asyncio
import email.utils
import json
import os
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import openai

from archon.exceptions import (
    BackendAuthError,
    BackendError,
    BackendRateLimited,
    BackendRequestError,
    BackendResponseError,
    BackendTimeout,
    BackendUnavailable,
    ConfigError,
)
from backends.base import Completion, CompletionRequest, StreamItem, Usage
from backends.presets import OpenAISettings

# Local servers (Ollama, vLLM without --api-key) ignore the key, but the client insists on one.
_NO_KEY = "not-needed"


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date), else None."""
    if not headers:
        return None
    for header, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(header)
        if value is None:
            continue
        try:
            return max(0.0, float(value) / scale)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())
    return None


_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_base_url(url: str) -> str:
    """``url`` as a server identity: scheme and host lowercased, default port, credentials, fragment
    and trailing slashes dropped, so spellings of one server share a cache and no secret enters a key."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"  # IPv6
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path.rstrip("/"), parts.query, ""))


def _read_keys(backend: str, api_key_env: str | list[str] | None) -> tuple[list[str], list[str]]:
    """(variable names, keys). A variable may hold several comma-separated keys."""
    names = [api_key_env] if isinstance(api_key_env, str) else list(api_key_env or [])
    if not names:
        return [], [_NO_KEY]
    missing = [n for n in names if not os.environ.get(n, "").strip()]
    if missing:
        which = f"the {missing[0]} environment variable" if len(missing) == 1 else (
            "the " + ", ".join(missing) + " environment variables")
        raise ConfigError(f"backend '{backend}' needs an API key: set {which}")
    keys = [k.strip() for n in names for k in os.environ[n].split(",") if k.strip()]
    if not keys:
        raise ConfigError(f"backend '{backend}' needs an API key: " + ", ".join(names) + " holds no key")
    return names, keys


def _server_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, Mapping) and isinstance(body.get("message"), str):
        return body["message"]
    if isinstance(body, str) and body.strip():
        return body.strip()[:200]
    return exc.message


class OpenAIBackend:
    """A Backend talking to one OpenAI-compatible server, rotating API keys on rate limits."""

    #: The ``backends:`` entries of kind ``openai`` are parsed with this model.
    Settings = OpenAISettings

    def __init__(self, name: str, spec: OpenAISettings, *, http_client: httpx.AsyncClient | None = None):
        """``http_client`` replaces the HTTP client the ``openai`` library would make (a proxy, custom
        TLS, or ``httpx.MockTransport`` in tests); the backend then owns it and closes it."""
        self.name = name
        self.spec = spec
        self.key_vars, keys = _read_keys(name, spec.api_key_env)
        self._clients = [
            openai.AsyncOpenAI(api_key=key, base_url=spec.base_url, timeout=spec.timeout, max_retries=0,
                               # openai>=3 types this as httpx2's client; an httpx client is used the
                               # same way (tests/backends/test_openai_compat.py runs one over MockTransport)
                               http_client=http_client)  # type: ignore[arg-type]
            for key in keys
        ]
        self._current = 0
        # Learned on the first multi-sample call: a server that ignores ``n`` gets n parallel
        # requests from then on, rather than one request and then the rest (an extra round trip).
        self._ignores_n = False
        self._identity = f"{spec.kind}:{normalize_base_url(str(self._clients[0].base_url))}"

    def cache_identity(self, model: str) -> str:
        """The server, for the cache key: the client's resolved URL (``OPENAI_BASE_URL`` included), never a key."""
        return self._identity

    def __repr__(self) -> str:
        return f"OpenAIBackend({self.name!r}, base_url={self.spec.base_url!r}, keys={len(self._clients)})"

    async def aclose(self) -> None:
        await asyncio.gather(*(c.close() for c in self._clients))

    async def complete(self, request: CompletionRequest) -> Completion:
        started = time.perf_counter()
        n = request.n
        if self._ignores_n and n > 1:
            samples, usage = [], Usage()
            missing = n
        else:
            body = await self._post(request, n)
            samples = self._read(body, request)[:n]
            usage = self._usage(body)
            missing = n - len(samples)
            if missing > 0 and len(samples) == 1:
                self._ignores_n = True
        if missing > 0:
            # The server ignores ``n`` and answers once; ask for the rest, all at once.
            extra = await asyncio.gather(*(self._post(request, 1) for _ in range(missing)),
                                         return_exceptions=True)
            for result in extra:
                if isinstance(result, BaseException):
                    raise result
                samples += self._read(result, request)[:1]
                usage = usage + self._usage(result)
        return Completion(
            texts=[s[0] for s in samples],
            usage=usage,
            logprobs=[s[1] for s in samples] if request.logprobs is not None else None,
            finish_reasons=[s[2] for s in samples],
            latency_ms=(time.perf_counter() - started) * 1000.0,
        )

    async def reward(self, request: CompletionRequest) -> Completion:
        """The reward model's class probabilities for ``request.messages``, as one JSON-list text."""
        started = time.perf_counter()
        index = self._current
        client = self._clients[index]
        try:
            raw = await client.post(self._classify_url, body={"model": request.model, "messages": list(request.messages)},
                                    cast_to=httpx.Response)
        except openai.APIError as exc:
            raise self._failed(exc, request, index) from exc
        try:
            body = json.loads(raw.content)
            probs = [float(p) for p in body["data"][0]["probs"]]
            if not probs:
                raise ValueError("no probabilities")
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            snippet = raw.content[:200].decode("utf-8", "replace")
            raise BackendResponseError(f"the server's /classify reply has no data[0].probs (is it a vLLM server with "
                                       f"a reward or classification model?): {snippet}", backend=self.name,
                                       model=request.model) from exc
        usage = self._usage(body)
        return Completion(texts=[json.dumps(probs)], usage=Usage(usage.prompt_tokens, 0),
                          latency_ms=(time.perf_counter() - started) * 1000.0)

    @property
    def _classify_url(self) -> str:
        # vLLM serves /classify beside /v1, not under it.
        root = str(self._clients[0].base_url).rstrip("/").removesuffix("/v1")
        return f"{root}/classify"

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamItem]:
        """One sample's text deltas as the server sends them, then the whole ``Completion``."""
        if request.n != 1:
            raise BackendRequestError("a stream is for one sample", backend=self.name, model=request.model)
        started = time.perf_counter()
        index = self._current
        client = self._clients[index]
        params = self._params(request, 1)
        for unsupported in ("logprobs", "top_logprobs"):  # a streamed answer is text only
            params.pop(unsupported, None)
        params.update(stream=True, stream_options={"include_usage": True})
        chat = request.mode == "chat"
        texts: list[str] = []
        usage, finish = Usage(None, None), None
        try:
            events = await (client.chat.completions.create(**params) if chat else client.completions.create(**params))
            async with events:  # closes the connection when the stream is abandoned
                async for chunk in events:
                    if chunk.usage is not None:
                        usage = Usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
                    for choice in chunk.choices:
                        finish = choice.finish_reason or finish
                        text = (choice.delta.content if chat else choice.text) or ""
                        if text and choice.index == 0:
                            texts.append(text)
                            yield text
        except openai.APIError as exc:
            raise self._failed(exc, request, index) from exc
        yield Completion(texts=["".join(texts)], usage=usage, finish_reasons=[finish],
                         latency_ms=(time.perf_counter() - started) * 1000.0)

    # -- one HTTP call -------------------------------------------------------------------------

    def _params(self, request: CompletionRequest, n: int) -> dict[str, Any]:
        params: dict[str, Any] = {"model": request.model, "temperature": request.temperature}
        if n != 1:
            params["n"] = n
        if request.top_p is not None:
            params["top_p"] = request.top_p
        if request.seed is not None:  # samples k.. of a seeded request: its own seed, so they differ from 0..
            params["seed"] = request.seed + request.samples[0]
        if request.max_tokens is not None:
            params["max_tokens"] = request.max_tokens
        if request.stop:
            params["stop"] = list(request.stop)
        if request.mode == "chat":
            messages = list(request.messages)
            if not messages and request.prompt is not None:
                messages = [{"role": "user", "content": request.prompt}]
            params["messages"] = messages
            if request.logprobs is not None:
                params["logprobs"] = True
                params["top_logprobs"] = request.logprobs
        else:
            prompt = request.prompt
            if prompt is None:
                prompt = "\n\n".join(m["content"] for m in request.messages)
            params["prompt"] = prompt
            if request.logprobs is not None:
                params["logprobs"] = request.logprobs
        return params

    async def _post(self, request: CompletionRequest, n: int) -> dict[str, Any]:
        index = self._current
        client = self._clients[index]
        params = self._params(request, n)
        path = "/chat/completions" if request.mode == "chat" else "/completions"
        try:
            # The client's generic post: its auth, base URL, timeout and status errors, without
            # ``create``'s recursive transform of the typed params, which costs ~0.5 ms per call
            # and dominates the client's CPU at high concurrency. The params are plain JSON already.
            raw = await client.post(path, body=params, cast_to=httpx.Response)
        except openai.APIError as exc:
            raise self._failed(exc, request, index) from exc
        return self._decode(raw.content, request)

    def _failed(self, exc: openai.APIError, request: CompletionRequest, index: int) -> Exception:
        """Archon's error for ``exc``; a 429 on key ``index`` moves on to the next key."""
        # Move on only from the key that was refused, so a burst of 429s on one key rotates once.
        if isinstance(exc, openai.RateLimitError) and self._current == index:
            self._current = (index + 1) % len(self._clients)
        return self._translate(exc, request)

    def _decode(self, content: bytes, request: CompletionRequest) -> dict[str, Any]:
        where: dict[str, Any] = {"backend": self.name, "model": request.model}
        try:
            body = json.loads(content)
        except ValueError as exc:
            snippet = content[:200].decode("utf-8", "replace")
            raise BackendResponseError(f"the server's reply was not valid JSON: {snippet}", **where) from exc
        if not isinstance(body, dict) or not isinstance(body.get("choices"), list) or not body["choices"]:
            snippet = content[:200].decode("utf-8", "replace")
            raise BackendResponseError(f"the server's reply has no choices: {snippet}", **where)
        return body

    def _translate(self, exc: openai.APIError, request: CompletionRequest) -> BackendError:
        where: dict[str, Any] = {"backend": self.name, "model": request.model}
        if isinstance(exc, openai.APITimeoutError):
            return BackendTimeout(
                f"no reply within {self.spec.timeout:g} s (raise 'timeout' in the backend settings "
                "if the model is this slow)", **where)
        if isinstance(exc, openai.APIConnectionError):
            return BackendUnavailable(f"could not reach {self.spec.base_url or 'the server'}: {exc.message}",
                                      **where)
        if not isinstance(exc, openai.APIStatusError):
            return BackendError(f"{type(exc).__name__}: {exc}", **where)
        status, message = exc.status_code, _server_message(exc)
        retry_after = parse_retry_after(exc.response.headers)
        if status in (401, 403):
            if self.key_vars:
                fix = "check the " + ", ".join(self.key_vars) + (
                    " environment variable" if len(self.key_vars) == 1 else " environment variables")
            else:
                fix = "set api_key_env in the backend settings to the variable that holds the key"
            return BackendAuthError(f"the server refused the API key ({status}: {message}); {fix}", **where)
        if status == 429:
            return BackendRateLimited(f"rate limited (429): {message}", retry_after=retry_after, **where)
        if status >= 500 or status in (408, 409):
            return BackendUnavailable(f"server error ({status}): {message}", retry_after=retry_after, **where)
        return BackendRequestError(f"the server rejected the request ({status}): {message}", **where)

    # -- reading a reply -----------------------------------------------------------------------

    def _read(self, body: dict[str, Any], request: CompletionRequest) -> list[tuple[str, list[float], str | None]]:
        """(text, token logprobs, finish reason) per choice, in the server's index order."""
        try:
            choices = sorted(body["choices"], key=lambda c: c.get("index") or 0)
            return [(self._text(c, request), self._logprobs(c, request), c.get("finish_reason"))
                    for c in choices]
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            snippet = json.dumps(body)[:200]
            raise BackendResponseError(f"the server's reply has an unexpected shape: {snippet}",
                                       backend=self.name, model=request.model) from exc

    @staticmethod
    def _text(choice: dict[str, Any], request: CompletionRequest) -> str:
        if request.mode == "chat":
            return (choice.get("message") or {}).get("content") or ""
        return choice.get("text") or ""

    @staticmethod
    def _logprobs(choice: dict[str, Any], request: CompletionRequest) -> list[float]:
        if request.logprobs is None:
            return []
        lp = choice.get("logprobs") or {}
        if request.mode == "chat":
            return [float(t["logprob"]) for t in lp.get("content") or () if t.get("logprob") is not None]
        return [float(x) for x in lp.get("token_logprobs") or () if x is not None]

    @staticmethod
    def _usage(body: dict[str, Any]) -> Usage:
        # A count the server left out (or garbled) is unknown: never zero, and never a failed call.
        usage = body.get("usage")
        if not isinstance(usage, dict):
            return Usage(None, None)
        return Usage(_count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens")))


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        return int(value)
    except ValueError:
        return None
