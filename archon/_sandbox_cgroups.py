"""Per-run cgroups for the sandbox: a memory limit for the whole run (every process, and the files
its tmpfs holds) and a process limit, and a reliable way to kill everything the run started.

cgroup v2 is used where this process's cgroup can delegate the memory and pids controllers to a
child; else cgroup v1's memory and pids hierarchies (nested under this process's own cgroups);
else nothing, and ``support()`` says why. Needs root (or a delegated subtree).
"""

from __future__ import annotations

import itertools
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RunCgroup", "kill_all", "support"]

_PREFIX = "archon-sandbox-"
_counter = itertools.count()


@dataclass(frozen=True)
class _Layout:
    version: int                      # 2 or 1
    memory: Path                      # the parent directory of the runs' cgroups (v2: also pids)
    pids: Path | None                 # v1 only: the pids hierarchy's parent directory


_layout: _Layout | None = None
_reason: str | None = None
_probed = False


def _mounts() -> list[tuple[str, str, str]]:
    """(mount point, filesystem type, super options) of every mount."""
    out = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            left, _, right = line.partition(" - ")
            fields, tail = left.split(), right.split()
            if len(fields) >= 5 and len(tail) >= 3:
                out.append((fields[4], tail[0], tail[2]))
    return out


def _own_paths() -> dict[str, str]:
    """This process's cgroup path per v1 controller, and under '' for v2."""
    paths = {}
    with open("/proc/self/cgroup", encoding="utf-8") as fh:
        for line in fh:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for name in controllers.split(",") if controllers else [""]:
                paths[name] = path
    return paths


def _try_v2(mounts, own) -> _Layout | None:
    point = next((m for m, fs, _ in mounts if fs == "cgroup2"), None)
    if point is None or "" not in own:
        return None
    base = Path(point + own[""])
    try:
        if not {"memory", "pids"} <= set((base / "cgroup.controllers").read_text().split()):
            return None
        enabled = set((base / "cgroup.subtree_control").read_text().split())
        if not {"memory", "pids"} <= enabled:
            # Refused (EBUSY) when this cgroup holds processes and is not the root: the
            # "no internal processes" rule. Then v1 or nothing.
            (base / "cgroup.subtree_control").write_text("+memory +pids")
    except OSError:
        return None
    return _Layout(2, base, None)


def _try_v1(mounts, own) -> _Layout | None:
    found = {}
    for name in ("memory", "pids"):
        point = next((m for m, fs, opts in mounts if fs == "cgroup" and name in opts.split(",")), None)
        if point is None or name not in own:
            return None
        found[name] = Path(point + own[name])
    return _Layout(1, found["memory"], found["pids"])


def _probe() -> None:
    global _layout, _reason, _probed
    _probed = True
    if os.geteuid() != 0:
        _reason = "not root (no cgroup to create)"
        return
    try:
        mounts, own = _mounts(), _own_paths()
    except OSError as exc:
        _reason = f"cannot read this process's cgroups: {exc}"
        return
    for layout in (_try_v2(mounts, own), _try_v1(mounts, own)):
        if layout is not None and _writable(layout):
            _layout = layout
            _sweep_leftovers(layout)
            return
    _reason = "no writable cgroup v2 with memory and pids delegated, nor cgroup v1 memory and pids hierarchies"


def _writable(layout: _Layout) -> bool:
    probe = f"{_PREFIX}{os.getpid()}-probe"
    made = []
    try:
        for parent in filter(None, (layout.memory, layout.pids)):
            (parent / probe).mkdir(exist_ok=True)
            made.append(parent / probe)
        return True
    except OSError:
        return False
    finally:
        for path in made:
            try:
                path.rmdir()
            except OSError:
                pass


def _sweep_leftovers(layout: _Layout) -> None:
    # Cgroups of a caller that died mid-run: empty them and remove them.
    for parent in filter(None, (layout.memory, layout.pids)):
        for path in parent.glob(_PREFIX + "*"):
            owner = path.name[len(_PREFIX):].split("-")[0]
            if owner.isdigit() and not os.path.exists(f"/proc/{owner}"):
                _empty(path)
                try:
                    path.rmdir()
                except OSError:
                    pass


def support() -> tuple[int | None, str | None]:
    """(cgroup version in use or None, why none is used)."""
    if not _probed:
        _probe()
    return (_layout.version if _layout else None), _reason


def _pids(path: Path) -> list[int]:
    try:
        return [int(p) for p in (path / "cgroup.procs").read_text().split()]
    except OSError:
        return []


def kill_all(find: Callable[[], list[int]], rounds: int = 100) -> None:
    """SIGKILL every pid ``find`` returns until it returns none; a process limit caps how many can
    appear between two rounds, so a few rounds outpace any fork loop."""
    for _ in range(rounds):
        pids = find()
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.005)


def _empty(path: Path) -> None:
    kill = path / "cgroup.kill"
    if kill.exists():
        try:
            kill.write_text("1")
        except OSError:
            pass
    kill_all(lambda: _pids(path))


class RunCgroup:
    """One run's cgroup(s). ``procs`` are the files the launcher writes its pid into."""

    def __init__(self, memory_bytes: int, max_processes: int):
        if not _probed:
            _probe()
        self.paths: list[Path] = []
        if _layout is None:
            return
        name = f"{_PREFIX}{os.getpid()}-{next(_counter)}"
        try:
            if _layout.version == 2:
                path = _layout.memory / name
                path.mkdir()
                self.paths.append(path)
                _write(path / "memory.max", memory_bytes)
                _write(path / "memory.swap.max", 0, optional=True)
                _write(path / "pids.max", max_processes)
            else:
                mem, pids = _layout.memory / name, _layout.pids / name  # type: ignore[operator]
                mem.mkdir()
                self.paths.append(mem)
                _write(mem / "memory.limit_in_bytes", memory_bytes)
                _write(mem / "memory.memsw.limit_in_bytes", memory_bytes, optional=True)  # no swap either
                pids.mkdir()
                self.paths.append(pids)
                _write(pids / "pids.max", max_processes)
        except OSError:
            self.remove()
            raise

    @property
    def active(self) -> bool:
        return bool(self.paths)

    @property
    def procs(self) -> list[str]:
        return [str(p / "cgroup.procs") for p in self.paths]

    def pids(self) -> list[int]:
        return sorted({pid for p in self.paths for pid in _pids(p)})

    def oom_killed(self) -> bool:
        """True when the kernel killed a process of the run for the run's memory limit."""
        for path in self.paths:
            for name in ("memory.events", "memory.oom_control"):
                try:
                    text = (path / name).read_text()
                except OSError:
                    continue
                counts = dict(line.split() for line in text.splitlines() if len(line.split()) == 2)
                if int(counts.get("oom_kill", 0)) > 0:
                    return True
        return False

    def kill(self) -> None:
        for path in self.paths:
            _empty(path)

    def remove(self) -> None:
        for path in reversed(self.paths):
            _empty(path)
            for _ in range(200):  # rmdir fails while the last killed process is being torn down
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.005)
        self.paths = []


def _write(path: Path, value: int, optional: bool = False) -> None:
    try:
        path.write_text(str(value))
    except OSError:
        if not optional:
            raise
