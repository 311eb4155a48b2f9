"""The Python builder: the same pipelines as the YAML file, checked by the same code."""

from __future__ import annotations

__all__ = ["Pipeline"]

from typing import Any

from archon.spec import PipelineSpec, parse_pipeline
from backends.presets import BackendSpec


class Pipeline:
    """Build a pipeline node by node::

        p = Pipeline("sample-rank-fuse")
        draft = p.add("draft", "generate", model="fast/qwen", samples=8)
        top = p.add("top", "rank", inputs=[draft], model="fast/qwen", top_k=3)
        p.add("answer", "fuse", inputs=[top], model="fast/qwen-72b")
        spec = p.build()      # the same checks and errors as a YAML file

    ``add`` returns the node id, so inputs read naturally.
    """

    def __init__(self, name: str, *, backends: dict[str, BackendSpec | dict] | None = None, description: str = ""):
        self.name = name
        self.description = description
        self.backends = {k: v.model_dump(exclude_unset=True) if isinstance(v, BackendSpec) else dict(v) for k, v in (backends or {}).items()}
        self.nodes: list[dict[str, Any]] = []
        self.output: str | None = None

    def backend(self, name: str, **settings: Any) -> Pipeline:
        self.backends[name] = settings
        return self

    def add(self, node_id: str, op: str, *, inputs: list[str] | str | None = None, **settings: Any) -> str:
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
