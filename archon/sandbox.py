"""The one place that runs model-generated code (unit-test operators, code benchmarks).

Each run gets a fresh working directory under ``<tmp>/archon-sandbox/``, a clean environment and
limits on wall time, CPU, memory, processes, file size and output. As root (the usual case in a
container or CI box) the code also runs:

- as a dedicated uid/gid (64000 + a slot number, one per concurrent run, never a real account), so it
  cannot write files it does not own, read other processes' ``/proc/PID/environ``, or signal them;
- in new network, mount and PID namespaces: no network at all (not even 127.0.0.1), a private tmpfs
  on /tmp, /var/tmp and /dev/shm, a /proc that shows only the sandbox's own processes, and home
  directories that other users may not enter (such as /root) hidden behind an empty tmpfs except for
  the Python installation. When the run's first process exits, the kernel kills every process left.

What falls back when the kernel refuses something (unprivileged containers, seccomp):
- no root: a user namespace is tried for the same namespaces; files owned by the caller stay writable;
- no network namespace: a prelude replaces ``socket.socket`` (stops ordinary code, not ctypes);
- no PID namespace: the launcher adopts escaped descendants (child subreaper) and kills them when the
  code exits; on a timeout the caller kills the sandbox uid's processes (or, without root, the
  launcher's process tree) before the process group.
Not protected: disk space in the working directory, world-readable host files, /sys.

The code runs as ``python -S -B main.py``: the standard library only, no site-packages.
"""

from __future__ import annotations

import asyncio
import fcntl
import functools
import os
import pwd
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from archon.exceptions import ConfigError

__all__ = ["Limits", "SandboxResult", "run_python", "arun_python", "set_max_parallel"]

ENTRY = "main.py"
_UID_BASE, _UID_SLOTS = 64_000, 1024
# Which namespaces the launcher may ask for; tests narrow this to exercise the fallbacks.
_NAMESPACES = frozenset({"net", "mount", "pid"})
_NS_BITS = {"net": 1, "mount": 2, "pid": 4}
_CHUNK = 65_536


# Runs as the sandbox's first process, with -I so nothing in the working directory is imported
# while it is still root. It enters the namespaces, reshapes the mounts, forks an init for the PID
# namespace, then drops to the sandbox uid and execs the code. Kept to builtin modules: it starts
# on every run. Its own failures exit 125 with an "archon-sandbox: " line on stderr.
_LAUNCHER = (Path(__file__).with_name("_sandbox_launcher.py")).read_text(encoding="utf-8")


@dataclass(frozen=True)
class Limits:
    wall_seconds: float = 10.0      # wall clock; on expiry every process of the run is killed
    cpu_seconds: int = 10           # RLIMIT_CPU (SIGXCPU, then SIGKILL one second later)
    memory_mb: int = 512            # RLIMIT_AS, per process
    max_processes: int = 64         # RLIMIT_NPROC of the dedicated uid (processes and threads)
    max_output_bytes: int = 64_000  # kept per stream: the first and the last half, the middle dropped
    max_file_mb: int = 16           # RLIMIT_FSIZE; also the size of each private tmpfs

    def __post_init__(self) -> None:
        for name in ("wall_seconds", "cpu_seconds", "memory_mb", "max_processes", "max_file_mb"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"sandbox Limits.{name} must be positive, got {getattr(self, name)!r}")
        if self.max_output_bytes < 0:
            raise ConfigError(f"sandbox Limits.max_output_bytes must be >= 0, got {self.max_output_bytes!r}")


@dataclass(frozen=True)
class SandboxResult:
    status: Literal["passed", "failed", "timeout", "error"]
    returncode: int | None
    stdout: str
    stderr: str
    duration_s: float
    reason: str | None = None


