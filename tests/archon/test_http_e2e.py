"""The command line against a real OpenAI-compatible server on 127.0.0.1 (started by the test)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from archon.testing.fake_server import FakeOpenAIServer
from tests.conftest import EXAMPLES, write


def reply(prompt: str, k: int) -> str:
    if "Ranking:" in prompt:
        return "[2] > [1] > [3]"
    if "Candidate responses" in prompt:
        return "The fused answer is 4."
    return f"draft {k}: 4"


@pytest.fixture
def server():
    with FakeOpenAIServer(reply=reply) as srv:
        yield srv


def archon(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    full = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "archon", *args], capture_output=True, text=True, env=full, timeout=timeout)


def srf_env(srv, tmp_path) -> dict:
    return {"ARCHON_BASE_URL": srv.base_url, "FAST_API_KEY": "sk-test", "ARCHON_DB_URL": f"sqlite:///{tmp_path / 'e2e.db'}"}


def test_sample_rank_fuse_example_prints_fused_answer_and_logs_calls(server, tmp_path):
    env = srf_env(server, tmp_path)
    out = archon("run", str(EXAMPLES / "sample-rank-fuse.yaml"), "--input", "What is 2+2?", env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "The fused answer is 4."
    assert server.requests == 3  # one request with n=8, one ranking, one fusion

    calls = json.loads(archon("calls", "--json", env=env).stdout)
    assert [c["node_id"] for c in calls] == ["draft", "top", "answer"]
    for c in calls:
        for key in ("id", "run_id", "node_id", "backend", "model", "prompt_tokens", "completion_tokens", "cost_usd",
                    "latency_ms", "status", "error", "attempts", "cached", "trial", "created_at"):
            assert key in c
        assert c["status"] == "ok" and c["prompt_tokens"] > 0 and c["completion_tokens"] > 0 and c["latency_ms"] > 0
        assert c["backend"] == "fast" and c["cached"] is False and c["attempts"] == 1
    assert calls[0]["model"] == "qwen2.5-7b" and calls[2]["model"] == "qwen2.5-72b"

    (run,) = json.loads(archon("runs", "--json", env=env).stdout)
    assert run["status"] == "ok" and run["calls"] == 3
    assert run["prompt_tokens"] == sum(c["prompt_tokens"] for c in calls)
    assert run["completion_tokens"] == sum(c["completion_tokens"] for c in calls)


def test_cost_comes_from_the_pricing_table(server, tmp_path):
    prices = write(tmp_path, "prices.yaml", "fast/qwen2.5-7b: {input: 1.0, output: 2.0}\nfast/qwen2.5-72b: {input: 10.0, output: 20.0}\n")
    env = {**srf_env(server, tmp_path), "ARCHON_PRICING": str(prices)}
    assert archon("run", str(EXAMPLES / "sample-rank-fuse.yaml"), "--input", "q", env=env).returncode == 0
    calls = json.loads(archon("calls", "--json", env=env).stdout)
    c = calls[0]
    assert c["cost_usd"] == pytest.approx((c["prompt_tokens"] * 1.0 + c["completion_tokens"] * 2.0) / 1e6)
    (run,) = json.loads(archon("runs", "--json", env=env).stdout)
    assert run["cost_usd"] == pytest.approx(sum(c["cost_usd"] for c in calls))


def test_second_identical_run_issues_no_request(server, tmp_path):
    env = srf_env(server, tmp_path)
    first = archon("run", str(EXAMPLES / "sample-rank-fuse.yaml"), "--input", "same", "--json", env=env)
    assert first.returncode == 0, first.stderr
    n = server.requests
    second = archon("run", str(EXAMPLES / "sample-rank-fuse.yaml"), "--input", "same", "--json", env=env)
    assert server.requests == n
    res = json.loads(second.stdout)
    assert res["output"] == json.loads(first.stdout)["output"]
    calls = json.loads(archon("calls", "--run", res["run_id"], "--json", env=env).stdout)
    assert len(calls) == 3 and all(c["cached"] for c in calls)
    nocache = archon("run", str(EXAMPLES / "sample-rank-fuse.yaml"), "--input", "same", "--no-cache", env=env)
    assert nocache.returncode == 0 and server.requests == n + 3


HOSTILE_QUERY = 'Q: f"{n} items" {query} {candidates} {context} {tests}'

CRITIQUE_RANK_FUSE = """
backends:
  fast:
    base_url: ${ARCHON_BASE_URL}
    api_key_env: FAST_API_KEY
nodes:
  - {id: draft, op: generate, model: fast/m, samples: 3}
  - {id: crit, op: critique, inputs: [draft], model: fast/m}
  - {id: top, op: rank, inputs: [crit], model: fast/m, top_k: 2}
  - {id: answer, op: fuse, inputs: [top], model: fast/m}
