"""AlpacaEval 2.0 as the ``alpaca-eval`` package (tatsu-lab/alpaca_eval, v0.6.6) scores it: each
answer judged against the reference output by its default annotator, ``weighted_alpaca_eval_gpt4_turbo``,
then the win rate with its standard error and the length-controlled win rate.

- **Data** (not shipped: AlpacaEval's instructions and reference outputs are licensed for
  non-commercial use only): the user's ``alpaca_eval_gpt4_baseline.json`` (AlpacaEval 2.0: the
  reference outputs of gpt4_1106_preview) or ``alpaca_eval.json`` (1.0: text_davinci_003), a JSON
  array of ``{instruction, output, generator, dataset}``, or the same records as JSONL. The pipeline
  sees the instruction only; the reference output (``data["baseline"]``) is for the judge.
- **Judge call**: the ``alpaca_eval_clf_gpt4_turbo`` prompt, word for word (``ALPACA_EVAL_CLF``),
  as its system and user messages. Output 1 is the reference and output 2 the pipeline's, swapped
  when ``is_switched`` says so: AlpacaEval's ``RandomSwitchTwoColumnsProcessor``, seeded on the
  instruction and the annotator's seed 0, so the same item is always asked in the same order.
  Identical outputs are a draw (1.5) without a call, as ``PairwiseAnnotator`` does.
- **Preference** on AlpacaEval's scale (1: the reference wins, 2: the pipeline wins): weighted by
  the first token's log-probabilities when the judge's answer carries them (``logprob_parser``,
  ``is_binarize: false``: ``2 - P(m) / (P(m) + P(M))``); otherwise the judge's text verdict, "m" or
  "M", as 1 or 2 (what the binarised ``alpaca_eval_clf_gpt4_turbo`` reads at temperature 0). The
  built-in ``generate`` op returns text only, so a judge pipeline gives the text verdict unless its
  output candidate carries ``meta["top_logprobs"]`` (``{token: logprob}`` or OpenAI's
  ``[{"token", "logprob"}]`` of the first token). Undone for a swapped order (``3 - x``).
- **Aggregate**: ``get_winrate``'s ``AbsoluteScoringRule.describe_head2head`` (win rate and standard
  error in percent, wins, draws) and the length-controlled win rate (``archon.evals.alpacaeval_lc``).

Where it differs: the template is filled in one pass (``operators.base.render``), so an output
holding "{output_2}" is sent as written where alpaca-eval's sequential ``str.replace`` would fill it.
"""

from __future__ import annotations

__all__ = [
    "ALPACA_EVAL_CLF",
    "REFERENCE_FILES",
    "aggregate",
    "alpaca_eval_item",
    "is_switched",
    "judge_messages",
    "preference_from_logprobs",
    "preference_from_text",
    "score_alpaca_eval",
    "win_rate",
    "with_positions",
]

import math
import random
import re
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archon.exceptions import ConfigError
from archon.types import Query
from operators.base import render

if TYPE_CHECKING:
    from archon.evals.datasets import Item
    from archon.evals.scorers import Score

#: The files looked for, 2.0's reference outputs first (names as in the tatsu-lab/alpaca_eval dataset).
REFERENCE_FILES = ("alpaca_eval_gpt4_baseline.json", "alpaca_eval.json", "alpaca_eval_gpt4_baseline.jsonl", "alpaca_eval.jsonl")
GLM_FILE = "df_gamed.csv"  # the length-controlled GLM's instruction difficulties and regularising annotations

# alpaca_eval/evaluators_configs/alpaca_eval_clf_gpt4_turbo/alpaca_eval_clf.txt of alpaca-eval 0.6.6,
# verbatim (Apache License 2.0, Dubois et al. 2024); a test checks it against the installed package.
ALPACA_EVAL_CLF = '''<|im_start|>system
You are a highly efficient assistant, who evaluates and selects the best large language model (LLMs) based on the quality of their responses to a given instruction. This process will be used to create a leaderboard reflecting the most accurate and human-preferred answers.
<|im_end|>
<|im_start|>user
I require a leaderboard for various large language models. I'll provide you with prompts given to these models and their corresponding outputs. Your task is to assess these responses, and select the model that produces the best output from a human perspective.

## Instruction

{
    "instruction": """{instruction}""",
}

## Model Outputs

Here are the unordered outputs from the models. Each output is associated with a specific model, identified by a unique model identifier.

{
    {
        "model_identifier": "m",
        "output": """{output_1}"""
    },
    {
        "model_identifier": "M",
        "output": """{output_2}"""
    }
}

## Task

Evaluate the models based on the quality and relevance of their outputs, and select the model that generated the best output. Answer by providing the model identifier of the best model. We will use your output as the name of the best model, so make sure your output only contains one of the following model identifiers and nothing else (no quotes, no spaces, no new lines, ...): m or M.

## Best Model Identifier
<|im_end|>'''

