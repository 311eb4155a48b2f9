"""The store: runs, model calls, their texts and the response cache in one SQL database, plus prices.

    from stores import Batch, CallRecord, RunFinish, RunStart, get_store
    store = get_store("sqlite:///archon.db")        # or None (ARCHON_DB_URL / ./archon.db), or a path
    store.write_batch(Batch(starts=[RunStart("r1", "my-pipeline", "What is 2+2?")],
                            calls=[CallRecord(run_id="r1", backend="openai", model="gpt-4o-mini", ...)],
                            finishes=[RunFinish("r1", "ok", output="4")]))

A runtime records through a ``Recorder`` (buffered, batched, written off the event loop); the
conformance suite every store passes is ``archon.testing.store_contract.StoreContract``.
"""

from __future__ import annotations

__all__ = [
    "DB_URL_ENV",
    "DEFAULT_DB_URL",
    "PRICING_ENV",
    "Batch",
    "CachedSample",
    "CallRecord",
    "EvalResult",
    "EvalStart",
    "Price",
    "Pricing",
    "Recorder",
    "RunFinish",
    "RunStart",
    "Store",
    "get_store",
]

from .batch import Batch, RunFinish, RunStart
from .evals import EvalResult, EvalStart
from .pricing import PRICING_ENV, Price, Pricing
from .recorder import Recorder
from .store import DB_URL_ENV, DEFAULT_DB_URL, CachedSample, CallRecord, Store, get_store
