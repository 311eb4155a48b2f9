"""Backend settings (the ``backends:`` section of a pipeline file) and the built-in presets.

A preset is a named ``BackendSpec``; an entry in a pipeline's ``backends:`` with a preset's name
overrides only the fields it sets, so ``openai: {max_concurrency: 4}`` keeps the OpenAI URL and key.
"""

from __future__ import annotations

__all__ = ["BackendSpec", "MAX_URL_LENGTH", "PRESETS", "check_url", "missing_base_url", "resolve_backend_specs"]

import os
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

_VAR = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")
_HOST = re.compile(r"[A-Za-z0-9._~-]+")
MAX_URL_LENGTH = 2048


def check_url(url: str) -> str:
    """``url`` when it is a usable server URL; otherwise ValueError saying what is wrong and the fix.

    Checked when the file is read, so every URL ``archon validate`` accepts is one the HTTP client
    can send to: http(s), a host, a port in range, printable ASCII or a valid international name.
    """
    import httpx

    example = "e.g. http://127.0.0.1:8000/v1"
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"the URL is {len(url)} characters long; a server URL has at most {MAX_URL_LENGTH}")
    if not url.strip():
        raise ValueError(f"the URL is empty (an unset ${{VAR}}?); {example}")
    bad = next((i for i, c in enumerate(url) if c.isspace() or not c.isprintable() or "\ud800" <= c <= "\udfff"), None)
    if bad is not None:
        raise ValueError(f"the URL holds the character U+{ord(url[bad]):04X} at position {bad + 1}; remove it")
    try:
        parsed = httpx.URL(url)
        host = parsed.raw_host.decode("ascii")  # IDNA-encoded, so an international name is checked too
        port = parsed.port
    except (httpx.InvalidURL, ValueError) as exc:  # ValueError: an invalid IDNA name (UnicodeError)
        raise ValueError(f"not a valid URL ({exc}); {example}") from None
    if parsed.scheme not in ("http", "https"):
        raise ValueError(f"the URL must start with http:// or https:// (got '{url[:40]}'); {example}")
    if not host:
        raise ValueError(f"the URL names no host; {example}")
    if not (_HOST.fullmatch(host) or _is_ip(host)):
        raise ValueError(f"the URL's host '{host[:60]}' is not a host name or IP address; {example}")
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"the URL's port {port} is not between 1 and 65535")
    return url


def _is_ip(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


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
        return check_url(_VAR.sub(lambda m: os.environ.get(m.group(1), m.group(2) or ""), v))


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


def missing_base_url(name: str, spec: BackendSpec) -> str | None:
    """The problem with an ``openai``-kind backend that is no preset and has no URL, else None.

    Without this rule the OpenAI client falls back to OpenAI's own URL and sends the key named by
    ``api_key_env`` there: a key meant for a private server would reach a third party.
    """
    if spec.kind != "openai" or spec.base_url or name in PRESETS:
        return None
    return (f"backend '{name}': kind openai needs base_url (the server's /v1 URL); "
            f"for OpenAI itself use the preset 'openai'")


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
