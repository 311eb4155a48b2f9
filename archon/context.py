"""The runtime (backends, store, cache, limits) and the per-run context operators receive.

A ``Runtime`` is built once per process or command (``archon run``, an eval, a server) and turns
backend names into wrapped backends lazily, so a pipeline that never calls OpenAI never needs its
key. A ``RunContext`` is cheap: one per run and per node, passed explicitly, never global.

A run may ask for the output node's tokens as they come (``archon serve`` streaming): the context
then sends that node's one call through the backend's ``stream`` when the chain can stream, hands
each delta to ``on_delta``, and gives the operator the same ``Completion`` as ever.
"""

from __future__ import annotations

__all__ = ["RunContext", "Runtime"]

import asyncio
import os
from collections.abc import Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from archon.exceptions import BackendResponseError, ConfigError, suggest
from archon.graph import parse_model_ref
from archon.records import RunTotals
from backends.base import Backend, CallMeta, Completion, CompletionRequest, can_reward, can_stream, open_stream, reward_of
from backends.budget import Budget, BudgetedBackend
from backends.presets import BackendSpec, missing_base_url, resolve_backend_specs
from backends.wrappers import CachedBackend, LimitedBackend, RecordingBackend

if TYPE_CHECKING:
    from archon.runner import CompiledPipeline
    from archon.spec import PipelineSpec
    from archon.types import Query, RunResult
    from stores.store import Store


class Runtime:
    """Everything runs share: resolved backends with their wrapper chains, the store, its recorder.

    ``backends`` maps names to ready backend instances (test doubles, custom clients); names not
    given are built from ``specs`` (presets merged with a pipeline's ``backends:``) on first use.
    ``store``: None for the default database, a URL, a Store, or False for no store (no recording
    to SQL, no cache). ``budget``: a spending limit (and meter) over every request this runtime issues.

    ``log`` is the store's ``Recorder``: the wrappers write call rows to it and read cached samples
    from it (as ``backends.ports.CallSink`` and ``SampleCache``), runs and evaluations hand it their rows.
    """

    def __init__(
        self,
        specs: dict[str, BackendSpec] | None = None,
        *,
        backends: dict[str, Backend] | None = None,
        store: Store | str | os.PathLike[str] | Literal[False] | None = None,
        use_cache: bool = True,
        global_limit: int = 256,
        budget: Budget | None = None,
    ):
        # Imported here: commands that never build a runtime (validate, schema) skip SQLAlchemy.
        from stores.pricing import Pricing
        from stores.recorder import Recorder
        from stores.store import get_store

        self.specs = resolve_backend_specs(specs)
        self._given = dict(backends or {})
        self.store: Store | None = None if store is False else get_store(store)
        self.use_cache = use_cache and self.store is not None
        self.pricing = Pricing.load()
        self.log = Recorder(self.store)
        # Always there: without limits it is the exact meter of what this runtime issued.
        self.budget = budget or Budget()
        self.budget.pricing = self.budget.pricing or self.pricing
        self._global = asyncio.Semaphore(global_limit)
        self._chains: dict[str, Backend] = {}
        self._raw: list[Backend] = []

    @classmethod
    def for_pipeline(cls, spec: PipelineSpec, **kw: Any) -> Runtime:
        return cls(spec.all_backends(), **kw)

    def backend(self, name: str) -> Backend:
        chain = self._chains.get(name)
        if chain is None:
            chain = self._chains[name] = self._build(name)
        return chain

    def _build(self, name: str) -> Backend:
        from backends.retry import RetryingBackend
        from archon.registry import get_backend_class

        spec = self.specs.get(name) or BackendSpec()
        raw = self._given.get(name)
        if raw is None:
            if name not in self.specs:
                valid = sorted(set(self.specs) | set(self._given))
                raise ConfigError(f"unknown backend '{name}'.{suggest(name, valid)} Valid backends: {', '.join(valid)}")
            if problem := missing_base_url(name, spec):  # never let the client default to OpenAI's URL
                raise ConfigError(problem)
            raw = get_backend_class(spec.kind)(name, spec)
            self._raw.append(raw)
        chain: Backend = RetryingBackend(raw, max_retries=spec.max_retries, max_wait=spec.max_retry_wait)
        chain = LimitedBackend(chain, spec.max_concurrency, self._global)
        chain = RecordingBackend(chain, self.log, self.pricing)
        chain = BudgetedBackend(chain, self.budget)  # under the cache: a replayed sample spends nothing
        if self.use_cache:
            chain = CachedBackend(chain, self.log, self.log, origin=raw)
        return chain

    def check_backends(self, spec: PipelineSpec) -> None:
        """Build every backend a pipeline uses now, so a missing key fails before any call (exit 2)."""
        for ref in spec.model_refs():
            self.backend(parse_model_ref(ref)[0])

    async def past_scores(self, pipeline: str) -> list[tuple[str, float]] | None:
        """(query text, score) of ``pipeline``'s scored eval items in the store, newest first; None without a store."""
        if self.store is None:
            return None
        return await asyncio.to_thread(self.store.past_scores, pipeline)

    async def flush(self) -> None:
        """Wait until everything recorded so far is in the store."""
        await self.log.drain()

    async def aclose(self) -> None:
        try:
            await self.flush()
        finally:
            await self._close_backends()

    async def __aenter__(self) -> Runtime:  # noqa: PYI034 (a subclass is not expected)
        return self

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if exc is None:
            await self.aclose()
            return
        try:
            await self.aclose()
        except Exception:  # noqa: BLE001,S110 (the body's error is the one to report, not a store that also failed)
            pass

    async def _close_backends(self) -> None:
        for raw in self._raw:
            close = getattr(raw, "aclose", None)
            if close is not None:
                await close()
        self._raw.clear()
        self._chains.clear()


