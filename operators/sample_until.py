"""sample_until: adaptive sampling. Draw samples in waves until they agree, a verifier passes one,
or ``max_samples`` is reached, so easy queries stop after a wave or two and hard ones get the rest.

After "Adaptive inference-time compute" (Manvi et al. 2024: sample until a self-evaluation says
"good enough") and adaptive-consistency (Aggarwal et al. 2023: sample until the majority is clear).

Wave w asks for the sample indices that continue the earlier waves' (0-1, then 2-3, ...), in the
same request otherwise, so every sample is cached on its own: a rerun replays from the cache, and a
``generate`` node with the same prompt and settings shares its samples with this one.
"""

from __future__ import annotations

__all__ = ["SampleUntil", "SampleUntilConfig"]

import asyncio
import math
from typing import Any, Literal

from pydantic import Field, model_validator

from archon.types import SAMPLES_USED, Candidate, Query
from operators.answers import extract
from operators.base import ModelCallConfig, Operator, Regex, build_request, render
from operators.generate import SamplingConfig, prompt_for, sampling_request
from operators.verify import DEFAULT_PROMPT as VERIFY_PROMPT
from operators.verify import parse_verdict
from operators.vote import tally


class SampleUntilConfig(SamplingConfig):
    max_samples: int = Field(default=16, ge=1, le=1024, description="Most samples per model: what a query gets when the stop rule never fires.")
    wave: int = Field(
        default=2, ge=1, le=1024, description="Samples per model per wave (one request per model); the stop rule is checked after each wave."
    )
    until: Literal["agree", "verify"] = Field(
        default="agree", description="agree: stop once the top answer's share of the samples drawn reaches 'threshold'; "
        "verify: stop at the first sample the 'verifier' model judges correct.",
    )
    threshold: float = Field(default=0.75, gt=0, le=1, description="agree: the top answer's share of all samples drawn (no answer counts against).")
    min_agree: int = Field(default=2, ge=1, description="agree: the top answer needs at least this many samples (so one sample never agrees with itself).")
    extractor: Literal["last_number", "boxed", "choice", "regex", "text"] = Field(
        default="last_number", description="agree: how to read each sample's final answer, as vote does."
    )
    pattern: Regex | None = Field(default=None, description="Regular expression for extractor 'regex' (its first group is the answer).")
    verifier: str | None = Field(default=None, description="verify: '<backend>/<model>' of the verifier; it checks each new sample at temperature 0.")
    verify_prompt: str = Field(default=VERIFY_PROMPT, description="verify: template of the verifier's call: {query}, {candidate}; its reply ends 'Verdict: correct'.")
    keep: Literal["all", "first"] = Field(
        default="all", description="all: every sample drawn, the majority's (or the verified one) first; first: only that one."
    )

    @model_validator(mode="after")
    def _rule_needs(self):
        if self.until == "verify" and not self.verifier:
            raise ValueError("until 'verify' needs 'verifier': the '<backend>/<model>' that checks each sample")
        if self.extractor == "regex" and not self.pattern:
            raise ValueError("extractor 'regex' needs 'pattern', e.g. pattern: 'Answer: (.+)'")
        return self

    def model_refs(self) -> list[str]:
        return self.models() + ([self.verifier] if self.verifier else [])


