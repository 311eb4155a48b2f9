"""The operator conformance suite: what every operator, built-in or plug-in, must do.

Subclass ``OperatorContract`` in a test module, say which operator and how to configure it, and
pytest collects the checks (no pytest-asyncio needed)::

    from archon.testing import OperatorContract
    from my_plugin.ops import Shout

    class TestShout(OperatorContract):
        operator = Shout
        config = {"model": "fake/m", "suffix": "!"}   # a valid node config, without id/op/inputs
        inputs = ["a draft", "another draft"]         # texts of the candidates fed in ([] = reads the query)

Every model the config names is served by one ``FunctionBackend`` answering ``reply(request, k)``;
set ``reply`` to answers that make the operator spend the most it can (no early exit), so the call
bound it declares is checked where it is tightest.
"""

from __future__ import annotations

__all__ = ["OperatorContract"]

import asyncio
from collections.abc import Callable
from typing import Any, ClassVar

import pytest
from pydantic import ValidationError

from archon.context import RunContext, Runtime
from archon.graph import parse_model_ref
from archon.registry import get_operator
from archon.types import Candidate, Query
from backends.base import CompletionRequest
from backends.doubles import FunctionBackend
from operators.base import OpConfig, Operator

_UNKNOWN_KEY = "surely_not_a_setting"


def _default_reply(request: CompletionRequest, k: int) -> str:
    return f"answer {k}"


class OperatorContract:
    """Checks for one operator class; subclasses set the class attributes below."""

    #: The operator class under test.
    operator: ClassVar[type[Operator]]
    #: A valid node config (what follows ``id``, ``op`` and ``inputs`` in a pipeline file).
    config: ClassVar[dict[str, Any]] = {}
    #: Texts of the input candidates; empty: the node reads the query.
    inputs: ClassVar[list[str]] = ["first draft", "second draft"]
    query: ClassVar[str] = "What is 2 + 2?"
    #: ``Query.data`` (benchmark fields such as tests), for operators that read them.
    query_data: ClassVar[dict[str, Any]] = {}
    #: How the model doubles answer sample ``k`` of a request.
    reply: ClassVar[Callable[[CompletionRequest, int], str]] = staticmethod(_default_reply)
    #: False for an operator defined only in tests (not installed through an entry point).
    registered: ClassVar[bool] = True

    # -- helpers ----------------------------------------------------------------------------------

    def make_config(self) -> OpConfig:
        return self.operator.Config.model_validate(self.config)

    def make_inputs(self) -> list[Candidate]:
        return [Candidate(text, node="upstream", model="fake/m", sample=i) for i, text in enumerate(self.inputs)]

    def run_once(self) -> tuple[list[Candidate], int, tuple[int, int]]:
        """(the operator's output, the model calls it made, its declared call bound) for one query."""
        config = self.make_config()
        op = self.operator("node", config)
        backend = FunctionBackend(type(self).reply)
        names = {parse_model_ref(ref)[0] for ref in config.model_refs()}
        inputs = self.make_inputs()

        async def go() -> list[Candidate]:
            runtime = Runtime(backends={name: backend for name in names}, store=False)
            try:
                ctx = RunContext(runtime, run_id="contract").for_node("node")
                return await op(inputs, Query(self.query, id="q1", data=dict(self.query_data)), ctx)
            finally:
                await runtime.aclose()

        out = asyncio.run(go())
        return out, len(backend.requests), op.call_bound(max(1, len(inputs)))

    # -- the contract -----------------------------------------------------------------------------

    def test_declares_kind_config_and_summary(self):
        cls = self.operator
        assert issubclass(cls, Operator), f"{cls.__name__} must subclass operators.base.Operator"
        assert isinstance(getattr(cls, "kind", None), str) and cls.kind, f"{cls.__name__}.kind must name the op"
        assert issubclass(cls.Config, OpConfig), f"{cls.__name__}.Config must subclass operators.base.OpConfig"
        assert cls.summary.strip(), f"{cls.__name__}.summary must say in one line what the op does (archon schema shows it)"

    def test_registered_under_its_kind(self):
        if not self.registered:
            pytest.skip("registered = False: the operator is not installed through an entry point")
        assert get_operator(self.operator.kind) is self.operator

    def test_config_is_valid(self):
        assert isinstance(self.make_config(), self.operator.Config)

    def test_config_rejects_unknown_keys(self):
        with pytest.raises(ValidationError, match=_UNKNOWN_KEY):
            self.operator.Config.model_validate({**self.config, _UNKNOWN_KEY: 1})

    def test_config_fields_are_described(self):
        undescribed = [name for name, field in self.operator.Config.model_fields.items() if not field.description]
        assert undescribed == [], f"give these settings a description=...: {undescribed}"

    def test_json_schema_builds(self):
        schema = self.operator.Config.model_json_schema()
        assert schema.get("additionalProperties") is False, "Config must set extra='forbid'"

    def test_runs_and_returns_candidates(self):
        out, _, _ = self.run_once()
        assert isinstance(out, list) and all(isinstance(c, Candidate) for c in out)
        assert all(isinstance(c.text, str) for c in out)

    def test_call_bound_is_honoured(self):
        out, calls, (most_calls, most_out) = self.run_once()
        assert calls <= most_calls, f"made {calls} model calls, declared call_bound allows {most_calls}"
        assert len(out) <= most_out, f"output {len(out)} candidates, declared call_bound allows {most_out}"
