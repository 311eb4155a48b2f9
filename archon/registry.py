"""Registries of operators and backend kinds.

Built-ins are listed here; others plug in through the entry-point groups ``archon.operators`` and
``archon.backends`` (name = kind, value = "module:Class"), loaded lazily on first lookup.
"""

from __future__ import annotations

__all__ = ["operator_kinds", "get_operator", "register_operator", "backend_kinds", "get_backend_class", "register_backend"]

import importlib
from importlib.metadata import entry_points
from typing import Any

from archon.exceptions import ConfigError, SpecError, suggest

_BUILTIN_OPERATORS = {
    "generate": "operators.generate:Generate",
    "ensemble": "operators.generate:Ensemble",
    "rank": "operators.rank:Rank",
    "fuse": "operators.fuse:Fuse",
    "critique": "operators.critique:Critique",
    "verify": "operators.verify:Verify",
    "vote": "operators.vote:Vote",
    "route": "operators.route:Route",
    "merge": "operators.route:Merge",
    "write_tests": "operators.unit_test:WriteTests",
    "unit_test": "operators.unit_test:UnitTest",
    "retrieve": "operators.retrieve:Retrieve",
}
_BUILTIN_BACKENDS = {
    "openai": "backends.openai_compat:OpenAIBackend",
    "local": "backends.local:LocalBackend",
}

_operators: dict[str, Any] = {}
_backends: dict[str, Any] = {}
_loaded_plugins = False


def _load(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def _plugins() -> None:
    global _loaded_plugins
    if _loaded_plugins:
        return
    _loaded_plugins = True
    for group, table, builtins in (
        ("archon.operators", _operators, _BUILTIN_OPERATORS),
        ("archon.backends", _backends, _BUILTIN_BACKENDS),
    ):
        for ep in entry_points(group=group):
            if ep.name not in builtins and ep.name not in table:
                table[ep.name] = ep.value


def register_operator(cls: type) -> type:
    """Register an operator class under its ``kind`` (usable as a decorator)."""
    _operators[cls.kind] = cls
    return cls


def register_backend(kind: str, cls: type) -> None:
    _backends[kind] = cls


def operator_kinds() -> list[str]:
    _plugins()
    return sorted(set(_BUILTIN_OPERATORS) | set(_operators))


def get_operator(kind: str) -> type:
    _plugins()
    found = _operators.get(kind) or _BUILTIN_OPERATORS.get(kind)
    if found is None:
        raise SpecError(f"unknown op '{kind}'.{suggest(kind, operator_kinds())} Valid ops: {', '.join(operator_kinds())}")
    if isinstance(found, str):
        found = _operators[kind] = _load(found)
    return found


def backend_kinds() -> list[str]:
    _plugins()
    return sorted(set(_BUILTIN_BACKENDS) | set(_backends))


def get_backend_class(kind: str) -> type:
    _plugins()
    found = _backends.get(kind) or _BUILTIN_BACKENDS.get(kind)
    if found is None:
        raise ConfigError(f"unknown backend kind '{kind}'.{suggest(kind, backend_kinds())} Valid kinds: {', '.join(backend_kinds())}")
    if isinstance(found, str):
        found = _backends[kind] = _load(found)
    return found
