"""score with ``method: pipeline``: a judge that is a pipeline file of its own (here generate -> fuse),
run inside the parent's run; its calls are the parent's, its bound is in the parent's, and a bad,
missing or recursive judge file fails validation naming the node and the file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from archon import Pipeline, SpecError, load_pipeline, run
from archon.bounds import calls_per_query
from backends.doubles import FunctionBackend
from tests.archon.fuzz_corpus import cli
from tests.conftest import write

# Two judges' views of the response, fused into one verdict that ends with the rating.
JUDGE = """
name: fused-judge
nodes:
  - {id: views, op: generate, model: fake/judge, samples: 2, prompt: "{query}"}
  - {id: verdict, op: fuse, inputs: [views], model: fake/fuser}
"""


def reply(req, k: int) -> str:
    """Drafts answer d{k}; a judge's view and the fused verdict rate d1 8 and the others 3."""
    text = req.prompt_text()
    if "Evaluation:" not in text:
        return f"d{k}"
    rating = 8 if "\nd1\n" in text else 3
    return f"Fused verdict. Rating: [[{rating}]]" if req.model == "fuser" else f"View {k}: this deserves a {rating}."


def scored(judge: Path, n: int = 3, **kw) -> Pipeline:
    p = Pipeline("scored")
    p.add("best", "score", inputs=p.add("draft", "generate", model="fake/m", samples=n), method="pipeline", judge=str(judge), **kw)
    return p


def test_a_two_node_judge_pipeline_scores_every_candidate(tmp_path):
    judge = write(tmp_path, "judge.yaml", JUDGE)
    be = FunctionBackend(reply)
    res = run(scored(judge, top_k=2), "What is 2 + 2?", backends={"fake": be}, db=False)
    best = res.candidates["best"]
    assert [c.text for c in best] == ["d1", "d0"] and [c.score for c in best] == [0.8, 0.3]
    assert best[0].meta["score_method"] == "pipeline" and best[0].meta["rating"] == 8.0
    assert best[0].meta["judge_calls"] == 2  # the judge's own generate and fuse
    # The judge saw the judge prompt, the query and the candidate in it, as its own query.
    judged = [r.prompt_text() for r in be.requests if r.model == "judge"]
    assert len(judged) == 3 and all("What is 2 + 2?" in t and "Evaluation:" in t for t in judged)
    # 1 draft call + 3 candidates x (generate + fuse): every one in the parent's totals.
    assert res.calls == len(be.requests) == 1 + 3 * 2 == calls_per_query(scored(judge, top_k=2).build())


def test_the_judges_calls_are_recorded_in_the_parent_run_under_its_node(tmp_path):
    from stores.store import get_store

    judge = write(tmp_path, "judge.yaml", JUDGE)
    db = f"sqlite:///{tmp_path / 'calls.db'}"
    be = FunctionBackend(reply)
    first = run(scored(judge, n=2), "q", backends={"fake": be}, db=db)
    rows = get_store(db).calls(run_id=first.run_id)
    assert sorted({r["node_id"] for r in rows}) == ["best/verdict", "best/views", "draft"]
    assert len(rows) == first.calls == 1 + 2 * 2 and {r["run_id"] for r in rows} == {first.run_id}
    assert [r["id"] for r in get_store(db).runs()] == [first.run_id]  # the judge runs are not runs of their own
    again = run(scored(judge, n=2), "q", backends={"fake": be}, db=db)
    assert again.cached_calls == again.calls == first.calls and len(be.requests) == first.calls
    assert [c.score for c in again.candidates["best"]] == [c.score for c in first.candidates["best"]]


def test_a_judge_answer_without_a_rating_leaves_the_candidate_unscored(tmp_path):
    judge = write(tmp_path, "judge.yaml", "nodes: [{id: j, op: generate, model: fake/judge, prompt: '{query}'}]\n")
    be = FunctionBackend(lambda req, k: "no idea" if "Evaluation:" in req.prompt_text() else f"d{k}")
    (c,) = run(scored(judge, n=1), "q", backends={"fake": be}, db=False).candidates["best"]
    assert c.score is None and c.meta["judgement"] == "no idea"
    assert any("no 'Rating: [[0-10]]'" in n for n in c.notes)


