"""The original Archon JSON format (``{"name": ..., "layers": [[{"type": "generator", ...}], ...]}``)
translated into a pipeline file, with Archon's semantics (read from ``src/archon/completions`` of
ScalingIntelligence/Archon).

Archon runs the layers in order over a state (``candidates``, ``critiques``, ``unit_tests``); every
component of a layer reads the previous layer's state, and a key no component of a layer writes
passes on unchanged. Each layer becomes one node per component type and settings, reading the nodes
of the layer before it. The calls per layer, the rule the import keeps (checked on a local server by
tests/archon/test_import_archon_calls.py):

- ``generator``: ``samples`` completions of its model for the query. It never reads the candidates
  before it (a generator layer after another layer replaces them), so it becomes ``generate`` with
  prompt ``{query}``; its inputs only order it after the previous layer, as Archon does.
  Generators of one layer with the same samples and settings share one node (an ensemble); a model
  listed k times is listed once with k x samples (k identical requests would share a cache entry).
- ``fuser``: ``samples`` completions per fuser, each reading every candidate (and critique): the N
  fusers of a layer (Mixture-of-Agents) are one ``fuse`` node with N fuser models, N x samples
  candidates. ``length_control`` adds Archon's length sentence to the fuser's prompt.
- ``critic``: one call reviewing all candidates (``critique``, ``per: all``); candidates pass on.
- ``ranker``: one call (Archon forces ``samples`` to 1); keeps ``top_k``.
- ``verifier``: per candidate, two calls (reasoning, then a verdict reading it): ``verify`` with
  ``steps: 2``. ``first_k`` stops once that many passed: Archon checks one candidate at a time, so
  the import sets ``batch: 1`` (raise it to check several at once, at the cost of wasted calls).
- ``unit_test_generator``: one call writing ``unit_test_cap`` checks (``write_tests``, style nl). The
  tests travel forward in Archon's state to the next ``unit_test_evaluator``, however many layers
  later, so that evaluator reads the write_tests node directly. Archon also appends them to the
  query itself ("Your response should pass the following unit tests: ..."), so every later
  generator, fuser, critic, ranker and verifier reads them too: each reads the write_tests node and
  its prompt has ``{tests}`` after ``{query}``.
- ``unit_test_evaluator``: one judge call per candidate (``unit_test``, style nl), one candidate at a
  time; with ``first_k`` (or the legacy ``first_pass`` = ``first_k: 1``) judging stops at the
  first_k-th candidate passing every test and those are kept (``first_k``, ``batch: 1``); when fewer
  pass, every candidate is kept best first (cut to ``top_k``).

Layer forms: a list of components; the old ``{"branches": N, "models": [...]}``, where N branches run
the layer N times side by side and their candidates join (N x the samples of each generator and
fuser; the released Archon reads only ``models``, so it says so in a note); a bare component object
(Archon raises KeyError on it) is read as a one-component layer, with a note.
"""

from __future__ import annotations

__all__ = ["MODEL_TYPES", "SYSTEM_PROMPTS", "Converted", "convert_file", "convert_folder", "from_archon", "is_archon_config"]

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archon.exceptions import SpecError, suggest

if TYPE_CHECKING:
    from archon.spec import PipelineSpec

#: The original ``model_type`` values and the preset each maps to.
MODEL_TYPES = {
    "OpenAI_API": "openai",
    "Together_API": "together",
    "Anthropic_API": "anthropic",
    "Groq_API": "groq",
    "Google_API": "google",
    "OpenRouter_API": "openrouter",
    "vLLM": "vllm",
    "VLLM": "vllm",
    "Ollama": "ollama",
}
#: model_type values with no OpenAI-compatible endpoint to map to: the user names one.
_NO_PRESET = {"Bedrock_API": "AWS Bedrock has no OpenAI-compatible endpoint preset", "tgi": "a TGI server's URL is yours",
              "": "an empty model_type (PairRM rankers, which run no LLM) has no backend"}