@dataclass(frozen=True, slots=True)
class RunContext:
    """What an operator gets: a way to call models, and where the call comes from.

    ``meter`` counts the run's calls, tokens and cost as they happen (every node's context shares it).
    ``pipelines``: the compiled pipeline files the run's nodes may run (``run_pipeline``); ``scope``
    prefixes node ids inside such a nested run ("best/" for the judge pipeline of node 'best').
    """

    runtime: Runtime
    run_id: str | None = None
    node_id: str | None = None
    trial: int | None = None
    meter: RunTotals | None = None
    #: The node whose one-sample call is streamed to ``on_delta`` (the output node), if any.
    stream_node: str | None = None
    on_delta: Callable[[str], None] | None = None
    pipelines: Mapping[str, CompiledPipeline] = field(default_factory=dict, repr=False)
    scope: str = ""

    def for_node(self, node_id: str) -> RunContext:
        return replace(self, node_id=f"{self.scope}{node_id}")

    async def reward(self, model_ref: str, request: CompletionRequest) -> Completion:
        """Score ``request.messages`` with the reward model ``model_ref`` through the backend's chain
        (see ``backends.base.RewardBackend``); a backend that cannot is a ConfigError naming the fix."""
        backend, model = parse_model_ref(model_ref)
        chain = self.runtime.backend(backend)
        if not can_reward(chain):
            bottom: Any = chain
            while getattr(bottom, "inner", None) is not None:
                bottom = bottom.inner
            kind = self.runtime.specs[backend].kind if backend in self.runtime.specs else type(bottom).__name__
            raise ConfigError(f"node '{self.node_id}': backend '{backend}' (kind {kind}) cannot score with a reward "
                              "model: use method judge or yes_prob, or an openai-kind backend pointing at a vLLM server "
                              "that serves the reward model")
        req = replace(request, model=model, meta=CallMeta(self.run_id, self.node_id, self.trial, self.meter))
        return await reward_of(chain)(req)

    async def run_pipeline(self, ref: str, query: Query) -> RunResult:
        """Run the pipeline file ``ref`` (loaded with this pipeline) on ``query`` inside this run: the
        same cache, store and budget; its calls count in this run's totals and in the result's own."""
        compiled = self.pipelines.get(ref)
        if compiled is None:
            loaded = ", ".join(sorted(self.pipelines)) or "none"
            raise ConfigError(f"node '{self.node_id}': pipeline file '{ref}' was not loaded with the pipeline "
                              f"(loaded: {loaded}); a node's Config.pipeline_refs() must name it.")
        return await compiled.run_nested(query, self)

    async def complete(self, model_ref: str, request: CompletionRequest) -> Completion:
        """Call ``model_ref`` ("<backend>/<model>") through the backend's cache/record/limit/retry chain."""
        backend, model = parse_model_ref(model_ref)
        req = replace(request, model=model, meta=CallMeta(self.run_id, self.node_id, self.trial, self.meter))
        chain = self.runtime.backend(backend)
        if self.on_delta is not None and self.node_id == self.stream_node and req.n == 1 and can_stream(chain):
            return await self._stream(chain, req, self.on_delta)
        return await chain.complete(req)

    async def past_scores(self, pipeline: str) -> list[tuple[str, float]] | None:
        """(query text, score) of ``pipeline``'s scored eval items, newest first; None when there is no store."""
        return await self.runtime.past_scores(pipeline)

    async def _stream(self, chain: Backend, req: CompletionRequest, on_delta: Callable[[str], None]) -> Completion:
        completion = None
        async with aclosing(open_stream(chain, req)) as items:
            async for item in items:
                if isinstance(item, Completion):
                    completion = item
                elif item:
                    on_delta(item)
        if completion is None:
            raise BackendResponseError("the stream ended without its final answer", backend=chain.name, model=req.model,
                                       node=self.node_id)
        return completion
