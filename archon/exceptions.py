"""Archon's one exception tree.

    ArchonError
    ├── UserError                exit code 2: the user's input is wrong; the message names the fix
    │   ├── SpecError            a pipeline file or builder call is invalid (file, node, field)
    │   ├── ConfigError          a flag, an environment variable or a backend setting is wrong
    │   └── MissingDependency    an optional extra is not installed (names the pip command)
    └── RunFailed                exit code 1: a run failed at run time
        ├── BudgetExhausted      a request was refused: it could cross the command's spending limit
        ├── StoreUnavailable     the store stayed unreachable past the outage limit (rows kept in memory)
        └── BackendError         a model call failed (names backend, model and, when known, node)
            ├── BackendAuthError      401/403: the key is missing or wrong (names the key variable)
            ├── BackendRequestError   400/404: the request itself is wrong; retrying cannot help
            ├── BackendRateLimited    429 (retryable; carries Retry-After)
            ├── BackendUnavailable    5xx, dropped connection (retryable)
            ├── BackendTimeout        the per-call timeout fired (retryable)
            └── BackendResponseError  the reply could not be understood (e.g. a body that is not JSON)

Foreign errors (openai, httpx, sqlalchemy, llama.cpp) are translated at the seam with ``raise ... from exc``.
"""

from __future__ import annotations

__all__ = [
    "ArchonError",
    "UserError",
    "SpecError",
    "ConfigError",
    "MissingDependency",
    "RunFailed",
    "BudgetExhausted",
    "StoreUnavailable",
    "BackendError",
    "BackendAuthError",
    "BackendRequestError",
    "BackendRateLimited",
    "BackendUnavailable",
    "BackendTimeout",
    "BackendResponseError",
    "suggest",
]

import difflib
from collections.abc import Iterable
from typing import Any


class ArchonError(Exception):
    """Base of every error Archon raises on purpose."""

    exit_code = 1
    #: The run this error ended, when it ended one (set by the runner; ``archon calls --run ID``).
    run_id: str | None = None


class UserError(ArchonError):
    exit_code = 2


class SpecError(UserError):
    """An invalid pipeline. ``problems`` holds one line per problem, already formatted."""

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class ConfigError(UserError):
    pass


class MissingDependency(UserError):
    def __init__(self, what: str, extra: str):
        super().__init__(f"{what} needs the '{extra}' extra: pip install 'archon-llm[{extra}]'")
        self.extra = extra


class RunFailed(ArchonError):
    exit_code = 1
    #: The database's own error, when the store failed (kept here, not chained: it carries the rows).
    db_error: Exception | None = None


class BudgetExhausted(RunFailed):
    """Raised before a request, never after: what was spent stays at or below the limit."""


class StoreUnavailable(RunFailed):
    """The store could not be reached for longer than the outage limit (or too much waits to be written)."""


class BackendError(RunFailed):
    retryable = False

    def __init__(self, message: str, *, backend: str = "", model: str = "", node: str | None = None):
        self.backend = backend
        self.model = model
        self.node = node
        self.attempts = 1
        super().__init__(message)

    def __str__(self) -> str:
        where = f"backend '{self.backend}'" if self.backend else "backend"
        if self.model:
            where += f", model '{self.model}'"
        if self.node:
            where = f"node '{self.node}': " + where
        return f"{where}: {self.args[0]}"


class BackendAuthError(BackendError):
    pass


class BackendRequestError(BackendError):
    pass


class BackendRateLimited(BackendError):
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any):
        super().__init__(message, **kw)
        self.retry_after = retry_after


class BackendUnavailable(BackendError):
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any):
        super().__init__(message, **kw)
        self.retry_after = retry_after


class BackendTimeout(BackendError):
    retryable = True


class BackendResponseError(BackendError):
    pass


def suggest(name: str, choices: Iterable[str]) -> str:
    """' Did you mean 'x'?' for the nearest valid name, or '' when nothing is close."""
    match = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" Did you mean '{match[0]}'?" if match else ""
