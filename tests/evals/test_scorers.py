"""Scorers on real benchmark items, with answers in the shapes models really produce; the judge on
the test doubles; user scorers by path."""

from __future__ import annotations

import pytest

from archon import CompiledPipeline, Pipeline, Runtime
from archon.evals import Item, Score, ScoreContext, get_scorer, load_benchmark, register_scorer, scorer_names
from archon.evals.scorers import extract_choice, extract_number, normalize_answer, token_f1
from archon.exceptions import ConfigError
from backends.doubles import FunctionBackend


def item_of(name: str, item_id: str) -> Item:
    return next(it for it in load_benchmark(name).items if it.id == item_id)


async def values(name: str, item: Item, outputs: list[str], ctx: ScoreContext | None = None) -> list[float]:
    scorer = get_scorer(name)
    return [(await scorer(o, item, ctx or ScoreContext())).value for o in outputs]


async def test_gsm8k_number_formats(data_dir):
    big = item_of("gsm8k", "gsm8k-test-2")  # 70000
    right = ["The answer is 70,000.", "He made a profit of $70,000.00", "so \\boxed{70000}", "**Answer:** $70000",
             "120,000 + 80,000 = 200,000 and 200,000 - 130,000 = 70,000\nThe answer is 70000"]
    assert await values("number", big, right) == [1.0] * len(right)
    assert await values("number", big, ["The answer is 7000.", "\\boxed{70001}", "It is 7,000 dollars."]) == [0, 0, 0]
    small = item_of("gsm8k", "gsm8k-test-168")  # 18
    assert await values("number", small, ["$18", "\\boxed{18}", "She makes 9 * 2 = 18 dollars.", "\\boxed{\\$18}"]) == [1.0] * 4
    score = await get_scorer("number")("I cannot tell.", small, ScoreContext())
    assert score == Score(0.0, None, "no number in the output")


def test_extract_number():
    assert extract_number("The answer is 1,234.") == "1234"
    assert extract_number("\\boxed{\\frac{3}{4}}") == "0.75"
    assert extract_number("the answer is -5 apples, not 3") == "-5"
    assert extract_number("nothing") is None


@pytest.mark.parametrize(
    ("item_id", "right", "wrong"),
    [
        ("test/counting_and_probability/282.json",  # \frac{1}{2}
         ["\\boxed{0.5}", "\\boxed{\\dfrac12}", "\\boxed{\\frac{1}{2}}", "The final answer is $\\frac12$.", "so the answer is 1/2"],
         ["\\boxed{\\frac{1}{3}}", "\\boxed{0.25}"]),
        ("test/precalculus/807.json", ["\\boxed{(3, \\frac{\\pi}{2})}", "\\boxed{\\left(3,\\pi/2\\right)}"], ["\\boxed{(3, \\pi)}"]),
        ("test/algebra/2036.json", ["\\boxed{3\\sqrt{13}}", "\\boxed{\\sqrt{117}}"], ["\\boxed{13\\sqrt{3}}"]),
        ("test/geometry/826.json", ["\\boxed{\\frac{9}{5}}", "\\boxed{1.8}", "\\boxed{1\\frac{4}{5}}"], ["\\boxed{\\frac{4}{5}}"]),
        ("test/precalculus/819.json", ["\\boxed{C}", "\\boxed{\\text{(C)}}"], ["\\boxed{D}"]),  # \text{(C)}
        ("test/algebra/1349.json", ["\\boxed{Evelyn}", "\\boxed{\\text{Evelyn}}"], ["\\boxed{Bob}"]),  # plain-string fallback
        ("test/prealgebra/1044.json", ["\\boxed{5.4}", "\\boxed{5.4 \\text{ cents}}"], ["\\boxed{5.5}"]),
    ],
)
async def test_math500_equivalent_forms(data_dir, item_id, right, wrong):
    item = item_of("math500", item_id)
    assert await values("math", item, right) == [1.0] * len(right)
    assert await values("math", item, wrong) == [0.0] * len(wrong)


async def test_math_unparseable_scores_zero(data_dir):
    item = item_of("math500", "test/counting_and_probability/282.json")
    score = await get_scorer("math")("Let me think about it. Hmm.", item, ScoreContext())
    assert score.value == 0 and "boxed" in score.detail
    score = await get_scorer("math")("\\boxed{\\frac{", item, ScoreContext())  # unbalanced: no boxed answer at all
    assert score.value == 0 and score.detail


