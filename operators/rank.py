"""rank: an LLM orders the candidates and the best ``top_k`` are kept."""

from __future__ import annotations

__all__ = ["Rank", "RankConfig", "parse_ranking"]

import re

from pydantic import Field

from archon.types import Candidate, Query
from operators.base import ModelCallConfig, Operator, build_request, render, split_tests

DEFAULT_PROMPT = """Rank the following {n} responses to the query, from best to worst, by how correct, complete and helpful they are.

Query:
{query}

{candidates}

Answer with the identifiers only, best first, in the form [2] > [1] > [3]. Ranking:"""


class RankConfig(ModelCallConfig):
    model: str = Field(..., description="'<backend>/<model>' of the ranker.")
    top_k: int = Field(default=3, ge=1, description="How many of the best candidates to keep.")
    temperature: float = Field(default=0.0, ge=0, le=2, description="Sampling temperature of the ranker.")
    max_tokens: int = Field(default=256, ge=1, description="Most tokens in the ranker's reply.")
    prompt: str = Field(default=DEFAULT_PROMPT, description="Template: {query}, {candidates} (numbered [1]..[n]), {n}. {tests}: the tests of a write_tests input, '- ' a line (it is then no candidate).")

    def model_refs(self) -> list[str]:
        return [self.model]


def parse_ranking(text: str, n: int) -> tuple[list[int], str | None]:
    """Zero-based order parsed from "[2] > [1] > [3]" (or "2 > 1 > 3"), and a note when it fell short.

    Unmentioned candidates follow in input order; nothing parseable keeps the input order.
    """
    found = re.findall(r"\[(\d+)\]", text)
    if not found:
        found = re.findall(r"(?<![\w.])(\d+)(?![\w.])", text)
    order: list[int] = []
    for tok in found:
        i = int(tok) - 1
        if 0 <= i < n and i not in order:
            order.append(i)
    if not order:
        snippet = text.strip().replace("\n", " ")[:80]
        return list(range(n)), f"rank fallback: no ranking found in the ranker's reply ({snippet!r}); kept input order"
    note = None
    if len(order) < n:
        note = f"rank: the ranker ordered {len(order)} of {n} candidates; the rest follow in input order"
        order += [i for i in range(n) if i not in order]
    return order, note


def number_candidates(cands: list[Candidate]) -> str:
    parts = []
    for i, c in enumerate(cands, 1):
        block = f"[{i}]\n{c.text.strip()}"
        if c.critique:
            block += f"\nCritique of [{i}]: {c.critique.strip()}"
        parts.append(block)
    return "\n\n".join(parts)


class Rank(Operator[RankConfig]):
    """Orders the candidates with one LLM call and keeps ``top_k``.

    Cost: one call (none when there is at most one candidate). Fallback: an unparseable reply keeps
    the input order; the reason travels on every kept candidate as a note.
    """

    kind = "rank"
    summary = "An LLM orders the candidates; keep the best top_k."

    def call_bound(self, fan_in: int) -> tuple[int, int]:
        """One call unless at most one candidate can arrive (then nothing to order); keeps top_k."""
        return int(fan_in > 1), min(fan_in, self.config.top_k)

    async def __call__(self, inputs: list[Candidate], query: Query, ctx) -> list[Candidate]:
        cfg = self.config
        tests, inputs = split_tests(inputs)
        if len(inputs) <= 1:
            return list(inputs)
        prompt = render(cfg.prompt, query=query.text, candidates=number_candidates(inputs), n=len(inputs), tests=tests)
        comp = await ctx.complete(cfg.model, build_request(cfg, cfg.model, prompt))
        order, note = parse_ranking(comp.texts[0], len(inputs))
        kept = []
        for pos, i in enumerate(order[: cfg.top_k]):
            c = inputs[i].evolve(meta={**inputs[i].meta, "rank": pos + 1})
            kept.append(c.noted(note) if note else c)
        return kept
