"""Archon: LLM systems built from inference-time techniques.

    from archon import Pipeline, run
    p = Pipeline("demo")
    p.add("draft", "generate", model="local/gemma-3-270m", mode="completion", samples=4)
    print(run(p, "def fib(n):").output)
"""

from archon.builder import Pipeline
from archon.context import RunContext, Runtime
from archon.exceptions import (
    ArchonError,
    BackendError,
    ConfigError,
    MissingDependency,
    RunFailed,
    SpecError,
    UserError,
)
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
