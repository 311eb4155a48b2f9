"""The ``contains`` scorer: 1 when the reference answer appears in the output, ignoring case,
punctuation and articles (SQuAD's normalisation); a plain function, sync, returning a number."""

from __future__ import annotations

__all__ = ["contains"]

from archon.evals.scorers import normalize_answer


def contains(output: str, item, ctx) -> float:
    refs = item.reference if isinstance(item.reference, list) else [item.reference]
    said = f" {normalize_answer(output)} "
    return float(any(r is not None and f" {normalize_answer(str(r))} " in said for r in refs))
