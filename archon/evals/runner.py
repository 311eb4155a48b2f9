"""``archon eval``'s engine: run a pipeline over a benchmark's items concurrently, score each,
write each result as it finishes, and resume an interrupted evaluation."""

from __future__ import annotations

__all__ = ["EvalRun", "evaluate", "eval_key", "prompt_style"]

import asyncio
import hashlib
import json
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from archon.evals.passk import Memo, candidates_key, score_candidates
from archon.exceptions import ArchonError, StoreUnavailable, UserError
from archon.runner import CompiledPipeline
from archon.spec import PipelineSpec
from archon.types import Query, RunResult
from stores.evals import EvalResult

if TYPE_CHECKING:
    from archon.context import Runtime
    from archon.evals.datasets import Benchmark, Item


@dataclass
class EvalRun:
    """What ``evaluate`` returns: the evaluation's id and every item's result (this run's and earlier)."""

    eval_id: str
    pipeline: str
    benchmark: str
    results: list[dict[str, Any]]
    ran: int  # items run now (the rest were finished by an earlier, interrupted run)
    wall_s: float
    scoring_visible: tuple[str, ...] = ()  # scoring fields the pipeline saw (``Benchmark.scoring_visible``)
    store_error: str | None = None  # the store stayed unreachable: results held here were not all written
    candidates_node: str | None = None  # the node whose candidates were all scored (``evaluate(candidates_node=)``)
    candidates: dict[str, tuple[int, int]] = field(default_factory=dict)  # item id -> (n candidates, c correct)


def prompt_style(spec: PipelineSpec) -> Literal["chat", "completion"]:
    """'completion' when every model-calling node sends plain text (a base model), else 'chat'."""
    modes = [getattr(n.config, "mode", None) for n in spec.nodes if n.config.model_refs()]
    return "completion" if modes and all(m == "completion" for m in modes) else "chat"


