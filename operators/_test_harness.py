"""The unit-test harness: ``main.py`` of the sandbox run that tests one program (operators/code_tests.py).

It is not imported: code_tests.py reads this file's text once and runs it in the sandbox, with the
job (program, tests) in ``job.json`` and the result channel on fd 3. Two processes, so that no
candidate can forge its result:

- this one, the judge, reads the job, deletes it, runs the tests' own code, and writes the verdict to
  fd 3, which exists only here. It is not dumpable, so a process of the same uid can neither ptrace
  it nor reach its memory or file descriptors through /proc;
- a child interpreter, started fresh (it never holds the tests or the expected values), runs the
  candidate's program and answers calls on a pipe. Only plain data crosses back (None, bools,
  numbers, strings, bytes, lists, tuples, sets, dicts); anything else stays in the child as a remote
  object that equals only itself. Whatever the candidate does (print a marker, exit early, patch
  builtins, return an object that claims to equal everything), the judge compares values it decoded.

Test kinds: {"kind": "assert", "code"}, {"kind": "check", "code", "entry_point"} (HumanEval),
{"kind": "doctest", "source", "want"}. In the judge's namespace: the test setup code, the prompt's
imports, definitions and assignments (helpers such as HumanEval's ``poly``), and a proxy for every
callable the program defines (always for the entry point, else only names the prompt does not define).
"""
import ast, builtins, contextlib, ctypes, doctest, io, json, os, select, signal, struct, subprocess, sys, time
sys.path[:] = [p for p in sys.path if p and os.path.realpath(p) != os.path.realpath(os.getcwd())]
ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 0: no ptrace, no /proc/PID/{mem,fd} for the child
REPORT = os.fdopen(3, "w", encoding="utf-8")
with open("job.json", encoding="utf-8") as fh:
    JOB = json.load(fh)
os.unlink("job.json")
MAX_MSG, MAX_DEPTH = 16 << 20, 100

CHILD = r'''
import contextlib, io, json, os, struct, sys
REQ, REP = int(sys.argv[1]), int(sys.argv[2])
try:
    with open("/proc/self/oom_score_adj", "w") as fh:
        fh.write("1000")  # when the run's memory is exhausted, the kernel kills this process first
except OSError:
    pass
def read_exact(n):
    buf = b""
    while len(buf) < n:
        part = os.read(REQ, n - len(buf))
        if not part:
            os._exit(0)
        buf += part
    return buf
def send(obj):
    data = json.dumps(obj).encode()
    data = struct.pack(">I", len(data)) + data
    while data:
        data = data[os.write(REP, data):]
refs, ns = {}, {"__name__": "__main__"}
def enc(v, depth=0):
    if depth > 100:
        raise ValueError("value nested too deeply")
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        return {"f": repr(float(v))}
    if isinstance(v, complex):
        return {"c": [repr(v.real), repr(v.imag)]}
    if isinstance(v, bytes):
        return {"b": bytes(v).hex()}
    for kind, tag in ((list, "l"), (tuple, "t"), (frozenset, "fs"), (set, "s")):
        if isinstance(v, kind):
            return {tag: [enc(x, depth + 1) for x in v]}
    if isinstance(v, dict):
        return {"d": [[enc(k, depth + 1), enc(x, depth + 1)] for k, x in v.items()]}
    refs[id(v)] = v
    try:
        text = repr(v)[:1000]
    except Exception:
        text = "<" + type(v).__name__ + ">"
    return {"r": id(v), "repr": text}
def dec(v):
    if isinstance(v, list):
        return [dec(x) for x in v]
    if not isinstance(v, dict):
        return v
    if "f" in v:
        return float(v["f"])
    if "c" in v:
        return complex(float(v["c"][0]), float(v["c"][1]))
    if "b" in v:
        return bytes.fromhex(v["b"])
    if "d" in v:
        return {dec(k): dec(x) for k, x in v["d"]}
    if "r" in v:
        return refs[v["r"]]
    if "n" in v:
        return ns[v["n"]]
    tag, items = next(iter(v.items()))
    return {"l": list, "t": tuple, "s": set, "fs": frozenset}[tag](dec(x) for x in items)
while True:
    msg = json.loads(read_exact(struct.unpack(">I", read_exact(4))[0]))
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            op = msg["op"]
            if op == "load":
                if msg["setup"]:
                    exec(compile(msg["setup"], "setup.py", "exec"), ns)
                exec(compile(msg["program"], "solution.py", "exec"), ns)
                value = sorted(k for k, x in ns.items() if callable(x) and not k.startswith("__"))
            else:
                target = dec(msg["target"])
                if op == "call":
                    value = target(*dec(msg["args"]), **{k: dec(x) for k, x in msg["kwargs"].items()})
                elif op == "getattr":
                    value = getattr(target, msg["name"])
                elif op == "list":
                    value = list(target)
                elif op == "len":
                    value = len(target)
                elif op == "bool":
                    value = bool(target)
                elif op == "repr":
                    value = repr(target)
                else:
                    value = str(target)
        reply = {"ok": True, "value": enc(value)}
    except BaseException as exc:
        reply = {"ok": False, "exc": type(exc).__name__, "msg": str(exc)[:300]}
    reply["out"] = out.getvalue()[-(1 << 20):]
    send(reply)
'''


