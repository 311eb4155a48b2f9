"""The store: runs, model calls, their texts and the response cache in one SQL database, plus prices.

    from stores import get_store, CallRecord
    store = get_store("sqlite:///archon.db")        # or None (ARCHON_DB_URL / ./archon.db), or a path
    run_id = store.start_run("my-pipeline", "What is 2+2?")
    store.record_calls([CallRecord(run_id=run_id, backend="openai", model="gpt-4o-mini", ...)])
    store.finish_run(run_id, "ok", output="4")
"""

from __future__ import annotations

__all__ = [
    "DB_URL_ENV",
    "DEFAULT_DB_URL",
    "PRICING_ENV",
    "CachedSample",
    "CallRecord",
    "Price",
    "Pricing",
    "Store",
    "get_store",
]

from .pricing import PRICING_ENV, Price, Pricing
from .store import DB_URL_ENV, DEFAULT_DB_URL, CachedSample, CallRecord, Store, get_store
