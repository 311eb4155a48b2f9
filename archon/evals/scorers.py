"""Scorers: how good is a pipeline's output for one benchmark item?

A scorer is ``async (output, item, ctx) -> Score`` with ``Score.value`` in [0, 1]. Odd model output
never raises: a reply with no parseable answer scores 0 and says why in ``detail``. What does raise
is a misconfiguration (the judge scorer without a judge pipeline) and a judge run that failed; the
eval runner records that item as failed.

``get_scorer(name)`` resolves a name from the registry ``SCORERS`` (the entry-point group
``archon.scorers``, built-ins included, plus ``register_scorer``), or a "package.module:function" path. A user function may be sync or async and may return a ``Score``, a
number or a bool.
"""

from __future__ import annotations

__all__ = [
    "SCORERS",
    "Score",
    "ScoreContext",
    "Scorer",
    "extract_choice",
    "extract_number",
    "get_scorer",
    "normalize_answer",
    "parse_rating",
    "register_scorer",
    "scorer_names",
    "token_f1",
]

import asyncio
import collections
import inspect
import re
import string
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from archon.evals import prompts as P
from archon.evals.datasets import Item
from archon.exceptions import ConfigError
from archon.registry import Registry, load_target
from archon.types import Query
from operators.answers import extract, last_boxed, normalize_number
from operators.base import render
from operators.code_tests import build_program, item_tests, run_tests


@dataclass(frozen=True)
class Score:
    value: float            # in [0, 1]; 1 = correct
    raw: Any = None         # what was compared: the extracted answer, the judge's rating, tests passed
    detail: str | None = None


@dataclass
class ScoreContext:
    runtime: Any | None = None                # archon.context.Runtime, for judges
    judge: Any | None = None                  # a compiled judge pipeline (archon.runner.CompiledPipeline)
    baseline: dict[str, str] | None = None    # item id -> baseline answer: the judge compares pairwise
    code_timeout: float = 10.0                # seconds for one program's tests in the sandbox


class Scorer(Protocol):
    async def __call__(self, output: str, item: Item, ctx: ScoreContext) -> Score: ...


def _zero(why: str, raw: Any = None) -> Score:
    return Score(0.0, raw=raw, detail=why)


# ---- number ------------------------------------------------------------------------------------

_ANSWER_IS = re.compile(r"answer\s*(?:is|:|=)\s*:?\s*\**\s*\$?\s*\\?\$?\s*(-?\d[\d,]*(?:\.\d+)?(?:/\d+)?|-?\.\d+)", re.IGNORECASE)
_FRAC = re.compile(r"^\\[dt]?frac\{(-?\d+)\}\{(-?\d+)\}$|^\\[dt]?frac(\d)(\d)$")


def extract_number(text: str) -> str | None:
    """The final number: the last ``\\boxed{}``, else the last "answer is N", else the last number."""
    boxed = last_boxed(text)
    if boxed is not None:
        inner = re.sub(r"\\[!,;: ]|\\text\{[^}]*\}|\\%|%|\$|\\\$", "", boxed).strip()
        frac = _FRAC.match(inner.replace(" ", ""))
        if frac:
            a, b = (frac.group(1), frac.group(2)) if frac.group(1) else (frac.group(3), frac.group(4))
            return normalize_number(f"{a}/{b}")
        found = normalize_number(inner) or extract(inner, "last_number")
        if found is not None:
            return found
    hits = _ANSWER_IS.findall(text)
    if hits:
        n = normalize_number(hits[-1])
        if n is not None:
            return n
    return extract(text, "last_number")


def _same_number(a: str, b: str) -> bool:
    x, y = float(a), float(b)
    return abs(x - y) <= 1e-6 * max(1.0, abs(y))


async def score_number(output: str, item: Item, ctx: ScoreContext) -> Score:
    gold = normalize_number(str(item.reference)) if item.reference is not None else None
    if gold is None:
        return _zero(f"the reference {item.reference!r} is not a number")
    got = extract_number(output)
    if got is None:
        return _zero("no number in the output")
    return Score(1.0 if _same_number(got, gold) else 0.0, raw=got)


