"""What a model call leaves behind, as plain data: usage, call rows, cached samples, a run's totals.

These sit at the bottom of the layers (beside ``archon.types`` and ``archon.exceptions``) because
both sides of the recording seam speak them: the backend wrappers build them (``backends`` never
imports ``stores``) and the store writes and reads them (``stores`` never imports ``backends``).
Nothing here does I/O.
"""

from __future__ import annotations

__all__ = ["CachedSample", "CallRecord", "RunTotals", "Usage", "utcnow"]

from dataclasses import dataclass, field
from datetime import datetime, timezone


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens a call used. ``None`` is unknown (the server did not say): it stays unknown through sums
    and is never counted, or priced, as zero."""

    prompt_tokens: int | None = 0
    completion_tokens: int | None = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(_plus(self.prompt_tokens, other.prompt_tokens), _plus(self.completion_tokens, other.completion_tokens))

    @property
    def known(self) -> bool:
        return self.prompt_tokens is not None and self.completion_tokens is not None

    @property
    def total_tokens(self) -> int | None:
        return _plus(self.prompt_tokens, self.completion_tokens)

    def split(self, n: int) -> list[Usage]:
        """Share one call's usage among its n samples so the shares add up to the whole."""
        n = max(n, 1)
        return [Usage(p, c) for p, c in zip(_shares(self.prompt_tokens, n), _shares(self.completion_tokens, n))]


def _plus(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else a + b


def _shares(total: int | None, n: int) -> list[int | None]:
    if total is None:
        return [None] * n
    q, r = divmod(total, n)
    return [q + (k < r) for k in range(n)]


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRecord:
    """One model call as the record wrapper hands it to the store."""

    backend: str
    model: str
    run_id: str | None = None
    node_id: str | None = None
    n: int = 1
    prompt_text: str = ""
    response_texts: list[str] = field(default_factory=list)
    prompt_tokens: int | None = 0  # None: unknown (the server did not report it), never 0
    completion_tokens: int | None = 0
    cost_usd: float | None = None
    saved_usd: float | None = None
    latency_ms: float = 0.0
    status: str = "ok"
    error: str | None = None
    attempts: int = 1
    cached: bool = False
    trial: int | None = None
    created_at: datetime = field(default_factory=utcnow)

    @property
    def usage(self) -> Usage:
        return Usage(self.prompt_tokens, self.completion_tokens)


@dataclass(frozen=True, slots=True)
class CachedSample:
    """Sample ``sample`` of the request whose cache key is ``key``, with its share of the usage."""

    key: str
    sample: int
    backend: str
    model: str
    text: str
    logprobs: list[float] | None = None
    prompt_tokens: int | None = 0
    completion_tokens: int | None = 0
    cost_usd: float | None = None


@dataclass
class RunTotals:
    """A run's calls, tokens and cost. Tokens a server did not report stay unknown (None) in the sum,
    and so does the cost they would have priced; an unpriced model alone leaves the priced calls' sum.

    One per run, carried by its context (and each request's ``CallMeta``), so the wrappers meter a
    run as its calls happen and the runner reads the sum when the run ends. A pipeline run inside a
    run (a ``score`` node's judge pipeline) meters on its own totals whose ``parent`` is the run's, so
    its calls count in both: the nested result's figures and the run's.
    """

    calls: int = 0
    cached_calls: int = 0
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = None
    cost_unknown: bool = False
    notes: list[str] = field(default_factory=list)
    parent: RunTotals | None = field(default=None, repr=False, compare=False)

    def add(self, usage: Usage, cost: float | None, cached: bool, counts: bool = True) -> None:
        if self.parent is not None:
            self.parent.add(usage, cost, cached, counts)
        self.calls += int(counts)
        self.cached_calls += int(cached and counts)
        self.usage = self.usage + usage
        if cost is None and not usage.known:
            self.cost_unknown, self.cost_usd = True, None
        elif cost is not None and not self.cost_unknown:
            self.cost_usd = (self.cost_usd or 0.0) + cost

    def add_call(self, record: CallRecord, *, counts: bool = True) -> None:
        """Count a call; ``counts=False`` for the replayed part of a partly cached request, which the
        run counts once, as the request it was (its tokens still add up). A failed call counts too."""
        usage = record.usage
        self.add(usage, record.cost_usd, record.cached, counts)
        if record.status == "ok" and not usage.known:
            self.note(f"{record.backend}/{record.model}: the server did not report token usage, so tokens"
                      f"{'' if record.cached else ' and cost'} are unknown")

    def note(self, text: str) -> None:
        if self.parent is not None:
            self.parent.note(text)
        if text not in self.notes:
            self.notes.append(text)
