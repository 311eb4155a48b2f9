"""beam: step-level search. Extend partial solutions one step at a time and keep the best by a
process reward (``score``'s ``process`` method), instead of sampling whole solutions and picking after.

- ``method: beam`` (Snell et al. 2024, "Scaling LLM Test-Time Compute Optimally", beam search against
  a PRM): the first step draws ``width x expansions`` steps from the empty solution; every later step
  extends each of the ``width`` best partial solutions with ``expansions`` next steps; all are scored
  and the best ``width`` are kept.
- ``method: particle`` (Puri et al. 2025, particle filtering over reasoning steps): the same steps
  and scores, but the ``width`` survivors are drawn at random, in proportion to softmax(score /
  ``resample_temperature``), so a partial solution the scorer underrates can still survive. The
  draws are seeded (``seed`` and the query), so a rerun replays the same search from the cache.

One generation request per partial solution per step (``n = expansions``) with ``step_delimiter`` as a
stop sequence, so each sample is one step; one process-score call per distinct new partial solution. A
step that matches ``done`` finishes its solution: a finished solution is set aside (it no longer takes
part in the search) and competes with the others at the end. A finished solution among the best
``width`` takes its place, so the search narrows as solutions finish and ends when none is left to
extend, or after ``max_steps``.
"""

from __future__ import annotations

__all__ = ["Beam", "BeamConfig"]

import asyncio
import math
import random
import re
from collections import Counter
from dataclasses import replace
from typing import Any, Literal

from pydantic import Field

from archon.types import Candidate, Query
from backends.base import CompletionRequest
from operators.base import ModelCallConfig, Operator, Regex, build_request, render
from operators.score import Score, ScoreConfig

CHAT_PROMPT = """Solve the problem step by step, one short paragraph per step. Below are the steps written so far (none at first). Write only the next step. When a step gives the final answer, end it with "The answer is <answer>".

Problem:
{query}

Steps so far:
{partial}

Next step:"""

#: Completion mode: the query, then the solution so far, each step followed by the delimiter, so a base
#: model continues it with the next step.
COMPLETION_PROMPT = "{query}\n\n{partial}"

DEFAULT_DONE = r"[Tt]he (?:final )?answer is|\\boxed\{"


class BeamConfig(ModelCallConfig):
    model: str = Field(..., description="'<backend>/<model>' of the generator that writes the steps.")
    prompt: str | None = Field(
        default=None, description="Template of each step's request: {query}, {partial} (the steps so far, each followed by the "
        "step delimiter in completion mode), {context} (the input candidates' texts). Default: a 'write the next step' "
        "instruction in chat mode, '{query}\\n\\n{partial}' in completion mode.",
    )
    method: Literal["beam", "particle"] = Field(
        default="beam", description="beam: keep the 'width' best-scored partial solutions; particle: draw 'width' of them at "
        "random in proportion to softmax(score / resample_temperature) (particle filtering).",
    )
    width: int = Field(default=4, ge=1, le=64, description="Partial solutions kept (beams, or particles) after each step.")
    expansions: int = Field(default=4, ge=1, le=64, description="Next steps sampled per kept partial solution per step (the first "
                            "step samples width x expansions from the empty solution).")
    max_steps: int = Field(default=6, ge=1, le=64, description="Most steps per solution; unfinished solutions stop here.")
    step_delimiter: str = Field(default="\n\n", min_length=1, description="What ends a step: sent as a stop sequence, so each sample is "
                                "one step, and placed between the steps of a solution.")
    done: Regex = Field(default=DEFAULT_DONE, description="A regular expression: a step it matches finishes its solution "
                        "(default: 'The answer is' or '\\boxed{').")
    keep: int = Field(default=1, ge=1, description="Solutions output, best score first.")
    scorer: str | None = Field(default=None, description="'<backend>/<model>' of the process scorer (score's process method); "
                               "default: the generator.")
    scorer_prompt: str | None = Field(default=None, description="The scorer's template, as score's process prompt: {query}, "
                                      "{steps} (numbered), {candidate}.")
    scorer_mode: Literal["chat", "completion"] | None = Field(default=None, description="The scorer's mode (default: 'mode').")
    aggregate: Literal["last", "min"] = Field(default="last", description="A partial solution's score: its last step's rating, or its weakest step's.")
    resample_temperature: float = Field(default=1.0, gt=0, description="particle: the softmax temperature of the resampling "
                                        "weights (lower favours the best-scored more).")
    seed: int = Field(default=0, description="particle: seeds the resampling (with the query), so reruns replay from the cache.")
    max_tokens: int = Field(default=256, ge=1, description="Most tokens per step.")

    def scorer_model(self) -> str:
        return self.scorer or self.model

    def model_refs(self) -> list[str]:
        return [self.model] if self.scorer_model() == self.model else [self.model, self.scorer_model()]


