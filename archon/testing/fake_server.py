"""A real OpenAI-compatible HTTP server on 127.0.0.1, for tests and benchmarks.

It answers deterministically (``reply(prompt_text, index)``), so a test can predict every text, and it
can be told to misbehave the way real servers do: a status code with an OpenAI-shaped error body, a
request that never answers, a 200 whose body is not JSON, a stream that breaks off. Everything goes
over real HTTP, so the client's own parsing and error paths are what gets exercised.

With ``reward=fn`` it also serves vLLM's Classification API at ``/classify`` (beside ``/v1``, as vLLM
does): ``fn(messages)`` gives the class probabilities of the conversation, answered as ``data[0].probs``.

``stream: true`` is answered with server-sent events as OpenAI sends them: the reply word by word
(``chunk_delay`` seconds apart), a chunk with the finish reason, a usage chunk when
``stream_options.include_usage`` asks for it, then ``data: [DONE]``.

    with FakeOpenAIServer(delay=0.2) as srv:
        spec = OpenAISettings(base_url=srv.base_url)
        ...
        srv.fail_next(429, retry_after=0.1)

As a separate process (benchmarks): ``python -m archon.testing.fake_server --port 8123 --delay 0.05``; it
prints its base URL on one line once it is listening.
"""

from __future__ import annotations

__all__ = ["FakeOpenAIServer", "LogEntry", "ReplyFn", "RewardFn", "default_reply"]

import argparse
import asyncio
import json
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:  # imported when a server starts: the doubles and suites need no web stack
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

ReplyFn = Callable[[str, int], str]
#: A scripted reward model: a conversation's messages -> its class probabilities.
RewardFn = Callable[[list[dict[str, Any]]], list[float]]

# A hung request still gives up eventually, so a forgotten hang cannot keep a test process alive.
_HANG_LIMIT = 120.0


def default_reply(prompt_text: str, index: int) -> str:
    return f"answer {index} to: {prompt_text[-40:]}"


class LogEntry(NamedTuple):
    """One request as the server saw it; times are ``time.monotonic()`` in this process (for a
    stream, ``end`` is when its first byte was ready, not its last)."""

    start: float
    end: float
    path: str
    body: Any
    authorization: str | None


@dataclass(frozen=True, slots=True)
class _Fault:
    kind: str  # "status" | "hang" | "garbage" | "break" (a stream cut off by an error event)
    status: int = 200
    retry_after: float | None = None
    body: Any = None
    headers: dict[str, str] | None = None


def _error_body(status: int, message: str | None = None) -> dict[str, Any]:
    kinds = {
        400: "invalid_request_error", 401: "invalid_api_key", 403: "permission_denied",
        404: "not_found", 422: "invalid_request_error", 429: "rate_limit_exceeded",
    }
    kind = kinds.get(status, "server_error")
    if message is None:
        message = {
            401: "Incorrect API key provided.",
            429: "Rate limit reached for requests.",
        }.get(status, f"fake server error {status}")
    return {"error": {"message": message, "type": kind, "param": None, "code": kind}}


def _prompt_of_messages(messages: list[dict[str, Any]]) -> str:
    # Same shape as CompletionRequest.prompt_text(), so a test can predict replies from its request.
    return "\n\n".join(f"[{m.get('role', '')}]\n{m.get('content', '')}" for m in messages)


def _cut(text: str, stop: Any, max_tokens: Any) -> tuple[str, str]:
    """The reply after ``stop`` and ``max_tokens`` (counted in words), and its finish reason."""
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    cuts = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    if cuts:
        return text[: min(cuts)], "stop"
    words = text.split()
    if isinstance(max_tokens, int) and 0 <= max_tokens < len(words):
        return " ".join(words[:max_tokens]), "length"
    return text, "stop"


def _fake_logprob(i: int, token: str) -> float:
    return -round(0.05 * ((i + len(token)) % 7), 4)


