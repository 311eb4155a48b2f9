"""The same calls as Archon: original configs of every shape, imported and run on a local
OpenAI-compatible server, make per layer the calls (kind, model, completions) that Archon's own code
makes for them, read from the server's request log.

The rule, from ScalingIntelligence/Archon ``src/archon/completions`` (Archon.py's Layer.process and
each component's ``run``), with ``c`` the candidates arriving at a layer:

- generator: ``samples`` completions of its model (Archon loops ``samples`` single requests; here one
  request asks n = samples); it ignores ``c`` and its candidates replace them.
- fuser: ``samples`` completions per fuser, each reading all ``c``; N fusers give N x samples.
- critic: 1 call for all ``c``; the candidates pass on.
- ranker: 1 call (Archon forces samples = 1); keeps ``min(c, top_k)``.
- verifier: 2 calls per candidate (reasoning, then verdict), one candidate at a time; all are verified
  here, so ``c`` passes on, or with ``first_k`` Archon stops after ``min(c, first_k)`` and keeps those.
- unit_test_generator: 1 call; unit_test_evaluator: 1 judge call per candidate, one at a time. With
  ``first_k`` (``first_pass`` = 1) it stops at the first_k-th candidate passing every test and keeps
  those; when fewer pass it has judged all and keeps them all, best first (cut to ``top_k``). Each
  config runs twice: with every judged candidate failing, and with every one passing.
- ``{"branches": N, "models": [...]}``: the layer's generators and fusers N times.

Layers run in order (each reads the one before), so the log sorted by start time splits into one
segment per layer; the unit_test_generator, which reads only the query, is checked apart.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import pytest

from archon import CompiledPipeline, Runtime
from archon.import_archon import SYSTEM_PROMPTS, convert_file
from archon.testing.fake_server import FakeOpenAIServer
from backends.presets import OpenAISettings
from tests.archon.test_import_archon_folder import CONFIGS, needs_configs, reply

KIND_OF_SYSTEM = {v: k for k, v in SYSTEM_PROMPTS.items()}
SHAPES = {
    "single model": "individual_models/Llama-3-70b-chat-hf.json",
    "samples": "Llama-3.1-70B_10_samples_then_fuse_with_llama_3.1_70B.json",
    "ensemble": "archon-70Bx10_1_samples_then_fuser_with_Qwen2_72B.json",
    "ensemble, mixed samples, rank": "archon-70Bx9_70B_models_10_samples_top_only_then_ranker_top_5_then_fuse_with_Gemini_1.5_Pro.json",
    "rank and critique": "Llama-3.1-405B_10samples_rank_top_3_then_critic_then_fuse.json",
    "critique": "Wizard8x22_10_samples_then_critic_then_fuser_with_Qwen_1.5_110B.json",
    "MoA, N fusers per layer": "MoA.json",
    "MoA, 3 proposer layers": "MoA_three_proposer_layers_of_70Bx8_models_to_4_models_to_2_models_with_Qwen2_72B_for_aggregation_layer.json",
    "generators and fusers in one layer": "archon-70Bx10_SOTA_1_samples_then_critic_then_fuse_with_Claude_3.5_Sonnet.json",
    "a second generator layer": "archon-8-proposer-2-layer-qwen110b-fuser.json",
    "unit tests, first_pass": "archon-claude-3.5-sonnet_sample_5_then_unit_test_generation_10_with_claude-3.5-sonnet_then_unit_test_evaluation_with_claude-3.5-sonnet_first_pass.json",
    "unit tests first_k 3, verifier first_k 1": "archon-gpt-4o-sample_5_then_unit_test_generation_5_with_gpt-4o_then_unit_test_evaluation_with_gpt-4o_first_3_then_verifier_with_gpt-4o_first_1.json",
    "unit tests without evaluator": "Llama-3.1-405B_10_samples_then_unit_test_generation_with_llama_3.1_405B_then_fuse_with_llama_3.1_70B.json",
    "verifier": "archon-70Bx8_2_samples_then_verifier_with_llama_3.1_70B_then_fuser_with_Qwen2_72B.json",
    "old layer form, 5 branches": "archon-1-110bFuser-5-110bM.json",
    "old layer form, fusers in 2 branches": "archon-1-WizardLMRanker1-WizardLMCritic-1-WizardLMFuser2Br-1-WizardLMRanker5-1-WizardLMCritic-8-70BM3S.json",
    "bare component layer": "archon-vllm-example.json",
}

Call = tuple[str, str]  # (component kind, model)


def archon_calls(config: dict[str, Any], passing: bool) -> list[Counter[Call]]:
    """Per layer, the completions per (kind, model) the rule above gives; ``passing``: every judged
    candidate passes every unit test (else every one fails)."""
    layers: list[Counter[Call]] = []
    c = 0
    for layer in config["layers"]:
        branches = layer.get("branches", 1) if isinstance(layer, dict) and "models" in layer else 1
        comps = layer["models"] if isinstance(layer, dict) and "models" in layer else layer if isinstance(layer, list) else [layer]
        calls: Counter[Call] = Counter()
        produced = None
        for comp in comps:
            kind, model = comp["type"], comp["model"]
            if kind in ("generator", "fuser"):
                n = comp.get("samples", 1) * branches
                calls[(kind, model)] += n
                produced = (produced or 0) + n
            elif kind in ("critic", "ranker", "unit_test_generator"):
                calls[(kind, model)] += 1
                if kind == "ranker":
                    produced = min(c, comp["top_k"])
            else:  # verifier (always verifies here): two calls per candidate; unit_test_evaluator: one
                first_k = comp.get("first_k") or (1 if comp.get("first_pass") else None)
                stops = first_k is not None and (kind == "verifier" or passing)
                checked = min(c, first_k) if stops and first_k else c
                calls[(kind, model)] += 2 * checked if kind == "verifier" else checked
                produced = checked if stops or kind == "verifier" else min(c, comp.get("top_k") or c)
        layers.append(calls)
        c = c if produced is None else produced
    return layers


def observed(log: list[Any]) -> list[tuple[float, float, Call, int]]:
    """(start, end, (kind, model), completions) per request, by start time; the kind from Archon's system prompt."""
    out = []
    for entry in log:
        body = entry.body
        system = next((m["content"] for m in body["messages"] if m["role"] == "system"), None)
        out.append((entry.start, entry.end, (KIND_OF_SYSTEM.get(system, "generator"), body["model"]), body.get("n") or 1))
    return sorted(out)


