"""Typed node settings for the Python builder: each built-in operator's settings model, by a short name.

    from archon import Pipeline, nodes

    p = Pipeline("sample-rank-fuse")
    draft = p.add("draft", nodes.Generate(model="fast/qwen", samples=8))
    top = p.add("top", nodes.Rank(model="fast/qwen", top_k=3), inputs=[draft])
    p.add("answer", nodes.Fuse(model="fast/qwen-72b"), inputs=[top])

Each name *is* the operator's ``Config`` model (``nodes.Generate is GenerateConfig``), not a copy, so
the fields, defaults and descriptions are those a YAML node is checked against, and there is nothing
to keep in sync. Pydantic models are typed for editors and type checkers (``dataclass_transform``):
an IDE completes ``samples=`` and mypy rejects ``samplez=`` or ``samples="8"``. A bad value raises
pydantic's ``ValidationError`` when the model is built, one line before ``Pipeline.add``.

``Pipeline.add`` finds the op from the model. ``ensemble`` shares ``generate``'s model (an ensemble
is a generate node with a list of models); to write ``op: ensemble``, name the op:
``p.add("pool", "ensemble", nodes.Generate(model=["a/x", "b/y"]))``. A plug-in's own ``Config``
model works the same way, with or without naming its op.
"""

from __future__ import annotations

__all__ = ["Beam", "Critique", "Fuse", "Generate", "Merge", "Rank", "Refine", "Retrieve", "Route", "SampleUntil", "Score", "UnitTest",
           "Verify", "Vote", "WriteTests"]

from operators.beam import BeamConfig as Beam
from operators.critique import CritiqueConfig as Critique
from operators.fuse import FuseConfig as Fuse
from operators.generate import GenerateConfig as Generate
from operators.rank import RankConfig as Rank
from operators.refine import RefineConfig as Refine
from operators.retrieve import RetrieveConfig as Retrieve
from operators.route import MergeConfig as Merge
from operators.route import RouteConfig as Route
from operators.sample_until import SampleUntilConfig as SampleUntil
from operators.score import ScoreConfig as Score
from operators.unit_test import UnitTestConfig as UnitTest
from operators.unit_test import WriteTestsConfig as WriteTests
from operators.verify import VerifyConfig as Verify
from operators.vote import VoteConfig as Vote
