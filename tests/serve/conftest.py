"""A real uvicorn server on 127.0.0.1 (a free port, a background thread) around an app, for tests."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn

from archon import Pipeline
from archon.context import Runtime
from archon.serve import create_app
from backends.doubles import FunctionBackend
from backends.presets import BackendSpec
from stores.store import Store

KEY = "sk-test-key"


class LiveServer:
    """uvicorn serving ``app`` in a thread; ``url`` is its /v1 base URL."""

    def __init__(self, app: Any, *, graceful: float = 5.0):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.root = f"http://127.0.0.1:{self.port}"
        self.url = self.root + "/v1"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=graceful))
        self.thread = threading.Thread(target=asyncio.run, args=(self.server.serve(sockets=[sock]),), daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@contextmanager
def live(app: Any, **kw: Any) -> Iterator[LiveServer]:
    srv = LiveServer(app, **kw).start()
    try:
        yield srv
    finally:
        srv.stop()


def reply(req, k: int) -> str:
    text = req.prompt_text()
    if "Candidate responses" in text:
        return "The fused answer is 4."
    return f"draft {k}: 4"


def draft_fuse(name: str = "draft-fuse", samples: int = 3) -> Pipeline:
    """generate (several samples) -> fuse: two sequential calls on the ``fake`` backend."""
    p = Pipeline(name)
    d = p.add("draft", "generate", model="fake/small", samples=samples)
    p.add("answer", "fuse", inputs=[d], model="fake/big")
    return p


def one_call(name: str = "one-call", model: str = "fake/small") -> Pipeline:
    p = Pipeline(name)
    p.add("answer", "generate", model=model)
    return p


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'serve.db'}")


@pytest.fixture
def make_app(store) -> Callable[..., Any]:
    """create_app over a FunctionBackend double named ``fake`` (with backend ``settings``, e.g. retries);
    other keyword arguments go to create_app."""

    def make(pipelines: list[Pipeline] | None = None, backend: Any = None, settings: BackendSpec | None = None,
             **kw: Any) -> Any:
        pipelines = pipelines or [draft_fuse()]
        backend = backend or FunctionBackend(reply)
        specs = {p.name: p.build() for p in pipelines}
        kw.setdefault("api_keys", [KEY])
        backend_specs = {"fake": settings} if settings else None
        return create_app(specs, lambda: Runtime(backend_specs, backends={"fake": backend}, store=store), **kw)

    return make


def wait_for(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    """Poll ``check`` until it returns something truthy (the store is written every 0.25 s)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.02)
