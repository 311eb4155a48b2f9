"""The values that move through a pipeline: the query, candidates, and a run's result."""

from __future__ import annotations

__all__ = ["SAMPLES_USED", "Candidate", "Query", "RunResult"]

from dataclasses import dataclass, field, replace
from typing import Any

from archon.records import Usage

#: The ``Candidate.meta`` key an adaptive node (``sample_until``) sets on its candidates: how many
#: samples it drew for the query, which depends on the query and so is known only after the run.
SAMPLES_USED = "samples_used"


@dataclass(frozen=True, slots=True)
class Query:
    """What a pipeline answers: the text, plus what a benchmark item brings (tests, passages, ...).

    ``messages``, when given, is the same query as a chat conversation (``{"role", "content"}`` dicts,
    e.g. a system prompt, or earlier turns before the last user turn); ``text`` then holds it rendered
    for operators that read text. A ``generate`` node with its default prompt sends these messages to
    a chat model as they are (MT-Bench's second turn, a judge's system prompt).
    """

    text: str
    id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    messages: tuple[dict[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Candidate:
    """One piece of text moving through the graph, and where it came from. Immutable: use ``evolve``."""

    text: str
    node: str
    model: str | None = None
    sample: int = 0
    score: float | None = None
    critique: str | None = None
    notes: tuple[str, ...] = ()
    usage: Usage = field(default_factory=Usage)
    meta: dict[str, Any] = field(default_factory=dict)
    #: The log-probabilities of the sampled tokens, in order, when the operator that made the text asked
    #: the backend for them (``generate`` with ``logprobs: true``); None when not asked or not given.
    logprobs: tuple[float, ...] | None = None

    def evolve(self, **changes: Any) -> Candidate:
        return replace(self, **changes)

    def noted(self, note: str) -> Candidate:
        """A copy carrying one more note (fallbacks and their reasons travel with the candidate)."""
        return replace(self, notes=(*self.notes, note))

    def mean_logprob(self) -> float | None:
        """The mean log-probability of the sampled tokens (minus the log of the perplexity); None without logprobs."""
        if not self.logprobs:
            return None
        return sum(self.logprobs) / len(self.logprobs)


@dataclass(slots=True)
class RunResult:
    """The outcome of one pipeline run on one query."""

    output: str
    candidates: dict[str, list[Candidate]]
    usage: Usage
    cost_usd: float | None
    latency_ms: float
    calls: int
    cached_calls: int
    run_id: str | None = None
    pipeline: str = ""
    node_notes: list[str] = field(default_factory=list)
    abstained: bool = False  # the output node answered nothing (a selector found no candidate it could trust)

    @property
    def notes(self) -> list[str]:
        """Every fallback's reason, and what else a node wants said (the tests ``unit_test`` used):
        those carried by candidates, once per node and text, then node-level ones."""
        found = [f"{node}: {note}" for node, cands in self.candidates.items() for c in cands for note in c.notes]
        return list(dict.fromkeys(found + [n for n in self.node_notes if n not in found]))

    @property
    def samples_used(self) -> int | None:
        """Samples the adaptive nodes drew for this query, summed over those nodes (a node's count is
        read once, from any candidate it produced, however far downstream); None when none ran."""
        per_node = {c.node: int(c.meta[SAMPLES_USED]) for cands in self.candidates.values() for c in cands if SAMPLES_USED in c.meta}
        return sum(per_node.values()) if per_node else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "pipeline": self.pipeline,
            "output": self.output,
            "abstained": self.abstained,
            "prompt_tokens": self.usage.prompt_tokens,
            "completion_tokens": self.usage.completion_tokens,
            "cost_usd": self.cost_usd,
            "latency_ms": round(self.latency_ms, 3),
            "calls": self.calls,
            "cached_calls": self.cached_calls,
            "notes": sorted(set(self.notes)),
            "candidates": {
                node: [{"text": c.text, "model": c.model, "sample": c.sample, "score": c.score} for c in cands]
                for node, cands in self.candidates.items()
            },
        }
