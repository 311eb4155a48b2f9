"""``archon serve`` as a user runs it: refusing to start on a mistake (exit 2), serving with one and
with several workers, and letting in-flight requests finish on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from archon.testing.fake_server import FakeOpenAIServer
from stores.store import Store
from tests.conftest import write

KEY = "sk-serve-cli-secret"
PIPELINE = """
name: {name}
backends:
  up:
    kind: openai
    base_url: ${{UP_URL}}
    max_retries: 0
nodes:
  - id: answer
    op: generate
    model: up/m
"""


def archon(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "archon", *args], capture_output=True, text=True,
                          env=env if env is not None else dict(os.environ), timeout=timeout)


def base_env(tmp_path: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "ARCHON_API_KEY"}
    env["ARCHON_DB_URL"] = f"sqlite:///{tmp_path / 'serve.db'}"
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_refuses_to_start_without_keys_naming_the_variable(tmp_path):
    p = write(tmp_path, "p.yaml", PIPELINE.format(name="p"))
    out = archon("serve", str(p), env=base_env(tmp_path, UP_URL="http://127.0.0.1:9/v1"))
    assert out.returncode == 2 and "ARCHON_API_KEY" in out.stderr and "--no-auth" in out.stderr
    out = archon("serve", str(p), "--api-key-env", "MY_CLIENT_KEYS", env=base_env(tmp_path, UP_URL="http://127.0.0.1:9/v1"))
    assert out.returncode == 2 and "MY_CLIENT_KEYS" in out.stderr
    assert "Traceback" not in out.stderr


def test_bad_pipelines_and_missing_backend_keys_exit_2(tmp_path):
    env = base_env(tmp_path, ARCHON_API_KEY=KEY, UP_URL="http://127.0.0.1:9/v1")
    bad = write(tmp_path, "bad.yaml", "name: bad\nnodes:\n  - {id: a, op: generate, model: up/m, sampels: 2}\n")
    out = archon("serve", str(bad), env=env)
    assert out.returncode == 2 and "bad.yaml: node 'a'" in out.stderr and "Did you mean 'samples'" in out.stderr
    one, two = write(tmp_path, "one.yaml", PIPELINE.format(name="same")), write(tmp_path, "two.yaml", PIPELINE.format(name="same"))
    out = archon("serve", str(one), str(two), env=env)
    assert out.returncode == 2 and "a pipeline named 'same' is already served" in out.stderr
    paid = write(tmp_path, "paid.yaml", "name: paid\nnodes:\n  - {id: a, op: generate, model: openai/gpt-4o-mini}\n")
    out = archon("serve", str(paid), env=env)
    assert out.returncode == 2 and "OPENAI_API_KEY" in out.stderr


class Served:
    """``archon serve`` in a subprocess, with its output collected."""

    def __init__(self, args: list[str], env: dict):
        self.port = free_port()
        self.root = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, "-m", "archon", "serve", *args, "--port", str(self.port)], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(self.root + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"archon serve did not start:\n{self.stop()}")
            time.sleep(0.1)

    def ask(self, text: str) -> httpx.Response:
        return httpx.post(self.root + "/v1/chat/completions", headers={"authorization": f"Bearer {KEY}"}, timeout=60,
                          json={"model": "anything", "messages": [{"role": "user", "content": text}]})

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        output, _ = self.proc.communicate(timeout=60)
        return output


@pytest.fixture
def upstream():
    with FakeOpenAIServer(reply=lambda prompt, k: f"echo {prompt.split()[-1]}") as srv:
        yield srv


def test_sigterm_lets_the_request_in_flight_finish_and_flushes_the_store(tmp_path, upstream):
    upstream.delay = 1.5
    p = write(tmp_path, "slow.yaml", PIPELINE.format(name="slow"))
    env = base_env(tmp_path, ARCHON_API_KEY=f"{KEY},sk-other", UP_URL=upstream.base_url)
    served = Served([str(p), "--timeout", "30"], env)
    results: list[httpx.Response] = []
    client = threading.Thread(target=lambda: results.append(served.ask("finishing")))
    client.start()
    deadline = time.monotonic() + 10
    while upstream.requests == 0 and time.monotonic() < deadline:  # the request reached the model
        time.sleep(0.02)
    served.proc.send_signal(signal.SIGTERM)
    client.join(timeout=30)
    output = served.stop()
    # uvicorn finishes, then re-raises SIGTERM on itself, as a process stopped by a signal should.
    assert served.proc.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output
    (reply,) = results
    assert reply.status_code == 200 and reply.json()["choices"][0]["message"]["content"] == "echo finishing"
    run_id = reply.json()["archon"]["run_id"]
    (run,) = Store(env["ARCHON_DB_URL"]).runs()
    assert run["id"] == run_id and run["status"] == "ok" and run["calls"] == 1
    assert KEY not in output and "sk-other" not in output  # access log and startup line name no key
    assert "keys from ARCHON_API_KEY" in output


def test_several_workers_serve_and_share_the_store(tmp_path, upstream):
    p = write(tmp_path, "p.yaml", PIPELINE.format(name="multi"))
    env = base_env(tmp_path, ARCHON_API_KEY=KEY, UP_URL=upstream.base_url)
    served = Served([str(p), "--workers", "2"], env)
    try:
        replies: list[httpx.Response] = []
        threads = [threading.Thread(target=lambda i=i: replies.append(served.ask(f"q{i}"))) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        output = served.stop()
    assert sorted(r.status_code for r in replies) == [200] * 8, output
    assert sorted(r.json()["choices"][0]["message"]["content"] for r in replies) == sorted(f"echo q{i}" for i in range(8))
    assert len(Store(env["ARCHON_DB_URL"]).runs()) == 8