def completions(entries: list[tuple[float, float, Call, int]]) -> Counter[Call]:
    total: Counter[Call] = Counter()
    for _, _, call, n in entries:
        total[call] += n
    return total


@needs_configs
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("passing", [False, True], ids=["tests fail", "tests pass"])
def test_calls_per_layer_equal_archons(shape, passing):
    path = CONFIGS / SHAPES[shape]
    config = json.loads(path.read_text())
    if passing and "unit_test_evaluator" not in path.read_text():
        pytest.skip("no unit-test evaluator: the same run as with failing tests")
    done = convert_file(path, backend="srv")
    assert done.spec is not None, done.problems
    expected = archon_calls(config, passing)

    async def go(url: str) -> None:
        rt = Runtime({"srv": OpenAISettings(base_url=url, api_key_env=None, max_concurrency=64)}, store=False)
        try:
            assert done.spec is not None
            await CompiledPipeline(done.spec).run("What is the capital of Australia? Answer in one word.", rt)
        finally:
            await rt.aclose()

    with FakeOpenAIServer(reply=lambda prompt, k: reply(prompt, k, passing)) as srv:
        asyncio.run(go(srv.base_url))
        log = observed(srv.log)
    # The test writer reads only the query, so it may run beside the next layer; checked apart.
    writers = [e for e in log if e[2][0] == "unit_test_generator"]
    rest = [e for e in log if e[2][0] != "unit_test_generator"]
    assert completions(writers) == sum((Counter({k: v for k, v in layer.items() if k[0] == "unit_test_generator"})
                                        for layer in expected), Counter())
    at = 0
    for i, layer in enumerate(expected, 1):
        want = Counter({k: v for k, v in layer.items() if k[0] != "unit_test_generator"})
        end, got = at, 0
        while end < len(rest) and got < sum(want.values()):
            got += rest[end][3]
            end += 1
        segment = rest[at:end]
        assert completions(segment) == want, f"layer {i} of {path.name}"
        if at and segment:  # every request of this layer starts after the previous layer's requests ended
            assert min(e[0] for e in segment) >= max(e[1] for e in rest[:at])
        at = end
    assert at == len(rest), f"{len(rest) - at} requests more than Archon makes"
