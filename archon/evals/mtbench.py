"""MT-Bench as FastChat runs it: both turns, single-answer grading by a judge with FastChat's prompts,
FastChat's rating parser, and FastChat's ``show_result`` scores (per turn and overall).

- **Turns.** Turn 1 is the question alone. Turn 2 is the conversation so far: the pipeline is asked
  a ``Query`` whose ``messages`` are (user: question 1, assistant: its own answer 1, user: question 2),
  and whose ``text`` is that conversation as a transcript (``followup``). The eval runner asks each
  turn in order and hands the scorer every answer in ``item.data["answers"]``.
- **Judge prompts** (``archon.evals.judge_prompts``): ``single-v1`` for turn 1 and
  ``single-v1-multi-turn`` for turn 2; math, reasoning and coding questions use the reference-guided
  ``single-math-v1`` / ``single-math-v1-multi-turn`` with GPT-4's reference answers (FastChat's
  ``NEED_REF_CATS``). The judge gets FastChat's system prompt and the filled template as two chat
  messages (``Query.messages``); its ``text`` is the same two joined for judges that read text.
- **Parser** (``parse_rating``): FastChat's ``run_judge_single``: the first ``[[n]]``, else the first
  ``[n]``, else -1 (a failed judgment, left out of the means as ``show_result`` does).
- **Scores**: an item's ``Score.value`` is its mean valid rating mapped from 1-10 to 0-1, so the
  plain report mean is comparable with other benchmarks; ``aggregate`` gives FastChat's own table
  on the 1-10 scale: the mean rating of turn 1, of turn 2, and over all judgments.
"""

from __future__ import annotations

__all__ = ["NEED_REF_CATS", "aggregate", "followup", "judge_prompt", "parse_rating", "score_mt_bench", "transcript"]

import ast
import asyncio
import re
from typing import TYPE_CHECKING, Any

from archon.evals.judge_prompts import MT_BENCH_PROMPTS, FastChatPrompt
from archon.exceptions import ConfigError
from archon.types import Query
from operators.base import render

if TYPE_CHECKING:
    from archon.evals.datasets import Item

#: FastChat's categories graded against a reference answer.
NEED_REF_CATS = ("math", "reasoning", "coding", "arena-hard-200")

# FastChat's fastchat/llm_judge/common.py, verbatim.
_ONE_SCORE = re.compile(r"\[\[(\d+\.?\d*)\]\]")
_ONE_SCORE_BACKUP = re.compile(r"\[(\d+\.?\d*)\]")


def parse_rating(judgment: str) -> float:
    """The judge's rating as FastChat reads it: the first ``[[n]]``, else the first ``[n]``; -1 when none."""
    match = _ONE_SCORE.search(judgment) or _ONE_SCORE_BACKUP.search(judgment)
    return float(ast.literal_eval(match.group(1))) if match else -1.0


def _turns(item: Item) -> list[str]:
    turns = item.data.get("turns")
    return [str(t) for t in turns] if isinstance(turns, list) and turns else [item.input]


def transcript(turns: list[str], answers: list[str], style: str = "chat") -> str:
    """The conversation as text for the next turn: "User: ..." / "Assistant: ..." paragraphs (as
    ``archon serve`` renders a conversation), or for base models "Question: ... Answer: ..." ending
    with an open "Answer:"."""
    user, bot, end = ("Question", "Answer", "\n\nAnswer:") if style == "completion" else ("User", "Assistant", "")
    parts = []
    for i, question in enumerate(turns):
        parts.append(f"{user}: {question}")
        if i < len(answers):
            parts.append(f"{bot}: {answers[i]}")
    return "\n\n".join(parts) + end


def followup(item: Item, answers: list[str], style: str = "chat") -> Query | None:
    """The next turn's query given the pipeline's ``answers`` so far; None once every turn is answered."""
    turns = _turns(item)
    if len(answers) >= len(turns):
        return None
    asked = turns[: len(answers) + 1]
    messages: list[dict[str, str]] = []
    for i, question in enumerate(asked):
        messages.append({"role": "user", "content": question})
        if i < len(answers):
            messages.append({"role": "assistant", "content": answers[i]})
    # No data: like turn 1's query, it shows the pipeline nothing of the item beyond the questions asked so far.
    return Query(transcript(asked, answers, style), id=item.id, messages=tuple(messages))


