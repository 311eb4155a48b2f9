"""Unit tests: write tests for a query (``write_tests``) and score candidates by the tests they pass
(``unit_test``): code runs in the sandbox; for tasks that are not code, an LLM judges
natural-language checks (the original Archon's style)."""

from __future__ import annotations

__all__ = [
    "UnitTest",
    "UnitTestConfig",
    "WriteTests",
    "WriteTestsConfig",
    "code_output_signatures",
    "find_tests",
    "parse_nl_tests",
    "run_code_tests",
]

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal

from pydantic import Field, model_validator

from archon.exceptions import RunFailed
from archon.types import Candidate, Query
from operators.base import ModelCallConfig, Operator, abstention, build_request, render
from operators.code_tests import (build_program, doctest_tests, entry_point_of, example_inputs, extract_code, first_failure,
                                  item_test_field, item_tests, run_tests)
from operators.stdio_tests import run_stdio_tests

CODE_TESTS_PROMPT = """Write {n} Python assert statements that check a correct solution to the task below. Cover normal cases and edge cases. Output only the assert statements, one per line, nothing else.

Task:
{query}

Assert statements:"""

NL_TESTS_PROMPT = """Write {n} short, checkable requirements that a correct and complete answer to the query must meet. Output a numbered list, one requirement per line.

Query:
{query}

Requirements:"""

JUDGE_PROMPT = """Decide for each numbered requirement whether the response meets it. Answer with one line per requirement, in order, in the form "1: PASS" or "1: FAIL".

Query:
{query}

Response:
{candidate}

Requirements:
{tests}

Judgement:"""


def parse_nl_tests(text: str) -> list[str]:
    items = [m.strip() for m in re.findall(r"^\s*(?:\d+[.)]|[-*])\s+(.+)$", text, re.MULTILINE)]
    return [t for t in items if t]


def _parse_asserts(text: str) -> list[str]:
    from operators.code_tests import extract_code

    return [ln.strip() for ln in extract_code(text).splitlines() if ln.strip().startswith("assert ")]


class WriteTestsConfig(ModelCallConfig):
    model: str = Field(..., description="'<backend>/<model>' that writes the tests.")
    style: Literal["code", "nl"] = Field(default="code", description="'code': Python asserts; 'nl': natural-language checks judged by an LLM.")
    num_tests: int = Field(default=5, ge=1, le=50, description="How many tests to ask for.")
    temperature: float = Field(default=0.2, ge=0, le=2, description="Sampling temperature.")
    prompt: str | None = Field(default=None, description="Template: {query}, {n}.")

    def model_refs(self) -> list[str]:
        return [self.model]


class WriteTests(Operator[WriteTestsConfig]):
    """Writes tests for the query; its one candidate carries them (``meta.tests``) to ``unit_test``.

    Cost: one call. Fallback: a reply with no test in it gives an empty test list and a note.
    """

    kind = "write_tests"
    summary = "An LLM writes unit tests (Python asserts or natural-language checks) for the query."

    def call_bound(self, fan_in: int) -> tuple[int, int]:
        """One call; one candidate carrying the tests."""
        return 1, 1

    async def __call__(self, inputs: list[Candidate], query: Query, ctx) -> list[Candidate]:
        tests = await write_tests(self.config, self.config.model, query, ctx)
        text = "\n".join(t.get("code") or t.get("text", "") for t in tests)
        c = Candidate(text=text, node=self.node_id, model=self.config.model, meta={"kind": "tests", "tests": tests})
        return [c if tests else c.noted("write_tests fallback: no test found in the model's reply")]


async def write_tests(cfg: WriteTestsConfig | UnitTestConfig, model: str, query: Query, ctx) -> list[dict[str, Any]]:
    """The tests ``model`` (the config's, which a unit_test node may leave unset) writes for the query."""
    template = cfg.prompt if isinstance(cfg, WriteTestsConfig) and cfg.prompt else (CODE_TESTS_PROMPT if cfg.style == "code" else NL_TESTS_PROMPT)
    comp = await ctx.complete(model, build_request(cfg, model, render(template, query=query.text, n=cfg.num_tests)))
    if cfg.style == "code":
        return [{"kind": "assert", "code": a} for a in _parse_asserts(comp.texts[0])][: cfg.num_tests * 2]
    return [{"kind": "nl", "text": t} for t in parse_nl_tests(comp.texts[0])][: cfg.num_tests * 2]