output: answer
"""


def hostile_reply(prompt: str, k: int) -> str:
    """Replies as full of placeholder names as the query (model output is hostile input)."""
    if "Ranking:" in prompt:
        return "[2] > [1] {query} {candidates}"
    if "Strengths and weaknesses:" in prompt:
        return "critique: {n} {query} {candidates} {context} {tests}"
    return f"draft {k}: {{n}} {{query}} {{candidates}} {{context}} {{tests}} {{candidate}}"


def test_a_query_full_of_placeholders_reaches_every_request_unchanged(tmp_path):
    with FakeOpenAIServer(reply=hostile_reply) as srv:
        out = archon("run", str(write(tmp_path, "crf.yaml", CRITIQUE_RANK_FUSE)), "--input", HOSTILE_QUERY, env=srf_env(srv, tmp_path))
        assert out.returncode == 0, out.stderr
        sent = [m["content"] for e in sorted(srv.log, key=lambda e: e.start) for m in e.body["messages"] if m["role"] == "user"]
    assert len(sent) == 1 + 3 + 1 + 1  # generate, a critique per draft, rank, fuse
    for prompt in sent:
        assert HOSTILE_QUERY in prompt, prompt
    drafts = [hostile_reply("", k) for k in range(3)]
    assert sent[0] == HOSTILE_QUERY
    assert sorted(next(d for d in drafts if d in p) for p in sent[1:4]) == drafts
    rank, fuse = sent[4], sent[5]
    assert all(d in rank for d in drafts) and rank.count(hostile_reply("Strengths and weaknesses:", 0)) == 3
    assert drafts[1] in fuse and drafts[0] in fuse


ONE_CALL = """
backends:
  fast:
    base_url: ${ARCHON_BASE_URL}
    api_key_env: FAST_API_KEY
    timeout: TIMEOUT
    max_retries: RETRIES
nodes:
  - id: ask
    op: generate
    model: fast/m
"""


def one_call(tmp_path, timeout=10, retries=4):
    return write(tmp_path, "one.yaml", ONE_CALL.replace("TIMEOUT", str(timeout)).replace("RETRIES", str(retries)))


def test_429_with_retry_after_twice_then_success(server, tmp_path):
    env = srf_env(server, tmp_path)
    server.fail_next(429, times=2, retry_after=0.2)
    start = time.monotonic()
    out = archon("run", str(one_call(tmp_path)), "--input", "q", env=env)
    assert out.returncode == 0, out.stderr
    assert time.monotonic() - start >= 0.4  # both waits honoured
    (c,) = json.loads(archon("calls", "--json", env=env).stdout)
    assert c["attempts"] == 3 and c["status"] == "ok"


def test_500_then_success(server, tmp_path):
    env = srf_env(server, tmp_path)
    server.fail_next(500, times=1)
    out = archon("run", str(one_call(tmp_path)), "--input", "q", env=env)
    assert out.returncode == 0, out.stderr
    (c,) = json.loads(archon("calls", "--json", env=env).stdout)
    assert c["attempts"] == 2


def test_401_exits_1_fast_naming_the_key_variable(server, tmp_path):
    env = srf_env(server, tmp_path)
    server.fail_next(401, times=1)
    out = archon("run", str(one_call(tmp_path)), "--input", "q", env=env)
    assert out.returncode == 1
    assert "FAST_API_KEY" in out.stderr and "Traceback" not in out.stderr
    assert server.requests == 1  # no retry
    (c,) = json.loads(archon("calls", "--json", env=env).stdout)
    # "Fast" is this: one request, one attempt, so no retry wait. No wall-clock bound: on a loaded
    # machine the CLI's start-up alone can take seconds (performance belongs in bench/).
    assert c["status"] == "error" and c["attempts"] == 1


def test_missing_key_is_a_usage_error(server, tmp_path):
    env = {**srf_env(server, tmp_path)}
    env.pop("FAST_API_KEY")
    full = {k: v for k, v in os.environ.items() if k != "FAST_API_KEY"}
    out = subprocess.run([sys.executable, "-m", "archon", "run", str(one_call(tmp_path)), "--input", "q"],
                         capture_output=True, text=True, env={**full, **env})
    assert out.returncode == 2 and "FAST_API_KEY" in out.stderr and server.requests == 0


def test_server_that_never_answers_times_out_naming_the_call(server, tmp_path):
    env = srf_env(server, tmp_path)
    server.hang_next(times=5)
    start = time.monotonic()
    out = archon("run", str(one_call(tmp_path, timeout=0.5, retries=0)), "--input", "q", env=env)
    assert out.returncode == 1
    assert time.monotonic() - start < 15
    assert "node 'ask'" in out.stderr and "fast" in out.stderr and "0.5" in out.stderr
    assert "Traceback" not in out.stderr


def test_non_json_200_is_a_per_call_error(server, tmp_path):
    env = srf_env(server, tmp_path)
    server.garbage_next(times=1)
    out = archon("run", str(one_call(tmp_path)), "--input", "q", env=env)
    assert out.returncode == 1
    assert "node 'ask'" in out.stderr and "JSON" in out.stderr and "Traceback" not in out.stderr
    (c,) = json.loads(archon("calls", "--json", env=env).stdout)
    assert c["status"] == "error" and "JSON" in c["error"]


@pytest.mark.local_model
def test_quickstart_runs_on_the_embedded_model(tmp_path):
    """The README's quick start, on the real embedded model: no key, no network."""
    pytest.importorskip("llama_cpp", reason="needs the 'local' extra: pip install 'archon-llm[local]'")
    env = {"ARCHON_DB_URL": f"sqlite:///{tmp_path / 'q.db'}"}
    out = archon("run", str(EXAMPLES / "quickstart.yaml"), "--input", "def fibonacci(n):", env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip(), "the model produced no text"
    (c,) = json.loads(archon("calls", "--json", env=env).stdout)
    assert c["backend"] == "local" and c["model"] == "gemma-3-270m"
    assert c["completion_tokens"] > 0 and c["cost_usd"] == 0 and c["status"] == "ok"
    # the same run again is replayed from the cache
    again = archon("run", str(EXAMPLES / "quickstart.yaml"), "--input", "def fibonacci(n):", env=env, timeout=300)
    assert again.stdout == out.stdout
    assert json.loads(archon("calls", "--json", env=env).stdout)[-1]["cached"] is True
