"""fuse: one or more fuser models synthesize the input candidates into a better answer."""

from __future__ import annotations

__all__ = ["Fuse", "FuseConfig"]

import asyncio

from pydantic import Field

from archon.types import Candidate, Query
from operators.base import ModelCallConfig, Operator, build_request, render, split_tests
from operators.rank import number_candidates

DEFAULT_PROMPT = """You have been given several candidate responses to a query. Critically evaluate them: some may be wrong or incomplete. Synthesize them into a single, accurate, well-structured response that is better than each of them. Do not mention the candidates.

Query:
{query}

Candidate responses:
{candidates}

Response:"""


class FuseConfig(ModelCallConfig):
    model: str | list[str] = Field(..., description="'<backend>/<model>' of the fuser, or a list (each fuser gives one candidate).")
    samples: int = Field(default=1, ge=1, le=64, description="Fused candidates per fuser model.")
    prompt: str = Field(default=DEFAULT_PROMPT, description="Template: {query}, {candidates} (numbered [1]..[n], with critiques when present). {tests}: the tests of a write_tests input, '- ' a line (it is then no candidate).")

    def models(self) -> list[str]:
        return [self.model] if isinstance(self.model, str) else list(self.model)

    def model_refs(self) -> list[str]:
        return self.models()


class Fuse(Operator[FuseConfig]):
    """Every fuser reads all inputs (and their critiques) and writes one answer; fusers run concurrently.

    Cost: one call per fuser model. With no inputs it answers the query directly.
    """

    kind = "fuse"
    summary = "Synthesize the input candidates into one answer per fuser model."

    def streams_output(self) -> bool:
        cfg = self.config
        return len(cfg.models()) == 1 and cfg.samples == 1

    def call_bound(self, fan_in: int) -> tuple[int, int]:
        """One request per fuser model (even with no inputs); each returns ``samples`` candidates."""
        cfg = self.config
        return len(cfg.models()), len(cfg.models()) * cfg.samples

    async def __call__(self, inputs: list[Candidate], query: Query, ctx) -> list[Candidate]:
        cfg = self.config
        tests, inputs = split_tests(inputs)
        prompt = render(cfg.prompt, query=query.text, candidates=number_candidates(inputs), tests=tests)
        samples = tuple(range(cfg.samples))
        models = cfg.models()
        comps = await asyncio.gather(*(ctx.complete(m, build_request(cfg, m, prompt, samples=samples)) for m in models))
        out = []
        for model, comp in zip(models, comps):
            for k, (text, usage) in enumerate(zip(comp.texts, comp.usage.split(len(comp.texts)))):
                out.append(Candidate(text=text, node=self.node_id, model=model, sample=k, usage=usage))
        return out
