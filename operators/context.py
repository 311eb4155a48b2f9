"""What an operator may ask of its context: the operators' view of ``archon.context.RunContext``.

Declared here, not imported from the core, because layers point down only (DESIGN.md): operators sit
below the runner, which hands them a ``RunContext`` that satisfies this protocol.
"""

from __future__ import annotations

__all__ = ["OpContext"]

from typing import Protocol

from archon.types import Query, RunResult
from backends.base import Completion, CompletionRequest


class OpContext(Protocol):
    """A way to call models, and what the runtime knows that an operator may use."""

    @property
    def run_id(self) -> str | None: ...

    @property
    def node_id(self) -> str | None: ...

    @property
    def trial(self) -> int | None: ...

    async def complete(self, model_ref: str, request: CompletionRequest) -> Completion:
        """Call ``model_ref`` ("<backend>/<model>") through the backend's cache/record/limit/retry chain."""
        ...

    async def reward(self, model_ref: str, request: CompletionRequest) -> Completion:
        """Score ``request.messages`` (prompt, then response) with the reward model ``model_ref``: one
        text, the class probabilities as a JSON list; an error when the backend cannot."""
        ...

    async def run_pipeline(self, ref: str, query: Query) -> RunResult:
        """Run the pipeline file ``ref`` (one of the node's ``Config.pipeline_refs()``, loaded with the
        pipeline) on ``query``, in this run: its calls go through the same cache, store and budget,
        count in the run's totals (and in the result's own), and are recorded under this node."""
        ...

    async def past_scores(self, pipeline: str) -> list[tuple[str, float]] | None:
        """(query text, score) of ``pipeline``'s scored eval items, newest first; None without a store."""
        ...
