"""What ``archon search`` shows: the leaderboard, the cost/score Pareto front, best vs baseline, a plot.

Everything here works on plain leaderboard rows (dicts, see ``search.study.leaderboard``) and tolerates
missing values anywhere: a trial that failed early has no score, a local model has no dollar cost.
Scores and interval bounds are fractions (0.42 is shown as 42.0%).
"""

from __future__ import annotations

__all__ = ["pareto_front", "pipeline_line", "render_text", "write_plot"]

import math
from collections.abc import Container
from pathlib import Path
from typing import Any

import yaml

from archon.exceptions import MissingDependency

_TOP = 15  # leaderboard rows shown in the text report
_PIPE_WIDTH = 70  # the pipeline column is cut here so one trial stays on one line


def _num(v: Any) -> float | None:
    """A finite float, or None for None, NaN, infinities and things that are not numbers."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _known_score(row: dict[str, Any]) -> float:
    """The score of a row kept for having one (``_num(row.get("score")) is not None``)."""
    score = _num(row["score"])
    if score is None:
        raise ValueError(f"trial {_trial(row)} has no score")
    return score


def _cost(row: dict[str, Any], key: str) -> float:
    return _num(row.get(key)) or 0.0  # unknown cost counts as free (e.g. a local model)


def pareto_front(rows: list[dict[str, Any]], cost_key: str = "cost_per_query_usd") -> list[dict[str, Any]]:
    """The complete, scored trials no other trial beats on both score (higher) and cost (lower), cheapest first.

    Of trials with the same score and cost only the lowest trial number is kept.
    """
    scored = [r for r in rows if r.get("state") == "complete" and _num(r.get("score")) is not None]
    # Cheapest first; at equal cost the best score first, then the lowest trial: the sweep keeps a row
    # only when it scores strictly better than everything cheaper (or as cheap) before it.
    scored.sort(key=lambda r: (_cost(r, cost_key), -_known_score(r), _num(r.get("trial")) or 0))
    front, best = [], -math.inf
    for r in scored:
        if _known_score(r) > best:
            front.append(r)
            best = _known_score(r)
    return front


def _model_name(ref: Any) -> str:
    text = str(ref)
    return text.split("/", 1)[1] if "/" in text else text  # drop the backend prefix


def _node_label(node: Any) -> str:
    if not isinstance(node, dict):
        return "?"
    op = str(node.get("op") or "?")
    parts: list[str] = []
    models = node.get("model")
    if models:
        names = "+".join(_model_name(m) for m in (models if isinstance(models, list) else [models]))
        parts.append(names)
    samples = node.get("samples")
    if samples not in (None, 1):
        if parts:
            parts[-1] += f" x{samples}"
        else:
            parts.append(f"x{samples}")
    temperature = node.get("temperature")
    if temperature is not None:
        t = _num(temperature)
        parts.append(f"T={t:g}" if t is not None else f"T={temperature}")
    if node.get("top_k") is not None:
        parts.append(f"top {node['top_k']}")
    return f"{op}({', '.join(parts)})" if parts else op


def pipeline_line(yaml_text: str | None) -> str:
    """The pipeline in one line, e.g. ``generate(gemma-3-270m x10, T=0.8) -> unit_test(top 1)``.

    Each node shows its op and its most telling settings (models without the backend prefix, samples,
    temperature, top_k); other ops show just their name. Text that is not a pipeline comes back as '?'.
    """
    if not yaml_text:
        return ""
    try:
        data = yaml.safe_load(yaml_text)
    except yaml.YAMLError:
        return "?"
    nodes = data.get("nodes") if isinstance(data, dict) else None
    if not isinstance(nodes, list):
        return "?"
    return " -> ".join(_node_label(n) for n in nodes)


def _pct(v: Any, digits: int = 1) -> str:
    f = _num(v)
    return "-" if f is None else f"{f * 100:.{digits}f}%"


def _score(d: dict[str, Any] | None, key: str = "score") -> str:
    """'42.0% (20-60%)', or just '42.0%' without an interval, or '-' without a score."""
    d = d or {}
    if _num(d.get(key)) is None:
        return "-"
    lo, hi = _num(d.get("ci_low")), _num(d.get("ci_high"))
    if lo is None or hi is None:
        return _pct(d[key])
    return f"{_pct(d[key])} ({lo * 100:.0f}-{hi * 100:.0f}%)"


def _money(v: Any) -> str:
    """Dollars with enough decimals to show small per-query costs: $12.30, $0.0123, $0.00012."""
    f = _num(v)
    if f is None:
        return "-"
    if f == 0:
        return "$0"
    decimals = min(8, max(2, 2 - math.floor(math.log10(abs(f)))))  # three significant digits
    text = f"{f:.{decimals}f}"
    while decimals > 2 and text.endswith("0"):  # $0.20, not $0.200
        text, decimals = text[:-1], decimals - 1
    return f"${text}"


def _calls(v: Any) -> str:
    f = _num(v)
    return "-" if f is None else f"{f:.1f}"


def _tokens(v: Any) -> str:
    n = _num(v)
    return "-" if n is None else f"{n:,.0f}"


def _trial(row: dict[str, Any]) -> str:
    return "?" if row.get("trial") is None else str(row["trial"])


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _table(header: list[str], rows: list[list[str]], right: Container[int] = frozenset()) -> list[str]:
    """Plain aligned columns; ``right`` holds the indexes of right-aligned (numeric) columns."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for r in [header, *rows]:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))]
        lines.append("  ".join(cells).rstrip())
    return lines


