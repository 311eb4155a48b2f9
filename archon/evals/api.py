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

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from archon.evals.curve import CurvePoint, format_curve, parse_ints, with_samples
from archon.evals.passk import PassAtK, check_node, format_pass_at, summarize_pass_at
from archon.evals.report import Comparison, EvalSummary, format_summary, summarize
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
    # Asked for with pass_at / coverage / samples_curve (archon.evals.passk, archon.evals.curve):
    pass_at_k: PassAtK | None = None
    samples_curve: list[CurvePoint] | None = None

    @property
    def ok(self) -> bool:
        return not self.failed and not self.store_error and not any(p.failed for p in self.samples_curve or ())

    @property
    def pass_at(self) -> dict[int, float | None] | None:
        """pass@k of ``pass_at_node``'s candidates by k (None for a k above some item's candidates)."""
        return self.pass_at_k.pass_at if self.pass_at_k else None

    @property
    def coverage(self) -> float | None:
        """The share of items where some candidate of ``pass_at_node`` is right."""
        return self.pass_at_k.coverage if self.pass_at_k else None

    @property
    def selection_gap(self) -> float | None:
        """Coverage minus the score: what picking the right candidate would still win."""
        return self.pass_at_k.selection_gap if self.pass_at_k else None

    @property
    def pass_at_node(self) -> str | None:
        return self.pass_at_k.node if self.pass_at_k else None

    def to_dict(self) -> dict[str, Any]:
        """The summary ``archon eval --json`` prints, with the evaluation's id (the item rows stay in ``results``)."""
        out = {**{k: getattr(self, k) for k in _SUMMARY_FIELDS}, "eval_id": self.eval_id}
        if self.pass_at_k is not None:
            out.update(self.pass_at_k.to_dict())
        if self.samples_curve is not None:
            out["samples_curve"] = [p.to_dict() for p in self.samples_curve]
        return out

    def __str__(self) -> str:
        lines = [format_summary(self)]
        if self.pass_at_k is not None:
            lines += format_pass_at(self.pass_at_k.to_dict())
            if self.samples_curve:
                lines += format_curve(self.pass_at_k.node, [p.to_dict() for p in self.samples_curve])
        return "\n".join(lines)


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


@dataclass(frozen=True)
class _Candidates:
    """What to measure of one node's candidates, checked once: pass@k's k, the node, the curve's points."""

    ks: tuple[int, ...]
    node: str | None
    curve: tuple[int, ...]


def _text(values: Sequence[int] | str | None) -> str | None:
    """A list of numbers as the flag's text, checked once by ``parse_ints``; an empty list is no list."""
    return None if not values else values if isinstance(values, str) else ",".join(map(str, values))


def _candidates(pass_at: Sequence[int] | str | None, coverage: bool, node: str | None,
                samples_curve: Sequence[int] | str | None) -> _Candidates | None:
    ks = parse_ints(_text(pass_at), "--pass-at")
    curve = parse_ints(_text(samples_curve), "--samples-curve", most=1024)
    if ks is None and curve is None and not coverage:
        if node is not None:
            raise UserError("--pass-at-node names the node of --pass-at, --coverage or --samples-curve: give one of them too.")
        return None
    return _Candidates(tuple(ks or ()), node, tuple(curve or ()))


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
    pass_at: Sequence[int] | None = None,
    coverage: bool = False,
    pass_at_node: str | None = None,
    samples_curve: Sequence[int] | None = None,
) -> EvalReport:
    """Score ``pipeline`` on ``benchmark``: the score with its 95% interval, failures, cost, tokens,
    calls and latency. Async; ``evaluate`` is its blocking twin.

    ``limit``: only the first N items. ``concurrency``: items run at once. ``style``: the prompt style
    (auto: completion when every node is in completion mode). ``judge``: the judge pipeline of judged
    benchmarks (mt-bench). ``db``: the store (None: the default one). ``backends``: backend instances
    by name (test doubles, your own clients). ``runtime``: run on this runtime (left open) instead.
    ``progress``: called with an ``EvalProgress`` after each item.

    Every candidate of one node (``pass_at_node``; default: the node that can output the most) is
    scored too when asked: ``pass_at`` (e.g. [1, 5, 10]) gives the unbiased pass@k, ``coverage``
    only the coverage and selection gap (both come with pass@k); ``samples_curve`` (e.g. [1, 2, 4, 8,
    16]) reruns the pipeline with that node's ``samples`` at each point (the cache serves the smaller
    points the largest one's samples) and reports score and coverage per point in ``samples_curve``.
    """
    if style not in STYLES:
        raise UserError(f"style must be auto, chat or completion (got '{style}').")
    wanted = _candidates(pass_at, coverage, pass_at_node, samples_curve)
    spec = as_spec(pipeline)
    judge_spec = as_spec(judge) if judge is not None else None
    bench = as_benchmark(benchmark, limit)
    return await _evaluate(spec, bench, concurrency, style, judge_spec, db, backends, runtime, progress, wanted)


