"""The samples curve: the pipeline rerun with one node's ``samples`` set to each point of a list,
its score and that node's coverage at each point, and a plot of both against samples (log x).

Each point is an evaluation of its own (a pipeline spec that differs only in that node's
``samples``), stored and resumed like any other. The points share one runtime and so one response
cache, which keeps each sample of a request by its index: the largest point runs first, and the
smaller ones replay its first samples. The node's samples cost what the largest point's cost; nodes
after it (rank, fuse) see other inputs at each point and call their models at each one.
"""

from __future__ import annotations

__all__ = ["CurvePoint", "format_curve", "parse_ints", "require_matplotlib", "with_samples", "write_curve_plot"]

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from archon.exceptions import MissingDependency, UserError

if TYPE_CHECKING:
    from archon.spec import PipelineSpec


@dataclass
class CurvePoint:
    """One point of the curve: the pipeline with ``samples`` samples at the node."""

    samples: int
    score: float | None  # the pipeline's score
    coverage: float | None  # share of items where some candidate of the node is right
    n: int  # items scored
    failed: int
    calls: int  # model calls the runs made, cache hits included
    cached_calls: int  # of which the cache answered
    cost_usd: float | None
    eval_id: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_ints(text: str | None, flag: str, *, most: int | None = None) -> list[int] | None:
    """"1,5,10" as [1, 5, 10] (sorted, each once); a clear error naming ``flag`` otherwise."""
    if text is None:
        return None
    try:
        values = sorted({int(part) for part in text.replace(" ", "").split(",") if part})
    except ValueError:
        raise UserError(f"{flag} takes whole numbers separated by commas, e.g. {flag} 1,5,10 (got '{text}').") from None
    if not values or values[0] < 1 or (most is not None and values[-1] > most):
        bound = f" and at most {most}" if most is not None else ""
        raise UserError(f"{flag}: give numbers of at least 1{bound}, e.g. {flag} 1,5,10 (got '{text}').")
    return values


def with_samples(spec: PipelineSpec, node: str, samples: int) -> PipelineSpec:
    """``spec`` with ``samples`` at ``node``, checked as the pipeline file would be."""
    target = spec.node(node)
    if "samples" not in type(target.config).model_fields:
        takes = [n.id for n in spec.nodes if "samples" in type(n.config).model_fields]
        raise UserError(f"--samples-curve: node '{node}' ({target.op}) has no 'samples' setting; "
                        f"choose one that has with --pass-at-node ({', '.join(takes) or 'none in this pipeline'}).")
    try:
        config = type(target.config).model_validate({**target.config.model_dump(exclude_unset=True), "samples": samples})
    except ValidationError as exc:
        raise UserError(f"--samples-curve: node '{node}' cannot take samples={samples}: {exc.errors()[0]['msg']}") from exc
    return replace(spec, nodes=tuple(replace(n, config=config) if n.id == node else n for n in spec.nodes))


def format_curve(node: str, points: list[dict[str, Any]]) -> list[str]:
    """The text report's lines, from the points' ``to_dict()``."""
    lines = [f"  samples curve of node '{node}':"]
    for p in points:
        lines.append(f"    {p['samples']:>4} samples: score {_pct(p['score'])}, coverage {_pct(p['coverage'])}, "
                     f"calls {p['calls']} ({p['cached_calls']} cached)" + (f", {p['failed']} failed" if p["failed"] else ""))
    return lines


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.1%}"


def require_matplotlib() -> tuple[Any, Any]:
    """matplotlib's Agg canvas and Figure, or the error naming the extra to install (checked before
    an eval runs, so a missing plot library does not surface after the spending)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MissingDependency("the samples-curve plot", "plot") from exc
    return FigureCanvasAgg, Figure


def write_curve_plot(points: list[CurvePoint] | list[dict[str, Any]], path: str | Path, *, title: str = "") -> Path:
    """Coverage and score (%) against samples on a log x-axis, as a PNG at ``path``."""
    FigureCanvasAgg, Figure = require_matplotlib()
    rows = [p.to_dict() if isinstance(p, CurvePoint) else p for p in points]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Figure + the Agg canvas directly, not pyplot, as search's plot: no global backend switch.
    fig = Figure(figsize=(7, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for key, label, style in (("coverage", "coverage (some sample right)", "o-"), ("score", "pipeline score", "s--")):
        xy = [(r["samples"], r[key] * 100) for r in rows if r.get(key) is not None]
        if xy:
            ax.plot([x for x, _ in xy], [y for _, y in xy], style, label=label)
    ax.set_xscale("log", base=2)
    xs = [r["samples"] for r in rows]
    if xs:
        ax.set_xticks(xs, [str(x) for x in xs])
    ax.set_xlabel("samples (log scale)")
    ax.set_ylabel("%")
    ax.set_ylim(-2, 102)
    ax.set_title(title or "coverage and score vs samples")
    ax.grid(alpha=0.3)
    if rows:
        ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=120)
    return path
