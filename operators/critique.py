"""critique: strengths and weaknesses for each candidate; the critique travels with it to rank/fuse."""

from __future__ import annotations

__all__ = ["Critique", "CritiqueConfig", "split_critiques"]

import asyncio
import re
from typing import Literal

from pydantic import Field

from archon.types import Candidate, Query
from operators.base import ModelCallConfig, Operator, build_request, render, split_tests
from operators.rank import number_candidates

EACH_PROMPT = """Critically review the response to the query below. List its strengths and its weaknesses: factual or logical errors, missing parts, unclear wording. Be specific and brief; do not rewrite the response.

Query:
{query}

Response:
{candidate}

Strengths and weaknesses:"""

ALL_PROMPT = """Critically review each of the {n} responses to the query below. For each, list strengths and weaknesses (errors, missing parts, unclear wording). Be specific and brief. Start each review with the response's identifier on its own line, like:
[1]
Strengths: ...
Weaknesses: ...

Query:
{query}

{candidates}

Reviews:"""


class CritiqueConfig(ModelCallConfig):
    model: str = Field(..., description="'<backend>/<model>' of the critic.")
    per: Literal["candidate", "all"] = Field(
        default="candidate", description="'candidate': one call per candidate (concurrent); 'all': one call reviewing all of them."
    )
    temperature: float = Field(default=0.0, ge=0, le=2, description="Sampling temperature of the critic.")
    max_tokens: int = Field(default=384, ge=1, description="Most tokens per critique (per='all': for all of them).")
    prompt: str | None = Field(default=None, description="Template; per='candidate': {query}, {candidate}; per='all': {query}, {candidates}, {n}. {tests}: the tests of a write_tests input, '- ' a line (it is then no candidate).")

    def model_refs(self) -> list[str]:
        return [self.model]


def split_critiques(text: str, n: int) -> dict[int, str]:
    """Zero-based index -> critique, from a reply whose reviews start with "[i]"."""
    parts = re.split(r"^\s*\**\[(\d+)\]\**:?\s*$|^\s*\**\[(\d+)\]\**:?\s+", text, flags=re.MULTILINE)
    out: dict[int, str] = {}
    # re.split with two groups yields: head, g1, g2, body, g1, g2, body, ...
    for k in range(1, len(parts) - 2, 3):
        num = parts[k] or parts[k + 1]
        body = (parts[k + 2] or "").strip()
        if num and body and 1 <= int(num) <= n and int(num) - 1 not in out:
            out[int(num) - 1] = body
    return out


class Critique(Operator[CritiqueConfig]):
    """Adds a critique to every candidate (the candidates themselves pass through, in order).

    Cost: one call per candidate (per='candidate') or one call in all (per='all'). Fallback with
    per='all': a candidate whose review cannot be found in the reply keeps no critique and gets a note.
    """

    kind = "critique"
    summary = "An LLM lists strengths and weaknesses of each candidate; rank and fuse read them."

    def call_bound(self, fan_in: int) -> tuple[int, int]:
        """per='candidate': one call per candidate; per='all': one call when any arrives. All pass through."""
        calls = fan_in if self.config.per == "candidate" else int(fan_in > 0)
        return calls, fan_in

    async def __call__(self, inputs: list[Candidate], query: Query, ctx) -> list[Candidate]:
        cfg = self.config
        tests, inputs = split_tests(inputs)
        if not inputs:
            return []
        if cfg.per == "candidate":
            prompts = [render(cfg.prompt or EACH_PROMPT, query=query.text, candidate=c.text, tests=tests) for c in inputs]
            comps = await asyncio.gather(*(ctx.complete(cfg.model, build_request(cfg, cfg.model, p)) for p in prompts))
            return [c.evolve(critique=comp.texts[0].strip()) for c, comp in zip(inputs, comps)]
        prompt = render(cfg.prompt or ALL_PROMPT, query=query.text, candidates=number_candidates(inputs), n=len(inputs), tests=tests)
        comp = await ctx.complete(cfg.model, build_request(cfg, cfg.model, prompt))
        found = split_critiques(comp.texts[0], len(inputs))
        out = []
        for i, c in enumerate(inputs):
            if i in found:
                out.append(c.evolve(critique=found[i]))
            else:
                out.append(c.noted(f"critique fallback: no review of [{i + 1}] found in the critic's reply"))
        return out