# ---- math --------------------------------------------------------------------------------------

_FINAL = re.compile(r"(?:final answer|the answer)\s*(?:is|:)\s*:?\s*(.+?)\s*(?:\.\s*$|$)", re.IGNORECASE | re.MULTILINE)


def _math_answer(text: str) -> str | None:
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed
    hits = _FINAL.findall(text)
    return hits[-1].strip().strip("$").strip() if hits else None


def _normalize_latex(s: str) -> str:
    s = re.sub(r"\\text\{([^}]*)\}|\\textbf\{([^}]*)\}|\\mbox\{([^}]*)\}", lambda m: next(g for g in m.groups() if g is not None), s)
    s = re.sub(r"\\[dt]frac", r"\\frac", s)
    s = re.sub(r"\\left|\\right|\\[!,;: ]|\$|\s+|\^\{?\\circ\}?|\\%|%", "", s)
    return s.rstrip(".").lower()


def _math_verify(gold: str, answer: str) -> bool | None:
    """math-verify's equivalence, or None when it could not parse one side."""
    try:
        from math_verify import parse, verify
    except ImportError as exc:
        raise ConfigError("the 'math' scorer needs math-verify: pip install 'math-verify>=0.5'") from exc
    # math-verify guards sympy with SIGALRM, which only works in the main thread.
    kw = {} if threading.current_thread() is threading.main_thread() else {"parsing_timeout": None}
    vkw = {} if not kw else {"timeout_seconds": None}
    try:
        g, a = parse(f"${gold}$", **kw), parse(f"${answer}$", **kw)
        if not g or not a:
            return None
        return bool(verify(g, a, **vkw))
    except Exception:  # math-verify raises on some inputs despite raise_on_error=False
        return None


async def score_math(output: str, item: Item, ctx: ScoreContext) -> Score:
    gold = str(item.reference or "").strip()
    if not gold:
        return _zero("the item has no reference answer")
    answer = _math_answer(output)
    if answer is None:
        return _zero("no \\boxed{} answer or 'final answer is ...' in the output")
    if _normalize_latex(answer) == _normalize_latex(gold):
        return Score(1.0, raw=answer)
    same = _math_verify(gold, answer)
    if same is None:
        return Score(0.0, raw=answer, detail="math-verify could not parse it; plain string comparison differs")
    return Score(1.0 if same else 0.0, raw=answer)


# ---- code --------------------------------------------------------------------------------------

def _code_prompt(item: Item) -> str:
    """What a completion continues: HumanEval's prompt, or for MBPP-style items the signature's start."""
    ep = item.data.get("entry_point")
    if not ep:
        return item.input
    if re.search(rf"^def\s+{re.escape(ep)}\s*\(", item.input, re.MULTILINE):
        return item.input
    return f"def {ep}("


async def score_code(output: str, item: Item, ctx: ScoreContext) -> Score:
    tests = item_tests(Query("", data=item.data))
    if not tests:
        return _zero("the item has no tests ('test' + 'entry_point', or 'test_list')")
    prompt = _code_prompt(item)
    program = build_program(output, Query(prompt, data=item.data))
    setup = item.data.get("test_setup_code")
    res = await run_tests(program, tests, prompt=prompt, setup=setup if isinstance(setup, str) else "",
                          entry_point=item.data.get("entry_point"), timeout=ctx.code_timeout)
    raw = {"passed": res["passed"], "total": res["total"], "status": res["status"]}
    ok = res["status"] == "passed"
    detail = None if ok else (res["error"] or f"{res['passed']}/{res['total']} tests passed")
    return Score(1.0 if ok else 0.0, raw=raw, detail=detail)


# ---- choice ------------------------------------------------------------------------------------

_LEADING = re.compile(r"^\s*\(?([A-J])(?:[.):]|\)?\s*$)")


