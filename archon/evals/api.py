"""``archon.evaluate`` and ``archon.compare``: score a pipeline on a benchmark, or two pipelines on the
same items (paired), from Python, exactly as ``archon eval`` does from the command line.

    import archon
    report = archon.evaluate("examples/single-call.yaml", "starter", limit=5)
    print(report)                      # the text report; report.to_dict() is `archon eval --json`
    print(report.score, report.ci_low, report.ci_high, report.cost_usd)

A pipeline may be a ``PipelineSpec``, a file path or a ``Pipeline`` builder; a benchmark a
``Benchmark``, a built-in name or a file. Each is turned into an object once, here. Results are
written to the store as items finish, so running the same evaluation again resumes it.
"""

from __future__ import annotations

__all__ = ["EvalComparison", "EvalProgress", "EvalReport", "acompare", "aevaluate", "as_benchmark", "compare", "evaluate"]

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from archon.evals.report import Comparison, EvalSummary, summarize
from archon.evals.report import compare as paired
from archon.exceptions import StoreUnavailable, UserError
from archon.runner import as_spec, blocking, open_runtime

if TYPE_CHECKING:
    from archon.context import Runtime
    from archon.evals.datasets import Benchmark
    from archon.spec import PipelineSpec

STYLES = ("auto", "chat", "completion")
_SUMMARY_FIELDS = tuple(f.name for f in fields(EvalSummary))


@dataclass
class EvalReport(EvalSummary):
    """An evaluation's summary (``EvalSummary``) plus where it lives and what this call did.

    ``ok`` is False when some items failed or the store could not take every result; the failed
    items are in ``failures``, every item's row in ``results``.
    """

    eval_id: str = ""  # the key of the results in the store: same pipeline, benchmark, prompts -> same id
    ran: int = 0  # items run by this call (the others were finished by an earlier one)
    wall_s: float = 0.0
    store_error: str | None = None  # the store stayed unreachable: a rerun resumes what was not written
    results: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.store_error

    def to_dict(self) -> dict[str, Any]:
        """The summary ``archon eval --json`` prints, with the evaluation's id (the item rows stay in ``results``)."""
        return {**{k: getattr(self, k) for k in _SUMMARY_FIELDS}, "eval_id": self.eval_id}


@dataclass
class EvalComparison:
    """Two pipelines on the same items: each one's report, and B minus A paired item by item."""

    a: EvalReport
    b: EvalReport
    comparison: Comparison

    @property
    def ok(self) -> bool:
        return self.a.ok and self.b.ok

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a.to_dict(), "b": self.b.to_dict(), "comparison": self.comparison.to_dict()}

    def __str__(self) -> str:
        return "\n".join([str(self.a), str(self.b), self.comparison.format(self.a.pipeline, self.b.pipeline)])


@dataclass(frozen=True)
class EvalProgress:
    """What a ``progress`` callback gets after each item (and once before the first)."""

    pipeline: str
    benchmark: str
    done: int
    total: int
    failed: int
    score: float | None  # the mean over the items scored so far
    cost_usd: float  # known costs so far


PipelineLike = Any  # PipelineSpec | str | Path | archon.Pipeline
BenchmarkLike = Any  # Benchmark | str | Path


def as_benchmark(benchmark: BenchmarkLike, limit: int | None = None) -> Benchmark:
    """A ``Benchmark``, a built-in name or a file, as a benchmark of at most ``limit`` items."""
    from archon.evals.datasets import Benchmark, load_benchmark

    if isinstance(benchmark, Benchmark):
        return benchmark.head(limit)
    if isinstance(benchmark, (str, Path)):
        return load_benchmark(str(benchmark), limit=limit)
    raise UserError(f"benchmark: give a Benchmark, a built-in name or a file path, not {type(benchmark).__name__}")


