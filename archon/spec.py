"""The pipeline file: parsing and checking, with errors that name the file, the node and the fix.

A pipeline is validated in three layers: the top-level keys and ``backends:`` (pydantic models),
each node's settings (its operator's own ``Config``), then the graph (``archon.spec_checks``). All
problems found are reported at once, one line each: ``file: node 'x': message``.
"""

from __future__ import annotations

__all__ = ["NodeSpec", "PipelineSpec", "load_pipeline", "parse_backend", "parse_pipeline", "pipeline_json_schema", "read_yaml"]

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from archon.exceptions import SpecError, UserError, suggest
from archon.registry import backend_kinds, backend_settings, get_operator, operator_kinds
from archon.spec_checks import check_graph, node_id_problem
from backends.presets import PRESETS, BackendSpec, missing_base_url
from operators.base import OpConfig

_TOP_KEYS = ("name", "description", "backends", "nodes", "output")
_NODE_KEYS = ("id", "op", "inputs")


@dataclass(frozen=True)
class NodeSpec:
    id: str
    op: str
    config: OpConfig
    inputs: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "op": self.op}
        if self.inputs:
            out["inputs"] = list(self.inputs)
        out.update(self.config.model_dump(exclude_unset=True, mode="json"))
        return out


@dataclass(frozen=True)
class PipelineSpec:
    name: str
    nodes: tuple[NodeSpec, ...]
    output: str
    backends: dict[str, BackendSpec] = field(default_factory=dict)
    description: str = ""
    source: str = "<pipeline>"
    # The backends as written, ${VAR} unexpanded: what to_yaml writes back, so a saved pipeline
    # keeps reading its URLs from the environment instead of freezing this machine's values.
    written_backends: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    #: The pipeline files its nodes run (``OpConfig.pipeline_refs()``, e.g. a score node's judge),
    #: loaded and checked with it, by the reference as written.
    pipelines: dict[str, PipelineSpec] = field(default_factory=dict, repr=False)

    def node(self, node_id: str) -> NodeSpec:
        return next(n for n in self.nodes if n.id == node_id)

    def model_refs(self) -> list[str]:
        """Every model this pipeline can call, its nested pipelines' included."""
        own = {ref for n in self.nodes for ref in n.config.model_refs()}
        return sorted(own.union(*(sub.model_refs() for sub in self.pipelines.values())))

    def all_backends(self) -> dict[str, BackendSpec]:
        """Its ``backends:`` with its nested pipelines' (the parse checked that shared names agree)."""
        out: dict[str, BackendSpec] = {}
        for sub in self.pipelines.values():
            out.update(sub.all_backends())
        return {**out, **self.backends}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.description:
            out["description"] = self.description
        if self.backends:
            out["backends"] = {k: self.written_backends.get(k) or v.model_dump(exclude_unset=True) for k, v in self.backends.items()}
        out["nodes"] = [n.to_dict() for n in self.nodes]
        out["output"] = self.output
        return out

    def to_yaml(self) -> str:
        return yaml.dump(self.to_dict(), Dumper=_Dumper, sort_keys=False, allow_unicode=True)


class _Dumper(yaml.SafeDumper):
    """Writes a string holding a newline as "\\n..." (as people write stop sequences), not as a folded block."""


_Dumper.add_representer(str, lambda d, v: d.represent_scalar("tag:yaml.org,2002:str", v, style='"' if "\n" in v else None))


def read_yaml(path: str | Path, what: str) -> Any:
    """A YAML (or JSON) file's data; a missing, oversized, non-UTF-8 or bad YAML file (deep nesting,
    an alias bomb, a lone surrogate) is a SpecError naming the file and the place (see archon.files)."""
    from archon.files import load_yaml, read_text

    p = Path(path)
    if not p.is_file():
        raise SpecError(f"{path}: no such file. Give the path to a {what} YAML file.")
    return load_yaml(read_text(p, what), str(path))


def load_pipeline(path: str | Path, *, check_backends: bool = True, within: tuple[Path, ...] = ()) -> PipelineSpec:
    """Read and check a pipeline file (YAML, or the original Archon JSON format).

    ``within``: the pipeline files this one is nested in (see ``parse_pipeline``).
    """
    data = read_yaml(path, "pipeline")
    from archon.import_archon import from_archon, is_archon_config

    if is_archon_config(data):  # the original Archon JSON format, translated on the fly
        data = from_archon(data, source=str(path))
    return parse_pipeline(data, source=str(path), default_name=Path(path).stem, check_backends=check_backends,
                          within=(*within, Path(path).resolve()))


