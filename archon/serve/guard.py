"""The server's protection, as one ASGI middleware run before any routing or parsing.

In order, for every HTTP request:

1. Bearer key (401): every path but the open ones (``/healthz``, ``/openapi.json``) needs
   ``Authorization: Bearer <key>`` matching one of the keys, compared in constant time. Keys are never
   logged, echoed or stored.
2. In-flight limit (429 with Retry-After) on chat completions: beyond ``max_in_flight`` being answered
   (streams count until their last byte), a request is refused at once rather than queued, so a
   client or a load balancer can go elsewhere instead of waiting on a saturated server.
3. Body limit (413): a ``Content-Length`` over the limit is refused before reading a byte; a body
   without one (chunked) is counted as it arrives and refused as soon as it passes the limit. The
   body is then handed to the app from memory.

It is plain ASGI rather than FastAPI dependencies so that all three happen before the body is read:
an unauthenticated or over-limit client costs the server nothing.
"""

from __future__ import annotations

__all__ = ["Guard", "parse_keys"]

import hmac
from collections.abc import Iterable
from typing import Any

from archon.serve.errors import ServeError

Scope = dict[str, Any]

OPEN_PATHS = frozenset({"/healthz", "/openapi.json"})
LIMITED_PATHS = frozenset({"/v1/chat/completions"})
RETRY_AFTER_S = 1


def parse_keys(raw: str | None) -> list[str]:
    """The keys in a variable's value: comma-separated, blanks ignored."""
    return [k.strip() for k in (raw or "").split(",") if k.strip()]


class _TooLarge(Exception):
    pass


class Guard:
    """ASGI middleware: auth, in-flight limit, body limit. ``in_flight`` is read by /healthz."""

    def __init__(self, app: Any, *, api_keys: Iterable[str] | None, max_body_bytes: int, max_in_flight: int):
        self.app = app
        self._keys = None if api_keys is None else [k.encode() for k in api_keys]
        self.max_body_bytes = max_body_bytes
        self.max_in_flight = max_in_flight
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if self._keys is not None and path not in OPEN_PATHS and not self._authorized(scope):
            await _send(scope, send, ServeError(
                401, "missing or invalid API key: send 'Authorization: Bearer <key>' with a key the server was started "
                "with", code="invalid_api_key", headers={"www-authenticate": "Bearer"}))
            return
        length = _content_length(scope)
        if length is not None and length > self.max_body_bytes:
            await _send(scope, send, self._too_large())
            return
        limited = path in LIMITED_PATHS
        if limited:
            if self.in_flight >= self.max_in_flight:
                await _send(scope, send, ServeError(
                    429, f"the server is answering {self.in_flight} requests, its limit; retry after {RETRY_AFTER_S} s",
                    code="too_many_requests_in_flight", headers={"retry-after": str(RETRY_AFTER_S)}))
                return
            self.in_flight += 1
        try:
            try:
                body, disconnected = await self._read_body(receive)
            except _TooLarge:
                await _send(scope, send, self._too_large())
                return
            if disconnected:
                return
            await self.app(scope, _replay(body, receive), send)
        finally:
            if limited:
                self.in_flight -= 1

    def _authorized(self, scope: Scope) -> bool:
        header = _header(scope, b"authorization")
        if header is None:
            return False
        scheme, _, key = header.partition(b" ")
        if scheme.lower() != b"bearer" or not key.strip():
            return False
        key = key.strip()
        # Compare against every key, without stopping at a match: the time taken says nothing.
        ok = False
        for known in self._keys or ():
            ok |= hmac.compare_digest(key, known)
        return ok

    def _too_large(self) -> ServeError:
        return ServeError(413, f"the request body is over the server's limit of {self.max_body_bytes} bytes",
                          code="request_too_large")

    async def _read_body(self, receive: Any) -> tuple[bytes, bool]:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b"", True
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), False


def _replay(body: bytes, receive: Any) -> Any:
    sent = False

    async def replayed() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: the client's disconnect, which streams listen for

    return replayed


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return value
    return None


def _content_length(scope: Scope) -> int | None:
    raw = _header(scope, b"content-length")
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        return None


async def _send(scope: Scope, send: Any, error: ServeError) -> None:
    await error.response()(scope, _no_receive, send)


async def _no_receive() -> dict[str, Any]:  # a JSONResponse never reads the request
    return {"type": "http.disconnect"}
