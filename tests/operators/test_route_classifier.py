"""route's classifier signal: fitted on past eval results in the store, it sends queries the cheap
pipeline used to get right to the cheap branch, and the others to the strong one."""

from __future__ import annotations

import random

import pytest

from archon import Pipeline, SpecError, run
from backends.doubles import FunctionBackend
from stores.evals import EvalResult
from stores.store import Store

pytest.importorskip("sklearn", reason="needs the 'classifier' extra: pip install 'archon-llm[classifier]'")


def easy(i: int) -> str:
    return f"What is {i} plus {i + 1}?"


def hard(i: int) -> str:
    words = random.Random(i).sample(["prove", "lemma", "integral", "manifold", "topology", "eigenvalue", "theorem", "derive"], 4)
    return f"Prove that the {words[0]} of the {words[1]} implies the {words[2]} {words[3]} bound for case {i}."


def seed_history(db: str, n: int = 30) -> None:
    """Past eval results of pipeline 'cheap': right on arithmetic, wrong on proofs."""
    store = Store(db)
    starts, finishes, results = [], [], []
    for i in range(n):
        for kind, text, score in (("e", easy(i), 1.0), ("h", hard(i), 0.0)):
            rid = f"{kind}{i:04d}".ljust(32, "0")
            starts.append((rid, "cheap", text, None))
            finishes.append((rid, "ok", "x", None))
            results.append(EvalResult(eval_id="past", item_id=f"{kind}{i}", status="ok", score=score, run_id=rid))
    store.write(starts=starts, finishes=finishes, eval_results=results)
    store.close()


def routed(min_history: int = 20) -> Pipeline:
    p = Pipeline("routed")
    p.add("gauge", "route", signal="classifier", history="cheap", min_history=min_history, thresholds=[0.5], branches=["strong", "cheap"])
    p.add("strong", "generate", inputs="gauge", model="fake/strong", prompt="{query}")
    p.add("cheap", "generate", inputs="gauge", model="fake/cheap", prompt="{query}")
    p.add("answer", "merge", inputs=["strong", "cheap"])
    return p


def test_classifier_routes_by_past_results(tmp_path):
    db = str(tmp_path / "h.db")
    seed_history(db)
    be = FunctionBackend(lambda r, k: r.model)
    outs = [run(routed(), q, backends={"fake": be}, db=db).output for q in (easy(500), easy(777), hard(500), hard(901))]
    assert outs == ["cheap", "cheap", "strong", "strong"]


def test_too_little_history_takes_the_hardest_branch_with_a_note(tmp_path):
    db = str(tmp_path / "h.db")
    seed_history(db, n=3)
    res = run(routed(min_history=20), easy(1), backends={"fake": FunctionBackend(lambda r, k: r.model)}, db=db)
    assert res.output == "strong" and any("fewer than min_history=20" in n for n in res.notes)


def test_classifier_needs_history_setting():
    p = routed()
    del p.nodes[0]["history"]
    with pytest.raises(SpecError, match="needs 'history'"):
        p.build()