class UnitTestConfig(ModelCallConfig):
    tests: Literal["auto", "inputs", "item", "doctest", "model"] = Field(
        default="auto",
        description="Where tests come from: 'inputs' (a write_tests node among the inputs), 'item' (the benchmark item's "
        "tests, when the benchmark shows them: MBPP's test_list, never HumanEval's test), 'doctest' (examples in the code "
        "prompt), 'model' (written now by 'model'); 'auto' tries them in that order.",
    )
    style: Literal["code", "nl"] = Field(default="code", description="'code': run in the sandbox; 'nl': an LLM judges each check.")
    model: str | None = Field(default=None, description="'<backend>/<model>' that writes tests (tests: model/auto) or judges nl checks.")
    num_tests: int = Field(default=5, ge=1, le=50, description="Tests to write when the model writes them.")
    top_k: int | None = Field(default=None, ge=1, description="Keep this many best candidates; default all, best first.")
    first_k: int | None = Field(
        default=None, ge=1, description="Stop once this many candidates pass every test (checked in input order, 'batch' at "
        "a time) and keep just those; when fewer pass, all are kept best first (the original Archon's evaluator).",
    )
    abstain: bool = Field(default=False, description="When no candidate passes every test, answer nothing (the run abstains, its "
                          "output empty and marked abstained) instead of keeping them all. Output node only.")
    batch: int = Field(default=4, ge=1, description="With first_k: candidates checked concurrently per wave (the most "
                       "wasted checks; 1 checks one at a time, as Archon does).")
    timeout: float = Field(default=10.0, gt=0, le=300, description="Seconds of sandbox time per candidate.")
    temperature: float = Field(default=0.0, ge=0, le=2, description="Sampling temperature of the test writer / judge.")

    @model_validator(mode="after")
    def _model_needed(self):
        if (self.tests == "model" or self.style == "nl") and not self.model and self.tests != "inputs":
            raise ValueError("set 'model' (it writes the tests, or judges natural-language checks)")
        return self

    def model_refs(self) -> list[str]:
        return [self.model] if self.model else []


class UnitTest(Operator[UnitTestConfig]):
    """Scores every candidate by the share of tests it passes; all-pass candidates first, then by
    score (ties keep input order); ``top_k`` kept. With ``first_k``, candidates are checked in input
    order, ``batch`` at a time, and checking stops once ``first_k`` pass every test: those are kept.

    Cost: code tests: no model call (sandbox runs, bounded in parallel), plus one call when the
    model writes the tests; nl checks: one judge call per candidate checked. Fallback: with no test
    available, candidates pass through unscored with a note; a judge reply that cannot be read
    scores that candidate 0 with a note. Every scored candidate also notes where its tests came from
    (source, count, and for ``item`` the query.data field), so selection by an item's tests is never silent.
    """

    kind = "unit_test"
    summary = "Run candidates against unit tests (sandbox) or LLM-judged checks; best first."

    def call_bound(self, fan_in: int) -> tuple[int, int]:
        """A test-writing call when the model may write them, plus a judge call per input when nl checks can occur."""
        cfg = self.config
        writes = int(cfg.model is not None and cfg.tests in ("model", "auto"))
        # nl checks come from the model (style 'nl') or from a write_tests input of style 'nl',
        # whatever this node's own style; judging them needs the model.
        judges = fan_in if cfg.model is not None and (cfg.style == "nl" or cfg.tests in ("inputs", "auto")) else 0
        kept = fan_in if cfg.top_k is None else min(fan_in, cfg.top_k)
        return writes + judges, kept if cfg.first_k is None else max(kept, min(fan_in, cfg.first_k))

    async def __call__(self, inputs: list[Candidate], query: Query, ctx) -> list[Candidate]:
        cfg = self.config
        test_nodes = [c for c in inputs if c.meta.get("kind") == "tests"]
        cands = [c for c in inputs if c.meta.get("kind") != "tests"]
        tests, source = await self._tests(test_nodes, query, ctx)
        if not tests:
            note = "unit_test fallback: no tests found (none given, none in the item or prompt); candidates unscored"
            return [c.noted(note) for c in cands][: cfg.top_k]
        used = _used_note(source, tests, query)
        if tests[0]["kind"] == "nl" and cfg.model is None:  # nl checks from an input pass the config check without a judge
            raise RunFailed(f"node '{self.node_id}': the natural-language checks from its inputs need a model to "
                            "judge each candidate against them: set 'model' on this unit_test node")
        size = cfg.batch if cfg.first_k is not None else max(len(cands), 1)  # without first_k: all at once
        scored: list[Candidate] = []
        passing: list[Candidate] = []
        for start in range(0, len(cands), size):
            wave = cands[start : start + size]
            results = await asyncio.gather(*(self._check(c, tests, query, ctx) for c in wave))
            for c, r in zip(wave, results):
                c = c.evolve(score=r["passed"] / r["total"] if r["total"] else 0.0,
                             meta={**c.meta, "tests": {**{k: r[k] for k in ("passed", "total", "status")}, "source": source}})
                scored.append((c.noted(r["note"]) if r.get("note") else c).noted(used))
            passing = [c for c in scored if c.score == 1.0]
            if cfg.first_k is not None and len(passing) >= cfg.first_k:
                return passing[: cfg.first_k]  # Archon's evaluator returns the first k that pass, in order
        if cfg.abstain and not passing:
            return [abstention(self.node_id, f"unit_test: none of {len(scored)} candidates passed every test; abstained")]
        order = sorted(range(len(scored)), key=lambda i: (scored[i].score != 1.0, -(scored[i].score or 0.0), i))
        return [scored[i] for i in order][: cfg.top_k]

    async def _check(self, cand: Candidate, tests: list[dict[str, Any]], query: Query, ctx) -> dict[str, Any]:
        """One candidate against the tests: an LLM judge (nl), whole programs (stdio), or asserts in the sandbox."""
        cfg = self.config
        if tests[0]["kind"] == "nl":
            assert cfg.model is not None
            return await self._judge(cand, tests, query, ctx, cfg.model)
        return await run_code_tests(cand.text, tests, query, cfg.timeout)

    async def _tests(self, test_nodes: list[Candidate], query: Query, ctx) -> tuple[list[dict[str, Any]], str]:
        cfg = self.config
        order = ["inputs", "item", "doctest", "model"] if cfg.tests == "auto" else [cfg.tests]
        model = cfg.model
        write = (lambda: write_tests(cfg, model, query, ctx)) if model else None
        return await find_tests(order, test_nodes, query, style=cfg.style, write=write)

    async def _judge(self, cand: Candidate, tests: list[dict[str, Any]], query: Query, ctx, model: str) -> dict[str, Any]:
        cfg = self.config
        listing = "\n".join(f"{i}. {t['text']}" for i, t in enumerate(tests, 1))
        prompt = render(JUDGE_PROMPT, query=query.text, candidate=cand.text, tests=listing)
        comp = await ctx.complete(model, build_request(cfg, model, prompt))
        verdicts = {int(n): v.upper() == "PASS" for n, v in re.findall(r"^\W*(\d+)\W+(PASS|FAIL)\b", comp.texts[0], re.MULTILINE | re.IGNORECASE)}
        passed = sum(verdicts.get(i, False) for i in range(1, len(tests) + 1))
        note = None if verdicts else "unit_test fallback: the judge's reply had no PASS/FAIL lines; scored 0"
        return {"passed": passed, "total": len(tests), "status": "passed" if passed == len(tests) else "failed", "note": note}


