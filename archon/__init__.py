"""Archon: LLM systems built from inference-time techniques.

    from archon import Pipeline, run, evaluate, search
    p = Pipeline("demo")
    p.add("draft", "generate", model="local/gemma-3-270m", mode="completion", samples=4)
    print(run(p, "def fib(n):").output)
    print(evaluate(p, "starter", limit=5))                  # as `archon eval`
    print(search("examples/spaces/starter.yaml", "starter", limit=5, trials=4))   # as `archon search`
"""

import importlib
from typing import TYPE_CHECKING, Any

# Names load lazily (PEP 562): the lower layers (operators, backends, stores) import
# ``archon.types`` and ``archon.exceptions``, which must not pull in the runner and, through it,
# those very layers half-initialised.
_HOMES = {
    "Pipeline": "archon.builder",
    "RunContext": "archon.context",
    "Runtime": "archon.context",
    "ArchonError": "archon.exceptions",
    "BackendError": "archon.exceptions",
    "ConfigError": "archon.exceptions",
    "MissingDependency": "archon.exceptions",
    "RunFailed": "archon.exceptions",
    "SpecError": "archon.exceptions",
    "UserError": "archon.exceptions",
    "EvalComparison": "archon.evals.api",
    "EvalProgress": "archon.evals.api",
    "EvalReport": "archon.evals.api",
    "acompare": "archon.evals.api",
    "aevaluate": "archon.evals.api",
    "compare": "archon.evals.api",
    "evaluate": "archon.evals.api",
    "CompiledPipeline": "archon.runner",
    "arun": "archon.runner",
    "open_runtime": "archon.runner",
    "run": "archon.runner",
    "asearch": "search.api",
    "search": "search.api",
    "show_study": "search.api",
    "PerQuery": "search.study",
    "SearchResult": "search.study",
    "TrialProgress": "search.study",
    "PipelineSpec": "archon.spec",
    "load_pipeline": "archon.spec",
    "parse_pipeline": "archon.spec",
    "pipeline_json_schema": "archon.spec",
    "Candidate": "archon.types",
    "Query": "archon.types",
    "RunResult": "archon.types",
}

if TYPE_CHECKING:
    from archon.builder import Pipeline
    from archon.context import RunContext, Runtime
    from archon.exceptions import ArchonError, BackendError, ConfigError, MissingDependency, RunFailed, SpecError, UserError
    from archon.evals.api import EvalComparison, EvalProgress, EvalReport, acompare, aevaluate, compare, evaluate
    from archon.runner import CompiledPipeline, arun, open_runtime, run
    from archon.spec import PipelineSpec, load_pipeline, parse_pipeline, pipeline_json_schema
    from archon.types import Candidate, Query, RunResult
    from search.api import asearch, search, show_study
    from search.study import PerQuery, SearchResult, TrialProgress

__all__ = [
    "ArchonError",
    "BackendError",
    "Candidate",
    "CompiledPipeline",
    "ConfigError",
    "EvalComparison",
    "EvalProgress",
    "EvalReport",
    "MissingDependency",
    "PerQuery",
    "Pipeline",
    "PipelineSpec",
    "Query",
    "RunContext",
    "RunFailed",
    "RunResult",
    "Runtime",
    "SearchResult",
    "SpecError",
    "TrialProgress",
    "UserError",
    "acompare",
    "aevaluate",
    "arun",
    "asearch",
    "compare",
    "evaluate",
    "load_pipeline",
    "open_runtime",
    "parse_pipeline",
    "pipeline_json_schema",
    "run",
    "search",
    "show_study",
]

__version__ = "0.1.0"


# Submodules reachable as attributes after a bare ``import archon`` (``archon.nodes.Generate(...)``).
_SUBMODULES = frozenset({"nodes", "testing"})


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"archon.{name}")
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'archon' has no attribute '{name}'")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
