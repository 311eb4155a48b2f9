"""Prompt templates for the built-in benchmarks and for the LLM judge.

Each benchmark has two templates: ``chat`` for instruction-following models, which asks for the
answer in a form the scorer parses ("The answer is N.", ``\\boxed{}``, a letter, a code block), and
``completion`` for base models, which shows the format instead of asking for it (a few solved
examples, or the start of the code to complete). The few-shot examples are written for Archon and
are not taken from any benchmark, so they cannot leak test items.

Placeholders are ``{input}``, ``{choices}`` (a lettered list) and any string field of the item
(``{entry_point}``, ``{test_list}`` as one assert per line, ...); every other brace is left alone,
so LaTeX and code need no escaping.
"""

from __future__ import annotations

__all__ = [
    "GSM8K",
    "MATH",
    "MULTIPLE_CHOICE",
    "HUMANEVAL",
    "MBPP",
    "HOTPOTQA",
    "OPEN_ENDED",
    "DEFAULT_COMPLETION",
    "NUMBER_QA",
    "SHORT_QA",
    "JUDGE_SINGLE",
    "JUDGE_SINGLE_REFERENCE",
    "JUDGE_PAIR",
    "JUDGE_PAIR_REFERENCE",
    "PromptSet",
    "fewshot_examples",
]

from dataclasses import dataclass

from operators.base import render


@dataclass(frozen=True)
class PromptSet:
    chat: str
    completion: str
    # Where a base model should stop: the start of the next few-shot example, or of the next function.
    stop: tuple[str, ...] = ()


# A base model continues the pattern, so the few-shot answers end exactly the way the scorer reads.
GSM8K = PromptSet(
    chat=(
        "Solve the following math word problem. Reason step by step, then finish with a line of the form "
        '"The answer is N." where N is a number.\n\n{input}'
    ),
    completion=(
        "Question: A baker makes 24 muffins in the morning and 18 in the afternoon. She sells 30 of them. "
        "How many muffins are left?\n"
        "Answer: She makes 24 + 18 = 42 muffins. After selling 30 she has 42 - 30 = 12 left. The answer is 12.\n\n"
        "Question: Tom reads 15 pages a day. How many days does he need to finish a 120-page book?\n"
        "Answer: He needs 120 / 15 = 8 days. The answer is 8.\n\n"
        "Question: A shirt costs $20 and is sold at 25% off. What is the sale price in dollars?\n"
        "Answer: The discount is 0.25 * 20 = 5 dollars, so the price is 20 - 5 = 15 dollars. The answer is 15.\n\n"
        "Question: Maria has 3 boxes with 6 pencils in each. She gives 4 pencils to her brother. "
        "How many pencils does she have now?\n"
        "Answer: She has 3 * 6 = 18 pencils, and 18 - 4 = 14 remain. The answer is 14.\n\n"
        "Question: {input}\nAnswer:"
    ),
    stop=("\n\nQuestion:", "\nQuestion:"),
)

MATH = PromptSet(
    chat="Solve the following math problem. Show your reasoning, then put the final answer in \\boxed{}.\n\n{input}",
    completion=(
        "Problem: What is the value of $3^2 + 4^2$?\n"
        "Solution: $3^2 + 4^2 = 9 + 16 = 25$. The final answer is $\\boxed{25}$.\n\n"
        "Problem: Solve for $x$: $2x + 5 = 17$.\n"
        "Solution: Subtracting 5 from both sides gives $2x = 12$, so $x = 6$. The final answer is $\\boxed{6}$.\n\n"
        "Problem: Write $\\frac{6}{8}$ in lowest terms.\n"
        "Solution: Dividing the numerator and the denominator by 2 gives $\\frac{3}{4}$. "
        "The final answer is $\\boxed{\\frac{3}{4}}$.\n\n"
        "Problem: {input}\nSolution:"
    ),
    stop=("\n\nProblem:", "\nProblem:"),
)

MULTIPLE_CHOICE = PromptSet(
    chat=(
        "Answer the following multiple-choice question.\n\n{input}\n\n{choices}\n\n"
        'Think briefly, then answer with the letter of the correct choice in the form "The answer is X."'
    ),
    completion=(
        "Question: Which planet is known as the Red Planet?\nA. Venus\nB. Mars\nC. Jupiter\nD. Saturn\nAnswer: B\n\n"
        "Question: What gas do plants take in from the air to make their food?\nA. Oxygen\nB. Nitrogen\n"
        "C. Carbon dioxide\nD. Helium\nAnswer: C\n\n"
        "Question: Where would you keep milk so that it stays cold?\nA. oven\nB. closet\nC. mailbox\n"
        "D. refrigerator\nE. garage\nAnswer: D\n\n"
        "Question: {input}\n{choices}\nAnswer:"
    ),
    stop=("\n",),
)

