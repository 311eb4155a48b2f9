"""Is the process that started a run still alive? The store's answer for runs left 'running'.

A run records its host and pid. On the same host the process table answers; a pid reused by a later
process (a restarted container is pid 1 again, under the same host name) is told apart by its start
time, read from /proc on Linux. Other hosts' runs are judged by their heartbeat (see Store).

"The same host" means the same process table: containers sharing the machine's host name (host
networking) each have their own pids, so on Linux the host id also names the PID namespace.
"""

from __future__ import annotations

__all__ = ["host_id", "interrupted_because", "process_gone"]

import os
import socket
from datetime import datetime, timedelta, timezone

# Process start times come from the boot time and a tick count: allow for the clock's rounding and drift.
_SLACK = timedelta(seconds=5)


def host_id() -> str:
    """Where a pid means something: the host name, and on Linux the PID namespace ("web1 pid:[4026531836]")."""
    try:
        return f"{socket.gethostname()} {os.readlink('/proc/self/ns/pid')}"
    except OSError:
        return socket.gethostname()


def process_gone(pid: int, since: datetime) -> bool:
    """True when no process ``pid`` exists here that was already running at ``since`` (aware UTC).

    False when unsure: a live run is never marked interrupted on a guess.
    """
    if os.name != "posix" or pid <= 0:
        return False  # on Windows os.kill(pid, 0) would end the process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        pass  # PermissionError: it exists, under another user
    started = _start_time(pid)
    return started is not None and started > since + _SLACK


def interrupted_because(host: str | None, pid: int | None, started_at: datetime, heartbeat_at: datetime | None,
                        stale_before: datetime) -> str | None:
    """Why a run still marked 'running' must have been interrupted, or None while it may be alive.

    On this host the process table decides; a run from another host, or from before runs recorded
    their host, is given up when its last sign of life is older than ``stale_before``.
    """
    if host == host_id() and pid:
        return f"interrupted: its process (pid {pid} on {host}) ended before the run finished" \
            if process_gone(pid, started_at) else None
    last = heartbeat_at or started_at
    if last >= stale_before:
        return None
    where = f"pid {pid} on {host}" if host else "a process that recorded no host"
    return f"interrupted: no sign of life from its process ({where}) since {last.isoformat(timespec='seconds')}"


def _start_time(pid: int) -> datetime | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            # The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
            ticks = int(f.read().rsplit(b")", 1)[1].split()[19])
        with open("/proc/stat", "rb") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith(b"btime "))
        return datetime.fromtimestamp(boot + ticks / os.sysconf("SC_CLK_TCK"), timezone.utc)
    except (OSError, ValueError, IndexError, StopIteration):
        return None
