"""The checks a pipeline spec passes before it compiles: node ids, inputs, route branches, model
references, cycles, and that every node feeds the output.

They read only the spec (never an operator instance), so ``archon.spec`` runs them on every parse
and ``archon.graph`` can trust what it compiles. Each problem is one line ``source: node 'x': ...``.
"""

from __future__ import annotations

__all__ = ["check_graph", "depth", "node_id_problem", "parse_model_ref"]

from graphlib import CycleError, TopologicalSorter
from typing import TYPE_CHECKING

from archon.exceptions import SpecError, suggest
from backends.presets import PRESETS

if TYPE_CHECKING:
    from archon.spec import PipelineSpec


def parse_model_ref(ref: str) -> tuple[str, str]:
    """"fast/qwen2.5-7b" -> ("fast", "qwen2.5-7b"); "local/path/to/m.gguf" -> ("local", "path/to/m.gguf")."""
    backend, sep, model = ref.partition("/")
    if not sep or not backend or not model:
        raise SpecError(f"model '{ref}' must be '<backend>/<model name>', e.g. 'openai/gpt-4o-mini' or 'local/gemma-3-270m'.")
    return backend, model


# LangGraph refuses these node names (its START/END, its write and config keys): every internal
# name it has starts with "__", and these few do not. tests/archon/test_bad_input.py checks the rule
# against the installed LangGraph, so an upgrade that reserves more is noticed.
_RESERVED_IDS = frozenset({"checkpoint_id", "checkpoint_map", "checkpoint_ns", "configurable"})
# LangGraph joins names with these into task paths ("parent:child|...").
_RESERVED_CHARS = (":", "|")


def node_id_problem(node_id: str) -> str | None:
    """Why LangGraph (or a one-line message) cannot take ``node_id`` as a node name, else None."""
    if node_id.startswith("__") or node_id in _RESERVED_IDS:
        return (f"'{node_id}' is reserved by LangGraph (ids starting with '__', and "
                f"{', '.join(sorted(_RESERVED_IDS))}); choose another id, e.g. '{node_id.strip('_') or 'step'}'.")
    bad = next((c for c in _RESERVED_CHARS if c in node_id), None)
    if bad:
        return f"'{bad}' cannot be part of a node id (LangGraph separates names with ':' and '|'); use '-' or '_'."
    if not node_id.isprintable():
        return "a node id cannot hold control characters such as a newline or a tab."
    return None


def check_graph(spec: PipelineSpec, *, check_backends: bool = True) -> None:
    """Raise SpecError listing every graph problem: duplicates, unknown inputs, cycles, output, models.

    ``check_backends=False`` skips checking backend names against presets and ``backends:``, for
    pipelines whose backends are given as instances at run time (the runtime checks them then).
    """
    src = spec.source
    ids = [n.id for n in spec.nodes]
    problems: list[str] = []
    seen: set[str] = set()
    for nid in ids:
        if nid in seen:
            problems.append(f"{src}: node '{nid}': duplicate id; node ids must be unique.")
        seen.add(nid)
    for node in spec.nodes:
        for inp in node.inputs:
            if inp not in seen:
                problems.append(f"{src}: node '{node.id}': field 'inputs': no node '{inp}'.{suggest(inp, ids)} Nodes: {', '.join(ids)}")
            elif inp == node.id:
                problems.append(f"{src}: node '{node.id}': field 'inputs': a node cannot read itself.")
    by_id = {n.id: n for n in spec.nodes}
    for node in spec.nodes:
        for ref in node.config.node_refs():
            target = by_id.get(ref)
            if target is None:
                problems.append(f"{src}: node '{node.id}': no node '{ref}'.{suggest(ref, ids)} Nodes: {', '.join(ids)}")
            elif node.id not in target.inputs:
                problems.append(f"{src}: node '{ref}': a branch of route '{node.id}' must list it in 'inputs' (inputs: [{node.id}]).")
    backends = set(PRESETS) | set(spec.backends)
    for node in spec.nodes:
        for ref in node.config.model_refs():
            try:
                backend, _ = parse_model_ref(ref)
            except SpecError as exc:
                problems.append(f"{src}: node '{node.id}': field 'model': {exc}")
                continue
            if check_backends and backend not in backends:
                problems.append(
                    f"{src}: node '{node.id}': field 'model': unknown backend '{backend}' in '{ref}'.{suggest(backend, backends)}"
                    f" Define it under 'backends:' or use a preset: {', '.join(sorted(PRESETS))}"
                )
    for node in spec.nodes:
        if getattr(node.config, "abstain", False) and node.id != spec.output:
            problems.append(f"{src}: node '{node.id}': field 'abstain': only the output node may abstain (a later node "
                            f"would answer anyway); make '{node.id}' the output or remove 'abstain'.")
    if spec.output not in seen:
        problems.append(f"{src}: field 'output': no node '{spec.output}'.{suggest(spec.output, ids)} Nodes: {', '.join(ids)}")
    if problems:
        raise SpecError(problems)

    try:
        order = list(TopologicalSorter({n.id: set(n.inputs) for n in spec.nodes}).static_order())
    except CycleError as exc:
        cycle = exc.args[1]
        raise SpecError(f"{src}: node '{cycle[0]}': cycle in 'inputs': {' -> '.join(cycle)}. A pipeline must be acyclic.") from None
    needed = _ancestors(spec, spec.output)
    for nid in order:
        if nid not in needed:
            problems.append(f"{src}: node '{nid}': does not feed the output '{spec.output}'; connect it or remove it.")
    if problems:
        raise SpecError(problems)


def _ancestors(spec: PipelineSpec, node_id: str) -> set[str]:
    by_id = {n.id: n for n in spec.nodes}
    out, stack = set(), [node_id]
    while stack:
        nid = stack.pop()
        if nid not in out:
            out.add(nid)
            stack.extend(by_id[nid].inputs)
    return out


def depth(spec: PipelineSpec) -> int:
    """Number of sequential steps on the critical path (the lower bound on a query's wall time)."""
    memo: dict[str, int] = {}
    by_id = {n.id: n for n in spec.nodes}

    def d(nid: str) -> int:
        if nid not in memo:
            memo[nid] = 1 + max((d(i) for i in by_id[nid].inputs), default=0)
        return memo[nid]

    return d(spec.output)
