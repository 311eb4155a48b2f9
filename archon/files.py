"""Reading the user's files (pipelines, search spaces, benchmarks, queries) without trusting them.

Every file a command reads is someone's input, so each way it can be wrong is an exit 2 that names
the file and the place, never a traceback or a stall:

- size: at most ``MAX_FILE_BYTES`` are read (a pipeline is a few KB; a 10 MB cap leaves room and
  keeps a wrong path such as a disk image from filling memory);
- encoding: UTF-8 only; a bad byte is reported with its line, column and byte offset, and a UTF-16
  file (by its byte-order mark) is named as such;
- YAML shape: at most ``MAX_DEPTH`` levels of nesting and ``MAX_VALUES`` values *after* aliases are
  expanded. Aliases stay allowed (``<<: *common`` shares settings between nodes, a real use), but an
  alias bomb, where a few hundred bytes expand to billions of values, is refused while only the
  unexpanded nodes exist: counting the expansion takes one pass over the distinct nodes;
- lone surrogates: a ``"\\ud800"`` escape in YAML or JSON makes a string no encoder accepts; it is
  refused at load, naming where it is, rather than failing a model call or a database write later.
"""

from __future__ import annotations

__all__ = ["MAX_DEPTH", "MAX_FILE_BYTES", "MAX_VALUES", "find_surrogate", "load_yaml", "read_text", "utf8_error"]

from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer, ComposerError
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, SequenceNode
from yaml.resolver import Resolver

from archon.exceptions import SpecError

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_DEPTH = 64
MAX_VALUES = 50_000


def read_text(path: str | Path, what: str, *, limit: int | None = MAX_FILE_BYTES) -> str:
    """The UTF-8 text of ``path``; a missing, unreadable, oversized or non-UTF-8 file is a SpecError."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            data = fh.read() if limit is None else fh.read(limit + 1)
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the {what} file ({exc.strerror or exc}).") from exc
    if limit is not None and len(data) > limit:
        raise SpecError(f"{path}: the {what} file is larger than {limit // (1024 * 1024)} MB; is it the right file?")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: {utf8_error(data, exc)}") from None


def utf8_error(data: bytes, exc: UnicodeDecodeError) -> str:
    """Where and why ``data`` is not UTF-8, and the fix."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "the file is UTF-16 (it starts with a UTF-16 byte-order mark); save it as UTF-8."
    line = data.count(b"\n", 0, exc.start) + 1
    column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
    byte = data[exc.start:exc.start + 1].hex()
    return (f"not UTF-8 at line {line}, column {column} (byte offset {exc.start}: 0x{byte}); "
            f"save the file as UTF-8 (a Latin-1 or binary file cannot be read).")


class _Bounded:
    """Composes nodes in Python, stopping past ``MAX_DEPTH`` levels or ``MAX_VALUES`` nodes.

    PyYAML composes recursively, so deep nesting would otherwise end in RecursionError; the count
    keeps a huge flat file from composing for minutes before the expansion check below runs.
    """

    _depth = 0
    _count = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self._count += 1
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH or self._count > MAX_VALUES:
                # A mixin: the parser it is mixed with (CParser or yaml's Parser) has peek_event.
                mark = self.peek_event().start_mark  # type: ignore[attr-defined]
                problem = (f"nested more than {MAX_DEPTH} levels deep" if self._depth > MAX_DEPTH
                           else f"more than {MAX_VALUES} values")
                raise ComposerError(None, None, problem, mark)
            # Composer's own method, on the loader this mixin is part of (itself a Composer).
            return Composer.compose_node(self, parent, index)  # type: ignore[arg-type]
        finally:
            self._depth -= 1


