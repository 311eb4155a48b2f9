"""The judges' own prompts, byte for byte: FastChat's MT-Bench judge prompts and Arena-Hard-Auto
v0.1's judge prompt.

Sources (Apache License 2.0): lm-sys/FastChat ``fastchat/llm_judge/data/judge_prompts.jsonl`` at commit
0e6d3e4b (Zheng et al. 2023, "Judging LLM-as-a-judge with MT-Bench and Chatbot Arena"), and
lmarena/arena-hard-auto ``config/judge_config.yaml`` at commit 3071ef95 (Li et al. 2024). Tests compare
them with the original files when ``$ARCHON_DATA_DIR`` holds them. Templates use Python ``str.format``
placeholders as the originals do, but are filled with ``operators.base.render`` (one pass: an answer
holding braces is inserted as it is).
"""

from __future__ import annotations

__all__ = ["ARENA_HARD_SYSTEM", "ARENA_HARD_TEMPLATE", "ARENA_HARD_VERDICT", "FastChatPrompt", "MT_BENCH_PROMPTS"]

from dataclasses import dataclass


@dataclass(frozen=True)
class FastChatPrompt:
    """One of FastChat's judge prompts (``judge_prompts.jsonl``)."""

    name: str
    type: str              # "single" | "pairwise"
    system_prompt: str
    prompt_template: str
    category: str          # "general" | "math" (reference-guided)
    output_format: str     # "[[rating]]" | "[[A]]"


