"""Running a pipeline on a query: compile once, run async, record the run in the store."""

from __future__ import annotations

__all__ = ["CompiledPipeline", "arun", "as_spec", "blocking", "merge_backends", "open_runtime", "run"]

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar, runtime_checkable

from archon.context import RunContext, Runtime
from archon.exceptions import ArchonError, BackendError, ConfigError, RunFailed
from archon.graph import compile_graph
from archon.records import RunTotals
from archon.registry import get_operator
from archon.spec import PipelineSpec, load_pipeline
from archon.types import Query, RunResult
from operators.base import Operator

if TYPE_CHECKING:
    from backends.budget import Budget
    from backends.presets import BackendSpec


class CompiledPipeline:
    """A checked pipeline with its operators instantiated and its LangGraph compiled (reusable)."""

    def __init__(self, spec: PipelineSpec):
        self.spec = spec
        self.operators: dict[str, Operator[Any]] = {n.id: get_operator(n.op)(n.id, n.config) for n in spec.nodes}
        self.graph = compile_graph(spec, self.operators)
        # The pipeline files its nodes run, compiled once with it (the spec refused any recursion).
        self.pipelines = {ref: CompiledPipeline(sub) for ref, sub in spec.pipelines.items()}

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
                         on_delta=on_delta if streaming else None, pipelines=self.pipelines)
        start = time.perf_counter()
        try:
            state = await self._invoke(q, ctx)
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
            abstained=bool(final[0].meta.get("abstained")),
        )


    async def run_nested(self, query: Query, parent: RunContext) -> RunResult:
        """Run inside ``parent``'s run (a score node's judge): the same runtime, run id and trial; calls
        recorded under ``<parent node>/<node>`` and metered on totals that add to the parent's. Not a
        run of its own in the store. An empty output is an empty answer here, not a failure: the
        caller decides what no answer means."""
        totals = RunTotals(parent=parent.meter)
        ctx = RunContext(parent.runtime, run_id=parent.run_id, trial=parent.trial, meter=totals, pipelines=self.pipelines,
                         scope=f"{parent.node_id}/" if parent.node_id else "")
        start = time.perf_counter()
        state = await self._invoke(query, ctx)
        results = state["results"]
        final = results.get(self.spec.output) or []
        return RunResult(
            output=final[0].text if final else "",
            candidates=results,
            usage=totals.usage,
            cost_usd=totals.cost_usd,
            latency_ms=(time.perf_counter() - start) * 1000,
            calls=totals.calls,
            cached_calls=totals.cached_calls,
            run_id=parent.run_id,
            pipeline=self.spec.name,
            node_notes=list(state.get("notes") or []) + totals.notes,
            abstained=not final or bool(final[0].meta.get("abstained")),
        )

    async def _invoke(self, query: Query, ctx: RunContext) -> Any:
        return await self.graph.ainvoke(
            {"results": {}, "skipped": frozenset(), "notes": []}, config={"configurable": {"ctx": ctx, "query": query}, "recursion_limit": 10_000}
        )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, (BackendError, RunFailed)):
        return str(exc)
    if isinstance(exc, asyncio.CancelledError):
        return "cancelled (a timeout, or the caller went away)"
    return f"{type(exc).__name__}: {exc}"


@runtime_checkable
class _Builder(Protocol):
    def build(self) -> PipelineSpec: ...


def as_spec(pipeline: PipelineSpec | str | Path | Any) -> PipelineSpec:
    """A pipeline given as a spec, a file path or a ``Pipeline`` builder, as a checked spec."""
    if isinstance(pipeline, PipelineSpec):
        return pipeline
    if isinstance(pipeline, _Builder):  # the Python builder (anything with a build())
        return pipeline.build()
    return load_pipeline(pipeline)


def merge_backends(specs: Iterable[PipelineSpec]) -> dict[str, BackendSpec]:
    """The pipelines' ``backends:`` sections (their nested pipelines' included) as one, for one runtime running them all."""
    merged: dict[str, BackendSpec] = {}
    origin: dict[str, str] = {}
    for spec in specs:
        for name, backend in spec.all_backends().items():
            if name in merged and merged[name] != backend:
                raise ConfigError(f"{spec.source}: backend '{name}' differs from its definition in {origin[name]}; "
                                  "pipelines run together share each backend, so rename one of them")
            merged[name], origin[name] = backend, spec.source
    return merged


@asynccontextmanager
async def open_runtime(
    specs: Iterable[PipelineSpec],
    *,
    runtime: Runtime | None = None,
    db: Any = None,
    backends: dict[str, Any] | None = None,
    use_cache: bool = True,
    budget: Budget | None = None,
) -> AsyncIterator[Runtime]:
    """A runtime for ``specs`` with every backend they use checked (a missing key fails before any call).

    With ``runtime`` given, that one is checked and used, and left open for its owner; otherwise one is
    made from the specs' backends (plus ``backends`` instances, the store ``db``) and closed on the way out.
    """
    specs = list(specs)
    if runtime is not None:
        for spec in specs:
            runtime.check_backends(spec)
        yield runtime
        return
    async with Runtime(merge_backends(specs), backends=backends, store=db, use_cache=use_cache, budget=budget) as own:
        for spec in specs:
            own.check_backends(spec)
        yield own


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
    spec = as_spec(pipeline)
    async with open_runtime([spec], runtime=runtime, db=db, use_cache=use_cache, backends=backends) as rt:
        return await CompiledPipeline(spec).run(query, rt)


def run(pipeline: PipelineSpec | str | Path | Any, query: Query | str, **kw: Any) -> RunResult:
    """Run a pipeline on one query (blocking). See ``arun`` for the arguments."""
    return asyncio.run(arun(pipeline, query, **kw))


P = ParamSpec("P")
T = TypeVar("T")


def blocking(async_fn: Callable[P, Awaitable[T]], name: str) -> Callable[P, T]:
    """The blocking twin of an async API function (``evaluate`` of ``aevaluate``): the same parameters,
    documentation and result, run in an event loop of its own."""

    @functools.wraps(async_fn)
    def twin(*args: P.args, **kwargs: P.kwargs) -> T:
        return asyncio.run(async_fn(*args, **kwargs))  # type: ignore[arg-type]

    twin.__name__ = twin.__qualname__ = name
    twin.__doc__ = f"``{async_fn.__name__}`` (below), blocking: run in an event loop of its own.\n\n{async_fn.__doc__ or ''}"
    return twin
