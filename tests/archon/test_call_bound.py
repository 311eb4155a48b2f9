"""calls_per_query: the static bound on model calls per query holds against real runs on the doubles,
and is exact where nothing can exit early."""

from __future__ import annotations

from pathlib import Path

import pytest

from archon import Pipeline, load_pipeline, run
from archon.bounds import calls_per_query
from archon.graph import parse_model_ref
from archon.registry import OPERATORS
from archon.spec import PipelineSpec, parse_pipeline
from backends.doubles import FunctionBackend
from tests.conftest import EXAMPLES

QUERY = "What is 2 + 2?"


def reply(req, k: int) -> str:
    """Replies that make every operator spend the most it can: no early exit, the hardest branch."""
    t = req.prompt_text()
    if "Ranking:" in t:
        return "[2] > [1]"
    if "Verdict" in t:  # verify checks every candidate; route's verifier signal reads 0; refine never stops early
        return "Verdict: incorrect"
    if "Rating: N" in t:  # refine's judge: below any threshold
        return "Rating: 1"
    if "Judgement:" in t:
        return "1: PASS"
    if "Requirements:" in t:
        return "1. Says 4"
    if "Assert statements:" in t:
        return "assert True"
    if "Reviews:" in t:
        return "[1]\nfine"
    if "Difficulty rating" in t:
        return "2"  # self_rating 0.2: the hardest branch
    return f"answer {k}"  # samples disagree: agreement is low, the hardest branch runs


def measure(spec: PipelineSpec, query: str = QUERY, fn=reply) -> int:
    """Backend requests of one run, every backend name served by one double."""
    be = FunctionBackend(fn)
    names = {parse_model_ref(ref)[0] for ref in spec.model_refs()}
    res = run(spec, query, backends={name: be for name in names}, db=False)
    assert res.calls == len(be.requests)  # what the recorder counted is what reached the backend
    return len(be.requests)


# -- the shipped examples -------------------------------------------------------------------------

# Loose by design: unit_test's fan_in counts write_tests' candidate as one more to judge; refine's
# doctest feedback finds no test in "What is 2 + 2?" and passes through (its bound: test_refine_on_code).
LOOSE_EXAMPLES = {"unit-tests.json", "refine.yaml"}
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml")) + sorted((EXAMPLES / "archon-format").glob("*.json"))


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_examples_stay_within_their_bound(path: Path):
    spec = load_pipeline(path)
    bound, actual = calls_per_query(spec), measure(spec)
    assert actual <= bound
    if path.name not in LOOSE_EXAMPLES:
        assert actual == bound, f"{path.name}: ran {actual} calls, bound {bound}"


# -- hand-written pipelines, every operator kind ----------------------------------------------------


def drafts(p: Pipeline, n: int = 3, **kw) -> str:
    return p.add("draft", "generate", model="fake/m", samples=n, **kw)


def critique_each() -> Pipeline:
    p = Pipeline("critique-each")
    c = p.add("crit", "critique", inputs=drafts(p), model="fake/critic")
    t = p.add("top", "rank", inputs=c, model="fake/ranker", top_k=2)
    p.add("answer", "fuse", inputs=t, model="fake/fuser")
    return p  # 1 + 3 + 1 + 1


def critique_all() -> Pipeline:
    p = Pipeline("critique-all")
    c = p.add("crit", "critique", inputs=drafts(p), model="fake/critic", per="all")
    p.add("answer", "fuse", inputs=c, model="fake/fuser")
    return p  # 1 + 1 + 1


def verify(**kw) -> Pipeline:
    p = Pipeline("verify")
    p.add("check", "verify", inputs=drafts(p, 4), model="fake/verifier", **kw)
    return p  # 1 + 4


def routed(signal: str, **kw) -> Pipeline:
    p = Pipeline(f"route-{signal}")
    p.add("gauge", "route", signal=signal, thresholds=[0.6], branches=["strong", "cheap"], **kw)
    p.add("strong", "generate", inputs="gauge", model="fake/strong", prompt="{query}")
    p.add("cheap", "vote", inputs="gauge")
    p.add("answer", "merge", inputs=["strong", "cheap"], top_k=1)
    return p  # the signal's calls + 1 for the strong branch


def unit_tests(style: str) -> Pipeline:
    p = Pipeline(f"unit-tests-{style}")
    tests = p.add("tests", "write_tests", model="fake/tester", style=style)
    d = drafts(p, 2)
    judge = {"model": "fake/judge", "style": "nl"} if style == "nl" else {}
    p.add("best", "unit_test", inputs=[d, tests], tests="inputs", top_k=1, **judge)
    return p  # code: 1 + 1 (the sandbox is free); nl: 1 + 1 + 2 judged, bounded by 1 + 1 + 3 (fan_in counts the tests)


def model_written_nl_tests() -> Pipeline:
    p = Pipeline("unit-test-model")
    p.add("best", "unit_test", inputs=drafts(p, 2), tests="model", style="nl", model="fake/judge")
    return p  # 1 + 1 written + 2 judged