async def test_mbpp_code(data_dir):
    item = item_of("mbpp", "mbpp/11")
    canonical = item.data["code"]
    wrong = "def remove_Occ(s, ch):\n    return s.replace(ch, '', 1)\n"
    fenced = f"Here is the function:\n\n```python\n{canonical}\n```\nIt removes the first and last occurrence."
    completion = "s, ch):\n    i = s.find(ch)\n    s = s[:i] + s[i + 1:]\n    j = s.rfind(ch)\n    return s[:j] + s[j + 1:]\n"
    assert await values("code", item, [canonical, wrong, fenced, completion, "", "```python\ndef broken(:\n```"]) == [1, 0, 1, 1, 0, 0]
    score = await get_scorer("code")(wrong, item, ScoreContext())
    assert score.raw == {"passed": 0, "total": 3, "status": "failed"} and "0/3" in score.detail


async def test_mbpp_setup_code_runs_first():
    item = Item("t", "Use the constant.", None, {"entry_point": "f", "test_setup_code": "K = 41", "test_list": ["assert f() == 42"]})
    assert await values("code", item, ["def f():\n    return K + 1\n"]) == [1.0]


async def test_humaneval_code(data_dir):
    bench = load_benchmark("humaneval", limit=3)
    for item in bench.items:
        body = item.data["canonical_solution"]
        whole = f"```python\n{item.input}{body}```"  # a chat model's reply: the whole function, fenced
        assert await values("code", item, [body, whole, "    return None\n"]) == [1, 1, 0]


async def test_mmlu_choice_formats(data_dir):
    item = item_of("mmlu", "mixeval-mc-2")  # D: Vitamin D
    right = ["(D)", "The answer is D.", "D) Vitamin D", "Answer: d", "D", "Vitamin D", "A and B are wrong, so the answer is (D)."]
    assert await values("choice", item, right) == [1.0] * len(right)
    assert await values("choice", item, ["(B)", "The answer is A.", "Folic acid"]) == [0, 0, 0]
    score = await get_scorer("choice")("I am not sure.", item, ScoreContext())
    assert score.value == 0 and score.detail == "no choice letter in the output"


def test_extract_choice_respects_the_number_of_choices():
    assert extract_choice("E", ["a", "b", "c", "d"]) is None
    assert extract_choice("E", ["a", "b", "c", "d", "e"]) == "E"


async def test_hotpotqa_exact_and_f1(data_dir):
    item = item_of("hotpotqa", "5a8ce55f554299441c6b9f62")  # Tulsa
    assert await values("exact", item, ["Tulsa", "The answer is Tulsa.", "Answer: tulsa", "Tulsa, Oklahoma"]) == [1, 1, 1, 0]
    f1 = await values("f1", item, ["Tulsa", "Answer: Tulsa, Oklahoma", "Oklahoma City"])
    assert f1[0] == 1.0 and f1[1] == pytest.approx(2 / 3) and f1[2] == 0.0


def test_squad_normalization():
    assert normalize_answer("The  Beatles!") == "beatles"
    assert token_f1("the cat sat", "a cat sat down") == pytest.approx(0.8)
    assert token_f1("", "") == 1.0


async def test_exact_takes_any_of_several_references():
    item = Item("x", "q", ["NYC", "New York City"], {})
    assert await values("exact", item, ["new york city", "LA"]) == [1, 0]


# ---- the judge -----------------------------------------------------------------------------------

def judge_context(reply, *, baseline=None):
    backend = FunctionBackend(lambda req, k: reply(req.prompt_text()) if callable(reply) else reply)
    p = Pipeline("judge")
    p.add("verdict", "generate", model="fake/judge", temperature=0.0)
    runtime = Runtime(backends={"fake": backend}, store=False)
    return ScoreContext(runtime=runtime, judge=CompiledPipeline(p.build()), baseline=baseline), backend


async def test_judge_rating_is_normalized(data_dir):
    item = item_of("mt-bench", "mt-bench/81")
    ctx, backend = judge_context("The post is vivid and well organised.\n\nRating: [[8]]")
    score = await get_scorer("judge")("Aloha! My trip to Hawaii ...", item, ctx)
    assert score == Score(pytest.approx(7 / 9), 8.0, None)
    prompt = backend.requests[0].prompt_text()
    assert item.input in prompt and "Aloha! My trip to Hawaii" in prompt and "reference answer" not in prompt


