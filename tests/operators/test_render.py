"""Templates never rewrite user or model text: ``render`` is one pass, and every operator that builds a
prompt sends the query, the candidates and their critiques to the model byte for byte."""

from __future__ import annotations

import pytest

from archon import Pipeline, Query, run
from backends.doubles import FunctionBackend
from operators import retrieve as retrieve_mod
from operators.base import render

# Every placeholder name an operator template uses, plus re.sub escapes, in the query and in every reply.
NAMES = "{n} {query} {candidates} {candidate} {context} {tests} {critique} {input} {choices} \\1 \\g<0>"
QUERY = f'def f(n):\n    return f"{{n}} items"  # {NAMES}'


# -- render ---------------------------------------------------------------------------------------


def test_render_keeps_the_issue_example_byte_for_byte():
    query = 'def f(n):\n    return f"{n} items"'
    assert render("Q: {query}\nN={n}", query=query, n=5) == f"Q: {query}\nN=5"


def test_render_leaves_unknown_names_and_other_braces_alone():
    template = "{query} {unknown} {} {{query}} {0} { query } \\boxed{x} {'a': 1}"
    assert render(template, query="Q") == "Q {unknown} {} {Q} {0} { query } \\boxed{x} {'a': 1}"


def test_render_never_rescans_an_inserted_value():
    assert render("{a}|{b}", a="{b}", b="{a}") == "{b}|{a}"
    assert render("{query}", query="\\1 \\g<0> {query}") == "\\1 \\g<0> {query}"
    assert render("{x}", x=3) == "3"


def test_render_takes_a_value_named_template():
    assert render("{template}", template="t") == "t"


# -- every operator's prompt ------------------------------------------------------------------------


# (text in the prompt, reply), first match wins: each operator's parseable shape, full of placeholder names.
REPLIES = [
    ("Judgement:", f"1: PASS\n2: PASS {NAMES}"),  # unit_test's nl judge (its prompt also lists "Requirements:")
    ("Requirements:", f"1. keeps {NAMES}\n2. says {{candidate}} {{tests}}"),  # write_tests, style nl
    ("Assert statements:", f"assert f(1) == '{{n}} items'  # {NAMES}"),
    ("Ranking:", f"[2] > [1] {NAMES}"),
    ("Reviews:", f"[1]\nall-critique one {NAMES}\n[2]\nall-critique two {NAMES}\n[3]\nall-critique three {NAMES}"),
    ("Strengths and weaknesses:", f"each-critique {NAMES}"),
    ("Verdict", f"{NAMES}\nVerdict: correct"),
    ("Difficulty rating", f"3 {NAMES}"),
]


def hostile_backend() -> FunctionBackend:
    def fn(req, k):
        t = req.prompt_text()
        return next((reply for marker, reply in REPLIES if marker in t), f"{req.model} draft {k}: {NAMES}")

    return FunctionBackend(fn)


def prompts(be: FunctionBackend, model: str) -> list[str]:
    found = [r.prompt_text() for r in be.requests if r.model == model]
    assert found, f"no request to model '{model}'"
    return found


def in_every(be: FunctionBackend, model: str, texts: list[str]) -> None:
    """Each text reaches every prompt sent to ``model`` verbatim."""
    assert texts
    for p in prompts(be, model):
        for t in texts:
            assert t in p, f"{model}: {t!r} altered in the prompt:\n{p}"


def in_some(be: FunctionBackend, model: str, texts: list[str]) -> None:
    """Each text reaches one of the prompts sent to ``model`` verbatim (one call per candidate)."""
    assert texts
    sent = prompts(be, model)
    for t in texts:
        assert any(t in p for p in sent), f"{model}: {t!r} altered in every prompt"


def texts(res, node: str) -> list[str]:
    return [c.text for c in res.candidates[node]]


def critiques(res, node: str) -> list[str]:
    return [c.critique for c in res.candidates[node] if c.critique]


def check_query_everywhere(be: FunctionBackend) -> None:
    assert be.requests
    for r in be.requests:
        assert QUERY in r.prompt_text(), f"{r.model}: the query was altered:\n{r.prompt_text()}"


PASSAGES = [f"Passage one about items and f {NAMES}", f"Passage two: return items {NAMES}"]


