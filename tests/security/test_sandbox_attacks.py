"""Attacks on the sandbox, each judged by looking at the host afterwards (processes, IPC objects, files,
memory, disk, listeners), never by the sandbox's own report.

Where the kernel refuses a protection an attack needs (no root, no cgroup, no namespaces), the test
is skipped with the name of the missing protection (see ``host.require``).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from archon import sandbox
from archon.sandbox import Limits, arun_python, run_python
from tests.security.host import (MemoryWatch, disk_free_mb, meminfo, no_sandbox_processes, require,
                                 sandbox_processes, sysv_objects, world_writable_dirs)

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox is Linux-only")


def test_infinite_loop():
    res = run_python("while True: pass", limits=Limits(wall_seconds=1))
    assert res.status == "timeout" and res.duration_s < 2.5
    assert no_sandbox_processes()


def test_fork_bomb():
    require("uid")
    res = run_python("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
                     limits=Limits(wall_seconds=3, max_processes=32))
    assert res.status in ("timeout", "error", "failed") and res.duration_s < 5
    assert no_sandbox_processes()


def test_thread_bomb():
    code = textwrap.dedent("""
        import threading, time
        n = 0
        while True:
            try:
                threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
                n += 1
            except RuntimeError:
                print("threads", n, flush=True)
                break
        time.sleep(60)
    """)
    res = run_python(code, limits=Limits(wall_seconds=2, max_processes=16))
    assert res.status == "timeout"
    assert int(res.stdout.split()[1]) <= 16
    assert no_sandbox_processes()


def test_ten_gigabytes_in_one_process():
    with MemoryWatch() as watch:
        res = run_python("b = bytearray(10 * 2**30)\nb[::4096] = b'x' * len(b[::4096])", limits=Limits(memory_mb=512))
    assert res.status == "error" and "memory limit" in res.reason
    assert watch.drop_mb < 600, f"host available memory fell by {watch.drop_mb} MB"


def test_twenty_processes_of_500_mb():
    require("cgroup")
    code = textwrap.dedent("""
        import os, time
        kids = []
        for _ in range(20):
            pid = os.fork()
            if pid == 0:
                block = bytearray(500 * 2**20)
                block[::4096] = b'x' * len(block[::4096])  # touch every page: really resident
                time.sleep(5)
                os._exit(0)
            kids.append(pid)
        for pid in kids:
            os.waitpid(pid, 0)
    """)
    with MemoryWatch() as watch:
        res = run_python(code, limits=Limits(wall_seconds=15, memory_mb=600, total_memory_mb=1024, max_processes=32))
    assert res.status == "error" and "memory limit of 1024 MB for the run" in res.reason, (res, watch.drop_mb)
    # 20 x 500 MB is 10 GB; the run may hold at most its 1 GB, plus what the host spends around it
    # (the interpreters' pages, page tables, page cache): measured on this machine, the drop ranges
    # from 950 to 1,370 MB from one run to the next, with this code and the previous session's alike.
    # Twice the limit still tells a capped run from the 10 GB one.
    assert watch.drop_mb < 2 * 1024, f"host available memory fell by {watch.drop_mb} MB"
    assert no_sandbox_processes()


def test_sysv_and_posix_shared_memory_do_not_outlive_the_run():
    require("ipcns", "new_root")
    code = textwrap.dedent("""
        import ctypes, mmap, os
        libc = ctypes.CDLL(None, use_errno=True)
        libc.shmat.restype = ctypes.c_void_p
        made = 0
        for key in range(0x4100, 0x4110):
            shmid = libc.shmget(key, 64 << 20, 0o1000 | 0o666)   # IPC_CREAT
            if shmid < 0:
                break
            addr = libc.shmat(shmid, None, 0)
            ctypes.memset(addr, 1, 64 << 20)                     # resident, not just reserved
            made += 1
        fd = os.open("/dev/shm/archon-attack", os.O_CREAT | os.O_RDWR, 0o666)   # POSIX shared memory
        os.ftruncate(fd, 8 << 20)
        print("segments", made, "posix", os.path.exists("/dev/shm/archon-attack"))
    """)
    before_ipc, before_shm = sysv_objects(), sorted(os.listdir("/dev/shm"))
    before_shmem = meminfo("Shmem")
    res = run_python(code, limits=Limits(total_memory_mb=2048, memory_mb=1500, disk_mb=16))
    assert res.status == "passed" and "posix True" in res.stdout, res
    assert int(res.stdout.split()[1]) >= 1
    assert sysv_objects() == before_ipc
    assert sorted(os.listdir("/dev/shm")) == before_shm
    # The kernel frees a dead IPC namespace's segments from a work queue: a moment after the run.
    deadline = time.monotonic() + 5
    while meminfo("Shmem") - before_shmem >= 64 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert meminfo("Shmem") - before_shmem < 64, "the run's shared memory is still allocated on the host"


async def test_concurrent_runs_cannot_see_each_others_ipc_files_or_memory():
    require("ipcns", "pidns", "new_root")
    secret = uuid.uuid4().hex
    owner = textwrap.dedent(f"""
        import ctypes, os, time
        libc = ctypes.CDLL(None, use_errno=True)
        libc.shmat.restype = ctypes.c_void_p
        shmid = libc.shmget(0x5151, 4096, 0o1000 | 0o666)
        ctypes.memmove(libc.shmat(shmid, None, 0), b"{secret}", 32)
        open("secret.txt", "w").write("{secret}")
        open("/tmp/secret.txt", "w").write("{secret}")
        kept = "{secret}" * 1000          # in this process's memory
        print(os.getcwd(), flush=True)
        time.sleep(3)
    """)
    thief = textwrap.dedent(f"""
        import ctypes, glob, os, time
        time.sleep(1)
        libc = ctypes.CDLL(None, use_errno=True)
        found = []
        if libc.shmget(0x5151, 0, 0) >= 0:
            found.append("sysv segment")
        paths = (glob.glob("/tmp/**", recursive=True) + glob.glob("/tmp/archon-sandbox/run-*/secret.txt")
                 + glob.glob("/proc/*/root/tmp/secret.txt") + glob.glob("/proc/*/cwd/secret.txt"))
        for path in paths:
            if path.startswith(os.getcwd() + "/"):
                continue  # its own main.py holds the secret too
            try:
                if "{secret}" in open(path, errors="replace").read():
                    found.append(path)
            except OSError:
                pass
        for pid in filter(str.isdigit, os.listdir("/proc")):
            for name in ("mem", "environ", "cmdline"):
                try:
                    with open(f"/proc/{{pid}}/{{name}}", "rb") as fh:
                        if b"{secret}" in fh.read(1 << 20):
                            found.append(f"/proc/{{pid}}/{{name}}")
                except OSError:
                    pass
        print("found", found)
    """)
    first, second = await asyncio.gather(arun_python(owner, limits=Limits(wall_seconds=10)),
                                          arun_python(thief, limits=Limits(wall_seconds=10)))
    assert first.status == "passed" and second.status == "passed", (first, second)
    assert second.stdout.strip() == "found []", second.stdout
    owner_dir = first.stdout.strip()
    assert not Path(owner_dir).exists()  # and nothing of it stays on the host


def test_environment_secrets_stay_out(monkeypatch):
    monkeypatch.setenv("ARCHON_ATTACK_API_KEY", "sk-attack-secret")
    code = textwrap.dedent(f"""
        import glob, os
        print(sorted(os.environ))
        for path in ["/proc/{os.getpid()}/environ", f"/proc/{{os.getppid()}}/environ", *glob.glob("/proc/*/environ")]:
            try:
                print(path, open(path, "rb").read())
            except OSError as exc:
                print(path, type(exc).__name__)
    """)
    res = run_python(code)
    assert res.status == "passed", res
    assert "sk-attack-secret" not in res.stdout and "ARCHON_ATTACK_API_KEY" not in res.stdout
    assert "PYTHONHASHSEED" in res.stdout.splitlines()[0]  # the clean environment the code does get
    if os.geteuid() == 0:
        # The caller's environment is out of reach: another uid, and another PID namespace.
        assert f"/proc/{os.getpid()}/environ b" not in res.stdout


def test_world_writable_host_paths_stay_untouched(tmp_path):
    require("new_root")
    planted = [Path("/var/tmp") / f"archon-attack-{uuid.uuid4().hex}"]
    if Path("/run").is_dir():
        planted.append(Path("/run") / f"archon-attack-{uuid.uuid4().hex}")
    for path in planted:
        path.mkdir()
        path.chmod(0o777)
    try:
        targets = sorted(set(world_writable_dirs()) | {str(p) for p in planted} | {"/run/lock", "/var/lock", "/dev/shm"})
        name = f"archon-attack-{uuid.uuid4().hex}"
        code = textwrap.dedent(f"""
            import os
            wrote = []
            for d in {targets!r}:
                try:
                    with open(os.path.join(d, {name!r}), "w") as fh:
                        fh.write("x")
                    wrote.append(d)
                except OSError:
                    pass
            print("wrote inside the sandbox:", wrote)
        """)
        res = run_python(code)
        assert res.status == "passed", res
        left = [d for d in targets if os.path.exists(os.path.join(d, name))]
        assert left == [], f"files written on the host: {left}"
    finally:
        for path in planted:
            for child in path.iterdir():
                child.unlink()
            path.rmdir()


def test_no_tcp_udp_or_ipv6_to_the_host():
    require("netns")
    tcp = socket.create_server(("127.0.0.1", 0))
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    try:
        tcp6 = socket.create_server(("::1", 0), family=socket.AF_INET6)
    except OSError:
        tcp6 = None
    ports = {"tcp": tcp.getsockname()[1], "udp": udp.getsockname()[1], "tcp6": tcp6.getsockname()[1] if tcp6 else None}
    code = textwrap.dedent(f"""
        import socket
        ports = {ports!r}
        def attempt(what, fn):
            try:
                fn()
                print(what, "sent")
            except OSError as exc:
                print(what, "blocked", exc.errno)
        attempt("tcp", lambda: socket.create_connection(("127.0.0.1", ports["tcp"]), timeout=1))
        def udp():
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.sendto(b"hello", ("127.0.0.1", ports["udp"]))
        attempt("udp", udp)
        if ports["tcp6"]:
            attempt("tcp6", lambda: socket.create_connection(("::1", ports["tcp6"]), timeout=1))
        attempt("outside", lambda: socket.create_connection(("192.0.2.1", 80), timeout=1))
    """)
    try:
        res = run_python(code)
        assert res.status == "passed", res
        for listener in filter(None, (tcp, udp, tcp6)):
            listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            tcp.accept()
        with pytest.raises(BlockingIOError):
            udp.recvfrom(100)
        if tcp6:
            with pytest.raises(BlockingIOError):
                tcp6.accept()
    finally:
        for listener in filter(None, (tcp, udp, tcp6)):
            listener.close()


def test_host_unix_sockets_are_out_of_reach(tmp_path):
    require("new_root")
    paths = [tmp_path / "attack.sock", Path("/tmp") / f"archon-attack-{uuid.uuid4().hex}.sock"]
    if Path("/run").is_dir():
        paths.append(Path("/run") / f"archon-attack-{uuid.uuid4().hex}.sock")
    listeners = []
    for path in paths:
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(path))
        os.chmod(path, 0o777)
        s.listen()
        s.setblocking(False)
        listeners.append(s)
    os.chmod(tmp_path, 0o755)
    targets = [str(p) for p in paths] + [p for p in ("/var/run/postgresql/.s.PGSQL.5432", "/run/postgresql/.s.PGSQL.5432")
                                          if os.path.exists(p)]
    code = textwrap.dedent(f"""
        import socket
        for path in {targets!r}:
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect(path)
                s.sendall(b"hello")
                print("connected", path)
            except OSError as exc:
                print("refused", path, exc.errno)
    """)
    try:
        res = run_python(code)
        assert res.status == "passed", res
        for s in listeners:
            with pytest.raises(BlockingIOError):
                s.accept()
    finally:
        for s, path in zip(listeners, paths):
            s.close()
            path.unlink(missing_ok=True)


def test_a_hundred_megabytes_of_output():
    res = run_python("import sys\nfor _ in range(100):\n    sys.stdout.write('x' * 2**20)\nprint('END')",
                     limits=Limits(max_output_bytes=64_000))
    assert res.status == "passed" and len(res.stdout) < 70_000 and res.stdout.endswith("END\n")


def test_a_hundred_files_of_16_mb():
    require("new_root")
    code = textwrap.dedent("""
        import os
        written = 0
        for i in range(100):
            try:
                with open(f"f{i}", "wb") as fh:
                    fh.write(b"x" * (16 << 20))
                written += 16
            except OSError as exc:
                print("stopped", exc.errno, "after", written, "MB", flush=True)
                break
    """)
    before = {p: disk_free_mb(p) for p in ("/", sandbox._temp_root().as_posix())}
    res = run_python(code, limits=Limits(disk_mb=64, max_file_mb=16, total_memory_mb=512))
    assert "stopped 28" in res.stdout or res.status == "error", res  # ENOSPC
    assert int(res.stdout.split()[-2]) <= 64
    for path, free in before.items():
        assert free - disk_free_mb(path) < 50, f"{path} lost {free - disk_free_mb(path)} MB"
    assert os.listdir(sandbox._temp_root()) == [] or all(not n.startswith("run-") for n in os.listdir(sandbox._temp_root()))


async def test_no_daemon_survives_fifty_runs():
    require("uid")
    code = textwrap.dedent("""
        import os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                for fd in (0, 1, 2):
                    os.close(fd)
                time.sleep(300)
            os._exit(0)
        print("spawned")
    """)
    results = await asyncio.gather(*(arun_python(code) for _ in range(50)))
    assert all(r.status == "passed" for r in results), [r for r in results if r.status != "passed"][:1]
    assert no_sandbox_processes(), f"left running: {sandbox_processes()}"


def test_uid_slots_do_not_collide_across_callers(tmp_path):
    require("uid")
    script = textwrap.dedent("""
        import json, sys
        from archon.sandbox import Limits, run_python
        res = run_python("import os, time\\nprint(os.getuid(), flush=True)\\ntime.sleep(2)\\nprint('done')",
                         limits=Limits(wall_seconds=10))
        print(json.dumps({"status": res.status, "stdout": res.stdout, "reason": res.reason}))
    """)
    procs = []
    for name in ("a", "b"):
        tmp = tmp_path / name
        tmp.mkdir()
        env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(ROOT)}
        procs.append(subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True))
    outs = [json.loads(p.communicate(timeout=60)[0].strip().splitlines()[-1]) for p in procs]
    assert [o["status"] for o in outs] == ["passed", "passed"], outs
    uids = [o["stdout"].split()[0] for o in outs]
    assert uids[0] != uids[1], outs
    assert no_sandbox_processes()


def test_protections_name_what_is_missing():
    info = sandbox.protections()
    assert set(info) == {"dedicated_uid", "namespaces", "new_root", "cgroup", "missing"}
    if os.geteuid() == 0 and info["missing"]:
        pytest.skip("this kernel refuses: " + "; ".join(info["missing"]))
    if os.geteuid() == 0:
        assert info["dedicated_uid"] and info["new_root"] and info["cgroup"] in (1, 2)
        assert info["namespaces"] == ["ipc", "mount", "net", "pid"]


def test_attacks_through_the_code_scorer_and_unit_test(tmp_path):
    """The same attacks as a candidate's program, run by the real scoring and selection paths."""
    require("new_root", "ipcns")
    from archon import Pipeline, Query, run
    from archon.evals.datasets import Item
    from archon.evals.scorers import ScoreContext, score_code
    from backends.doubles import FunctionBackend

    name = f"archon-attack-{uuid.uuid4().hex}"
    sock_path = Path("/tmp") / f"{name}.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(sock_path))
    os.chmod(sock_path, 0o777)
    listener.listen()
    listener.setblocking(False)
    targets = sorted(set(world_writable_dirs()) | {"/run/lock", "/dev/shm"})
    program = textwrap.dedent(f"""
        import ctypes, os, socket, time
        for d in {targets!r}:
            try:
                open(os.path.join(d, {name!r}), "w").write("x")
            except OSError:
                pass
        try:
            socket.socket(socket.AF_UNIX).connect({str(sock_path)!r})
        except OSError:
            pass
        ctypes.CDLL(None).shmget(0x6161, 1 << 20, 0o1000 | 0o666)
        if os.fork() == 0:
            os.setsid()
            time.sleep(300)
        def add(a, b):
            return a + b
    """)
    before_ipc = sysv_objects()
    try:
        item = Item("attack/add", "def add(a, b):\n", None, {"entry_point": "add", "test_list": ["assert add(1, 2) == 3"]})
        assert asyncio.run(score_code(program, item, ScoreContext())).value == 1.0  # honest about add, still contained
        p = Pipeline("ut")
        p.add("draft", "generate", model="fake/m", samples=2, mode="completion")
        p.add("best", "unit_test", inputs="draft", tests="item")
        query = Query("def add(a, b):\n", data={"entry_point": "add", "test_list": ["assert add(1, 2) == 3"]})
        res = run(p, query, backends={"fake": FunctionBackend(lambda r, k: program)}, db=False)
        assert [c.score for c in res.candidates["best"]] == [1.0, 1.0]
        assert [d for d in targets if os.path.exists(os.path.join(d, name))] == []
        with pytest.raises(BlockingIOError):
            listener.accept()
        assert sysv_objects() == before_ipc
        assert no_sandbox_processes()
    finally:
        listener.close()
        sock_path.unlink(missing_ok=True)
