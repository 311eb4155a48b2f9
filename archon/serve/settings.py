"""``archon serve``'s settings, checked once, and the uvicorn server that runs the app.

The command line turns its flags into ``ServeSettings``, ``check`` finds every mistake it can before
a port is opened (a bad file, a missing key, a store that cannot be opened: exit 2), and ``serve``
starts uvicorn. uvicorn's workers are separate processes that import the app by name, so the
settings travel to them as JSON in ``ARCHON_SERVE_SETTINGS`` and ``app_from_env`` rebuilds the app in
each one. The keys themselves never travel: only the name of the variable that holds them.
"""

from __future__ import annotations

__all__ = ["DEFAULT_KEY_ENV", "SETTINGS_ENV", "ServeSettings", "app_from_env", "build_app", "check", "serve"]

import asyncio
import os
import sys
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from archon.context import Runtime
from archon.exceptions import ConfigError, SpecError
from archon.runner import merge_backends, open_runtime
from archon.serve.guard import parse_keys
from archon.spec import PipelineSpec, load_pipeline

SETTINGS_ENV = "ARCHON_SERVE_SETTINGS"
DEFAULT_KEY_ENV = "ARCHON_API_KEY"
# Extra seconds a stopping server gives in-flight requests beyond the per-request timeout.
GRACE_S = 5.0


class ServeSettings(BaseModel):
    """Everything ``archon serve`` needs; the flags of the same names."""

    model_config = ConfigDict(extra="forbid")
    pipelines: list[str] = Field(..., min_length=1, description="Pipeline files to serve; each is a model named by its 'name:'.")
    host: str = Field("127.0.0.1", description="Address to listen on (0.0.0.0 for every interface).")
    port: int = Field(8000, ge=0, le=65535, description="Port to listen on.")
    api_key_env: str | None = Field(None, description=f"Variable holding the accepted keys, comma-separated (default {DEFAULT_KEY_ENV}).")
    no_auth: bool = Field(False, description="Serve without authentication.")
    max_in_flight: int = Field(64, ge=1, description="Chat completions answered at once per worker; beyond, 429.")
    max_body_bytes: int = Field(1 << 20, ge=1024, description="Largest request body; beyond, 413.")
    timeout: float = Field(300.0, gt=0, description="Seconds a request may take; beyond, 504.")
    workers: int = Field(1, ge=1, description="uvicorn worker processes.")
    db: str | None = Field(None, description="Store URL (default: $ARCHON_DB_URL, else ./archon.db).")

    @property
    def key_env(self) -> str:
        return self.api_key_env or DEFAULT_KEY_ENV


def _api_keys(settings: ServeSettings) -> list[str] | None:
    if settings.no_auth:
        return None
    keys = parse_keys(os.environ.get(settings.key_env))
    if not keys:
        raise ConfigError(
            f"archon serve needs API keys for its clients: set {settings.key_env} (several keys comma-separated)"
            + ("" if settings.api_key_env else ", or name another variable with --api-key-env")
            + ", or pass --no-auth to serve without authentication")
    return keys


def _load(settings: ServeSettings) -> dict[str, PipelineSpec]:
    specs: dict[str, PipelineSpec] = {}
    problems: list[str] = []
    for path in settings.pipelines:
        try:
            spec = load_pipeline(path)
        except SpecError as exc:
            problems += exc.problems
            continue
        if spec.name in specs:
            problems.append(f"{path}: a pipeline named '{spec.name}' is already served (from {specs[spec.name].source}); "
                            "clients pick pipelines by name, so give this one another 'name:'")
            continue
        specs[spec.name] = spec
    if problems:
        raise SpecError(problems)
    return specs


def build_app(settings: ServeSettings):
    """The app ``settings`` describe; its runtime is made when it starts (in the worker's event loop)."""
    from archon.serve.app import create_app

    specs = _load(settings)
    keys = _api_keys(settings)
    backends = merge_backends(specs.values())
    return create_app(specs, lambda: Runtime(backends, store=settings.db), api_keys=keys,
                      max_body_bytes=settings.max_body_bytes, max_in_flight=settings.max_in_flight, timeout_s=settings.timeout)


def app_from_env():
    """uvicorn's factory in each worker: the app from ``ARCHON_SERVE_SETTINGS``."""
    raw = os.environ.get(SETTINGS_ENV)
    if not raw:
        raise ConfigError(f"{SETTINGS_ENV} is not set: start the server with `archon serve`")
    return build_app(ServeSettings.model_validate_json(raw))


def check(settings: ServeSettings) -> dict[str, PipelineSpec]:
    """Raise the first thing that would stop the server (files, keys, backends' keys, the store)."""
    settings.pipelines = [str(Path(p).resolve()) for p in settings.pipelines]  # workers may start elsewhere
    specs = _load(settings)
    _api_keys(settings)

    async def open_and_close() -> None:
        async with open_runtime(specs.values(), db=settings.db):
            pass

    asyncio.run(open_and_close())
    return specs


def serve(settings: ServeSettings) -> None:
    """Check ``settings``, then serve until SIGINT/SIGTERM; in-flight requests are let finish."""
    import uvicorn

    specs = check(settings)
    auth = "no authentication" if settings.no_auth else f"keys from {settings.key_env}"
    print(f"archon serve: {', '.join(specs)} on http://{settings.host}:{settings.port}/v1 ({auth}, "
          f"{settings.workers} worker{'s' if settings.workers > 1 else ''})", file=sys.stderr, flush=True)
    os.environ[SETTINGS_ENV] = settings.model_dump_json()
    uvicorn.run("archon.serve.settings:app_from_env", factory=True, host=settings.host, port=settings.port,
                workers=settings.workers, timeout_graceful_shutdown=int(settings.timeout + GRACE_S),
                server_header=False, log_level="info")
