"""Every operator once through a real OpenAI-compatible HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import math

import pytest

from archon import CompiledPipeline, Pipeline, Runtime
from archon.testing.fake_server import FakeOpenAIServer
from backends.presets import OpenAISettings


def reply(prompt: str, k: int) -> str:
    if "Step ratings:" in prompt:  # beam's process scorer
        return "Step 1: [[8]]" if "is 7" in prompt else "Step 1: [[3]]"
    if "Yes or No" in prompt:
        return "Yes" if "answer is 7" in prompt else "No"
    if "Ranking:" in prompt:
        return "[2] > [1]"
    if "Reviews:" in prompt:
        return "[1]\nStrengths: fine\n[2]\nWeaknesses: none"
    if "Strengths and weaknesses:" in prompt:
        return "Strengths: clear. Weaknesses: none."
    if "Verdict" in prompt:
        return "Looks right.\nVerdict: correct"
    if "Difficulty rating" in prompt:
        return "9"
    if "Candidate responses" in prompt:
        return "fused: 7"
    if "assert statements" in prompt:
        return "assert add(1, 2) == 3\nassert add(0, 0) == 0"
    if "def add" in prompt:
        return "    return a + b\n" if k == 0 else "    return a * b\n"
    if "Context:" in prompt:
        return "from context: " + prompt.split("Context:")[1].split()[0]
    return f"the answer is {7 if k % 2 == 0 else 8}"


@pytest.fixture(scope="module")
def server():
    with FakeOpenAIServer(reply=reply) as srv:
        yield srv


def pipeline(op: str, corpus: str = "") -> Pipeline:
    p = Pipeline(op)
    if op == "retrieve":
        r = p.add("docs", "retrieve", corpus=corpus, top_k=1)
        p.add("out", "generate", inputs=r, model="srv/m", prompt="Context:\n{context}\n\nQuestion: {query}")
        return p
    if op in ("write_tests", "unit_test"):
        p.add("tests", "write_tests", model="srv/m")
        p.add("draft", "generate", model="srv/m", samples=2, mode="completion")
        p.add("out", "unit_test", inputs=["draft", "tests"], top_k=1)
        return p
    if op == "ensemble":
        p.add("out", "ensemble", model=["srv/a", "srv/b"], samples=2)
        return p
    if op == "score":
        d = p.add("draft", "generate", model="srv/m", samples=3, logprobs=True)
        s = p.add("scored", "score", inputs=d, model="srv/judge", method="yes_prob")
        p.add("out", "vote", inputs=s, weight="perplexity")
        return p
    if op == "route":
        p.add("gauge", "route", model="srv/cheap", samples=3, thresholds=[0.9], branches=["strong", "cheap"])
        p.add("strong", "generate", inputs="gauge", model="srv/strong", prompt="{query}")
        p.add("cheap", "vote", inputs="gauge")
        p.add("out", "merge", inputs=["strong", "cheap"])
        return p
    if op == "beam":  # one request for width x expansions first steps; each says its answer, so all finish at once
        p.add("out", "beam", model="srv/m", scorer="srv/prm", width=2, expansions=2)
        return p
    if op == "sample_until":  # the samples never agree (7, 8, 7, 8): both waves, then the plurality first
        p.add("out", "sample_until", model="srv/m", max_samples=4, wave=2)
        return p
    d = p.add("draft", "generate", model="srv/m", samples=3)
    settings = {
        "generate": {},
        "rank": {"model": "srv/m", "top_k": 1},
        "fuse": {"model": "srv/m"},
        "critique": {"model": "srv/m"},
        "verify": {"model": "srv/m", "first_k": 1},
        "vote": {},
        "merge": {"top_k": 2},
    }[op]
    if op == "generate":
        return p
    p.add("out", op, inputs=d, **settings)
    return p


@pytest.mark.parametrize("op", ["generate", "ensemble", "rank", "fuse", "critique", "verify", "vote", "route", "merge",
                                "retrieve", "write_tests", "unit_test", "sample_until", "score", "beam"])
def test_operator_over_http(server, op, tmp_path):
    server.reset()
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "kangaroo.txt").write_text("Kangaroos live in Australia and hop.")
    (tmp_path / "docs" / "penguin.txt").write_text("Penguins live in Antarctica and swim.")
    query = "Where do kangaroos live?" if op == "retrieve" else ("def add(a, b):\n" if op in ("write_tests", "unit_test") else "What is 3+4?")

    async def go():
        rt = Runtime({"srv": OpenAISettings(base_url=server.base_url)}, store=False)
        try:
            return await CompiledPipeline(pipeline(op, str(tmp_path / "docs")).build()).run(query, rt)
        finally:
            await rt.aclose()

    res = asyncio.run(go())
    assert res.output
    assert server.requests == res.calls >= 1
    out = res.candidates.get("out") or res.candidates["draft"]
    if op == "rank":
        assert [c.sample for c in out] == [1]
    if op == "fuse":
        assert res.output == "fused: 7"
    if op == "critique":
        assert all(c.critique for c in out)
    if op == "verify":
        assert len(out) == 1 and out[0].meta["verified"]
    if op == "vote":
        assert out[0].meta["answer"] == "7" and out[0].score == pytest.approx(2 / 3)
    if op == "route":
        assert res.candidates["cheap"] == [] and res.output.startswith("the answer")
    if op == "retrieve":
        assert res.output == "from context: Kangaroos"
    if op == "sample_until":
        assert server.requests == 2 and res.samples_used == 4 and res.output == "the answer is 7" and out[0].meta["stopped"] == "max"
    if op == "score":  # the server's logprobs reach the candidates, the judge's P(yes) and the weighted vote
        assert [len(c.logprobs or ()) for c in res.candidates["draft"]] == [4, 4, 4]
        scored = res.candidates["scored"]
        assert [c.meta["score_source"] for c in scored] == ["logprobs"] * 3 and not any(c.notes for c in scored)
        assert scored[0].score == pytest.approx(math.exp(-0.15)) and scored[-1].score == pytest.approx(1 - math.exp(-0.1))
        assert out[0].meta["answer"] == "7" and out[0].meta["weighted_by"] == "perplexity"
    if op == "beam":  # 1 request (4 samples, 2 distinct steps) + 2 process scores
        assert server.requests == 3 and res.output == "the answer is 7" and out[0].score == pytest.approx(0.8)
    if op in ("write_tests", "unit_test"):
        assert res.output == "    return a + b\n" and out[0].meta["tests"] == {"passed": 2, "total": 2, "status": "passed", "source": "inputs"}
