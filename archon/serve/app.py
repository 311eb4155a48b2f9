"""The FastAPI app: pipelines served as OpenAI-compatible models.

    POST /v1/chat/completions   the messages are the query, ``model`` picks the pipeline
    GET  /v1/models             the served pipelines, by name
    GET  /v1/models/{model}     one of them
    GET  /healthz               liveness, and how many requests are in flight (no key needed)
    GET  /openapi.json          the schema (no key needed)

One ``Runtime`` serves every request: its backends, limits, cache and store are shared, and each
request is one run in the store. It is created when the app starts and closed when it stops, which
writes everything still buffered to the store.
"""

from __future__ import annotations

__all__ = ["create_app"]

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse
from starlette.types import ASGIApp

from archon.context import Runtime
from archon.exceptions import ArchonError, suggest
from archon.runner import CompiledPipeline, open_runtime
from archon.serve.errors import ServeError, from_run_error, install_error_handlers
from archon.serve.guard import Guard
from archon.serve.protocol import (
    ChatCompletionRequest,
    ChatCompletionResponse,
    Choice,
    ErrorResponse,
    Health,
    ModelCard,
    ModelList,
    ResponseMessage,
)
from archon.serve.streaming import AnswerStream, usage_and_info
from archon.spec import PipelineSpec

log = logging.getLogger("archon.serve")

# How often buffered runs and calls are written while serving: a run shows in `archon runs` (and
# survives a crash) within this long, without a transaction per request.
FLUSH_INTERVAL_S = 0.25

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": what} for status, what in {
        400: "Malformed JSON, or a field of the wrong type (param names it).",
        401: "No API key, or a wrong one.",
        404: "No pipeline of that name (code model_not_found).",
        413: "The body is over the server's limit.",
        429: "Too many requests in flight; see Retry-After.",
        502: "A model call failed after its retries.",
        504: "The request took longer than the server's timeout.",
    }.items()
}


