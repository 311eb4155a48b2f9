"""Eval reports: the score with its 95% interval, failures, cost, tokens, calls and latency; and the
paired comparison of two pipelines on the same items. Both are typed (``EvalSummary``,
``Comparison``); ``to_dict()`` is what ``--json`` prints and ``str()`` the text report."""

from __future__ import annotations

__all__ = ["Comparison", "EvalSummary", "compare", "format_comparison", "format_official", "format_summary", "interval", "optimism_warning",
           "summarize"]

import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

_Z = statistics.NormalDist().inv_cdf(0.975)  # 1.96: two-sided 95%


def interval(values: list[float]) -> tuple[float, float]:
    """95% interval of the mean: Wilson's for 0/1 scores (good at small n and near 0 or 1), else
    the normal approximation."""
    n = len(values)
    if n == 0:
        return (0.0, 0.0)
    mean = sum(values) / n
    if all(v in (0.0, 1.0) for v in values):
        denom = 1 + _Z**2 / n
        centre = (mean + _Z**2 / (2 * n)) / denom
        half = _Z * math.sqrt(mean * (1 - mean) / n + _Z**2 / (4 * n * n)) / denom
        return (max(0.0, centre - half), min(1.0, centre + half))
    if n == 1:
        return (mean, mean)
    half = _Z * statistics.stdev(values) / math.sqrt(n)
    return (mean - half, mean + half)


def _pct(values: list[float], q: int) -> float | None:
    """The q-th percentile of ``values``, rounded to 2 places; None when there are none."""
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 2)
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 2)


def optimism_warning(scoring_visible: list[str] | tuple[str, ...]) -> str | None:
    """The line every report carries when the pipeline saw the fields that score it (MBPP's
    ``test_list``): a selection by those tests is graded by the same tests."""
    if not scoring_visible:
        return None
    return f"selection saw the scoring tests: scores are optimistic (visible scoring fields: {', '.join(scoring_visible)})"


@dataclass
class EvalSummary:
    """One pipeline on one benchmark. ``score`` is over the scored items; failures are counted apart
    (``score_failures_as_zero`` counts them as wrong). None means unknown (no item scored, a server
    that did not report usage, a model without a price), never zero."""

    pipeline: str
    benchmark: str
    score: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    failed: int
    score_failures_as_zero: float | None
    cost_usd: float | None
    cost_per_item_usd: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    tokens_per_item: float | None
    calls: int
    calls_per_item: float | None
    cached_calls: int
    # Mean samples drawn per item by adaptive nodes (sample_until), over the items run now; None without one.
    samples_per_query: float | None
    abstained: int  # items whose output node answered nothing (verify / unit_test with abstain); scored 0
    score_when_answered: float | None  # the score over the items answered, when some abstained
    # Items whose answer was picked as passing the visible tests or a verifier, and the share of them
    # the hidden scoring found wrong: the selector's false positives (None: no answer was picked so).
    selected_passing: int
    false_positive_rate: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    failures: list[dict[str, Any]] = field(default_factory=list)  # the first 20: item_id, error
    scoring_visible: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # The benchmark's own figure when its scorer defines one (``scorer.aggregate``): MT-Bench's
    # per-turn and overall ratings, Arena-Hard's win rate with its bootstrap interval.
    official: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        return format_summary(self)


def summarize(results: list[dict[str, Any]], *, pipeline: str = "", benchmark: str = "",
              scoring_visible: list[str] | tuple[str, ...] = (), official: dict[str, Any] | None = None) -> EvalSummary:
    """The summary of an evaluation's item results (``EvalRun.results``); ``official`` is the
    benchmark's own aggregate of them, shown as it is."""
    ok = [r for r in results if r["status"] == "ok"]
    failed = [r for r in results if r["status"] != "ok"]
    values = [float(r["score"]) for r in ok]
    lo, hi = interval(values)
    costs = [r["cost_usd"] for r in results if r.get("cost_usd") is not None]
    prompt, completion = _known_total(results, "prompt_tokens"), _known_total(results, "completion_tokens")
    # An item whose tokens a server never reported, and so has no cost, leaves the total cost unknown.
    unpriced = any(r.get("cost_usd") is None and (r.get("prompt_tokens", 0) is None or r.get("completion_tokens", 0) is None)
                   for r in results)
    latencies = [float(r["latency_ms"]) for r in ok]
    n_all = len(results)
    calls = sum(int(r.get("calls") or 0) for r in results)
    details = [r.get("detail") or {} for r in ok]
    drawn = [int(d["samples"]) for d in details if d.get("samples") is not None]
    abstained = sum(bool(d.get("abstained")) for d in details)
    answered = [float(r["score"]) for r, d in zip(ok, details) if not d.get("abstained")]
    picked = [float(r["score"]) for r, d in zip(ok, details) if d.get("selected") == "passed"]
    return EvalSummary(
        pipeline=pipeline,
        benchmark=benchmark,
        score=round(sum(values) / len(values), 6) if values else None,
        ci_low=round(lo, 6) if values else None,
        ci_high=round(hi, 6) if values else None,
        n=len(ok),
        failed=len(failed),
        score_failures_as_zero=round(sum(values) / n_all, 6) if n_all else None,
        cost_usd=None if unpriced else round(sum(costs), 8) if costs else (0.0 if not results else None),
        cost_per_item_usd=round(sum(costs) / n_all, 8) if costs and n_all and not unpriced else None,
        prompt_tokens=prompt,
        completion_tokens=completion,
        tokens_per_item=round((prompt + completion) / n_all, 2) if n_all and prompt is not None and completion is not None else None,
        calls=calls,
        calls_per_item=round(calls / n_all, 3) if n_all else None,
        cached_calls=sum(int(r.get("cached_calls") or 0) for r in results),
        samples_per_query=round(sum(drawn) / len(drawn), 3) if drawn else None,
        abstained=abstained,
        score_when_answered=round(sum(answered) / len(answered), 6) if abstained and answered else None,
        selected_passing=len(picked),
        false_positive_rate=round(sum(v < 1.0 for v in picked) / len(picked), 6) if picked else None,
        latency_p50_ms=_pct(latencies, 50),
        latency_p95_ms=_pct(latencies, 95),
        failures=[{"item_id": r["item_id"], "error": r.get("error")} for r in failed][:20],
        scoring_visible=list(scoring_visible),
        warnings=[w for w in [optimism_warning(scoring_visible)] if w],
        official=official,
    )


