"""What the backend wrappers need from the outside, as three small interfaces.

The recording and caching wrappers (``backends.wrappers``) write rows and read cached samples, but
never know where those live: ``backends`` does not import ``stores`` (DESIGN.md, layers). The store's
recorder (``stores.recorder.Recorder``) implements ``CallSink`` and ``SampleCache``; the runtime
(``archon.context``) hands it to the wrappers. A test can hand them a list's ``append`` or a dict.

The rows themselves are plain data from ``archon.records``.
"""

from __future__ import annotations

__all__ = ["CallSink", "PriceTable", "SampleCache"]

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from archon.records import CachedSample, CallRecord


@runtime_checkable
class CallSink(Protocol):
    """Where call rows go. Must not block: the call is on the hot path of every model call."""

    def record_call(self, record: CallRecord) -> None: ...


@runtime_checkable
class SampleCache(Protocol):
    """Samples answered earlier, by request key and sample index."""

    async def get_samples(self, key: str, samples: Sequence[int]) -> dict[int, CachedSample]:
        """The cached ones among ``samples``; missing ones are absent."""
        ...

    def put_samples(self, entries: Sequence[CachedSample]) -> None:
        """Keep freshly answered samples; must not block (written later, in batches)."""
        ...


class PriceTable(Protocol):
    """Dollars for one call, or None when the price or the usage is unknown (``stores.Pricing`` is one)."""

    def cost(self, backend: str, model: str, prompt_tokens: int | None, completion_tokens: int | None) -> float | None: ...
