"""The public surface is explicit: every package lists its names, and each listed name exists."""

from __future__ import annotations

import importlib

import pytest

MODULES = [
    "archon", "archon.spec", "archon.graph", "archon.runner", "archon.context", "archon.registry",
    "archon.exceptions", "archon.types", "archon.builder", "operators.base", "operators.generate",
    "operators.rank", "operators.fuse", "backends.base", "backends.presets", "backends.wrappers",
    "backends.doubles", "backends.retry", "backends.openai_compat", "backends.local", "stores",
    "stores.store", "stores.pricing", "archon.sandbox", "archon.import_archon", "operators.critique",
    "operators.verify", "operators.vote", "operators.route", "operators.unit_test", "operators.code_tests",
    "operators.answers", "operators.retrieve", "archon.serve", "archon.serve.app", "archon.serve.protocol",
    "archon.serve.streaming", "archon.serve.guard", "archon.serve.errors", "archon.serve.settings", "backends.budget",
    "stores.schema", "stores.liveness",
    "archon.spec_checks", "archon.nodes",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist(name):
    mod = importlib.import_module(name)
    assert mod.__all__, f"{name} has an empty __all__"
    for attr in mod.__all__:
        assert hasattr(mod, attr), f"{name}.__all__ lists {attr!r}, which does not exist"


def test_top_level_reexports():
    import archon

    for attr in ("Pipeline", "run", "arun", "Runtime", "Candidate", "Query", "RunResult", "load_pipeline", "SpecError"):
        assert attr in archon.__all__


def test_every_builtin_operator_resolves():
    from archon.registry import get_operator, operator_kinds
    from operators.base import Operator

    for kind in operator_kinds():
        cls = get_operator(kind)
        assert issubclass(cls, Operator) and cls.kind == kind and cls.summary