class TestTimeout(BaseException):
    """A test ran out of time (a BaseException, so a test's own ``except Exception`` cannot swallow it)."""


class ChildError(Exception):
    """An exception raised by the candidate's code that is not a builtin exception type."""


class Child:
    """The candidate's interpreter; restarted (and the program loaded again) after it dies."""

    def __init__(self):
        self.proc, self.generation, self.load_error, self.names = None, 0, None, []

    def ensure(self, deadline):
        if self.proc is not None:
            return
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        self.proc = subprocess.Popen([sys.executable, "-S", "-B", "-c", CHILD, str(req_r), str(rep_w)],
                                     stdin=subprocess.DEVNULL, pass_fds=(req_r, rep_w), close_fds=True)
        os.close(req_r)
        os.close(rep_w)
        self.req, self.rep, self.generation = req_w, rep_r, self.generation + 1
        try:
            self.names = self.ask({"op": "load", "program": JOB["program"], "setup": JOB["setup"]}, deadline)
            self.load_error = None
        except TestTimeout:
            self.load_error = f"the program did not finish loading within {JOB['per_test']} s"
            raise
        except Exception as exc:
            self.load_error = (type(exc).__name__ + ": " + str(exc))[:300]
            raise

    def stop(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            os.close(self.req)
            os.close(self.rep)
            self.proc = None

    def ask(self, msg, deadline):
        data = json.dumps(msg).encode()
        try:
            os.write(self.req, struct.pack(">I", len(data)) + data)  # requests are small: one write
            size = struct.unpack(">I", self.read(4, deadline))[0]
            if size > MAX_MSG:
                raise ValueError(f"the program's reply is over {MAX_MSG} bytes")
            reply = json.loads(self.read(size, deadline))
        except (OSError, EOFError, ValueError) as exc:
            try:
                code = self.proc.wait(0.2) if self.proc is not None else None
            except subprocess.TimeoutExpired:
                code = None
            self.stop()
            if isinstance(exc, (OSError, EOFError)) or code is not None:
                raise ChildError(f"the program's process ended during the call (exit code {code})") from None
            raise ChildError(f"unreadable reply from the program: {exc}") from None
        sys.stdout.write(reply.get("out") or "")
        if not reply["ok"]:
            kind = getattr(builtins, reply["exc"], None)
            if isinstance(kind, type) and issubclass(kind, Exception):
                raise kind(reply["msg"])
            raise ChildError(reply["exc"] + ": " + reply["msg"])
        return decode(reply["value"])

    def read(self, n, deadline):
        buf = b""
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.rep], [], [], left)[0]:
                self.stop()
                raise TestTimeout()
            part = os.read(self.rep, n - len(buf))
            if not part:
                raise EOFError()
            buf += part
        return buf