#: The system prompt Archon sends with each component's calls.
SYSTEM_PROMPTS = {
    "generator": "You are a helpful assistant",
    "fuser": "You are a helpful assistant who fuses multiple answers",
    "critic": "You are a critical evaluator.",
    "ranker": "You are a helpful assistant who ranks multiple answers",
    "verifier": "You are a reasoning generator for instructions and their responses.",
    "unit_test_generator": "You are a unit test generator.",
    "unit_test_evaluator": "You are a unit test evaluator",
}
_LENGTH_SENTENCE = "The fused response can only be as long as the longest response in the current candidate pool.\n"
_COMMON = {"type", "model", "model_type", "temperature", "max_tokens", "max_context_length", "samples", "top_k"}
# Keys accepted and dropped, each with the note that says why (Archon's code reads none of them, or
# its behaviour is built in here).
_IGNORED = {
    "checkpoint": "'checkpoint' is ignored (Archon's components never read it)",
    "ranker_batch_size": "'ranker_batch_size' is ignored (it batches PairRM only; one ranking call sees all candidates)",
    "use_critiques": "'use_critiques' is ignored (Archon's ranker reads critiques whenever present; so do rank and fuse)",
    "remove_unit_tests_from_prompt": "'remove_unit_tests_from_prompt' is ignored (the unit-test judge always reads the query without the tests)",
    "batch_num": "'batch_num' is ignored (Archon's verifier never reads it; it checks candidates in order)",
    "top_k_generations": "'top_k_generations' is ignored (commented out in Archon's Fuser)",
    "fuse_generations_count": "'fuse_generations_count' is ignored (Archon's Fuser never reads it)",
    "ranker_config": "'ranker_config' is ignored (Archon's Fuser never reads it)",
    "length_contorl": "'length_contorl' (misspelt) is ignored, as the original ignored it: length control stays off",
    "no_system": "",  # mapped: no system prompt
    "length_control": "",  # mapped: the length sentence in the fuser prompt
    "first_pass": "",  # mapped: first_k 1
}
_EXTRA = {
    "generator": {"no_system", "checkpoint"},
    "fuser": {"length_control", "length_contorl", "top_k_generations", "fuse_generations_count", "ranker_config",
              "remove_unit_tests_from_prompt", "ranker_batch_size", "use_critiques", "checkpoint"},
    "critic": {"ranker_batch_size", "checkpoint"},
    "ranker": {"ranker_batch_size", "use_critiques"},
    "verifier": {"first_k", "batch_size", "batch_num", "checkpoint"},
    "unit_test_generator": {"unit_test_cap"},
    "unit_test_evaluator": {"first_k", "first_pass", "remove_unit_tests_from_prompt", "unit_test_cap"},
}
_ONE_PER_LAYER = ("critic", "ranker", "verifier", "unit_test_generator", "unit_test_evaluator")


def is_archon_config(data: Any) -> bool:
    return isinstance(data, dict) and "layers" in data and "nodes" not in data


