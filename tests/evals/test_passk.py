"""pass@k, coverage and the samples curve of ``archon.evaluate``, on a ``FunctionBackend`` whose
per-sample correctness is known item by item, so the reported figures can be checked against
closed forms; and the samples curve's cost: 16 samples per item for points 1..16, not 1+2+...+16."""

from __future__ import annotations

import json
import math
import random
from collections import Counter

import pytest

import archon
from archon import Pipeline, UserError
from archon.evals.curve import write_curve_plot
from archon.evals.passk import default_node, pass_at_k
from backends.doubles import FunctionBackend
from tests.conftest import write

SAMPLES = 16
PS = (0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.9)  # per-sample probability of a right answer
PER_P = 20  # items per probability: 200 items


def _binomial_quantile(p: float, n: int, q: float) -> int:
    """The smallest c with P(Binomial(n, p) <= c) > q."""
    acc = 0.0
    for c in range(n + 1):
        acc += math.comb(n, c) * p**c * (1 - p) ** (n - c)
        if q < acc:
            return c
    return n


def _plan() -> list[tuple[float, set[int]]]:
    """Per item: its p, and which of its 16 samples are right.

    The number right, c, follows Binomial(16, p) over the items of each p, drawn at evenly spaced
    quantiles rather than at random: deterministic, and free of the sampling noise (about 0.017 on
    200 items) that would make a 0.01 tolerance a matter of the seed. Which samples are right is
    shuffled with a fixed seed (it matters to the pipeline's vote, not to pass@k)."""
    plan = []
    for p in PS:
        for m in range(PER_P):
            c = _binomial_quantile(p, SAMPLES, (m + 0.5) / PER_P)
            plan.append((p, set(random.Random(len(plan)).sample(range(SAMPLES), c))))
    return plan


PLAN = _plan()


def _items(tmp_path, which: range = range(len(PLAN))):
    return write(tmp_path, "items.jsonl", "".join(
        json.dumps({"id": f"q{i}", "question": f"Item {i}: what is the code?", "answer": str(100 + i)}) + "\n" for i in which))


def _answer(request, k: int) -> str:
    i = int(request.prompt_text().split("Item ", 1)[1].split(":", 1)[0])
    # Wrong answers differ from one another, so a vote can still find the right one among them.
    return f"The answer is {100 + i if k in PLAN[i][1] else 1000 + 10 * i + k % 5}."


def _pipeline(samples: int = SAMPLES) -> Pipeline:
    p = Pipeline("sample-vote")
    draft = p.add("draft", "generate", model="fake/m", samples=samples, temperature=0.8)
    p.add("answer", "vote", inputs=[draft])
    return p


def test_pass_at_k_estimator():
    assert pass_at_k(16, 0, 1) == 0.0 and pass_at_k(16, 16, 16) == 1.0 and pass_at_k(16, 4, 13) == 1.0
    assert pass_at_k(16, 4, 1) == pytest.approx(0.25)
    for n, c, k in ((16, 5, 3), (200, 7, 50), (10, 1, 10)):
        assert pass_at_k(n, c, k) == pytest.approx(1 - math.comb(n - c, k) / math.comb(n, k), abs=1e-12)
    assert pass_at_k(8, 3, 9) is None  # 8 samples say nothing of 9
    assert 0 < pass_at_k(1000, 3, 100) < 1  # the product form does not overflow where binomials would


