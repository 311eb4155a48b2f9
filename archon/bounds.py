"""Static cost bounds: what a pipeline can spend on one query, known before running it."""

from __future__ import annotations

__all__ = ["calls_per_query", "candidates_per_node"]

from graphlib import TopologicalSorter

from archon.registry import get_operator
from archon.spec import PipelineSpec


def calls_per_query(spec: PipelineSpec) -> int:
    """The most model calls one query can make through ``spec`` (one call = one recorded request).

    Nodes are visited inputs first; each node's ``Operator.call_bound`` gets the most candidates its
    inputs can output (1 for a node without inputs) and returns its calls and outputs. Every node is
    counted, every branch of a route included, so this is an upper bound: a routed query runs one
    branch, and early exits (rank of one candidate, verify's ``first_k``) spend less.

    A node that runs a pipeline file (a ``score`` node's judge) adds that pipeline's own bound once
    per run it declares (``Operator.pipeline_runs``).

    Cache hits count like calls. A request whose samples are partly cached is recorded twice (the
    hits and the live rest), so a run's ``calls`` total can exceed this bound when the cache is on.
    """
    return sum(calls for calls, _ in _bounds(spec).values())


def candidates_per_node(spec: PipelineSpec) -> dict[str, int]:
    """The most candidates each node can output for one query, inputs first (topological order)."""
    return {node_id: outputs for node_id, (_, outputs) in _bounds(spec).items()}


def _bounds(spec: PipelineSpec) -> dict[str, tuple[int, int]]:
    """(most calls, most candidates) of every node, in topological order."""
    by_id = {n.id: n for n in spec.nodes}
    # spec.nodes may come in any order; the graph check already rejected cycles.
    order = TopologicalSorter({n.id: set(n.inputs) for n in spec.nodes}).static_order()
    bounds: dict[str, tuple[int, int]] = {}
    for node_id in order:
        node = by_id[node_id]
        # Built as the runner builds it, so a plug-in's own bound is used too.
        op = get_operator(node.op)(node.id, node.config)
        fan_in = sum(bounds[i][1] for i in node.inputs) if node.inputs else 1
        calls, outputs = op.call_bound(fan_in)
        nested = sum(runs * calls_per_query(spec.pipelines[ref]) for ref, runs in op.pipeline_runs(fan_in).items())
        bounds[node_id] = calls + nested, outputs
    return bounds