def run_python(code: str, *, stdin: str = "", limits: Limits = Limits(),
               files: dict[str, str] | None = None) -> SandboxResult:
    """Run ``code`` as ``main.py`` in a fresh sandbox and wait for it (blocks the calling thread).

    ``files`` maps relative paths to text put next to ``main.py`` (e.g. a test module). Failures of
    the code are results, not exceptions; only a malformed call raises ``ConfigError``.
    """
    return _run(code, stdin, limits, _checked_files(files), None)


async def arun_python(code: str, *, stdin: str = "", limits: Limits = Limits(),
                      files: dict[str, str] | None = None) -> SandboxResult:
    """``run_python`` on a worker thread; at most ``set_max_parallel(n)`` runs at once per process.

    Cancelling the awaiting task kills the run within about 0.1 s.
    """
    checked = _checked_files(files)
    cancel = threading.Event()
    job = functools.partial(_run, code, stdin, limits, checked, cancel)
    try:
        return await asyncio.get_running_loop().run_in_executor(_executor(), job)
    except asyncio.CancelledError:
        cancel.set()
        raise


# The executor is the semaphore: its worker count bounds the parallel runs of every event loop and
# thread in the process, which a per-loop asyncio.Semaphore could not do.
_max_parallel = os.cpu_count() or 1
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def set_max_parallel(n: int) -> None:
    """Bound the number of concurrent ``arun_python`` sandboxes (default: the CPU count)."""
    global _max_parallel, _pool
    if not isinstance(n, int) or n < 1:
        raise ConfigError(f"set_max_parallel needs a positive integer, got {n!r}")
    with _pool_lock:
        old, _pool, _max_parallel = _pool, None, n
    if old is not None:
        old.shutdown(wait=False)  # runs already queued there still finish


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=_max_parallel, thread_name_prefix="archon-sandbox")
        return _pool


def _checked_files(files: dict[str, str] | None) -> dict[str, str]:
    for name in files or {}:
        parts = PurePosixPath(name).parts
        if not parts or PurePosixPath(name).is_absolute() or ".." in parts or name == ENTRY:
            raise ConfigError(f"sandbox file name {name!r} must be a relative path inside the working "
                              f"directory, without '..', and not {ENTRY!r} (the code itself goes there)")
    return dict(files or {})


def _temp_root() -> Path:
    euid = os.geteuid()
    root = Path(tempfile.gettempdir()) / ("archon-sandbox" if euid == 0 else f"archon-sandbox-{euid}")
    root.mkdir(mode=0o711, exist_ok=True)  # others may traverse (to reach their workdir), never list
    info = os.lstat(root)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != euid:  # planted by someone else in /tmp
        raise RuntimeError(f"{root} is not a directory owned by uid {euid}; remove it or set TMPDIR")
    return root