def test_pass_at_k_matches_the_closed_form_over_200_items(tmp_path):
    fake = FunctionBackend(_answer)
    report = archon.evaluate(_pipeline(), str(_items(tmp_path)), backends={"fake": fake}, pass_at=list(range(1, 17)))
    assert report.ok and report.n == 200 and report.pass_at_node == "draft"
    cs = [len(right) for _, right in PLAN]
    worst_exact = worst_closed = 0.0
    for k in range(1, 17):
        # Given each item's c: the expectation over which k of its 16 samples are drawn (hypergeometric).
        exact = sum(1 - math.comb(SAMPLES - c, k) / math.comb(SAMPLES, k) for c in cs) / len(cs)
        # Given only each item's p: 1 - (1 - p)^k, the closed form the estimator is unbiased for.
        closed = sum(1 - (1 - p) ** k for p, _ in PLAN) / len(PLAN)
        worst_exact = max(worst_exact, abs(report.pass_at[k] - exact))
        worst_closed = max(worst_closed, abs(report.pass_at[k] - closed))
    print(f"max |pass@k - exact| = {worst_exact:.2e}, max |pass@k - (1-(1-p)^k)| = {worst_closed:.4f}")
    assert worst_exact < 1e-5  # rounding to 6 places only
    assert worst_closed < 0.01
    assert report.coverage == pytest.approx(sum(c > 0 for c in cs) / 200)
    assert report.selection_gap == pytest.approx(report.coverage - report.score, abs=1e-6)
    assert 0 < report.score < report.coverage  # the vote misses items where few samples are right


def test_the_samples_curve_issues_16_samples_per_item(tmp_path):
    fake = FunctionBackend(_answer)
    which = range(3, 200, 7)  # 29 items, every p
    items = _items(tmp_path, which)
    # The pipeline itself asks for 5: the curve's largest point asks for the 11 it lacks, and the
    # smaller points replay samples from the cache.
    report = archon.evaluate(_pipeline(samples=5), str(items), backends={"fake": fake}, samples_curve=[1, 2, 4, 8, 16])
    per_item = Counter()
    for request in fake.requests:
        per_item[request.prompt_text()] += len(request.samples)
    print(f"samples issued per item: {sorted(set(per_item.values()))} over {len(per_item)} items")
    assert len(per_item) == 29 and set(per_item.values()) == {SAMPLES}
    curve = report.samples_curve
    assert [p.samples for p in curve] == [1, 2, 4, 8, 16] and all(p.n == 29 and not p.failed for p in curve)
    coverage = [p.coverage for p in curve]
    assert coverage == sorted(coverage)  # more samples never cover fewer items
    for p in curve:  # each point's coverage: items with a right answer among their first s samples
        assert p.coverage == pytest.approx(sum(any(k < p.samples for k in right) for _, right in (PLAN[i] for i in which)) / 29, abs=1e-6)
    assert curve[0].calls == curve[0].cached_calls == 29  # the smallest point was all cache
    data = report.to_dict()
    assert [set(p) >= {"samples", "coverage", "score", "calls"} for p in data["samples_curve"]] == [True] * 5
    text = str(report)
    assert "samples curve of node 'draft':" in text and "16 samples: score" in text
    # the same command again resumes every point: no request, no rescoring
    before = len(fake.requests)
    again = archon.evaluate(_pipeline(samples=5), str(items), backends={"fake": fake}, samples_curve=[1, 2, 4, 8, 16])
    assert len(fake.requests) == before and again.ran == 0
    assert [p.to_dict() for p in again.samples_curve] == [p.to_dict() for p in curve]
    png = write_curve_plot(curve, tmp_path / "curve.png", title="test")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_counts_are_stored_and_an_earlier_eval_is_completed_from_the_cache(tmp_path):
    fake = FunctionBackend(_answer)
    items = _items(tmp_path, range(0, 200, 17))
    plain = archon.evaluate(_pipeline(), str(items), backends={"fake": fake})
    assert plain.pass_at is None and "pass_at" not in plain.to_dict()
    asked = len(fake.requests)
    first = archon.evaluate(_pipeline(), str(items), backends={"fake": fake}, pass_at=[1, 5, 10])
    assert len(fake.requests) == asked and first.ran == 12  # rerun for the candidates, all from the cache
    assert first.eval_id == plain.eval_id and first.score == plain.score
    again = archon.evaluate(_pipeline(), str(items), backends={"fake": fake}, pass_at=[1, 5, 10])
    assert again.ran == 0 and again.pass_at == first.pass_at and again.coverage == first.coverage