def model_written_nl_tests_first_k() -> Pipeline:
    p = Pipeline("unit-test-first-k")
    p.add("best", "unit_test", inputs=drafts(p, 4), tests="model", style="nl", model="fake/judge", first_k=1, batch=1)
    return p  # 1 + 1 written + 4 judged at most; the first judged passes, so 3 are spent


def pairwise(tournament: str, both_orders: bool = False) -> Pipeline:
    p = Pipeline("pairwise")
    p.add("best", "rank", inputs=drafts(p, 5), model="fake/judge", method="pairwise", tournament=tournament,
          both_orders=both_orders)
    return p  # 1 + 4 knockout matches, or 10 round-robin ones (x2 both ways)


def voted() -> Pipeline:
    p = Pipeline("vote")
    p.add("vote", "vote", inputs=drafts(p, 5))
    return p  # 1


def scored(top_k: int | None = None, **kw) -> Pipeline:
    p = Pipeline("score")
    s = p.add("scored", "score", inputs=drafts(p, 4), model="fake/judge", top_k=top_k, **kw)
    p.add("answer", "rank", inputs=s, model="fake/ranker", top_k=1)
    return p  # 1 + 4 + (1 when at least two scored candidates are kept)


def scored_by_pipeline() -> Pipeline:
    p = Pipeline("score-pipeline")
    judge = Path(__file__).parent / "data" / "score-judge.yaml"  # generate (one call for 2 views) -> fuse
    s = p.add("scored", "score", inputs=drafts(p, 4), method="pipeline", judge=str(judge), top_k=2)
    p.add("answer", "rank", inputs=s, model="fake/ranker", top_k=1)
    return p  # 1 + 4 x 2 judge calls + 1


def weighted_vote() -> Pipeline:
    p = Pipeline("weighted-vote")
    d = drafts(p, 5, logprobs=True)
    s = p.add("scored", "score", inputs=d, model="fake/judge", method="yes_prob")
    p.add("vote", "vote", inputs=s, weight="score")
    return p  # 1 + 5


def ensemble_fuse_rank() -> Pipeline:
    p = Pipeline("ensemble")
    e = p.add("proposals", "ensemble", model=["fake/a", "fake/b"], samples=2)
    f = p.add("fused", "fuse", inputs=e, model=["fake/f1", "fake/f2"])
    p.add("answer", "rank", inputs=f, model="fake/ranker", top_k=1)
    return p  # 2 + 2 + 1 (two fused candidates to order)


def adaptive(**kw) -> Pipeline:
    p = Pipeline("sample-until")
    p.add("vote", "vote", inputs=p.add("draft", "sample_until", **{"model": "fake/m", **kw}))
    return p  # every wave: the samples never agree (and nothing verifies)


def beamed(**kw) -> Pipeline:
    p = Pipeline("beam")
    p.add("vote", "vote", inputs=p.add("solve", "beam", model="fake/m", scorer="fake/prm", **kw))
    return p  # no step says "The answer is": every step runs, each beam's steps distinct ("answer k")


def retrieved(corpus: Path) -> Pipeline:
    p = Pipeline("retrieve")
    r = p.add("passages", "retrieve", corpus=str(corpus), top_k=2)
    c = p.add("crit", "critique", inputs=r, model="fake/critic")
    p.add("answer", "fuse", inputs=c, model="fake/fuser")
    return p  # 0 + 2 (top_k passages) + 1


def refined(feedback: str, **kw) -> Pipeline:
    p = Pipeline(f"refine-{feedback}")
    p.add("fix", "refine", inputs=drafts(p, 2), model="fake/m", critic="fake/critic", feedback=feedback, **kw)
    return p  # 1 + 2 candidates x (rounds repairs + rounds checks, + 1 with keep best)


