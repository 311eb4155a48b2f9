"""route: estimate how hard the query is, then run only the branch for that difficulty band.

The signal is a confidence in [0, 1] (higher = easier). ``thresholds`` cut it into bands and
``branches`` names one node per band, hardest first: with thresholds [0.5, 0.8] and branches
[hard, medium, easy], a confidence of 0.6 runs ``medium``. The other branches (and whatever
depends only on them) are skipped and spend nothing. The cheap samples taken to measure
agreement are the route's output, so the chosen branch can reuse them.
"""

from __future__ import annotations

__all__ = ["Route", "RouteConfig", "Routed", "Merge", "MergeConfig"]

import asyncio
import bisect
import re
from typing import Literal

from pydantic import Field, model_validator

from archon.types import Candidate, Query
from operators.answers import extract
from operators.base import ModelCallConfig, OpConfig, Operator, Regex, Routed, build_request, render
from operators.verify import parse_verdict
from operators.vote import tally

RATING_PROMPT = """How hard is the following question to answer correctly? Reply with one number from 0 (very hard, likely to be answered wrongly) to 10 (trivial).

Question:
{query}

Difficulty rating (0-10):"""


class RouteConfig(ModelCallConfig):
    signal: Literal["agreement", "self_rating", "verifier", "classifier"] = Field(
        default="agreement",
        description="agreement: share of the majority answer among cheap samples; self_rating: the model rates the "
        "query 0-10; verifier: share of cheap samples the model verifies as correct; classifier: a small model fitted "
        "on the store's past eval results of pipeline 'history' predicts that it answers correctly.",
    )
    model: str | None = Field(default=None, description="'<backend>/<model>' used to measure the signal (a cheap model); not used by 'classifier'.")
    history: str | None = Field(default=None, description="classifier: the pipeline (by name) whose past eval results train it.")
    min_history: int = Field(default=20, ge=2, description="classifier: fewest scored items needed; fewer -> the hardest branch.")
    samples: int = Field(default=5, ge=1, le=64, description="Cheap samples (agreement, verifier).")
    temperature: float = Field(default=0.8, ge=0, le=2, description="Temperature of the cheap samples.")
    extractor: Literal["last_number", "boxed", "choice", "regex", "text"] = Field(
        default="last_number", description="How to read each cheap sample's answer (agreement)."
    )
    pattern: Regex | None = Field(default=None, description="Regular expression for extractor 'regex'.")
    prompt: str = Field(default="{query}", description="Template of the cheap samples: {query}.")
    thresholds: list[float] = Field(..., min_length=1, description="Ascending cut points in [0, 1] between bands.")
    branches: list[str] = Field(..., min_length=2, description="Node ids, one per band, hardest (lowest confidence) first.")

    @model_validator(mode="after")
    def _bands(self):
        if self.signal == "classifier" and not self.history:
            raise ValueError("signal 'classifier' needs 'history': the name of the pipeline whose eval results train it")
        if self.signal != "classifier" and not self.model:
            raise ValueError(f"signal '{self.signal}' needs 'model' (the cheap model that measures it)")
        if len(self.branches) != len(self.thresholds) + 1:
            raise ValueError(f"{len(self.thresholds)} thresholds make {len(self.thresholds) + 1} bands: give that many branches")
        if list(self.thresholds) != sorted(self.thresholds) or not all(0 <= t <= 1 for t in self.thresholds):
            raise ValueError("thresholds must be ascending numbers between 0 and 1")
        if len(set(self.branches)) != len(self.branches):
            raise ValueError("branches must be distinct node ids")
        return self

    def model_refs(self) -> list[str]:
        return [self.model] if self.model else []

    def node_refs(self) -> list[str]:
        return list(self.branches)


