"""The one place that runs model-generated code (unit-test operators, code benchmarks).

Each run gets a clean environment and limits on wall time, CPU, memory, processes, file size, disk
and output. As root (the usual case in a container or CI box) the code also runs:

- as a dedicated uid/gid (64000 + a slot number, one per concurrent run on the machine, never a real
  account), so it cannot read other processes' ``/proc/PID/environ``, signal them or ptrace them;
- in new network, IPC, mount and PID namespaces: no network at all (not even 127.0.0.1), its own
  SysV IPC and POSIX message queues (destroyed with the run), a /proc that shows only its own
  processes, and a new root: a tmpfs of ``disk_mb`` holding the working directory, /tmp, /var/tmp
  and /dev/shm (the only places it can write; gone when the run ends), with /usr, /bin, /lib*, /etc
  and the Python installation bound read-only and a minimal /dev. Nothing else of the host exists
  there: no /run, /var, /home, /root, /srv, /opt, /mnt, /sys, so no host Unix socket either;
- in its own cgroup (v2 where delegated, else v1): ``total_memory_mb`` for all its processes and
  their tmpfs files, ``max_processes`` tasks; every process in it is killed when the run ends.

What falls back when the kernel refuses something (unprivileged containers, seccomp), and what then
holds (``protections()`` reports what this machine gives):
- no root: a user namespace is tried for the same namespaces (the code keeps the caller's uid, so the
  caller's own files outside the new root are still out of sight, but no cgroup: memory is limited
  per process only, ``memory_mb`` x ``max_processes`` in all);
- no mount namespace: no new root; the code sees the host's files with its uid's rights, and may
  write where that uid may (world-writable directories such as /tmp included);
- no network namespace: a prelude replaces ``socket.socket`` (stops ordinary code, not ctypes);
- no PID namespace: the launcher adopts escaped descendants (child subreaper) and kills them when the
  code exits; on a timeout the caller kills the run's cgroup, the sandbox uid's processes (or,
  without root, the launcher's process tree) and the process group.

The code runs as ``python -S -B main.py``: the standard library only, no site-packages. With
``channel=True`` it gets one more file descriptor, 3, whose contents come back as
``SandboxResult.channel``: a test harness reports on it, and closes it before running candidates.
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
from typing import Any, Literal

from archon._sandbox_cgroups import RunCgroup, kill_all
from archon._sandbox_cgroups import support as _cgroup_support
from archon.exceptions import ConfigError

__all__ = ["Limits", "SandboxResult", "arun_python", "protections", "run_python", "set_max_parallel"]

ENTRY = "main.py"
_UID_BASE, _UID_SLOTS = 64_000, 1024
# Which namespaces the launcher may ask for; tests narrow this to exercise the fallbacks.
_NAMESPACES = frozenset({"net", "mount", "pid", "ipc"})
_NS_BITS = {"net": 1, "mount": 2, "pid": 4, "ipc": 8}
# One lock file for the whole machine, whatever TMPDIR a caller has: two callers with their own
# lock files would hand out the same uid, and one would kill the other's run.
_SLOT_LOCKS = ("/run/archon-sandbox.slots", "/var/lock/archon-sandbox.slots")
_CHANNEL_MAX = 4 << 20
_LAUNCHER_TASKS = 2  # the launcher and the PID namespace's init share the run's cgroup with the code
_CHUNK = 65_536


# Runs as the sandbox's first process, with -I so nothing in the working directory is imported
# while it is still root (see the file's docstring).
_LAUNCHER = (Path(__file__).with_name("_sandbox_launcher.py")).read_text(encoding="utf-8")


@dataclass(frozen=True)
class Limits:
    wall_seconds: float = 10.0      # wall clock; on expiry every process of the run is killed
    cpu_seconds: int = 10           # RLIMIT_CPU (SIGXCPU, then SIGKILL one second later)
    memory_mb: int = 512            # RLIMIT_AS, per process
    total_memory_mb: int = 1024     # the run's cgroup: all its processes and the files in its tmpfs
    max_processes: int = 64         # processes and threads: the run's cgroup, and RLIMIT_NPROC of its uid
    max_output_bytes: int = 64_000  # kept per stream: the first and the last half, the middle dropped
    max_file_mb: int = 16           # RLIMIT_FSIZE: the largest file it may write
    disk_mb: int = 64               # the tmpfs holding its working directory, /tmp, /var/tmp and /dev/shm

    def __post_init__(self) -> None:
        for name in ("wall_seconds", "cpu_seconds", "memory_mb", "total_memory_mb", "max_processes",
                     "max_file_mb", "disk_mb"):
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
    channel: str | None = None  # what the code wrote on fd 3 (``channel=True``); None if nothing


def run_python(code: str, *, stdin: str = "", limits: Limits = Limits(),
               files: dict[str, str] | None = None, channel: bool = False) -> SandboxResult:
    """Run ``code`` as ``main.py`` in a fresh sandbox and wait for it (blocks the calling thread).

    ``files`` maps relative paths to text put next to ``main.py`` (e.g. a test module). With
    ``channel``, fd 3 is open for writing and what is written there comes back in ``channel``.
    Failures of the code are results, not exceptions; only a malformed call raises ``ConfigError``.
    """
    return _run(code, stdin, limits, _checked_files(files), None, channel)


async def arun_python(code: str, *, stdin: str = "", limits: Limits = Limits(),
                      files: dict[str, str] | None = None, channel: bool = False) -> SandboxResult:
    """``run_python`` on a worker thread; at most ``set_max_parallel(n)`` runs at once per process.

    Cancelling the awaiting task kills the run within about 0.1 s.
    """
    checked = _checked_files(files)
    cancel = threading.Event()
    job = functools.partial(_run, code, stdin, limits, checked, cancel, channel)
    try:
        return await asyncio.get_running_loop().run_in_executor(_executor(), job)
    except asyncio.CancelledError:
        cancel.set()
        raise


_PROBE = """
import json, os
ns = {}
for name in ("net", "ipc", "mnt", "pid"):
    try:
        ns[name] = os.readlink("/proc/self/ns/" + name)
    except OSError:
        ns[name] = None