class _Slots:
    """Hands out one dedicated uid per concurrent run, across threads and processes.

    A byte-range lock on ``.slots`` per uid guards other processes; POSIX locks belong to the whole
    process, so a set guards this process's threads.
    """

    _lock = threading.Lock()
    _taken: set[int] = set()
    _fd: int | None = None

    @classmethod
    def acquire(cls) -> int:
        with cls._lock:
            if cls._fd is None:
                cls._fd = os.open(_temp_root() / ".slots", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            for slot in range(_UID_SLOTS):
                if slot in cls._taken:
                    continue
                if _is_account(_UID_BASE + slot):
                    continue  # never borrow a real account's uid
                try:
                    fcntl.lockf(cls._fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, slot)
                except OSError:
                    continue
                _sweep(uid=_UID_BASE + slot)  # left over by a process that crashed mid-run
                if _processes(uid=_UID_BASE + slot, zombies=True):
                    # Unreaped zombies still count against RLIMIT_NPROC: use another uid for now.
                    fcntl.lockf(cls._fd, fcntl.LOCK_UN, 1, slot)
                    continue
                cls._taken.add(slot)
                return _UID_BASE + slot
        raise RuntimeError(f"all {_UID_SLOTS} sandbox uids are in use")

    @classmethod
    def release(cls, uid: int) -> None:
        with cls._lock:
            fcntl.lockf(cls._fd, fcntl.LOCK_UN, 1, uid - _UID_BASE)
            cls._taken.discard(uid - _UID_BASE)


def _is_account(uid: int) -> bool:
    try:
        return bool(pwd.getpwuid(uid))
    except KeyError:
        return False


def _run(code: str, stdin: str, limits: Limits, files: dict[str, str],
         cancel: threading.Event | None) -> SandboxResult:
    start = time.monotonic()
    uid = workdir = proc = None
    try:
        uid = _Slots.acquire() if os.geteuid() == 0 else None
        workdir = _prepare(code, files, uid)
        proc = subprocess.Popen(
            _launcher_argv(workdir, limits, uid), cwd=workdir, env=_child_env(workdir),
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, start_new_session=True, close_fds=True)
        out, err, ended = _pump(proc, stdin.encode(), limits, start, cancel, uid)
        rc = proc.wait()
        return _classify(rc, out, err, ended, limits, time.monotonic() - start)
    except (OSError, RuntimeError) as exc:
        return SandboxResult("error", None, "", "", time.monotonic() - start, f"could not start the sandbox: {exc}")
    finally:
        if proc is not None:
            _kill(proc, uid)
            proc.wait()
        if workdir is not None:
            shutil.rmtree(workdir, onerror=_force_remove)
        if uid is not None:
            _Slots.release(uid)


def _prepare(code: str, files: dict[str, str], uid: int | None) -> str:
    workdir = os.path.realpath(tempfile.mkdtemp(prefix="run-", dir=_temp_root()))  # mount paths must be real
    for name, text in {**files, ENTRY: code}.items():
        path = Path(workdir, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    if uid is not None:
        for dirpath, dirnames, filenames in os.walk(workdir):
            for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
                os.chown(name, uid, uid)
    return workdir


def _child_env(workdir: str) -> dict[str, str]:
    # Built from nothing, so no key or token of the parent can leak. The launcher runs with -I and
    # ignores the PYTHON* variables; the code's interpreter honours them.
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir,
            "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PYTHONHASHSEED": "0", "PYTHONIOENCODING": "utf-8",
            "PYTHONDONTWRITEBYTECODE": "1", "ARCHON_SANDBOX": "1"}


def _launcher_argv(workdir: str, limits: Limits, uid: int | None) -> list[str]:
    if uid is not None:
        nproc = limits.max_processes
    else:  # RLIMIT_NPROC counts all of the caller's own processes
        nproc = len(_processes(uid=os.getuid())) + limits.max_processes
    numbers = [os.getpid(), -1 if uid is None else uid, limits.cpu_seconds, limits.memory_mb << 20,
               nproc, limits.max_file_mb << 20, limits.max_file_mb,
               sum(_NS_BITS[n] for n in _NAMESPACES)]
    return [sys.executable, "-I", "-S", "-c", _LAUNCHER, ",".join(map(str, numbers)),
            *_mount_plan(workdir, uid is not None), "--", sys.executable, "-S", "-B", ENTRY]


def _mount_plan(workdir: str, drop_uid: bool) -> list[str]:
    """Directories to cover with a private tmpfs ("h:MODE:PATH"), and to bind back on top ("e:PATH")."""
    exe = os.path.abspath(sys.executable)
    wanted = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, os.path.dirname(exe),
                                            os.path.dirname(os.path.realpath(exe)))} | {workdir}
    exposes = sorted(p for p in wanted if not any(p.startswith(q + "/") for q in wanted))
    hides = {d: "1777" for d in ("/tmp", "/var/tmp", "/dev/shm")
             if os.path.isdir(d) and not os.path.islink(d)}
    for path in exposes if drop_uid else []:
        parts = Path(path).parts
        for i in range(2, len(parts) + 1):
            ancestor = os.path.join(*parts[:i])
            if not os.stat(ancestor).st_mode & stat.S_IXOTH:  # the sandbox uid could not pass here
                hides.setdefault(ancestor, "755")
                break
    return [f"h:{mode}:{d}" for d, mode in sorted(hides.items())] + [f"e:{p}" for p in exposes]


