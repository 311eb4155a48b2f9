"""The original Archon JSON format: translation, validation, and runs against a local server."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from archon import CompiledPipeline, Runtime, SpecError, load_pipeline
from archon.spec import parse_pipeline
from archon.import_archon import from_archon
from archon.testing.fake_server import FakeOpenAIServer
from backends.presets import OpenAISettings
from tests.conftest import EXAMPLES, write

CONFIGS = sorted((EXAMPLES / "archon-format").glob("*.json"))


def reply(prompt: str, k: int) -> str:
    if "Ranking:" in prompt:
        return "[2] > [1] > [3]"
    if "Reviews:" in prompt:
        return "[1]\nStrengths: ok\n[2]\nWeaknesses: vague"
    if "Requirements:" in prompt and "Judgement:" not in prompt:
        return "1. Mentions the capital\n2. Names Canberra"
    if "Judgement:" in prompt:
        return "1: PASS\n2: PASS" if "Canberra" in prompt.split("Requirements:")[0] else "1: PASS\n2: FAIL"
    if "Candidate responses" in prompt:
        return "Canberra (fused)"
    return "Canberra" if k % 2 else "Sydney"


def test_the_four_shapes_translate():
    shapes = {p.stem: load_pipeline(p) for p in CONFIGS}
    assert [(n.op, n.inputs) for n in shapes["sample-rank-fuse"].nodes] == [
        ("generate", ()), ("rank", ("l1_generator",)), ("fuse", ("l2_ranker",))]
    moa = shapes["mixture-of-agents"].nodes
    assert [n.op for n in moa] == ["generate", "fuse", "fuse"]
    assert moa[0].config.model == ["together/meta-llama/Llama-3.3-70B-Instruct-Turbo", "together/Qwen/Qwen2.5-72B-Instruct-Turbo",
                                   "together/mistralai/Mixtral-8x22B-Instruct-v0.1"]
    assert len(moa[1].config.model) == 2  # the second proposer layer: one fuser per model
    assert [n.op for n in shapes["critic-ranker-fuser"].nodes] == ["generate", "critique", "rank", "fuse"]
    ut = shapes["unit-tests"].nodes
    # Archon appends the tests to the query the later generators answer; they reach the evaluator too.
    assert [(n.op, n.inputs) for n in ut] == [
        ("write_tests", ()), ("generate", ("l1_unit_test_generator",)), ("unit_test", ("l2_generator", "l1_unit_test_generator"))]
    assert ut[0].config.num_tests == 5 and ut[2].config.style == "nl"
    assert "should pass the following unit tests" in ut[1].config.prompt


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_cli_translation_validates(tmp_path, path):
    out = tmp_path / f"{path.stem}.yaml"
    r = subprocess.run([sys.executable, "-m", "archon", "import-archon", str(path), "-o", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-m", "archon", "validate", str(out), str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_translated_configs_run_against_a_local_server(path):
    spec = load_pipeline(path)

    async def go(url):
        # Point the presets the configs name at the local server, with no key.
        over = {name: OpenAISettings(base_url=url, api_key_env=None) for name in ("together", "openai")}
        rt = Runtime(over, store=False)
        try:
            return await CompiledPipeline(spec).run("What is the capital of Australia?", rt)
        finally:
            await rt.aclose()

    with FakeOpenAIServer(reply=reply) as srv:
        res = asyncio.run(go(srv.base_url))
        assert res.output and srv.requests == res.calls
    if path.stem == "unit-tests":
        (best,) = res.candidates["l3_unit_test_evaluator"]
        assert best.text == "Canberra" and best.score == 1.0 and best.meta["tests"]["source"] == "inputs"
    else:
        assert res.output == "Canberra (fused)"


@pytest.mark.parametrize(
    "layers, message",
    [
        ([[{"type": "reward_model", "model": "m", "model_type": "OpenAI_API"}]], "type 'reward_model' cannot be mapped"),
        ([[{"type": "generator", "model": "m", "model_type": "Bedrock"}]], "model_type 'Bedrock' has no preset"),
        ([[{"type": "fuser", "model": "m", "model_type": "OpenAI_API", "reward_config": {}}]], "key 'reward_config' cannot be mapped"),
        ([[{"type": "generator", "model": "m", "model_type": "OpenAI_API"}],
          {"branches": 2, "models": [{"type": "ranker", "model": "m", "model_type": "OpenAI_API"}]}], "only generator and fuser layers branch"),
        ([[{"type": "generator", "model": "m", "model_type": "OpenAI_API"}],
          [{"type": "critic", "model": "m", "model_type": "OpenAI_API"}] * 2], "more than one critic in a layer"),
        ([[{"type": "generator", "model": "m", "model_type": ""}]], "pass --backend NAME"),
        ([[{"type": "generator", "model": "m", "model_type": "OpenAI_API"}],
          [{"type": "unit_test_evaluator", "model": "m", "model_type": "OpenAI_API"}]], "needs a unit_test_generator"),
        ([{"branches": 0, "models": [{"type": "generator", "model": "m", "model_type": "OpenAI_API"}]}], "whole number >= 1"),
    ],
)
def test_what_cannot_be_mapped_is_rejected_with_a_message(layers, message):
    with pytest.raises(SpecError, match=message):
        from_archon({"name": "x", "layers": layers}, source="cfg.json")


def test_backend_override_and_cli_errors(tmp_path):
    cfg = write(tmp_path, "c.json", json.dumps({"layers": [[{"type": "generator", "model": "m", "model_type": "Bedrock"}]]}))
    r = subprocess.run([sys.executable, "-m", "archon", "import-archon", str(cfg), "--backend", "fast"], capture_output=True, text=True)
    assert r.returncode == 0 and "model: fast/m" in r.stdout
    r = subprocess.run([sys.executable, "-m", "archon", "import-archon", str(cfg)], capture_output=True, text=True)
    assert r.returncode == 2 and "Bedrock" in r.stderr and "--backend" in r.stderr and "Traceback" not in r.stderr
    bad = write(tmp_path, "bad.json", "{not json")
    r = subprocess.run([sys.executable, "-m", "archon", "validate", str(bad)], capture_output=True, text=True)
    assert r.returncode == 2 and "bad.json" in r.stderr


def comp(kind, model="m", **kw):
    return {"type": kind, "model": model, "model_type": "OpenAI_API", "temperature": 0.7, "max_tokens": 64, **kw}


def test_archon_semantics_map_to_nodes():
    notes: list[str] = []
    data = {"name": "x", "layers": [
        {"type": "unit_test_generator", "model": "t", "model_type": "Google_API", "unit_test_cap": 3},  # a bare component
        [comp("generator", "a", samples=2), comp("generator", "b", samples=2), comp("generator", "c", samples=3, no_system=True),
         comp("generator", "a", samples=2)],
        [comp("fuser", "f1", length_control=True), comp("fuser", "f2", length_control=True), comp("fuser", "f3", length_contorl=True)],
        [comp("verifier", "v", batch_num=2)],
        [comp("unit_test_evaluator", "e", first_pass=True, remove_unit_tests_from_prompt=True)],
    ]}
    spec = parse_pipeline(from_archon(data, source="c.json", notes=notes))
    nodes = {n.id: n for n in spec.nodes}
    assert nodes["l1_unit_test_generator"].config.model == "google/t" and nodes["l1_unit_test_generator"].config.num_tests == 3
    # 'a' twice with 2 samples: one model with 4 (two identical requests would share a cache entry)
    gens = [(n.config.model, n.config.samples, n.config.system) for n in spec.nodes if n.op == "generate"]
    assert gens == [("openai/a", 4, "You are a helpful assistant"), ("openai/b", 2, "You are a helpful assistant"), ("openai/c", 3, None)]
    assert all(n.inputs == ("l1_unit_test_generator",) and "unit tests" in n.config.prompt for n in spec.nodes if n.op == "generate")
    fusers = [n for n in spec.nodes if n.op == "fuse"]
    assert [f.config.models() for f in fusers] == [["openai/f1", "openai/f2"], ["openai/f3"]]  # N fusers, one node
    assert "as long as the longest response" in fusers[0].config.prompt and "longest" not in fusers[1].config.prompt
    assert nodes["l4_verifier"].config.steps == 2
    # Archon's tests are appended to the query every later component reads: here through {tests}
    for n in [*fusers, nodes["l4_verifier"]]:
        assert "l1_unit_test_generator" in n.inputs and "{query} Your response should pass the following unit tests: \n{tests}" in n.config.prompt
    assert "{tests}" in nodes["l4_verifier"].config.verdict_prompt
    ev = nodes["l5_unit_test_evaluator"]
    assert ev.config.first_k == 1 and ev.config.batch == 1 and ev.config.top_k is None and ev.inputs == ("l4_verifier", "l1_unit_test_generator")  # first_pass = first_k 1
    text = "\n".join(notes)
    assert "layer 1 is one component" in text and "'length_contorl' (misspelt) is ignored" in text and "'batch_num' is ignored" in text


def test_later_components_read_the_tests_after_the_query_as_archon_appends_them():
    data = {"name": "x", "layers": [
        [comp("generator", "g", samples=2)],
        [comp("unit_test_generator", "t", unit_test_cap=2)],
        [comp("critic", "c")],
        [comp("fuser", "f")],
    ]}
    spec = parse_pipeline(from_archon(data, source="c.json", backend="srv"), check_backends=False)

    async def go(url):
        rt = Runtime({"srv": OpenAISettings(base_url=url, api_key_env=None)}, store=False)
        try:
            return await CompiledPipeline(spec).run("What is the capital of Australia?", rt)
        finally:
            await rt.aclose()

    with FakeOpenAIServer(reply=reply) as srv:
        asyncio.run(go(srv.base_url))
        prompts = {e.body["model"]: e.body["messages"][-1]["content"] for e in srv.log}
    tests = "What is the capital of Australia? Your response should pass the following unit tests: \n- Mentions the capital\n- Names Canberra"
    assert tests in prompts["c"] and tests in prompts["f"]
    assert "[3]" not in prompts["f"] and "[2]" in prompts["f"]  # the tests are no candidate: two to fuse
    assert "unit tests" not in prompts["g"]  # the generator ran before the tests were written


def test_folder_summary_for_a_single_file_names_line_and_column(tmp_path):
    bad = write(tmp_path, "bad.json", '{\n  "layers": [\n    [ {"type": "generator"tor"} ]\n  ]\n}')
    r = subprocess.run([sys.executable, "-m", "archon", "import-archon", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 2 and "refused 1" in r.stdout and f"{bad}: not valid JSON (line 3, column" in r.stdout
