"""Archon's own operators and backend kinds pass the conformance suites plug-ins run
(archon.testing): the same checks, the same doubles, no network."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from archon.registry import OPERATORS, get_operator
from archon.testing import BackendContract, OperatorContract
from backends.local import LocalBackend
from backends.openai_compat import OpenAIBackend
from backends.presets import PRESETS
from tests.archon.test_call_bound import reply

CORPUS = Path(__file__).parent / "data" / "facts.jsonl"
DRAFTS = ["draft one", "draft two", "draft three"]

# kind -> (a node config that makes the op call models where it can, the input texts)
CASES: dict[str, tuple[dict, list[str]]] = {
    "generate": ({"model": "fake/m", "samples": 3}, []),
    "ensemble": ({"model": ["fake/a", "fake/b"], "samples": 2}, []),
    "rank": ({"model": "fake/ranker", "top_k": 2}, DRAFTS),
    "fuse": ({"model": ["fake/f1", "fake/f2"]}, DRAFTS),
    "critique": ({"model": "fake/critic"}, DRAFTS),
    "verify": ({"model": "fake/verifier", "first_k": 1, "batch": 2}, DRAFTS),
    "vote": ({}, ["4", "4", "5"]),
    "route": ({"signal": "agreement", "model": "fake/cheap", "samples": 5, "thresholds": [0.6],
               "branches": ["strong", "cheap"]}, []),
    "merge": ({"top_k": 1}, DRAFTS),
    "sample_until": ({"model": ["fake/a", "fake/b"], "max_samples": 5, "wave": 2, "until": "verify", "verifier": "fake/judge"}, []),
    "write_tests": ({"model": "fake/tester", "style": "nl"}, []),
    "unit_test": ({"tests": "model", "style": "nl", "model": "fake/judge"}, DRAFTS),
    "retrieve": ({"corpus": str(CORPUS), "top_k": 2}, []),
    "score": ({"model": "fake/judge", "top_k": 2}, DRAFTS),
    "beam": ({"model": "fake/m", "scorer": "fake/prm", "width": 2, "expansions": 2, "max_steps": 3, "keep": 2}, []),
    "refine": ({"model": "fake/m", "feedback": "verifier", "rounds": 2}, DRAFTS),
}


def test_every_builtin_operator_has_a_case():
    assert sorted(CASES) == OPERATORS.names(origin="archon-llm")


for _kind, (_config, _inputs) in CASES.items():
    _name = f"TestOperator_{_kind}"
    globals()[_name] = type(_name, (OperatorContract,), {
        "operator": get_operator(_kind), "config": _config, "inputs": _inputs, "reply": staticmethod(reply),
    })


# -- backends ---------------------------------------------------------------------------------------


def _openai_server(request: httpx.Request) -> httpx.Response:
    """An OpenAI-shaped chat completion with one choice per ``n``."""
    body = json.loads(request.content)
    choices = [{"index": i, "message": {"role": "assistant", "content": f"hello {i}"}, "finish_reason": "stop"}
               for i in range(body.get("n") or 1)]
    return httpx.Response(200, json={"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                                     "choices": choices, "usage": {"prompt_tokens": 3, "completion_tokens": 2}})


def _refusing_server(request: httpx.Request) -> httpx.Response:
    return httpx.Response(401, json={"error": {"message": "invalid key", "type": "invalid_api_key"}})


class TestOpenAIBackend(BackendContract):
    kind = "openai"
    settings = {"base_url": "http://mock.invalid/v1"}

    def make_backend(self, name, settings):
        return OpenAIBackend(name, settings, http_client=httpx.AsyncClient(transport=httpx.MockTransport(_openai_server)))

    def make_failing_backend(self, name, settings):
        return OpenAIBackend(name, settings, http_client=httpx.AsyncClient(transport=httpx.MockTransport(_refusing_server)))


@pytest.mark.local_model
class TestLocalBackend(BackendContract):
    kind = "local"
    model = "gemma-3-270m"
    # The preset's context length: a model is loaded once per (file, n_ctx) per process, and a second
    # copy would break tests/backends/test_local.py's check that backends share one.
    settings = {"n_ctx": PRESETS["local"].n_ctx}

    def make_backend(self, name, settings):
        return LocalBackend(name, settings)

    def make_failing_backend(self, name, settings):
        # A request the embedded model refuses: a chat with no message.
        class Refusing(LocalBackend):
            async def complete(self, request):
                from dataclasses import replace

                return await super().complete(replace(request, messages=()))

        return Refusing(name, settings)


def test_archon_testing_needs_no_web_stack_until_a_server_starts():
    import subprocess
    import sys

    code = ("import sys; from archon.testing import FakeOpenAIServer, FunctionBackend, OperatorContract; "
            "FakeOpenAIServer(); print(sorted(m for m in ('uvicorn', 'starlette') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
