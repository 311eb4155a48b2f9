"""The ``archon`` command: thin commands that parse, call the library (``archon.run``,
``archon.evaluate``, ``archon.search``, ...) and print what it returns.

One module per group of commands (run; eval; search; serve; calls and runs; validate, schema and
import-archon), each registering on ``app``. Progress bars and printing live here, never in the library.

Exit codes: 0 success; 1 the run failed; 2 the user's input is wrong. No traceback for 1 or 2
unless ``--debug``.
"""

from __future__ import annotations

__all__ = ["DbOpt", "JsonOpt", "app", "echo_json", "err", "main"]

import json
import os
import sys
import traceback
from typing import Annotated, Any, Optional

import typer

from archon.exceptions import ArchonError, SpecError

app = typer.Typer(
    name="archon",
    help="Build, run, score, search and serve LLM pipelines made of inference-time techniques.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_state = {"debug": False}
DbOpt = Annotated[Optional[str], typer.Option("--db", help="Store URL (default: $ARCHON_DB_URL, else ./archon.db).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@app.callback()
def _root(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False) -> None:
    _state["debug"] = debug or bool(os.environ.get("ARCHON_DEBUG"))


def err(msg: str) -> None:
    """A line on standard error: notes, warnings and errors, kept apart from the output."""
    typer.echo(msg, err=True)


def echo_json(data: Any, **kw: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str, **kw))


def main() -> None:
    try:
        code = app(standalone_mode=False)
    except ArchonError as exc:
        if _state["debug"]:
            traceback.print_exc()
        err(f"error: {exc}" if not isinstance(exc, SpecError) else str(exc))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err("interrupted")
        sys.exit(130)
    except typer.Abort:
        sys.exit(130)
    except Exception as exc:  # click's usage errors (typer may vendor click) and anything unexpected
        show = getattr(exc, "show", None)
        if callable(show) and isinstance(getattr(exc, "exit_code", None), int):
            show()
            sys.exit(2)
        if _state["debug"]:
            traceback.print_exc()
        err(f"error: unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)")
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


# The commands register themselves on ``app`` (each module imports its library code only when it runs).
# Last on purpose (E402): each of them imports ``app`` and the helpers above from this module.
from archon.cli import run, pipeline, eval, store, search, serve  # noqa: E402,F401,I001
