"""rank's pairwise method: a tournament of two-candidate comparisons by an LLM judge.

A knock-out bracket spends ``n - 1`` comparisons in ``ceil(log2 n)`` rounds and finds the winner; the
others are ordered by the round they reached (later is better, ties in input order). A round robin
compares every pair once, ``n (n - 1) / 2`` comparisons, and orders by wins. With ``both_orders`` each
comparison is asked twice, the candidates swapped, since judges favour a position; a split verdict
is a tie.
"""

from __future__ import annotations

__all__ = ["PAIR_PROMPT", "knockout", "pairwise_calls", "parse_pair", "round_robin"]

import asyncio
import itertools
import re
from collections.abc import Awaitable, Callable

PAIR_PROMPT = """Which of the two responses to the query below is better: more correct, complete and helpful?

Query:
{query}

[A]
{a}

[B]
{b}

Explain briefly, then on the last line write exactly "Better: A" or "Better: B"."""

_BETTER = re.compile(r"Better:\s*\[?\s*([AB])\b", re.IGNORECASE)

#: judge(i, j) -> 0 when candidate i is better, 1 when j is, None for no verdict (or a split one).
Judge = Callable[[int, int], Awaitable[int | None]]


def parse_pair(text: str) -> int | None:
    """0 for "Better: A", 1 for "Better: B" (the last such line wins), None when there is none."""
    found = _BETTER.findall(text)
    return None if not found else (0 if found[-1].upper() == "A" else 1)


def pairwise_calls(n: int, tournament: str, both_orders: bool) -> int:
    """Judge calls a tournament over ``n`` candidates makes: exact, since none can end early."""
    matches = 0 if n <= 1 else (n - 1 if tournament == "knockout" else n * (n - 1) // 2)
    return matches * (2 if both_orders else 1)


async def knockout(n: int, judge: Judge) -> tuple[list[int], int]:
    """Order (best first) and the number of matches without a verdict, where the earlier candidate advanced."""
    alive, reached, undecided, rnd = list(range(n)), [0] * n, 0, 0
    while len(alive) > 1:
        pairs = list(zip(alive[::2], alive[1::2]))
        verdicts = await asyncio.gather(*(judge(a, b) for a, b in pairs))
        rnd += 1
        winners = []
        for (a, b), v in zip(pairs, verdicts):
            undecided += v is None
            winner = b if v == 1 else a  # no verdict: the earlier candidate advances
            reached[winner] = rnd
            winners.append(winner)
        if len(alive) % 2:  # a bye: the last one advances without a match
            reached[alive[-1]] = rnd
            winners.append(alive[-1])
        alive = winners
    return sorted(range(n), key=lambda i: (i not in alive, -reached[i], i)), undecided


async def round_robin(n: int, judge: Judge) -> tuple[list[int], int]:
    """Order by wins (a tie or no verdict is half a win each; ties in input order) and the undecided count."""
    pairs = list(itertools.combinations(range(n), 2))
    verdicts = await asyncio.gather(*(judge(a, b) for a, b in pairs))
    wins = [0.0] * n
    for (a, b), v in zip(pairs, verdicts):
        if v is None:
            wins[a] += 0.5
            wins[b] += 0.5
        else:
            wins[b if v else a] += 1
    return sorted(range(n), key=lambda i: (-wins[i], i)), sum(v is None for v in verdicts)