class _Capture:
    """Keeps the first and the last ``limit / 2`` bytes of a stream; the middle is only counted."""

    def __init__(self, limit: int):
        self.head_max, self.tail_max = limit - limit // 2, limit // 2
        self.head, self.tail, self.total = bytearray(), bytearray(), 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        room = self.head_max - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data and self.tail_max:
            self.tail += data
            if len(self.tail) > 2 * self.tail_max:  # trim in batches to keep feeding O(chunk)
                del self.tail[:-self.tail_max]

    def text(self) -> str:
        tail = self.tail[-self.tail_max:] if self.tail_max else b""
        dropped = self.total - len(self.head) - len(tail)
        marker = f"\n[... {dropped} bytes truncated]\n".encode() if dropped else b""
        return bytes(self.head + marker + tail).decode("utf-8", "replace")


def _pump(proc: subprocess.Popen, stdin: bytes, limits: Limits, start: float,
          cancel: threading.Event | None, uid: int | None) -> tuple[_Capture, _Capture, str | None]:
    """Feed stdin and read both pipes incrementally until the run ends; never buffers more than the limit.

    Returns the captures and why the run was stopped from outside ("timeout", "cancelled") or None.
    """
    sel = selectors.DefaultSelector()
    caps = {proc.stdout: _Capture(limits.max_output_bytes), proc.stderr: _Capture(limits.max_output_bytes)}
    for pipe in caps:
        sel.register(pipe, selectors.EVENT_READ)
    if stdin:
        os.set_blocking(proc.stdin.fileno(), False)
        sel.register(proc.stdin, selectors.EVENT_WRITE)
    try:
        pidfd = os.pidfd_open(proc.pid)
        sel.register(pidfd, selectors.EVENT_READ)
    except (AttributeError, OSError):
        pidfd = None  # fall back to polling for the exit
    deadline, ended, killed_at, sent = start + limits.wall_seconds, None, None, 0
    try:
        while True:
            now = time.monotonic()
            if killed_at is None:
                if now >= deadline:
                    ended = "timeout"
                elif cancel is not None and cancel.is_set():
                    ended = "cancelled"
                if ended or _exited(proc.pid):
                    # The launcher is still an unreaped zombie here, so its group id cannot be reused.
                    _kill(proc, uid)
                    killed_at = now
            streams = [k for k in sel.get_map().values() if k.fileobj in caps]
            if killed_at is not None and (not streams or now - killed_at > 1.0):
                break  # drained, or something we could not kill still holds a pipe open
            wait = deadline - now if killed_at is None else 0.05
            if pidfd is None or cancel is not None:
                wait = min(wait, 0.1)
            for key, _ in sel.select(max(wait, 0)):
                if key.fileobj == pidfd:
                    sel.unregister(pidfd)
                elif key.fileobj is proc.stdin:
                    try:
                        sent += os.write(proc.stdin.fileno(), stdin[sent:sent + _CHUNK])
                    except BlockingIOError:
                        continue
                    except BrokenPipeError:
                        sent = len(stdin)
                    if sent >= len(stdin):
                        sel.unregister(proc.stdin)
                        proc.stdin.close()
                else:
                    data = os.read(key.fileobj.fileno(), _CHUNK)
                    if data:
                        caps[key.fileobj].feed(data)
                    else:
                        sel.unregister(key.fileobj)
    finally:
        sel.close()
        if pidfd is not None:
            os.close(pidfd)
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    return caps[proc.stdout], caps[proc.stderr], ended