if getattr(yaml, "__with_libyaml__", False):
    from yaml._yaml import CParser

    class _BoundedLoader(_Bounded, CParser, Composer, SafeConstructor, Resolver):
        """libyaml scans and parses (pure-Python scanning takes seconds per MB); Python composes,
        pulling events lazily, so a 50,000-bracket line stops at level 65."""

        def __init__(self, stream: str):
            CParser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)

        # CParser composes in C, without the bounds: use Composer's, which call compose_node above.
        get_single_node = Composer.get_single_node
        compose_document = Composer.compose_document
        compose_scalar_node = Composer.compose_scalar_node
        compose_sequence_node = Composer.compose_sequence_node
        compose_mapping_node = Composer.compose_mapping_node

        def dispose(self) -> None:
            CParser.dispose(self)
else:  # pragma: no cover - PyYAML built without libyaml
    class _BoundedLoader(_Bounded, yaml.SafeLoader):  # type: ignore[no-redef]
        pass


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []


def _check_expansion(root: Node, source: str) -> None:
    """Refuse a document whose aliases expand past MAX_VALUES values or MAX_DEPTH levels, or loop.

    One iterative pass over the distinct nodes (an alias is the same Node object as its anchor), so
    a bomb is measured without being expanded and without recursing.
    """
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            kids = _children(node)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            depth[key] = 1 + max((depth[id(k)] for k in kids), default=0)
            open_.discard(key)
            if size[key] > MAX_VALUES or depth[key] > MAX_DEPTH:
                mark = node.start_mark
                what = (f"expand to more than {MAX_VALUES} values" if size[key] > MAX_VALUES
                        else f"nest more than {MAX_DEPTH} levels deep")
                raise SpecError(f"{source}: the YAML aliases (*name) from line {mark.line + 1}, column {mark.column + 1} "
                                f"{what}; write the values out, or use fewer aliases.")
            continue
        if key in size:
            continue
        if key in open_:
            mark = node.start_mark
            raise SpecError(f"{source}: line {mark.line + 1}, column {mark.column + 1}: a YAML alias refers to a value "
                            f"that contains it (a loop); a pipeline's data must be a tree.")
        open_.add(key)
        stack.append((node, True))
        stack.extend((k, False) for k in _children(node))


def load_yaml(text: str, source: str) -> Any:
    """The data of a YAML (or JSON) document, bounded as the module docstring says; errors are SpecErrors."""
    loader = None
    try:
        loader = _BoundedLoader(text)
        root = loader.get_single_node()
        if root is None:
            return None
        _check_expansion(root, source)
        data = loader.construct_document(root)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise SpecError(f"{source}: not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    except (ValueError, OverflowError) as exc:  # a 5000-digit integer, a date such as 2024-13-45
        raise SpecError(f"{source}: a value cannot be read: {exc}") from None
    finally:
        if loader is not None:
            loader.dispose()
    found = find_surrogate(data)
    if found is not None:
        raise SpecError(f"{source}: {found}")
    return data


def find_surrogate(data: Any) -> str | None:
    """A message naming the first string in ``data`` (keys too) holding a lone surrogate, else None.

    Only a ``\\uD800``-``\\uDFFF`` escape makes one (UTF-8 text decoded strictly never does), and no
    encoder, SQLite or HTTP client accepts it. Iterative: the data may be deep.
    """
    stack: list[tuple[Any, str]] = [(data, "")]
    seen: set[int] = set()
    while stack:
        value, where = stack.pop()
        if isinstance(value, str):
            bad = next((c for c in value if "\ud800" <= c <= "\udfff"), None)
            if bad is not None:
                at = f"field '{where}'" if where else "the text"
                return (f"{at} holds a lone surrogate \\u{ord(bad):04x} (half of a UTF-16 pair, from an escape); "
                        f"write the character itself, or remove the escape.")
        elif isinstance(value, (dict, list)) and id(value) not in seen:
            seen.add(id(value))
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for k, v in items:
                label = f"{where}[{k}]" if isinstance(k, int) and not isinstance(value, dict) else (
                    f"{where}.{k}" if where else str(k))
                stack.append((v, label))
                if isinstance(k, str):  # checked before its value, so no label ever shows a surrogate
                    stack.append((k, f"{where} (a key)" if where else "(a key)"))
    return None
