"""The pipeline graph: compilation of a checked spec to LangGraph, and how each node runs in it.

The checks live beside the spec (``archon.spec_checks``); their names are re-exported here for
code that imported them from this module.

Each pipeline node becomes one LangGraph node. A node waits for all of its inputs, and nodes that do
not depend on each other run in the same LangGraph step, concurrently. The graph knows an operator
only through its seam: ``__call__``, and ``branches()`` with the ``Routed`` result of a route.
"""

from __future__ import annotations

__all__ = ["check_graph", "compile_graph", "depth", "node_id_problem", "parse_model_ref"]

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Annotated, Any, TypedDict

from archon.spec_checks import check_graph, depth, node_id_problem, parse_model_ref
from archon.types import Candidate
from operators.base import Operator, Routed

if TYPE_CHECKING:
    from archon.spec import PipelineSpec


def _merge(left: dict[str, Any], right: dict[str, Any]) -> dict[str, Any]:
    return {**left, **right}


def _union(left: frozenset[str], right: frozenset[str]) -> frozenset[str]:
    return left | right


def _concat(left: list[str], right: list[str]) -> list[str]:
    return left + right


class _State(TypedDict):
    results: Annotated[dict[str, Any], _merge]
    # Nodes that do not run in this query: branches a route did not choose, and nodes that read
    # only skipped nodes. A skipped node outputs nothing and calls no model.
    skipped: Annotated[frozenset[str], _union]
    # Node-level notes (a fallback that no candidate carries, e.g. a route that fell back).
    notes: Annotated[list[str], _concat]


def compile_graph(spec: PipelineSpec, operators: Mapping[str, Operator[Any]]) -> Any:
    """A compiled LangGraph for ``spec``; ``operators`` maps node id to its operator instance.

    The query and the RunContext travel in ``config["configurable"]`` so one compiled graph serves
    every run (compiling costs milliseconds; a run should not).
    """
    from langgraph.graph import END, START, StateGraph

    graph = StateGraph(_State)
    for node in spec.nodes:
        graph.add_node(node.id, _node_fn(node.id, node.inputs, operators[node.id]))
    for node in spec.nodes:
        if not node.inputs:
            graph.add_edge(START, node.id)
        elif len(node.inputs) == 1:
            graph.add_edge(node.inputs[0], node.id)
        else:
            graph.add_edge(list(node.inputs), node.id)  # waits for all inputs
    graph.add_edge(spec.output, END)
    return graph.compile()


def _node_fn(node_id: str, inputs: tuple[str, ...], op: Operator[Any]) -> Callable[..., Awaitable[dict[str, Any]]]:
    from langchain_core.runnables import RunnableConfig

    branches = op.branches()

    async def run_node(state: _State, config: RunnableConfig) -> dict[str, Any]:
        conf = config["configurable"]
        results = state["results"]
        skipped = state.get("skipped") or frozenset()
        if node_id in skipped or (inputs and all(i in skipped for i in inputs)):
            return {"results": {node_id: []}, "skipped": frozenset([node_id])}
        cands = [c for i in inputs if i not in skipped for c in results[i]]
        out = await op(cands, conf["query"], conf["ctx"].for_node(node_id))
        if not branches:
            return {"results": {node_id: out}}
        routed = _routed(node_id, branches, out)
        update: dict[str, Any] = {"results": {node_id: list(routed)}, "skipped": frozenset(b for b in branches if b != routed.branch)}
        if routed.note:
            update["notes"] = [f"{node_id}: {routed.note}"]
        return update

    run_node.__name__ = f"node_{node_id}"
    return run_node


def _routed(node_id: str, branches: tuple[str, ...], out: list[Candidate]) -> Routed:
    """The output of a routing node, checked. A wrong answer is the operator's bug, not the user's: a
    TypeError naming the node, instead of silently running every branch or none."""
    if not isinstance(out, Routed):
        raise TypeError(f"node '{node_id}': an operator with branches() must return a Routed (candidates, branch), "
                        f"got {type(out).__name__}")
    if out.branch not in branches:
        raise TypeError(f"node '{node_id}': the operator chose branch '{out.branch}', not one of its branches() {list(branches)}")
    return out
