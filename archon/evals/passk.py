"""Coverage and pass@k: how often *some* candidate of a node is right, next to how often the pipeline
picks a right one (its score). The gap between the two is what better selection could still win.

Each candidate of the chosen node goes through the benchmark's own scorer with the item as the
output does (same hidden fields, same context): a candidate counts as correct when it scores 1.
Per item only two numbers are kept, ``n`` candidates and ``c`` correct ones, from which the
unbiased estimator (Chen et al. 2021, "Evaluating Large Language Models Trained on Code") gives
pass@k for every k <= n; coverage is the share of items with ``c >= 1``.
"""

from __future__ import annotations

__all__ = ["Memo", "PassAtK", "candidates_key", "check_node", "default_node", "format_pass_at", "pass_at_k", "score_candidates", "summarize_pass_at"]

import asyncio
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from archon.bounds import candidates_per_node
from archon.exceptions import UserError

if TYPE_CHECKING:
    from archon.evals.datasets import Item
    from archon.spec import PipelineSpec

#: (item id, candidate text) -> correct: a text is scored once per item, across the points of a curve too.
Memo = dict[tuple[str, str], bool]


def pass_at_k(n: int, c: int, k: int) -> float | None:
    """The unbiased estimate of "some of k samples is right" from ``c`` right among ``n``:
    1 - C(n-c, k) / C(n, k), as a product (the binomials overflow floats long before n = 1000).
    None when k > n: n samples say nothing about k of them."""
    if k < 1 or c < 0 or c > n:
        raise ValueError(f"pass@k needs 1 <= k and 0 <= c <= n (got n={n}, c={c}, k={k})")
    if k > n:
        return None
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def default_node(spec: PipelineSpec) -> str:
    """The node that can output the most candidates per query; on a tie the upstream one (a
    generator rather than the filter that passes its candidates through)."""
    most = candidates_per_node(spec)
    return max(most, key=lambda node: (most[node], -list(most).index(node)))


def check_node(spec: PipelineSpec, node: str | None) -> str:
    """``node`` (checked against the pipeline), or the default one."""
    ids = [n.id for n in spec.nodes]
    if node is None:
        return default_node(spec)
    if node not in ids:
        raise UserError(f"--pass-at-node: the pipeline has no node '{node}' (its nodes: {', '.join(ids)}).")
    return node


def candidates_key(eval_id: str, node: str) -> str:
    """The store key of the per-item (n, c) of ``node`` in evaluation ``eval_id``: an evaluation of its
    own (score = c / n), so a resumed eval finds them without a schema change."""
    return hashlib.sha256(f"{eval_id}\ncandidates of\n{node}".encode()).hexdigest()


async def score_candidates(texts: Sequence[str], item: Item, scorer: Any, ctx: Any, memo: Memo) -> tuple[int, int]:
    """(n, c) of one item's candidates: every distinct text scored once, by the benchmark's scorer
    with the very item the output was scored with; a scorer error propagates (the item fails)."""
    todo = [t for t in dict.fromkeys(texts) if (item.id, t) not in memo]
    scores = await asyncio.gather(*(scorer(t, item, ctx) for t in todo))
    for text, score in zip(todo, scores):
        memo[(item.id, text)] = float(score.value) >= 1.0
    return len(texts), sum(memo[(item.id, t)] for t in texts)


@dataclass
class PassAtK:
    """pass@k, coverage and the selection gap of one node over an evaluation's scored items."""

    node: str
    pass_at: dict[int, float | None]  # None: some item has fewer than k candidates
    coverage: float | None  # share of items where some candidate is right (pass@n)
    selection_gap: float | None  # coverage minus the pipeline's score on the same items
    items: int
    samples_min: int
    samples_max: int
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` keys (pass@k keyed by k as a string, as JSON must)."""
        return {"pass_at_node": self.node, "pass_at": {str(k): v for k, v in self.pass_at.items()},
                "coverage": self.coverage, "selection_gap": self.selection_gap,
                "pass_at_samples": {"min": self.samples_min, "max": self.samples_max, "items": self.items},
                "pass_at_notes": list(self.notes)}


def summarize_pass_at(node: str, counts: dict[str, tuple[int, int]], scores: dict[str, float], ks: Sequence[int]) -> PassAtK:
    """Average pass@k and coverage over the items that have both (n, c) and a score.

    pass@k for a k larger than some item's n is None (reported n/a) rather than an average over a
    subset of items, which would compare different questions."""
    items = [i for i in counts if i in scores]
    ns = [counts[i][0] for i in items]
    values: dict[int, float | None] = {}
    notes = []
    for k in ks:
        each = [pass_at_k(*counts[i], k) for i in items]
        known = [v for v in each if v is not None]
        values[k] = round(sum(known) / len(known), 6) if known and len(known) == len(each) else None
        if items and values[k] is None:
            notes.append(f"pass@{k} n/a: {len(each) - len(known)} item(s) have fewer than {k} candidates (min {min(ns)})")
    coverage = sum(counts[i][1] > 0 for i in items) / len(items) if items else None
    score = sum(scores[i] for i in items) / len(items) if items else None
    gap = coverage - score if coverage is not None and score is not None else None
    return PassAtK(node=node, pass_at=values, coverage=None if coverage is None else round(coverage, 6),
                   selection_gap=None if gap is None else round(gap, 6), items=len(items),
                   samples_min=min(ns, default=0), samples_max=max(ns, default=0), notes=notes)


def format_pass_at(p: dict[str, Any]) -> list[str]:
    """The text report's lines, from ``PassAtK.to_dict()``."""
    n = p["pass_at_samples"]
    per_item = f"{n['min']}" if n["min"] == n["max"] else f"{n['min']}-{n['max']}"
    ks = ", ".join(f"pass@{k} {_pct(v)}" for k, v in p["pass_at"].items())
    return [f"  node '{p['pass_at_node']}' ({per_item} candidates per item, {n['items']} items): "
             f"coverage {_pct(p['coverage'])}, selection gap {_points(p['selection_gap'])}" + (f"; {ks}" if ks else "")] + [f"  {note}" for note in p.get("pass_at_notes", [])]


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.1%}"


def _points(v: float | None) -> str:
    return "n/a" if v is None else f"{v * 100:+.1f} points"
