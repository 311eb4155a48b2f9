"""Registries: a name in a pipeline file (an op, a backend kind, a scorer) -> the object behind it.

Every name comes from an entry-point group, Archon's own built-ins included, so a plug-in package
is declared exactly like Archon itself (``pyproject.toml``)::

    [project.entry-points."archon.operators"]      # name = op kind, value = "module:Class"
    [project.entry-points."archon.backends"]       # name = backend kind, value = "module:Class"
    [project.entry-points."archon.scorers"]        # name = scorer, value = "module:function"

Entry points are read once, on the first lookup, and their targets imported only when their name is
used, so ``archon validate`` never imports a backend it does not need. Two installed distributions
declaring one name is an error naming both (which one wins would depend on install order).
``register(name, obj)`` adds a name from code, e.g. in a test or a notebook.

The scorers' registry lives with the scorers (``archon.evals.scorers.SCORERS``).
"""

from __future__ import annotations

__all__ = [
    "BACKENDS",
    "OPERATORS",
    "Registry",
    "backend_kinds",
    "backend_settings",
    "get_backend_class",
    "get_operator",
    "load_target",
    "operator_kinds",
    "register_backend",
    "register_operator",
]

import importlib
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from archon.exceptions import ConfigError, SpecError, UserError, suggest

if TYPE_CHECKING:
    from backends.presets import BackendSpec
    from operators.base import Operator

T = TypeVar("T")


def load_target(target: str, what: str) -> Any:
    """The object a "package.module:attr" string names; a ConfigError saying what is wrong otherwise."""
    module, sep, attr = target.partition(":")
    if not sep or not module or not attr:
        raise ConfigError(f"{what}: '{target}' is not 'package.module:attr'.")
    try:
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{what}: cannot load '{target}' ({type(exc).__name__}: {exc}).") from exc
    return obj


class Registry(Generic[T]):
    """Names -> objects of one kind, fed by the entry-point group ``group``.

    ``what`` names an entry in messages ("op", "backend kind"); ``error`` is the exception an unknown
    name raises; ``check(name, obj)`` validates (and may adapt) each loaded object, raising
    ConfigError with the fix when a plug-in declares something unusable. ``find(group)`` lists the
    entry points (``importlib.metadata.entry_points`` unless a test gives its own).
    """

    def __init__(self, group: str, what: str, *, error: type[UserError] = ConfigError,
                 check: Callable[[str, Any], T] | None = None,
                 find: Callable[..., Iterable[EntryPoint]] | None = None):
        self.group = group
        self._find = find
        self.what = what
        self.error = error
        self._check = check
        self._targets: dict[str, str] = {}        # name -> "module:attr", not imported yet
        self._origins: dict[str, str] = {}        # name -> the distribution that declared it
        self._conflicts: dict[str, str] = {}      # name -> why it cannot be used
        self._loaded: dict[str, T] = {}
        self._registered: dict[str, T | str] = {}  # register(): wins over nothing, refused on a taken name
        self._discovered = False
        self._lock = threading.Lock()              # a server's threads may look names up at once

    def _discover(self) -> None:
        if self._discovered:
            return
        with self._lock:
            if self._discovered:
                return
            for ep in (self._find or entry_points)(group=self.group):
                self._add_entry_point(ep)
            self._discovered = True

    def _add_entry_point(self, ep: EntryPoint) -> None:
        dist = ep.dist.name if ep.dist is not None else "?"
        known = self._origins.get(ep.name)
        if known is not None and known != dist:
            self._conflicts[ep.name] = (
                f"{self.what} '{ep.name}' is declared by two installed packages, '{known}' and '{dist}' "
                f"(entry-point group '{self.group}'); uninstall one of them or rename the entry point.")
            return
        self._origins[ep.name] = dist
        self._targets[ep.name] = ep.value

    def names(self, origin: str | None = None) -> list[str]:
        """Every name, or with ``origin`` only those a distribution declares (``"archon-llm"``: the built-ins)."""
        self._discover()
        if origin is not None:
            return sorted(n for n, dist in self._origins.items() if dist == origin and n not in self._registered)
        return sorted(set(self._targets) | set(self._registered))

    def __contains__(self, name: object) -> bool:
        return name in self.names()

    def origin(self, name: str) -> str | None:
        """The distribution that declared ``name`` (None for a name registered from code)."""
        self._discover()
        return None if name in self._registered else self._origins.get(name)

    def register(self, name: str, obj: T | str, *, replace: bool = False) -> None:
        """Add ``name`` (an object, or a lazy "module:attr"); a taken name is refused unless ``replace``."""
        if not replace and name in self:
            raise ConfigError(f"{self.what} '{name}' is already registered; pick another name or pass replace=True.")
        with self._lock:
            self._registered[name] = obj
            self._loaded.pop(name, None)

    def unregister(self, name: str) -> None:
        """Remove a name added with ``register`` (entry points stay)."""
        with self._lock:
            self._registered.pop(name, None)
            self._loaded.pop(name, None)

    def copy(self) -> Registry[T]:
        """The same names in a registry of its own: a test swaps it in (``monkeypatch.setattr(registry,
        "OPERATORS", registry.OPERATORS.copy())``) and its registrations end with the test."""
        self._discover()
        new: Registry[T] = Registry(self.group, self.what, error=self.error, check=self._check, find=self._find)
        with self._lock:
            new._targets, new._origins, new._conflicts = dict(self._targets), dict(self._origins), dict(self._conflicts)
            new._registered, new._loaded = dict(self._registered), dict(self._loaded)
            new._discovered = True
        return new

    @contextmanager
    def registered(self, name: str, obj: T | str) -> Iterator[None]:
        """``name`` registered for the ``with`` block only (a test's own op or backend kind)."""
        self.register(name, obj)
        try:
            yield
        finally:
            self.unregister(name)

    def get(self, name: str) -> T:
        found = self._loaded.get(name)
        if found is not None:
            return found
        self._discover()
        if name in self._registered:
            value = self._registered[name]
        elif name in self._conflicts:
            raise ConfigError(self._conflicts[name])
        elif name in self._targets:
            value = self._targets[name]
        else:
            raise self.error(self.unknown(name))
        obj = load_target(value, f"{self.what} '{name}'") if isinstance(value, str) else value
        if self._check is not None:
            obj = self._check(name, obj)
        self._loaded[name] = obj
        return obj

    def unknown(self, name: str) -> str:
        """The message for a name nobody declared: the nearest name, every valid one, where they come from."""
        valid = self.names()
        if not valid:
            return (f"unknown {self.what} '{name}': no package declares any (entry-point group '{self.group}'); "
                    f"is Archon installed? pip install -e . (or pip install archon-llm)")
        return (f"unknown {self.what} '{name}'.{suggest(name, valid)} Valid {self.what}s: {', '.join(valid)} "
                f"(the '{self.group}' entry points of installed packages; reinstall one after editing its pyproject.toml).")


