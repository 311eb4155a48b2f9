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
    "archon.testing", "archon.testing.fake_server", "archon.testing.operator_contract", "archon.testing.backend_contract",
]
# The Python API equal to the command line, and the command line's thin commands over it.
API_MODULES = [
    "archon.evals.api", "archon.evals.report", "archon.evals.passk", "archon.evals.curve", "search.api", "search.study", "search.samplers", "archon.cli", "archon.cli.run",
    "archon.cli.eval", "archon.cli.search", "archon.cli.serve", "archon.cli.store", "archon.cli.pipeline",
]


@pytest.mark.parametrize("name", MODULES + API_MODULES)
def test_all_names_exist(name):
    mod = importlib.import_module(name)
    assert mod.__all__, f"{name} has an empty __all__"
    for attr in mod.__all__:
        assert hasattr(mod, attr), f"{name}.__all__ lists {attr!r}, which does not exist"


def test_top_level_reexports():
    import archon

    for attr in ("Pipeline", "run", "arun", "Runtime", "Candidate", "Query", "RunResult", "load_pipeline", "SpecError",
                 "evaluate", "aevaluate", "compare", "acompare", "EvalReport", "EvalComparison", "EvalProgress",
                 "search", "asearch", "show_study", "SearchResult", "TrialProgress", "PerQuery", "open_runtime"):
        assert attr in archon.__all__
        assert getattr(archon, attr) is not None


def test_the_python_api_is_what_the_commands_call():
    """``archon.search`` is the function (the package ``search`` stays importable beside it), and the
    command line's eval and search call the same functions users do."""
    import inspect

    import archon
    import search
    from archon.cli import eval as eval_cmd
    from archon.cli import search as search_cmd

    assert callable(archon.search) and archon.search.__module__ == "search.api" and search.__name__ == "search"
    assert archon.evaluate.__module__ == "archon.evals.api"
    assert "evaluate(" in inspect.getsource(eval_cmd.eval_) and "compare_pipelines(" in inspect.getsource(eval_cmd.eval_)
    assert "run_search(" in inspect.getsource(search_cmd.search) and "show_study(" in inspect.getsource(search_cmd.search)


def test_runtime_closes_itself_at_the_end_of_async_with(tmp_path):
    import asyncio

    import pytest

    from archon import Pipeline, Runtime, arun
    from backends.doubles import EchoBackend
    from stores.store import Store

    p = Pipeline("echo")
    p.add("a", "generate", model="fake/m")
    db = f"sqlite:///{tmp_path / 'c.db'}"

    async def go():
        async with Runtime(store=db, backends={"fake": EchoBackend()}) as rt:
            await arun(p, "hello", runtime=rt)
        with pytest.raises(ValueError, match="the body's own error"):  # reported, not a closing error
            async with Runtime(store=db, backends={"fake": EchoBackend()}):
                raise ValueError("the body's own error")

    asyncio.run(go())
    assert [r["status"] for r in Store(db).runs()] == ["ok"]  # written to the store on the way out


def test_every_builtin_operator_resolves():
    from archon.registry import get_operator, operator_kinds
    from operators.base import Operator

    for kind in operator_kinds():
        cls = get_operator(kind)
        assert issubclass(cls, Operator) and cls.kind == kind and cls.summary