def test_a_judge_pipeline_may_score_with_a_judge_pipeline_of_its_own(tmp_path):
    write(tmp_path, "inner.yaml", "nodes: [{id: j, op: generate, model: fake/judge, prompt: '{query}'}]\n")
    outer = write(tmp_path, "outer.yaml", f"""
nodes:
  - {{id: views, op: generate, model: fake/judge, samples: 2, prompt: "{{query}}"}}
  - {{id: pick, op: score, inputs: [views], method: pipeline, judge: {tmp_path / 'inner.yaml'}, top_k: 1}}
""")
    spec = scored(outer, n=2).build()
    be = FunctionBackend(lambda req, k: "Rating: [[6]]" if "Evaluation:" in req.prompt_text() else f"d{k}")
    res = run(spec, "q", backends={"fake": be}, db=False)
    # 1 draft call + 2 candidates x (1 call for both views + 2 views x 1 inner judge call)
    assert res.calls == len(be.requests) == calls_per_query(spec) == 1 + 2 * (1 + 2)
    assert [c.score for c in res.candidates["best"]] == [0.6, 0.6]


def test_an_edited_judge_file_makes_another_eval_key(tmp_path):
    from archon.evals.datasets import load_benchmark
    from archon.evals.runner import eval_key

    judge = write(tmp_path, "judge.yaml", JUDGE)
    bench = load_benchmark(str(write(tmp_path, "items.jsonl", '{"id": "q0", "question": "1?", "answer": "1"}\n')))
    before = eval_key(scored(judge).build(), bench, "chat")
    assert eval_key(scored(judge).build(), bench, "chat") == before
    judge.write_text(JUDGE.replace("samples: 2", "samples: 3"))
    assert eval_key(scored(judge).build(), bench, "chat") != before  # results of the old judge are not reused


# -- validation: the judge file is checked with the pipeline ----------------------------------------


FAKE = 'backends: {fake: {base_url: "http://127.0.0.1:9/v1"}}\n'  # a judge file names its backends itself


def parent(tmp_path: Path, judge: str, name: str = "parent.yaml") -> Path:
    return write(tmp_path, name, f"""
nodes:
  - {{id: draft, op: generate, model: fake/m, samples: 2}}
  - {{id: best, op: score, inputs: [draft], method: pipeline, judge: "{judge}"}}
backends:
  fake: {{base_url: "http://127.0.0.1:9/v1"}}
""")


@pytest.mark.parametrize("judge_text, expected", [
    (None, "no such file"),
    ("nodes: [{id: j, op: genernate, model: fake/j}]\n" + FAKE, "unknown op 'genernate'"),
    ("nodes: [{id: j, op: generate, model: fake/j}]\n", "unknown backend 'fake'"),
    ("nodes: [{id: j, op: generate, model: fake/j}]\nbackends: {fake: {base_url: 'http://127.0.0.1:10/v1'}}\n",
     "backend 'fake' differs"),
])
def test_a_bad_judge_file_fails_validation_naming_node_and_file(tmp_path, judge_text, expected):
    if judge_text is not None:
        write(tmp_path, "judge.yaml", judge_text)
    path = parent(tmp_path, str(tmp_path / "judge.yaml"))
    out = cli("validate", str(path))
    assert out.code == 2, out
    assert f"{path}: node 'best': pipeline file '{tmp_path / 'judge.yaml'}'" in out.err and expected in out.err


def test_a_relative_judge_path_resolves_against_the_working_directory(tmp_path, monkeypatch):
    write(tmp_path, "judge.yaml", "nodes: [{id: j, op: generate, model: fake/j, prompt: '{query}'}]\n" + FAKE)
    path = parent(tmp_path, "judge.yaml")
    monkeypatch.chdir(tmp_path)
    assert cli("validate", str(path)).code == 0
    monkeypatch.chdir(tmp_path.parent)
    out = cli("validate", str(path))
    assert out.code == 2 and "resolved against the working directory" in out.err