def judge_prompt(item: Item, answers: list[str], turn: int) -> tuple[FastChatPrompt, str]:
    """FastChat's judge prompt for ``turn`` (1 or 2) and the filled user prompt, exactly as its
    ``run_judge_single`` fills it (``question``/``answer`` for turn 1; ``question_1``, ``answer_1``,
    ... for turn 2; ``ref_answer_1``/``ref_answer_2`` for the reference-guided prompts)."""
    turns = _turns(item)
    refs = item.data.get("references") or []
    math = item.data.get("category") in NEED_REF_CATS and len(refs) >= turn
    name = ("single-math-v1" if math else "single-v1") + ("-multi-turn" if turn > 1 else "")
    prompt = MT_BENCH_PROMPTS[name]
    fields: dict[str, str] = {}
    if math:
        fields["ref_answer_1"] = str(refs[0])
        if turn > 1:
            fields["ref_answer_2"] = str(refs[1])
    if turn > 1:
        fields.update(question_1=turns[0], question_2=turns[1], answer_1=answers[0], answer_2=answers[1])
    else:
        fields.update(question=turns[0], answer=answers[0])
    return prompt, render(prompt.prompt_template, **fields)


async def _judge(ctx: Any, item: Item, answers: list[str], turn: int) -> dict[str, Any]:
    prompt, user = judge_prompt(item, answers, turn)
    system = prompt.system_prompt
    text = user if system == "You are a helpful assistant." else f"{system}\n\n{user}"
    query = Query(text, id=f"{item.id}#judge-t{turn}",
                  messages=({"role": "system", "content": system}, {"role": "user", "content": user}))
    result = await ctx.judge.run(query, ctx.runtime)
    return {"turn": turn, "judge_prompt": prompt.name, "score": parse_rating(result.output), "judgment": result.output[-300:]}


async def score_mt_bench(output: str, item: Item, ctx: Any) -> Any:
    """Judge every answered turn of an MT-Bench item (FastChat's single-answer grading)."""
    from archon.evals.scorers import Score

    if getattr(ctx, "judge", None) is None or getattr(ctx, "runtime", None) is None:
        raise ConfigError("the 'mt-bench' scorer needs a judge pipeline: give --judge JUDGE.yaml (see examples/judge.yaml).")
    answers = item.data.get("answers")
    answers = [str(a) for a in answers] if isinstance(answers, list) and answers else [output]
    n = min(len(answers), len(_turns(item)), 2)
    judgments = await asyncio.gather(*(_judge(ctx, item, answers, t) for t in range(1, n + 1)))
    ratings = [j["score"] for j in judgments]
    valid = [r for r in ratings if r != -1]
    raw = {"ratings": ratings, "judge_prompts": [j["judge_prompt"] for j in judgments]}
    if not valid:
        return Score(0.0, raw=raw, detail=f"the judge gave no rating like 'Rating: [[7]]': {judgments[0]['judgment'][:200]!r}")
    value = (sum(valid) / len(valid) - 1) / 9
    detail = None if len(valid) == len(ratings) else "a turn's judgment had no rating (left out, as FastChat does)"
    return Score(min(1.0, max(0.0, value)), raw=raw, detail=detail)


score_mt_bench.needs_judge = True  # type: ignore[attr-defined]


def aggregate(results: list[dict[str, Any]]) -> dict[str, Any]:
    """FastChat's ``show_result`` (single mode) over item results: the mean rating (1-10) of turn 1,
    of turn 2 and of all judgments, failed judgments (-1) left out."""
    by_turn: dict[int, list[float]] = {1: [], 2: []}
    failed = 0
    for r in results:
        raw = r.get("raw")
        if r.get("status") != "ok" or not isinstance(raw, dict):
            continue
        for turn, rating in enumerate(raw.get("ratings") or [], 1):
            if rating == -1:
                failed += 1
            else:
                by_turn.setdefault(turn, []).append(float(rating))
    every = [v for vs in by_turn.values() for v in vs]

    def mean(vs: list[float]) -> float | None:
        return round(sum(vs) / len(vs), 6) if vs else None

    return {"name": "MT-Bench (FastChat show_result, 1-10)", "turn_1": mean(by_turn[1]), "turn_2": mean(by_turn[2]),
            "overall": mean(every), "judgments": len(every), "failed_judgments": failed}


score_mt_bench.aggregate = aggregate  # type: ignore[attr-defined]