root = [ln.split(" - ")[1].split()[0] for ln in open("/proc/self/mountinfo") if ln.split()[4] == "/"]
print(json.dumps({"uid": os.getuid(), "ns": ns, "root_fs": root[-1] if root else None}))
"""


@functools.lru_cache(maxsize=1)
def protections() -> dict[str, Any]:
    """What the sandbox gives on this machine, found by a probe run and compared with the host.

    Keys: ``dedicated_uid``, ``namespaces`` (those the code got: net, ipc, mount, pid), ``new_root``,
    ``cgroup`` (2, 1 or None), and ``missing``: one sentence per protection the kernel refused.
    """
    import json

    host: dict[str, str | None] = {}
    for name in ("net", "ipc", "mnt", "pid"):
        try:
            host[name] = os.readlink(f"/proc/self/ns/{name}")
        except OSError:
            host[name] = None
    res = run_python(_PROBE)
    try:
        seen = json.loads(res.stdout)
    except ValueError:
        return {"dedicated_uid": False, "namespaces": [], "new_root": False, "cgroup": None,
                "missing": [f"the sandbox could not run a probe: {res.reason or res.stderr[-300:]}"]}
    got = [{"mnt": "mount"}.get(n, n) for n in host if seen["ns"][n] is not None and seen["ns"][n] != host[n]]
    version, why = _cgroup_support()
    info = {"dedicated_uid": _UID_BASE <= seen["uid"] < _UID_BASE + _UID_SLOTS, "namespaces": sorted(got),
            "new_root": "mount" in got and seen["root_fs"] == "tmpfs", "cgroup": version}
    missing = []
    if not info["dedicated_uid"]:
        missing.append("no dedicated uid (not root): the code runs with the caller's uid")
    for name, what in (("net", "network namespace: a socket prelude blocks ordinary code only"),
                       ("ipc", "IPC namespace: SysV IPC is shared with the host"),
                       ("mount", "mount namespace: no new root; the host's files are visible and writable where the uid may"),
                       ("pid", "PID namespace: host processes are visible (hidepid where possible)")):
        if {"mnt": "mount"}.get(name, name) not in got:
            missing.append(f"no {what}")
    if version is None:
        missing.append(f"no cgroup ({why}): memory is limited per process only (memory_mb x max_processes in all)")
    info["missing"] = missing
    return info


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

    A byte-range lock per uid in one machine-wide file guards other processes; POSIX locks belong to the whole
    process, so a set guards this process's threads.
    """

    _lock = threading.Lock()
    _taken: set[int] = set()
    _fd: int | None = None

    @classmethod
    def acquire(cls) -> int:
        with cls._lock:
            if cls._fd is None:
                cls._fd = _slot_lock_file()
            for slot in range(_UID_SLOTS):
                if slot in cls._taken:
                    continue
                if _is_account(_UID_BASE + slot):
                    continue  # never borrow a real account's uid
                try:
                    fcntl.lockf(cls._fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, slot)
                except OSError:
                    continue
                if _processes(uid=_UID_BASE + slot, zombies=True):
                    # Someone else's run (a caller that does not share the lock file, e.g. another
                    # Archon version), or unreaped zombies that count against RLIMIT_NPROC: never
                    # kill them, use another uid.
                    fcntl.lockf(cls._fd, fcntl.LOCK_UN, 1, slot)
                    continue
                cls._taken.add(slot)
                return _UID_BASE + slot
        raise RuntimeError(f"all {_UID_SLOTS} sandbox uids are in use")

    @classmethod
    def release(cls, uid: int) -> None:
        with cls._lock:
            assert cls._fd is not None  # set by the acquire() that gave out this uid
            fcntl.lockf(cls._fd, fcntl.LOCK_UN, 1, uid - _UID_BASE)
            cls._taken.discard(uid - _UID_BASE)


