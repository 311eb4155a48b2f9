"""MT-Bench as FastChat runs it: its judge prompts byte for byte, its parser on 162 real GPT-4
judgments, the judge prompt rebuilt exactly as recorded, both turns through the eval runner, and
FastChat's per-turn and overall scores."""

from __future__ import annotations

import json

import pytest

import archon
from archon import Pipeline
from archon.evals import load_benchmark
from archon.evals.judge_prompts import MT_BENCH_PROMPTS
from archon.evals.mtbench import aggregate, followup, judge_prompt, parse_rating
from backends.doubles import FunctionBackend
from tests.conftest import write

JUDGMENTS = "mt_bench_judgments_gpt4_single_archon_162.jsonl"


def _rows(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_the_prompts_are_fastchats_byte_for_byte(data_dir):
    rows = _rows(data_dir / "mt_bench_judge_prompts_8.jsonl")
    assert len(rows) == len(MT_BENCH_PROMPTS) == 8
    for r in rows:
        p = MT_BENCH_PROMPTS[r["name"]]
        assert (p.type, p.system_prompt, p.prompt_template, p.category, p.output_format) == \
            (r["type"], r["system_prompt"], r["prompt_template"], r["category"], r["output_format"])


def test_the_parser_reproduces_all_162_gpt4_scores(data_dir):
    rows = _rows(data_dir / JUDGMENTS)
    assert len(rows) == 162
    assert [parse_rating(r["judgment"]) for r in rows] == [float(r["score"]) for r in rows]


def _between(text: str, start: str, end: str) -> str:
    return text.split(start, 1)[1].split(end, 1)[0]


def test_the_judge_prompt_equals_the_recorded_user_prompt(data_dir):
    """The judged answers are not shipped, so each is cut out of the recorded prompt; everything else
    (template, question turns, GPT-4 reference, which prompt) comes from our side."""
    items = {it.id: it for it in load_benchmark("mt-bench").items}
    rows = _rows(data_dir / JUDGMENTS)
    for r in rows:
        recorded = r["user_prompt"]
        if r["turn"] == 1:
            answers = [_between(recorded, "[The Start of Assistant's Answer]\n", "\n[The End of Assistant's Answer]")]
        else:
            talk = _between(recorded, "<|The Start of Assistant A's Conversation with User|>",
                            "<|The End of Assistant A's Conversation with User|>")
            answers = [_between(talk, "### Assistant A:\n", "\n\n### User:"), talk.rsplit("### Assistant A:\n", 1)[1][:-2]]
        prompt, user = judge_prompt(items[f"mt-bench/{r['question_id']}"], answers, r["turn"])
        assert (prompt.name, user) == (r["judge"][1], recorded), (r["question_id"], r["turn"])
    assert {r["judge"][1] for r in rows} == {"single-v1", "single-v1-multi-turn", "single-math-v1", "single-math-v1-multi-turn"}


@pytest.mark.parametrize("judgment, rating", [
    ("Good.\n\nRating: [[8]]", 8.0),
    ("Rating: [[8.5]]", 8.5),
    ("[[3]] at first, then [[9]]", 3.0),  # FastChat takes the first match, not the last
    ("Rating: [7]", 7.0),                 # the backup pattern
    ("I would give it a 7/10.", -1.0),    # no rating: a failed judgment
    ("Rating: [[seven]]", -1.0),
])
def test_fastchat_parser(judgment, rating):
    assert parse_rating(judgment) == rating


def _mt_files(tmp_path):
    qs = [{"question_id": 1, "category": "writing", "turns": ["Write a haiku.", "Now make it rhyme."]},
          {"question_id": 2, "category": "math", "turns": ["What is 2+2?", "And 3+3?"]}]
    write(tmp_path, "mt_bench_reference_answers_gpt4.jsonl",
          json.dumps({"question_id": 2, "choices": [{"index": 0, "turns": ["REF-4", "REF-6"]}]}) + "\n")
    return write(tmp_path, "mt_bench_questions_80.jsonl", "".join(json.dumps(q) + "\n" for q in qs))


def test_the_second_turn_is_the_conversation_so_far(tmp_path):
    bench = load_benchmark(str(_mt_files(tmp_path)))
    item = bench.items[0]
    assert bench.scorer == "mt-bench" and bench.query(item).text == "Write a haiku."
    second = followup(item, ["Leaves fall {slowly}"], "chat")
    assert second is not None and second.messages == (
        {"role": "user", "content": "Write a haiku."}, {"role": "assistant", "content": "Leaves fall {slowly}"},
        {"role": "user", "content": "Now make it rhyme."})
    assert second.text == "User: Write a haiku.\n\nAssistant: Leaves fall {slowly}\n\nUser: Now make it rhyme."
    assert second.id == item.id and second.data == {}  # nothing of the item beyond the questions asked so far
    base = followup(item, ["Leaves fall"], "completion")
    assert base is not None and base.text.endswith("Question: Now make it rhyme.\n\nAnswer:")
    assert followup(item, ["a", "b"], "chat") is None


def test_both_turns_are_run_judged_and_reported_as_fastchat_does(tmp_path):
    def answer(req, k):
        last = req.messages[-1]["content"]
        return f"answer to <{last}> after {len(req.messages)} messages"

    def judge(req, k):
        system, user = req.messages[0]["content"], req.messages[1]["content"]
        if "math" in user or "Reference" in user:  # the reference-guided prompts carry GPT-4's answers
            assert "REF-4" in user
        return "Rating: [[6]]" if "second" in system else "Explanation. Rating: [[9]]"

    model, judge_backend = FunctionBackend(answer), FunctionBackend(judge, name="judge")
    p = Pipeline("one")
    p.add("answer", "generate", model="fake/m")
    j = Pipeline("judge")
    j.add("verdict", "generate", model="judge/j", temperature=0.0, system="ignored: the prompt brings its own")
    report = archon.evaluate(p, str(_mt_files(tmp_path)), judge=j, backends={"fake": model, "judge": judge_backend})
    assert report.ok and report.n == 2
    turn2 = [r for r in model.requests if len(r.messages) == 3]
    assert len(model.requests) == 4 and len(turn2) == 2
    assert turn2[0].messages[1]["content"].startswith("answer to <")  # the pipeline's own first answer
    systems = {r.messages[0]["content"] for r in judge_backend.requests}
    assert systems == {MT_BENCH_PROMPTS[n].system_prompt for n in ("single-v1", "single-v1-multi-turn", "single-math-v1-multi-turn")}
    assert all(len(r.messages) == 2 for r in judge_backend.requests)
    assert report.official == {"name": "MT-Bench (FastChat show_result, 1-10)", "turn_1": 9.0, "turn_2": 6.0, "overall": 7.5,
                               "judgments": 4, "failed_judgments": 0}
    assert report.score == pytest.approx((7.5 - 1) / 9)
    assert json.loads(report.results[0]["output"])[0].startswith("answer to <Write a haiku.>")
    assert "turn_1 9.0" in str(report)


def test_failed_judgments_are_left_out_of_the_means():
    results = [{"status": "ok", "raw": {"ratings": [8.0, -1.0]}}, {"status": "ok", "raw": {"ratings": [6.0, 4.0]}},
               {"status": "failed", "raw": None}]
    assert aggregate(results) == {"name": "MT-Bench (FastChat show_result, 1-10)", "turn_1": 7.0, "turn_2": 4.0,
                                  "overall": 6.0, "judgments": 3, "failed_judgments": 1}