def test_query_candidates_and_critiques_reach_every_prompt_byte_for_byte(monkeypatch):
    searched: list[str] = []
    search = retrieve_mod._BM25Index.search
    monkeypatch.setattr(retrieve_mod._BM25Index, "search", lambda self, text, k: searched.append(text) or search(self, text, k))
    p = Pipeline("hostile")
    p.add("docs", "retrieve", corpus="item", top_k=2)
    p.add("draft", "ensemble", inputs="docs", model=["fake/gen", "fake/gen2"], samples=2)
    p.add("more", "retrieve", inputs="draft", corpus="item", query_template="{query}\n{context}")
    p.add("each", "critique", inputs="draft", model="fake/crit_each")
    p.add("all", "critique", inputs="each", model="fake/crit_all", per="all")
    p.add("top", "rank", inputs="all", model="fake/rank", top_k=3)
    p.add("check", "verify", inputs="top", model="fake/verify")
    p.add("answer", "fuse", inputs=["check", "more"], model="fake/fuse")
    be = hostile_backend()
    res = run(p, Query(QUERY, data={"passages": PASSAGES}), backends={"fake": be}, db=False)

    check_query_everywhere(be)
    assert texts(res, "docs") and all(NAMES in t for t in texts(res, "docs"))
    assert searched == [QUERY, QUERY + "\n" + "\n\n".join(texts(res, "draft"))]
    in_every(be, "gen", texts(res, "docs"))
    in_every(be, "gen2", texts(res, "docs"))
    assert len(texts(res, "draft")) == 4 and all(NAMES in t for t in texts(res, "draft"))
    in_some(be, "crit_each", texts(res, "draft"))
    in_every(be, "crit_all", texts(res, "each") + critiques(res, "each"))
    in_every(be, "rank", texts(res, "all") + critiques(res, "all"))
    in_some(be, "verify", texts(res, "top"))
    in_every(be, "fuse", texts(res, "check") + critiques(res, "check") + texts(res, "more"))


def test_tests_written_and_judged_keep_every_text(tmp_path):
    p = Pipeline("hostile-tests")
    p.add("draft", "generate", model="fake/gen", samples=2, prompt="Task: {query}\n{context}")
    p.add("nl", "write_tests", model="fake/write_nl", style="nl")
    p.add("code", "write_tests", model="fake/write_code", style="code")
    p.add("judged", "unit_test", inputs=["draft", "nl"], model="fake/judge", style="nl", tests="inputs")
    p.add("rejudged", "unit_test", inputs=["judged"], model="fake/judge2", style="nl", tests="model")
    p.add("answer", "merge", inputs=["rejudged", "code"])
    be = hostile_backend()
    res = run(p, QUERY, backends={"fake": be}, db=False)

    check_query_everywhere(be)
    written = [t["text"] for t in res.candidates["nl"][0].meta["tests"]]
    assert written and all("{candidate}" in t for t in written)
    assert res.candidates["code"][0].meta["tests"] and NAMES in res.candidates["code"][0].text
    in_some(be, "judge", texts(res, "draft"))
    in_every(be, "judge", written)
    in_some(be, "judge2", texts(res, "judged"))  # its own tests are written by judge2 first
    assert [c.score for c in res.candidates["judged"]] == [1.0, 1.0]


@pytest.mark.parametrize("signal", ["agreement", "self_rating", "verifier"])
def test_route_prompts_keep_the_query_and_samples(signal):
    p = Pipeline("hostile-route")
    # One threshold at 0 sends every confidence to the second band: the strong branch always runs.
    p.add("gauge", "route", model="fake/cheap", signal=signal, samples=2, thresholds=[0.0], branches=["cheap", "strong"],
          prompt="Answer: {query}")
    p.add("cheap", "vote", inputs="gauge")
    p.add("strong", "generate", inputs="gauge", model="fake/strong")
    p.add("answer", "merge", inputs=["cheap", "strong"])
    be = hostile_backend()
    res = run(p, QUERY, backends={"fake": be}, db=False)

    check_query_everywhere(be)
    assert res.candidates["cheap"] == [] and res.candidates["strong"]
    if signal == "self_rating":
        assert res.candidates["gauge"] == [] and any("Difficulty rating" in p for p in prompts(be, "cheap"))
        return
    samples = texts(res, "gauge")
    assert len(samples) == 2 and all(NAMES in t for t in samples)
    in_every(be, "strong", samples)
    if signal == "verifier":
        verified = [p for p in prompts(be, "cheap") if "Verdict" in p]
        assert len(verified) == 2 and all(any(t in v for v in verified) for t in samples)