def _slot_lock_file() -> int:
    for path in _SLOT_LOCKS:
        if os.path.isdir(os.path.dirname(path)):
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            except OSError:
                continue
            if os.fstat(fd).st_uid == 0:
                return fd
            os.close(fd)
    raise RuntimeError(f"cannot open a lock file for the sandbox uids at {' or '.join(_SLOT_LOCKS)}")


def _is_account(uid: int) -> bool:
    try:
        return bool(pwd.getpwuid(uid))
    except KeyError:
        return False


def _run(code: str, stdin: str, limits: Limits, files: dict[str, str],
         cancel: threading.Event | None, channel: bool = False) -> SandboxResult:
    start = time.monotonic()
    uid = workdir = proc = group = None
    read_end = write_end = None
    try:
        uid = _Slots.acquire() if os.geteuid() == 0 else None
        group = RunCgroup(limits.total_memory_mb << 20, limits.max_processes + _LAUNCHER_TASKS)
        workdir = _prepare(code, files, uid)
        if channel:
            read_end, write_end = os.pipe()
        proc = subprocess.Popen(
            _launcher_argv(workdir, limits, uid, group, -1 if write_end is None else write_end), cwd=workdir,
            env=_child_env(workdir), stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, close_fds=True,
            pass_fds=() if write_end is None else (write_end,))
        if write_end is not None:
            os.close(write_end)  # from here only the sandbox holds it, so its end is the report's end
            write_end = None
        out, err, chan, ended = _pump(proc, stdin.encode(), limits, start, cancel, uid, group, read_end)
        rc = proc.wait()
        return _classify(rc, out, err, chan, ended, limits, time.monotonic() - start, group.oom_killed())
    except (OSError, RuntimeError) as exc:
        return SandboxResult("error", None, "", "", time.monotonic() - start, f"could not start the sandbox: {exc}")
    finally:
        for fd in (read_end, write_end):
            if fd is not None:
                os.close(fd)
        if proc is not None:
            assert group is not None  # made before the process
            _kill(proc, uid, group)
            proc.wait()
        if group is not None:
            group.remove()
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


def _python() -> str:
    # The base interpreter, not a virtualenv's link to it: with -S the code needs only the standard
    # library, so the virtualenv (and the project around it) need not be visible.
    return os.path.realpath(sys.executable)


def _launcher_argv(workdir: str, limits: Limits, uid: int | None, group: RunCgroup, channel: int) -> list[str]:
    if uid is not None:
        nproc = limits.max_processes
    else:  # RLIMIT_NPROC counts all of the caller's own processes
        nproc = len(_processes(uid=os.getuid())) + limits.max_processes
    numbers = [os.getpid(), -1 if uid is None else uid, limits.cpu_seconds, limits.memory_mb << 20,
               nproc, limits.max_file_mb << 20, limits.disk_mb, sum(_NS_BITS[n] for n in _NAMESPACES), channel]
    plan = [f"e:{p}" for p in _exposed()] + [f"c:{p}" for p in group.procs]
    return [sys.executable, "-I", "-S", "-c", _LAUNCHER, ",".join(map(str, numbers)), *plan,
            "--", _python(), "-S", "-B", ENTRY]