MT_BENCH_PROMPTS: dict[str, FastChatPrompt] = {p.name: p for p in [
    FastChatPrompt(
        "pair-v2", "pairwise",
        (
            "Please act as an impartial judge and evaluate the quality of the responses provided by two AI "
            "assistants to the user question displayed below. You should choose the assistant that follows the "
            "user's instructions and answers the user's question better. Your evaluation should consider factors "
            "such as the helpfulness, relevance, accuracy, depth, creativity, and level of detail of their "
            "responses. Begin your evaluation by comparing the two responses and provide a short explanation. "
            "Avoid any position biases and ensure that the order in which the responses were presented does not "
            "influence your decision. Do not allow the length of the responses to influence your evaluation. Do "
            "not favor certain names of the assistants. Be as objective as possible. After providing your "
            "explanation, output your final verdict by strictly following this format: \"[[A]]\" if assistant A is "
            "better, \"[[B]]\" if assistant B is better, and \"[[C]]\" for a tie."
        ),
        (
            "[User Question]\n"
            "{question}\n"
            "\n"
            "[The Start of Assistant A's Answer]\n"
            "{answer_a}\n"
            "[The End of Assistant A's Answer]\n"
            "\n"
            "[The Start of Assistant B's Answer]\n"
            "{answer_b}\n"
            "[The End of Assistant B's Answer]"
        ),
        "general", "[[A]]",
    ),
    FastChatPrompt(
        "pair-v2-multi-turn", "pairwise",
        (
            "Please act as an impartial judge and evaluate the quality of the responses provided by two AI "
            "assistants to the user questions. You should choose the assistant that follows the user's "
            "instructions and answers the user's questions better. Your evaluation should consider factors such "
            "as the helpfulness, relevance, accuracy, depth, creativity, and level of detail of their responses. "
            "You should focus on who provides a better answer to the second user question. Begin your evaluation "
            "by comparing the responses of the two assistants and provide a short explanation. Avoid any "
            "position biases and ensure that the order in which the responses were presented does not influence "
            "your decision. Do not allow the length of the responses to influence your evaluation. Do not favor "
            "certain names of the assistants. Be as objective as possible. After providing your explanation, "
            "output your final verdict by strictly following this format: \"[[A]]\" if assistant A is better, "
            "\"[[B]]\" if assistant B is better, and \"[[C]]\" for a tie."
        ),
        (
            "<|The Start of Assistant A's Conversation with User|>\n"
            "\n"
            "### User:\n"
            "{question_1}\n"
            "\n"
            "### Assistant A:\n"
            "{answer_a_1}\n"
            "\n"
            "### User:\n"
            "{question_2}\n"
            "\n"
            "### Assistant A:\n"
            "{answer_a_2}\n"
            "\n"
            "<|The End of Assistant A's Conversation with User|>\n"
            "\n"
            "\n"
            "<|The Start of Assistant B's Conversation with User|>\n"
            "\n"
            "### User:\n"
            "{question_1}\n"
            "\n"
            "### Assistant B:\n"
            "{answer_b_1}\n"
            "\n"
            "### User:\n"
            "{question_2}\n"
            "\n"
            "### Assistant B:\n"
            "{answer_b_2}\n"
            "\n"
            "<|The End of Assistant B's Conversation with User|>"
        ),
        "general", "[[A]]",
    ),
    FastChatPrompt(
        "pair-math-v1", "pairwise",
        (
            "Please act as an impartial judge and evaluate the quality of the responses provided by two AI "
            "assistants to the user question displayed below. Your evaluation should consider correctness and "
            "helpfulness. You will be given a reference answer, assistant A's answer, and assistant B's answer. "
            "Your job is to evaluate which assistant's answer is better. Begin your evaluation by comparing both "
            "assistants' answers with the reference answer. Identify and correct any mistakes. Avoid any "
            "position biases and ensure that the order in which the responses were presented does not influence "
            "your decision. Do not allow the length of the responses to influence your evaluation. Do not favor "
            "certain names of the assistants. Be as objective as possible. After providing your explanation, "
            "output your final verdict by strictly following this format: \"[[A]]\" if assistant A is better, "
            "\"[[B]]\" if assistant B is better, and \"[[C]]\" for a tie."
        ),
        (
            "[User Question]\n"
            "{question}\n"
            "\n"
            "[The Start of Reference Answer]\n"
            "{ref_answer_1}\n"
            "[The End of Reference Answer]\n"
            "\n"
            "[The Start of Assistant A's Answer]\n"
            "{answer_a}\n"
            "[The End of Assistant A's Answer]\n"
            "\n"
            "[The Start of Assistant B's Answer]\n"
            "{answer_b}\n"
            "[The End of Assistant B's Answer]"
        ),
        "math", "[[A]]",
    ),
    FastChatPrompt(
        "pair-math-v1-multi-turn", "pairwise",
        (
            "Please act as an impartial judge and evaluate the quality of the responses provided by two AI "
            "assistants to the user questions. Your evaluation should consider correctness and helpfulness. You "
            "will be given reference answers, the assistant A's answers, the assistant B's answers. Your job is "
            "to determine which assistant provides correct and helpful answers to the second user question. "
            "Begin your evaluation by comparing both assistants' answers with the reference answers. Identify "
            "and correct any mistakes. Avoid any position biases and ensure that the order in which the "
            "responses were presented does not influence your decision. Do not allow the length of the responses "
            "to influence your evaluation. Do not favor certain names of the assistants. Be as objective as "
            "possible. After providing your explanation, output your final verdict by strictly following this "
            "format: \"[[A]]\" if assistant A is better, \"[[B]]\" if assistant B is better, and \"[[C]]\" for a tie."
        ),
        (
            "<|The Start of Reference Answer|>\n"
            "\n"
            "### User:\n"
            "{question_1}\n"
            "\n"
            "### Reference answer:\n"
            "{ref_answer_1}\n"
            "\n"
            "### User:\n"
            "{question_2}\n"
            "\n"
            "### Reference answer:\n"
            "{ref_answer_2}\n"
            "\n"
            "<|The End of Reference Answer|>\n"
            "\n"
            "\n"
            "<|The Start of Assistant A's Conversation with User|>\n"
            "\n"
            "### User:\n"
            "{question_1}\n"
            "\n"
            "### Assistant A:\n"
            "{answer_a_1}\n"
            "\n"
            "### User:\n"
            "{question_2}\n"
            "\n"
            "### Assistant A:\n"
            "{answer_a_2}\n"
            "\n"
            "<|The End of Assistant A's Conversation with User|>\n"
            "\n"
            "\n"
            "<|The Start of Assistant B's Conversation with User|>\n"
            "\n"
            "### User:\n"
            "{question_1}\n"
            "\n"
            "### Assistant B:\n"
            "{answer_b_1}\n"
            "\n"
            "### User:\n"
            "{question_2}\n"
            "\n"
            "### Assistant B:\n"
            "{answer_b_2}\n"
            "\n"
            "<|The End of Assistant B's Conversation with User|>"
        ),
        "general", "[[A]]",
    ),
    FastChatPrompt(
        "single-v1", "single",
        (
            "You are a helpful assistant."
        ),
        (
            "[Instruction]\n"
            "Please act as an impartial judge and evaluate the quality of the response provided by an AI "
            "assistant to the user question displayed below. Your evaluation should consider factors such as the "
            "helpfulness, relevance, accuracy, depth, creativity, and level of detail of the response. Begin "
            "your evaluation by providing a short explanation. Be as objective as possible. After providing your "
            "explanation, you must rate the response on a scale of 1 to 10 by strictly following this format: "
            "\"[[rating]]\", for example: \"Rating: [[5]]\".\n"
            "\n"
            "[Question]\n"
            "{question}\n"
            "\n"
            "[The Start of Assistant's Answer]\n"
            "{answer}\n"
            "[The End of Assistant's Answer]"
        ),
        "general", "[[rating]]",
    ),
    FastChatPrompt(
        "single-math-v1", "single",
        (
            "You are a helpful assistant."
        ),
        (
            "[Instruction]\n"
            "Please act as an impartial judge and evaluate the quality of the response provided by an AI "
            "assistant to the user question displayed below. Your evaluation should consider correctness and "
            "helpfulness. You will be given a reference answer and the assistant's answer. Begin your evaluation "
            "by comparing the assistant's answer with the reference answer. Identify and correct any mistakes. "
            "Be as objective as possible. After providing your explanation, you must rate the response on a "
            "scale of 1 to 10 by strictly following this format: \"[[rating]]\", for example: \"Rating: [[5]]\".\n"
            "\n"
            "[Question]\n"
            "{question}\n"
            "\n"
            "[The Start of Reference Answer]\n"
            "{ref_answer_1}\n"
            "[The End of Reference Answer]\n"
            "\n"
            "[The Start of Assistant's Answer]\n"
            "{answer}\n"
            "[The End of Assistant's Answer]"
        ),
        "math", "[[rating]]",
    ),
    FastChatPrompt(
        "single-v1-multi-turn", "single",
        (
            "Please act as an impartial judge and evaluate the quality of the response provided by an AI "
            "assistant to the user question displayed below. Your evaluation should consider factors such as the "
            "helpfulness, relevance, accuracy, depth, creativity, and level of detail of the response. You "
            "evaluation should focus on the assistant's answer to the second user question. Begin your "
            "evaluation by providing a short explanation. Be as objective as possible. After providing your "
            "explanation, you must rate the response on a scale of 1 to 10 by strictly following this format: "
            "\"[[rating]]\", for example: \"Rating: [[5]]\".\n"
            "\n"
        ),
        (
            "<|The Start of Assistant A's Conversation with User|>\n"
            "\n"
            "### User:\n"
            "{question_1}\n"
            "\n"
            "### Assistant A:\n"
            "{answer_1}\n"
            "\n"
            "### User:\n"
            "{question_2}\n"
            "\n"
            "### Assistant A:\n"
            "{answer_2}\n"
            "\n"
            "<|The End of Assistant A's Conversation with User|>"
        ),
        "general", "[[rating]]",
    ),
    FastChatPrompt(
        "single-math-v1-multi-turn", "single",
        (
            "Please act as an impartial judge and evaluate the quality of the response provided by an AI "
            "assistant to the user question. Your evaluation should consider correctness and helpfulness. You "
            "will be given a reference answer and the assistant's answer. You evaluation should focus on the "
            "assistant's answer to the second question. Begin your evaluation by comparing the assistant's "
            "answer with the reference answer. Identify and correct any mistakes. Be as objective as possible. "
            "After providing your explanation, you must rate the response on a scale of 1 to 10 by strictly "
            "following this format: \"[[rating]]\", for example: \"Rating: [[5]]\".\n"
            "\n"
        ),
        (
            "<|The Start of Reference Answer|>\n"
            "\n"
            "### User:\n"
            "{question_1}\n"
            "\n"
            "### Reference answer:\n"
            "{ref_answer_1}\n"
            "\n"
            "### User:\n"
            "{question_2}\n"
            "\n"
            "### Reference answer:\n"
            "{ref_answer_2}\n"
            "\n"
            "<|The End of Reference Answer|>\n"
            "\n"
            "\n"
            "<|The Start of Assistant A's Conversation with User|>\n"
            "\n"
            "### User:\n"
            "{question_1}\n"
            "\n"
            "### Assistant A:\n"
            "{answer_1}\n"
            "\n"
            "### User:\n"
            "{question_2}\n"
            "\n"
            "### Assistant A:\n"
            "{answer_2}\n"
            "\n"
            "<|The End of Assistant A's Conversation with User|>"
        ),
        "math", "[[rating]]",
    ),
]}

