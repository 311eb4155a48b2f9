"""Running a pipeline on a query: compile once, run async, record the run in the store."""

from __future__ import annotations

__all__ = ["CompiledPipeline", "arun", "run"]

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from archon.context import RunContext, Runtime
from archon.exceptions import ArchonError, BackendError, RunFailed
from archon.graph import compile_graph
from archon.records import RunTotals
from archon.registry import get_operator
from archon.spec import PipelineSpec, load_pipeline
from archon.types import Query, RunResult


class CompiledPipeline:
    """A checked pipeline with its operators instantiated and its LangGraph compiled (reusable)."""

    def __init__(self, spec: PipelineSpec):
        self.spec = spec
        self.operators = {n.id: get_operator(n.op)(n.id, n.config) for n in spec.nodes}
        self.graph = compile_graph(spec, self.operators)

    @property
    def streams(self) -> bool:
        """Whether the answer is the text of one model call, whose tokens ``run(on_delta=...)`` can stream."""
        return self.operators[self.spec.output].streams_output()

    async def run(self, query: Query | str, runtime: Runtime, *, trial: int | None = None,
                  on_delta: Callable[[str], None] | None = None) -> RunResult:
        """Run on one query. A model failure that retries could not cure raises RunFailed (recorded).

        ``on_delta`` receives the answer's text deltas as the output node's backend streams them,
        when ``streams`` and that backend can stream; otherwise it is never called.
        """
        q = Query(query) if isinstance(query, str) else query
        log = runtime.log
        run_id = log.start_run(self.spec.name, q.text, trial)
        streaming = on_delta is not None and self.streams
        totals = RunTotals()  # the run's meter: every call of the run is counted there as it happens
        ctx = RunContext(runtime, run_id=run_id, trial=trial, meter=totals, stream_node=self.spec.output if streaming else None,
                         on_delta=on_delta if streaming else None)
        start = time.perf_counter()
        try:
            state = await self.graph.ainvoke(
                {"results": {}, "skipped": frozenset(), "notes": []}, config={"configurable": {"ctx": ctx, "query": q}, "recursion_limit": 10_000}
            )
            results = state["results"]
            final = results.get(self.spec.output) or []
            if not final:
                raise RunFailed(f"node '{self.spec.output}' (the output) produced no candidates")
        except BaseException as exc:
            log.finish_run(run_id, "error", None, _describe(exc))
            if isinstance(exc, Exception) and not isinstance(exc, ArchonError):
                failed = RunFailed(f"run failed: {_describe(exc)}")
                failed.run_id = run_id
                raise failed from exc
            if isinstance(exc, ArchonError):
                exc.run_id = run_id
            raise
        latency = (time.perf_counter() - start) * 1000
        # Queued, not awaited: the store is written in the background (Runtime.aclose waits for it).
        log.finish_run(run_id, "ok", final[0].text, None)
        return RunResult(
            output=final[0].text,
            candidates=results,
            usage=totals.usage,
            cost_usd=totals.cost_usd,
            latency_ms=latency,
            calls=totals.calls,
            cached_calls=totals.cached_calls,
            run_id=run_id,
            pipeline=self.spec.name,
            node_notes=list(state.get("notes") or []) + totals.notes,
        )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, (BackendError, RunFailed)):
        return str(exc)
    if isinstance(exc, asyncio.CancelledError):
        return "cancelled (a timeout, or the caller went away)"
    return f"{type(exc).__name__}: {exc}"


def _spec(pipeline: PipelineSpec | str | Path | Any) -> PipelineSpec:
    if isinstance(pipeline, PipelineSpec):
        return pipeline
    if hasattr(pipeline, "build"):  # the Python builder
        return pipeline.build()
    return load_pipeline(pipeline)


async def arun(
    pipeline: PipelineSpec | str | Path | Any,
    query: Query | str,
    *,
    runtime: Runtime | None = None,
    db: str | None | bool = None,
    use_cache: bool = True,
    backends: dict[str, Any] | None = None,
) -> RunResult:
    """Run a pipeline (a spec, a file path or a builder) on one query. Async."""
    spec = _spec(pipeline)
    own = runtime is None
    runtime = runtime or Runtime.for_pipeline(spec, store=db, use_cache=use_cache, backends=backends)
    try:
        runtime.check_backends(spec)
        return await CompiledPipeline(spec).run(query, runtime)
    finally:
        if own:
            await runtime.aclose()


def run(pipeline: PipelineSpec | str | Path | Any, query: Query | str, **kw: Any) -> RunResult:
    """Run a pipeline on one query (blocking). See ``arun`` for the arguments."""
    return asyncio.run(arun(pipeline, query, **kw))
