"""Imperfect selectors in the eval report: answers picked as verified or passing their checks, the
share of them the hidden scoring finds wrong (false positives), and abstentions counted apart."""

from __future__ import annotations

import json
import re

import archon
from archon import Pipeline
from backends.doubles import FunctionBackend
from tests.conftest import write

# Per item: (the sample texts, which of them the verifier calls correct). The answer is 7.
ITEMS = [
    (["7", "3"], {"7"}),        # the verifier picks the right one
    (["3", "7"], {"3"}),        # a false positive: it verifies a wrong one
    (["4", "5"], set()),        # nothing verified: with abstain, no answer
    (["7", "7"], {"7"}),
    (["2", "9"], {"2", "9"}),   # a false positive
]


def reply(req, k):
    t = req.prompt_text()
    i = int(re.search(r"Item (\d+)", t).group(1))
    texts, ok = ITEMS[i]
    if "Verdict" in t:
        candidate = t.split("Response:")[1].strip().split("\n")[0].strip()
        return "Verdict: correct" if candidate in ok else "Verdict: incorrect"
    return texts[k]


def pipeline(abstain: bool) -> Pipeline:
    p = Pipeline("verified" + ("-abstain" if abstain else ""))
    p.add("check", "verify", inputs=p.add("draft", "generate", model="fake/m", samples=2), model="fake/v", abstain=abstain)
    return p


def test_false_positives_and_abstentions_are_reported_and_stored(tmp_path):
    rows = [{"id": f"q{i}", "question": f"Item {i}: what is 3 + 4?", "answer": "7"} for i in range(len(ITEMS))]
    data = write(tmp_path, "items.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    db = f"sqlite:///{tmp_path / 'e.db'}"
    kept = archon.evaluate(pipeline(False), str(data), backends={"fake": FunctionBackend(reply)}, db=db)
    # Without abstain: item 2 falls back to its first, unverified draft ("4"): picked, but not as passing.
    assert kept.score == 0.4 and kept.abstained == 0 and kept.score_when_answered is None
    assert kept.selected_passing == 4 and kept.false_positive_rate == 0.5  # items 1 and 4 of 0, 1, 3, 4

    out = archon.evaluate(pipeline(True), str(data), backends={"fake": FunctionBackend(reply)}, db=db)
    assert out.score == 0.4 and out.abstained == 1 and out.score_when_answered == 0.5
    assert out.selected_passing == 4 and out.false_positive_rate == 0.5
    text = str(out)
    assert "abstained 1 (scored 0); score when answering 50.0%" in text
    assert "selector: 4 answers picked as passing its checks, false-positive rate 50.0%" in text

    again = archon.evaluate(pipeline(True), str(data), backends={"fake": FunctionBackend(reply)}, db=db)
    assert again.ran == 0 and (again.abstained, again.false_positive_rate) == (1, 0.5)  # stored with each item