def eval_key(spec: PipelineSpec, benchmark: Benchmark, style: str, scorer_context: Any = None) -> str:
    """Same pipeline, benchmark, prompts, scorer and judge -> same key -> finished items are reused."""
    nested = {"nested": _nested_dicts(spec)} if spec.pipelines else {}  # only then: older keys stay the same
    payload = json.dumps(
        {"pipeline": spec.to_dict(), **nested, **_judging(scorer_context), "benchmark": benchmark.name,
         "scorer": benchmark.scorer, "style": style,
         # fewshot + template is the old baked-in few-shot template: keys of stored results stay the same
         "prompt": benchmark.fewshot + benchmark.completion_prompt if style == "completion" else benchmark.chat_prompt},
        sort_keys=True, default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _judging(ctx: Any) -> dict[str, Any]:
    """The judge pipeline and the baseline answers that score the items, when there are any: scores
    a different judge gave (or against another baseline) are never reused. Empty without a judge, so
    the keys of evaluations scored without one stay the same."""
    judge, baseline = getattr(ctx, "judge", None), getattr(ctx, "baseline", None)
    out: dict[str, Any] = {}
    if judge is not None:  # a CompiledPipeline
        out["judge"] = {"pipeline": judge.spec.to_dict(), "nested": _nested_dicts(judge.spec)}
    if baseline:
        out["baseline"] = hashlib.sha256(json.dumps(baseline, sort_keys=True, default=str).encode()).hexdigest()
    return out


def _nested_dicts(spec: PipelineSpec) -> dict[str, Any]:
    """The pipeline files ``spec`` runs (a score node's judge), as they are now: a file edited since
    makes another key, so results scored by the old judge are not reused."""
    return {ref: {"pipeline": sub.to_dict(), "nested": _nested_dicts(sub)} for ref, sub in spec.pipelines.items()}


async def evaluate(
    spec: PipelineSpec,
    benchmark: Benchmark,
    runtime: Runtime,
    *,
    concurrency: int = 8,
    style: Literal["auto", "chat", "completion"] = "auto",
    trial: int | None = None,
    progress: Any = None,
    scorer_context: Any = None,
    candidates_node: str | None = None,
    memo: Memo | None = None,
) -> EvalRun:
    """Run ``spec`` on every item of ``benchmark`` not already finished; returns all results.

    A failed item (its run failed after retries) is recorded as failed and never stops the others;
    a later run of the same evaluation retries it. ``progress``, when given, is called after each
    item with (done, total, results so far).

    ``candidates_node``: also score every candidate of that node (``archon.evals.passk``) and keep
    each item's (n, c) in ``EvalRun.candidates``; they are stored like results, so a resumed run
    reruns (from the cache) only the items that lack them. ``memo`` shares scored texts across calls.
    """
    from archon.evals.scorers import ScoreContext, get_scorer

    if runtime.store is None:
        raise UserError("archon eval needs a store (it records results to resume): give --db or leave the default.")
    if candidates_node and benchmark.followup:
        raise UserError(f"pass@k and coverage score single answers: benchmark '{benchmark.name}' has multi-turn items.")
    chosen = prompt_style(spec) if style == "auto" else style
    key = eval_key(spec, benchmark, chosen, scorer_context)
    settings = {"style": chosen, "scorer": benchmark.scorer, "items": len(benchmark.items)}
    stats_key = candidates_key(key, candidates_node) if candidates_node else None
    async for attempt in runtime.log.retrying():  # a database restarting as the eval starts is waited for
        with attempt:
            await asyncio.to_thread(runtime.store.start_eval, key, spec.name, benchmark.name, settings, trial)
            earlier = {r["item_id"]: r for r in await asyncio.to_thread(runtime.store.eval_results, key)}
            counted: dict[str, tuple[int, int]] = {}
            if stats_key:
                await asyncio.to_thread(runtime.store.start_eval, stats_key, spec.name, benchmark.name,
                                        {**settings, "candidates_of": key, "node": candidates_node}, trial)
                counted = {r["item_id"]: (r["raw"]["n"], r["raw"]["c"])
                           for r in await asyncio.to_thread(runtime.store.eval_results, stats_key) if r["status"] == "ok"}
    todo = [it for it in benchmark.items if earlier.get(it.id, {}).get("status") != "ok" or (stats_key and it.id not in counted)]
    scorer = get_scorer(benchmark.scorer)
    ctx = scorer_context or ScoreContext(runtime=runtime)
    if getattr(scorer, "needs_judge", False) and getattr(ctx, "judge", None) is None:
        raise UserError(
            f"benchmark '{benchmark.name}' is scored by an LLM judge: give --judge JUDGE.yaml, a pipeline that reads "
            "the judge prompt and answers 'Rating: [[N]]' (see examples/judge.yaml)."
        )
    compiled = CompiledPipeline(spec)
    runtime.log.durable = True  # a killed eval must find every answered call in the cache
    limit = asyncio.Semaphore(max(1, concurrency))
    results = {i: r for i, r in earlier.items() if r["status"] == "ok"}
    total = len(benchmark.items)
    started = time.perf_counter()
    memo = {} if memo is None else memo

    async def one(item: Item) -> None:
        async with limit:
            row, res = await _run_item(compiled, benchmark, item, chosen, runtime, scorer, ctx, key, trial)
            if stats_key and candidates_node and res is not None and row.status == "ok":  # (n, c) of a scored item
                row = await _count(row, res, candidates_node, stats_key, item, scorer, ctx, memo, counted, runtime)
        runtime.log.add_eval_result(row)
        results[item.id] = _as_dict(row)
        if progress is not None:
            progress(len(results), total, results)

    if progress is not None:
        progress(len(results), total, results)
    await asyncio.gather(*(one(it) for it in todo))
    store_error = None
    try:
        await runtime.flush()
    except StoreUnavailable as exc:  # the results are still reported; a rerun resumes what was not written
        store_error = str(exc)
    order = {it.id: i for i, it in enumerate(benchmark.items)}
    rows = sorted((r for i, r in results.items() if i in order), key=lambda r: order[r["item_id"]])
    return EvalRun(key, spec.name, benchmark.name, rows, len(todo), time.perf_counter() - started, benchmark.scoring_visible,
                   store_error, candidates_node, {i: counted[i] for i in order if i in counted and i in results})


async def _count(row: EvalResult, res: RunResult, node: str, stats_key: str, item: Item, scorer: Any, ctx: Any, memo: Memo,
                 counted: dict[str, tuple[int, int]], runtime: Runtime) -> EvalResult:
    """Score every candidate of ``node`` and queue the item's (n, c); the item fails when the scorer does."""
    memo.setdefault((item.id, res.output), float(row.score or 0.0) >= 1.0)  # the output was just scored
    try:
        n, c = await score_candidates([cand.text for cand in res.candidates.get(node, [])], item, scorer, ctx, memo)
    except Exception as exc:  # as for the output: a scorer bug fails the item, visibly
        return replace(row, status="failed", score=None, error=f"scorer failed on a candidate of node '{node}': {type(exc).__name__}: {exc}")
    counted[item.id] = (n, c)
    # Before the item's own row: an item whose result is stored then has its counts too.
    runtime.log.add_eval_result(EvalResult(eval_id=stats_key, item_id=item.id, status="ok", score=c / n if n else 0.0,
                                           raw={"node": node, "n": n, "c": c}))
    return row


async def _run_item(compiled, benchmark, item, style, runtime, scorer, ctx, key, trial) -> tuple[EvalResult, RunResult | None]:
    """The item's result row (its ``detail``: abstained, picked as passing, samples drawn) and its last run (None when it failed)."""
    query: Query | None = benchmark.query(item, style)
    start = time.perf_counter()
    runs = []
    try:
        while query is not None:  # one turn, or each turn of a multi-turn item with the answers so far
            runs.append(await compiled.run(query, runtime, trial=trial))
            query = benchmark.followup(item, [r.output for r in runs], style) if benchmark.followup else None
    except ArchonError as exc:
        return EvalResult(eval_id=key, item_id=item.id, status="failed", error=str(exc),
                          latency_ms=(time.perf_counter() - start) * 1000), None
    latency = (time.perf_counter() - start) * 1000
    res = runs[-1]
    output = res.output
    if len(runs) > 1:  # the scorer reads every turn's answer in data["answers"]; the row keeps them all
        answers = [r.output for r in runs]
        item, output = replace(item, data={**item.data, "answers": answers}), json.dumps(answers)
    detail = _detail(runs, compiled.spec.output)
    value, raw = 0.0, None  # an abstention is no answer: it scores 0, whatever the scorer would make of an empty text
    try:
        if not detail.get("abstained"):
            score = await scorer(res.output, item, ctx)
            value, raw = float(score.value), score.raw
    except Exception as exc:  # a scorer bug must not sink the evaluation: the item fails, visibly
        return EvalResult(eval_id=key, item_id=item.id, status="failed", error=f"scorer failed: {type(exc).__name__}: {exc}",
                          run_id=res.run_id, output=output, latency_ms=latency), None
    costs = [r.cost_usd for r in runs]
    usage = sum((r.usage for r in runs[1:]), runs[0].usage)
    return EvalResult(
        eval_id=key, item_id=item.id, status="ok", score=value, raw=raw, output=output, detail=detail or None,
        run_id=res.run_id, latency_ms=latency, prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens,
        cost_usd=None if any(c is None for c in costs) else sum(c for c in costs if c is not None),
        calls=sum(r.calls for r in runs), cached_calls=sum(r.cached_calls for r in runs),
    ), res


def _detail(runs: list[RunResult], output_node: str) -> dict[str, Any]:
    """What the runs say of the answer beyond its text: it abstained; it was picked as passing the
    visible tests or a verifier ("passed"), or picked although it did not ("failed"), so that a wrong
    answer picked as passing counts as the selector's false positive; the samples adaptive nodes drew."""
    detail: dict[str, Any] = {}
    if any(r.abstained for r in runs):
        detail["abstained"] = True
    for final in runs[-1].candidates.get(output_node, [])[:1]:  # the answer's candidate
        tests, verified = final.meta.get("tests"), final.meta.get("verified")
        if isinstance(tests, dict) and tests.get("total"):
            detail["selected"] = "passed" if tests.get("status") == "passed" else "failed"
        elif verified is not None:
            detail["selected"] = "passed" if verified else "failed"
    drawn = [r.samples_used for r in runs if r.samples_used is not None]
    if drawn:
        detail["samples"] = sum(drawn)
    return detail


def _as_dict(r: EvalResult) -> dict[str, Any]:
    return {f: getattr(r, f) for f in r.__dataclass_fields__}
