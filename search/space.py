"""Search spaces: a pipeline file whose values may be choices.

Any setting may be a choice, and nodes may be optional or repeated::

    name: code-search
    nodes:
      - id: draft
        op: generate
        model: {choices: [local/gemma-3-270m]}
        samples: {choices: [1, 3, 5, 10]}
        temperature: {low: 0.2, high: 1.0}        # a float range (add step or log: true)
        mode: completion
      - id: critic
        op: critique
        optional: true                             # in or out; consumers then read its inputs
        inputs: [draft]
        model: local/gemma-3-270m
      - id: refine
        op: fuse
        repeat: {choices: [1, 2]}                  # layers: refine_1 -> refine_2 (chained)
        inputs: [critic]
        model: local/gemma-3-270m

A choice is ``{choices: [...]}`` (any JSON values), ``{low, high}`` (float; int when both are
ints; ``step``, ``log``) and may appear anywhere in a node's settings, lists included (route
thresholds). The parameter names are ``<node>.<setting>`` (``<node>.<setting>.<i>`` in lists),
``<node>.enabled`` and ``<node>.repeat``. Sampling keeps every pipeline valid by construction: an
optional node that is left out is bypassed (its consumers read its inputs), so generation stays
first, a critique stays before the rank or fuse that reads it, and generated tests stay paired with
the unit_test that evaluates them.
"""

from __future__ import annotations

__all__ = ["FunctionSpace", "SearchSpace", "load_space", "space_json_schema"]

import importlib
import importlib.util
import json
from pathlib import Path
from typing import Any

from archon.exceptions import SpecError, UserError
from archon.spec import PipelineSpec, parse_pipeline, read_yaml

_NODE_EXTRA = ("optional", "repeat")


def _is_choice(v: Any) -> bool:
    return isinstance(v, dict) and ("choices" in v or ("low" in v and "high" in v))


class _Space:
    """What every search space offers; subclasses implement ``sample(trial) -> PipelineSpec``."""

    name: str

    def sample(self, trial: Any) -> PipelineSpec:
        raise NotImplementedError

    def sample_first(self) -> PipelineSpec:
        """The pipeline made of every optional node and the first of every choice."""
        return self.sample(_FirstChoice())

    def params(self) -> list[str]:
        """The parameter names of the space (for grids and reports)."""
        rec = _Recorder()
        self.sample(rec)
        return rec.names


