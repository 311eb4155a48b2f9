"""The rows of one store transaction, as typed records (``Store.write_batch``).

A ``Batch`` is what the recorder (``stores.recorder``) hands the store at each group commit: runs
started, calls, cache entries, runs finished, evaluations started and their item results. The store
writes a whole batch in ONE transaction, in an order that keeps every reference valid (a run's start
before its calls and its finish, an evaluation before its results).
"""

from __future__ import annotations

__all__ = ["Batch", "RunFinish", "RunStart"]

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from archon.records import CachedSample, CallRecord

from .evals import EvalResult, EvalStart


class RunStart(NamedTuple):
    run_id: str
    pipeline: str
    input: str
    trial: int | None = None


class RunFinish(NamedTuple):
    run_id: str
    status: str  # "ok" | "error"
    output: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Batch:
    """Rows for one transaction. Plain tuples of the right shape are accepted for runs (older callers)."""

    starts: Sequence[RunStart] = ()
    calls: Sequence[CallRecord] = ()
    cache: Sequence[CachedSample] = ()
    finishes: Sequence[RunFinish] = ()
    evals: Sequence[EvalStart] = ()
    eval_results: Sequence[EvalResult] = ()

    def __len__(self) -> int:
        return (len(self.starts) + len(self.calls) + len(self.cache) + len(self.finishes) + len(self.evals)
                + len(self.eval_results))
