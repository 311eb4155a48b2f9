"""score: every candidate gets a number in [0, 1] from a judge; keep the best ``top_k`` (best-of-N).

Five methods, one judgement per candidate each (all concurrent):

- ``judge``: the judge rates the response 0-10 and ends with ``Rating: [[7]]``; the score is rating / 10.
- ``yes_prob``: the judge answers Yes or No; the score is the probability of Yes, read from the
  log-probability of the reply's first token when the backend returns it (``p`` for a Yes, ``1 - p``
  for a No), else the text's own answer as 1.0 or 0.0, with a note.
- ``process``: a process reward prompt (PRM): the candidate, a possibly unfinished solution, is split
  into numbered steps and the judge rates each; the score is the last step's rating (``aggregate:
  last``, as in Snell et al. 2024) or the weakest step's (``min``), / 10.
- ``pipeline``: the judge is a pipeline file of its own (an ensemble of judges fused, a judge that
  critiques first), run once per candidate on the rendered judge prompt; its answer is parsed as
  ``judge``'s reply is. The core loads and checks the file with the pipeline, and runs it inside the
  run (``ctx.run_pipeline``), so its calls are cached, recorded and counted like the node's own.
- ``reward_model``: a reward-model server scores the (query, candidate) conversation
  (``ctx.reward``; vLLM's ``/classify``): one output is a probability already (the sigmoid of the
  reward), several are a classifier's, whose last class is read as "good"; a raw reward outside
  [0, 1] (a regression head) is squashed with the logistic function, with a note.

A reply that gives no score leaves ``score`` unset, with a note: such a candidate ranks last. Only the
judge's reply is parsed, never the candidate, so nothing a candidate writes ("Rating: [[10]]") can
score it.
"""

from __future__ import annotations

__all__ = ["Score", "ScoreConfig", "parse_rating", "parse_step_ratings", "parse_yes_no", "split_steps"]

import asyncio
import json
import math
import re
from dataclasses import replace
from typing import Any, Literal

from pydantic import Field, model_validator

from archon.types import Candidate, Query
from backends.base import Completion, CompletionRequest, Message
from operators.base import ModelCallConfig, Operator, build_request, render

Method = Literal["judge", "yes_prob", "process", "pipeline", "reward_model"]

JUDGE_PROMPT = """Rate how correct, complete and helpful the response is as an answer to the query, from 0 (wrong or useless) to 10 (correct and complete). Explain briefly, then end with the rating in double brackets, e.g. "Rating: [[7]]".

Query:
{query}

Response:
{candidate}

Evaluation:"""

YES_PROMPT = """Is the response a correct answer to the query? Answer with one word: Yes or No.

Query:
{query}

Response:
{candidate}

Answer (Yes or No):"""

PROCESS_PROMPT = """Below is a solution to the problem, split into numbered steps; it may be unfinished. Check each step in order: is it correct, given the problem and the steps before it? Rate every step from 0 (wrong) to 10 (certainly correct), one line per step, exactly in the form "Step 1: [[9]]". Do not continue the solution.

Problem:
{query}

Solution steps:
{steps}

Step ratings:"""

_PROMPTS: dict[str, str] = {"judge": JUDGE_PROMPT, "yes_prob": YES_PROMPT, "process": PROCESS_PROMPT, "pipeline": JUDGE_PROMPT}
# yes_prob needs only the first word; the others let the judge explain before rating.
_MAX_TOKENS: dict[str, int] = {"judge": 512, "yes_prob": 4, "process": 512}

_NUM = r"(10(?:\.0+)?|\d(?:\.\d+)?)"
# Strict: "[[7]]" anywhere, or "Rating: 7" / "Rating: 7/10" ending its line; the last one counts.
_RATING = re.compile(rf"\[\[\s*{_NUM}\s*\]\]|^\W*rating\W{{0,5}}{_NUM}\s*(?:/\s*10)?\W*$", re.IGNORECASE | re.MULTILINE)
_STEP_RATING = re.compile(rf"^\W*step\s*(\d+)\s*[:\-]\s*(?:\[\[\s*{_NUM}\s*\]\]|{_NUM}\s*(?:/\s*10)?)\W*$",
                          re.IGNORECASE | re.MULTILINE)