def _check_operator(name: str, obj: Any) -> Any:
    from operators.base import OpConfig, Operator

    if not (isinstance(obj, type) and issubclass(obj, Operator)):
        raise ConfigError(f"op '{name}': {obj!r} is not a subclass of operators.base.Operator.")
    if getattr(obj, "kind", None) != name:
        raise ConfigError(f"op '{name}': {obj.__name__}.kind is {getattr(obj, 'kind', None)!r}; set kind = '{name}' "
                          f"(the entry point's name).")
    if not issubclass(obj.Config, OpConfig):
        raise ConfigError(f"op '{name}': {obj.__name__}.Config must subclass operators.base.OpConfig.")
    return obj


def _check_backend(name: str, obj: Any) -> Any:
    from backends.presets import BackendSpec

    if not (isinstance(obj, type) and callable(getattr(obj, "complete", None))):
        raise ConfigError(f"backend kind '{name}': {obj!r} is not a class with an async complete(request) method.")
    settings = getattr(obj, "Settings", BackendSpec)
    if not (isinstance(settings, type) and issubclass(settings, BackendSpec)):
        raise ConfigError(f"backend kind '{name}': {obj.__name__}.Settings must subclass backends.presets.BackendSpec.")
    return obj


OPERATORS: Registry[type[Operator[Any]]] = Registry("archon.operators", "op", error=SpecError, check=_check_operator)
BACKENDS: Registry[type] = Registry("archon.backends", "backend kind", check=_check_backend)


def register_operator(cls: type[Operator[Any]]) -> type[Operator[Any]]:
    """Register an operator class under its ``kind`` (usable as a decorator)."""
    OPERATORS.register(cls.kind, cls)
    return cls


def register_backend(kind: str, cls: type) -> None:
    """Register a backend class under ``kind`` (its ``Settings`` model parses that kind's entries)."""
    BACKENDS.register(kind, cls)


def operator_kinds() -> list[str]:
    return OPERATORS.names()


def get_operator(kind: str) -> type[Operator[Any]]:
    return OPERATORS.get(kind)


def backend_kinds() -> list[str]:
    return BACKENDS.names()


def get_backend_class(kind: str) -> type:
    return BACKENDS.get(kind)


def backend_settings(kind: str) -> type[BackendSpec]:
    """The settings model of backend ``kind``: its class's ``Settings`` (the common fields when it has none)."""
    from backends.presets import BackendSpec

    return getattr(get_backend_class(kind), "Settings", BackendSpec)