async def aevaluate(
    pipeline: PipelineLike,
    benchmark: BenchmarkLike,
    *,
    limit: int | None = None,
    concurrency: int = 8,
    style: Literal["auto", "chat", "completion"] = "auto",
    judge: PipelineLike | None = None,
    db: Any = None,
    backends: dict[str, Any] | None = None,
    runtime: Runtime | None = None,
    progress: Callable[[EvalProgress], None] | None = None,
) -> EvalReport:
    """Score ``pipeline`` on ``benchmark``: the score with its 95% interval, failures, cost, tokens,
    calls and latency. Async; ``evaluate`` is its blocking twin.

    ``limit``: only the first N items. ``concurrency``: items run at once. ``style``: the prompt style
    (auto: completion when every node is in completion mode). ``judge``: the judge pipeline of judged
    benchmarks (mt-bench). ``db``: the store (None: the default one). ``backends``: backend instances
    by name (test doubles, your own clients). ``runtime``: run on this runtime (left open) instead.
    ``progress``: called with an ``EvalProgress`` after each item.
    """
    if style not in STYLES:
        raise UserError(f"style must be auto, chat or completion (got '{style}').")
    spec = as_spec(pipeline)
    judge_spec = as_spec(judge) if judge is not None else None
    bench = as_benchmark(benchmark, limit)
    return await _evaluate(spec, bench, concurrency, style, judge_spec, db, backends, runtime, progress)


async def _evaluate(spec: PipelineSpec, bench: Benchmark, concurrency: int, style: str, judge: PipelineSpec | None, db: Any,
                    backends: dict[str, Any] | None, runtime: Runtime | None, progress: Any) -> EvalReport:
    from archon.evals.runner import evaluate as run_items
    from archon.evals.scorers import ScoreContext, get_scorer
    from archon.runner import CompiledPipeline

    run = None
    try:
        async with open_runtime([spec] + ([judge] if judge else []), runtime=runtime, db=db, backends=backends) as rt:
            score_ctx = ScoreContext(runtime=rt, judge=CompiledPipeline(judge) if judge else None)
            run = await run_items(spec, bench, rt, concurrency=concurrency, style=style,  # type: ignore[arg-type]
                                  progress=_progress(progress, spec.name, bench.name), scorer_context=score_ctx)
    except StoreUnavailable:
        if run is None or not run.store_error:
            raise  # else already reported with the results
    aggregate = getattr(get_scorer(bench.scorer), "aggregate", None)  # the benchmark's own figure (MT-Bench, Arena-Hard)
    summary = summarize(run.results, pipeline=run.pipeline, benchmark=run.benchmark, scoring_visible=run.scoring_visible,
                        official=aggregate(run.results) if aggregate else None)
    return EvalReport(**summary.to_dict(), eval_id=run.eval_id, ran=run.ran, wall_s=run.wall_s, store_error=run.store_error,
                      results=run.results)


def _progress(callback: Callable[[EvalProgress], None] | None, pipeline: str, benchmark: str):
    if callback is None:
        return None

    def report(done: int, total: int, results: dict[str, dict[str, Any]]) -> None:
        ok = [r for r in results.values() if r["status"] == "ok"]
        callback(EvalProgress(pipeline, benchmark, done, total, failed=len(results) - len(ok),
                              score=sum(r["score"] for r in ok) / len(ok) if ok else None,
                              cost_usd=sum(r["cost_usd"] or 0.0 for r in results.values())))

    return report


evaluate = blocking(aevaluate, "evaluate")


async def acompare(
    a: PipelineLike,
    b: PipelineLike,
    benchmark: BenchmarkLike,
    *,
    limit: int | None = None,
    concurrency: int = 8,
    style: Literal["auto", "chat", "completion"] = "auto",
    judge: PipelineLike | None = None,
    db: Any = None,
    backends: dict[str, Any] | None = None,
    runtime: Runtime | None = None,
    progress: Callable[[EvalProgress], None] | None = None,
) -> EvalComparison:
    """Score pipelines ``a`` and ``b`` on ``benchmark`` (as ``aevaluate``: each on its own runtime unless
    ``runtime`` is given) and compare them paired: B minus A with its 95% interval, as ``archon eval A B``.
    Async; ``compare`` is its blocking twin."""
    if style not in STYLES:
        raise UserError(f"style must be auto, chat or completion (got '{style}').")
    specs = [as_spec(a), as_spec(b)]  # both checked before either runs
    judge_spec = as_spec(judge) if judge is not None else None
    bench = as_benchmark(benchmark, limit)  # loaded once: both pipelines see the very same items
    first, second = [await _evaluate(spec, bench, concurrency, style, judge_spec, db, backends, runtime, progress)
                     for spec in specs]
    return EvalComparison(first, second, paired(first.results, second.results))


compare = blocking(acompare, "compare")
