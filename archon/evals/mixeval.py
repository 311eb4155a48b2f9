"""MixEval (Ni et al. 2024) free-form and multiple-choice, graded as MixEval grades them.

Items are asked with MixEval's own prompt construction (archon/evals/mixeval_prompts.py). Scoring:

- ``mixeval_freeform``: with a judge pipeline (``archon eval --judge``), MixEval's model parser: the
  judge gets MixEval's free-form prompt (question without its context, the golden answers as
  "<answer 1> ...; <answer 2> ...", the response) and its reply's first "[[score]]" (else
  "[score]") in [0, 1] is the item's score. Without a judge, MixEval's rule-based parser
  (``parse_freeform_response_rule`` + ``eval_freeform_rule``, its ``--free_form_parser rule``): 1 when
  a golden answer appears in the response's key sentences, or a number there equals one; else 0.
- ``mixeval_choice``: with a judge, MixEval's option-extractor prompt and its reply's first
  "[[X]]" (else "[X]"); without, MixEval's rule parser (``parse_multi_choice_response_rule``): the
  earliest letter pattern (" B ", "(B)", "**B. ", ...), else for long replies the earliest option
  text. 1 when that letter is the answer.

Where it differs from MixEval: MixEval asks the judge again (up to 10 times) when its reply has no
valid score, and then, like its multiple-choice rule parser finding no letter, draws a random
score or letter. Here such an item scores 0 and says why (a random draw would make two runs of
the same answers disagree; judge calls are cached, so asking again would return the same reply).
The overall score is the mean over items, as in MixEval's ``compute_metrics`` (each item once:
the shipped subsets keep no duplicates).
"""

from __future__ import annotations

__all__ = [
    "MIXEVAL_CHOICE",
    "MIXEVAL_FREEFORM",
    "choice_from_judge",
    "mixeval_choice_item",
    "mixeval_freeform_item",
    "rule_choice",
    "rule_freeform_correct",
    "score_from_judge",
    "score_mixeval_choice",
    "score_mixeval_freeform",
]

import ast
import re
from typing import TYPE_CHECKING, Any

from archon.evals import mixeval_prompts as MP
from archon.evals.prompts import PromptSet
from archon.types import Query
from operators.base import render

if TYPE_CHECKING:
    from archon.evals.datasets import Item
    from archon.evals.scorers import Score, ScoreContext

# The question is already MixEval's full prompt; a base model continues after it (MixEval's 5-shot
# prefix for base models is not shipped).
MIXEVAL_FREEFORM = PromptSet(chat="{input}", completion="{input}\n", stop=("\n\nQuestion:",))
MIXEVAL_CHOICE = PromptSet(chat="{input}", completion="{input}\n", stop=("\n",))
_KEEP = ("prompt", "context", "benchmark_name")


# ---- items ---------------------------------------------------------------------------------------

def mixeval_freeform_item(rec: dict[str, Any], where: str, n: int) -> Item:
    from archon.evals._builtins import _item, _need

    _need(rec, "prompt", where)
    target = _need(rec, "target", where, list)
    data = {k: rec[k] for k in _KEEP if k in rec}
    return _item(rec.get("id", f"mixeval-ff-{n}"), MP.freeform_question(rec), [str(t) for t in target], data)


def mixeval_choice_item(rec: dict[str, Any], where: str, n: int) -> Item:
    from archon.evals._builtins import _item, _need
    from archon.exceptions import SpecError

    _need(rec, "prompt", where)
    options = _need(rec, "options", where, list)
    target = _need(rec, "target", where, list)
    if len(target) != 1 or not isinstance(target[0], int) or not 0 <= target[0] < len(options):
        raise SpecError(f"{where}: field 'target' must hold one 0-based option index (MixEval's shape), got {target!r}.")
    data = {"choices": [str(o) for o in options], **{k: rec[k] for k in _KEEP if k in rec}}
    return _item(rec.get("id", f"mixeval-mc-{n}"), MP.multichoice_question(rec), chr(ord("A") + target[0]), data)


# ---- MixEval's rule parsers ---------------------------------------------------------------------

_LETTER_PATTERNS = (" {} ", " {}\n", "\n{} ", "\n{}\n", " {}. ", " {}.\n", "\n{}. ", "\n{}.\n",
                    "({})", "**{} ", " {}**", "**{}. ", " {}.**")


def rule_choice(response: str, options: list[str]) -> str | None:
    """The letter MixEval's rule parser reads from ``response``; None where it would draw at random."""
    letters = [chr(ord("A") + i) for i in range(len(options))]
    for ch in ",.!?;:'":
        response = response.strip(ch)
    response = f" {response} "
    found = [(response.find(p.format(c)), c) for c in letters for p in _LETTER_PATTERNS if p.format(c) in response]
    if not found and len(response.split()) > 5:
        lower = response.lower()
        found = [(lower.find(str(o).lower()), c) for c, o in zip(letters, options) if str(o).lower() in lower]
    return min(found)[1] if found else None


_KEY_INDICATORS = ("could be ", "so ", "is ", "thus ", "therefore ", "final ", "answer ", "result ")
_NUMBER_PATTERNS = (r"-?\b\d{1,3}(?:,\d{3})+\b", r"-?\d+(?:\.\d+)?[eE][+-]?\d+", r"-?(?:\d+\.\d+|\.\d+|\d+\b)(?![eE][+-]?\d+)(?![,\d])")


