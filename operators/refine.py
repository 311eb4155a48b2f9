"""refine: answer -> feedback -> improved answer, up to ``rounds`` times per candidate.

Self-repair as in Self-Debug (Chen et al. 2023) and CodeCoT (Huang et al. 2023): the feedback is the
first failing test's output from the sandbox (``tests``), a verifier's reasoning (``verifier``) or a
judge's review and 1-10 rating (``judge``); a candidate stops as soon as its feedback is clean.

Feedback is model or sandbox output, so it is hostile text: it reaches the next prompt only through
``render`` (one pass, never rescanned), and what scores a version is the sandbox's or the feedback
call's verdict on it, never anything the candidate says about itself.
"""

from __future__ import annotations

__all__ = ["Feedback", "Refine", "RefineConfig", "as_comment", "parse_rating"]

import asyncio
import re
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pydantic import Field, model_validator

from archon.types import Candidate, Query
from backends.base import CompletionRequest, Usage
from operators.base import ModelCallConfig, Operator, build_request, placeholders, render
from operators.code_tests import build_program, entry_point_of
from operators.unit_test import find_tests, run_code_tests
from operators.verify import DEFAULT_PROMPT as VERIFY_PROMPT
from operators.verify import parse_verdict

#: Chat models: the whole exchange in words; the reply is the improved response. {program} is the
#: candidate itself, or for a code task the whole program it makes (a bare function body is not).
REPAIR_PROMPT = """The response below answers the query, but the feedback shows a problem with it. Write an improved, complete response that fixes the problem. If the response is code, reply with the whole corrected code only.

Query:
{query}

Response:
{program}

Feedback:
{feedback}

Improved response:"""

#: Base models on code tasks: a file a base model can continue. The failing program, the feedback as
#: comments, then the task's own header again, so what the model writes next is a new body for it.
CODE_COMPLETION_PROMPT = """{program}

# The code above is wrong.
{feedback_comment}
# A corrected version:
{query}"""

#: Base models on other tasks: a document whose next part is the improved answer.
TEXT_COMPLETION_PROMPT = """Question: {query}

Draft answer: {candidate}

Review of the draft: {feedback}

Improved answer:"""

JUDGE_PROMPT = """Rate how well the response answers the query, from 1 (wrong or useless) to 10 (fully correct and complete). First point out its errors and omissions briefly, then on the last line write exactly "Rating: N".

Query:
{query}

Response:
{candidate}

Review:"""

_RATING = re.compile(r"rating\W{0,6}(10|[1-9])(?!\d)", re.IGNORECASE)


def parse_rating(text: str) -> int | None:
    """The last "Rating: N" (1-10) in a judge's reply; None when there is none."""
    found = _RATING.findall(text)
    return int(found[-1]) if found else None


def as_comment(text: str) -> str:
    """``text`` as Python comment lines: every line starts with '#', so no feedback line can become code."""
    return "\n".join(f"# {ln}" if ln.strip() else "#" for ln in text.splitlines()) or "#"


@dataclass(frozen=True)
class Feedback:
    """What one check of one version found: clean (stop here), a score to compare versions by, and
    the text the next repair prompt reads."""

    clean: bool
    score: float
    text: str
    note: str | None = None
    detail: dict[str, Any] | None = None  # tests: passed, total, status
    usage: Usage = field(default_factory=Usage)