class Route(Operator[RouteConfig]):
    """Measures a confidence signal and picks one branch; the others never run.

    Cost: agreement: one request for ``samples`` cheap samples; self_rating: one call; verifier:
    the samples plus one verification per sample. Fallback: a signal that cannot be read (no
    answer extracted, no rating) counts as confidence 0, i.e. the hardest branch, and says so in a note.
    """

    kind = "route"
    summary = "Estimate difficulty from a cheap signal; run only the branch for its band."

    def branches(self) -> tuple[str, ...]:
        return tuple(self.config.branches)

    def call_bound(self, fan_in: int) -> tuple[int, int]:
        """Inputs are ignored: the signal's own calls; only sampled signals output (their samples)."""
        cfg = self.config
        calls = {"agreement": 1, "self_rating": 1, "verifier": 1 + cfg.samples, "classifier": 0}[cfg.signal]
        return calls, cfg.samples if cfg.signal in ("agreement", "verifier") else 0

    async def __call__(self, inputs: list[Candidate], query: Query, ctx) -> Routed:
        cfg = self.config
        samples: list[Candidate] = []
        note = None
        if cfg.signal == "classifier":
            from operators.route_classifier import predict_confidence

            assert cfg.history is not None  # RouteConfig's validator requires it for this signal
            prob, note = await predict_confidence(ctx, cfg.history, query.text, cfg.min_history)
            confidence = 0.0 if prob is None else prob
            if note:
                return Routed([], cfg.branches[0], note=note)
        elif cfg.signal == "self_rating":
            assert cfg.model is not None  # RouteConfig's validator requires it for every signal but 'classifier'
            comp = await ctx.complete(cfg.model, build_request(cfg, cfg.model, render(RATING_PROMPT, query=query.text), temperature=0.0))
            m = re.search(r"\d+(?:\.\d+)?", comp.texts[0])
            confidence = min(float(m.group()), 10.0) / 10 if m else 0.0
            if not m:
                note = f"route fallback: no rating in the reply ({comp.texts[0].strip()[:60]!r}); took the hardest branch"
        else:
            assert cfg.model is not None  # as above
            prompt = render(cfg.prompt, query=query.text)
            comp = await ctx.complete(cfg.model, build_request(cfg, cfg.model, prompt, samples=range(cfg.samples)))
            samples = [Candidate(text=t, node=self.node_id, model=cfg.model, sample=k, usage=u)
                       for k, (t, u) in enumerate(zip(comp.texts, comp.usage.split(len(comp.texts))))]
            if cfg.signal == "agreement":
                groups = tally([extract(c.text, cfg.extractor, cfg.pattern) for c in samples])
                confidence = len(groups[0][1]) / len(samples) if groups else 0.0
                if not groups:
                    note = "route fallback: no answer found in the cheap samples; took the hardest branch"
            else:
                confidence = await self._verified_share(samples, query, ctx)
        band = bisect.bisect_right(cfg.thresholds, confidence)
        branch = cfg.branches[band]
        info = {"signal": cfg.signal, "confidence": round(confidence, 4), "branch": branch}
        out = [c.evolve(meta={**c.meta, "route": info}) for c in samples]
        if note:
            out = [c.noted(note) for c in out]
        return Routed(out, branch, note=note)

    async def _verified_share(self, samples: list[Candidate], query: Query, ctx) -> float:
        from operators.verify import DEFAULT_PROMPT

        cfg = self.config
        assert cfg.model is not None  # only the verifier signal gets here, and it requires a model
        comps = await asyncio.gather(*(
            ctx.complete(cfg.model, build_request(cfg, cfg.model, render(DEFAULT_PROMPT, query=query.text, candidate=c.text), temperature=0.0))
            for c in samples
        ))
        return sum(bool(parse_verdict(c.texts[0])) for c in comps) / len(samples)


class MergeConfig(OpConfig):
    top_k: int | None = Field(default=None, ge=1, description="Keep at most this many (in input order); default all.")


class Merge(Operator[MergeConfig]):
    """Passes on the candidates of its inputs that ran (the join after a route). No model call."""

    kind = "merge"
    summary = "Join: pass on the candidates of whichever inputs ran (e.g. after a route)."

    def call_bound(self, fan_in: int) -> tuple[int, int]:
        """No call; passes on at most ``top_k`` of its inputs."""
        k = self.config.top_k
        return 0, fan_in if k is None else min(fan_in, k)

    async def __call__(self, inputs: list[Candidate], query: Query, ctx) -> list[Candidate]:
        k = self.config.top_k
        return list(inputs if k is None else inputs[:k])