def _exited(pid: int) -> bool:
    # WNOWAIT leaves the zombie in place: see the comment at the _kill call.
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _kill(proc: subprocess.Popen, uid: int | None) -> None:
    # The code's processes go first, while the launcher lives to reap them (it is their subreaper
    # or their namespace's parent); a uid or the launcher's tree also finds those that left the group.
    _sweep(uid=uid) if uid is not None else _sweep(tree=proc.pid)
    if proc.returncode is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _sweep(*, uid: int | None = None, tree: int | None = None) -> None:
    # RLIMIT_NPROC caps how many can exist, so a few rounds outpace any fork loop.
    for _ in range(50):
        pids = _processes(uid=uid) if uid is not None else _descendants(tree)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.005)


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            for task in os.listdir(f"/proc/{parent}/task"):
                with open(f"/proc/{parent}/task/{task}/children") as fh:
                    todo += map(int, fh.read().split())
        except OSError:
            continue
        if parent != pid and _processes(pids=[parent]):  # zombies need no killing
            found.append(parent)
    return found


def _processes(*, uid: int | None = None, pids: list[int] | None = None, zombies: bool = False) -> list[int]:
    """Processes (live ones, unless ``zombies``) with the given real uid, or among ``pids``, from /proc."""
    found = []
    for entry in map(str, pids) if pids is not None else filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/status", encoding="utf-8", errors="replace") as fh:
                fields = dict(line.split(":", 1) for line in fh if ":" in line)
        except OSError:
            continue
        if not zombies and fields.get("State", "").strip().startswith(("Z", "X")):
            continue
        if pids is not None or int(fields.get("Uid", "-1").split()[0]) == uid:
            found.append(int(entry))
    return found


def _force_remove(func, path, _exc_info) -> None:
    # Without root, the code may have left a directory without write or search permission.
    try:
        os.chmod(os.path.dirname(path), 0o700)
        os.chmod(path, 0o700)
        func(path)
    except OSError:
        pass


_SIGNAL_REASONS = {signal.SIGXCPU: "CPU limit of {l.cpu_seconds} s exceeded",
                   signal.SIGXFSZ: "file size limit of {l.max_file_mb} MB exceeded",
                   signal.SIGKILL: "killed by SIGKILL (CPU hard limit, or the kernel ran out of memory)"}
_TRACEBACK_REASONS = [("MemoryError", "memory limit of {l.memory_mb} MB exceeded (MemoryError)"),
                      ("[Errno 27]", "file size limit of {l.max_file_mb} MB exceeded"),
                      ("BlockingIOError: [Errno 11]", "process limit of {l.max_processes} reached"),
                      ("can't start new thread", "process limit of {l.max_processes} reached")]


def _classify(rc: int, out: _Capture, err: _Capture, ended: str | None, limits: Limits,
              duration: float) -> SandboxResult:
    stdout, stderr = out.text(), err.text()
    result = functools.partial(SandboxResult, returncode=rc, stdout=stdout, stderr=stderr, duration_s=duration)
    if ended == "timeout":
        return result(status="timeout", reason=f"wall-clock limit of {limits.wall_seconds} s exceeded")
    if ended == "cancelled":
        return result(status="error", reason="cancelled by the caller")
    if rc == 0:
        return result(status="passed")
    if rc == 125 and stderr.startswith("archon-sandbox: "):
        return result(status="error", reason=stderr.splitlines()[0][len("archon-sandbox: "):])
    if rc < 0:
        name = signal.Signals(-rc).name if -rc in signal.valid_signals() else str(-rc)
        why = _SIGNAL_REASONS.get(-rc)
        return result(status="error" if why else "failed", reason=(why or f"killed by {name}").format(l=limits))
    lines = stderr.strip().splitlines()
    last = lines[-1][:300] if lines else f"exit code {rc}"
    for needle, why in _TRACEBACK_REASONS:
        if needle in last:
            return result(status="error", reason=why.format(l=limits))
    return result(status="failed", reason=last)