SEED = 0  # PairwiseAnnotator's default seed, handed to its processors
_SWITCH_COLUMN = "is_switched_outputs"
_NUMERATOR, _DENOMINATOR = "m", ("m", "M")


def _chatml(template: str) -> list[dict[str, str]]:
    """alpaca-eval's ``prompt_to_chatml``: one message per ``<|im_start|>role`` block, content stripped."""
    out = []
    for block in template.strip().split("<|im_start|>")[1:]:
        role, rest = block.split("\n", 1)
        out.append({"role": role.strip(), "content": rest.split("<|im_end|>", 1)[0].strip()})
    return out


_MESSAGES = _chatml(ALPACA_EVAL_CLF)


def judge_messages(instruction: str, output_1: str, output_2: str) -> list[dict[str, str]]:
    """The judge's system and user messages. Split before filling, so an output holding
    "<|im_start|>" cannot add a message of its own."""
    fields = {"instruction": instruction, "output_1": output_1, "output_2": output_2}
    return [{"role": m["role"], "content": render(m["content"], **fields)} for m in _MESSAGES]


def is_switched(instruction: str, seed: int = SEED) -> bool:
    """Whether AlpacaEval shows the pipeline's output first (``random_seeded_choice`` on the instruction)."""
    return bool(random.Random(_SWITCH_COLUMN + instruction + str(seed)).choices([False, True], k=1)[0])


def preference_from_logprobs(top: dict[str, float] | list[dict[str, Any]]) -> float | None:
    """``logprob_parser`` (``is_binarize: false``) on the first token's top log-probabilities:
    ``2 - P(m) / (P(m) + P(M))``, a token absent from the list having probability 0; None when
    neither is there (alpaca-eval's NaN)."""
    pairs = top.items() if isinstance(top, dict) else ((t.get("token"), t.get("logprob")) for t in top)
    found: dict[str, float] = {}
    for token, logprob in pairs:
        if token in _DENOMINATOR and isinstance(logprob, (int, float)) and token not in found:
            found[token] = float(logprob)
    if not found:
        return None
    numerator = found.get(_NUMERATOR, -math.inf)
    biggest = max(found.values())
    denominator = biggest + math.log(sum(math.exp(v - biggest) for v in found.values()))
    return 2 - math.exp(numerator - denominator)


_VERDICT = re.compile(r"\s*[\"'`*(\[]*([mM])(?![A-Za-z0-9_])")


def preference_from_text(reply: str) -> float | None:
    """The verdict as the judge wrote it: a reply opening with "m" is 1 (output 1 better), with "M"
    2; anything else None. Only the opening is read, as AlpacaEval reads only the first token."""
    match = _VERDICT.match(reply)
    return None if match is None else (1.0 if match.group(1) == "m" else 2.0)


def _top_logprobs(result: Any) -> dict[str, float] | list[dict[str, Any]] | None:
    """The first token's alternatives, if the judge's output candidate carries them."""
    for cands in getattr(result, "candidates", {}).values():
        for c in cands:
            top = c.meta.get("top_logprobs") if c.text == result.output else None
            if isinstance(top, (dict, list)) and top:
                return top
    return None


# ---- items ---------------------------------------------------------------------------------------

def alpaca_eval_item(rec: dict[str, Any], where: str, n: int) -> Item:
    from archon.evals._builtins import _item, _need

    data = {"baseline": _need(rec, "output", where), "generator": str(rec.get("generator") or "reference"),
            "dataset": rec.get("dataset"), "index": n - 1}
    return _item(f"alpaca-eval/{n - 1}", _need(rec, "instruction", where), None, data)


def with_positions(items: list[Item], source: Path) -> list[Item]:
    """Ids and ``index`` by position in the file (the GLM reads instruction difficulty by it), and
    the GLM's data file when it sits beside the data (``df_gamed.csv``)."""
    glm = source.with_name(GLM_FILE)
    extra = {"glm_file": str(glm)} if glm.is_file() else {}
    return [replace(it, id=f"alpaca-eval/{i}", data={**it.data, "index": i, **extra}) for i, it in enumerate(items)]


# ---- the scorer ------------------------------------------------------------------------------------