CHILD_PROC = Child()
DEADLINE = [0.0]


class Remote:
    """A value that lives in the candidate's process: callable, its attributes readable, equal only to itself."""

    __slots__ = ("_target", "_repr", "_generation")

    def __init__(self, target, text, generation):
        self._target, self._repr, self._generation = target, text, generation

    def _ask(self, op, **fields):
        if "n" not in self._target and self._generation != CHILD_PROC.generation:
            raise ChildError("this value belonged to a run of the program that has ended")
        CHILD_PROC.ensure(DEADLINE[0])
        return CHILD_PROC.ask({"op": op, "target": self._target, **fields}, DEADLINE[0])

    def __call__(self, *args, **kwargs):
        return self._ask("call", args=encode(list(args)), kwargs={k: encode(v) for k, v in kwargs.items()})

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return self._ask("getattr", name=name)

    def __iter__(self):
        return iter(self._ask("list"))

    def __len__(self):
        return self._ask("len")

    def __bool__(self):
        return self._ask("bool") is True

    def __str__(self):
        return self._ask("str")

    def __repr__(self):
        try:
            text = self._ask("repr")  # now, not when it was made: the object may have changed since
        except ChildError:  # the program's process is gone: what it said when it made the value
            return self._repr
        return text if isinstance(text, str) else self._repr

    def __eq__(self, other):
        return self is other

    def __hash__(self):
        return id(self)


def decode(v, depth=0):
    """The child's reply as plain values of this process (it never runs the child's code)."""
    if depth > MAX_DEPTH:
        raise ValueError("value nested too deeply")
    if v is None or type(v) in (bool, int, str):
        return v
    if type(v) is list:
        return [decode(x, depth + 1) for x in v]
    if type(v) is not dict or len(v) not in (1, 2):
        raise ValueError("malformed value from the program")
    if "f" in v:
        return float(v["f"])
    if "c" in v:
        return complex(float(v["c"][0]), float(v["c"][1]))
    if "b" in v:
        return bytes.fromhex(v["b"])
    if "r" in v:
        return Remote({"r": int(v["r"])}, str(v.get("repr", ""))[:1000], CHILD_PROC.generation)
    if "d" in v:
        return {decode(k, depth + 1): decode(x, depth + 1) for k, x in v["d"]}
    tag, items = next(iter(v.items()))
    kind = {"l": list, "t": tuple, "s": set, "fs": frozenset}[tag]
    return kind(decode(x, depth + 1) for x in items)


def encode(v, depth=0):
    """Arguments for the child: plain values, or remote values handed back."""
    if depth > MAX_DEPTH:
        raise ValueError("argument nested too deeply")
    if v is None or type(v) in (bool, int, str):
        return v
    if isinstance(v, Remote):
        return v._target
    if isinstance(v, float):
        return {"f": repr(v)}
    if isinstance(v, complex):
        return {"c": [repr(v.real), repr(v.imag)]}
    if isinstance(v, (bytes, bytearray)):
        return {"b": bytes(v).hex()}
    if isinstance(v, bool) or isinstance(v, int):
        return int(v)
    if isinstance(v, str):
        return str(v)
    for kind, tag in ((list, "l"), (tuple, "t"), (frozenset, "fs"), (set, "s")):
        if isinstance(v, kind):
            return {tag: [encode(x, depth + 1) for x in v]}
    if isinstance(v, dict):
        return {"d": [[encode(k, depth + 1), encode(x, depth + 1)] for k, x in v.items()]}
    raise TypeError(f"cannot pass a {type(v).__name__} to the program under test")


