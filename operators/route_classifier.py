"""The ``classifier`` signal of ``route``: a small model fitted on past results in the store.

It learns, from a pipeline's scored eval items (``archon eval`` records them), how likely that
pipeline is to answer a query correctly, and routes on that probability: route the query to the
cheap pipeline's branch when it is likely to be right. Fitted once per process and per amount of
history, on hashed word n-grams plus length features, with scikit-learn's logistic regression.
"""

from __future__ import annotations

__all__ = ["fit_classifier", "predict_confidence"]

import asyncio
import re
from typing import Any

from archon.exceptions import MissingDependency

_models: dict[tuple[str, int, int], Any] = {}
_lock = asyncio.Lock()


def _features(texts: list[str]):
    from scipy.sparse import hstack, csr_matrix
    from sklearn.feature_extraction.text import HashingVectorizer

    words = HashingVectorizer(n_features=2**12, alternate_sign=False, ngram_range=(1, 2), norm="l2").transform(texts)
    shape = csr_matrix([[min(len(t), 4000) / 1000, len(re.findall(r"\d+", t)) / 10, t.count("\n") / 20] for t in texts])
    return hstack([words, shape]).tocsr()


def fit_classifier(history: list[tuple[str, float]]) -> Any:
    """A fitted classifier of P(score >= 0.5 | query text); None when the history has one class only."""
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError as exc:
        raise MissingDependency("route's classifier signal", "classifier") from exc
    texts = [t for t, _ in history]
    labels = [int(s >= 0.5) for _, s in history]
    if len(set(labels)) < 2:
        return float(labels[0]) if labels else None  # constant: always right, or always wrong
    return LogisticRegression(C=1.0, max_iter=1000, class_weight="balanced").fit(_features(texts), labels)


async def predict_confidence(ctx: Any, pipeline: str, text: str, min_history: int) -> tuple[float | None, str | None]:
    """(probability that ``pipeline`` answers ``text`` correctly, note). None when there is too little history."""
    history = await ctx.past_scores(pipeline)
    if history is None:
        return None, "route fallback: the classifier signal needs a store with past eval results"
    if len(history) < min_history:
        return None, (f"route fallback: {len(history)} scored eval items of pipeline '{pipeline}' in the store, "
                      f"fewer than min_history={min_history}; run archon eval with it first")
    # Keyed by the history itself: another store, or results rewritten, must not reuse a stale fit.
    key = (pipeline, len(history), hash(tuple(history)))
    async with _lock:
        model = _models.get(key)
        if model is None:
            model = _models[key] = await asyncio.to_thread(fit_classifier, history)
    if isinstance(model, float):
        return model, None
    prob = await asyncio.to_thread(lambda: float(model.predict_proba(_features([text]))[0][1]))
    return prob, None