def _points(a: Any, b: Any) -> str:
    fa, fb = _num(a), _num(b)
    return "-" if fa is None or fb is None else f"{(fa - fb) * 100:+.1f} points"


def _paired(diff: dict[str, Any] | None) -> str:
    """The paired interval of best minus baseline on the same items, when it was measured."""
    diff = diff or {}
    lo, hi = _num(diff.get("ci_low")), _num(diff.get("ci_high"))
    return "" if lo is None or hi is None else f" (paired 95% CI {lo * 100:+.1f} to {hi * 100:+.1f}, n={diff.get('n')})"


def _best_vs_baseline(best: dict[str, Any] | None, baseline: dict[str, Any] | None) -> list[str]:
    lines = []
    if best:
        if _num(best.get("final_score")) is not None:  # rescored on the whole dev set: that is what counts
            score, shown = best["final_score"], f"{_pct(best['final_score'])} on {best.get('final_n') or '?'} dev items"
            shown += f" (search: {_score(best)} on {best.get('n') or '?'})"
        else:
            score, shown = best.get("score"), f"{_score(best)} on {best.get('n') or '?'} dev items"
        lines.append(f"best (trial {_trial(best)}): {shown}, {_money(best.get('cost_per_query_usd'))}/query, "
                     f"{_calls(best.get('calls_per_item'))} calls/query")
        lines.append(f"  {pipeline_line(best.get('pipeline')) or '-'}")
    else:
        score = None
        lines.append("best: no trial completed")
    if baseline:
        lines.append(f"baseline: {_score(baseline)} on {baseline.get('n') or '?'} dev items, "
                     f"{_money(baseline.get('cost_per_query_usd'))}/query, {_calls(baseline.get('calls_per_item'))} calls/query")
        lines.append(f"  {pipeline_line(baseline.get('pipeline')) or '-'}")
        lines.append(f"best - baseline (dev): {_points(score, baseline.get('score'))}{_paired(baseline.get('difference'))}")
    return lines


def _holdout(holdout: dict[str, Any] | None) -> list[str]:
    if not holdout:
        return []
    best, baseline = holdout.get("best") or {}, holdout.get("baseline")
    lines = [f"holdout: best {_score(best)} on {best.get('n') or '?'} items"]
    if baseline:
        lines[0] += f", baseline {_score(baseline)} on {baseline.get('n') or '?'} items"
        lines.append(f"best - baseline (holdout): {_points(best.get('score'), baseline.get('score'))}{_paired(holdout.get('difference'))}")
    return lines


def _power_ranking(ranking: list[dict[str, Any]]) -> list[str]:
    """Archon's power ranking (each model alone, best first), or nothing for other spaces."""
    if not ranking:
        return []
    rows = [[str(i), str(p.get("model") or "?"), _pct(p.get("score")), str(p.get("n") if p.get("n") is not None else "-"),
             str(p.get("calls") if p.get("calls") is not None else "-")] for i, p in enumerate(ranking, 1)]
    return ["Power ranking (each model alone, best first):",
            *_table(["rank", "model", "score", "n", "calls"], rows, right={0, 2, 3, 4}), ""]


def render_text(summary: dict[str, Any]) -> str:
    """The plain-text search report: power ranking, leaderboard, Pareto front, best vs baseline, calls and spend."""
    rows = list(summary.get("leaderboard") or [])
    out = [f"search {summary.get('study') or ''}".rstrip(), ""]
    out += _power_ranking(list(summary.get("power_ranking") or []))

    table = [[_trial(r), str(r.get("state") or "-"), _score(r), _money(r.get("cost_per_query_usd")), _tokens(r.get("tokens_per_query")),
              _calls(r.get("calls_per_item")), _cut(pipeline_line(r.get("pipeline")), _PIPE_WIDTH)] for r in rows[:_TOP]]
    if table:
        out += _table(["trial", "state", "score (95% CI)", "$/query", "tokens/query", "calls/query", "pipeline"], table, right={0, 3, 4, 5})
        if len(rows) > _TOP:
            out.append(f"... {len(rows) - _TOP} more trials not shown")
    else:
        out.append("no finished trials")

    front = list(summary.get("pareto") or [])
    if front:
        out += ["", "Pareto front (no trial is both better and cheaper):"]
        out += _table(["trial", "score", "$/query", "tokens/query", "calls/query"],
                      [[_trial(r), _pct(r.get("score")), _money(r.get("cost_per_query_usd")), _tokens(r.get("tokens_per_query")),
                        _calls(r.get("calls_per_item"))] for r in front], right={0, 1, 2, 3, 4})

    out += [""] + _best_vs_baseline(summary.get("best"), summary.get("baseline")) + _holdout(summary.get("holdout"))
    out += [f"warning: {w}" for w in summary.get("warnings") or []]  # beside the scores it qualifies

    def count(key: str) -> str:
        v = summary.get(key)
        return "-" if v is None else str(v)

    out += ["", f"calls requested {count('calls_requested')}, issued {count('calls_issued')}, "
                f"{_money(summary.get('saved_usd'))} saved by the cache; spent {_money(summary.get('spent_usd'))}"]
    if summary.get("stopped"):
        out.append(f"stopped: {summary['stopped']}")
    return "\n".join(out) + "\n"


