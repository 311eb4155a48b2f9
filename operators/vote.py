"""vote (self-consistency): group candidates by their extracted final answer; the majority wins.

With ``weight``, each candidate's vote counts for its score (``score``), the model's probability of
its whole text (``logprob``: RPC's perplexity consistency, Zhou et al. 2025) or its mean token
probability (``perplexity``: 1 / perplexity), summed per answer. Weights are summed in log space, so
the probability of a long reasoning path never underflows to zero.
"""

from __future__ import annotations

__all__ = ["Vote", "VoteConfig", "log_weights", "tally", "weighted_tally"]

import math
from collections.abc import Sequence
from typing import Literal

from pydantic import Field, model_validator

from archon.types import Candidate, Query
from operators.answers import extract
from operators.base import OpConfig, Operator, Regex

Weight = Literal["none", "score", "logprob", "perplexity"]
Extractor = Literal["last_number", "boxed", "choice", "regex", "text", "code_outputs"]


class VoteConfig(OpConfig):
    extractor: Extractor = Field(
        default="last_number",
        description="How to find each candidate's final answer: last_number, boxed (\\boxed{}), choice (a letter A-J), "
        "regex (see 'pattern'), text (the whole normalized text), code_outputs (the program's outputs on the item's tests).",
    )
    pattern: Regex | None = Field(default=None, description="Regular expression for extractor 'regex' (its first group is the answer).")
    keep: Literal["winner", "all"] = Field(
        default="winner", description="'winner': one candidate (the majority's first); 'all': one per answer group, majority first."
    )

    weight: Weight = Field(
        default="none",
        description="What a vote counts for: none (one each: plain majority), score (the candidate's score, e.g. from a "
        "score node), logprob (the probability of its text; identical texts count once: RPC perplexity consistency), "
        "perplexity (its mean token probability, 1/perplexity). logprob and perplexity need generate's logprobs: true.",
    )

    @model_validator(mode="after")
    def _pattern_needed(self):
        if self.extractor == "regex" and not self.pattern:
            raise ValueError("extractor 'regex' needs 'pattern', e.g. pattern: 'Answer: (.+)'")
        return self


def tally(answers: Sequence[str | None]) -> list[tuple[str, list[int]]]:
    """Groups of equal answers as (answer, member indices), largest first.

    Ties go to the answer seen first in input order, so an upstream ranking breaks them.
    """
    groups: dict[str, list[int]] = {}
    for i, a in enumerate(answers):
        if a is not None:
            groups.setdefault(a, []).append(i)
    return sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[1][0]))


def log_weights(cands: Sequence[Candidate], weight: Weight) -> list[float | None]:
    """The log of each candidate's vote weight; None where the candidate lacks what ``weight`` needs
    (a score, or logprobs). A score of 0 is a weight of 0 (log -inf); a negative score has no weight."""
    if weight == "none":
        return [0.0] * len(cands)
    out: list[float | None] = []
    seen: set[str] = set()
    for c in cands:
        if weight == "score":
            out.append(None if c.score is None or c.score < 0 else (math.log(c.score) if c.score > 0 else -math.inf))
        elif not c.logprobs:
            out.append(None)
        elif weight == "perplexity":
            out.append(c.mean_logprob())
        else:
            # RPC counts each distinct path once: its probability already says how likely it is, and
            # counting its repeats too would weigh it by frequency twice.
            out.append(-math.inf if c.text in seen else math.fsum(c.logprobs))
            seen.add(c.text)
    return out


def _logsumexp(values: Sequence[float]) -> float:
    top = max(values, default=-math.inf)
    if top == -math.inf:
        return -math.inf
    return top + math.log(math.fsum(math.exp(v - top) for v in values))


def weighted_tally(answers: Sequence[str | None], logw: Sequence[float]) -> list[tuple[str, list[int], float]]:
    """Groups of equal answers as (answer, member indices, log of the summed weight), heaviest first;
    ties go to the answer seen first in input order."""
    groups = [(a, members, _logsumexp([logw[i] for i in members])) for a, members in tally(answers)]
    return sorted(groups, key=lambda g: (-g[2], g[1][0]))


class Vote(Operator[VoteConfig]):
    """Self-consistency: the answer most candidates agree on (or with the most weight), with its share
    of the votes (of the weight) as confidence.

    Cost: no model call. Ties: the answer whose first candidate comes earliest in input order wins.
    Fallback: when no candidate has an extractable answer, the inputs pass through unchanged with a note;
    when a voter lacks its weight (no score, no logprobs), or every weight is 0, the plain majority
    decides, with a note.
    """

    kind = "vote"
    summary = "Majority vote over the candidates' extracted final answers (self-consistency), optionally weighted by score or logprobs."

    async def __call__(self, inputs: list[Candidate], query: Query, ctx) -> list[Candidate]:
        cfg = self.config
        if not inputs:
            return []
        if cfg.extractor == "code_outputs":
            from operators.unit_test import code_output_signatures

            answers = await code_output_signatures(inputs, query)
        else:
            answers = [extract(c.text, cfg.extractor, cfg.pattern) for c in inputs]
        if not any(a is not None for a in answers):
            none_found = f"vote fallback: no candidate had a '{cfg.extractor}' answer; inputs passed through"
            return [c.noted(none_found) for c in inputs]
        logw, note = self._weights(inputs, answers)
        counted = sum(a is not None for a in answers)
        if logw is None:  # one vote each: exact shares, as plain self-consistency reports them
            groups = [(a, m, float(len(m))) for a, m in tally(answers)]
            total = float(counted)
        else:
            ranked = weighted_tally(answers, logw)
            top = ranked[0][2]  # finite: some voter has weight; relative weights keep exp() in range
            groups = [(a, m, math.exp(lw - top)) for a, m, lw in ranked]
            total = math.fsum(w for _, _, w in groups)
        out = []
        for answer, members, w in groups:
            first = inputs[members[0]]
            meta = {**first.meta, "answer": answer, "votes": len(members), "voters": counted}
            if logw is not None:
                meta["weighted_by"] = cfg.weight
            c = first.evolve(score=w / total, meta=meta)
            out.append(c.noted(note) if note else c)
        return out[:1] if cfg.keep == "winner" else out

    def _weights(self, inputs: list[Candidate], answers: Sequence[str | None]) -> tuple[list[float] | None, str | None]:
        """Each candidate's log weight (None: one vote each), and a note when the plain majority had to stand in."""
        weight = self.config.weight
        if weight == "none":
            return None, None
        logw = log_weights(inputs, weight)
        voting = [lw for a, lw in zip(answers, logw) if a is not None]
        lacking = sum(lw is None for lw in voting)
        if lacking:
            need = "a score (put a score node before the vote)" if weight == "score" else "logprobs (generate with logprobs: true)"
            return None, f"vote fallback: {lacking} of {len(voting)} voters lack {need}; plain majority"
        if all(lw == -math.inf for lw in voting):
            return None, f"vote fallback: every '{weight}' weight is 0; plain majority"
        return [-math.inf if lw is None else lw for lw in logw], None
