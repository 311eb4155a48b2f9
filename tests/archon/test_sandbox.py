"""The sandbox contains what model-generated code might do: loop, allocate, fork, write, connect, print."""

from __future__ import annotations

import asyncio
import os
import resource
import socket
import time
import uuid
from pathlib import Path

import pytest

from archon import sandbox
from archon.exceptions import ConfigError
from archon.sandbox import Limits, SandboxResult, arun_python, run_python, set_max_parallel
from tests.security.host import no_sandbox_processes

ROOT = Path(__file__).resolve().parents[2]
IS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not IS_ROOT, reason="a dedicated uid needs root")


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_public_surface():
    assert set(sandbox.__all__) == {"Limits", "SandboxResult", "run_python", "arun_python", "protections", "set_max_parallel"}


def test_statuses_output_stdin_and_files():
    ok = run_python("import sys, helper\nprint(helper.double(sys.stdin.read()))",
                    stdin="ab", files={"helper.py": "def double(s):\n    return s * 2\n"})
    assert (ok.status, ok.returncode, ok.stdout, ok.reason) == ("passed", 0, "abab\n", None)
    bad = run_python("assert 1 + 1 == 3, 'math is broken'")
    assert bad.status == "failed" and bad.returncode == 1
    assert bad.reason == "AssertionError: math is broken" and "Traceback" in bad.stderr
    assert run_python("raise SystemExit(3)").reason == "exit code 3"


def test_files_cannot_hijack_the_launcher():
    # The launcher runs (as root) in the working directory before the code: it must not import from it.
    trap = "raise SystemExit('hijacked')\n"
    res = run_python("print('ok')", files={"ctypes.py": trap, "resource.py": trap, "signal.py": trap})
    assert (res.status, res.stdout) == ("passed", "ok\n"), res


def test_bad_calls_raise_config_error():
    for name in ("/etc/passwd", "../x.py", "main.py"):
        with pytest.raises(ConfigError, match="relative path"):
            run_python("pass", files={name: ""})
    with pytest.raises(ConfigError, match="wall_seconds"):
        Limits(wall_seconds=0)
    with pytest.raises(ConfigError):
        set_max_parallel(0)


def test_fresh_working_directory_removed_afterwards_even_on_timeout():
    code = "import os\nprint(os.getcwd(), os.environ['HOME'], sorted(os.listdir('.')), flush=True)\n"
    first = run_python(code, files={"data/in.txt": "x"})
    cwd, home, listing = first.stdout.split(" ", 2)
    assert cwd == home and listing.strip() == "['data', 'main.py']"
    assert Path(cwd).parent == sandbox._temp_root() and not Path(cwd).exists()
    slow = run_python(code + "while True: pass", limits=Limits(wall_seconds=0.5))
    assert slow.status == "timeout"
    slow_cwd = slow.stdout.split(" ", 1)[0]
    assert slow_cwd != cwd and not Path(slow_cwd).exists()


def test_infinite_loop_times_out_and_cpu_limit_stops_busy_code():
    res = run_python("while True: pass", limits=Limits(wall_seconds=1))
    assert res.status == "timeout" and "wall-clock" in res.reason
    assert res.duration_s < 2.0
    cpu = run_python("while True: pass", limits=Limits(wall_seconds=5, cpu_seconds=1))
    assert (cpu.status, cpu.reason) == ("error", "CPU limit of 1 s exceeded")
    assert cpu.duration_s < 3.0


@pytest.mark.parametrize("code", ["bytearray(10**10)", "x = []\nwhile True:\n    x.append(b'x' * 10**7)"])
def test_memory_is_limited_and_the_host_unharmed(code):
    before = max_rss_mb()
    res = run_python(code, limits=Limits(memory_mb=256))
    assert res.status == "error" and "memory limit of 256 MB" in res.reason, res
    assert max_rss_mb() - before < 50


# Without a PID namespace the launcher reaps and sweeps by uid; both ways must leave nothing behind.
namespace_sets = pytest.mark.parametrize("namespaces", [{"net", "mount", "pid"}, {"net", "mount"}], ids=["pidns", "no-pidns"])


@needs_root
@namespace_sets
def test_fork_bomb_is_contained_and_leaves_no_process(monkeypatch, namespaces):
    monkeypatch.setattr(sandbox, "_NAMESPACES", frozenset(namespaces))
    res = run_python("import os\nwhile True:\n    os.fork()", limits=Limits(wall_seconds=2, max_processes=32))
    assert res.status in ("timeout", "error", "failed")
    assert res.duration_s < 4
    assert no_sandbox_processes()
    # Nothing left counts against the next run's process limit.
    after = run_python("import os\nos.wait() if os.fork() else print('child')", limits=Limits(max_processes=2))
    assert (after.status, after.stdout) == ("passed", "child\n"), after


