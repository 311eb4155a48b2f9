"""The original Archon JSON format (``{"name": ..., "layers": [[{"type": "generator", ...}], ...]}``)
translated into a pipeline file.

Each layer becomes one node per component type and reads every node of the layer before it.
Generators in the first layer sample the query; generators after another layer see its outputs,
which is what a mixture-of-agents layer does, so they become ``fuse`` nodes with one fuser per
model. A ``unit_test_generator`` layer writes tests that reach the next ``unit_test_evaluator``
only, so the generators after it still answer the query.
"""

from __future__ import annotations

__all__ = ["MODEL_TYPES", "from_archon", "is_archon_config"]

from typing import Any

from archon.exceptions import SpecError, suggest

#: The original ``model_type`` values and the preset each maps to.
MODEL_TYPES = {
    "OpenAI_API": "openai",
    "Together_API": "together",
    "Anthropic_API": "anthropic",
    "Groq_API": "groq",
    "OpenRouter_API": "openrouter",
    "vLLM": "vllm",
    "VLLM": "vllm",
    "Ollama": "ollama",
}
_COMMON = {"type", "model", "model_type", "temperature", "max_tokens", "max_context_length", "samples", "top_k"}
# Accepted and dropped, with why: each has no effect here or its behaviour is built in.
_IGNORED = {
    "ranker_batch_size",  # one ranking call sees all candidates
    "use_critiques",  # rank and fuse always read critiques when present
    "remove_unit_tests_from_prompt",  # tests never enter the candidates' prompts
    "checkpoint",
}
_EXTRA = {
    "generator": set(),
    "fuser": set(),
    "critic": set(),
    "ranker": set(),
    "verifier": {"first_k", "batch_size"},
    "unit_test_generator": {"unit_test_cap"},
    "unit_test_evaluator": {"first_k"},
}


def is_archon_config(data: Any) -> bool:
    return isinstance(data, dict) and "layers" in data and "nodes" not in data


def from_archon(data: dict[str, Any], source: str = "<archon config>", backend: str | None = None) -> dict[str, Any]:
    """A pipeline-file dict for an original Archon config. ``backend`` overrides every model_type."""
    problems: list[str] = []
    layers = data.get("layers")
    if not isinstance(layers, list) or not layers:
        raise SpecError(f"{source}: 'layers' must be a non-empty list of layers.")
    nodes: list[dict[str, Any]] = []
    previous: list[str] = []  # node ids of the last layer that produced candidates
    tests_node: str | None = None
    for li, layer in enumerate(layers, 1):
        comps = layer.get("models") if isinstance(layer, dict) else layer
        if isinstance(layer, dict) and layer.get("branches", 1) != 1:
            problems.append(f"{source}: layer {li}: 'branches: {layer['branches']}' cannot be mapped; only 1 branch is supported.")
        if not isinstance(comps, list) or not comps:
            problems.append(f"{source}: layer {li}: must be a list of components (or {{'models': [...]}}).")
            continue
        groups: dict[str, list[dict[str, Any]]] = {}
        for ci, comp in enumerate(comps, 1):
            where = f"{source}: layer {li}, component {ci}"
            kind = comp.get("type") if isinstance(comp, dict) else None
            if kind not in _EXTRA:
                problems.append(f"{where}: type {kind!r} cannot be mapped.{suggest(str(kind), _EXTRA)} Supported: {', '.join(_EXTRA)}")
                continue
            for key in comp:
                if key not in _COMMON | _IGNORED | _EXTRA[kind]:
                    problems.append(f"{where} ({kind}): key '{key}' cannot be mapped; remove it (supported: {', '.join(sorted(_COMMON | _EXTRA[kind]))}).")
            if "model" not in comp:
                problems.append(f"{where} ({kind}): missing 'model'.")
                continue
            mt = comp.get("model_type")
            if backend is None and mt not in MODEL_TYPES:
                problems.append(f"{where} ({kind}): model_type {mt!r} has no preset.{suggest(str(mt), MODEL_TYPES)} "
                                f"Known: {', '.join(MODEL_TYPES)}; or pass --backend NAME to use one backend for every model.")
                continue
            groups.setdefault(kind, []).append(comp)
        layer_nodes: list[str] = []
        for kind, group in groups.items():
            node_id = f"l{li}_{kind}"
            ref = [f"{backend or MODEL_TYPES[c['model_type']]}/{c['model']}" for c in group]
            base = _settings(group[0])
            if kind == "generator":
                samples = {c.get("samples", 1) for c in group}
                if len(samples) > 1:
                    problems.append(f"{source}: layer {li}: generators with different 'samples' ({sorted(samples)}) cannot share a layer here; split them.")
                op = "fuse" if previous else "generate"
                node = {"id": node_id, "op": op, "model": ref if len(ref) > 1 else ref[0], "samples": samples.pop(), **base}
            else:
                if len(group) > 1:
                    problems.append(f"{source}: layer {li}: {len(group)} {kind}s in one layer cannot be mapped; use one.")
                comp = group[0]
                node = {"id": node_id, **_component(kind, comp, ref[0], base)}
            inputs = list(previous)
            if kind == "generator" and node["op"] == "generate":
                inputs = []
            if kind == "unit_test_evaluator" and tests_node:
                inputs.append(tests_node)
            if kind == "unit_test_generator":
                inputs = []
                tests_node = node_id
            if inputs:
                node["inputs"] = inputs
            nodes.append(node)
            if kind != "unit_test_generator":
                layer_nodes.append(node_id)
        if layer_nodes:
            previous = layer_nodes
    if problems:
        raise SpecError(problems)
    if len(previous) != 1:
        raise SpecError(f"{source}: the last layer must produce one node's output (it has {len(previous)}); end with a fuser or ranker.")
    return {"name": str(data.get("name") or "archon-import"), "nodes": nodes, "output": previous[0]}


def _settings(comp: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "temperature" in comp:
        out["temperature"] = comp["temperature"]
    if "max_tokens" in comp:
        out["max_tokens"] = comp["max_tokens"]
    return out


def _component(kind: str, comp: dict[str, Any], model: str, base: dict[str, Any]) -> dict[str, Any]:
    if kind == "fuser":
        return {"op": "fuse", "model": model, "samples": comp.get("samples", 1), **base}
    if kind == "critic":
        return {"op": "critique", "model": model, "per": "all", **base}
    if kind == "ranker":
        return {"op": "rank", "model": model, "top_k": comp.get("top_k", 5), **base}
    if kind == "verifier":
        out = {"op": "verify", "model": model, **base}
        if comp.get("first_k"):
            out["first_k"] = comp["first_k"]
        return out
    if kind == "unit_test_generator":
        return {"op": "write_tests", "model": model, "style": "nl", "num_tests": comp.get("unit_test_cap", 5), **base}
    # unit_test_evaluator: LLM-judged natural-language tests, best first
    return {"op": "unit_test", "model": model, "style": "nl", "tests": "inputs", "top_k": comp.get("first_k") or comp.get("top_k", 1), **base}
