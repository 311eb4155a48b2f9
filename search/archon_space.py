"""Archon's search space (ITAS): the paper's axes over the user's models, with its construction rules.

A pipeline of this space is, layer by layer, what the original ITAS builds (``itas_algorithm.py``):

    generate   the top ``model_top_k`` models of the power ranking, ``sample_top_k`` samples each
    check      optional: a verifier, or a unit-test generator always followed by its evaluator
    fusion     up to 3 layers; layer i has ``fuser_layer_i`` fusers (the top-j models, one candidate
               each); a layer of 0 fusers ends the stack (later layers are not asked); before each
               layer an optional critic (one call reviewing all candidates) and an optional ranker
               (``ranker_top_k``), the critic always before the ranker and the fuser
    final      one fuser (the top model) when more than one candidate would reach the output

Critic, ranker, verifier, test writer/evaluator and final fuser are the top model of the ranking, as
in the original. ``maximum_inference_calls`` limits ``archon.bounds.calls_per_query`` (a request of n
samples is one call here; Archon counted n). Written as YAML (``examples/spaces/archon.yaml``)::

    name: archon
    backends: {srv: {base_url: "http://127.0.0.1:8000/v1"}}
    archon:
      models: [srv/a, srv/b, srv/c]
      model_top_k: [1, 2, 3]
      sample_top_k: [1, 3]
      fuser_layers: [[0, 1, 2], [0, 1], [0, 1]]
      critic: [false, true]
      ranker: [false, true]
      check: [none, verify, unit_test]
      maximum_inference_calls: 20
      power_rank: 10            # items (or a fraction below 1) each model is scored on alone first
"""

from __future__ import annotations

__all__ = ["PAPER_AXES", "ArchonAxes", "ArchonSpace", "is_archon_space"]

import math
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from archon.exceptions import SpecError
from archon.spec import PipelineSpec, parse_pipeline
from search.space import FunctionSpace, _FirstChoice

Check = Literal["none", "verify", "unit_test"]


class ArchonAxes(BaseModel):
    """The ``archon:`` section of a space file: each axis lists the values the search may pick."""

    model_config = ConfigDict(extra="forbid")

    models: list[str] = Field(..., min_length=1, description="'<backend>/<model>' of every available model; the power ranking orders them.")
    model_top_k: list[int] = Field(default=[1], min_length=1, description="Generators: the top k models of the power ranking.")
    sample_top_k: list[int] = Field(default=[1], min_length=1, description="Samples per generator model.")
    fuser_layers: list[list[int]] = Field(default=[[0]], max_length=3, description="Per fusion layer, its numbers of fusers (0: no layer).")
    critic: list[bool] = Field(default=[False], min_length=1, description="A critic before each fusion layer.")
    ranker: list[bool] = Field(default=[False], min_length=1, description="A ranker before each fusion layer.")
    ranker_top_k: int = Field(default=5, ge=1, description="Candidates a ranker keeps.")
    check: list[Check] = Field(default=["none"], min_length=1, description="After generation: none, verify, or unit_test (writer + evaluator).")
    maximum_inference_calls: int | None = Field(default=None, ge=1, description="Most model calls per query (archon.bounds.calls_per_query).")
    power_rank: float | None = Field(default=None, gt=0, description="Items each model is scored on alone before the search "
                                                                     "(a fraction of the benchmark when below 1); unset: the models' order.")
    search_sample: float | None = Field(default=None, gt=0, description="Items a trial is scored on (a fraction when below 1).")
    temperature: float = Field(default=0.7, ge=0, le=2, description="Sampling temperature of generators and fusers.")
    max_tokens: int = Field(default=2048, ge=1, description="Most tokens per generated or fused answer.")

    @field_validator("model_top_k", "sample_top_k")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if any(x < 1 for x in v):
            raise ValueError("every choice must be at least 1")
        return v

    @field_validator("fuser_layers")
    @classmethod
    def _layers(cls, v: list[list[int]]) -> list[list[int]]:
        if any(not layer or any(x < 0 for x in layer) for layer in v):
            raise ValueError("each layer lists one or more numbers of fusers, 0 or more (0: no such layer)")
        return v