async def test_judge_gets_the_reference_when_there_is_one(data_dir):
    item = item_of("mt-bench", "mt-bench/101")
    ctx, backend = judge_context("Rating: [[2]]")
    assert (await get_scorer("judge")("You are first.", item, ctx)).value == pytest.approx(1 / 9)
    assert item.reference in backend.requests[0].prompt_text()


async def test_judge_garbage_scores_zero_with_a_reason(data_dir):
    item = item_of("mt-bench", "mt-bench/81")
    for reply in ("I love it!", "Rating: [[11]]"):
        ctx, _ = judge_context(reply)
        score = await get_scorer("judge")("an answer", item, ctx)
        assert score.value == 0.0 and "Rating: [[7]]" in score.detail


async def test_judge_without_a_judge_pipeline_is_a_config_error():
    with pytest.raises(ConfigError, match="judge pipeline"):
        await get_scorer("judge")("x", Item("1", "q", None, {}), ScoreContext())
    assert get_scorer("judge").needs_judge and not getattr(get_scorer("exact"), "needs_judge", False)


async def test_pairwise_runs_both_orders(data_dir):
    item = item_of("vicuna-bench", "vicuna/1")
    baseline = {item.id: "Use a calendar."}

    def fair(prompt):  # prefers the answer that mentions priorities, wherever it stands
        a = prompt.split("[The start of assistant A's answer]")[1].split("[The end")[0]
        return "[[A]]" if "priorities" in a else "[[B]]"

    ctx, backend = judge_context(fair, baseline=baseline)
    ours = "Set priorities, block time and review weekly."
    score = await get_scorer("judge")(ours, item, ctx)
    assert score.value == 1.0 and score.raw == {"verdicts": ["A", "B"]} and len(backend.requests) == 2
    first, second = (r.prompt_text() for r in backend.requests)
    assert first.index(ours) < first.index("Use a calendar.") and second.index("Use a calendar.") < second.index(ours)

    biased, _ = judge_context("[[A]]", baseline=baseline)  # always prefers the first answer: cancels to a tie
    assert (await get_scorer("judge")(ours, item, biased)).value == 0.5
    tie, _ = judge_context("Both equal. [[C]]", baseline=baseline)
    assert (await get_scorer("judge")(ours, item, tie)).value == 0.5
    garbage, _ = judge_context("no idea", baseline=baseline)
    score = await get_scorer("judge")(ours, item, garbage)
    assert score.value == 0 and "[[A]]" in score.detail
    missing = await get_scorer("judge")(ours, Item("other", "q", None, {}), ctx)
    assert missing.value == 0 and "no baseline" in missing.detail


async def test_judge_prompts_hold_question_answers_and_reference_byte_for_byte():
    item = Item("j1", "Say {answer} and {question}", "ref {answer_a} {reference}", {})
    ours = "{question} {answer} {answer_a} {answer_b} {reference} {query} {context} \\1"
    base = "{answer_b} {answer} {query}"
    single, one = judge_context("Rating: [[5]]")
    assert (await get_scorer("judge")(ours, item, single)).value == pytest.approx(4 / 9)
    pair, two = judge_context("[[C]]", baseline={"j1": base})
    assert (await get_scorer("judge")(ours, item, pair)).value == 0.5
    for r in one.requests + two.requests:
        assert all(text in r.prompt_text() for text in (item.input, item.reference, ours))
    assert all(base in r.prompt_text() for r in two.requests)


# ---- user scorers ----------------------------------------------------------------------------------

def shorter_is_better(output, item, ctx):
    return 1.0 if len(output) < 10 else 0.0


async def async_flag(output, item, ctx):
    return output == item.reference


async def test_user_scorer_by_path_and_registered():
    item = Item("1", "q", "yes", {})
    assert await values("tests.evals.test_scorers:shorter_is_better", item, ["short", "much too long an answer"]) == [1, 0]
    register_scorer("flag", async_flag)
    assert await values("flag", item, ["yes", "no"]) == [1, 0] and "flag" in scorer_names()


def test_unknown_scorers_name_the_fix():
    with pytest.raises(ConfigError, match="Did you mean 'exact'.*Valid scorers"):
        get_scorer("exakt")
    with pytest.raises(ConfigError, match="cannot load 'nowhere.module:fn'"):
        get_scorer("nowhere.module:fn")
    with pytest.raises(ConfigError, match="not callable"):
        get_scorer("archon.evals.prompts:JUDGE_SINGLE")
