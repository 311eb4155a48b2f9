"""A spending limit for a whole command (``archon search --budget-usd / --budget-tokens / --max-calls``).

``BudgetedBackend`` sits under the cache, so only real requests spend. Before sending a request it
reserves the request's worst case: every byte of the prompt as a token (a token is at least one
byte) plus ``max_tokens`` for each sample, priced. A request whose worst case would cross a limit
is refused with ``BudgetExhausted``; the reservation is replaced by the measured usage when the
answer arrives. So the spend stays at or below the limit even with many requests in flight.
Without limits a ``Budget`` is still the exact meter of what was issued.
"""

from __future__ import annotations

__all__ = ["Budget", "BudgetedBackend", "Spend"]

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass

from archon.exceptions import BudgetExhausted
from backends.base import (
    Backend, CallFn, Completion, CompletionRequest, StreamItem, can_reward, can_stream, open_stream, reward_of,
)
from backends.ports import PriceTable

# A request without max_tokens could run to the model's context; this is what the reservation assumes.
UNBOUNDED_MAX_TOKENS = 8192
# Chat templates add a few tokens per message around the text.
PER_MESSAGE_TOKENS = 16


@dataclass(frozen=True, slots=True)
class Spend:
    usd: float = 0.0
    tokens: int = 0
    calls: int = 0

    def __add__(self, other: Spend) -> Spend:
        return Spend(self.usd + other.usd, self.tokens + other.tokens, self.calls + other.calls)

    def __sub__(self, other: Spend) -> Spend:
        return Spend(self.usd - other.usd, self.tokens - other.tokens, self.calls - other.calls)


class Budget:
    """Limits on dollars, tokens and requests issued; ``base`` is what was spent before this process."""

    def __init__(self, usd: float | None = None, tokens: int | None = None, calls: int | None = None,
                 pricing: PriceTable | None = None):
        self.usd, self.tokens, self.calls = usd, tokens, calls
        self.pricing = pricing
        self.base = Spend()
        self.spent = Spend()  # measured, this process
        self._reserved = Spend()
        self._in_flight = 0  # counted apart: float sums of reservations need not come back to exactly 0
        self.exhausted: str | None = None
        self._settled: asyncio.Condition | None = None  # made in the event loop that waits on it
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def total(self) -> Spend:
        return self.base + self.spent

    def over(self, extra: Spend = Spend()) -> str | None:
        """Why ``total + reserved + extra`` would cross a limit, or None."""
        t = self.total + self._reserved + extra
        if self.usd is not None and t.usd > self.usd + 1e-12:
            return f"dollar budget: ${self.total.usd:.4f} spent of ${self.usd:.4f}"
        if self.tokens is not None and t.tokens > self.tokens:
            return f"token budget: {self.total.tokens} spent of {self.tokens}"
        if self.calls is not None and t.calls > self.calls:
            return f"call budget: {self.total.calls} issued of {self.calls}"
        return None

    def worst_case(self, backend: str, request: CompletionRequest) -> Spend:
        text = request.prompt_text()
        prompt = len(text.encode("utf-8")) + PER_MESSAGE_TOKENS * (len(request.messages) + 1)
        completion = (request.max_tokens or UNBOUNDED_MAX_TOKENS) * request.n
        usd = 0.0
        if self.pricing is not None:
            usd = self.pricing.cost(backend, request.model, prompt, completion) or 0.0
        return Spend(usd, prompt + completion, 1)

    async def reserve(self, backend: str, request: CompletionRequest) -> Spend:
        """Reserve the request's worst case; near the limit, wait for requests in flight to settle first
        (their worst cases are far above what they usually cost). Refuse once nothing is in flight."""
        est = self.worst_case(backend, request)
        if self.usd is None and self.tokens is None and self.calls is None:
            self._reserved = self._reserved + est  # a meter only: nothing to wait for
            self._in_flight += 1
            return est
        async with self._condition():
            while True:
                why = self.exhausted or self.over(est)
                if why is None:
                    self._reserved = self._reserved + est
                    self._in_flight += 1
                    return est
                if self.exhausted or self._in_flight == 0:
                    self.exhausted = why
                    raise BudgetExhausted(f"stopped before a request that could cross the {why}")
                await self._condition().wait()

    async def settle(self, reserved: Spend, actual: Spend) -> None:
        self._reserved = self._reserved - reserved
        self._in_flight -= 1
        self.spent = self.spent + actual
        if self._settled is not None and self._loop is asyncio.get_running_loop():
            async with self._settled:
                self._settled.notify_all()

    def _condition(self) -> asyncio.Condition:
        loop = asyncio.get_running_loop()
        if self._settled is None or self._loop is not loop:  # a runtime may outlive one asyncio.run
            self._settled, self._loop = asyncio.Condition(), loop
        return self._settled


class BudgetedBackend:
    """Refuses requests that could cross the budget; meters the ones it lets through."""

    def __init__(self, inner: Backend, budget: Budget):
        self.inner = inner
        self.name = inner.name
        self.budget = budget

    @property
    def can_reward(self) -> bool:
        return can_reward(self.inner)

    async def complete(self, request: CompletionRequest) -> Completion:
        return await self._budgeted(self.inner.complete, request)

    async def reward(self, request: CompletionRequest) -> Completion:
        return await self._budgeted(reward_of(self.inner), request)

    async def _budgeted(self, call: CallFn, request: CompletionRequest) -> Completion:
        est = await self.budget.reserve(self.name, request)
        try:
            comp = await call(request)
        except BaseException:
            # A failed request still counts as issued; its tokens, if any, are unknown.
            await asyncio.shield(self.budget.settle(est, Spend(0.0, 0, 1)))
            raise
        await self.budget.settle(est, _spent(comp, est))
        return comp

    @property
    def can_stream(self) -> bool:
        return can_stream(self.inner)

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamItem]:
        est = await self.budget.reserve(self.name, request)
        settled = False
        try:
            async with aclosing(open_stream(self.inner, request)) as items:
                async for item in items:
                    if isinstance(item, Completion):
                        settled = True
                        await self.budget.settle(est, _spent(item, est))
                    yield item
        finally:
            if not settled:  # failed or abandoned mid-stream: issued, tokens unknown
                await asyncio.shield(self.budget.settle(est, Spend(0.0, 0, 1)))


def _spent(comp: Completion, reserved: Spend) -> Spend:
    tokens = comp.usage.total_tokens
    if tokens is None:  # the server did not say: count the worst case, never the limit's blind spot
        return Spend(reserved.usd if comp.cost_usd is None else comp.cost_usd, reserved.tokens, 1)
    return Spend(comp.cost_usd or 0.0, tokens, 1)
