"""The stdin/stdout harness: ``main.py`` of the sandbox run that tests one program on several
stdin/stdout tests (operators/stdio_tests.py). It is not imported: stdio_tests.py reads this file's
text once and runs it in the sandbox, with the job in ``job.json`` and the result channel on fd 3.

One sandbox run per program, one fresh interpreter per test, so no state of one test (globals,
caches, a half-read stdin) reaches another's result; each test also gets an empty working directory
of its own, removed after it. (A program that deliberately writes elsewhere, /tmp, could carry
state to its next test; it still never sees an expected output, so it cannot pass by it.) This process, the judge, holds the expected outputs: it deletes the job file before any
test starts, is not dumpable (no ptrace, no /proc/PID/{mem,fd} for the program's processes, which run
as the same uid), and alone has fd 3. The program's processes get the test's input, never an
expected output; what they print is compared here.
"""
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
sys.path[:] = [p for p in sys.path if p and os.path.realpath(p) != os.path.realpath(os.getcwd())]
ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 0
REPORT = os.fdopen(3, "w", encoding="utf-8")
with open("job.json", encoding="utf-8") as fh:
    JOB = json.load(fh)
os.unlink("job.json")
HOME = os.getcwd()
MAX_OUT = int(JOB["max_output"])


def canon(text):
    """Lines without trailing whitespace, and no trailing blank lines."""
    return [line.rstrip() for line in text.rstrip().split("\n")] if text.strip() else []


# The program runs as __main__ of a fresh `python -S` interpreter; without the site module there is
# no exit() or quit(), which contest solutions call, so they are given sys.exit's behaviour.
BOOT = ("import builtins, sys\nbuiltins.exit = builtins.quit = sys.exit\np = sys.argv[1]\nsys.argv = sys.argv[1:]\n"
        "exec(compile(open(p, encoding='utf-8').read(), p, 'exec'), {'__name__': '__main__', '__file__': p, '__builtins__': builtins})\n")


def run_one(path, stdin, seconds):
    """(status, stdout, why) of the program on ``stdin``; status is ok | timeout | error. Its output
    goes to files (bounded by the sandbox's file size limit), never into this process's memory."""
    work = tempfile.mkdtemp(prefix="t", dir=HOME)
    out_path, err_path = os.path.join(work, ".stdout"), os.path.join(work, ".stderr")
    try:
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            proc = subprocess.Popen([sys.executable, "-S", "-B", "-c", BOOT, path], stdin=subprocess.PIPE, stdout=out, stderr=err,
                                    cwd=work, close_fds=True, start_new_session=True)
            try:
                proc.communicate(stdin.encode("utf-8"), timeout=seconds)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return "timeout", "", f"timed out after {seconds:g} s"
            except BrokenPipeError:  # the program exited without reading all of its input
                proc.wait()
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # what the program left running in the background
            except ProcessLookupError:
                pass
        with open(out_path, "rb") as fh:
            data = fh.read(MAX_OUT + 1)
        if len(data) > MAX_OUT:
            return "error", "", f"printed more than {MAX_OUT} bytes"
        text = data.decode("utf-8", errors="replace")
        if proc.returncode != 0:
            with open(err_path, "rb") as fh:
                fh.seek(max(0, os.path.getsize(err_path) - 2000))
                tail = fh.read().decode("utf-8", errors="replace").strip().splitlines()
            return "error", text, f"exit code {proc.returncode}" + (f": {tail[-1][:200]}" if tail else "")
        return "ok", text, None
    finally:
        shutil.rmtree(work, ignore_errors=True)


path = os.path.join(HOME, "solution.py")
with open(path, "w", encoding="utf-8") as fh:
    fh.write(JOB["program"])
os.chmod(path, 0o444)
results: list = []
out = {"passed": 0, "total": len(JOB["tests"]), "results": results, "error": None}
stopped = None
for t in JOB["tests"]:
    if stopped:  # after a timeout the rest are not run: a looping program would take them all
        results.append([False, stopped])
        continue
    stdin = t["input"] if t["input"].endswith("\n") or not t["input"] else t["input"] + "\n"
    start = time.monotonic()
    status, got, why = run_one(path, stdin, float(JOB["per_test"]))
    ok = status == "ok" and canon(got) == canon(t["output"])
    if status == "ok" and not ok:
        why = "wrong answer"
    if status == "timeout":
        stopped = "not run: an earlier test timed out"
    elif not ok and JOB["stop_on_failure"]:
        stopped = "not run: an earlier test failed"
    results.append([ok, why, round(time.monotonic() - start, 3)])
out["passed"] = sum(1 for r in results if r[0])
REPORT.write(json.dumps(out))
REPORT.close()