#: The paper's axes at their widest over 10 models (ITAS's code: 3 fusion layers). Walked, this grid holds
#: 666,150 pipelines, 77,469 within 20 calls per query. The paper's 9,576 comes from per-axis values
#: that its released code does not contain; ours also adds check layers and critic/ranker switches.
PAPER_AXES: dict[str, Any] = {
    "model_top_k": list(range(1, 11)), "sample_top_k": [1, 2, 3, 4, 5],
    "fuser_layers": [[0, *range(1, 11)]] * 3, "critic": [False, True], "ranker": [False, True],
    "check": ["none", "verify", "unit_test"],
}


def is_archon_space(data: Any) -> bool:
    """A space file whose pipeline is Archon's (an ``archon:`` section instead of ``nodes:``)."""
    return isinstance(data, dict) and isinstance(data.get("archon"), dict) and "nodes" not in data


class ArchonSpace(FunctionSpace):
    """Archon's space over ``axes.models``; ``ranking`` (set by the power ranking) orders them, best first."""

    def __init__(self, axes: ArchonAxes | dict[str, Any], name: str = "archon", backends: dict[str, Any] | None = None,
                 source: str = "<archon space>"):
        try:
            self.axes = axes if isinstance(axes, ArchonAxes) else ArchonAxes.model_validate(axes)
        except ValidationError as exc:
            raise SpecError([f"{source}: archon.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]) from exc
        self.name, self.backends, self.source = name, backends or {}, source
        self.ranking: list[str] = list(self.axes.models)
        self.power: list[dict[str, Any]] = []  # the power ranking's figures, once run
        super().__init__(self._build, self.name, source)

    @classmethod
    def from_data(cls, data: dict[str, Any], source: str = "<archon space>") -> ArchonSpace:
        extra = set(data) - {"name", "backends", "archon"}
        if extra:
            raise SpecError(f"{source}: unknown key(s) {', '.join(sorted(extra))} beside 'archon:'; valid: name, backends, archon.")
        return cls(data["archon"], name=str(data.get("name") or "archon"), backends=data.get("backends"), source=source)

    @property
    def max_calls(self) -> int | None:
        return self.axes.maximum_inference_calls

    def items_for(self, fraction_or_n: float | None, total: int) -> int | None:
        """Items for a setting that is a count, or a fraction of ``total`` when below 1 (at least 1)."""
        if fraction_or_n is None:
            return None
        return max(1, math.ceil(fraction_or_n * total)) if fraction_or_n < 1 else min(total, int(fraction_or_n))

    # -- sampling ------------------------------------------------------------------------------

    def _build(self, trial: Any) -> PipelineSpec:
        """The pipeline this trial picks (parameters named as in Archon's search config)."""
        nodes, _ = self.plan(trial)
        data: dict[str, Any] = {"name": self.name, "nodes": nodes, "output": nodes[-1]["id"]}
        if self.backends:
            data["backends"] = self.backends
        return parse_pipeline(data, source=self.source, default_name=self.name, check_backends=False)

    def plan(self, trial: Any) -> tuple[list[dict[str, Any]], int]:
        """The pipeline's nodes and its calls per query (the same figure as ``calls_per_query``), without parsing."""
        a, top = self.axes, self.ranking
        n = len(top)
        k = int(trial.suggest_categorical("model_top_k", _fit(a.model_top_k, n)))
        s = int(trial.suggest_categorical("sample_top_k", list(dict.fromkeys(a.sample_top_k))))
        check = str(trial.suggest_categorical("check", list(dict.fromkeys(a.check))))
        gen = {"temperature": a.temperature, "max_tokens": a.max_tokens}
        nodes: list[dict[str, Any]] = [{"id": "generate", "op": "generate", "model": _models(top[:k]), "samples": s, **gen}]
        # pool: the candidates that reach the next node; bound: what calls_per_query assumes (a unit_test's
        # bound counts the tests among its inputs, one more than the candidates it passes on)
        prev, pool, bound, calls = ["generate"], k * s, k * s, k
        if check == "verify":
            nodes.append({"id": "verify", "op": "verify", "model": top[0], "inputs": prev})
            prev, calls = ["verify"], calls + bound
        elif check == "unit_test":
            nodes.append({"id": "write_tests", "op": "write_tests", "model": top[0], "style": "nl"})
            nodes.append({"id": "unit_test", "op": "unit_test", "inputs": [*prev, "write_tests"], "tests": "inputs",
                          "style": "nl", "model": top[0]})
            prev, calls, bound = ["unit_test"], calls + 1 + pool + 1, pool + 1
        layers = []
        for i, choices in enumerate(a.fuser_layers, 1):
            j = int(trial.suggest_categorical(f"fuser_layer_{i}", _fit(choices, n, zero=True)))
            if j == 0:
                break  # a missing layer ends the stack: [2, 0, 3] would be [2, 3] again
            layers.append(j)
        critic = bool(trial.suggest_categorical("critic", list(dict.fromkeys(a.critic)))) if layers else False
        ranker = bool(trial.suggest_categorical("ranker", list(dict.fromkeys(a.ranker)))) if layers else False
        for i, j in enumerate(layers, 1):
            if critic:  # the critic comes before any ranker or fuser, which read its critiques
                nodes.append({"id": f"critic_{i}", "op": "critique", "model": top[0], "per": "all", "inputs": prev})
                prev, calls = [f"critic_{i}"], calls + 1
            if ranker:
                nodes.append({"id": f"rank_{i}", "op": "rank", "model": top[0], "top_k": a.ranker_top_k, "inputs": prev})
                prev, calls = [f"rank_{i}"], calls + int(bound > 1)
                pool, bound = min(pool, a.ranker_top_k), min(bound, a.ranker_top_k)
            nodes.append({"id": f"fuse_{i}", "op": "fuse", "model": _models(top[:j]), "inputs": prev, **gen})
            prev, calls, pool, bound = [f"fuse_{i}"], calls + j, j, j
        if pool > 1:  # one answer leaves the pipeline: the top model fuses what is left
            nodes.append({"id": "final_fuse", "op": "fuse", "model": top[0], "inputs": prev, **gen})
            calls += 1
        return nodes, calls

    def configurations(self, within_budget: bool = True) -> Iterator[dict[str, Any]]:
        """Every distinct configuration (its parameters), walked like a grid; those over
        ``maximum_inference_calls`` left out unless ``within_budget`` is False."""
        stack: list[list[int]] = [[]]
        while stack:
            path = stack.pop()
            walker = _Walker(path)
            _, calls = self.plan(walker)
            if walker.branches is not None:  # a choice past the path: branch on each of its values
                stack.extend(walker.path + [i] for i in reversed(range(walker.branches)))
                continue
            if not within_budget or self.max_calls is None or calls <= self.max_calls:
                yield {**walker.picked, "calls": calls}

    def count(self, within_budget: bool = True) -> int:
        """How many distinct pipelines the space holds (within the call limit unless told otherwise)."""
        return sum(1 for _ in self.configurations(within_budget))


def _fit(choices: list[int], n: int, zero: bool = False) -> list[int]:
    """Choices capped at the models available, repeats dropped (k=12 of 10 models is k=10)."""
    fitted = list(dict.fromkeys(min(c, n) for c in choices if zero or c > 0))
    return fitted or [0 if zero else 1]


def _models(refs: list[str]) -> str | list[str]:
    return refs[0] if len(refs) == 1 else list(refs)


class _Walker(_FirstChoice):
    """A trial that follows ``path`` (an index per choice) and stops at the first choice past it."""

    def __init__(self, path: list[int]):
        self.path = path
        self.picked: dict[str, Any] = {}
        self.branches: int | None = None
        self._i = 0

    def suggest_categorical(self, name, choices):
        if self._i < len(self.path):
            value = choices[self.path[self._i]]
        else:
            if self.branches is None:
                if len(choices) > 1:
                    self.branches = len(choices)
                else:  # one value: no branch, the path just goes on through it
                    self.path = [*self.path, 0]
            value = choices[0]
        self._i += 1
        self.picked[name] = value
        return value