class SearchSpace(_Space):
    """A parsed search space; ``sample(trial)`` turns an Optuna trial into a checked pipeline."""

    def __init__(self, data: dict[str, Any], source: str = "<space>"):
        if not isinstance(data, dict) or not isinstance(data.get("nodes"), list) or not data["nodes"]:
            raise SpecError(f"{source}: a search space is a pipeline file with 'nodes:' (values may be choices).")
        self.data = data
        self.source = source
        self.name = str(data.get("name") or Path(source).stem)
        self._check()

    def _check(self) -> None:
        problems = []
        for i, node in enumerate(self.data["nodes"]):
            nid = node.get("id", f"#{i + 1}") if isinstance(node, dict) else f"#{i + 1}"
            if not isinstance(node, dict):
                problems.append(f"{self.source}: node {nid}: must be a mapping.")
                continue
            if node.get("optional") and not node.get("inputs"):
                problems.append(f"{self.source}: node '{nid}': an optional node needs 'inputs' (its consumers read them when it is left out).")
            for key, value in node.items():
                for c in _choices_in(value):
                    if "choices" in c and (not isinstance(c["choices"], list) or not c["choices"]):
                        problems.append(f"{self.source}: node '{nid}': field '{key}': 'choices' must be a non-empty list.")
                    if "low" in c and not (isinstance(c["low"], (int, float)) and isinstance(c["high"], (int, float)) and c["low"] <= c["high"]):
                        problems.append(f"{self.source}: node '{nid}': field '{key}': need numbers with low <= high.")
        if problems:
            raise SpecError(problems)
        # Every extreme of the space must be a valid pipeline: check the all-in sample.
        self.sample(_FirstChoice())

    def sample(self, trial: Any) -> PipelineSpec:
        """The pipeline this trial picks (each choice asked of the trial by name)."""
        nodes: list[dict[str, Any]] = []
        renamed: dict[str, list[str]] = {}  # node id -> the ids consumers should read instead
        for raw in self.data["nodes"]:
            nid = raw["id"]
            if raw.get("optional"):
                if not trial.suggest_categorical(f"{nid}.enabled", [True, False]):
                    renamed[nid] = _resolve(raw.get("inputs") or [], renamed)
                    continue
            settings = {k: _pick(v, trial, f"{nid}.{k}") for k, v in raw.items() if k not in ("id", "op", "inputs", *_NODE_EXTRA)}
            inputs = _resolve(list(raw.get("inputs") or []), renamed)
            copies = int(_pick(raw["repeat"], trial, f"{nid}.repeat")) if "repeat" in raw else 1
            if copies < 1:
                renamed[nid] = inputs
                continue
            prev = inputs
            for k in range(copies):
                cid = nid if copies == 1 else f"{nid}_{k + 1}"
                node = {"id": cid, "op": raw["op"], **({"inputs": prev} if prev else {}), **settings}
                nodes.append(node)
                prev = [cid]
            renamed[nid] = prev
        output = self.data.get("output") or self.data["nodes"][-1]["id"]
        outs = _resolve([output], renamed)
        if len(outs) != 1:
            nodes.append({"id": "output", "op": "merge", "inputs": outs})
            outs = ["output"]
        pipeline = {"name": self.name, "nodes": nodes, "output": outs[0]}
        if self.data.get("backends"):
            pipeline["backends"] = self.data["backends"]
        return parse_pipeline(pipeline, source=self.source, default_name=self.name, check_backends=False)


def _choices_in(value: Any):
    if _is_choice(value):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from _choices_in(v)


def _pick(value: Any, trial: Any, name: str) -> Any:
    if isinstance(value, list):
        return [_pick(v, trial, f"{name}.{i}") for i, v in enumerate(value)]
    if not _is_choice(value):
        return value
    if "choices" in value:
        options = value["choices"]
        # Optuna's categorical choices must be primitives: lists and dicts go in as JSON text.
        keys = [o if isinstance(o, (str, int, float, bool)) or o is None else json.dumps(o) for o in options]
        picked = trial.suggest_categorical(name, keys)
        return options[keys.index(picked)]
    low, high = value["low"], value["high"]
    if isinstance(low, int) and isinstance(high, int) and not isinstance(value.get("step", 1), float):
        return trial.suggest_int(name, low, high, step=value.get("step", 1), log=bool(value.get("log")))
    return trial.suggest_float(name, float(low), float(high), step=value.get("step"), log=bool(value.get("log")))


def _resolve(ids: list[str], renamed: dict[str, list[str]]) -> list[str]:
    out: list[str] = []
    for i in ids:
        for j in renamed.get(i, [i]):
            if j not in out:
                out.append(j)
    return out


class _FirstChoice:
    """A stand-in trial that takes every optional node and the first of every choice."""

    def suggest_categorical(self, name, choices):
        return choices[0]

    def suggest_int(self, name, low, high, step=1, log=False):
        return low

    def suggest_float(self, name, low, high, step=None, log=False):
        return low


class _Recorder(_FirstChoice):
    def __init__(self):
        self.names: list[str] = []

    def suggest_categorical(self, name, choices):
        self.names.append(name)
        return choices[0]

    def suggest_int(self, name, low, high, step=1, log=False):
        self.names.append(name)
        return low

    def suggest_float(self, name, low, high, step=None, log=False):
        self.names.append(name)
        return low


