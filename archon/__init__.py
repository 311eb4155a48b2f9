"""Archon: LLM systems built from inference-time techniques.

    from archon import Pipeline, run
    p = Pipeline("demo")
    p.add("draft", "generate", model="local/gemma-3-270m", mode="completion", samples=4)
    print(run(p, "def fib(n):").output)
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
    "CompiledPipeline": "archon.runner",
    "arun": "archon.runner",
    "run": "archon.runner",
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
    from archon.runner import CompiledPipeline, arun, run
    from archon.spec import PipelineSpec, load_pipeline, parse_pipeline, pipeline_json_schema
    from archon.types import Candidate, Query, RunResult

__all__ = [
    "ArchonError",
    "BackendError",
    "Candidate",
    "CompiledPipeline",
    "ConfigError",
    "MissingDependency",
    "Pipeline",
    "PipelineSpec",
    "Query",
    "RunContext",
    "RunFailed",
    "RunResult",
    "Runtime",
    "SpecError",
    "UserError",
    "arun",
    "load_pipeline",
    "parse_pipeline",
    "pipeline_json_schema",
    "run",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'archon' has no attribute '{name}'")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
