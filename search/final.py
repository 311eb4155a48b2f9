"""The end of a search and its record: the best few trials rescored on the whole dev set, the baseline
beside them, the held-out split scored once; and the summary of a study that the report, ``--json``
and ``archon search --show`` print.

Everything here is kept in the study itself (the trials' and the study's user attributes), so a
finished study can be shown again from its database alone.
"""

from __future__ import annotations

__all__ = ["finish_search", "leaderboard", "measure", "study_summary"]

from typing import TYPE_CHECKING, Any

import yaml

from archon.evals.report import compare, optimism_warning, summarize

if TYPE_CHECKING:
    from archon.context import Runtime
    from archon.evals.datasets import Benchmark
    from archon.spec import PipelineSpec


def measure(results: list[dict[str, Any]], runtime: Runtime) -> dict[str, Any]:
    """A trial's figures; costs are the pipeline's own (paid plus replayed from the cache), per query."""
    totals = summarize(results).to_dict()
    n = max(len(results), 1)
    spend = runtime.store.spend([r["run_id"] for r in results if r.get("run_id")]) if runtime.store is not None else {}
    unknown = spend.get("unknown_usage_calls", 0)
    # Calls whose usage the server never reported make the cost unknown, never a lower one.
    cost = None if unknown else spend.get("cost_usd", 0.0) + spend.get("saved_usd", 0.0)
    return {
        # A failed item counts as wrong: a pipeline that breaks on hard queries must not win by skipping them.
        "score": totals["score_failures_as_zero"] or 0.0,
        "ci_low": totals["ci_low"], "ci_high": totals["ci_high"], "n": len(results), "failed": totals["failed"],
        "calls": totals["calls"], "cached_calls": totals["cached_calls"], "calls_per_item": totals["calls_per_item"],
        "tokens_per_query": totals["tokens_per_item"], "cost_usd": None if cost is None else round(cost, 8),
        "cost_per_query_usd": None if cost is None else round(cost / n, 10), "unknown_usage_calls": unknown,
    }


def _spec(row: dict[str, Any]) -> PipelineSpec:
    from archon.spec import parse_pipeline

    return parse_pipeline(yaml.safe_load(row["pipeline"]), source=f"trial {row['trial']}", check_backends=False)


async def finish_search(study: Any, dev: Benchmark, held: Benchmark | None, runtime: Runtime, *, rescore: int,
                        baseline: PipelineSpec | None, concurrency: int, cost_key: str) -> None:
    """Rescore the best ``rescore`` complete trials on all of ``dev`` (free where a trial already saw it:
    finished items and calls are reused), pick the best, and score it and the baseline on ``held``.

    What it requested is kept with it (``calls``), and what every finish of the study issued and spent
    (``issued_calls``, ``spent_usd``, ``spent_tokens``): the search's totals and budget count them."""
    from archon.evals.runner import evaluate

    rows = [r for r in leaderboard(study) if r["state"] == "complete"][: max(rescore, 1)]
    if not rows:
        return
    before = runtime.budget.spent
    final: dict[str, Any] = {"dev_items": len(dev.items), "rescored": {}}
    runs: dict[int, tuple[PipelineSpec, list[dict[str, Any]]]] = {}
    requested = 0
    for row in rows:
        spec = _spec(row)
        run = await evaluate(spec, dev, runtime, concurrency=concurrency)
        runs[row["trial"]] = (spec, run.results)
        m = measure(run.results, runtime)
        requested += m["calls"] or 0
        final["rescored"][str(row["trial"])] = {k: m[k] for k in ("score", "ci_low", "ci_high", "n", cost_key)}
    rescored = final["rescored"]
    best = max(runs, key=lambda t: (rescored[str(t)]["score"], -(rescored[str(t)][cost_key] or 0.0), -t))
    final["best_trial"] = best
    best_spec, best_dev = runs[best]
    base_dev = None
    if baseline is not None:
        base_dev = (await evaluate(baseline, dev, runtime, concurrency=concurrency)).results
        final["baseline"] = {"pipeline": baseline.to_yaml(), "name": baseline.name, **measure(base_dev, runtime),
                             "difference": compare(base_dev, best_dev).to_dict()}
        requested += final["baseline"]["calls"] or 0
    if held is not None:
        best_held = (await evaluate(best_spec, held, runtime, concurrency=concurrency)).results
        final["holdout"] = {"n": len(held.items), "best": measure(best_held, runtime), "baseline": None}
        requested += final["holdout"]["best"]["calls"] or 0
        if baseline is not None:
            base_held = (await evaluate(baseline, held, runtime, concurrency=concurrency)).results
            final["holdout"]["baseline"] = measure(base_held, runtime)
            final["holdout"]["difference"] = compare(base_held, best_held).to_dict()
            requested += final["holdout"]["baseline"]["calls"] or 0
    spent, earlier = runtime.budget.spent - before, study.user_attrs.get("final") or {}
    # Requested: this finish's (a rerun asks again, replayed from the cache). Issued and spent: every finish's.
    final.update(calls=requested, issued_calls=(earlier.get("issued_calls") or 0) + spent.calls,
                 spent_usd=(earlier.get("spent_usd") or 0.0) + spent.usd, spent_tokens=(earlier.get("spent_tokens") or 0) + spent.tokens)
    study.set_user_attr("final", final)


