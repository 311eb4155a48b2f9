"""Arena-Hard-Auto v0.1 as lmarena/arena-hard-auto scores it: a pairwise judgement of each answer
against the baseline's (gpt-4-0314), in both orders, and the win rate against the baseline with a
bootstrap 95% interval.

- **Judge call** (``gen_judgment.py``'s ``judgment``): the system prompt and the user-prompt template of
  the judge config (``archon.evals.judge_prompts``). Game 1 puts the baseline as assistant A and the
  pipeline's answer as B; game 2 swaps them. The verdict is read with the config's
  ``regex_pattern`` (``get_score``: every match; one distinct label is the verdict, several distinct
  labels are no verdict, none asks again). With ``number_of_judgment_attempts: 2`` a reply without a
  verdict is followed by the user turn "continue your judgment and finish by outputting a final
  verdict label" and the replies are joined, as the original does.
- **Battles** (``show_result.py``'s ``get_battles_from_judgment``, ``WEIGHT=3``): a clear verdict
  (``>>``) counts as 3 battles, a slight one (``>``) or a tie (``=``) as 1, anything else as none.
- **Win rate** (``compute_mle_elo`` + ``predict_win_rate``): a Bradley-Terry fit of the battles, the
  baseline anchored at 1000, turned back into the probability of beating the baseline; the 95%
  interval is the 2.5th and 97.5th percentile of 100 bootstrap fits over battles resampled with
  replacement (``np.random.seed(42)``, ``DataFrame.sample(frac=1, replace=True)``). With battles
  against the baseline only, the unpenalised logistic-regression fit the original runs has the
  closed form ``(wins + ties / 2) / battles``, so it is computed as that (a test checks it against
  scikit-learn's fit built the original way).

An item's ``Score.value`` is its own share of battle points (what the plain report mean averages);
``aggregate`` gives Arena-Hard's figure over the whole set.
"""

from __future__ import annotations

__all__ = ["CONTINUE", "WEIGHT", "aggregate", "battles", "judge_game", "parse_verdict", "score_arena_hard", "user_prompt",
           "win_rate"]

import math
import re
from typing import TYPE_CHECKING, Any

from archon.evals.judge_prompts import ARENA_HARD_SYSTEM, ARENA_HARD_TEMPLATE, ARENA_HARD_VERDICT
from archon.exceptions import ConfigError
from archon.types import Query
from operators.base import render

if TYPE_CHECKING:
    from archon.evals.datasets import Item

WEIGHT = 3  # show_result.py's default: a ">>" verdict counts as 3 battles
ATTEMPTS = 2  # number_of_judgment_attempts
CONTINUE = "continue your judgment and finish by outputting a final verdict label"
_PATTERN = re.compile(ARENA_HARD_VERDICT)

# (verdict in the game, game) -> (outcome for the pipeline, battles): game 1 has the baseline as A.
_OUTCOME = {
    ("A>>B", 1): ("loss", WEIGHT), ("A>B", 1): ("loss", 1), ("A=B", 1): ("tie", 1), ("B>A", 1): ("win", 1), ("B>>A", 1): ("win", WEIGHT),
    ("A>>B", 2): ("win", WEIGHT), ("A>B", 2): ("win", 1), ("A=B", 2): ("tie", 1), ("B>A", 2): ("loss", 1), ("B>>A", 2): ("loss", WEIGHT),
}
_POINTS = {"win": 1.0, "tie": 0.5, "loss": 0.0}


def parse_verdict(judgment: str, pattern: re.Pattern[str] = _PATTERN) -> tuple[str | None, bool]:
    """(verdict, try_again) as arena-hard's ``get_score``: one distinct label is the verdict; none
    found asks again; several distinct labels are no verdict and do not ask again."""
    matches = [m for m in pattern.findall(judgment) if m != ""]
    if len(set(matches)) == 0:
        return None, True
    if len(set(matches)) == 1:
        return matches[0].strip("\n"), False
    return None, False


def user_prompt(question: str, answer_a: str, answer_b: str) -> str:
    return render(ARENA_HARD_TEMPLATE, question_1=question, answer_1=answer_a, answer_2=answer_b)


async def judge_game(ctx: Any, qid: str, question: str, answer_a: str, answer_b: str) -> dict[str, Any]:
    """One game: the judge's verdict on A vs B, asking again once when the reply has no verdict."""
    user = user_prompt(question, answer_a, answer_b)
    conv: list[dict[str, str]] = [{"role": "system", "content": ARENA_HARD_SYSTEM}, {"role": "user", "content": user}]
    judgment, verdict = "", None
    for attempt in range(ATTEMPTS):
        text = "\n\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in conv[1:]) if attempt else user
        result = await ctx.judge.run(Query(f"{ARENA_HARD_SYSTEM}\n\n{text}", id=f"{qid}#{attempt}", messages=tuple(conv)),
                                     ctx.runtime)
        judgment += "\n" + result.output
        verdict, again = parse_verdict(judgment)
        conv.append({"role": "assistant", "content": result.output})
        if not again:
            break
        conv.append({"role": "user", "content": CONTINUE})
    return {"score": verdict, "judgment": judgment[-300:]}


