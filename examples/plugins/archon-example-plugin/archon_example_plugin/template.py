"""The ``template`` backend kind: answers by filling a text template, with no model and no network.

It shows what a backend kind brings: a ``Settings`` model of its own (a ``BackendSpec`` subclass,
unknown keys refused, every field described) and a ``complete`` that returns one text per sample
and raises only ``archon.exceptions.BackendError`` subclasses. Retries, limits, caching and the
call log come from the runtime's wrappers; a backend does none of them.
"""

from __future__ import annotations

__all__ = ["TemplateBackend", "TemplateSettings"]

import time

from pydantic import Field, field_validator

from archon.exceptions import BackendRequestError
from backends.base import Completion, CompletionRequest, Usage
from backends.presets import BackendSpec
from operators.base import placeholders, render

_FIELDS = {"prompt", "model", "sample"}


class TemplateSettings(BackendSpec):
    """A backend that fills ``template`` for every sample."""

    kind: str = Field("template", description="'template': answers by filling a text template (no model).")
    template: str = Field("{prompt}", description="The answer: {prompt} (the last user turn), {model} and {sample} are filled in.")
    max_prompt_chars: int = Field(10_000, ge=1, description="Longer prompts are refused (BackendRequestError), like a context limit.")

    @field_validator("template")
    @classmethod
    def _known_fields(cls, v: str) -> str:
        unknown = placeholders(v) - _FIELDS
        if unknown:
            raise ValueError(f"unknown placeholder {{{sorted(unknown)[0]}}}; use {{prompt}}, {{model}} or {{sample}}")
        return v


class TemplateBackend:
    Settings = TemplateSettings

    def __init__(self, name: str, spec: TemplateSettings):
        self.name = name
        self.spec = spec

    async def complete(self, request: CompletionRequest) -> Completion:
        started = time.perf_counter()
        prompt = request.prompt_text()
        if len(prompt) > self.spec.max_prompt_chars:
            raise BackendRequestError(f"the prompt has {len(prompt)} characters; this backend takes at most "
                                      f"{self.spec.max_prompt_chars} (raise max_prompt_chars)",
                                      backend=self.name, model=request.model)
        last = prompt.strip().splitlines()[-1] if prompt.strip() else ""
        texts = [render(self.spec.template, prompt=last, model=request.model, sample=k) for k in request.samples]
        # Words stand in for tokens: deterministic, and enough for the call log's sums.
        usage = Usage(len(prompt.split()), sum(len(t.split()) for t in texts))
        return Completion(texts=texts, usage=usage, finish_reasons=["stop"] * len(texts),
                          latency_ms=(time.perf_counter() - started) * 1000)
