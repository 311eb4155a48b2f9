"""verify: an LLM verifier reasons about each candidate, then gives a verdict; keep the verified."""

from __future__ import annotations

__all__ = ["Verify", "VerifyConfig", "parse_verdict"]

import asyncio
import re
from typing import Literal

from pydantic import Field

from archon.types import Candidate, Query
from operators.base import ModelCallConfig, Operator, abstention, build_request, render, split_tests

DEFAULT_PROMPT = """Check whether the response correctly and completely answers the query. Reason step by step about its correctness first. Then, on the last line, write exactly "Verdict: correct" or "Verdict: incorrect".

Query:
{query}

Response:
{candidate}

Reasoning:"""

REASONING_PROMPT = """Explain step by step whether the response below answers the query accurately and completely. Give only the reasoning, no verdict.

Query:
{query}

Response:
{candidate}

Reasoning:"""

VERDICT_PROMPT = """Given the query, the response and a reasoning about it, decide whether the response is correct. Check that the reasoning is itself sound and complete. Explain briefly, then on the last line write exactly "Verdict: correct" or "Verdict: incorrect".

Query:
{query}

Response:
{candidate}

Reasoning:
{reasoning}

Evaluation:"""

_VERDICT = re.compile(
    r"verdict\W{0,6}(correct|incorrect|wrong|right|yes|no|true|false|pass(?:ed)?|fail(?:ed)?|valid|invalid)", re.IGNORECASE
)
_POSITIVE = {"correct", "right", "yes", "true", "pass", "passed", "valid"}


def parse_verdict(text: str) -> bool | None:
    """True/False from the last "Verdict: ..." in the reply; None when there is none."""
    found = _VERDICT.findall(text)
    if not found:
        return None
    return found[-1].lower() in _POSITIVE


class VerifyConfig(ModelCallConfig):
    model: str = Field(..., description="'<backend>/<model>' of the verifier.")
    first_k: int | None = Field(
        default=None, ge=1, description="Stop once this many candidates are verified (checked in input order, 'batch' at a time)."
    )
    abstain: bool = Field(default=False, description="When no candidate passes, answer nothing (the run abstains, its "
                          "output empty and marked abstained) instead of keeping them all. Output node only.")
    batch: int = Field(default=4, ge=1, description="Candidates verified concurrently per wave (with first_k: the most wasted calls).")
    temperature: float = Field(default=0.0, ge=0, le=2, description="Sampling temperature of the verifier.")
    max_tokens: int = Field(default=512, ge=1, description="Most tokens in the verifier's reasoning and verdict.")
    prompt: str = Field(default=DEFAULT_PROMPT, description="Template: {query}, {candidate}. {tests}: the tests of a write_tests input, '- ' a line (it is then no candidate).")
    steps: Literal[1, 2] = Field(
        default=1, description="1: one call reasons and gives the verdict; 2: a reasoning call, then a verdict call that "
        "reads it (the original Archon's verifier; 'prompt' is then the reasoning prompt, by default one asking for no verdict).",
    )
    verdict_prompt: str = Field(default=VERDICT_PROMPT, description="steps 2: template of the verdict call: {query}, {candidate}, {reasoning}. {tests}: the tests of a write_tests input, '- ' a line (it is then no candidate).")

    def model_refs(self) -> list[str]:
        return [self.model]


class Verify(Operator[VerifyConfig]):
    """Keeps the candidates the verifier judges correct, in input order.

    Cost: one call per candidate checked (two with ``steps: 2``); with ``first_k``, waves of ``batch`` stop once enough
    passed. Fallback: when none passes, all candidates are kept, marked unverified (``meta.verified``
    False) with a note; a reply without a verdict counts as not verified and says so in a note.
    """

    kind = "verify"
    summary = "An LLM verifier reasons, then gives a verdict per candidate; keep the verified ones."

    def call_bound(self, fan_in: int) -> tuple[int, int]:
        """At most ``steps`` calls per candidate (first_k may stop early); the fallback keeps them all."""
        return fan_in * self.config.steps, fan_in

    async def __call__(self, inputs: list[Candidate], query: Query, ctx) -> list[Candidate]:
        cfg = self.config
        tests, inputs = split_tests(inputs)
        checked: list[Candidate] = []
        passed = 0
        for start in range(0, len(inputs), cfg.batch):
            wave = inputs[start : start + cfg.batch]
            comps = await asyncio.gather(*(self._check(c, query, ctx, tests) for c in wave))
            for c, comp in zip(wave, comps):
                verdict = parse_verdict(comp.texts[0])
                c = c.evolve(meta={**c.meta, "verified": bool(verdict), "verification": comp.texts[0].strip()})
                if verdict is None:
                    c = c.noted("verify: no verdict found in the verifier's reply; counted as not verified")
                passed += bool(verdict)
                checked.append(c)
            if cfg.first_k is not None and passed >= cfg.first_k:
                break
        kept = [c for c in checked if c.meta["verified"]]
        if cfg.first_k is not None:
            kept = kept[: cfg.first_k]
        if kept:
            return kept
        if cfg.abstain:
            return [abstention(self.node_id, f"verify: none of {len(checked)} candidates was verified; abstained")]
        note = "verify fallback: no candidate was verified; all kept, unverified"
        unchecked = inputs[len(checked):]
        return [c.noted(note) for c in checked] + [c.evolve(meta={**c.meta, "verified": False}).noted(note) for c in unchecked]

    async def _check(self, cand: Candidate, query: Query, ctx, tests: str = ""):
        """The verifier's reply for one candidate: one call, or (steps 2) reasoning then verdict."""
        cfg = self.config
        template = REASONING_PROMPT if cfg.steps == 2 and cfg.prompt == DEFAULT_PROMPT else cfg.prompt
        prompt = render(template, query=query.text, candidate=cand.text, tests=tests)
        comp = await ctx.complete(cfg.model, build_request(cfg, cfg.model, prompt))
        if cfg.steps == 1:
            return comp
        verdict = render(cfg.verdict_prompt, query=query.text, candidate=cand.text, reasoning=comp.texts[0], tests=tests)
        return await ctx.complete(cfg.model, build_request(cfg, cfg.model, verdict))