_FIRST_WORD = re.compile(r"[\s*_\"'`]*([A-Za-z]+)")
_YES = {"yes", "correct", "true"}
_NO = {"no", "incorrect", "false"}


def parse_rating(text: str) -> float | None:
    """The last 0-10 rating in ``[[7]]`` or ``Rating: 7`` form; None when there is none."""
    found = _RATING.findall(text)
    if not found:
        return None
    bracketed, plain = found[-1]
    return float(bracketed or plain)


def parse_step_ratings(text: str, steps: int) -> dict[int, float]:
    """Step number (1-based) -> 0-10 rating, from lines "Step 2: [[8]]" (first rating of a step wins)."""
    out: dict[int, float] = {}
    for num, bracketed, plain in _STEP_RATING.findall(text):
        i = int(num)
        if 1 <= i <= steps and i not in out:
            out[i] = float(bracketed or plain)
    return out


def parse_yes_no(text: str) -> tuple[bool | None, bool]:
    """(the answer the reply's first word gives, whether that word opens the reply), so that the
    first token's log-probability is the answer's own; (None, False) when it is neither answer.

    One leading space still opens it: tokenizers fold it into the word's token (" Yes"), as a base
    model's completion after "Answer:" starts.
    """
    m = _FIRST_WORD.match(text)
    if m is None or m.group(1).lower() not in _YES | _NO:
        return None, False
    return m.group(1).lower() in _YES, text[: m.start(1)] in ("", " ")


