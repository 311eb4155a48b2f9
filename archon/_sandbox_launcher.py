"""The sandbox launcher: the first process of every sandbox run (see archon/sandbox.py).

It is not imported: sandbox.py reads this file's text once and runs it with ``python -I -S -c`` as
root, with its settings in argv. It enters the namespaces, reshapes the mounts, forks an init for
the PID namespace, then drops to the sandbox uid and execs the code. Builtin modules only: it starts
on every run. Its own failures exit 125 with an "archon-sandbox: " line on stderr.
"""
import ctypes, os, resource, signal, sys
def fail(msg):
    os.write(2, ("archon-sandbox: " + msg + "\n").encode())
    os._exit(125)
ppid, uid, cpu, mem, nproc, fsize, tmp_mb, allowed = map(int, sys.argv[1].split(","))
sep = sys.argv.index("--")
plan, cmd = sys.argv[2:sep], sys.argv[sep + 1:]
libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
NET, NS, PID, USER = 0x40000000, 0x20000, 0x20000000, 0x10000000
def mount(src, dst, fstype, flags, data=None):
    enc = lambda s: s.encode() if s is not None else None
    if libc.mount(enc(src), enc(dst), enc(fstype), flags, enc(data)) != 0:
        raise OSError(ctypes.get_errno(), "mount " + dst)
libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG: die with the caller
if os.getppid() != ppid:
    os._exit(125)
wanted = (NET if allowed & 1 else 0) | (NS if allowed & 2 else 0) | (PID if allowed & 4 and allowed & 2 else 0)
got = 0
if os.geteuid() == 0:
    if wanted and libc.unshare(wanted) == 0:
        got = wanted
    else:
        for flag in (NET, NS, PID):
            if wanted & flag and not (flag == PID and not got & NS) and libc.unshare(flag) == 0:
                got |= flag
elif wanted:
    me, grp = os.getuid(), os.getgid()
    for flags in (wanted, wanted & NET):
        if flags and libc.unshare(USER | flags) == 0:
            got = flags
            for name, text in (("setgroups", "deny"), ("uid_map", f"{me} {me} 1"), ("gid_map", f"{grp} {grp} 1")):
                with open("/proc/self/" + name, "w") as fh:
                    fh.write(text)
            break
if got & NS:
    try:
        mount(None, "/", None, 0x4000 | 0x40000)  # MS_REC|MS_PRIVATE: nothing leaks to the host
        cwd = os.getcwd()  # the working directory, soon hidden under /tmp's tmpfs and bound back
        exposes = [p[2:] for p in plan if p.startswith("e:")]
        fds = {p: os.open(p, os.O_PATH | os.O_DIRECTORY) for p in exposes}
        hidden = []
        for item in plan:
            if item.startswith("h:"):
                mode, path = item[2:].split(":", 1)
                os.makedirs(path, exist_ok=True)
                mount("tmpfs", path, "tmpfs", 2 | 4, f"mode={mode},size={tmp_mb}m")  # NOSUID|NODEV
                hidden.append(path)
        for path, fd in fds.items():
            if any(path == h or path.startswith(h + "/") for h in hidden):
                os.makedirs(path, exist_ok=True)
                mount(f"/proc/self/fd/{fd}", path, None, 4096 | 0x4000)  # MS_BIND|MS_REC
            os.close(fd)
        os.chdir(cwd)
    except OSError as exc:
        fail(f"could not prepare the mount namespace: {exc}")
if not got & NET:
    cmd[-1:-1] = ["-c", "import _socket, runpy, socket, sys\n"
        "class _NoNet:\n"
        "    def __new__(cls, *a, **k):\n"
        "        raise PermissionError(1, 'network access is disabled in the Archon sandbox')\n"
        "_socket.socket = _socket.SocketType = socket.socket = socket.SocketType = _NoNet\n"
        "sys.argv = sys.argv[1:]\n"
        "runpy.run_path(sys.argv[0], run_name='__main__')\n"]
def become_code():
    limits = [(resource.RLIMIT_CPU, cpu, cpu + 1), (resource.RLIMIT_AS, mem, mem),
              (resource.RLIMIT_FSIZE, fsize, fsize), (resource.RLIMIT_CORE, 0, 0),
              (resource.RLIMIT_NPROC, nproc, nproc)]
    try:
        for res, soft, hard in limits:
            resource.setrlimit(res, (soft, hard))
        if uid >= 0:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
        libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS: setuid binaries cannot regain root
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # setuid cleared the parent-death signal
        os.execve(cmd[0], cmd, os.environ)
    except OSError as exc:
        fail(f"cannot start {cmd[0]} as uid {os.getuid()}: {exc}")
def guard():
    # Forks the code and reaps every descendant; returns the code's wait status once it has exited.
    # Without a PID namespace this process is a subreaper, so escaped descendants become our
    # children: kill them as they arrive, until none is left.
    main = os.fork()
    if main == 0:
        become_code()
    status = None
    while True:
        if status is not None:
            for task in os.listdir("/proc/self/task"):
                with open(f"/proc/self/task/{task}/children") as fh:
                    for child in fh.read().split():
                        os.kill(int(child), signal.SIGKILL)
        try:
            pid, st = os.wait()
        except ChildProcessError:
            return status
        if pid == main:
            status = st
            if got & PID:
                return status  # init's exit makes the kernel kill the rest
def finish(status):
    # Exit the way the code did, so the caller sees its exit code or its signal.
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if -code != signal.SIGKILL:
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    os._exit(code & 0xFF)
if not got & PID:
    # Orphans come back to us instead of to PID 1, which may be slow to reap them; their zombies
    # would count against the next run's RLIMIT_NPROC.
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    finish(guard())
# The code must not be the namespace's init (init ignores SIGXCPU and SIGINT), so the init is a guard
# that reports the code's status through a pipe; when it exits, the kernel kills whatever is left.
r, w = os.pipe()
if os.fork() == 0:
    os.close(r)
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)
    try:
        mount("proc", "/proc", "proc", 2 | 4 | 8)  # only this namespace's processes are visible
    except OSError:
        pass
    os.write(w, str(guard()).encode())
    os._exit(0)
os.close(w)
os.wait()
status = os.read(r, 32)
if not status:
    fail("the sandbox init process died")
finish(int(status))