def parse_pipeline(
    data: Any, source: str = "<pipeline>", default_name: str = "pipeline", *, check_backends: bool = True,
    within: tuple[Path, ...] = (),
) -> PipelineSpec:
    """Check a pipeline's data: top-level keys, backends, every node's settings, the graph, and the
    pipeline files its nodes run. ``within``: the files being read, this one last when it is a file,
    so that a pipeline that runs itself, directly or through another, is refused instead of looping."""
    if not isinstance(data, dict):
        raise SpecError(f"{source}: a pipeline file must be a mapping with 'nodes:' (got {type(data).__name__}).")
    problems: list[str] = []
    for key in data:
        if key not in _TOP_KEYS:
            problems.append(f"{source}: unknown key '{key}'.{suggest(str(key), _TOP_KEYS)} Valid keys: {', '.join(_TOP_KEYS)}")

    backends: dict[str, BackendSpec] = {}
    raw_backends = data.get("backends") or {}
    if not isinstance(raw_backends, dict):
        problems.append(f"{source}: 'backends' must be a mapping of backend name to settings.")
        raw_backends = {}
    for name, raw in raw_backends.items():
        spec_or_problems = parse_backend(str(name), raw, source)
        if isinstance(spec_or_problems, list):
            problems += spec_or_problems
        else:
            backends[str(name)] = spec_or_problems

    nodes: list[NodeSpec] = []
    raw_nodes = data.get("nodes")
    if not isinstance(raw_nodes, list) or not raw_nodes:
        problems.append(f"{source}: 'nodes' must be a non-empty list of nodes (each with 'id' and 'op').")
        raw_nodes = []
    for i, raw in enumerate(raw_nodes):
        node, errs = _parse_node(raw, i, source)
        problems += errs
        if node is not None:
            nodes.append(node)

    if problems:
        raise SpecError(problems)
    output = data.get("output") or nodes[-1].id
    spec = PipelineSpec(
        name=str(data.get("name") or default_name),
        description=str(data.get("description") or ""),
        backends=backends,
        nodes=tuple(nodes),
        output=str(output),
        source=source,
        written_backends={str(k): dict(v) for k, v in raw_backends.items() if isinstance(v, dict)},
    )
    check_graph(spec, check_backends=check_backends)
    nested = _nested_pipelines(spec, check_backends, within)
    return replace(spec, pipelines=nested) if nested else spec


def _nested_pipelines(spec: PipelineSpec, check_backends: bool, within: tuple[Path, ...]) -> dict[str, PipelineSpec]:
    """The pipeline files ``spec``'s nodes run, loaded and checked; every problem names the node and the file.

    A relative path resolves against the working directory, as a ``retrieve`` corpus does (and as the
    ``archon search --out`` file that names it is read back).
    """
    out: dict[str, PipelineSpec] = {}
    problems: list[str] = []
    mine = spec.all_backends()
    for node in spec.nodes:
        for ref in node.config.pipeline_refs():
            where = f"{spec.source}: node '{node.id}': pipeline file '{ref}'"
            path = Path(ref).expanduser()
            full = (path if path.is_absolute() else Path.cwd() / path).resolve()
            if full in within:
                problems.append(f"{where}: it is {'this pipeline' if full == within[-1] else 'a pipeline that runs this one'}; "
                                f"a pipeline cannot run itself (that recursion never ends). Use another pipeline file.")
                continue
            if not full.is_file():
                shown = "" if path.is_absolute() else f" (resolved against the working directory {Path.cwd()})"
                problems.append(f"{where}: no such file {full}{shown}.")
                continue
            try:
                sub = out.get(ref) or load_pipeline(full, check_backends=check_backends, within=within)
            except SpecError as exc:
                problems += [f"{where}: {line}" for line in exc.problems]
                continue
            for name, backend in sub.all_backends().items():
                if name in mine and mine[name] != backend:
                    problems.append(f"{where}: backend '{name}' differs from its definition here; the nested pipeline "
                                    "runs on this pipeline's backends, so define it the same way in both or rename one.")
            out[ref] = sub
    if problems:
        raise SpecError(problems)
    return out


def parse_backend(name: str, raw: Any, source: str = "<pipeline>") -> BackendSpec | list[str]:
    """One ``backends:`` entry parsed with its kind's settings model, or the problems, one line each.

    The kind is the entry's ``kind``, else the preset's of the same name, else ``openai``; so
    ``local: {n_ctx: 8192}`` is read with the local kind's settings and then merged into the preset.
    """
    where = f"{source}: backend '{name}'"
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        return [f"{where}: must be a mapping of settings such as 'kind' and 'max_concurrency'."]
    kind = raw.get("kind")
    if kind is None:
        kind = PRESETS[name].kind if name in PRESETS else "openai"
    if not isinstance(kind, str) or kind not in backend_kinds():
        shown = kind if isinstance(kind, str) else json.dumps(kind, default=str)[:40]
        valid = backend_kinds()
        return [f"{where}: field 'kind': unknown kind '{shown}'.{suggest(str(kind), valid)} Valid kinds: {', '.join(valid)}"]
    try:
        model = backend_settings(kind)
    except UserError as exc:  # a plug-in kind that cannot load: say which and why
        return [f"{where}: field 'kind': {exc}"]
    try:
        spec = model.model_validate({**raw, "kind": kind})
    except ValidationError as exc:
        return [f"{where}: {m}" for m in _messages(exc, model.model_fields, label=f"Valid settings for kind {kind}")]
    if problem := missing_base_url(name, spec):
        return [f"{source}: {problem}"]
    return spec