async def score_alpaca_eval(output: str, item: Item, ctx: Any) -> Score:
    """Judge the pipeline's output against the reference output in AlpacaEval's order for the item."""
    from archon.evals.scorers import Score

    if getattr(ctx, "judge", None) is None or getattr(ctx, "runtime", None) is None:
        raise ConfigError("the 'alpaca-eval' scorer needs a judge pipeline: give --judge JUDGE.yaml (see examples/judge-alpaca-eval.yaml).")
    reference = item.data.get("baseline")
    if not isinstance(reference, str):
        return Score(0.0, detail=f"no reference output for item '{item.id}' (field 'output' of the data file)")
    raw: dict[str, Any] = {"len_1": len(reference), "len_2": len(output), "index": item.data.get("index"),
                           "generator_1": item.data.get("generator"), "glm_file": item.data.get("glm_file")}
    if output == reference:
        return Score(0.5, raw={**raw, "preference": 1.5, "source": "identical"})
    switched = is_switched(item.input)
    first, second = (output, reference) if switched else (reference, output)
    messages = judge_messages(item.input, first, second)
    text = "\n\n".join(m["content"] for m in messages)
    result = await ctx.judge.run(Query(text, id=f"{item.id}#alpaca-eval", messages=tuple(messages)), ctx.runtime)
    top = _top_logprobs(result)
    preference = preference_from_logprobs(top) if top is not None else preference_from_text(result.output)
    raw.update(switched=switched, source="logprobs" if top is not None else "text")
    if preference is None:
        return Score(0.0, raw={**raw, "preference": None},
                     detail=f"the judge named neither model ('m' or 'M'): {result.output.strip()[:160]!r}")
    if switched:
        preference = 3 - preference
    return Score(preference - 1, raw={**raw, "preference": preference})


score_alpaca_eval.needs_judge = True  # type: ignore[attr-defined]


# ---- aggregation -----------------------------------------------------------------------------------

def _sem(values: list[float]) -> float | None:
    """pandas' ``Series.sem()``: the sample standard deviation (ddof 1) over the square root of n."""
    n = len(values)
    if n < 2:
        return None
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) / math.sqrt(n)


def _head2head(prefs: list[float | None]) -> dict[str, Any]:
    """``describe_head2head`` on preferences (1-2; 0 is a draw like 1.5; None and values outside
    [1, 2] are dropped), in percent."""
    draws = sum(1 for p in prefs if p is not None and p in (0, 1.5))
    shifted = [(1.5 if p == 0 else p) - 1 for p in prefs if p is not None and 1 <= (1.5 if p == 0 else p) <= 2]
    if not shifted:
        return {"win_rate": None, "standard_error": None, "n_wins": 0, "n_wins_base": 0, "n_draws": draws, "n_total": 0}
    sem = _sem(shifted)
    return {"win_rate": sum(shifted) / len(shifted) * 100, "standard_error": None if sem is None else sem * 100,
            "n_wins": sum(1 for v in shifted if v > 0.5), "n_wins_base": sum(1 for v in shifted if v < 0.5),
            "n_draws": draws, "n_total": len(shifted)}


def win_rate(preferences: list[float | None]) -> dict[str, Any]:
    """alpaca-eval's ``get_winrate``: the win rate (mean preference, a draw counting one half) and
    its standard error in percent, the counts, and ``discrete_win_rate`` (each preference rounded
    to a win, a loss or a draw first: ``ZeroOneScoringRule``)."""
    out = _head2head(preferences)
    discrete = [None if p is None else 1.5 if p in (0, 1.5) else float(round(p)) for p in preferences]
    out["discrete_win_rate"] = _head2head(discrete)["win_rate"]
    return out


def aggregate(results: list[dict[str, Any]]) -> dict[str, Any]:
    """AlpacaEval's leaderboard figures over item results: win rate, standard error, the
    length-controlled win rate and its standard error (percent), and where the preferences came from."""
    from archon.evals import alpacaeval_lc

    rows = [r["raw"] for r in results if r.get("status") == "ok" and isinstance(r.get("raw"), dict) and "len_1" in r["raw"]]
    prefs = [row.get("preference") for row in rows]
    # The figures are weighted_alpaca_eval_gpt4_turbo's when every preference came from logprobs; from
    # text verdicts they are what its binarised twin, alpaca_eval_clf_gpt4_turbo, gives ("preferences" says which).
    out: dict[str, Any] = {"name": "AlpacaEval 2.0 vs the reference outputs (alpaca_eval_clf_gpt4_turbo prompt)"}
    out.update(win_rate(prefs))
    out.update(alpacaeval_lc.from_rows(rows))
    sources = [row.get("source") for row in rows]
    out["preferences"] = {s: sources.count(s) for s in ("logprobs", "text", "identical") if s in sources}
    out["unparsed"] = sum(1 for p in prefs if p is None)
    out["reference"] = sorted({str(row.get("generator_1")) for row in rows}) or None
    return {k: _rounded(v) for k, v in out.items()}


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    return {k: _rounded(v) for k, v in value.items()} if isinstance(value, dict) else value


score_alpaca_eval.aggregate = aggregate  # type: ignore[attr-defined]
