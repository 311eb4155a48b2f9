"""vote (self-consistency): group candidates by their extracted final answer; the majority wins."""

from __future__ import annotations

__all__ = ["Vote", "VoteConfig", "tally"]

from collections.abc import Sequence
from typing import Literal

from pydantic import Field, model_validator

from archon.types import Candidate, Query
from operators.answers import extract
from operators.base import OpConfig, Operator, Regex

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


class Vote(Operator[VoteConfig]):
    """Self-consistency: the answer most candidates agree on, with its share of the votes as confidence.

    Cost: no model call. Ties: the answer whose first candidate comes earliest in input order wins.
    Fallback: when no candidate has an extractable answer, the inputs pass through unchanged with a note.
    """

    kind = "vote"
    summary = "Majority vote over the candidates' extracted final answers (self-consistency)."

    async def __call__(self, inputs: list[Candidate], query: Query, ctx) -> list[Candidate]:
        cfg = self.config
        if not inputs:
            return []
        if cfg.extractor == "code_outputs":
            from operators.unit_test import code_output_signatures

            answers = await code_output_signatures(inputs, query)
        else:
            answers = [extract(c.text, cfg.extractor, cfg.pattern) for c in inputs]
        groups = tally(answers)
        counted = sum(len(m) for _, m in groups)
        if not groups:
            note = f"vote fallback: no candidate had a '{cfg.extractor}' answer; inputs passed through"
            return [c.noted(note) for c in inputs]
        out = []
        for answer, members in groups:
            share = len(members) / counted
            first = inputs[members[0]]
            out.append(first.evolve(score=share, meta={**first.meta, "answer": answer, "votes": len(members), "voters": counted}))
        return out[:1] if cfg.keep == "winner" else out