async def _evaluate(spec: PipelineSpec, bench: Benchmark, concurrency: int, style: str, judge: PipelineSpec | None, db: Any,
                    backends: dict[str, Any] | None, runtime: Runtime | None, progress: Any,
                    wanted: _Candidates | None = None) -> EvalReport:
    from archon.evals.passk import Memo
    from archon.evals.runner import EvalRun
    from archon.evals.runner import evaluate as run_items
    from archon.evals.scorers import ScoreContext, get_scorer
    from archon.runner import CompiledPipeline

    node, curve = _plan(spec, wanted)
    run = None
    runs: list[tuple[int, EvalRun]] = []
    try:
        async with open_runtime([spec] + ([judge] if judge else []), runtime=runtime, db=db, backends=backends) as rt:
            score_ctx = ScoreContext(runtime=rt, judge=CompiledPipeline(judge) if judge else None)
            memo: Memo = {}
            run = await run_items(spec, bench, rt, concurrency=concurrency, style=style,  # type: ignore[arg-type]
                                  progress=_progress(progress, spec.name, bench.name), scorer_context=score_ctx,
                                  candidates_node=node, memo=memo)
            # Largest point first: the smaller ones then replay its first samples from the cache.
            for samples, point_spec in curve:
                runs.append((samples, await run_items(
                    point_spec, bench, rt, concurrency=concurrency, style=style,  # type: ignore[arg-type]
                    progress=_progress(progress, f"{spec.name} at {samples} samples", bench.name), scorer_context=score_ctx,
                    candidates_node=node, memo=memo)))
    except StoreUnavailable:
        if run is None or not run.store_error:
            raise  # else already reported with the results
    aggregate = getattr(get_scorer(bench.scorer), "aggregate", None)  # the benchmark's own figure (MT-Bench, Arena-Hard)
    summary = summarize(run.results, pipeline=run.pipeline, benchmark=run.benchmark, scoring_visible=run.scoring_visible,
                        official=aggregate(run.results) if aggregate else None)
    store_error = run.store_error or next((r.store_error for _, r in runs if r.store_error), None)
    return EvalReport(**summary.to_dict(), eval_id=run.eval_id, ran=run.ran, wall_s=run.wall_s, store_error=store_error,
                      results=run.results, pass_at_k=_pass_at(run, wanted.ks) if wanted else None,
                      samples_curve=sorted((_point(s, r) for s, r in runs), key=lambda p: p.samples) if wanted and wanted.curve else None)


def _plan(spec: PipelineSpec, wanted: _Candidates | None) -> tuple[str | None, list[tuple[int, PipelineSpec]]]:
    """The node whose candidates are scored, and the curve's pipelines, largest first (checked before any run)."""
    if wanted is None:
        return None, []
    node = check_node(spec, wanted.node)
    return node, [(s, with_samples(spec, node, s)) for s in reversed(wanted.curve)]


def _scores(run: Any) -> dict[str, float]:
    return {r["item_id"]: float(r["score"]) for r in run.results if r["status"] == "ok"}


def _pass_at(run: Any, ks: Sequence[int]) -> PassAtK:
    return summarize_pass_at(run.candidates_node, run.candidates, _scores(run), ks)


def _point(samples: int, run: Any) -> CurvePoint:
    s = summarize(run.results)
    return CurvePoint(samples=samples, score=s.score, coverage=_pass_at(run, ()).coverage, n=s.n, failed=s.failed, calls=s.calls,
                      cached_calls=s.cached_calls, cost_usd=s.cost_usd, eval_id=run.eval_id)


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
    pass_at: Sequence[int] | None = None,
    coverage: bool = False,
    pass_at_node: str | None = None,
    samples_curve: Sequence[int] | None = None,
) -> EvalComparison:
    """Score pipelines ``a`` and ``b`` on ``benchmark`` (as ``aevaluate``: each on its own runtime unless
    ``runtime`` is given) and compare them paired: B minus A with its 95% interval, as ``archon eval A B``.
    ``pass_at`` and the rest: as ``aevaluate``, for each pipeline. Async; ``compare`` is its blocking twin."""
    if style not in STYLES:
        raise UserError(f"style must be auto, chat or completion (got '{style}').")
    wanted = _candidates(pass_at, coverage, pass_at_node, samples_curve)
    specs = [as_spec(a), as_spec(b)]  # both checked before either runs
    for spec in specs:
        _plan(spec, wanted)
    judge_spec = as_spec(judge) if judge is not None else None
    bench = as_benchmark(benchmark, limit)  # loaded once: both pipelines see the very same items
    first, second = [await _evaluate(spec, bench, concurrency, style, judge_spec, db, backends, runtime, progress, wanted)
                     for spec in specs]
    return EvalComparison(first, second, paired(first.results, second.results))


compare = blocking(acompare, "compare")