def _normalize(text: str) -> list[Any]:
    """A number rounded to 2 places, else the lower-cased text (a single character padded on one side)."""
    text = text.strip()
    try:
        return [round(float(text.replace(",", "")), 2)]
    except ValueError:
        text = text.lower()
        return [" " + text, text + " "] if len(text) == 1 else [text]


def _key_responses(response: str) -> list[str]:
    """The tails after answer-indicating words ("so ", "is ", "answer ", ...) of each sentence."""
    response = response.strip().strip(".").lower()
    parts = re.split(r"\.\s(?=[A-Z])|\n", response)
    keys = []
    for i, part in enumerate(parts):
        indicators = _KEY_INDICATORS + (("=",) if i == len(parts) - 1 else ())
        tails = [part.split(ind)[-1].strip() for ind in indicators if ind in part]
        shortest = min(tails, key=len) if tails else None
        if shortest and shortest.strip() not in (":", ",", ".", "!", "?", ";", "'"):
            keys.append(shortest)
    return keys or [response]


def rule_freeform_correct(response: str, targets: list[str]) -> bool:
    """MixEval's ``eval_freeform_rule`` over ``parse_freeform_response_rule``'s predictions."""
    keys = _key_responses(response)
    preds = list(keys)
    for key in keys:
        for pattern in _NUMBER_PATTERNS:
            preds += re.findall(pattern, key)
    normalized = {p for pred in preds for p in _normalize(pred)}
    golds = [g for t in targets for g in _normalize(str(t))]
    for pred in normalized:
        if isinstance(pred, str):
            if any(isinstance(g, str) and g in pred for g in golds):
                return True
        elif pred in golds:
            return True
    return False


# ---- the judge's reply ----------------------------------------------------------------------------

def score_from_judge(reply: str) -> float | None:
    """MixEval's ``get_score_from_judge``: the first "[[0.7]]" (else "[0.7]"); None unless in [0, 1]."""
    m = re.search(r"\[\[(\d+\.?\d*)\]\]", reply) or re.search(r"\[(\d+\.?\d*)\]", reply)
    if not m:
        return None
    value = float(ast.literal_eval(m.group(1)))
    return value if 0 <= value <= 1 else None


def choice_from_judge(reply: str, options: list[str]) -> str | None:
    """MixEval's ``get_option_from_judge``: the first "[[B]]" (else "[B]"), if it names an option."""
    m = re.search(r"\[\[([A-Z])\]\]", reply) or re.search(r"\[([A-Z])\]", reply)
    return m.group(1) if m and ord(m.group(1)) - ord("A") < len(options) else None


async def _ask(ctx: ScoreContext, prompt: str, qid: str) -> str:
    if ctx.judge is None:  # the scorers ask only with a judge; this keeps the type checker as sure
        raise ValueError("no judge pipeline")
    result = await ctx.judge.run(Query(prompt, id=qid), ctx.runtime)
    return str(result.output)


# ---- scorers ----------------------------------------------------------------------------------------

async def score_mixeval_freeform(output: str, item: Item, ctx: ScoreContext) -> Score:
    from archon.evals.scorers import Score

    targets = [str(t) for t in item.reference] if isinstance(item.reference, list) else [str(item.reference or "")]
    src = {"benchmark": item.data.get("benchmark_name")}  # MixEval also reports the mean per source benchmark
    if ctx.judge is None or ctx.runtime is None:
        ok = rule_freeform_correct(output, targets)
        return Score(float(ok), raw={"parser": "rule", **src}, detail=None if ok else "rule parser: no golden answer in the response")
    gold = "; ".join(f"<answer {i + 1}> {t}" for i, t in enumerate(targets))
    question = str(item.data.get("prompt", item.input))
    reply = await _ask(ctx, render(MP.FREEFORM_JUDGE, prompt=question, gold_ans=gold, response=output), f"{item.id}#mixeval-judge")
    value = score_from_judge(reply)
    if value is None:
        return Score(0.0, raw={"parser": "model", **src}, detail=f"the judge gave no score like '[[0.5]]' in [0, 1]: {reply.strip()[:200]!r}")
    return Score(value, raw={"parser": "model", "judge_score": value, **src})


async def score_mixeval_choice(output: str, item: Item, ctx: ScoreContext) -> Score:
    from archon.evals.scorers import Score

    options = [str(o) for o in item.data.get("choices") or []]
    gold = str(item.reference or "").strip().upper()
    src = {"benchmark": item.data.get("benchmark_name")}
    if ctx.judge is None or ctx.runtime is None:
        parser, got = "rule", rule_choice(output, options)
    else:
        question = str(item.data.get("prompt", item.input))
        prompt = render(MP.CHOICE_JUDGE, prompt=question, options=MP.options_text(options), response=output)
        parser, got = "model", choice_from_judge(await _ask(ctx, prompt, f"{item.id}#mixeval-judge"), options)
    if got is None:
        return Score(0.0, raw={"parser": parser, **src}, detail=f"{parser} parser: no option letter found")
    return Score(1.0 if got == gold else 0.0, raw={"parser": parser, "choice": got, **src})