def from_archon(data: dict[str, Any], source: str = "<archon config>", backend: str | None = None,
                notes: list[str] | None = None) -> dict[str, Any]:
    """A pipeline-file dict for an original Archon config. ``backend`` overrides every model_type;
    what is dropped or reinterpreted is appended to ``notes`` (one line each)."""
    problems: list[str] = []
    said: dict[str, None] = {}  # notes, deduplicated, in order
    layers = data.get("layers")
    if not isinstance(layers, list) or not layers:
        raise SpecError(f"{source}: 'layers' must be a non-empty list of layers.")
    nodes: list[dict[str, Any]] = []
    previous: list[str] = []  # node ids whose candidates the next layer reads
    tests_node: str | None = None
    for li, layer in enumerate(layers, 1):
        comps, branches = _layer_components(layer, li, source, problems, said)
        if comps is None:
            continue
        groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        for ci, comp in enumerate(comps, 1):
            kind = _check_component(comp, f"{source}: layer {li}, component {ci}", backend, problems, said)
            if kind is not None:
                groups.setdefault((kind, *_group_key(kind, comp)), []).append(comp)
        kinds = [key[0] for key in groups]
        for kind in _ONE_PER_LAYER:
            if kinds.count(kind) > 1 or len(next((g for k, g in groups.items() if k[0] == kind), [])) > 1:
                problems.append(f"{source}: layer {li}: more than one {kind} in a layer cannot be mapped "
                                f"(Archon's own configs have one); split them into layers.")
        layer_nodes: list[str] = []
        seen: dict[str, int] = {}
        for kind, group, repeat in _split_repeats(groups, backend):
            seen[kind] = seen.get(kind, 0) + 1
            node_id = f"l{li}_{kind}" + (f"_{seen[kind]}" if seen[kind] > 1 else "")
            refs = [f"{backend or MODEL_TYPES[c['model_type']]}/{c['model']}" for c in group]
            node = {"id": node_id, **_node(kind, group, refs, branches * repeat, previous, tests_node, li, source, problems, said)}
            inputs = list(previous)
            if kind == "unit_test_generator":
                inputs, tests_node = [], node_id
            elif kind in ("generator", "fuser", "critic", "ranker", "verifier") and tests_node:
                inputs.append(tests_node)  # for {tests}: Archon's later components read the tests in the query
            elif kind == "unit_test_evaluator":
                if tests_node is None:
                    problems.append(f"{source}: layer {li}: a unit_test_evaluator needs a unit_test_generator in an "
                                    "earlier layer (Archon fails without unit tests); add one.")
                else:
                    inputs.append(tests_node)
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
        raise SpecError(f"{source}: the last layer must produce one node's output (it has {len(previous)}: "
                        f"{', '.join(previous)}); end with a fuser or ranker.")
    if notes is not None:
        notes.extend(f"{source}: {n}" for n in said)
    return {"name": str(data.get("name") or "archon-import"), "nodes": nodes, "output": previous[0]}


def _split_repeats(groups: dict[tuple[Any, ...], list[dict[str, Any]]],
                   backend: str | None) -> list[tuple[str, list[dict[str, Any]], int]]:
    """(kind, components, repeat) per node: a model listed k times among a layer's generators (or
    fusers) with the same settings is listed once with k x the samples, since k identical requests
    would share one cache entry where Archon draws k independent ones."""
    out: list[tuple[str, list[dict[str, Any]], int]] = []
    for key, group in groups.items():
        if key[0] not in ("generator", "fuser"):
            out.append((key[0], group, 1))
            continue
        refs = [f"{backend or MODEL_TYPES[c['model_type']]}/{c['model']}" for c in group]
        by_repeat: dict[int, list[dict[str, Any]]] = {}
        for i, comp in enumerate(group):
            if refs[i] not in refs[:i]:
                by_repeat.setdefault(refs.count(refs[i]), []).append(comp)
        out += [(key[0], comps, repeat) for repeat, comps in by_repeat.items()]
    return out


def _layer_components(layer: Any, li: int, source: str, problems: list[str],
                      said: dict[str, None]) -> tuple[list[Any] | None, int]:
    """The layer's components and its number of branches (the old form), or None after a problem."""
    if isinstance(layer, list):
        comps: Any = layer
        branches: Any = 1
    elif isinstance(layer, dict) and "models" in layer:
        comps, branches = layer["models"], layer.get("branches", 1)
        extra = set(layer) - {"models", "branches"}
        if extra:
            problems.append(f"{source}: layer {li}: key(s) {', '.join(sorted(extra))} cannot be mapped; "
                            "an old-form layer has only 'branches' and 'models'.")
        if not isinstance(branches, int) or isinstance(branches, bool) or branches < 1:
            problems.append(f"{source}: layer {li}: 'branches' must be a whole number >= 1 (got {branches!r}).")
            return None, 1
        if branches > 1:
            said[f"layer {li}: 'branches: {branches}' runs the layer's generators and fusers {branches} times side "
                 f"by side, their candidates joined (the released Archon reads only 'models', one branch)"] = None
    elif isinstance(layer, dict) and "type" in layer:
        said[f"layer {li} is one component, not a list (Archon itself raises KeyError 'models' on it); "
             "read as a one-component layer"] = None
        comps, branches = [layer], 1
    else:
        problems.append(f"{source}: layer {li}: must be a list of components, {{'models': [...]}} or one component.")
        return None, 1
    if not isinstance(comps, list) or not comps:
        problems.append(f"{source}: layer {li}: must hold at least one component.")
        return None, 1
    return comps, branches


