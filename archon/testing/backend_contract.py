"""The backend conformance suite: what every backend kind, built-in or plug-in, must do.

Subclass ``BackendContract``, name the kind and say how to build a backend that answers and one
whose calls fail; pytest collects the checks (no pytest-asyncio needed)::

    from archon.testing import BackendContract
    from my_plugin.backend import TemplateBackend

    class TestTemplate(BackendContract):
        kind = "template"
        settings = {"template": "echo: {prompt}"}       # valid settings for this kind (besides kind)

        def make_backend(self, name, settings):
            return TemplateBackend(name, settings)

        def make_failing_backend(self, name, settings):  # optional: calls that fail at the seam
            return TemplateBackend(name, settings.model_copy(update={"template": "{missing}"}))

Each check builds its backends inside one event loop (``asyncio.run``), so a client bound to a loop
is created and closed in the same one; a backend with ``aclose`` is closed after each check.
"""

from __future__ import annotations

__all__ = ["BackendContract"]

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

import pytest
from pydantic import ValidationError

from archon.context import RunContext, Runtime
from archon.exceptions import BackendError
from archon.registry import backend_settings, get_backend_class
from backends.base import Backend, Completion, CompletionRequest
from backends.presets import BackendSpec

_UNKNOWN_KEY = "surely_not_a_setting"


class BackendContract:
    """Checks for one backend kind; subclasses set ``kind`` and implement ``make_backend``."""

    #: The backend kind, as registered (the ``archon.backends`` entry point's name).
    kind: ClassVar[str]
    #: Valid settings of this kind (besides ``kind``), as in a pipeline's ``backends:`` entry.
    settings: ClassVar[dict[str, Any]] = {}
    #: The model name requests carry.
    model: ClassVar[str] = "test-model"

    def make_backend(self, name: str, settings: BackendSpec) -> Backend:
        raise NotImplementedError("BackendContract subclasses implement make_backend(name, settings)")

    def make_failing_backend(self, name: str, settings: BackendSpec) -> Backend | None:
        """A backend whose calls fail (unreachable server, refused request); None skips that check."""
        return None

    # -- helpers ----------------------------------------------------------------------------------

    def parsed_settings(self) -> BackendSpec:
        return backend_settings(self.kind).model_validate({**self.settings, "kind": self.kind})

    def request(self, n: int = 1) -> CompletionRequest:
        return CompletionRequest(model=self.model, messages=({"role": "user", "content": "Say hello."},),
                                 max_tokens=16, samples=tuple(range(n)))

    def with_backend(self, use: Callable[[Backend], Awaitable[Any]], *, failing: bool = False) -> Any:
        """``use(backend)`` run in a fresh event loop, the backend closed afterwards."""

        async def go() -> Any:
            make = self.make_failing_backend if failing else self.make_backend
            backend = make("contract", self.parsed_settings())
            if backend is None:
                pytest.skip("make_failing_backend returns None: no failing backend to check")
            try:
                return await use(backend)
            finally:
                close = getattr(backend, "aclose", None)
                if close is not None:
                    await close()

        return asyncio.run(go())

    # -- the contract -----------------------------------------------------------------------------

    def test_registered_with_a_settings_model(self):
        cls = get_backend_class(self.kind)
        model = backend_settings(self.kind)
        assert issubclass(model, BackendSpec), f"{cls.__name__}.Settings must subclass backends.presets.BackendSpec"
        assert model.model_fields["kind"].default == self.kind, (
            f"{model.__name__}.kind must default to '{self.kind}' (kind: str = '{self.kind}')")

    def test_settings_reject_unknown_keys(self):
        with pytest.raises(ValidationError, match=_UNKNOWN_KEY):
            backend_settings(self.kind).model_validate({**self.settings, _UNKNOWN_KEY: 1})

    def test_settings_fields_are_described(self):
        fields = backend_settings(self.kind).model_fields
        assert [name for name, field in fields.items() if not field.description] == []

    def test_complete_returns_one_text_per_sample(self):
        for n in (1, 3):
            request = self.request(n)
            done = self.with_backend(lambda b: b.complete(request))  # noqa: B023 -- called before the loop moves on
            assert isinstance(done, Completion)
            assert len(done.texts) == n and all(isinstance(t, str) for t in done.texts)

    def test_usage_counts_are_ints_or_unknown(self):
        done = self.with_backend(lambda b: b.complete(self.request(2)))
        for count in (done.usage.prompt_tokens, done.usage.completion_tokens):
            assert count is None or (isinstance(count, int) and count >= 0), f"usage count {count!r}"

    def test_errors_are_backend_errors(self):
        async def call(backend: Backend) -> BaseException | None:
            try:
                await backend.complete(self.request())
            except BaseException as exc:  # noqa: BLE001 -- the check is on what escapes the seam
                return exc
            return None

        error = self.with_backend(call, failing=True)
        assert error is not None, "the failing backend answered instead of raising"
        assert isinstance(error, BackendError), (
            f"raised {type(error).__name__}: translate foreign errors into archon.exceptions.BackendError subclasses")

    def test_works_through_the_runtime_chain(self):
        async def use(backend: Backend) -> Completion:
            runtime = Runtime({"b": self.parsed_settings()}, backends={"b": backend}, store=False)
            try:
                return await RunContext(runtime, run_id="contract", node_id="n").complete(f"b/{self.model}", self.request(2))
            finally:
                await runtime.flush()

        done = self.with_backend(use)
        assert isinstance(done, Completion) and len(done.texts) == 2