class SampleUntil(Operator[SampleUntilConfig]):
    """Samples in waves of ``wave`` per model until the stop rule fires or ``max_samples`` are drawn.

    Output: every sample drawn, the majority's (agree) or the verified one (verify) first, then the
    rest in the order drawn; each carries ``meta.samples_used`` (the query's samples, all models),
    ``meta.stopped`` (agree | verified | max) and, for agree, ``meta.agreement``. Cost: one request
    per model per wave, plus with ``verify`` one verifier call per sample drawn. Fallback: a rule
    that never fires stops at ``max_samples`` and keeps everything (plurality first), with a note.
    """

    kind = "sample_until"
    summary = "Adaptive sampling: draw samples in waves until they agree or a verifier passes one (at most max_samples)."

    def call_bound(self, fan_in: int) -> tuple[int, int]:
        """Every wave with a request per model; verify adds one call per sample. Inputs only shape the prompt."""
        cfg = self.config
        models = len(cfg.models())
        calls = math.ceil(cfg.max_samples / min(cfg.wave, cfg.max_samples)) * models
        if cfg.until == "verify":
            calls += cfg.max_samples * models
        return calls, 1 if cfg.keep == "first" else cfg.max_samples * models

    async def __call__(self, inputs: list[Candidate], query: Query, ctx) -> list[Candidate]:
        cfg = self.config
        prompt = prompt_for(cfg, query, inputs)
        models = cfg.models()
        drawn: list[Candidate] = []
        answers: list[str | None] = []
        first: list[int] = []  # indices (into drawn) to put first: the majority's, or the verified one
        stop, share = "max", 0.0
        while (start := len(drawn) // len(models)) < cfg.max_samples:
            ks = tuple(range(start, min(start + cfg.wave, cfg.max_samples)))
            comps = await asyncio.gather(*(ctx.complete(m, sampling_request(cfg, m, prompt, query, inputs, ks)) for m in models))
            new = [Candidate(text=t, node=self.node_id, model=m, sample=k, usage=u, logprobs=tuple(lp) if lp is not None else None)
                   for m, comp in zip(models, comps)
                   for k, t, u, lp in zip(ks, comp.texts, comp.usage.split(len(comp.texts)), comp.logprobs or [None] * len(comp.texts))]
            drawn += new
            if cfg.until == "verify":
                passed = await self._verified(new, query, ctx)
                if passed is not None:
                    stop, first = "verified", [len(drawn) - len(new) + passed]
                    break
                continue
            answers += [extract(c.text, cfg.extractor, cfg.pattern) for c in new]
            groups = tally(answers)
            first = groups[0][1] if groups else []
            share = len(first) / len(drawn)
            if len(first) >= cfg.min_agree and share >= cfg.threshold:
                stop = "agree"
                break
        return self._output(drawn, first, stop, share)

    async def _verified(self, wave: list[Candidate], query: Query, ctx) -> int | None:
        """The index in ``wave`` of the first sample the verifier passes, or None. The wave's samples
        are checked concurrently: one verifier round per wave on the critical path, not one per sample."""
        cfg = self.config
        assert cfg.verifier is not None  # SampleUntilConfig's validator requires it for until 'verify'
        # Only mode and length carry over: the samples' system prompt and stop sequences could cut the verdict off.
        judge = ModelCallConfig(temperature=0.0, max_tokens=cfg.max_tokens, mode=cfg.mode)
        comps = await asyncio.gather(*(
            ctx.complete(cfg.verifier, build_request(judge, cfg.verifier, render(cfg.verify_prompt, query=query.text, candidate=c.text)))
            for c in wave
        ))
        return next((i for i, comp in enumerate(comps) if parse_verdict(comp.texts[0])), None)

    def _output(self, drawn: list[Candidate], first: list[int], stop: str, share: float) -> list[Candidate]:
        cfg = self.config
        meta: dict[str, Any] = {SAMPLES_USED: len(drawn), "stopped": stop}
        if cfg.until == "agree":
            meta["agreement"] = round(share, 4)
        lead = set(first)
        ordered = [drawn[i] for i in first] + [c for i, c in enumerate(drawn) if i not in lead]
        out = [c.evolve(meta={**c.meta, **meta}) for c in ordered]
        if stop == "max":
            if cfg.until == "verify":
                why = "no sample verified"
            else:
                why = f"agreement {share:.2f} < {cfg.threshold}" if first else f"no sample had a '{cfg.extractor}' answer"
            order = "plurality first" if cfg.until == "agree" else "in the order drawn"
            out = [c.noted(f"sample_until: no stop after {len(drawn)} samples ({why}); all kept, {order}") for c in out]
        return out[:1] if cfg.keep == "first" else out