def _parse_node(raw: Any, index: int, source: str) -> tuple[NodeSpec | None, list[str]]:
    if not isinstance(raw, dict):
        return None, [f"{source}: node #{index + 1}: must be a mapping with 'id' and 'op'."]
    node_id = raw.get("id")
    label = f"node '{node_id}'" if node_id else f"node #{index + 1}"
    if node_id is not None and not isinstance(node_id, str):
        return None, [f"{source}: node #{index + 1}: field 'id': must be text, a short unique name such as 'draft'."]
    if not node_id:
        return None, [f"{source}: {label}: missing 'id' (a short unique name such as 'draft')."]
    if problem := node_id_problem(node_id):
        return None, [f"{source}: node #{index + 1}: field 'id': {problem}"]
    op = raw.get("op")
    if not op:
        return None, [f"{source}: {label}: missing 'op'. Valid ops: {', '.join(operator_kinds())}"]
    try:
        cls = get_operator(str(op))
    except UserError as exc:  # unknown, or a plug-in's op that cannot load: name the node either way
        return None, [f"{source}: {label}: field 'op': {exc}"]
    inputs = raw.get("inputs") or []
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, list) or not all(isinstance(x, str) for x in inputs):
        return None, [f"{source}: {label}: field 'inputs': must be a list of node ids."]
    settings = {k: v for k, v in raw.items() if k not in _NODE_KEYS}
    try:
        config = cls.Config.model_validate(settings)
    except ValidationError as exc:
        return None, [f"{source}: {label}: {m}" for m in _messages(exc, cls.Config.model_fields, _NODE_KEYS)]
    return NodeSpec(id=node_id, op=str(op), config=config, inputs=tuple(inputs)), []


def _messages(exc: ValidationError, fields: dict[str, Any], extra_valid: tuple[str, ...] = (),
              label: str = "Valid settings") -> list[str]:
    """pydantic's errors, rewritten to name the field and, for a misspelled key, the nearest valid one."""
    out = []
    valid = [*extra_valid, *fields]
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"])
        if err["type"] == "extra_forbidden":
            key = str(err["loc"][-1])
            out.append(f"unknown setting '{key}'.{suggest(key, valid)} {label}: {', '.join(valid)}")
        else:
            got = err.get("input")
            shown = f" (got {json.dumps(got, default=str)[:60]})" if got is not None and not isinstance(got, dict) else ""
            msg = err["msg"].removeprefix("Value error, ")  # a validator's own message is already a sentence
            out.append(f"field '{loc}': {msg}{shown}" if loc else f"{msg}{shown}")
    return out


def _backend_variants() -> list[type[BaseModel]]:
    """One settings model per registered backend kind, its ``kind`` pinned to that name.

    Not a discriminated union: ``kind`` may be left out (it then comes from the preset of the same
    name, else openai), so an entry is valid when it matches any kind's settings.
    """
    variants: list[type[BaseModel]] = []
    for kind in backend_kinds():
        model = backend_settings(kind)
        field = model.model_fields["kind"]
        variants.append(create_model(
            f"{kind.title().replace('-', '').replace('_', '')}Backend",
            __base__=model,
            __doc__=model.__doc__,
            kind=(Literal[kind], Field(kind, description=field.description or "Backend kind.")),  # type: ignore[arg-type]
        ))
    return variants


def pipeline_json_schema() -> dict[str, Any]:
    """JSON Schema of the pipeline file: one node variant per registered op and one backend variant
    per registered backend kind, plug-ins included (for editors and ``archon schema``)."""
    variants = []
    for kind in operator_kinds():
        cls = get_operator(kind)
        variants.append(
            create_model(
                f"{cls.__name__}Node",
                __base__=cls.Config,
                __doc__=cls.summary or cls.__doc__,
                id=(str, Field(..., description="Unique node id.")),
                op=(Literal[kind], Field(..., description="Operator name.")),  # type: ignore[arg-type]
                inputs=(list[str], Field(default_factory=list, description="Ids of the nodes this node reads; none = the query.")),
            )
        )
    node_type = Annotated[Union[tuple(variants)], Field(discriminator="op")]  # type: ignore[valid-type]
    backend_type = Union[tuple(_backend_variants())]  # type: ignore[valid-type]

    class PipelineFile(BaseModel):
        """An Archon pipeline."""

        model_config = ConfigDict(extra="forbid", title="Archon pipeline")
        name: str | None = Field(None, description="Pipeline name (default: the file name).")
        description: str | None = Field(None, description="What the pipeline is for.")
        backends: dict[str, backend_type] = Field(  # type: ignore[valid-type]
            default_factory=dict, description="Backends added to or overriding the presets; the settings depend on 'kind'.")
        nodes: list[node_type] = Field(..., description="The operators, in any order.")  # type: ignore[valid-type]
        output: str | None = Field(None, description="Id of the node whose first candidate is the answer (default: the last node).")

    return PipelineFile.model_json_schema()
