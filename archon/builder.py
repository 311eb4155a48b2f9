"""The Python builder: the same pipelines as the YAML file, checked by the same code."""

from __future__ import annotations

__all__ = ["Pipeline"]

from typing import Any, overload

from archon.exceptions import SpecError
from archon.registry import get_operator, operator_kinds
from archon.spec import PipelineSpec, parse_pipeline
from backends.presets import BackendSpec
from operators.base import OpConfig, Operator

_Inputs = list[str] | str | None


class Pipeline:
    """Build a pipeline node by node, with typed settings (``archon.nodes``)::

        p = Pipeline("sample-rank-fuse")
        draft = p.add("draft", nodes.Generate(model="fast/qwen", samples=8))
        top = p.add("top", nodes.Rank(model="fast/qwen", top_k=3), inputs=[draft])
        p.add("answer", nodes.Fuse(model="fast/qwen-72b"), inputs=[top])
        spec = p.build()      # the same checks and errors as a YAML file

    or by op name, as a YAML node is written: ``p.add("draft", "generate", model="fast/qwen", samples=8)``.
    ``add`` returns the node id, so inputs read naturally.
    """

    def __init__(self, name: str, *, backends: dict[str, BackendSpec | dict[str, Any]] | None = None, description: str = ""):
        self.name = name
        self.description = description
        self.backends = {k: v.model_dump(exclude_unset=True) if isinstance(v, BackendSpec) else dict(v) for k, v in (backends or {}).items()}
        self.nodes: list[dict[str, Any]] = []
        self.output: str | None = None

    def backend(self, name: str, **settings: Any) -> Pipeline:
        self.backends[name] = settings
        return self

    @overload
    def add(self, node_id: str, op: OpConfig, *, inputs: _Inputs = None) -> str: ...
    @overload
    def add(self, node_id: str, op: str, config: OpConfig, *, inputs: _Inputs = None) -> str: ...
    @overload
    def add(self, node_id: str, op: str, *, inputs: _Inputs = None, **settings: Any) -> str: ...

    def add(
        self, node_id: str, op: str | OpConfig, config: OpConfig | None = None, *, inputs: _Inputs = None, **settings: Any
    ) -> str:
        """Add a node: its settings as a typed model (``nodes.Generate(...)``, the op found from the
        model), as an op name and a model, or as an op name and keywords. Returns ``node_id``."""
        if isinstance(op, OpConfig):
            config = op
            op = _op_of(node_id, type(config))
        if config is not None:
            if settings:
                raise SpecError(f"node '{node_id}': give the settings in the {type(config).__name__} model or as keywords, "
                                f"not both (got {', '.join(settings)}).")
            try:
                expected = _operator(op).Config
            except SpecError as exc:
                raise SpecError(f"node '{node_id}': field 'op': {exc}") from None
            if not isinstance(config, expected):
                raise SpecError(f"node '{node_id}': op '{op}' takes a {expected.__name__}, not a {type(config).__name__}.")
            # Dumped, not kept: build() checks every node as parsed from a file, so both forms
            # give the same spec, the same errors and the same YAML.
            settings = config.model_dump(exclude_unset=True, mode="json")
        node: dict[str, Any] = {"id": node_id, "op": op}
        if inputs:
            node["inputs"] = [inputs] if isinstance(inputs, str) else list(inputs)
        node.update(settings)
        self.nodes.append(node)
        return node_id

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "nodes": self.nodes}
        if self.description:
            out["description"] = self.description
        if self.backends:
            out["backends"] = self.backends
        if self.output:
            out["output"] = self.output
        return out

    def build(self, *, check_backends: bool = False) -> PipelineSpec:
        """Check and freeze. Backend names are checked at run time unless ``check_backends``: a
        Python pipeline often runs on backend instances handed to the runtime (test doubles, clients)."""
        return parse_pipeline(
            self.to_dict(), source=f"pipeline '{self.name}'", default_name=self.name, check_backends=check_backends
        )


def _op_of(node_id: str, config_type: type[OpConfig]) -> str:
    """The one registered op whose ``Config`` is ``config_type``. An op that only inherits its
    parent's model (``ensemble`` from ``generate``) does not count: it is named explicitly."""
    found = []
    for kind in operator_kinds():
        try:
            cls = _operator(kind)
        except (ImportError, AttributeError):
            continue  # a broken plug-in is reported when a pipeline names it, not for every node built
        if cls.Config is config_type and "Config" in vars(cls):
            found.append(kind)
    if len(found) == 1:
        return found[0]
    name = config_type.__name__
    if not found:
        raise SpecError(f"node '{node_id}': no registered op takes {name} settings; name the op: "
                        f"p.add('{node_id}', '<op>', {name}(...)).")
    raise SpecError(f"node '{node_id}': {name} is the settings model of several ops ({', '.join(found)}); "
                    f"name one: p.add('{node_id}', '{found[0]}', {name}(...)).")


def _operator(kind: str) -> type[Operator[Any]]:
    return get_operator(kind)  # typed here until archon.registry says it returns an Operator class
