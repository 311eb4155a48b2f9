"""MixEval free-form, Hard free-form and Hard multiple-choice: MixEval's prompts, its model parser
(a judge pipeline on the doubles) and its rule-based fallback."""

from __future__ import annotations

import pytest

from archon import CompiledPipeline, Pipeline, Runtime, SpecError
from archon.evals import Item, ScoreContext, get_scorer, load_benchmark
from archon.evals import mixeval_prompts as MP
from archon.evals.mixeval import choice_from_judge, rule_choice, rule_freeform_correct, score_from_judge
from backends.doubles import FunctionBackend


def item_of(name: str, item_id: str) -> Item:
    return next(it for it in load_benchmark(name).items if it.id == item_id)


def judge(reply):
    """A judge pipeline on a double; ``seen`` collects the prompts it was given."""
    seen: list[str] = []

    def answer(req, k):
        seen.append(req.prompt_text())
        return reply

    p = Pipeline("judge")
    p.add("verdict", "generate", model="fake/judge", temperature=0.0, system=MP.FREEFORM_JUDGE_SYSTEM)
    runtime = Runtime(backends={"fake": FunctionBackend(answer)}, store=False)
    return ScoreContext(runtime=runtime, judge=CompiledPipeline(p.build())), seen


def test_questions_are_built_as_mixeval_builds_them():
    ff = {"prompt": "Who?", "context": None, "benchmark_name": "TriviaQA"}
    assert MP.freeform_question(ff) == "Question: Who?\nAnswer the question shortly."
    assert MP.freeform_question({**ff, "context": "Some text.", "benchmark_name": "GSM8k"}) == \
        "Question: Some text.\nWho?\nAnswer the question. \nLet's think step by step."
    mc = {"prompt": "Pick one", "options": ["x", "y"], "context": "rats"}
    assert MP.multichoice_question(mc) == "rats\nPick one\nA. x\nB. y\nAnswer with the option letter from the given choices directly."
    assert MP.multichoice_question({**mc, "context": " "}).startswith("Pick one\n")


def test_parsers_read_the_judges_reply_like_mixeval():
    assert score_from_judge("... The correctness score: [[0.7]].") == 0.7
    assert score_from_judge("score [1.0] then [[0.2]]") == 0.2          # the double brackets first
    assert score_from_judge("[[1.]]") == 1.0 and score_from_judge("[[7]]") is None and score_from_judge("none") is None
    assert choice_from_judge("The option chosen by the model: [[C]].", ["a", "b", "c"]) == "C"
    assert choice_from_judge("[B] maybe", ["a", "b"]) == "B" and choice_from_judge("[[E]]", ["a", "b"]) is None


def test_rule_parsers():
    opts = ["sewers", "laboratory", "basement", "clinic", "cellar"]
    assert rule_choice("E", opts) == "E" and rule_choice("(B)", opts) == "B" and rule_choice("**D. clinic**", opts) == "D"
    assert rule_choice("The answer is C. basement, not A.", opts) == "C"   # the earliest pattern wins
    assert rule_choice("I think they would be hiding in the cellar most likely", opts) == "E"  # option text, long reply
    assert rule_choice("cellar", opts) is None                             # short and no letter: MixEval draws at random
    gold = ["B 1", "B-1", "B1"]
    assert rule_freeform_correct("Beri-Beri is caused by a lack of vitamin B1.", gold)
    assert not rule_freeform_correct("Vitamin C.", gold)
    assert rule_freeform_correct("There were 1,261 boys, so the answer is 367.", ["367"])
    assert not rule_freeform_correct("The answer is 368.", ["367"])


def test_builtins_load_with_their_visible_fields(data_dir):
    ff, hard, mc = (load_benchmark(n) for n in ("mixeval", "mixeval-hard", "mixeval-hard-mc"))
    assert (len(ff.items), len(hard.items), len(mc.items)) == (200, 196, 140)
    assert ff.scorer == hard.scorer == "mixeval_freeform" and mc.scorer == "mixeval_choice"
    assert ff.visible == hard.visible == () and mc.visible == ("choices",)
    assert {"prompt", "benchmark_name"} <= set(ff.hidden) and ff.scoring_fields == () == mc.scoring_visible
    first = ff.query(ff.items[0])
    assert first.text == "Question: Deficiency in which vitamin causes Beri-Beri?\nAnswer the question shortly." and first.data == {}
    q = mc.query(item_of("mixeval-hard-mc", "mixeval-hard-mc-1"))
    assert q.text.startswith("rats\nThe rats were hiding") and q.data == {"choices": ["sewers", "laboratory", "basement", "clinic", "cellar"]}
    assert item_of("mixeval-hard-mc", "mixeval-hard-mc-1").reference == "E"