def _axis(rows: list[dict[str, Any]], cost_key: str) -> tuple[str, str]:
    """The x key and its label: dollars per query, or calls per query when no trial has a dollar cost."""
    if any(_cost(r, cost_key) > 0 for r in rows):
        labels = {"cost_per_query_usd": "cost per query (USD)", "tokens_per_query": "tokens per query", "calls_per_item": "calls per query"}
        return cost_key, labels.get(cost_key, cost_key)
    return "calls_per_item", "calls per query"


def _best(rows: list[dict[str, Any]], x_key: str) -> dict[str, Any] | None:
    scored = [r for r in rows if r.get("state") == "complete" and _num(r.get("score")) is not None]
    return min(scored, key=lambda r: (-_known_score(r), _cost(r, x_key), _num(r.get("trial")) or 0), default=None)


def write_plot(
    rows: list[dict[str, Any]], path: Path, *, cost_key: str = "cost_per_query_usd", title: str = ""
) -> list[Path]:
    """Score against cost per query: a PNG at ``path`` and, when plotly is installed, a self-contained
    ``.html`` next to it (hover shows each trial's pipeline). Returns the paths written."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MissingDependency("the search plot", "plot") from exc

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    x_key, x_label = _axis(rows, cost_key)
    plotted = [r for r in rows if _num(r.get("score")) is not None]
    done = [r for r in plotted if r.get("state") == "complete"]
    other = [r for r in plotted if r.get("state") != "complete"]
    front = pareto_front(rows, cost_key=x_key)
    best = _best(rows, x_key)

    def xy(rs: list[dict[str, Any]]) -> tuple[list[float], list[float]]:
        return [_cost(r, x_key) for r in rs], [_known_score(r) * 100 for r in rs]

    # Figure + the Agg canvas directly, not pyplot: no global backend switch, safe off the main thread.
    fig = Figure(figsize=(7, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if other:
        ax.scatter(*xy(other), marker="x", color="grey", alpha=0.4, label="pruned / infeasible")
    if done:
        ax.scatter(*xy(done), color="tab:blue", label="complete")
    if front:
        ax.step(*xy(front), where="post", color="tab:orange", label="Pareto front")
    if best is not None:
        (bx,), (by,) = xy([best])
        # Left of the point: the best trial is usually the dearest, at the right edge.
        ax.annotate(f"best: #{_trial(best)}", (bx, by), textcoords="offset points", xytext=(-6, 6), ha="right")
    if not plotted:
        ax.text(0.5, 0.5, "no scored trials", transform=ax.transAxes, ha="center", va="center")
    ax.margins(x=0.05, y=0.12)
    ax.set_xlabel(x_label)
    ax.set_ylabel("score (%)")
    ax.set_title(title or "score vs cost")
    ax.grid(alpha=0.3)
    if plotted:
        ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=120)
    written = [path]

    try:
        import plotly.graph_objects as go
    except ImportError:
        return written
    html = path.with_suffix(".html")
    pfig = go.Figure()

    def hover(rs: list[dict[str, Any]]) -> list[str]:
        return [f"trial {_trial(r)}: {_pct(r.get('score'))}<br>{pipeline_line(r.get('pipeline'))}" for r in rs]

    for rs, name, marker in ((other, "pruned / infeasible", {"symbol": "x", "color": "grey", "opacity": 0.4}),
                             (done, "complete", {"color": "#1f77b4"})):
        if rs:
            xs, ys = xy(rs)
            pfig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", name=name, marker=marker,
                                      text=hover(rs), hoverinfo="text"))
    if front:
        xs, ys = xy(front)
        pfig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line_shape="hv", name="Pareto front",
                                  line={"color": "#ff7f0e"}, hoverinfo="skip"))
    if best is not None:
        (bx,), (by,) = xy([best])
        pfig.add_annotation(x=bx, y=by, text=f"best: #{_trial(best)}", showarrow=True)
    pfig.update_layout(title=title or "score vs cost", xaxis_title=x_label, yaxis_title="score (%)")
    pfig.write_html(html, include_plotlyjs=True)  # self-contained: the report must open offline
    written.append(html)
    return written