# (pipeline, bound, exact): exact unless the run can spend less than the bound.
CASES = {
    "critique-each": (critique_each, 6, True),
    "critique-all": (critique_all, 3, True),
    "verify": (lambda: verify(), 5, True),
    "verify-first-k": (lambda: verify(first_k=1, batch=2), 5, True),  # nothing verifies: both waves run
    "route-agreement": (lambda: routed("agreement", model="fake/cheap", samples=5), 2, True),
    "route-self-rating": (lambda: routed("self_rating", model="fake/cheap"), 2, True),
    "route-verifier": (lambda: routed("verifier", model="fake/cheap", samples=3), 5, True),
    # No store, so no history: the classifier falls back to the hardest branch without a call.
    "route-classifier": (lambda: routed("classifier", history="past"), 1, True),
    "write-tests-code": (lambda: unit_tests("code"), 2, True),
    "write-tests-nl": (lambda: unit_tests("nl"), 5, False),
    "unit-test-model-nl": (model_written_nl_tests, 4, True),
    "unit-test-first-k": (model_written_nl_tests_first_k, 6, False),
    "rank-pairwise-knockout": (lambda: pairwise("knockout"), 5, True),
    "rank-pairwise-round-robin": (lambda: pairwise("round_robin", both_orders=True), 21, True),
    "vote": (voted, 1, True),
    "score-judge": (lambda: scored(), 6, True),
    "score-process-top-1": (lambda: scored(top_k=1, method="process"), 5, True),  # one kept: nothing to rank
    "score-yes-prob-weighted-vote": (weighted_vote, 6, True),
    "score-pipeline": (scored_by_pipeline, 10, True),
    "ensemble-fuse-rank": (ensemble_fuse_rank, 5, True),
    "sample-until-agree": (lambda: adaptive(max_samples=7, wave=2), 4, True),  # waves of 2, 2, 2, 1
    "sample-until-ensemble": (lambda: adaptive(model=["fake/a", "fake/b"], max_samples=4, wave=3), 4, True),
    "sample-until-verify": (lambda: adaptive(until="verify", verifier="fake/judge", max_samples=4, wave=2), 2 + 4, True),
    # 1 request (width x expansions samples) + (max_steps - 1) x width requests + max_steps x width x expansions scores
    "beam": (lambda: beamed(width=2, expansions=3, max_steps=3), 1 + 2 * 2 + 3 * 6, True),
    "beam-greedy": (lambda: beamed(width=1, expansions=1, max_steps=4), 1 + 3 + 4, True),
    # Particles drawn twice share one request (for twice the samples): at most width requests a step.
    "beam-particle": (lambda: beamed(method="particle", width=3, expansions=2, max_steps=3), 1 + 2 * 3 + 3 * 6, False),
    # The verifier never says correct and the judge rates 1: every round runs.
    "refine-verifier": (lambda: refined("verifier", rounds=2), 11, True),
    "refine-judge-last": (lambda: refined("judge", rounds=3, keep="last"), 13, True),
}


@pytest.mark.parametrize("name", CASES)
def test_bound_holds_and_is_tight(name):
    make, expected, exact = CASES[name]
    spec = make().build()
    bound, actual = calls_per_query(spec), measure(spec)
    assert bound == expected
    assert actual <= bound
    if exact:
        assert actual == bound


def test_retrieve_outputs_top_k(tmp_path):
    corpus = tmp_path / "docs"
    corpus.mkdir()
    for i in range(3):
        (corpus / f"{i}.txt").write_text(f"Fact {i}: two plus two is four.")
    spec = retrieved(corpus).build()
    assert calls_per_query(spec) == measure(spec, "What is two plus two?") == 3


CODE_QUERY = 'def add(a, b):\n    """Add.\n    >>> add(2, 3)\n    5\n    """\n'


@pytest.mark.parametrize("rounds", [1, 3])
def test_refine_on_code(rounds):
    """Test feedback: replies that never make the code pass (they are not even Python) use every round."""
    p = Pipeline("refine-tests")
    p.add("fix", "refine", inputs=drafts(p, 2, mode="completion"), model="fake/m", mode="completion", rounds=rounds)
    spec = p.build()
    assert calls_per_query(spec) == measure(spec, CODE_QUERY) == 1 + 2 * rounds
    fixes = lambda r, k: "    return a + b\n"  # noqa: E731  -- right at once: no repair
    assert measure(spec, CODE_QUERY, fn=fixes) == 1


def test_early_exits_spend_less_than_the_bound():
    easy = lambda r, k: "42"  # noqa: E731  -- samples agree, the cheap branch runs
    spec = routed("agreement", model="fake/cheap", samples=5).build()
    assert measure(spec, fn=easy) == 1 < calls_per_query(spec)
    passes = lambda r, k: "Verdict: correct" if "Verdict" in r.prompt_text() else f"d{k}"  # noqa: E731
    spec = verify(first_k=1, batch=2).build()
    assert measure(spec, fn=passes) == 3 < calls_per_query(spec)  # the second wave never ran
    spec = adaptive(max_samples=16, wave=2).build()
    assert measure(spec, fn=easy) == 1 < calls_per_query(spec) == 8  # the first wave agreed
    spec = adaptive(until="verify", verifier="fake/judge", max_samples=16, wave=4).build()
    assert measure(spec, fn=passes) == 1 + 4 < calls_per_query(spec) == 4 + 16  # a sample of the first wave passed


def test_node_order_in_the_file_does_not_matter():
    data = critique_each().to_dict()
    data["nodes"] = list(reversed(data["nodes"]))
    data["output"] = "answer"
    spec = parse_pipeline(data, check_backends=False)
    assert calls_per_query(spec) == 6


def test_every_builtin_operator_kind_is_covered():
    kinds = {n.op for make, _, _ in CASES.values() for n in make().build().nodes} | {"retrieve"}
    assert kinds == set(OPERATORS.names(origin="archon-llm"))


def test_public_names():
    import archon.bounds

    assert archon.bounds.__all__ == ["calls_per_query", "candidates_per_node"]