async def test_freeform_with_the_judge(data_dir):
    it = item_of("mixeval", "mixeval-ff-2")
    ctx, seen = judge("The model names vitamin B1, one of the golden answers. The correctness score: [[1.0]].")
    score = await get_scorer("mixeval_freeform")("Vitamin B1 (thiamine).", it, ctx)
    assert score.value == 1.0 and score.raw == {"parser": "model", "judge_score": 1.0, "benchmark": "TriviaQA"}
    prompt = seen[0]
    assert "Question: Deficiency in which vitamin causes Beri-Beri?\nGolden Answer(s): <answer 1> B 1; <answer 2> B-1;" in prompt
    assert prompt.endswith("Model's Answer: Vitamin B1 (thiamine).\nYour Judgment: \n")
    assert MP.FREEFORM_JUDGE_SYSTEM in prompt  # the judge node's system message, as MixEval sends it
    ctx, _ = judge("Partly right. [[0.4]]")
    assert (await get_scorer("mixeval_freeform")("B vitamins", it, ctx)).value == pytest.approx(0.4)
    ctx, _ = judge("I cannot decide.")
    bad = await get_scorer("mixeval_freeform")("B vitamins", it, ctx)
    assert bad.value == 0.0 and "no score" in bad.detail


async def test_context_is_left_out_of_the_judge_prompt(data_dir):
    it = item_of("mixeval-hard", "mixeval-hard-ff-0")
    ctx, seen = judge("[[0.0]]")
    await get_scorer("mixeval_freeform")("366", it, ctx)
    assert "Population of Bermuda" not in seen[0] and "Question: How many more white women" in seen[0]


async def test_freeform_rule_fallback_without_a_judge(data_dir):
    it = item_of("mixeval-hard", "mixeval-hard-ff-0")  # 367
    scorer = get_scorer("mixeval_freeform")
    assert not getattr(scorer, "needs_judge", False)
    assert (await scorer("So the answer is 367.", it, ScoreContext())).value == 1.0
    wrong = await scorer("So the answer is 366.", it, ScoreContext())
    assert wrong.value == 0.0 and wrong.raw == {"parser": "rule", "benchmark": "DROP"}


async def test_multiple_choice_rule_and_judge(data_dir):
    it = item_of("mixeval-hard-mc", "mixeval-hard-mc-0")  # B
    scorer = get_scorer("mixeval_choice")
    assert [(await scorer(o, it, ScoreContext())).value for o in ("B", "B.", "(B) contractionary", "A", "")] == [1, 1, 1, 0, 0]
    ctx, seen = judge("The model picks contractionary policy. The option chosen by the model: [[B]].")
    score = await scorer("Contractionary monetary policy raises rates.", it, ctx)
    assert score.value == 1.0 and score.raw == {"parser": "model", "choice": "B", "benchmark": "MMLU"}
    assert "Options: \nA. expansionary monetary policy.\nB. contractionary monetary policy." in seen[0]


def test_a_file_of_mixevals_shape_is_read_as_mixeval(tmp_path):
    import json

    ff = {"id": "q1", "problem_type": "free-form", "context": None, "prompt": "2+2?", "target": ["4"], "benchmark_name": "GSM8k"}
    mc = {"id": "q2", "problem_type": "multiple-choice", "context": None, "prompt": "2+2?", "options": ["3", "4"], "target": [1],
          "benchmark_name": "MMLU"}
    (tmp_path / "ff.jsonl").write_text(json.dumps(ff) + "\n")
    (tmp_path / "mc.jsonl").write_text(json.dumps(mc) + "\n")
    a, b = load_benchmark(str(tmp_path / "ff.jsonl")), load_benchmark(str(tmp_path / "mc.jsonl"))
    assert a.scorer == "mixeval_freeform" and a.items[0].reference == ["4"] and "Let's think step by step." in a.items[0].input
    assert b.scorer == "mixeval_choice" and b.items[0].reference == "B"
    (tmp_path / "bad.jsonl").write_text(json.dumps({**mc, "target": [5]}) + "\n")
    with pytest.raises(SpecError, match=r"bad\.jsonl:1: field 'target' must hold one 0-based option index"):
        load_benchmark(str(tmp_path / "bad.jsonl"))


def test_public_names():
    import archon.evals.mixeval as me

    for mod in (me, MP):
        assert all(getattr(mod, name) is not None for name in mod.__all__)


def test_eval_with_and_without_the_judge(data_dir, tmp_path):
    import archon

    def reply(req, k):
        return "The correctness score: [[0.5]]" if req.model == "judge" else "So the answer is 367."

    p = Pipeline("answer")
    p.add("a", "generate", model="fake/m")
    j = Pipeline("mixeval-judge")
    j.add("verdict", "generate", model="fake/judge", system=MP.FREEFORM_JUDGE_SYSTEM)
    kw = {"limit": 3, "backends": {"fake": FunctionBackend(reply)}, "db": f"sqlite:///{tmp_path / 'e.db'}"}
    assert archon.evaluate(p, "mixeval-hard", judge=j, **kw).score == pytest.approx(0.5)
    # Another store: results are resumed by pipeline and benchmark, and the judge is not part of that key.
    kw["db"] = f"sqlite:///{tmp_path / 'rule.db'}"
    rule = archon.evaluate(p, "mixeval-hard", **kw)  # items 0-2: only the first one's answer is 367
    assert rule.score == pytest.approx(1 / 3) and rule.n == 3
