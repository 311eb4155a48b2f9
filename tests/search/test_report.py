"""The search report: Pareto front, one-line pipelines, the text report and the plot files."""

from __future__ import annotations

import pytest

import search.report as report
from search.report import pareto_front, pipeline_line, render_text, write_plot

BEST_OF_10 = """
name: best-of-10
nodes:
  - id: draft
    op: generate
    model: local/gemma-3-270m
    samples: 10
    temperature: 0.8
  - id: answer
    op: unit_test
    inputs: [draft]
    tests: doctest
    top_k: 1
output: answer
"""

ENSEMBLE = """
name: mix
nodes:
  - id: proposals
    op: generate
    model: [server/llama-3.1-8b, server/qwen2.5-7b]
    samples: 2
  - id: answer_1
    op: fuse
    inputs: [proposals]
    model: server/qwen2.5-72b
    temperature: 0.0
  - id: answer_2
    op: fuse
    inputs: [answer_1]
    model: server/qwen2.5-72b
  - id: pick
    op: mystery_op
    inputs: [answer_2]
    whatever: 3
output: pick
"""


def row(trial, score, cost, state="complete", **kw):
    return {"trial": trial, "state": state, "score": score, "ci_low": None, "ci_high": None, "n": 10,
            "cost_usd": None, "cost_per_query_usd": cost, "calls_per_item": 1.0, "pipeline": "", **kw}


def trials(rows):
    return [r["trial"] for r in rows]


def test_public_surface():
    assert sorted(report.__all__) == ["pareto_front", "pipeline_line", "render_text", "write_plot"]


def test_pareto_front_drops_dominated_rows_and_sorts_by_cost():
    rows = [
        row(0, 0.50, 0.010),
        row(1, 0.40, 0.020),  # worse and dearer than 0
        row(2, 0.70, 0.030),
        row(3, 0.30, 0.001),
        row(4, 0.70, 0.050),  # as good as 2 but dearer
        row(5, 0.50, 0.010),  # same score and cost as 0: the lower trial number stays
        row(6, 0.90, 0.500, state="pruned"),
        row(7, 0.95, 0.400, state="infeasible"),
        row(8, None, 0.0),
    ]
    assert trials(pareto_front(rows)) == [3, 0, 2]


def test_pareto_front_counts_unknown_cost_as_free_and_takes_another_key():
    rows = [row(0, 0.2, None), row(1, 0.6, 0.01), row(2, 0.2, 0.0), row(3, 0.1, None)]
    assert trials(pareto_front(rows)) == [0, 1]
    rows = [row(0, 0.5, None, calls_per_item=4.0), row(1, 0.4, None, calls_per_item=1.0)]
    assert trials(pareto_front(rows, cost_key="calls_per_item")) == [1, 0]
    assert pareto_front([]) == []


def test_pipeline_line():
    assert pipeline_line(BEST_OF_10) == "generate(gemma-3-270m x10, T=0.8) -> unit_test(top 1)"
    assert pipeline_line(ENSEMBLE) == (
        "generate(llama-3.1-8b+qwen2.5-7b x2) -> fuse(qwen2.5-72b, T=0) -> fuse(qwen2.5-72b) -> mystery_op"
    )
    assert pipeline_line("") == ""
    assert pipeline_line(None) == ""
    assert pipeline_line("just: [a, mapping") == "?"
    assert pipeline_line("name: empty") == "?"


def full_summary():
    rows = [
        {"trial": t, "state": "complete" if t % 4 else "pruned", "score": 0.3 + 0.02 * t, "ci_low": 0.2, "ci_high": 0.6,
         "n": 10, "cost_usd": 0.01 * t, "cost_per_query_usd": 0.001 * t, "tokens_per_query": 800.0, "calls": 40,
         "cached_calls": 12, "calls_per_item": 4.0, "pipeline": BEST_OF_10, "params": {"samples": 10},
         "final_score": None, "final_n": None}
        for t in range(20)
    ]
    best = dict(rows[19], final_score=0.7, final_n=50)
    return {
        "study": "starter-search@starter",
        "leaderboard": rows,
        "pareto": pareto_front(rows),
        "best": best,
        "baseline": {"pipeline": ENSEMBLE, "score": 0.5, "ci_low": 0.36, "ci_high": 0.64, "n": 50,
                     "cost_per_query_usd": 0.00012, "calls_per_item": 1.0},
        "holdout": {"best": {"score": 0.65, "ci_low": 0.5, "ci_high": 0.78, "n": 40},
                    "baseline": {"score": 0.45, "ci_low": 0.3, "ci_high": 0.6, "n": 40}},
        "calls_requested": 800, "calls_issued": 560, "saved_usd": 0.0123, "spent_usd": 0.2,
        "stopped": "dollar budget reached: $0.2000 of $0.2000",
    }