async def find_tests(
    order: Sequence[str], test_nodes: list[Candidate], query: Query, *, style: str = "code",
    write: Callable[[], Awaitable[list[dict[str, Any]]]] | None = None,
) -> tuple[list[dict[str, Any]], str]:
    """(tests, the source they came from) from the first source in ``order`` that has any, else
    ([], "none"). Sources: 'inputs' (the tests ``test_nodes`` carry), 'item', 'doctest' (code style
    only) and 'model' (``write`` writes them; skipped without it). ``unit_test`` and ``refine`` share it."""
    for source in order:
        if source == "inputs":
            tests = [t for c in test_nodes for t in c.meta.get("tests", [])]
        elif source == "item" and style == "code":
            tests = item_tests(query)
        elif source == "doctest" and style == "code":
            tests = doctest_tests(query.text, entry_point_of(query))
        elif source == "model" and write is not None:
            tests = await write()
        else:
            tests = []
        if tests:
            return tests, source
    return [], "none"


async def run_code_tests(text: str, tests: list[dict[str, Any]], query: Query, timeout: float) -> dict[str, Any]:
    """A candidate's text run against code tests in the sandbox: whole programs on stdin/stdout for
    ``stdio`` tests (CodeContests' public tests), else the program ``build_program`` makes. Returns
    ``run_tests``' dict: passed, total, status, error, and ``failure`` (the first failing test and why)."""
    if tests and tests[0]["kind"] == "stdio":
        r = await run_stdio_tests(extract_code(text), tests, timeout=timeout / len(tests))
        return {**r, "failure": first_failure(tests, r["results"], None if r["results"] else r["error"])}
    return await run_tests(build_program(text, query), tests, prompt=query.text, entry_point=entry_point_of(query), timeout=timeout)


def _used_note(source: str, tests: list[dict[str, Any]], query: Query) -> str:
    """The same text for every candidate of a node, so a run reports it once per node."""
    where = f"item field '{item_test_field(query.data)}'" if source == "item" else source
    return f"unit_test tests: {len(tests)} from {where}"


async def code_output_signatures(cands: list[Candidate], query: Query) -> list[str | None]:
    """For vote's 'code_outputs' extractor: each candidate's outputs on the test inputs, as one string."""
    tests = item_tests(query) or doctest_tests(query.text, entry_point_of(query))
    exprs = example_inputs(tests)
    if not exprs:
        return [None] * len(cands)
    ep = entry_point_of(query)
    results = await asyncio.gather(*(run_tests(build_program(c.text, query), [], prompt=query.text, entry_point=ep, exprs=exprs)
                                     for c in cands))
    return [None if r["outputs"] is None else "|".join(r["outputs"]) for r in results]