def create_app(
    pipelines: Mapping[str, PipelineSpec],
    runtime: Runtime | Callable[[], Runtime],
    *,
    api_keys: Iterable[str] | None,
    max_body_bytes: int = 1 << 20,
    max_in_flight: int = 64,
    timeout_s: float = 300.0,
) -> FastAPI:
    """An ASGI app serving ``pipelines`` (name -> spec) on ``runtime`` (an instance, or a function
    making one when the app starts; closed either way when it stops).

    ``api_keys``: the bearer keys accepted, or None to serve without authentication. With one
    pipeline, any ``model`` a client sends is answered by it; with several, ``model`` must name one.
    """
    if not pipelines:
        raise ValueError("give at least one pipeline to serve")
    keys = None if api_keys is None else list(api_keys)
    if keys is not None and not keys:
        raise ValueError("api_keys is empty: pass None to serve without authentication")
    served = {name: CompiledPipeline(spec) for name, spec in pipelines.items()}
    started = int(time.time())
    guard_state: dict[str, Guard] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        rt = runtime if isinstance(runtime, Runtime) else runtime()
        # Closed here even when it was given: the app is its last user.
        async with rt, open_runtime([c.spec for c in served.values()], runtime=rt):
            app.state.runtime = rt
            flusher = asyncio.create_task(_flush_every(rt, FLUSH_INTERVAL_S))
            log.info("serving %s", ", ".join(served))
            try:
                yield
            finally:
                flusher.cancel()

    app = FastAPI(title="Archon", summary="Pipelines of LLM calls served as OpenAI-compatible models.",
                  version=_version(), lifespan=lifespan, docs_url=None, redoc_url=None)
    install_error_handlers(app)

    def make_guard(app: ASGIApp, *, api_keys: list[str] | None, max_body_bytes: int, max_in_flight: int) -> Guard:
        # Starlette builds it; /healthz reads its counter
        guard_state["guard"] = Guard(app, api_keys=api_keys, max_body_bytes=max_body_bytes, max_in_flight=max_in_flight)
        return guard_state["guard"]

    app.add_middleware(make_guard, api_keys=keys, max_body_bytes=max_body_bytes, max_in_flight=max_in_flight)

    def not_found(model: str) -> ServeError:
        names = sorted(served)
        return ServeError(404, f"no pipeline named '{model}' is served.{suggest(model, names)} Served: {', '.join(names)}",
                          code="model_not_found", param="model")

    def pick(model: str) -> tuple[str, CompiledPipeline]:
        if model in served:
            return model, served[model]
        if len(served) == 1:  # one pipeline answers whatever name a client was written for
            return next(iter(served.items()))
        raise not_found(model)

    def error_of(exc: BaseException) -> ServeError:
        if isinstance(exc, TimeoutError):
            error = ServeError(504, f"the pipeline did not answer within the server's timeout of {timeout_s:g} s",
                               code="timeout")
        else:
            error = from_run_error(exc)
        log.warning("answered %d %s: %s", error.status, error.code, error.message)  # the client's words, no more
        return error

    @app.get("/healthz", response_model=Health, tags=["health"])
    async def healthz() -> Health:
        """Liveness: answers while the server runs. Needs no key."""
        guard = guard_state.get("guard")
        return Health(in_flight=guard.in_flight if guard else 0, max_in_flight=max_in_flight)

    @app.get("/v1/models", response_model=ModelList, responses={401: _ERRORS[401]}, tags=["models"])
    async def list_models() -> ModelList:
        """The served pipelines; pass a name as ``model``."""
        return ModelList(data=[ModelCard(id=name, created=started) for name in served])

    @app.get("/v1/models/{model:path}", response_model=ModelCard, responses={s: _ERRORS[s] for s in (401, 404)},
             tags=["models"])
    async def get_model(model: str) -> ModelCard:
        """One served pipeline."""
        if model not in served:
            raise not_found(model)
        return ModelCard(id=model, created=started)

    @app.post("/v1/chat/completions", response_model=ChatCompletionResponse, tags=["chat"],
              responses={200: {"content": {"text/event-stream": {}},
                               "description": "The answer; with stream: true, chat.completion.chunk events."},
                         **{s: _ERRORS[s] for s in (400, 401, 404, 413, 429, 502, 504)}})
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
        """Run the pipeline named by ``model`` on the conversation and answer as OpenAI does."""
        name, compiled = pick(body.model)
        rt = request.app.state.runtime
        completion_id, created, query = f"chatcmpl-{uuid.uuid4().hex}", int(time.time()), body.query()
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            stream = AnswerStream(compiled, query, rt, completion_id=completion_id, created=created, model=name,
                                  include_usage=include_usage, timeout_s=timeout_s, error_of=error_of)
            events = await stream.start()
            return StreamingResponse(events, media_type="text/event-stream",
                                     headers={"cache-control": "no-cache", "x-accel-buffering": "no"})
        try:
            async with asyncio.timeout(timeout_s):
                result = await compiled.run(query, rt)
        except (TimeoutError, ArchonError) as exc:
            raise error_of(exc) from exc
        usage, info = usage_and_info(result, name)
        answer = ChatCompletionResponse(id=completion_id, created=created, model=name, usage=usage, archon=info,
                                        choices=[Choice(message=ResponseMessage(content=result.output))])
        headers = {"x-archon-run-id": result.run_id} if result.run_id else None
        return Response(answer.model_dump_json(), media_type="application/json", headers=headers)

    return app


async def _flush_every(rt: Runtime, seconds: float) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            rt.log.write()
        except Exception:  # the store is down: keep serving; the rows stay buffered for the next try
            log.exception("could not write runs to the store; will retry")


def _version() -> str:
    # From the installed distribution, not ``archon/__init__``: that names the whole public face,
    # search included, which the server's layer must not import.
    from importlib.metadata import version

    return version("archon-llm")