def extract_choice(text: str, choices: list[str] | None = None) -> str | None:
    """The chosen letter: "The answer is B", "(B)", "Answer: b", "B) ...", a lone "B", or a choice's text."""
    valid = "ABCDEFGHIJ"[: len(choices)] if choices else "ABCDEFGHIJ"
    letter = extract(text, "choice")
    if letter is not None and letter in valid:
        return letter
    m = _LEADING.match(text)
    if m and m.group(1) in valid:
        return m.group(1)
    if choices:
        said = normalize_answer(text)
        named = [i for i, c in enumerate(choices) if normalize_answer(str(c)) == said]
        if len(named) == 1:
            return valid[named[0]]
    return None


async def score_choice(output: str, item: Item, ctx: ScoreContext) -> Score:
    gold = str(item.reference or "").strip().upper()
    choices = item.data.get("choices") if isinstance(item.data.get("choices"), list) else None
    got = extract_choice(output, choices)
    if got is None:
        return _zero("no choice letter in the output")
    return Score(1.0 if got == gold else 0.0, raw=got)


# ---- exact and F1 (SQuAD-style) -----------------------------------------------------------------

_ANSWER_LINE = re.compile(r"^\s*(?:final\s+)?answer\s*:\s*(.+?)\s*$|\bthe (?:final )?answer is:?\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)


def normalize_answer(s: str) -> str:
    """SQuAD's normalization: lower case, no punctuation, no articles, single spaces."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def _final_text(output: str) -> str:
    hits = _ANSWER_LINE.findall(output)
    if hits:
        a, b = hits[-1]
        return a or b
    return output.strip()


def token_f1(prediction: str, reference: str) -> float:
    pred, gold = normalize_answer(prediction).split(), normalize_answer(reference).split()
    if not pred or not gold:
        return float(pred == gold)
    common = sum((collections.Counter(pred) & collections.Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def _references(item: Item) -> list[str]:
    ref = item.reference
    return [str(r) for r in ref] if isinstance(ref, (list, tuple)) else ([] if ref is None else [str(ref)])


async def score_exact(output: str, item: Item, ctx: ScoreContext) -> Score:
    refs = _references(item)
    if not refs:
        return _zero("the item has no reference answer")
    got = _final_text(output)
    if not got:
        return _zero("empty output")
    return Score(float(any(normalize_answer(got) == normalize_answer(r) for r in refs)), raw=got)


async def score_f1(output: str, item: Item, ctx: ScoreContext) -> Score:
    refs = _references(item)
    if not refs:
        return _zero("the item has no reference answer")
    got = _final_text(output)
    return Score(max(token_f1(got, r) for r in refs), raw=got)


# ---- judge ---------------------------------------------------------------------------------------

_RATING = re.compile(r"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]")
_RATING_LOOSE = re.compile(r"rating\s*:?\s*\[?\s*(\d+(?:\.\d+)?)", re.IGNORECASE)
_VERDICT = re.compile(r"\[\[\s*([ABC])\s*\]\]")


def parse_rating(text: str) -> float | None:
    hits = _RATING.findall(text) or _RATING_LOOSE.findall(text)
    if not hits:
        return None
    value = float(hits[-1])
    return value if 1 <= value <= 10 else None


async def _ask_judge(ctx: ScoreContext, prompt: str, qid: str) -> str:
    if ctx.judge is None:  # score_judge refuses to start without one; this keeps the type checker as sure
        raise ConfigError("the 'judge' scorer needs a judge pipeline: pass ScoreContext(runtime=..., judge=CompiledPipeline(...)).")
    result = await ctx.judge.run(Query(prompt, id=qid), ctx.runtime)
    return result.output


async def score_judge(output: str, item: Item, ctx: ScoreContext) -> Score:
    if ctx.judge is None or ctx.runtime is None:
        raise ConfigError("the 'judge' scorer needs a judge pipeline: pass ScoreContext(runtime=..., judge=CompiledPipeline(...)).")
    if ctx.baseline is not None:
        return await _pairwise(output, item, ctx)
    fields = {"question": item.input, "answer": output, "reference": str(item.reference or "")}
    template = P.JUDGE_SINGLE_REFERENCE if item.reference else P.JUDGE_SINGLE
    reply = await _ask_judge(ctx, render(template, **fields), f"{item.id}#judge")
    rating = parse_rating(reply)
    if rating is None:
        return _zero(f"the judge gave no rating like 'Rating: [[7]]': {reply.strip()[:200]!r}")
    return Score((rating - 1) / 9, raw=rating)


async def _pairwise(output: str, item: Item, ctx: ScoreContext) -> Score:
    """Judge both orders (ours as A, then as B) and average, so a judge's position bias cancels out."""
    base = ctx.baseline.get(item.id) if ctx.baseline else None
    if base is None:
        return _zero(f"no baseline answer for item '{item.id}'")
    template = P.JUDGE_PAIR_REFERENCE if item.reference else P.JUDGE_PAIR
    common = {"question": item.input, "reference": str(item.reference or "")}
    first, second = await asyncio.gather(
        _ask_judge(ctx, render(template, **common, answer_a=output, answer_b=base), f"{item.id}#judge-ab"),
        _ask_judge(ctx, render(template, **common, answer_a=base, answer_b=output), f"{item.id}#judge-ba"),
    )
    verdicts = [(_VERDICT.findall(r) or [None])[-1] for r in (first, second)]
    ours = [{"A": 1.0, "B": 0.0, "C": 0.5}.get(verdicts[0]), {"A": 0.0, "B": 1.0, "C": 0.5}.get(verdicts[1])]
    parsed = [v for v in ours if v is not None]
    if not parsed:
        return _zero(f"the judge gave no verdict like '[[A]]', '[[B]]' or '[[C]]' in either order: {first.strip()[:120]!r}",
                     raw={"verdicts": verdicts})
    detail = None if len(parsed) == 2 else "one order gave no verdict; scored on the other"
    return Score(sum(parsed) / len(parsed), raw={"verdicts": verdicts}, detail=detail)


score_judge.needs_judge = True  # type: ignore[attr-defined]


# ---- lookup --------------------------------------------------------------------------------------
# The built-ins are declared in pyproject.toml's "archon.scorers" entry points, like a plug-in's.


def _check(name: str, obj: Any) -> Scorer:
    if not callable(obj):
        raise ConfigError(f"scorer '{name}': {obj!r} is not callable; a scorer is (output, item, ctx) -> Score.")
    return _adapt(obj, name)


#: Scorer names -> scorers, fed by the entry-point group ``archon.scorers``.
SCORERS: Registry[Scorer] = Registry("archon.scorers", "scorer", check=_check)


def register_scorer(name: str, fn: Callable[..., Any]) -> None:
    """Make ``fn`` available as scorer ``name`` (it may be sync and return a Score, a number or a bool);
    a name already registered is replaced, as a notebook re-running its cell expects."""
    SCORERS.register(name, fn, replace=True)


def scorer_names() -> list[str]:
    return SCORERS.names()


def get_scorer(name: str) -> Scorer:
    """A scorer by name (registered, or entry point ``archon.scorers``), or a "module:function" path."""
    if ":" in name and name not in SCORERS:
        return _check(name, load_target(name, f"scorer '{name}'"))
    try:
        return SCORERS.get(name)
    except ConfigError as exc:
        if name in SCORERS:  # it exists but cannot load: that message is the one to show
            raise
        raise ConfigError(f"{exc} Or give 'package.module:function'.") from None


def _adapt(fn: Callable[..., Any], name: str) -> Scorer:
    async def scorer(output: str, item: Item, ctx: ScoreContext) -> Score:
        result = fn(output, item, ctx)
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, Score):
            return result
        if isinstance(result, (bool, int, float)):
            return Score(float(result))
        raise TypeError(f"scorer '{name}' returned {type(result).__name__}; return a Score, a number in [0, 1] or a bool")

    scorer.needs_judge = getattr(fn, "needs_judge", False)  # type: ignore[attr-defined]
    if hasattr(fn, "aggregate"):  # the benchmark's official figure over all items (MT-Bench, Arena-Hard)
        scorer.aggregate = fn.aggregate  # type: ignore[attr-defined]
    return scorer