def test_report_keys_text_and_k_above_the_samples(tmp_path):
    report = archon.evaluate(_pipeline(samples=8), str(_items(tmp_path, range(0, 200, 20))), backends={"fake": FunctionBackend(_answer)},
                             pass_at=[1, 5, 10])
    data = report.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["pass_at_node"] == "draft" and set(data["pass_at"]) == {"1", "5", "10"} and data["pass_at"]["10"] is None
    assert {"coverage", "selection_gap"} <= set(data)
    text = str(report)
    assert "node 'draft' (8 candidates per item, 10 items): coverage" in text and "pass@10 n/a" in text
    assert "pass@10 n/a: 10 item(s) have fewer than 10 candidates (min 8)" in text


def test_coverage_alone_and_both_pipelines_of_a_comparison(tmp_path):
    items, fake = str(_items(tmp_path, range(0, 200, 25))), FunctionBackend(_answer)
    report = archon.evaluate(_pipeline(samples=4), items, backends={"fake": fake}, coverage=True)
    assert report.pass_at == {} and report.coverage is not None and "selection gap" in str(report)
    both = archon.compare(_pipeline(samples=2), _pipeline(samples=4), items, backends={"fake": fake}, pass_at=[2])
    assert both.b.coverage == report.coverage and both.a.pass_at[2] is not None
    assert both.a.coverage <= both.b.coverage and "pass_at" in both.to_dict()["a"]


def test_the_default_node_and_bad_options():
    p = _pipeline()
    assert default_node(p.build()) == "draft"
    with pytest.raises(UserError, match="no node 'nope'"):
        archon.evaluate(p, "starter", pass_at=[1], pass_at_node="nope", backends={"fake": FunctionBackend(_answer)})
    with pytest.raises(UserError, match="node 'answer' \\(vote\\) has no 'samples' setting"):
        archon.evaluate(p, "starter", samples_curve=[1, 2], pass_at_node="answer", backends={"fake": FunctionBackend(_answer)})
    with pytest.raises(UserError, match="at least 1"):
        archon.evaluate(p, "starter", pass_at=[0, 1])
    with pytest.raises(UserError, match="give one of them too"):
        archon.evaluate(p, "starter", pass_at_node="draft")


SEEN: list[tuple[str, str]] = []


def _picky(output: str, item, ctx) -> float:
    """Right when the output names the item's hidden secret; raises on a reply that says 'boom'."""
    SEEN.append((item.id, output))
    if "boom" in output:
        raise RuntimeError("the scorer met a boom")
    return float(item.data["secret"] in output)


def test_candidates_are_scored_once_each_by_the_scorer_with_the_hidden_fields(tmp_path):
    write(tmp_path, "s.jsonl", "".join(json.dumps({"id": f"s{i}", "question": f"Item {i}?", "answer": "-", "secret": f"k{i}"}) + "\n" for i in range(3)))
    bench = write(tmp_path, "s.yaml", "data: s.jsonl\nscorer: tests.evals.test_passk:_picky\n")

    def reply(request, k: int) -> str:
        i = request.prompt_text().split("Item ", 1)[1][0]
        assert "k" + i not in request.prompt_text()  # the secret is hidden from the pipeline
        return "boom" if i == "2" and k == 3 else f"guess k{i}" if k % 2 else "no idea"  # 3 distinct texts at most

    SEEN.clear()
    report = archon.evaluate(_pipeline(samples=4), str(bench), backends={"fake": FunctionBackend(reply)}, pass_at=[1, 4])
    assert report.n == 2 and report.failed == 1
    assert "scorer failed on a candidate of node 'draft': RuntimeError: the scorer met a boom" in report.failures[0]["error"]
    assert report.pass_at == {1: 0.5, 4: 1.0} and report.coverage == 1.0
    # each distinct text of an item once (the vote's answer, "no idea" here, is the output and scored first)
    assert sorted(SEEN) == sorted(set(SEEN)) and len(SEEN) == 7
