"""The ``shorten`` operator: ask a model to shorten each candidate, then enforce the word limit.

It shows the two halves of most operators: a model call through ``ctx.complete`` (never HTTP, never
the store, never a retry: the runtime's wrapper chain does those) and a deterministic step after it.
"""

from __future__ import annotations

__all__ = ["Shorten"]

import asyncio
from typing import ClassVar

from pydantic import Field

from archon.context import RunContext
from archon.types import Candidate, Query
from backends.base import Completion
from operators.base import ModelCallConfig, Operator, build_request, render

PROMPT = "Rewrite this in at most {max_words} words, keeping its meaning:\n{text}"


class ShortenConfig(ModelCallConfig):
    model: str = Field(..., description="The model that shortens, as '<backend>/<model>'.")
    max_words: int = Field(30, ge=1, description="Most words kept per candidate (the reply is cut there).")
    prompt: str = Field(PROMPT, description="Prompt template: {text} is the candidate, {max_words} the limit.")

    def model_refs(self) -> list[str]:
        return [self.model]


class Shorten(Operator[ShortenConfig]):
    """One model call per input candidate (or for the query when the node has no inputs).

    ``Operator[ShortenConfig]`` sets ``Config`` and types ``self.config``."""

    kind = "shorten"
    summary: ClassVar[str] = "Shorten each candidate with a model, then cut it to max_words words."

    async def __call__(self, inputs: list[Candidate], query: Query, ctx: RunContext) -> list[Candidate]:
        cfg = self.config
        sources = inputs or [Candidate(query.text, node=self.node_id)]
        replies = await asyncio.gather(*(self._shorten(c.text, cfg, ctx) for c in sources))
        return [
            Candidate(" ".join(done.texts[0].split()[: cfg.max_words]), node=self.node_id, model=cfg.model,
                      sample=i, usage=done.usage)
            for i, done in enumerate(replies)
        ]

    async def _shorten(self, text: str, cfg: ShortenConfig, ctx: RunContext) -> Completion:
        prompt = render(cfg.prompt, text=text, max_words=cfg.max_words)
        return await ctx.complete(cfg.model, build_request(cfg, cfg.model, prompt))

    def call_bound(self, fan_in: int) -> tuple[int, int]:
        return fan_in, fan_in  # one call and one candidate per input (the query counts as one)