class FunctionSpace(_Space):
    """A define-by-run search space: ``space(trial)`` returns a ``Pipeline`` builder, a ``PipelineSpec``
    or a pipeline mapping, asking the trial for each choice (``trial.suggest_categorical`` ...)::

        def space(trial):
            p = Pipeline("code")
            n = trial.suggest_categorical("samples", [1, 5, 10])
            draft = p.add("draft", "generate", model="local/gemma-3-270m", samples=n, mode="completion")
            if n > 1 and trial.suggest_categorical("tests", [True, False]):
                p.add("pick", "unit_test", inputs=[draft], tests="doctest")
            return p
    """

    def __init__(self, fn: Any, name: str, source: str):
        self.fn, self.name, self.source = fn, name, source
        self.sample_first()  # a space that cannot build its first pipeline is an error now, not in trial 1

    def sample(self, trial: Any) -> PipelineSpec:
        from archon.builder import Pipeline

        built = self.fn(trial)
        if isinstance(built, Pipeline):
            return built.build(check_backends=False)
        if isinstance(built, PipelineSpec):
            return built
        if isinstance(built, dict):
            return parse_pipeline(built, source=self.source, default_name=self.name, check_backends=False)
        raise SpecError(f"{self.source}: the space function returned {type(built).__name__}; "
                        "return a Pipeline, a PipelineSpec or a pipeline mapping.")


def load_space(path: str | Path) -> SearchSpace | FunctionSpace:
    """A YAML space file, or a Python one: ``space.py`` (its function ``space``), ``space.py:fn`` or ``package.module:fn``."""
    ref = str(path)
    file, _, fn_name = ref.partition(":") if ref.count(":") == 1 and not Path(ref).exists() else (ref, "", "")
    if not file.endswith(".py") and not fn_name:
        from search.archon_space import ArchonSpace, is_archon_space

        data = read_yaml(path, "search-space")
        return ArchonSpace.from_data(data, source=ref) if is_archon_space(data) else SearchSpace(data, source=ref)
    fn_name = fn_name or "space"
    if file.endswith(".py"):
        if not Path(file).is_file():
            raise UserError(f"{file}: no such search-space file.")
        spec = importlib.util.spec_from_file_location(f"archon_space_{Path(file).stem}", file)
        if spec is None or spec.loader is None:  # a .py path always has a source loader; say so if not
            raise UserError(f"{file}: Python cannot load this file as a module.")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(file)
        except ImportError as exc:
            raise UserError(f"{ref}: cannot import module '{file}' ({exc}).") from exc
    fn = getattr(module, fn_name, None)
    if isinstance(fn, FunctionSpace):  # a space object (ArchonSpace(...)) rather than a function
        return fn
    if not callable(fn):
        raise UserError(f"{ref}: no function '{fn_name}(trial)' in {file}; define one that returns a Pipeline.")
    return FunctionSpace(fn, getattr(module, "NAME", None) or Path(file).stem.replace(".", "-"), ref)


def space_json_schema() -> dict[str, Any]:
    """JSON Schema of a search-space file: the pipeline schema, where any value may be a choice."""
    from archon.spec import pipeline_json_schema

    schema = pipeline_json_schema()
    choice = {
        "oneOf": [
            {"type": "object", "required": ["choices"], "properties": {"choices": {"type": "array", "minItems": 1}}, "additionalProperties": False},
            {"type": "object", "required": ["low", "high"], "properties": {"low": {"type": "number"}, "high": {"type": "number"},
                                                                           "step": {"type": "number"}, "log": {"type": "boolean"}}, "additionalProperties": False},
        ]
    }
    schema["$defs"]["Choice"] = choice
    for name, d in schema["$defs"].items():
        if name.endswith("Node"):
            for key, prop in list(d.get("properties", {}).items()):
                if key not in ("id", "op", "inputs"):
                    d["properties"][key] = {"anyOf": [prop, {"$ref": "#/$defs/Choice"}], "description": prop.get("description", "")}
            d["properties"]["optional"] = {"type": "boolean", "description": "In or out of each sampled pipeline."}
            d["properties"]["repeat"] = {"anyOf": [{"type": "integer"}, {"$ref": "#/$defs/Choice"}], "description": "Chained copies (layers)."}
    schema["title"] = "Archon search space"
    return schema