def _known_total(results: list[dict[str, Any]], key: str) -> int | None:
    """The sum of a token count, None (unknown) when any item's is unknown, never counted as 0."""
    values = [r.get(key, 0) for r in results]
    return None if any(v is None for v in values) else sum(int(v) for v in values)


@dataclass
class Comparison:
    """B minus A on the items both scored: the mean difference, its paired 95% interval, and the wins."""

    n: int
    difference: float
    ci_low: float
    ci_high: float
    b_better: int
    a_better: int
    ties: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def format(self, a: str, b: str) -> str:
        return format_comparison(self, a, b)


def compare(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> Comparison:
    """B minus A on the items both scored (item results of two evaluations)."""
    sa = {r["item_id"]: float(r["score"]) for r in a if r["status"] == "ok"}
    sb = {r["item_id"]: float(r["score"]) for r in b if r["status"] == "ok"}
    common = [i for i in sa if i in sb]
    diffs = [sb[i] - sa[i] for i in common]
    n = len(diffs)
    mean = sum(diffs) / n if n else 0.0
    half = _Z * statistics.stdev(diffs) / math.sqrt(n) if n > 1 else 0.0
    return Comparison(n=n, difference=round(mean, 6), ci_low=round(mean - half, 6), ci_high=round(mean + half, 6),
                      b_better=sum(d > 0 for d in diffs), a_better=sum(d < 0 for d in diffs), ties=sum(d == 0 for d in diffs))


def _fmt(v: Any, pct: bool = False) -> str:
    if v is None:
        return "-"
    return f"{v:.1%}" if pct else f"{v}"


def _fmt_tokens(s: dict[str, Any]) -> str:
    if s["prompt_tokens"] is None or s["completion_tokens"] is None:
        return "unknown (a server did not report usage)"
    return f"{s['prompt_tokens']}+{s['completion_tokens']}"


def format_summary(summary: EvalSummary | dict[str, Any]) -> str:
    """The text report of one evaluation (a summary, or its ``to_dict()``)."""
    s = summary.to_dict() if isinstance(summary, EvalSummary) else summary
    cost = "unknown" if s["cost_usd"] is None else f"${s['cost_usd']:.6f}"
    lines = [
        f"{s['pipeline']} on {s['benchmark']}: score {_fmt(s['score'], True)} "
        f"(95% CI {_fmt(s['ci_low'], True)} - {_fmt(s['ci_high'], True)}), n={s['n']}, failed={s['failed']}",
        f"  cost {cost} ({_fmt(s['cost_per_item_usd'])} per item), tokens {_fmt_tokens(s)} "
        f"({_fmt(s['tokens_per_item'])} per item), calls {s['calls']} ({_fmt(s['calls_per_item'])} per item, {s['cached_calls']} cached)"
        + (f", samples per query {s['samples_per_query']}" if s.get("samples_per_query") is not None else ""),
        f"  latency per item p50 {_fmt(s['latency_p50_ms'])} ms, p95 {_fmt(s['latency_p95_ms'])} ms",
    ]
    if s.get("abstained"):
        lines.append(f"  abstained {s['abstained']} (scored 0); score when answering {_fmt(s['score_when_answered'], True)}")
    if s.get("selected_passing"):
        lines.append(f"  selector: {s['selected_passing']} answers picked as passing its checks, false-positive rate "
                     f"{_fmt(s['false_positive_rate'], True)} (wrong by the hidden scoring)")
    if s.get("official"):
        lines.append("  " + format_official(s["official"]))
    lines += [f"  warning: {w}" for w in s.get("warnings", [])]
    for f in s["failures"][:5]:
        lines.append(f"  failed {f['item_id']}: {(f['error'] or '')[:160]}")
    return "\n".join(lines)


def format_official(official: dict[str, Any]) -> str:
    """One line: the aggregate's name, then its figures (lists and nested values as written)."""
    figures = ", ".join(f"{k} {v}" for k, v in official.items() if k != "name")
    return f"{official.get('name', 'official')}: {figures}"


def format_comparison(comparison: Comparison | dict[str, Any], a: str, b: str) -> str:
    c = comparison.to_dict() if isinstance(comparison, Comparison) else comparison
    return (f"{b} - {a}: {c['difference']:+.1%} (95% CI {c['ci_low']:+.1%} to {c['ci_high']:+.1%}) on {c['n']} paired items; "
            f"{b} better on {c['b_better']}, {a} better on {c['a_better']}, {c['ties']} ties")
