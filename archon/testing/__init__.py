"""What a test of Archon, or of a plug-in for it, needs: model doubles, a fake OpenAI server, and the
conformance suites every operator and backend kind passes.

    from archon.testing import FunctionBackend, OperatorContract, BackendContract

- ``FunctionBackend(fn)``, ``ScriptedBackend([...])``, ``EchoBackend()``: backends answering from a
  function or a list, with no network and no cost (``backends.doubles``); a reply may be
  ``Sampled(text, logprobs)`` to give token log-probabilities.
- ``FakeOpenAIServer``: a real OpenAI-compatible HTTP server on 127.0.0.1 that can be told to fail
  (needs the ``serve`` extra: uvicorn and starlette are imported when it starts).
- ``OperatorContract``, ``BackendContract`` and ``StoreContract``: pytest suites; subclass one in a
  test module.
"""

import importlib
from typing import TYPE_CHECKING, Any

# Names load lazily (PEP 562): the contracts import pytest, and the server its web stack, only
# when a test asks for them.
_HOMES = {
    "EchoBackend": "backends.doubles",
    "FunctionBackend": "backends.doubles",
    "ScriptedBackend": "backends.doubles",
    "Sampled": "backends.doubles",
    "FakeOpenAIServer": "archon.testing.fake_server",
    "default_reply": "archon.testing.fake_server",
    "BackendContract": "archon.testing.backend_contract",
    "OperatorContract": "archon.testing.operator_contract",
    "StoreContract": "archon.testing.store_contract",
}

if TYPE_CHECKING:
    from archon.testing.backend_contract import BackendContract
    from archon.testing.fake_server import FakeOpenAIServer, default_reply
    from archon.testing.operator_contract import OperatorContract
    from archon.testing.store_contract import StoreContract
    from backends.doubles import EchoBackend, FunctionBackend, Sampled, ScriptedBackend

__all__ = [
    "BackendContract",
    "EchoBackend",
    "FakeOpenAIServer",
    "FunctionBackend",
    "OperatorContract",
    "Sampled",
    "ScriptedBackend",
    "StoreContract",
    "default_reply",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'archon.testing' has no attribute '{name}'")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
