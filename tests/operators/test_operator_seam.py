"""The operator seam: Operator[ConfigT] and its Config, and routing through branches() and Routed
(the graph knows an operator only through the seam, never by its attributes' names)."""

from __future__ import annotations

from typing import TypeVar, get_args, get_origin

import pytest
from pydantic import Field

from archon import Pipeline, RunFailed, run
from archon import registry
from archon.registry import get_operator, operator_kinds
from archon.types import Candidate
from backends.doubles import FunctionBackend
from operators.base import OpConfig, Operator, Routed
from operators.generate import GenerateConfig


class PickConfig(OpConfig):
    # Not called "branches": the graph must learn the targets from branches(), whatever the field.
    targets: list[str] = Field(..., description="Node ids to choose between.")
    choose: str = Field(..., description="The one to run, or anything else to misbehave.")

    def node_refs(self) -> list[str]:
        return list(self.targets)


class Pick(Operator[PickConfig]):
    """A routing plug-in: runs the branch named in its settings, no model call."""

    kind = "pick"
    summary = "Route to the branch named in the settings."

    def branches(self) -> tuple[str, ...]:
        return tuple(self.config.targets)

    async def __call__(self, inputs, query, ctx) -> list[Candidate]:
        if self.config.choose == "plain-list":
            return [Candidate(text="x", node=self.node_id)]
        return Routed([Candidate(text="picked", node=self.node_id)], self.config.choose, note=f"chose {self.config.choose}")


@pytest.fixture
def pick_registered(monkeypatch):
    monkeypatch.setattr(registry, "OPERATORS", registry.OPERATORS.copy())  # the registration ends with the test
    registry.register_operator(Pick)


def picking(choose: str) -> Pipeline:
    p = Pipeline("picked")
    p.add("gate", "pick", targets=["left", "right"], choose=choose)
    p.add("left", "generate", inputs="gate", model="fake/left", prompt="{query}")
    p.add("right", "generate", inputs="gate", model="fake/right", prompt="{query}")
    p.add("answer", "merge", inputs=["left", "right"])
    return p


def test_every_builtin_operator_names_its_config_in_its_type_parameter():
    for kind in operator_kinds():
        cls = get_operator(kind)
        named = [get_args(b)[0] for c in cls.__mro__ for b in vars(c).get("__orig_bases__", ()) if get_origin(b) is Operator]
        assert named == [cls.Config] and cls.Config is not OpConfig, f"op '{kind}': Operator[{named}], Config {cls.Config}"


def test_config_follows_the_type_parameter_and_a_disagreeing_one_is_refused():
    assert Pick.Config is PickConfig

    with pytest.raises(TypeError, match="Config = PickConfig is not a GenerateConfig"):
        class Confused(Operator[GenerateConfig]):
            kind = "confused"
            Config = PickConfig

    class Narrower(GenerateConfig):
        pass

    class Fine(Operator[GenerateConfig]):
        kind = "fine"
        Config = Narrower  # a subclass of the named model is still that model

    assert Fine.Config is Narrower


def test_untyped_plugin_setting_only_config_and_generic_intermediates_work():
    class Untyped(Operator):
        kind = "untyped"
        Config = PickConfig

    T = TypeVar("T", bound=OpConfig)

    class Family(Operator[T]):  # still generic: names no model yet
        pass

    class Member(Family[PickConfig]):
        kind = "member"

    assert Untyped.Config is PickConfig and Family.Config is OpConfig and Member.Config is PickConfig


@pytest.mark.parametrize("choose, ran, skipped", [("left", "left", "right"), ("right", "right", "left")])
def test_a_plugin_router_runs_only_its_chosen_branch(pick_registered, choose, ran, skipped):
    be = FunctionBackend(lambda r, k: f"from {r.model}")
    res = run(picking(choose), "q", backends={"fake": be}, db=False)
    assert [r.model for r in be.requests] == [ran]
    assert res.output == f"from {ran}" and res.candidates[skipped] == []
    assert any(f"gate: chose {choose}" in n for n in res.notes)


@pytest.mark.parametrize("choose, message", [("plain-list", "must return a Routed"), ("elsewhere", "branch 'elsewhere', not one of")])
def test_a_router_that_breaks_the_seam_fails_naming_the_node(pick_registered, choose, message):
    be = FunctionBackend(lambda r, k: "x")
    with pytest.raises(RunFailed, match=f"TypeError: node 'gate': .*{message}"):
        run(picking(choose), "q", backends={"fake": be}, db=False)
    assert be.requests == []  # no branch ran on a bad routing answer


def test_ordinary_operators_have_no_branches_and_route_has_its_own():
    from operators.route import Route, RouteConfig

    route = Route("gauge", RouteConfig(model="fake/m", thresholds=[0.5], branches=["hard", "easy"]))
    assert route.branches() == ("hard", "easy")
    assert [k for k in operator_kinds() if get_operator(k).branches is not Operator.branches] == ["route"]