def split_steps(text: str) -> list[str]:
    """A solution's steps: its paragraphs (blank-line separated), or its lines when it is one paragraph."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    if len(paragraphs) > 1:
        return paragraphs
    return [line.strip() for line in text.strip().splitlines() if line.strip()] or [text.strip()]


class ScoreConfig(ModelCallConfig):
    model: str | None = Field(default=None, description="'<backend>/<model>' of the judge (every method but 'pipeline').")
    method: Method = Field(
        default="judge", description="judge: a 0-10 rating; yes_prob: the probability of 'Yes' (from logprobs when the "
        "backend returns them); process: a process reward prompt rating each step of a (partial) solution; pipeline: "
        "the pipeline file 'judge' answers the judge prompt and its answer is read as a 0-10 rating; reward_model: a "
        "reward-model server (vLLM's /classify) scores the query and the candidate as a conversation.",
    )
    judge: str | None = Field(
        default=None, description="pipeline: the judge's pipeline file (a relative path resolves against the working "
        "directory), run once per candidate; loaded and checked with this pipeline.")
    top_k: int | None = Field(default=None, ge=1, description="How many of the best-scored candidates to keep (default: all, best first).")
    aggregate: Literal["last", "min"] = Field(
        default="last", description="process: the solution's score is its last step's rating, or its weakest step's."
    )
    temperature: float = Field(default=0.0, ge=0, le=2, description="Sampling temperature of the judge.")
    max_tokens: int | None = Field(  # type: ignore[assignment]  # None: the method's own default
        default=None, ge=1, description="Most tokens in the judge's reply (default: 4 for yes_prob, 512 otherwise).")
    prompt: str | None = Field(
        default=None, description="Template; judge, yes_prob and pipeline: {query}, {candidate}; process: {query}, {steps} (numbered), "
        "{candidate}; reward_model uses none (the server scores the query and the candidate as a conversation).")

    @model_validator(mode="after")
    def _method_needs(self) -> ScoreConfig:
        # Settings the method does not use are ignored, not refused: a search space may switch methods.
        if self.method == "pipeline" and not self.judge:
            raise ValueError("method 'pipeline' needs 'judge': the judge's pipeline file, e.g. judge: judges/fused.yaml")
        if self.method != "pipeline" and not self.model:
            raise ValueError(f"method '{self.method}' needs 'model': the '<backend>/<model>' of the judge")
        return self

    def model_refs(self) -> list[str]:
        return [self.model] if self.model else []

    def pipeline_refs(self) -> list[str]:
        return [self.judge] if self.method == "pipeline" and self.judge else []


class Score(Operator[ScoreConfig]):
    """Scores every candidate in [0, 1] with one judgement each and keeps the best ``top_k``.

    Cost: one call per candidate (pipeline: one run of the judge pipeline), all concurrent. Order: best score first, ties in input order,
    unscored candidates last. Fallback: a reply without a score leaves the candidate unscored with
    a note; with yes_prob a backend that returns no logprobs gives the text's Yes/No as 1.0/0.0,
    with a note.
    """

    kind = "score"
    summary = ("A judge gives every candidate a score in [0, 1] (rating, P(yes), per-step process reward, a judge "
               "pipeline's rating or a reward model's); keep the best top_k.")

    def call_bound(self, fan_in: int) -> tuple[int, int]:
        """One call per candidate (reward_model: one reward request; pipeline: none of its own); keeps
        top_k of them (all by default)."""
        top_k = self.config.top_k
        return 0 if self.config.method == "pipeline" else fan_in, fan_in if top_k is None else min(fan_in, top_k)

    def pipeline_runs(self, fan_in: int) -> dict[str, int]:
        """pipeline: the judge pipeline runs once per candidate."""
        return {ref: fan_in for ref in self.config.pipeline_refs()}

    async def __call__(self, inputs: list[Candidate], query: Query, ctx: Any) -> list[Candidate]:
        cfg = self.config
        scored = await asyncio.gather(*(self.score_one(c, query, ctx) for c in inputs))
        # sorted() is stable: equal scores keep input order, and unscored ones (-inf) come last.
        ranked = sorted(scored, key=lambda c: -c.score if c.score is not None else math.inf)
        return ranked if cfg.top_k is None else ranked[: cfg.top_k]

    async def score_one(self, cand: Candidate, query: Query, ctx: Any, steps: list[str] | None = None) -> Candidate:
        """``cand`` with its score (None when the reply gives none, with a note), from one judge call.

        ``steps``: for ``process``, the candidate's steps when the caller knows them (``beam`` does:
        it built the solution step by step); by default the candidate is split by ``split_steps``.
        """
        cfg = self.config
        if cfg.method == "reward_model":
            assert cfg.model is not None  # ScoreConfig's validator requires it
            return await self._by_reward_model(cand, query, cfg.model, ctx)
        if cfg.method != "process":
            steps = []
        elif steps is None:
            steps = split_steps(cand.text)
        numbered = "\n".join(f"Step {i}: {s}" for i, s in enumerate(steps, 1))
        prompt = render(cfg.prompt or _PROMPTS[cfg.method], query=query.text, candidate=cand.text, steps=numbered)
        if cfg.method == "pipeline":
            return await self._by_pipeline(cand, query, prompt, ctx)
        assert cfg.model is not None  # ScoreConfig's validator requires it for every other method
        request = replace(build_request(cfg, cfg.model, prompt), max_tokens=cfg.max_tokens or _MAX_TOKENS[cfg.method])
        if cfg.method == "yes_prob":
            request = replace(request, logprobs=0)  # the sampled tokens' own logprobs
        comp = await ctx.complete(cfg.model, request)
        reply = comp.texts[0]
        meta: dict[str, Any] = {**cand.meta, "score_method": cfg.method, "judgement": reply.strip()}
        if cfg.method == "judge":
            return self._from_rating(cand, meta, parse_rating(reply))
        if cfg.method == "process":
            return self._from_steps(cand, meta, parse_step_ratings(reply, len(steps)), len(steps))
        return self._from_yes_no(cand, meta, reply, comp)

    async def _by_pipeline(self, cand: Candidate, query: Query, prompt: str, ctx: Any) -> Candidate:
        assert self.config.judge is not None
        # The judge pipeline's query is the judge prompt; the item's visible data (tests, passages) stays.
        sub = await ctx.run_pipeline(self.config.judge, replace(query, text=prompt, messages=()))
        meta: dict[str, Any] = {**cand.meta, "score_method": "pipeline", "judgement": sub.output.strip(), "judge_calls": sub.calls}
        if sub.notes:
            meta["judge_notes"] = sub.notes
        return self._from_rating(cand, meta, parse_rating(sub.output))

    @staticmethod
    async def _by_reward_model(cand: Candidate, query: Query, model: str, ctx: Any) -> Candidate:
        # The conversation a reward model was trained on: the query as the user's turn, the answer as
        # the assistant's; the server applies the model's own chat template. No prompt of ours.
        messages: tuple[Message, ...] = ({"role": "user", "content": query.text}, {"role": "assistant", "content": cand.text})
        comp = await ctx.reward(model, CompletionRequest(model=model, messages=messages, temperature=0.0, max_tokens=1))
        probs = [float(p) for p in json.loads(comp.texts[0])]
        value = probs[-1]  # one output: the reward's probability; a classifier's: its last class ("good")
        meta = {**cand.meta, "score_method": "reward_model", "reward": value, "reward_probs": probs}
        if 0.0 <= value <= 1.0:
            return cand.evolve(score=value, meta=meta)
        out = cand.evolve(score=1.0 / (1.0 + math.exp(-max(min(value, 700.0), -700.0))), meta=meta)
        return out.noted(f"score: the reward model returned {value:g}, outside [0, 1] (a raw reward); scored its logistic")

    @staticmethod
    def _from_rating(cand: Candidate, meta: dict[str, Any], rating: float | None) -> Candidate:
        if rating is None:
            return cand.evolve(score=None, meta=meta).noted("score: no 'Rating: [[0-10]]' in the judge's reply; left unscored")
        return cand.evolve(score=rating / 10, meta={**meta, "rating": rating})

    def _from_steps(self, cand: Candidate, meta: dict[str, Any], ratings: dict[int, float], steps: int) -> Candidate:
        if not ratings:
            return cand.evolve(score=None, meta=meta).noted("score: no 'Step N: [[0-10]]' ratings in the judge's reply; left unscored")
        value = ratings[max(ratings)] if self.config.aggregate == "last" else min(ratings.values())
        out = cand.evolve(score=value / 10, meta={**meta, "step_ratings": [ratings.get(i) for i in range(1, steps + 1)]})
        if len(ratings) < steps:
            out = out.noted(f"score: the judge rated {len(ratings)} of {steps} steps; scored on those")
        return out

    @staticmethod
    def _from_yes_no(cand: Candidate, meta: dict[str, Any], reply: str, comp: Completion) -> Candidate:
        answer, opens = parse_yes_no(reply)
        if answer is None:
            return cand.evolve(score=None, meta=meta).noted("score: the judge's reply starts with neither Yes nor No; left unscored")
        lps = comp.logprobs[0] if comp.logprobs else []
        if lps and opens:
            p = math.exp(lps[0])
            # Only the sampled token's logprob is kept (and cached), so the rest of the probability
            # counts as the other answer: exact when the judge's mass is on Yes and No.
            p_yes = p if answer else 1.0 - p
            return cand.evolve(score=p_yes, meta={**meta, "p_yes": p_yes, "score_source": "logprobs"})
        why = "the backend returned no logprobs" if not lps else "the answer is not the reply's first token"
        out = cand.evolve(score=1.0 if answer else 0.0, meta={**meta, "score_source": "text"})
        return out.noted(f"score fallback: {why}; scored the text's {'Yes' if answer else 'No'} as {out.score:.1f}")