def prompt_definitions(prompt):
    """The prompt's imports, functions, classes and assignments (helpers the tests may call)."""
    try:
        tree = ast.parse(prompt)
    except (SyntaxError, ValueError):
        return None
    keep = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign)
    tree.body = [node for node in tree.body if isinstance(node, keep)]
    return compile(tree, "prompt.py", "exec")


def namespace():
    ns: dict = {"__name__": "__main__"}
    for source in (JOB["setup"], JOB["prompt"]):
        code = prompt_definitions(source) if source else None
        if code is not None:
            try:
                exec(code, ns)
            except Exception:
                pass  # a prompt that does not run on its own only loses its helpers
    for name in CHILD_PROC.names:
        # Never a builtin's name: a program defining abs() or all() must not answer the tests' own calls.
        if name not in ns and not hasattr(builtins, name):
            ns[name] = Remote({"n": name}, f"<{name} of the program>", 0)
    for name in filter(None, [JOB["entry_point"]]):
        ns[name] = Remote({"n": name}, f"<{name} of the program>", 0)
    return ns


def doctest_why(report):
    """What a failed example got: its Expected/Got lines, or the exception's last line (the traceback
    runs through this harness's own frames, which would tell a repairing model nothing)."""
    if "Exception raised:" in report:
        lines = [ln.strip() for ln in report.split("Exception raised:", 1)[1].splitlines() if ln.strip()]
        return ("raised " + (lines[-1] if lines else "an exception"))[:300]
    return report[report.find("Expected:"):].strip()[:300] if "Expected:" in report else report.strip()[-300:]


def _alarm(*_):
    raise TestTimeout()


signal.signal(signal.SIGALRM, _alarm)
PER_TEST = JOB["per_test"]
out: dict = {"passed": 0, "total": len(JOB["tests"]), "results": [], "error": None, "outputs": None}
sink = io.StringIO()


@contextlib.contextmanager
def budget():
    DEADLINE[0] = time.monotonic() + PER_TEST
    signal.alarm(PER_TEST + 1)  # the tests' own code, when it loops without calling the program
    try:
        with contextlib.redirect_stdout(sink):
            yield
    finally:
        signal.alarm(0)


try:
    with budget():
        CHILD_PROC.ensure(DEADLINE[0])
    tests, exprs = JOB["tests"], JOB["exprs"]
except BaseException:
    out["error"] = CHILD_PROC.load_error or "the program could not be started"
    tests, exprs = [], []
runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS, verbose=False)
for t in tests:
    ok, why = False, None
    try:
        with budget():
            CHILD_PROC.ensure(DEADLINE[0])
            ns = namespace()
            if t["kind"] == "assert":
                exec(compile(t["code"], "test.py", "exec"), ns)
                ok = True
            elif t["kind"] == "check":
                exec(compile(t["code"], "test.py", "exec"), ns)
                ns["check"](ns[t["entry_point"]])
                ok = True
            else:
                example = doctest.Example(t["source"] + "\n", t["want"] + "\n")
                test = doctest.DocTest([example], ns, "example", None, 0, None)
                report: list[str] = []
                ok = runner.run(test, out=report.append, clear_globs=False).failed == 0
                if not ok:
                    why = doctest_why("".join(report))
    except TestTimeout:
        why = f"timed out after {PER_TEST} s"
    except BaseException as exc:
        why = (type(exc).__name__ + ": " + str(exc))[:200]
    out["results"].append([ok, why])
    out["passed"] += ok
if exprs:
    values = []
    for e in exprs:
        try:
            with budget():
                CHILD_PROC.ensure(DEADLINE[0])
                values.append(repr(eval(compile(e, "expr.py", "eval"), namespace())))
        except BaseException as exc:
            values.append("<" + type(exc).__name__ + ">")
    out["outputs"] = values
CHILD_PROC.stop()
REPORT.write(json.dumps(out))
REPORT.close()