def battles(games: list[str | None]) -> list[str]:
    """The pipeline's battle outcomes ("win" | "tie" | "loss", repeated by weight) from its games'
    verdicts (game 1: baseline as A; game 2: swapped)."""
    out: list[str] = []
    for game, verdict in enumerate(games, 1):
        outcome = _OUTCOME.get((verdict or "", game))
        if outcome is not None:
            out += [outcome[0]] * outcome[1]
    return out


async def score_arena_hard(output: str, item: Item, ctx: Any) -> Any:
    """Judge the answer against the item's baseline answer in both orders."""
    import asyncio

    from archon.evals.scorers import Score

    if getattr(ctx, "judge", None) is None or getattr(ctx, "runtime", None) is None:
        raise ConfigError("the 'arena-hard' scorer needs a judge pipeline: give --judge JUDGE.yaml (see examples/judge.yaml).")
    base = item.data.get("baseline")
    if not isinstance(base, str):
        baseline = getattr(ctx, "baseline", None) or {}
        base = baseline.get(item.id)
    if not isinstance(base, str):
        return Score(0.0, detail=f"no baseline answer for item '{item.id}' (field 'baseline', or the baseline file beside the questions)")
    g1, g2 = await asyncio.gather(judge_game(ctx, f"{item.id}#game1", item.input, base, output),
                                  judge_game(ctx, f"{item.id}#game2", item.input, output, base))
    games = [g1["score"], g2["score"]]
    outcomes = battles(games)
    raw = {"games": games}
    if not outcomes:
        return Score(0.0, raw=raw, detail=f"the judge gave no verdict like '[[A>B]]' in either game: {g1['judgment'][:160]!r}")
    return Score(sum(_POINTS[o] for o in outcomes) / len(outcomes), raw=raw)


score_arena_hard.needs_judge = True  # type: ignore[attr-defined]


def _elo(outcomes: list[str]) -> float:
    """The pipeline's Bradley-Terry rating with the baseline at 1000 (SCALE 400, BASE 10)."""
    p = sum(_POINTS[o] for o in outcomes) / len(outcomes)
    p = min(max(p, 1e-12), 1 - 1e-12)  # all wins or all losses: the fit runs off to +-infinity
    return 1000 + 400 * math.log10(p / (1 - p))


def _win_rate(elo: float) -> float:
    return 1 / (1 + 10 ** ((1000 - elo) / 400))


def win_rate(outcomes: list[str], rounds: int = 100, seed: int = 42) -> dict[str, Any]:
    """Arena-Hard's score from battle outcomes: the win rate against the baseline and its bootstrap
    95% interval (fractions; ``*_pct`` as show_result prints them, rounded to 2 places)."""
    import numpy as np

    if not outcomes:
        return {"win_rate": None, "ci_low": None, "ci_high": None, "battles": 0, "elo": None}
    point = _elo(outcomes)
    rng = np.random.RandomState(seed)  # what np.random.seed(42) then DataFrame.sample draws from
    arr = np.array(outcomes)
    boot = [_elo(list(arr[rng.choice(len(arr), size=len(arr), replace=True)])) for _ in range(rounds)]
    lo, hi = float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))
    rate = _win_rate(point)
    return {"win_rate": round(rate, 6), "ci_low": round(_win_rate(lo), 6), "ci_high": round(_win_rate(hi), 6),
            "win_rate_pct": round(rate * 100, 2), "ci_pct": [round(_win_rate(lo) * 100, 2), round(_win_rate(hi) * 100, 2)],
            "elo": round(point, 3), "battles": len(outcomes), "wins": outcomes.count("win"), "ties": outcomes.count("tie"),
            "losses": outcomes.count("loss")}


def aggregate(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Arena-Hard's win rate over item results (their judged games), in item order."""
    outcomes: list[str] = []
    for r in results:
        raw = r.get("raw")
        if r.get("status") == "ok" and isinstance(raw, dict) and isinstance(raw.get("games"), list):
            outcomes += battles(raw["games"])
    return {"name": "Arena-Hard win rate vs baseline (Bradley-Terry, bootstrap 95% CI)", **win_rate(outcomes)}


score_arena_hard.aggregate = aggregate  # type: ignore[attr-defined]