def _check_component(comp: Any, where: str, backend: str | None, problems: list[str], said: dict[str, None]) -> str | None:
    """The component's type when it can be mapped; otherwise None after appending the problems."""
    kind = comp.get("type") if isinstance(comp, dict) else None
    if kind not in _EXTRA:
        problems.append(f"{where}: type {kind!r} cannot be mapped.{suggest(str(kind), _EXTRA)} Supported: {', '.join(_EXTRA)}")
        return None
    ok = True
    for key in comp:
        if key not in _COMMON | _EXTRA[kind]:
            problems.append(f"{where} ({kind}): key '{key}' cannot be mapped; remove it "
                            f"(supported: {', '.join(sorted(_COMMON | _EXTRA[kind]))}).")
            ok = False
        elif _IGNORED.get(key):
            said[_IGNORED[key]] = None
    if "model" not in comp:
        problems.append(f"{where} ({kind}): missing 'model'.")
        return None
    mt = comp.get("model_type")
    if backend is None and mt not in MODEL_TYPES:
        why = _NO_PRESET.get(mt) if isinstance(mt, str) else None
        hint = f" ({why})" if why else suggest(str(mt), MODEL_TYPES)
        problems.append(f"{where} ({kind}): model_type {mt!r} has no preset{hint}; pass --backend NAME to run every "
                        f"model on one backend (a preset or one your pipeline defines). Known: {', '.join(MODEL_TYPES)}.")
        return None
    if kind not in ("generator", "fuser", "ranker") and comp.get("samples", 1) != 1:
        said[f"a {kind} with samples {comp['samples']}: Archon made that many calls and used the first; here one"] = None
    return kind if ok else None


def _group_key(kind: str, comp: dict[str, Any]) -> tuple[Any, ...]:
    """Components of one type share a node when these settings match."""
    if kind in ("generator", "fuser"):
        return (comp.get("samples", 1), comp.get("temperature"), comp.get("max_tokens"), bool(comp.get("no_system")),
                bool(comp.get("length_control")))
    return ()