class Beam(Operator[BeamConfig]):
    """Step-level search over partial solutions, scored step by step by a process reward prompt.

    Output: the finished solutions, best score first (``keep`` of them), each with ``meta.steps`` (its
    number of steps), ``meta.finished``, ``meta.step_ratings`` and ``score``. Fallbacks: a partial
    solution the scorer does not rate ranks last (with none rated, the search keeps them in the order
    sampled), noted; nothing finished by ``max_steps`` -> the best unfinished solutions, noted.
    """

    kind = "beam"
    summary = "Step-level search: extend partial solutions step by step, keep the best by a process reward (beam search or particle filtering)."

    def __init__(self, node_id: str, config: BeamConfig):
        super().__init__(node_id, config)
        cfg = config
        self._scorer = Score(node_id, ScoreConfig(model=cfg.scorer_model(), method="process", aggregate=cfg.aggregate,
                                                  prompt=cfg.scorer_prompt, mode=cfg.scorer_mode or cfg.mode))

    def call_bound(self, fan_in: int) -> tuple[int, int]:
        """Step 1: one request (width x expansions samples); each later step one request per kept partial
        solution; every step one score call per new partial solution (at most width x expansions)."""
        cfg = self.config
        requests = 1 + (cfg.max_steps - 1) * cfg.width
        return requests + cfg.max_steps * cfg.width * cfg.expansions, cfg.keep

    async def __call__(self, inputs: list[Candidate], query: Query, ctx: Any) -> list[Candidate]:
        cfg = self.config
        context = "\n\n".join(c.text for c in inputs)
        rng = random.Random(f"{cfg.seed}:{query.text}")
        live: Counter[tuple[str, ...]] = Counter({(): cfg.width})  # partial solution -> copies (particles may repeat)
        ranked: list[Candidate] = []
        finished: dict[tuple[str, ...], Candidate] = {}
        unscored = total = 0
        for _ in range(cfg.max_steps):
            children = await self._expand(live, query, context, ctx)
            if not children:
                break
            distinct = list(dict.fromkeys(children))  # the same partial solution twice is scored once
            scored = await asyncio.gather(*(self._score(steps, query, ctx) for steps in distinct))
            by_steps = dict(zip(distinct, scored))
            total += len(scored)
            unscored += sum(c.score is None for c in scored)
            for steps, cand in by_steps.items():
                if cand.meta["finished"]:
                    finished.setdefault(steps, cand)
            chosen = self._select(scored if cfg.method == "beam" else [by_steps[s] for s in children], rng)
            live = Counter(tuple(c.meta["step_texts"]) for c in chosen if not c.meta["finished"])
            ranked = _best_first(scored)  # the last step's partial solutions: what is left when none finishes
            if not live:
                break
        return self._output(list(finished.values()), ranked, unscored, total)

    async def _expand(self, live: Counter[tuple[str, ...]], query: Query, context: str, ctx: Any) -> list[tuple[str, ...]]:
        """Every live partial solution's next steps, one request each for ``copies x expansions`` samples:
        the empty solution starts with ``width`` copies, and a particle drawn ``c`` times gets ``c`` copies,
        so its copies take distinct sample indices instead of replaying each other's cached steps."""
        cfg = self.config
        parents = list(live)
        comps = await asyncio.gather(*(ctx.complete(cfg.model, self._request(p, live[p] * cfg.expansions, query, context)) for p in parents))
        children = []
        for parent, comp in zip(parents, comps):
            for text in comp.texts:
                # A server that ignores the stop sequence still yields one step: the text up to the delimiter.
                step = text.lstrip().split(cfg.step_delimiter, 1)[0].strip()
                if step:  # an empty step (the model wrote the delimiter at once) extends nothing
                    children.append((*parent, step))
        return children

    def _request(self, steps: tuple[str, ...], n: int, query: Query, context: str) -> CompletionRequest:
        cfg = self.config
        d = cfg.step_delimiter
        partial = "".join(s + d for s in steps) if cfg.mode == "completion" else d.join(steps)
        template = cfg.prompt or (COMPLETION_PROMPT if cfg.mode == "completion" else CHAT_PROMPT)
        req = build_request(cfg, cfg.model, render(template, query=query.text, partial=partial, context=context), samples=tuple(range(n)))
        return replace(req, stop=(*req.stop, d))

    async def _score(self, steps: tuple[str, ...], query: Query, ctx: Any) -> Candidate:
        cfg = self.config
        cand = Candidate(text=cfg.step_delimiter.join(steps), node=self.node_id, model=cfg.model,
                         meta={"steps": len(steps), "step_texts": list(steps), "finished": re.search(cfg.done, steps[-1]) is not None})
        return await self._scorer.score_one(cand, query, ctx, steps=list(steps))

    def _select(self, children: list[Candidate], rng: random.Random) -> list[Candidate]:
        """The partial solutions kept: the best ``width`` (beam: ``children`` are distinct), or ``width``
        draws from all of them (particle: a step sampled twice is twice as likely to be drawn)."""
        cfg = self.config
        if cfg.method == "beam":
            return _best_first(children)[: cfg.width]
        scores = [c.score for c in children]
        if all(s is None for s in scores):
            weights = [1.0] * len(children)  # nothing to prefer: uniform
        else:
            top = max(s for s in scores if s is not None)
            weights = [0.0 if s is None else math.exp((s - top) / cfg.resample_temperature) for s in scores]
        return rng.choices(children, weights=weights, k=cfg.width)

    def _output(self, finished: list[Candidate], ranked: list[Candidate], unscored: int, total: int) -> list[Candidate]:
        cfg = self.config
        out = _best_first(finished)[: cfg.keep]
        notes = []
        if not out:
            out = ranked[: cfg.keep]
            notes.append(f"beam: no solution finished within {cfg.max_steps} steps (no step matched 'done'); kept the best partial")
        if unscored:
            notes.append(f"beam: the scorer rated none of the steps of {unscored} of {total} partial solutions; those ranked last")
        result = []
        for c in out:
            meta = {k: v for k, v in c.meta.items() if k != "step_texts"}
            c = c.evolve(meta={**meta, "method": cfg.method})
            for note in notes:
                c = c.noted(note)
            result.append(c)
        return result


def _best_first(cands: list[Candidate]) -> list[Candidate]:
    # sorted() is stable: equal scores keep the order sampled, unscored ones come last.
    return sorted(cands, key=lambda c: -c.score if c.score is not None else math.inf)