def _chat_logprobs(text: str, top: int) -> dict[str, Any]:
    content = []
    for i, tok in enumerate(text.split()):
        lp = _fake_logprob(i, tok)
        alts = [{"token": tok, "logprob": lp, "bytes": None}]
        alts += [{"token": f"{tok}~{k}", "logprob": lp - k, "bytes": None} for k in range(1, top)]
        content.append({"token": tok, "logprob": lp, "bytes": None, "top_logprobs": alts[:top]})
    return {"content": content, "refusal": None}


def _completion_logprobs(text: str, top: int) -> dict[str, Any]:
    tokens = text.split()
    lps = [_fake_logprob(i, t) for i, t in enumerate(tokens)]
    offsets, pos = [], 0
    for tok in tokens:
        pos = text.find(tok, pos)
        offsets.append(pos)
        pos += len(tok)
    tops = [{t: lp} for t, lp in zip(tokens, lps)] if top > 0 else None
    return {"tokens": tokens, "token_logprobs": lps, "top_logprobs": tops, "text_offset": offsets}


class FakeOpenAIServer:
    """An OpenAI-compatible server in a background thread; use it as a context manager.

    ``reply`` computes each choice's text from the prompt and the choice index; ``delay`` seconds
    are slept per request (concurrent requests overlap); ``honor_n=False`` imitates servers that
    return one choice whatever ``n`` asks for. ``usage`` names the usage fields replies report
    (``()``: no ``usage`` at all, as some servers do), to test that missing counts stay unknown.
    """

    def __init__(self, *, reply: ReplyFn = default_reply, delay: float = 0.0, honor_n: bool = True,
                 host: str = "127.0.0.1", port: int = 0, models: tuple[str, ...] = ("fake-model",),
                 chunk_delay: float = 0.0, usage: tuple[str, ...] = ("prompt_tokens", "completion_tokens", "total_tokens"),
                 reward: RewardFn | None = None):
        self.reply = reply
        self.reward = reward
        self.usage = usage
        self.delay = delay
        self.chunk_delay = chunk_delay
        self.honor_n = honor_n
        self.host = host
        self.port = port
        self.models = models
        self.requests = 0
        self.log: list[LogEntry] = []
        self._faults: deque[_Fault] = deque()
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing: asyncio.Event | None = None

    @cached_property
    def app(self) -> Starlette:
        """The ASGI app (served by ``start``, or mounted in someone else's server)."""
        from starlette.applications import Starlette
        from starlette.routing import Route

        return Starlette(routes=[
            Route("/v1/chat/completions", self._handle, methods=["POST"]),
            Route("/v1/completions", self._handle, methods=["POST"]),
            Route("/v1/models", self._models, methods=["GET"]),
            Route("/classify", self._handle, methods=["POST"]),
        ])

    # -- scripting ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def fail_next(self, status: int, times: int = 1, retry_after: float | None = None, body: Any = None,
                  headers: dict[str, str] | None = None) -> None:
        """Answer the next ``times`` requests with ``status`` (an OpenAI-shaped error body by default)."""
        self._queue(_Fault("status", status, retry_after, body, headers), times)

    def hang_next(self, times: int = 1) -> None:
        """Never answer the next ``times`` requests (until the server stops)."""
        self._queue(_Fault("hang"), times)

    def garbage_next(self, times: int = 1, body: str = "<html><body>502 upstream hiccup</body></html>") -> None:
        """Answer the next ``times`` requests 200 with content-type application/json and a non-JSON body."""
        self._queue(_Fault("garbage", body=body), times)

    def break_stream_next(self, times: int = 1) -> None:
        """Cut the next ``times`` streams after their first word with an error event (as OpenAI does)."""
        self._queue(_Fault("break"), times)

    def reset(self) -> None:
        """Forget the counters, the log and any queued faults."""
        with self._lock:
            self.requests = 0
            self.log.clear()
            self._faults.clear()

    def authorizations(self) -> list[str | None]:
        """The Authorization header of each logged request, in arrival order."""
        return [e.authorization for e in sorted(self.log, key=lambda e: e.start)]

    def _queue(self, fault: _Fault, times: int) -> None:
        with self._lock:
            self._faults.extend([fault] * times)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeOpenAIServer:
        import uvicorn

        # Binding here, before uvicorn starts, makes port 0 race-free and tells us the port at once.
        # proto=IPPROTO_TCP matters: asyncio switches Nagle off only on sockets that say they are TCP,
        # and with Nagle on, every reply waits ~40 ms for a delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=2)
        self._server = server = uvicorn.Server(config)

        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            self._closing = asyncio.Event()
            await server.serve(sockets=[sock])

        self._thread = threading.Thread(target=asyncio.run, args=(serve(),), name="fake-openai", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the fake OpenAI server did not start on {self.base_url}")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        if self._loop is not None and self._closing is not None:
            self._loop.call_soon_threadsafe(self._closing.set)  # releases hung requests
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- handlers ----------------------------------------------------------------------------

    async def _models(self, request: Request) -> Response:
        from starlette.responses import JSONResponse

        data = [{"id": m, "object": "model", "created": 0, "owned_by": "archon"} for m in self.models]
        return JSONResponse({"object": "list", "data": data})

    async def _handle(self, request: Request) -> Response:
        start = time.monotonic()
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        with self._lock:
            self.requests += 1
            fault = self._faults.popleft() if self._faults else None
        try:
            if self.delay > 0:
                await asyncio.sleep(self.delay)
            return await self._answer(request.url.path, body, fault)
        finally:
            entry = LogEntry(start, time.monotonic(), request.url.path, body, request.headers.get("authorization"))
            with self._lock:
                self.log.append(entry)

    async def _answer(self, path: str, body: Any, fault: _Fault | None) -> Response:
        from starlette.responses import JSONResponse, Response, StreamingResponse

        if fault is not None and fault.kind != "break":
            if fault.kind == "hang":
                if self._closing is None:  # the app is served by someone else's uvicorn
                    await asyncio.sleep(_HANG_LIMIT)
                else:
                    try:
                        await asyncio.wait_for(self._closing.wait(), _HANG_LIMIT)
                    except TimeoutError:
                        pass
                return JSONResponse(_error_body(503, "the server was hanging"), status_code=503)
            if fault.kind == "garbage":
                return Response(fault.body, status_code=200, media_type="application/json")
            headers = dict(fault.headers or {})
            if fault.retry_after is not None:
                headers["retry-after"] = f"{fault.retry_after:g}"
            payload = fault.body if fault.body is not None else _error_body(fault.status)
            if isinstance(payload, str | bytes):
                return Response(payload, status_code=fault.status, headers=headers, media_type="application/json")
            return JSONResponse(payload, status_code=fault.status, headers=headers)
        if not isinstance(body, dict):
            return JSONResponse(_error_body(400, "the request body is not a JSON object"), status_code=400)
        if path == "/classify":
            return self._classify(body)
        chat = path.endswith("/chat/completions")
        if chat:
            messages = body.get("messages")
            if not isinstance(messages, list) or not messages:
                return JSONResponse(_error_body(400, "'messages' is required"), status_code=400)
            prompt = _prompt_of_messages(messages)
        else:
            given = body.get("prompt")
            given = given[0] if isinstance(given, list) and given else given
            if not isinstance(given, str):
                return JSONResponse(_error_body(400, "'prompt' is required"), status_code=400)
            prompt = given
        answer = self._completion(chat, prompt, body)
        if body.get("stream"):
            broken = fault is not None and fault.kind == "break"
            return StreamingResponse(self._events(chat, answer, body, broken), media_type="text/event-stream")
        return JSONResponse(answer)

    def _classify(self, body: dict[str, Any]) -> Response:
        from starlette.responses import JSONResponse

        messages = body.get("messages")
        if self.reward is None:
            return JSONResponse(_error_body(400, "The model does not support Classification API"), status_code=400)
        if not isinstance(messages, list) or not messages:
            return JSONResponse(_error_body(400, "'messages' is required"), status_code=400)
        probs = self.reward(messages)
        tokens = len(_prompt_of_messages(messages).split())
        return JSONResponse({
            "id": f"classify-{self.requests}", "object": "list", "created": 0, "model": body.get("model"),
            "data": [{"index": 0, "label": "LABEL_0", "probs": probs, "num_classes": len(probs)}],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens, "completion_tokens": 0},
        })

    async def _events(self, chat: bool, answer: dict[str, Any], body: dict[str, Any], broken: bool):
        """``answer`` (a whole completion) as the chunks a streaming server sends, word by word."""
        kind = "chat.completion.chunk" if chat else "text_completion"
        head = {"id": answer["id"], "object": kind, "created": answer["created"], "model": answer["model"]}

        def event(choices: list[dict[str, Any]], **extra: Any) -> bytes:
            return b"data: " + json.dumps({**head, "choices": choices, **extra}).encode() + b"\n\n"

        def piece(i: int, text: str, finish: str | None = None, role: bool = False) -> dict[str, Any]:
            if not chat:
                return {"index": i, "text": text, "finish_reason": finish, "logprobs": None}
            delta = {"role": "assistant", "content": text} if role else ({"content": text} if text else {})
            return {"index": i, "delta": delta, "finish_reason": finish, "logprobs": None}

        for choice in answer["choices"]:
            i = choice["index"]
            text = choice["message"]["content"] if chat else choice["text"]
            if chat:
                yield event([piece(i, "", role=True)])
            for n, word in enumerate(re.findall(r"\s*\S+\s*|\s+", text)):
                if self.chunk_delay > 0:
                    await asyncio.sleep(self.chunk_delay)
                yield event([piece(i, word)])
                if broken and n == 0:
                    yield b"data: " + json.dumps(_error_body(500, "the stream broke off")).encode() + b"\n\n"
                    return
            yield event([piece(i, "", choice["finish_reason"])])
        if (body.get("stream_options") or {}).get("include_usage") and "usage" in answer:
            yield event([], usage=answer["usage"])
        yield b"data: [DONE]\n\n"

    def _completion(self, chat: bool, prompt: str, body: dict[str, Any]) -> dict[str, Any]:
        n = body.get("n") or 1
        n = n if self.honor_n else 1
        choices, used = [], 0
        for i in range(n):
            text, finish = _cut(self.reply(prompt, i), body.get("stop"), body.get("max_tokens"))
            used += len(text.split())
            if chat:
                choice: dict[str, Any] = {"index": i, "message": {"role": "assistant", "content": text},
                                          "finish_reason": finish, "logprobs": None}
                if body.get("logprobs"):
                    choice["logprobs"] = _chat_logprobs(text, int(body.get("top_logprobs") or 0))
            else:
                choice = {"index": i, "text": text, "finish_reason": finish, "logprobs": None}
                if body.get("logprobs") is not None:
                    choice["logprobs"] = _completion_logprobs(text, int(body["logprobs"]))
            choices.append(choice)
        prompt_tokens = len(prompt.split())
        counts = {"prompt_tokens": prompt_tokens, "completion_tokens": used, "total_tokens": prompt_tokens + used}
        answer = {
            "id": f"{'chatcmpl' if chat else 'cmpl'}-fake-{self.requests}",
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()),
            "model": body.get("model", self.models[0]),
            "choices": choices,
        }
        if self.usage:
            answer["usage"] = {k: v for k, v in counts.items() if k in self.usage}
        return answer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m archon.testing.fake_server", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="Address to listen on.")
    parser.add_argument("--port", type=int, default=0, help="Port to listen on (0: any free port).")
    parser.add_argument("--delay", type=float, default=0.0, help="Seconds to wait before each answer.")
    parser.add_argument("--ignore-n", action="store_true", help="Return one choice whatever n asks for.")
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="Seconds between the words of a stream.")
    args = parser.parse_args(argv)
    srv = FakeOpenAIServer(delay=args.delay, honor_n=not args.ignore_n, host=args.host, port=args.port,
                           chunk_delay=args.chunk_delay)
    srv.start()
    print(srv.base_url, flush=True)
    try:
        while srv._thread is not None and srv._thread.is_alive():
            srv._thread.join(timeout=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