def _settings(kind: str, comp: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "temperature" in comp:
        out["temperature"] = comp["temperature"]
    if "max_tokens" in comp:
        out["max_tokens"] = comp["max_tokens"]
    if not comp.get("no_system"):
        out["system"] = SYSTEM_PROMPTS[kind]
    return out


def _with_tests(template: str, tests_node: str | None) -> str:
    """Archon's unit-test generator appends its tests to the query itself, so every later component
    reads them after the query; here they reach ``{tests}`` from the write_tests node (an input)."""
    return template.replace("{query}", "{query} Your response should pass the following unit tests: \n{tests}", 1) if tests_node else template


def _tests_prompt(template: str, tests_node: str | None) -> dict[str, str]:
    return {"prompt": _with_tests(template, tests_node)} if tests_node else {}


def _node(kind: str, group: list[dict[str, Any]], refs: list[str], branches: int, previous: list[str],
          tests_node: str | None, li: int, source: str, problems: list[str], said: dict[str, None]) -> dict[str, Any]:
    comp = group[0]
    base = _settings(kind, comp)
    model: str | list[str] = refs if len(refs) > 1 else refs[0]
    if branches > 1 and kind not in ("generator", "fuser"):
        problems.append(f"{source}: layer {li}: 'branches: {branches}' with a {kind} cannot be mapped; "
                        "only generator and fuser layers branch.")
    if kind == "generator":
        out = {"op": "generate", "model": model, "samples": comp.get("samples", 1) * branches, **base}
        if previous or tests_node:  # Archon's generators answer the query, whatever came before
            out["prompt"] = _with_tests("{query}", tests_node)
        return out
    if kind == "fuser":
        from operators.fuse import DEFAULT_PROMPT as FUSE

        out = {"op": "fuse", "model": model, "samples": comp.get("samples", 1) * branches, **base}
        prompt = FUSE.replace("\n\nQuery:", f"\n{_LENGTH_SENTENCE.strip()}\n\nQuery:", 1) if comp.get("length_control") else FUSE
        if comp.get("length_control") or tests_node:
            out["prompt"] = _with_tests(prompt, tests_node)
        if not previous:
            said[f"layer {li}: a fuser with no candidates before it (Archon fails its assertion) answers the query"] = None
        return out
    if kind == "critic":
        from operators.critique import ALL_PROMPT

        return {"op": "critique", "model": model, "per": "all", **base, **_tests_prompt(ALL_PROMPT, tests_node)}
    if kind == "ranker":
        from operators.rank import DEFAULT_PROMPT as RANK

        return {"op": "rank", "model": model, "top_k": comp.get("top_k", 5), **base, **_tests_prompt(RANK, tests_node)}
    if kind == "verifier":
        from operators.verify import REASONING_PROMPT, VERDICT_PROMPT

        out = {"op": "verify", "model": model, "steps": 2, **base, **_tests_prompt(REASONING_PROMPT, tests_node)}
        if tests_node:
            out["verdict_prompt"] = _with_tests(VERDICT_PROMPT, tests_node)
        if comp.get("first_k"):  # Archon verifies one candidate at a time, stopping at the first_k-th verified
            out.update(first_k=comp["first_k"], batch=1)
        return out
    if kind == "unit_test_generator":
        return {"op": "write_tests", "model": model, "style": "nl", "num_tests": comp.get("unit_test_cap") or 5, **base}
    # unit_test_evaluator: LLM-judged natural-language tests, best first
    out = {"op": "unit_test", "model": model, "style": "nl", "tests": "inputs", **base}
    first_k = comp.get("first_k") or (1 if comp.get("first_pass") else None)
    if first_k:  # one candidate at a time, stopping at the first_k-th passing every test, as Archon's evaluator
        out.update(first_k=first_k, batch=1)
    if comp.get("top_k"):
        out["top_k"] = comp["top_k"]
    return out


@dataclass
class Converted:
    """One config file's translation: the validated pipeline, or the problems that refused it."""

    path: Path
    spec: PipelineSpec | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def convert_file(path: Path, backend: str | None = None) -> Converted:
    """Read, translate and validate one Archon JSON config; never raises for a bad file."""
    from archon.spec import parse_pipeline

    out = Converted(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        out.problems.append(f"{path}: cannot read it ({exc.strerror}).")
        return out
    except UnicodeDecodeError as exc:
        out.problems.append(f"{path}: not UTF-8 text (byte {exc.start}).")
        return out
    except json.JSONDecodeError as exc:
        out.problems.append(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}")
        return out
    if not is_archon_config(data):
        out.problems.append(f"{path}: not an Archon config (it needs 'layers': a list of layers of components).")
        return out
    try:
        pipeline = from_archon(data, source=str(path), backend=backend, notes=out.notes)
        out.spec = parse_pipeline(pipeline, source=str(path), default_name=path.stem, check_backends=backend is None)
    except SpecError as exc:
        out.problems.extend(exc.problems)
    return out


def convert_folder(root: Path, backend: str | None = None) -> list[Converted]:
    """Every ``*.json`` under ``root`` (recursively, in path order), translated and validated."""
    return [convert_file(p, backend) for p in sorted(root.rglob("*.json")) if p.is_file()]