def test_a_judge_that_runs_itself_is_refused(tmp_path):
    itself = parent(tmp_path, str(tmp_path / "parent.yaml"))
    out = cli("validate", str(itself))
    assert out.code == 2 and "it is this pipeline; a pipeline cannot run itself" in out.err
    # Through another file: a -> b -> a.
    a = parent(tmp_path, str(tmp_path / "b.yaml"), name="a.yaml")
    parent(tmp_path, str(a), name="b.yaml")
    out = cli("validate", str(a))
    assert out.code == 2 and "a pipeline that runs this one" in out.err and "b.yaml" in out.err
    with pytest.raises(SpecError, match="cannot run itself"):
        load_pipeline(a)


def test_method_pipeline_needs_judge_and_the_others_need_model():
    p = Pipeline("s")
    p.add("best", "score", inputs=p.add("draft", "generate", model="fake/m"), method="pipeline")
    with pytest.raises(SpecError, match="method 'pipeline' needs 'judge'"):
        p.build()
    p = Pipeline("s")
    p.add("best", "score", inputs=p.add("draft", "generate", model="fake/m"))
    with pytest.raises(SpecError, match="method 'judge' needs 'model'"):
        p.build()


# -- search: a space that switches between a model judge and a judge pipeline -----------------------

SPACE = """
name: score-space
backends:
  srv: {base_url: "${ARCHON_BASE_URL}"}
nodes:
  - {id: draft, op: generate, model: srv/m, samples: 2, temperature: 0.8}
  - id: best
    op: score
    inputs: [draft]
    model: srv/judge
    judge: judge.yaml
    method: {choices: [judge, pipeline]}
    top_k: 1
"""

SEARCH_JUDGE = """
backends:
  srv: {base_url: "${ARCHON_BASE_URL}"}
nodes:
  - {id: views, op: generate, model: srv/judge, samples: 2, prompt: "{query}"}
  - {id: verdict, op: fuse, inputs: [views], model: srv/judge}
"""


def test_archon_search_over_the_score_method(tmp_path):
    from archon.testing.fake_server import FakeOpenAIServer

    def answer(prompt: str, k: int) -> str:
        if "Evaluation:" in prompt:
            return "Rating: [[9]]" if "is 1." in prompt.split("Response:")[-1] else "Rating: [[2]]"
        return "The answer is 1." if k % 2 == 0 else "The answer is 2."

    data = write(tmp_path, "items.jsonl", "".join(json.dumps({"id": f"q{i}", "question": f"What is {i} times zero plus one?",
                                                              "answer": "1"}) + "\n" for i in range(3)))
    space = write(tmp_path, "space.yaml", SPACE)
    write(tmp_path, "judge.yaml", SEARCH_JUDGE)
    with FakeOpenAIServer(reply=answer) as srv:
        env = {**os.environ, "ARCHON_BASE_URL": srv.base_url, "ARCHON_DB_URL": f"sqlite:///{tmp_path / 's.db'}"}
        out = subprocess.run([sys.executable, "-m", "archon", "search", str(space), "--benchmark", str(data), "--trials", "4",
                              "--sampler", "random", "--seed", "1", "--out", str(tmp_path / "best.yaml"), "--json"],
                             capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        res = json.loads(out.stdout)
        board = res["leaderboard"]
        assert len(board) == 2 and all(row["score"] == 1.0 for row in board)  # a repeated pipeline is listed once
        assert res["calls_issued"] == srv.requests
        # judge: 1 + 2 calls per item; pipeline: 1 + 2 x (generate + fuse) per item, 3 items each.
        assert {row["calls"] for row in board} == {3 * 3, 3 * 5}
        check = subprocess.run([sys.executable, "-m", "archon", "validate", str(tmp_path / "best.yaml")],
                               capture_output=True, text=True, env=env, cwd=tmp_path)
        assert check.returncode == 0, check.stderr
