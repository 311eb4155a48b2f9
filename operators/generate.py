"""generate / ensemble: sample candidates from one or several models."""

from __future__ import annotations

__all__ = ["Generate", "Ensemble", "GenerateConfig", "SamplingConfig", "prompt_for", "sampling_request"]

import asyncio
from dataclasses import replace

from pydantic import Field, field_validator

from archon.types import Candidate, Query
from backends.base import CompletionRequest, Message
from operators.base import ModelCallConfig, Operator, build_request, render, split_tests

DEFAULT_PROMPT = "{query}"
CONTEXT_PROMPT = "{context}\n\n{query}"


class SamplingConfig(ModelCallConfig):
    """What the sampling operators (generate, sample_until) share: the models sampled and the prompt."""

    model: str | list[str] = Field(..., description="'<backend>/<model>', or a list of them (an ensemble: each model samples).")
    prompt: str | None = Field(
        default=None,
        description="Prompt template: {query} is the query, {context} the input candidates' texts, {tests} the tests of a write_tests input ('- ' a line). Default: '{query}', "
        "or '{context}\n\n{query}' when the node has inputs. Inputs reach the prompt only through {context}.",
    )
    logprobs: bool = Field(
        default=False, description="Ask the backend for the sampled tokens' log-probabilities and keep them on each candidate "
        "(for vote's logprob/perplexity weights); a backend that returns none leaves them unset, with a note.",
    )

    @field_validator("model")
    @classmethod
    def _non_empty(cls, v):
        if isinstance(v, list) and not v:
            raise ValueError("give at least one model")
        return v

    def models(self) -> list[str]:
        return [self.model] if isinstance(self.model, str) else list(self.model)

    def model_refs(self) -> list[str]:
        return self.models()


class GenerateConfig(SamplingConfig):
    samples: int = Field(default=1, ge=1, le=1024, description="Completions per model (the original Archon's configs go up to 1000).")


def prompt_for(cfg: SamplingConfig, query: Query, inputs: list[Candidate]) -> str:
    """The node's prompt: its template (or the default for a node with or without inputs), rendered."""
    template = cfg.prompt or (CONTEXT_PROMPT if inputs else DEFAULT_PROMPT)
    return render(template, query=query.text, context="\n\n".join(c.text for c in inputs), tests=split_tests(inputs)[0])


def sampling_request(cfg: SamplingConfig, model: str, prompt: str, query: Query, inputs: list[Candidate],
                     samples: tuple[int, ...]) -> CompletionRequest:
    """The node's request for ``samples``; a query that is a conversation (``query.messages``) is sent
    as those messages when nothing else shapes the prompt (chat mode, default prompt, no inputs). The
    node's ``system`` goes first unless the conversation brings its own."""
    req = build_request(cfg, model, prompt, samples=samples)
    if cfg.logprobs:
        req = replace(req, logprobs=0)  # the sampled tokens' own logprobs, no alternatives
    if not query.messages or cfg.mode != "chat" or cfg.prompt is not None or inputs:
        return req
    msgs: tuple[Message, ...] = tuple(Message(role=m["role"], content=m["content"]) for m in query.messages)
    if cfg.system and not any(m["role"] == "system" for m in msgs):
        msgs = (Message(role="system", content=cfg.system), *msgs)
    return replace(req, messages=msgs)


class Generate(Operator[GenerateConfig]):
    """Samples ``samples`` completions from each model; all calls run concurrently.

    Cost: one request per model (asking for ``samples`` completions; a server that ignores ``n``
    gets ``samples`` parallel requests).
    """

    kind = "generate"
    summary = "Sample completions from one model, or from each model of a list (an ensemble)."

    async def __call__(self, inputs: list[Candidate], query: Query, ctx) -> list[Candidate]:
        cfg = self.config
        prompt = prompt_for(cfg, query, inputs)
        samples = tuple(range(cfg.samples))
        models = cfg.models()
        completions = await asyncio.gather(*(ctx.complete(m, sampling_request(cfg, m, prompt, query, inputs, samples)) for m in models))
        out = []
        for model, comp in zip(models, completions):
            shares = comp.usage.split(len(comp.texts))
            lps: list[tuple[float, ...] | None] = [tuple(lp) for lp in comp.logprobs] if comp.logprobs else [None] * len(comp.texts)
            cands = [Candidate(text=t, node=self.node_id, model=model, sample=k, usage=u, logprobs=lp)
                     for k, (t, u, lp) in enumerate(zip(comp.texts, shares, lps))]
            if cfg.logprobs and not comp.logprobs:
                note = f"generate: backend of '{model}' returned no logprobs; candidates carry none"
                cands = [c.noted(note) for c in cands]
            out += cands
        return out

    def streams_output(self) -> bool:
        cfg = self.config
        # A stream carries text only: a node asked for logprobs keeps its ordinary call.
        return len(cfg.models()) == 1 and cfg.samples == 1 and not cfg.logprobs

    def call_bound(self, fan_in: int) -> tuple[int, int]:
        """One request per model, whatever the inputs; each returns ``samples`` candidates."""
        cfg = self.config
        return len(cfg.models()), len(cfg.models()) * cfg.samples


class Ensemble(Generate):
    """The same as ``generate`` with a list of models: fan the query out and pool the candidates."""

    kind = "ensemble"
    summary = "Fan the query out to several models (or settings) and pool their candidates."
