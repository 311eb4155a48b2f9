"""Final-answer extraction and normalization, shared by ``vote``, ``route`` and the scorers.

An extractor turns a candidate's text into a short answer that can be compared for equality, or
None when the text holds no answer of that kind.
"""

from __future__ import annotations

__all__ = ["EXTRACTORS", "extract", "normalize_number", "last_boxed"]

import re
from collections.abc import Callable

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?|-?\.\d+")
_CHOICE = re.compile(
    r"(?:answer|option|choice)\s*(?:is|:)?\s*\(?([A-J])\)?(?![a-z])|^\s*\(?([A-J])\)?[.):]?\s*$|\(([A-J])\)",
    re.IGNORECASE | re.MULTILINE,
)


def normalize_number(text: str) -> str | None:
    """'1,000' -> '1000', '3.50' -> '3.5', '-0' -> '0', '6/3' -> '2'; None when not a number."""
    t = text.strip().replace(",", "").rstrip(".")
    try:
        if "/" in t:
            num, den = t.split("/", 1)
            value = float(num) / float(den)
        else:
            value = float(t)
    except (ValueError, ZeroDivisionError):
        return None
    if value == int(value):
        return str(int(value))
    return repr(round(value, 9))


def _last_number(text: str) -> str | None:
    found = _NUMBER.findall(text)
    for tok in reversed(found):
        n = normalize_number(tok)
        if n is not None:
            return n
    return None


def last_boxed(text: str) -> str | None:
    """The content of the last \\boxed{...} (braces balanced), or None."""
    start = text.rfind("\\boxed")
    if start < 0:
        return None
    i = text.find("{", start)
    if i < 0:
        return None
    depth, j = 0, i
    while j < len(text):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j].strip()
        j += 1
    return None


def _boxed(text: str) -> str | None:
    inner = last_boxed(text)
    if inner is None:
        return None
    return normalize_number(inner) or re.sub(r"\s+", "", inner)


def _choice(text: str) -> str | None:
    matches = _CHOICE.findall(text)
    if not matches:
        return None
    letter = next(g for g in matches[-1] if g)
    return letter.upper()


def _text(text: str) -> str | None:
    t = re.sub(r"\s+", " ", text.strip().lower()).strip(" .")
    return t or None


EXTRACTORS: dict[str, Callable[[str], str | None]] = {
    "last_number": _last_number,
    "boxed": _boxed,
    "choice": _choice,
    "text": _text,
}


def extract(text: str, extractor: str, pattern: str | None = None) -> str | None:
    """The answer in ``text`` by ``extractor`` ('regex' uses ``pattern``: its first group, else the match)."""
    if extractor == "regex":
        if not pattern:
            return None
        found = list(re.finditer(pattern, text, re.MULTILINE))
        if not found:
            return None
        m = found[-1]
        return (m.group(1) if m.groups() else m.group(0)).strip()
    return EXTRACTORS[extractor](text)