# HumanEval's prompt is the start of a Python file: a base model simply completes it.
HUMANEVAL = PromptSet(
    chat=(
        "Complete the following Python function. Reply with the whole function, signature included, "
        "in one ```python code block.\n\n```python\n{input}```"
    ),
    completion="{input}",
    stop=("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#", "\n```"),
)

# MBPP's convention shows the test asserts with the task. For a base model the task and tests go in
# a module docstring and the prompt ends inside the signature, so the completion is the function.
MBPP = PromptSet(
    chat=(
        "{input}\nYour code should pass these tests:\n\n{test_list}\n\n"
        "Reply with the Python code in one ```python code block."
    ),
    completion='"""{input}\n\nIt must pass these tests:\n{test_list}\n"""\n\n\ndef {entry_point}(',
    stop=("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\nassert ", "\n#", "\n```"),
)

HOTPOTQA = PromptSet(
    chat=(
        "Answer the question with a short phrase: a name, a date, a number, or yes/no. "
        'Finish with a line of the form "Answer: <your answer>".\n\nQuestion: {input}'
    ),
    completion=(
        "Question: In which country is the city where the Eiffel Tower stands?\nAnswer: France\n\n"
        "Question: Were the composers of the operas Tosca and Carmen born in the same century?\nAnswer: yes\n\n"
        "Question: {input}\nAnswer:"
    ),
    stop=("\n",),
)

OPEN_ENDED = PromptSet(chat="{input}", completion="Question: {input}\n\nAnswer:", stop=("\nQuestion:",))

DEFAULT_COMPLETION = "Question: {input}\nAnswer:"


def fewshot_examples(template: str, shots: list[tuple[str, str]]) -> str:
    """The solved examples, each in ``template`` (only ``{input}`` filled) with its answer after it,
    as literal text that goes before an item's rendered prompt.

    Kept apart from the template rather than baked into it: a template is rendered again for every
    item, which would fill an example's own "{input}" or "{choices}" with that item's text.
    """
    return "".join(render(template, input=q).rstrip() + " " + a.strip() + "\n\n" for q, a in shots)


# ---- the judge ---------------------------------------------------------------------------------
# Placeholders: {question}, {answer}, {reference}; pairwise: {answer_a}, {answer_b}. The verdict
# formats ("Rating: [[7]]", "[[A]]") are what the judge scorer parses.

_RATE = (
    "Rate the response on a scale of 1 to 10. First explain your assessment briefly, then give the rating "
    'strictly in this format: "Rating: [[5]]".'
)

JUDGE_SINGLE = (
    "You are an impartial judge. Evaluate the quality of the AI assistant's response to the user's question "
    "below. Consider helpfulness, relevance, accuracy, depth and level of detail. Be as objective as possible. "
    + _RATE
    + "\n\n[Question]\n{question}\n\n[The start of the assistant's answer]\n{answer}\n[The end of the assistant's answer]"
)

JUDGE_SINGLE_REFERENCE = (
    "You are an impartial judge. Evaluate the correctness and helpfulness of the AI assistant's response to the "
    "user's question below. A reference answer is given: compare the assistant's answer with it and point out "
    "any mistakes. Be as objective as possible. "
    + _RATE
    + "\n\n[Question]\n{question}\n\n[The start of the reference answer]\n{reference}\n[The end of the reference answer]"
    "\n\n[The start of the assistant's answer]\n{answer}\n[The end of the assistant's answer]"
)

_PAIR = (
    "You are an impartial judge. Compare the responses of two AI assistants to the user's question below and "
    "decide which one answers it better: more helpful, relevant, accurate, deep and detailed. The order in which "
    "the responses appear and their length must not influence you, nor the assistants' names. First explain "
    'your comparison briefly, then give your verdict strictly in this format: "[[A]]" if assistant A is '
    'better, "[[B]]" if assistant B is better, "[[C]]" for a tie.'
)

JUDGE_PAIR = (
    _PAIR
    + "\n\n[Question]\n{question}\n\n[The start of assistant A's answer]\n{answer_a}\n[The end of assistant A's answer]"
    "\n\n[The start of assistant B's answer]\n{answer_b}\n[The end of assistant B's answer]"
)

JUDGE_PAIR_REFERENCE = (
    _PAIR
    + " A reference answer is given: judge correctness against it."
    "\n\n[Question]\n{question}\n\n[The start of the reference answer]\n{reference}\n[The end of the reference answer]"
    "\n\n[The start of assistant A's answer]\n{answer_a}\n[The end of assistant A's answer]"
    "\n\n[The start of assistant B's answer]\n{answer_b}\n[The end of assistant B's answer]"
)

# Plain JSONL files and YAML descriptions without a prompt of their own.
NUMBER_QA = '{input}\n\nReason step by step, then finish with a line of the form "The answer is N." where N is a number.'
SHORT_QA = '{input}\n\nAnswer briefly. Finish with a line of the form "Answer: <your answer>".'
