"""What the host looks like, read from outside the sandbox: processes, IPC objects, files, memory, disk.

The attack tests judge containment by these observations, never by the sandbox's own report.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from pathlib import Path

import pytest

from archon import sandbox

SKIP_TREES = ("/proc", "/sys", "/dev/pts")


def require(*needed: str) -> None:
    """Skip, naming the missing protection, when this kernel refuses one the test relies on."""
    info = sandbox.protections()
    have = {"uid": info["dedicated_uid"], "new_root": info["new_root"], "cgroup": info["cgroup"] is not None,
            **{f"{ns}ns": ns in info["namespaces"] for ns in ("net", "ipc", "mount", "pid")}}
    missing = [n for n in needed if not have[n]]
    if missing:
        pytest.skip(f"this kernel refuses {', '.join(missing)}: " + "; ".join(info["missing"]))


def sandbox_processes() -> list[int]:
    """Live processes of any sandbox: its uid range, its marker in the environment, or its cgroups."""
    found = set()
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            status = Path(f"/proc/{entry}/status").read_text()
            environ = Path(f"/proc/{entry}/environ").read_bytes()
            cgroup = Path(f"/proc/{entry}/cgroup").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields["State"].strip().startswith(("Z", "X")):
            continue
        uid = int(fields["Uid"].split()[0])
        if (sandbox._UID_BASE <= uid < sandbox._UID_BASE + sandbox._UID_SLOTS or b"ARCHON_SANDBOX=1" in environ
                or "archon-sandbox-" in cgroup):
            found.add(int(entry))
    return sorted(found)


def no_sandbox_processes(within: float = 2.0) -> bool:
    deadline = time.monotonic() + within
    while sandbox_processes():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def sysv_objects() -> dict[str, int]:
    """How many SysV shared memory segments, message queues and semaphore sets the host has."""
    return {kind: len(Path(f"/proc/sysvipc/{kind}").read_text().splitlines()) - 1 for kind in ("shm", "msg", "sem")}


def meminfo(field: str) -> int:
    """A /proc/meminfo field in MB."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) // 1024
    raise KeyError(field)


class MemoryWatch:
    """Samples the host's available memory while a run goes on: the largest drop, in MB."""

    def __init__(self, every: float = 0.01):
        self.every, self.start, self.low = every, meminfo("MemAvailable"), None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        low = self.start
        while not self._stop.is_set():
            low = min(low, meminfo("MemAvailable"))
            time.sleep(self.every)
        self.low = low

    def __enter__(self) -> MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def drop_mb(self) -> int:
        return self.start - (self.low if self.low is not None else self.start)


@functools.lru_cache(maxsize=1)
def world_writable_dirs() -> list[str]:
    """Every directory on the host that any user may create files in (the sandbox uid included)."""
    found = []
    for top, dirs, _ in os.walk("/", topdown=True):
        dirs[:] = [d for d in dirs if os.path.join(top, d) not in SKIP_TREES and not os.path.islink(os.path.join(top, d))]
        try:
            mode = os.stat(top).st_mode
        except OSError:
            continue
        if mode & 0o002:
            found.append(top)
    return found


def disk_free_mb(path: str) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize >> 20