class RefineConfig(ModelCallConfig):
    model: str = Field(..., description="'<backend>/<model>' that writes the improved versions.")
    rounds: int = Field(default=2, ge=1, le=10, description="Most repairs per candidate (fewer when the feedback is clean sooner).")
    feedback: Literal["tests", "verifier", "judge"] = Field(
        default="tests", description="tests: the first failing test and its error, from the sandbox; verifier: a verifier's "
        "reasoning when its verdict is not 'correct'; judge: a review whose 1-10 rating is below 'threshold'.",
    )
    tests: Literal["auto", "inputs", "item", "doctest"] = Field(
        default="auto", description="feedback 'tests': where the tests come from, as unit_test's 'tests' (no 'model': put a "
        "write_tests node among the inputs); 'auto' tries inputs, item, doctest.",
    )
    timeout: float = Field(default=10.0, gt=0, le=300, description="feedback 'tests': seconds of sandbox time per version checked.")
    critic: str | None = Field(default=None, description="'<backend>/<model>' of the verifier or judge; default: 'model'.")
    threshold: int = Field(default=8, ge=1, le=10, description="feedback 'judge': the lowest rating that counts as clean.")
    keep: Literal["best", "last"] = Field(
        default="best", description="best: the version its feedback scored highest (ties: the latest), which costs one more "
        "verifier/judge call to score the last repair; last: the last repair, as Self-Debug does.",
    )
    feedback_temperature: float = Field(default=0.0, ge=0, le=2, description="Sampling temperature of the verifier or judge.")
    prompt: str | None = Field(
        default=None, description="Repair template: {query}, {candidate}, {program} (the runnable code), {feedback}, "
        "{feedback_comment} (the feedback as # comment lines). Default: by mode and task (see the README).",
    )
    feedback_prompt: str | None = Field(default=None, description="Verifier or judge template: {query}, {candidate}. Default: verify's or a 1-10 rating.")

    @model_validator(mode="after")
    def _prompts_read_their_inputs(self):
        if self.prompt is not None and not placeholders(self.prompt) & {"feedback", "feedback_comment"}:
            raise ValueError("'prompt' must contain {feedback} or {feedback_comment}: the repair has to see what was wrong")
        if self.feedback_prompt is not None and "candidate" not in placeholders(self.feedback_prompt):
            raise ValueError("'feedback_prompt' must contain {candidate}: the verifier or judge has to see the version it checks")
        return self

    def checker(self) -> str:
        return self.critic or self.model

    def model_refs(self) -> list[str]:
        return list(dict.fromkeys([self.model, self.checker()] if self.feedback != "tests" else [self.model]))