#: Arena-Hard-Auto v0.1's judge system prompt (``system_prompt`` of its judge config).
ARENA_HARD_SYSTEM = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two AI "
    "assistants to the user prompt displayed below. You will be given assistant A's answer and assistant "
    "B's answer. Your job is to evaluate which assistant's answer is better.\n"
    "\n"
    "Begin your evaluation by generating your own answer to the prompt. You must provide your answers "
    "before judging any answers.\n"
    "\n"
    "When evaluating the assistants' answers, compare both assistants' answers with your answer. You "
    "must identify and correct any mistakes or inaccurate information.\n"
    "\n"
    "Then consider if the assistant's answers are helpful, relevant, and concise. Helpful means the "
    "answer correctly responds to the prompt or follows the instructions. Note when user prompt has any "
    "ambiguity or more than one interpretation, it is more helpful and appropriate to ask for "
    "clarifications or more information from the user than providing an answer based on assumptions. "
    "Relevant means all parts of the response closely connect or are appropriate to what is being asked. "
    "Concise means the response is clear and not verbose or excessive.\n"
    "\n"
    "Then consider the creativity and novelty of the assistant's answers when needed. Finally, identify "
    "any missing important information in the assistants' answers that would be beneficial to include "
    "when responding to the user prompt.\n"
    "\n"
    "After providing your explanation, you must output only one of the following choices as your final "
    "verdict with a label:\n"
    "\n"
    "1. Assistant A is significantly better: [[A>>B]]\n"
    "2. Assistant A is slightly better: [[A>B]]\n"
    "3. Tie, relatively the same: [[A=B]]\n"
    "4. Assistant B is slightly better: [[B>A]]\n"
    "5. Assistant B is significantly better: [[B>>A]]\n"
    "\n"
    "Example output: \"My final verdict is tie: [[A=B]]\"."
)

#: Its user-prompt template (``prompt_template[0]``): {question_1}, {answer_1} (assistant A), {answer_2} (B).
ARENA_HARD_TEMPLATE = (
    "<|User Prompt|>\n"
    "{question_1}\n"
    "\n"
    "<|The Start of Assistant A's Answer|>\n"
    "{answer_1}\n"
    "<|The End of Assistant A's Answer|>\n"
    "\n"
    "<|The Start of Assistant B's Answer|>\n"
    "{answer_2}\n"
    "<|The End of Assistant B's Answer|>"
)

#: Its verdict pattern (``regex_pattern``).
ARENA_HARD_VERDICT = r"\[\[([AB<>=]+)\]\]"
