"""``archon serve``: its options; the work is in ``archon.serve``."""

from __future__ import annotations

__all__ = ["serve"]

from pathlib import Path
from typing import Annotated, Optional

import typer

from archon.cli import DbOpt, app

_Opt = typer.Option


@app.command()
def serve(
    pipelines: Annotated[list[Path], typer.Argument(help="Pipeline files; clients pick one by its name as 'model'.", show_default=False)],
    host: Annotated[str, _Opt("--host", help="Address to listen on (0.0.0.0: every interface).")] = "127.0.0.1",
    port: Annotated[int, _Opt("--port", "-p", min=0, max=65535, help="Port to listen on.")] = 8000,
    api_key_env: Annotated[Optional[str], _Opt("--api-key-env", help="Variable holding the keys clients must send, comma-separated "
                                                                     "(default: ARCHON_API_KEY).")] = None,
    no_auth: Annotated[bool, _Opt("--no-auth", help="Serve without authentication (anyone who can reach the port can spend).")] = False,
    max_in_flight: Annotated[int, _Opt("--max-in-flight", min=1, help="Requests answered at once per worker; beyond, 429 with Retry-After.")] = 64,
    max_body_bytes: Annotated[int, _Opt("--max-body-bytes", min=1024, help="Largest request body; beyond, 413.")] = 1 << 20,
    timeout: Annotated[float, _Opt("--timeout", min=0.001, help="Seconds a request may take; beyond, 504.")] = 300.0,
    workers: Annotated[int, _Opt("--workers", "-w", min=1, help="Worker processes (each with its own in-flight limit).")] = 1,
    db: DbOpt = None,
) -> None:
    """Serve pipelines as an OpenAI-compatible API: POST /v1/chat/completions, GET /v1/models, GET /healthz."""
    try:
        from archon.serve.settings import ServeSettings, serve as run_server
    except ImportError as exc:
        from archon.exceptions import MissingDependency

        raise MissingDependency("archon serve", "serve") from exc

    run_server(ServeSettings(pipelines=[str(p) for p in pipelines], host=host, port=port, api_key_env=api_key_env,
                             no_auth=no_auth, max_in_flight=max_in_flight, max_body_bytes=max_body_bytes,
                             timeout=timeout, workers=workers, db=db))
