"""Backend settings (the ``backends:`` section of a pipeline file) and the built-in presets.

A preset is a named ``BackendSpec``; an entry in a pipeline's ``backends:`` with a preset's name
overrides only the fields it sets, so ``openai: {max_concurrency: 4}`` keeps the OpenAI URL and key.
"""

from __future__ import annotations

__all__ = ["BackendSpec", "PRESETS", "resolve_backend_specs"]

import os
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

_VAR = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


class BackendSpec(BaseModel):
    """Where a model is served and how to talk to it."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field("openai", description="Backend implementation: 'openai' (any OpenAI-compatible server), 'local' (embedded llama.cpp), or a plug-in's name.")
    base_url: str | None = Field(None, description="Server URL, e.g. http://127.0.0.1:8000/v1 (openai kind).")
    api_key_env: str | list[str] | None = Field(None, description="Name of the environment variable holding the key (never the key itself); a list, or a variable holding comma-separated keys, rotates keys on rate limits.")
    max_concurrency: int = Field(16, ge=1, description="Most calls in flight to this backend at once.")
    timeout: float = Field(60.0, gt=0, description="Seconds per call before it is abandoned (and retried).")
    max_retries: int = Field(4, ge=0, description="Retries after the first attempt for 429, 5xx, timeouts and dropped connections.")
    max_retry_wait: float = Field(60.0, ge=0, description="Cap in seconds on one wait between retries, Retry-After included.")
    n_ctx: int = Field(4096, ge=256, description="Context length in tokens (local kind).")
    n_threads: int | None = Field(None, ge=1, description="CPU threads for llama.cpp (local kind); default: all cores.")

    @field_validator("base_url")
    @classmethod
    def _expand(cls, v: str | None) -> str | None:
        """``${VAR}`` and ``${VAR:-default}`` in a URL come from the environment (one file, many servers)."""
        if v is None:
            return v
        return _VAR.sub(lambda m: os.environ.get(m.group(1), m.group(2) or ""), v)


def _p(**kw) -> BackendSpec:
    return BackendSpec(**kw)


PRESETS: dict[str, BackendSpec] = {
    "openai": _p(base_url="https://api.openai.com/v1", api_key_env="OPENAI_API_KEY"),
    "together": _p(base_url="https://api.together.xyz/v1", api_key_env="TOGETHER_API_KEY"),
    "groq": _p(base_url="https://api.groq.com/openai/v1", api_key_env="GROQ_API_KEY"),
    "openrouter": _p(base_url="https://openrouter.ai/api/v1", api_key_env="OPENROUTER_API_KEY"),
    # Anthropic's OpenAI-compatible endpoint.
    "anthropic": _p(base_url="https://api.anthropic.com/v1/", api_key_env="ANTHROPIC_API_KEY"),
    "ollama": _p(base_url="http://127.0.0.1:11434/v1", max_concurrency=4, timeout=300),
    "vllm": _p(base_url="http://127.0.0.1:8000/v1", api_key_env="VLLM_API_KEY", max_concurrency=64, timeout=300),
    "llamacpp-server": _p(base_url="http://127.0.0.1:8080/v1", max_concurrency=4, timeout=300),
    "local": _p(kind="local", max_concurrency=1, timeout=600, max_retries=0),
}


def resolve_backend_specs(overrides: dict[str, BackendSpec] | None) -> dict[str, BackendSpec]:
    """Presets merged with a pipeline's ``backends:`` (fields set there win)."""
    specs = dict(PRESETS)
    for name, spec in (overrides or {}).items():
        base = PRESETS.get(name)
        if base is None:
            specs[name] = spec
        else:
            specs[name] = base.model_copy(update=spec.model_dump(exclude_unset=True))
    return specs
