"""Every error ``archon serve`` returns, in OpenAI's shape, and how run failures map to statuses.

    400 invalid_request_error  malformed JSON, a wrong field (``param`` names it), n != 1
    401 authentication_error   no bearer key, or a wrong one (the key is never echoed or logged)
    404 invalid_request_error  unknown model (``model_not_found``, lists the served names) or path
    413 invalid_request_error  body over --max-body-bytes
    429 rate_limit_error       more chat completions in flight than --max-in-flight (Retry-After)
    502 upstream_error         a model call failed after its retries (names node, backend, model)
    504 timeout_error          the request took longer than --timeout
    500 server_error           anything else; the details stay in the server's log

OpenAI clients raise their usual exceptions on these (``AuthenticationError``, ``BadRequestError``,
``RateLimitError``, ...), and retry 429 and 5xx by themselves.
"""

from __future__ import annotations

__all__ = ["ServeError", "error_response", "from_run_error", "install_error_handlers", "validation_message"]

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from archon.exceptions import ArchonError, BackendAuthError, BackendError, RunFailed

log = logging.getLogger("archon.serve")

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
          404: "invalid_request_error", 405: "invalid_request_error", 413: "invalid_request_error",
          429: "rate_limit_error", 502: "upstream_error", 504: "timeout_error"}


class ServeError(Exception):
    """An error answer: status, OpenAI error fields, and extra headers (e.g. Retry-After)."""

    def __init__(self, status: int, message: str, *, code: str, param: str | None = None,
                 headers: Mapping[str, str] | None = None, type: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.headers = dict(headers or {})
        self.type = type or _TYPES.get(status, "server_error")

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def error_response(status: int, message: str, *, code: str, param: str | None = None,
                   headers: Mapping[str, str] | None = None) -> JSONResponse:
    return ServeError(status, message, code=code, param=param, headers=headers).response()


def from_run_error(exc: BaseException) -> ServeError:
    """A failed run as an answer. Messages name the node, backend and model; never a key or a traceback."""
    run = f" (run {exc.run_id})" if isinstance(exc, ArchonError) and exc.run_id else ""
    if isinstance(exc, BackendAuthError):
        # The upstream's own words may quote part of the server's key: say only where it failed.
        where = f"node '{exc.node}': " if exc.node else ""
        return ServeError(502, f"{where}backend '{exc.backend}' refused this server's API key for model "
                          f"'{exc.model}'; the server's operator must fix it{run}", code="backend_auth_error")
    if isinstance(exc, BackendError):
        return ServeError(502, f"a model call failed after {exc.attempts} attempt(s): {exc}{run}", code="backend_error")
    if isinstance(exc, RunFailed):
        return ServeError(500, f"the pipeline failed: {exc}{run}", code="run_failed", type="server_error")
    log.error("unexpected error while answering", exc_info=exc)
    return ServeError(500, f"internal error ({type(exc).__name__}); see the server's log{run}", code="internal_error",
                      type="server_error")


def _param(loc: Sequence[Any]) -> str | None:
    # Drop FastAPI's "body" and pydantic's union-branch tags ("str", "list[ContentPart]"), which
    # name a type rather than a field; list indices read as messages[0].
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "body" and not out:
            continue
        elif "[" in str(part) or part in ("str", "int", "bool", "none", "float", "list", "dict"):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out or None


def validation_message(errors: Sequence[Mapping[str, Any]]) -> tuple[str, str | None]:
    """One readable line for pydantic's errors, and the field at fault (the deepest error wins: in a
    union it is the branch the client meant)."""
    if not errors:
        return "invalid request", None
    err = max(errors, key=lambda e: len(e.get("loc") or ()))
    param = _param(err.get("loc") or ())
    if err.get("type") == "json_invalid":
        reason = (err.get("ctx") or {}).get("error", "")
        return f"the body is not valid JSON{': ' + reason if reason else ''}", None
    msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    if err.get("type") == "missing":
        msg = "required"
    return (f"{param}: {msg}" if param else msg), param


def install_error_handlers(app: FastAPI) -> None:
    """Make FastAPI's own errors (422 validation, 404, 405, unhandled) OpenAI-shaped."""

    @app.exception_handler(ServeError)
    async def _serve_error(request: Request, exc: ServeError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        message, param = validation_message(errors)
        code = "invalid_json" if any(e.get("type") == "json_invalid" for e in errors) else "invalid_request"
        content_type = request.headers.get("content-type", "")
        if param is None and code == "invalid_request" and "json" not in content_type:
            # FastAPI reads a body as JSON only when it says so: `curl -d` sends a form type.
            message = f"the body must be a JSON object sent with 'Content-Type: application/json' (got '{content_type}')"
        return error_response(400, message, code=code, param=param)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404:
            message = f"no route {request.method} {request.url.path}; see /openapi.json"
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        if exc.status_code == 400:  # FastAPI could not decode the body at all (e.g. it is not UTF-8)
            message, code = "the body could not be read as JSON (it must be UTF-8 encoded JSON)", "invalid_json"
        return error_response(exc.status_code, message, code=code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return from_run_error(exc).response()