@needs_root
@namespace_sets
def test_processes_that_leave_the_group_die_with_the_run(monkeypatch, namespaces):
    monkeypatch.setattr(sandbox, "_NAMESPACES", frozenset(namespaces))
    code = """
import os, subprocess, time
subprocess.Popen(['sleep', '300'], start_new_session=True)
if os.fork() == 0:
    os.setsid()
    time.sleep(300)
print('parent done')
"""
    res = run_python(code)
    assert res.status == "passed" and res.stdout == "parent done\n", res
    assert no_sandbox_processes()


@needs_root
def test_writes_outside_the_working_directory_fail(tmp_path):
    canary = Path("/tmp") / f"archon-canary-{uuid.uuid4().hex}"
    canary.write_text("intact")
    canary.chmod(0o644)
    new_in_repo = ROOT / f".sandbox-canary-{uuid.uuid4().hex}"
    code = f"""
import os
print(os.getuid())
for path, mode in [({str(canary)!r}, 'w'), ({str(new_in_repo)!r}, 'w'), ({str(ROOT / 'pyproject.toml')!r}, 'a')]:
    try:
        open(path, mode).write('pwned' if mode == 'w' else '')
        print('wrote', path)
    except OSError as exc:
        print('refused', path, type(exc).__name__)
"""
    try:
        res = run_python(code)
        assert res.status == "passed", res
        assert res.stdout.splitlines()[0] != "0"
        # The project is not even there: the sandbox's root holds only the system, read-only.
        assert f"refused {new_in_repo} FileNotFoundError" in res.stdout
        assert f"refused {ROOT / 'pyproject.toml'} FileNotFoundError" in res.stdout
        # /tmp is a private tmpfs in the sandbox: the write lands there and vanishes with it.
        assert canary.read_text() == "intact"
        assert not new_in_repo.exists()
    finally:
        canary.unlink()
        new_in_repo.unlink(missing_ok=True)


def _network_attempt(monkeypatch, namespaces) -> tuple[SandboxResult, bool]:
    monkeypatch.setattr(sandbox, "_NAMESPACES", frozenset(namespaces))
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        res = run_python(f"""
import socket
try:
    socket.create_connection(('127.0.0.1', {port}), timeout=2)
    print('connected')
except OSError as exc:
    print('blocked', exc)
""")
        listener.setblocking(False)
        try:
            listener.accept()[0].close()
            accepted = True
        except BlockingIOError:
            accepted = False
    return res, accepted


def test_no_network(monkeypatch):
    res, accepted = _network_attempt(monkeypatch, {"net", "mount", "pid"})
    assert res.status == "passed" and res.stdout.startswith("blocked"), res
    assert not accepted


def test_no_network_fallback_without_a_network_namespace(monkeypatch):
    res, accepted = _network_attempt(monkeypatch, {"mount", "pid"})
    assert res.stdout.startswith("blocked") and "disabled in the Archon sandbox" in res.stdout, res
    assert not accepted


def test_file_size_limit():
    res = run_python("open('big', 'wb').write(b'x' * (3 << 20))", limits=Limits(max_file_mb=1))
    assert res.status == "error" and res.reason == "file size limit of 1 MB exceeded", res


def test_huge_output_is_truncated_without_buffering_it():
    before = max_rss_mb()
    res = run_python("import sys\nsys.stdout.write('x' * 100_000_000)\nprint('THE END')",
                     limits=Limits(max_output_bytes=10_000))
    assert res.status == "passed"
    assert len(res.stdout) < 10_100 and "bytes truncated]" in res.stdout
    assert res.stdout.startswith("x" * 5_000) and res.stdout.endswith("THE END\n")
    assert max_rss_mb() - before < 50


async def test_many_runs_leave_no_process_and_no_file():
    run_python("pass")  # creates the temp root and its lock file once
    root = sandbox._temp_root()
    entries = sorted(os.listdir(root))
    results = await asyncio.gather(*(arun_python(f"print({i})") for i in range(200)))
    assert [r.stdout for r in results] == [f"{i}\n" for i in range(200)]
    assert sorted(os.listdir(root)) == entries
    assert no_sandbox_processes()


async def test_parallelism_is_bounded_and_cancellation_kills_the_run():
    set_max_parallel(1)
    try:
        start = time.monotonic()
        await asyncio.gather(*(arun_python("import time; time.sleep(0.3)") for _ in range(3)))
        assert time.monotonic() - start >= 0.9
    finally:
        set_max_parallel(os.cpu_count() or 1)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(arun_python("import time; time.sleep(30)"), timeout=0.5)
    assert no_sandbox_processes(within=2.0)