@functools.lru_cache(maxsize=1)
def _exposed() -> list[str]:
    """The Python installation's directories, bound read-only into the new root (beside /usr etc.)."""
    exe = _python()
    wanted = {os.path.realpath(p) for p in (sys.base_prefix, os.path.dirname(exe))}
    return sorted(p for p in wanted if not any(p.startswith(q + "/") for q in wanted))


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


class _Channel:
    """The result channel's bytes, whole or not at all: a truncated report must not parse."""

    def __init__(self) -> None:
        self.data, self.overflow = bytearray(), False

    def feed(self, data: bytes) -> None:
        if not self.overflow:
            self.data += data
            if len(self.data) > _CHANNEL_MAX:
                self.overflow, self.data = True, bytearray()

    def text(self) -> str | None:
        return None if self.overflow or not self.data else self.data.decode("utf-8", "replace")


def _pump(proc: subprocess.Popen, stdin: bytes, limits: Limits, start: float, cancel: threading.Event | None,
          uid: int | None, group: RunCgroup, channel: int | None) -> tuple[_Capture, _Capture, _Channel, str | None]:
    """Feed stdin and read the pipes incrementally until the run ends; never buffers more than the limits.

    Returns the captures and why the run was stopped from outside ("timeout", "cancelled") or None.
    """
    assert proc.stdout is not None and proc.stderr is not None  # started with PIPEs
    sel = selectors.DefaultSelector()
    out, err, chan = _Capture(limits.max_output_bytes), _Capture(limits.max_output_bytes), _Channel()
    caps: dict[int, _Capture | _Channel] = {proc.stdout.fileno(): out, proc.stderr.fileno(): err}
    if channel is not None:
        caps[channel] = chan
    for fd in caps:
        sel.register(fd, selectors.EVENT_READ)
    if stdin:
        assert proc.stdin is not None  # started with stdin=PIPE when there is stdin
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
                    _kill(proc, uid, group)
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
                    data = os.read(key.fd, _CHUNK)
                    if data:
                        caps[key.fd].feed(data)
                    else:
                        sel.unregister(key.fd)
    finally:
        sel.close()
        if pidfd is not None:
            os.close(pidfd)
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    return out, err, chan, ended


def _exited(pid: int) -> bool:
    # WNOWAIT leaves the zombie in place: see the comment at the _kill call.
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _kill(proc: subprocess.Popen, uid: int | None, group: RunCgroup) -> None:
    # The code's processes go first, while the launcher lives to reap them (it is their subreaper
    # or their namespace's parent); the cgroup, a uid or the launcher's tree also finds those that
    # left the group.
    group.kill()
    _sweep(uid, proc.pid)
    if proc.returncode is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _sweep(uid: int | None, tree: int) -> None:
    """Kills the processes of ``uid`` when the run has its own uid, else the descendants of ``tree``."""
    kill_all(lambda: _processes(uid=uid) if uid is not None else _descendants(tree), rounds=50)


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


_SIGNAL_REASONS: dict[int, str] = {signal.SIGXCPU: "CPU limit of {l.cpu_seconds} s exceeded",
                                   signal.SIGXFSZ: "file size limit of {l.max_file_mb} MB exceeded",
                                   signal.SIGKILL: "killed by SIGKILL (CPU hard limit, or the kernel ran out of memory)"}
_TRACEBACK_REASONS = [("MemoryError", "memory limit of {l.memory_mb} MB exceeded (MemoryError)"),
                      ("[Errno 27]", "file size limit of {l.max_file_mb} MB exceeded"),
                      ("[Errno 28]", "disk limit of {l.disk_mb} MB exceeded (No space left on device)"),
                      ("BlockingIOError: [Errno 11]", "process limit of {l.max_processes} reached"),
                      ("can't start new thread", "process limit of {l.max_processes} reached")]


def _classify(rc: int, out: _Capture, err: _Capture, chan: _Channel, ended: str | None, limits: Limits,
              duration: float, oom: bool) -> SandboxResult:
    stdout, stderr = out.text(), err.text()
    result = functools.partial(SandboxResult, returncode=rc, stdout=stdout, stderr=stderr, duration_s=duration,
                               channel=chan.text())
    if ended == "cancelled":
        return result(status="error", reason="cancelled by the caller")
    if oom:  # whichever process the kernel chose (and however the run ended), it went over its memory
        return result(status="error", reason=f"memory limit of {limits.total_memory_mb} MB for the run exceeded")
    if ended == "timeout":
        return result(status="timeout", reason=f"wall-clock limit of {limits.wall_seconds} s exceeded")
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
