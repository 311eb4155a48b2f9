"""rank: an LLM orders the candidates (in one listwise call, or by a tournament of pairwise
comparisons) and the best ``top_k`` are kept."""

from __future__ import annotations

__all__ = ["Rank", "RankConfig", "parse_ranking"]

import asyncio
import re
from typing import Literal

from pydantic import Field

from archon.types import Candidate, Query
from operators.base import ModelCallConfig, Operator, build_request, render, split_tests
from operators.tournament import PAIR_PROMPT, knockout, pairwise_calls, parse_pair, round_robin

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
    method: Literal["listwise", "pairwise"] = Field(
        default="listwise", description="'listwise': one call orders all; 'pairwise': a tournament of two-candidate comparisons.")
    tournament: Literal["knockout", "round_robin"] = Field(
        default="knockout", description="pairwise: 'knockout' (n-1 comparisons; the rest ordered by the round reached) or "
        "'round_robin' (every pair, n(n-1)/2 comparisons; ordered by wins).")
    both_orders: bool = Field(default=False, description="pairwise: judge each pair twice, swapped (judges favour a "
                              "position); a split verdict is a tie. Doubles the calls.")
    pair_prompt: str = Field(default=PAIR_PROMPT, description="pairwise: template: {query}, {a}, {b}, {tests}; the reply "
                             "ends with 'Better: A' or 'Better: B'.")

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
    """Orders the candidates with one LLM call, or a pairwise tournament, and keeps ``top_k``.

    Cost: listwise, one call; pairwise, ``n - 1`` (knockout) or ``n (n - 1) / 2`` (round robin)
    calls, twice that with ``both_orders``; none when at most one candidate arrives. Fallback: an
    unparseable listwise reply keeps the input order; a comparison without a verdict is a tie (the
    earlier candidate advances in a knockout). The reason travels on every kept candidate as a note.
    """

    kind = "rank"
    summary = "An LLM orders the candidates; keep the best top_k."

    def call_bound(self, fan_in: int) -> tuple[int, int]:
        """Listwise: one call unless at most one candidate can arrive; pairwise: every match of the tournament."""
        cfg = self.config
        calls = pairwise_calls(fan_in, cfg.tournament, cfg.both_orders) if cfg.method == "pairwise" else int(fan_in > 1)
        return calls, min(fan_in, cfg.top_k)

    async def __call__(self, inputs: list[Candidate], query: Query, ctx) -> list[Candidate]:
        cfg = self.config
        tests, inputs = split_tests(inputs)
        if len(inputs) <= 1:
            return list(inputs)
        if cfg.method == "pairwise":
            order, note = await self._tournament(inputs, query, ctx, tests)
        else:
            prompt = render(cfg.prompt, query=query.text, candidates=number_candidates(inputs), n=len(inputs), tests=tests)
            comp = await ctx.complete(cfg.model, build_request(cfg, cfg.model, prompt))
            order, note = parse_ranking(comp.texts[0], len(inputs))
        kept = []
        for pos, i in enumerate(order[: cfg.top_k]):
            c = inputs[i].evolve(meta={**inputs[i].meta, "rank": pos + 1})
            kept.append(c.noted(note) if note else c)
        return kept

    async def _tournament(self, inputs: list[Candidate], query: Query, ctx, tests: str) -> tuple[list[int], str | None]:
        cfg = self.config

        async def ask(i: int, j: int) -> int | None:
            prompt = render(cfg.pair_prompt, query=query.text, a=inputs[i].text.strip(), b=inputs[j].text.strip(), tests=tests)
            return parse_pair((await ctx.complete(cfg.model, build_request(cfg, cfg.model, prompt))).texts[0])

        async def judge(i: int, j: int) -> int | None:
            if not cfg.both_orders:
                return await ask(i, j)
            first, swapped = await asyncio.gather(ask(i, j), ask(j, i))
            return first if swapped is not None and first == 1 - swapped else None  # split or missing: a tie

        play = knockout if cfg.tournament == "knockout" else round_robin
        order, undecided = await play(len(inputs), judge)
        note = f"rank: {undecided} pairwise comparison(s) had no clear verdict and counted as ties" if undecided else None
        return order, note
