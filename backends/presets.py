"""Backend settings (the ``backends:`` section of a pipeline file) and the built-in presets.

Each backend kind has its own settings model, the backend class's ``Settings``: a subclass of
``BackendSpec`` (the fields every kind has: concurrency, timeout, retries) adding that kind's own
fields, with unknown keys refused. ``OpenAISettings`` (kind ``openai``) adds the server URL and key
variable; ``LocalSettings`` (kind ``local``) the llama.cpp context and threads. A plug-in kind
declares its own the same way; ``archon.spec`` picks the model by ``kind`` when it reads a file.

A preset is a named settings object; an entry in a pipeline's ``backends:`` with a preset's name
and the same kind overrides only the fields it sets, so ``openai: {max_concurrency: 4}`` keeps the
OpenAI URL and key. An entry naming another kind replaces the preset.
"""

from __future__ import annotations

__all__ = [
    "MAX_URL_LENGTH",
    "PRESETS",
    "BackendSpec",
    "LocalSettings",
    "OpenAISettings",
    "check_url",
    "missing_base_url",
    "resolve_backend_specs",
]

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
    """Settings every backend kind has: where calls go is the kind's own business, how many run at
    once, how long one may take and how often it is retried are the wrapper chain's."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field("openai", description="Backend implementation: 'openai' (any OpenAI-compatible server), 'local' (embedded llama.cpp), or a plug-in's name.")
    max_concurrency: int = Field(16, ge=1, description="Most calls in flight to this backend at once.")
    timeout: float = Field(60.0, gt=0, description="Seconds per call before it is abandoned (and retried).")
    max_retries: int = Field(4, ge=0, description="Retries after the first attempt for 429, 5xx, timeouts and dropped connections.")
    max_retry_wait: float = Field(60.0, ge=0, description="Cap in seconds on one wait between retries, Retry-After included.")


class OpenAISettings(BackendSpec):
    """An OpenAI-compatible server (kind ``openai``)."""

    kind: str = Field("openai", description="'openai': any OpenAI-compatible server.")
    base_url: str | None = Field(None, description="Server URL, e.g. http://127.0.0.1:8000/v1; ${VAR} and ${VAR:-default} are read from the environment.")
    api_key_env: str | list[str] | None = Field(None, description="Name of the environment variable holding the key (never the key itself); a list, or a variable holding comma-separated keys, rotates keys on rate limits.")

    @field_validator("base_url")
    @classmethod
    def _expand(cls, v: str | None) -> str | None:
        """``${VAR}`` and ``${VAR:-default}`` in a URL come from the environment (one file, many servers)."""
        if v is None:
            return v
        return check_url(_VAR.sub(lambda m: os.environ.get(m.group(1), m.group(2) or ""), v))


class LocalSettings(BackendSpec):
    """The embedded llama.cpp model (kind ``local``)."""

    kind: str = Field("local", description="'local': a GGUF model run in this process by llama.cpp.")
    n_ctx: int = Field(4096, ge=256, description="Context length in tokens.")
    n_threads: int | None = Field(None, ge=1, description="CPU threads for llama.cpp; default: all cores.")


PRESETS: dict[str, BackendSpec] = {
    "openai": OpenAISettings(base_url="https://api.openai.com/v1", api_key_env="OPENAI_API_KEY"),
    "together": OpenAISettings(base_url="https://api.together.xyz/v1", api_key_env="TOGETHER_API_KEY"),
    "groq": OpenAISettings(base_url="https://api.groq.com/openai/v1", api_key_env="GROQ_API_KEY"),
    "openrouter": OpenAISettings(base_url="https://openrouter.ai/api/v1", api_key_env="OPENROUTER_API_KEY"),
    # Anthropic's OpenAI-compatible endpoint.
    "anthropic": OpenAISettings(base_url="https://api.anthropic.com/v1/", api_key_env="ANTHROPIC_API_KEY"),
    # Gemini's OpenAI-compatible endpoint (the original Archon's ``Google_API``).
    "google": OpenAISettings(base_url="https://generativelanguage.googleapis.com/v1beta/openai/", api_key_env="GEMINI_API_KEY"),
    "ollama": OpenAISettings(base_url="http://127.0.0.1:11434/v1", max_concurrency=4, timeout=300),
    "vllm": OpenAISettings(base_url="http://127.0.0.1:8000/v1", api_key_env="VLLM_API_KEY", max_concurrency=64, timeout=300),
    "llamacpp-server": OpenAISettings(base_url="http://127.0.0.1:8080/v1", max_concurrency=4, timeout=300),
    "local": LocalSettings(max_concurrency=1, timeout=600, max_retries=0),
}


def missing_base_url(name: str, spec: BackendSpec) -> str | None:
    """The problem with an ``openai``-kind backend that is no preset and has no URL, else None.

    Without this rule the OpenAI client falls back to OpenAI's own URL and sends the key named by
    ``api_key_env`` there: a key meant for a private server would reach a third party.
    """
    if spec.kind != "openai" or getattr(spec, "base_url", None) or name in PRESETS:
        return None
    return (f"backend '{name}': kind openai needs base_url (the server's /v1 URL); "
            f"for OpenAI itself use the preset 'openai'")


def resolve_backend_specs(overrides: dict[str, BackendSpec] | None) -> dict[str, BackendSpec]:
    """Presets merged with a pipeline's ``backends:`` (fields set there win; another kind replaces the preset)."""
    specs = dict(PRESETS)
    for name, spec in (overrides or {}).items():
        if not isinstance(spec, BackendSpec):  # e.g. Runtime({"fake": FunctionBackend(...)}): say where it goes
            from archon.exceptions import ConfigError

            hint = (f"a backend instance goes in backends=: Runtime(backends={{{name!r}: ...}})" if hasattr(spec, "complete")
                    else "give settings such as OpenAISettings(base_url=...) or LocalSettings(...)")
            raise ConfigError(f"backend '{name}': {type(spec).__name__} is not backend settings; {hint}")
        base = PRESETS.get(name)
        # Fields merge into a preset of the same kind (or from the common base, e.g. only limits).
        same_kind = isinstance(base, type(spec)) and ("kind" not in spec.model_fields_set or spec.kind == base.kind)
        if base is None or not same_kind:
            specs[name] = spec
        else:
            specs[name] = base.model_copy(update=spec.model_dump(exclude_unset=True))
    return specs