class Refine(Operator[RefineConfig]):
    """Repairs each candidate from feedback on it, independently and concurrently; output in input order.

    Cost: ``tests``: at most ``rounds`` repair calls per candidate (the sandbox is free); ``verifier``
    and ``judge``: a check before each repair, plus one of the last repair with ``keep: best``.
    Fallback: with no tests to run, candidates pass through unchanged with a note; a verifier reply
    without a verdict, or a judge reply without a rating, counts as not clean (noted).
    """

    kind = "refine"
    summary = "Repair each candidate from feedback (failing tests, a verifier, a judge), up to 'rounds' times."

    def call_bound(self, fan_in: int) -> tuple[int, int]:
        """Per candidate: ``rounds`` repairs, plus for verifier/judge a check before each (and after the last, keep best)."""
        cfg = self.config
        checks = 0 if cfg.feedback == "tests" else cfg.rounds + (cfg.keep == "best")
        return fan_in * (cfg.rounds + checks), fan_in

    async def __call__(self, inputs: list[Candidate], query: Query, ctx) -> list[Candidate]:
        cfg = self.config
        test_nodes = [c for c in inputs if c.meta.get("kind") == "tests"]
        cands = [c for c in inputs if c.meta.get("kind") != "tests"]
        tests: list[dict[str, Any]] = []
        if cfg.feedback == "tests":
            order = ["inputs", "item", "doctest"] if cfg.tests == "auto" else [cfg.tests]
            tests, source = await find_tests(order, test_nodes, query)
            if not tests:
                note = "refine fallback: no tests found (none given, none in the item or prompt); candidates unchanged"
                return [c.noted(note) for c in cands]
            used = f"refine tests: {len(tests)} from {source}"
            cands = [c.noted(used) for c in cands]
        return list(await asyncio.gather(*(self._refine(i, len(cands), c, tests, query, ctx) for i, c in enumerate(cands))))

    async def _refine(self, index: int, fan: int, cand: Candidate, tests: list[dict[str, Any]], query: Query, ctx) -> Candidate:
        """One candidate's rounds: check, and while not clean and rounds remain, repair and check again."""
        cfg = self.config
        versions: list[tuple[str, Feedback | None]] = [(cand.text, await self._check(cand.text, tests, query, ctx))]
        usage = cand.usage
        for r in range(cfg.rounds):
            text, fb = versions[-1]
            assert fb is not None  # only the last version may go unchecked
            if fb.clean:
                break
            prompt = self._repair_prompt(text, fb, query)
            # Sample index + round x candidates: two candidates of equal text get independent repairs, and
            # a repair that returned its input unchanged is not replayed from the cache in the next round.
            sample = index + r * fan
            comp = await ctx.complete(cfg.model, build_request(cfg, cfg.model, prompt, samples=(sample,)))
            new = comp.texts[0]
            usage += comp.usage
            unchecked = r == cfg.rounds - 1 and cfg.keep == "last" and cfg.feedback != "tests"
            versions.append((new, None if unchecked else await self._check(new, tests, query, ctx)))
        checked = [(k, fb) for k, (_, fb) in enumerate(versions) if fb is not None]
        kept = len(versions) - 1 if cfg.keep == "last" else max(checked, key=lambda kf: (kf[1].score, kf[0]))[0]
        final = versions[kept][1]
        history = [fb for _, fb in versions if fb is not None]
        meta = {**cand.meta, "refine": {
            "rounds_used": len(versions) - 1, "kept": kept, "clean": None if final is None else final.clean,
            "feedback": [fb.text for fb in history], "scores": [fb.score for fb in history],
        }}
        if final is not None and final.detail is not None:
            meta["tests"] = final.detail
        out = cand.evolve(text=versions[kept][0], meta=meta, usage=usage + sum((fb.usage for fb in history), Usage()),
                          score=cand.score if final is None else final.score)
        if kept:
            out = out.evolve(node=self.node_id, model=cfg.model)
        for note in dict.fromkeys(fb.note for fb in history if fb.note):
            out = out.noted(note)
        return out

    def _repair_prompt(self, text: str, fb: Feedback, query: Query) -> str:
        cfg = self.config
        code_task = entry_point_of(query) is not None
        default = REPAIR_PROMPT if cfg.mode == "chat" else (CODE_COMPLETION_PROMPT if code_task else TEXT_COMPLETION_PROMPT)
        program = build_program(text, query) if code_task else text
        return render(cfg.prompt or default, query=query.text, candidate=text, program=program.rstrip("\n"),
                      feedback=fb.text, feedback_comment=as_comment(fb.text))

    async def _check(self, text: str, tests: list[dict[str, Any]], query: Query, ctx) -> Feedback:
        cfg = self.config
        if cfg.feedback == "tests":
            r = await run_code_tests(text, tests, query, cfg.timeout)
            detail = {k: r[k] for k in ("passed", "total", "status")}
            clean = r["status"] == "passed"
            summary = f"{r['passed']} of {r['total']} tests passed."
            body = "" if clean else f" The first failing test:\n{r.get('failure') or r.get('error') or 'no detail'}"
            return Feedback(clean, r["passed"] / r["total"] if r["total"] else 0.0, summary + body, detail=detail)
        model = cfg.checker()
        template = cfg.feedback_prompt or (VERIFY_PROMPT if cfg.feedback == "verifier" else JUDGE_PROMPT)
        req = _unstopped(build_request(cfg, model, render(template, query=query.text, candidate=text),
                                       temperature=cfg.feedback_temperature))
        comp = await ctx.complete(model, req)
        reply = comp.texts[0].strip()
        if cfg.feedback == "verifier":
            verdict = parse_verdict(reply)
            note = None if verdict is not None else "refine: no verdict in the verifier's reply; counted as not clean"
            return Feedback(bool(verdict), float(bool(verdict)), reply, note=note, usage=comp.usage)
        rating = parse_rating(reply)
        note = None if rating is not None else "refine: no 'Rating: N' in the judge's reply; counted as not clean"
        return Feedback(rating is not None and rating >= cfg.threshold, (rating or 0) / 10, reply, note=note, usage=comp.usage)


def _unstopped(req: CompletionRequest) -> CompletionRequest:
    """The check's request without the repair's stop sequences: a code stop such as "\\n#" would cut a
    verifier's reasoning before its verdict."""
    return replace(req, stop=())