def test_render_text_full_summary():
    text = render_text(full_summary())
    assert "starter-search@starter" in text
    assert "30.0% (20-60%)" in text
    assert "generate(gemma-3-270m x10, T=0.8) -> unit_test(top 1)" in text
    assert "5 more trials not shown" in text
    assert "Pareto front" in text
    assert "best (trial 19): 70.0% on 50 dev items" in text
    assert "baseline: 50.0% (36-64%) on 50 dev items, $0.00012/query" in text
    assert "best - baseline (dev): +20.0 points" in text
    assert "best - baseline (holdout): +20.0 points" in text
    assert "calls requested 800, issued 560, $0.0123 saved by the cache; spent $0.20" in text
    assert "stopped: dollar budget reached" in text
    leaderboard = text.split("Pareto front")[0]
    assert leaderboard.count("unit_test(top 1)") == 15


def test_render_text_survives_none_everywhere():
    empty_row = {k: None for k in ("trial", "state", "score", "ci_low", "ci_high", "n", "cost_usd",
                                   "cost_per_query_usd", "tokens_per_query", "calls", "cached_calls",
                                   "calls_per_item", "pipeline", "params", "final_score", "final_n")}
    summary = {"study": None, "leaderboard": [empty_row], "pareto": [empty_row], "best": empty_row,
               "baseline": {"pipeline": None, "score": None, "ci_low": None, "ci_high": None, "n": None,
                            "cost_per_query_usd": None, "calls_per_item": None},
               "holdout": {"best": None, "baseline": None}, "calls_requested": None, "calls_issued": None,
               "saved_usd": None, "spent_usd": None, "stopped": None}
    text = render_text(summary)
    assert "calls requested -, issued -" in text
    assert "stopped" not in text
    assert render_text({}).startswith("search")
    assert "no trial completed" in render_text({"best": None, "leaderboard": None})


def test_write_plot_writes_png_and_html(tmp_path):
    pytest.importorskip("matplotlib")
    rows = full_summary()["leaderboard"] + [row(99, None, None, state="infeasible")]
    paths = write_plot(rows, tmp_path / "plots" / "search.png", title="demo")
    png = tmp_path / "plots" / "search.png"
    assert paths[0] == png
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    try:
        import plotly  # noqa: F401
    except ImportError:
        assert paths == [png]
    else:
        html = png.with_suffix(".html")
        assert paths == [png, html]
        text = html.read_text(encoding="utf-8")
        assert "trial 19" in text and "cdn.plot.ly" not in text.split("<body>")[0]


def test_write_plot_falls_back_to_calls_without_costs(tmp_path):
    pytest.importorskip("matplotlib")
    rows = [row(0, 0.4, None, calls_per_item=1.0), row(1, 0.6, 0.0, calls_per_item=10.0),
            row(2, 0.5, None, state="pruned", calls_per_item=5.0)]
    assert report._axis(rows, "cost_per_query_usd") == ("calls_per_item", "calls per query")
    paths = write_plot(rows, tmp_path / "calls.png")
    assert paths[0].stat().st_size > 0
    paths = write_plot([], tmp_path / "empty.png")
    assert paths[0].read_bytes()[:4] == b"\x89PNG"


def test_write_plot_names_the_extra_when_matplotlib_is_missing(tmp_path, monkeypatch):
    import builtins

    from archon.exceptions import MissingDependency

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kw):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(MissingDependency, match=r"pip install 'archon-llm\[plot\]'"):
        write_plot([], tmp_path / "x.png")