def leaderboard(study: Any) -> list[dict[str, Any]]:
    """Evaluated trials, best first: score with interval, cost and calls per query, the pipeline.
    (Samples the per-query call limit ruled out before running are left out.)"""
    final = study.user_attrs.get("final") or {}
    rescored = final.get("rescored", {})
    rows = []
    for t in study.get_trials(deepcopy=False):
        a = t.user_attrs
        if not t.state.is_finished() or a.get("skipped") or (t.state.name == "FAIL" and not a.get("stopped")):
            continue  # a repeat, ruled out before running, a surplus ask, or a killed worker's trial: nothing to show
        state = "infeasible" if a.get("infeasible") else ("stopped" if t.state.name == "FAIL" else t.state.name.lower())
        values = t.values or []
        again = rescored.get(str(t.number), {})
        rows.append({
            "trial": t.number, "state": state,
            "score": values[0] if values else a.get("score"),
            "ci_low": a.get("ci_low"), "ci_high": a.get("ci_high"), "n": a.get("n"), "failed": a.get("failed"),
            "final_score": again.get("score"), "final_n": again.get("n"),
            "cost_usd": a.get("cost_usd"), "cost_per_query_usd": a.get("cost_per_query_usd"),
            "tokens_per_query": a.get("tokens_per_query"), "calls_per_item": a.get("calls_per_item"),
            "calls_bound": a.get("calls_bound"), "calls": a.get("calls", 0), "cached_calls": a.get("cached_calls", 0),
            "issued_calls": a.get("issued_calls", 0), "spent_usd": a.get("spent_usd", 0.0),
            "infeasible": a.get("infeasible"), "pipeline": a.get("pipeline", ""), "params": dict(t.params),
        })

    def rank(r: dict[str, Any]):
        score = r["final_score"] if r["final_score"] is not None else r["score"]
        return (r["state"] != "complete", r["final_score"] is None, -(score or 0.0), r["cost_per_query_usd"] or 0.0, r["trial"])

    rows.sort(key=rank)
    return rows


def study_summary(study: Any, cost_key: str | None = None) -> dict[str, Any]:
    """Everything the report shows, from the study alone. The totals count the power ranking's and the
    final rescoring's calls beside the trials'."""
    from search.power_rank import RANKING_ATTR
    from search.report import pareto_front

    cost_key = cost_key or study.user_attrs.get("cost_key") or "cost_per_query_usd"
    rows = leaderboard(study)
    final = study.user_attrs.get("final") or {}
    by_number = {r["trial"]: r for r in rows}
    best = by_number.get(final.get("best_trial")) or next((r for r in rows if r["state"] == "complete"), None)
    seen = list(study.user_attrs.get("scoring_visible") or [])
    ranking = study.user_attrs.get(RANKING_ATTR) or {}
    return {
        "study": study.study_name, "leaderboard": rows, "best": best,
        "pareto": pareto_front(rows, cost_key=cost_key), "cost_key": cost_key,
        "baseline": final.get("baseline"), "holdout": final.get("holdout"), "dev_items": final.get("dev_items"),
        "skipped": sum(1 for t in study.get_trials(deepcopy=False) if t.user_attrs.get("skipped")),
        "power_ranking": list(ranking.get("ranking") or []),
        "calls_requested": sum(r["calls"] or 0 for r in rows) + sum(x.get("calls") or 0 for x in (ranking, final)),
        "calls_issued": sum(r["issued_calls"] or 0 for r in rows) + sum(x.get("issued_calls") or 0 for x in (ranking, final)),
        "spent_usd": round(sum(r["spent_usd"] or 0.0 for r in rows) + sum(x.get("spent_usd") or 0.0 for x in (ranking, final)), 8),
        # What the trials would have paid with no cache, less what they paid.
        "saved_usd": round(sum(max(0.0, (r["cost_usd"] or 0.0) - (r["spent_usd"] or 0.0)) for r in rows), 8),
        "stopped": study.user_attrs.get("last_stop"),
        "scoring_visible": seen, "warnings": [w for w in [optimism_warning(seen)] if w],
    }
