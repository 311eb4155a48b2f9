"""The sandbox launcher: the first process of every sandbox run (see archon/sandbox.py).

It is not imported: sandbox.py reads this file's text once and runs it with ``python -I -S -c`` as
root, with its settings in argv. It joins the run's cgroups, enters the namespaces, builds a new root
(a size-limited tmpfs holding the working directory, /tmp, /var/tmp and /dev/shm, with the system
and the Python installation bound read-only), forks an init for the PID namespace, then drops to the
sandbox uid and execs the code. Builtin modules only: it starts on every run. Its own failures exit
125 with an "archon-sandbox: " line on stderr.
"""
import ctypes, os, resource, signal, sys
def fail(msg):
    os.write(2, ("archon-sandbox: " + msg + "\n").encode())
    os._exit(125)
ppid, uid, cpu, mem, nproc, fsize, disk_mb, allowed, channel = map(int, sys.argv[1].split(","))
sep = sys.argv.index("--")
plan, cmd = sys.argv[2:sep], sys.argv[sep + 1:]
libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
NET, NS, PID, IPC, USER = 0x40000000, 0x20000, 0x20000000, 0x08000000, 0x10000000
RDONLY, NOSUID, NODEV, NOEXEC, REMOUNT, BIND, REC, PRIVATE = 1, 2, 4, 8, 32, 4096, 0x4000, 0x40000
# The system directories the code may read (never write); everything else of the host is absent.
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
DEVICES = ("null", "zero", "full", "random", "urandom")
def mount(src, dst, fstype, flags, data=None):
    enc = lambda s: s.encode() if s is not None else None
    if libc.mount(enc(src), enc(dst), enc(fstype), flags, enc(data)) != 0:
        raise OSError(ctypes.get_errno(), "mount " + dst)
libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG: die with the caller
if os.getppid() != ppid:
    os._exit(125)
for item in plan:
    if item.startswith("c:"):  # the run's cgroups: joined before anything is forked
        try:
            with open(item[2:], "w") as fh:
                fh.write(str(os.getpid()))
        except OSError as exc:
            fail(f"could not join the cgroup {item[2:]}: {exc}")
bits = {1: NET, 2: NS, 4: PID, 8: IPC}
wanted = sum(flag for bit, flag in bits.items() if allowed & bit)
if not wanted & NS:
    wanted &= ~PID  # a PID namespace without a mount namespace would show the host's /proc
got = 0
if os.geteuid() == 0:
    if wanted and libc.unshare(wanted) == 0:
        got = wanted
    else:
        for flag in (NET, NS, PID, IPC):
            if wanted & flag and not (flag == PID and not got & NS) and libc.unshare(flag) == 0:
                got |= flag
elif wanted:
    me, grp = os.getuid(), os.getgid()
    for flags in (wanted, wanted & (NET | IPC)):
        if flags and libc.unshare(USER | flags) == 0:
            got = flags
            for name, text in (("setgroups", "deny"), ("uid_map", f"{me} {me} 1"), ("gid_map", f"{grp} {grp} 1")):
                with open("/proc/self/" + name, "w") as fh:
                    fh.write(text)
            break
def mountpoints_under(path):
    found = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            point = line.split()[4].encode().decode("unicode_escape")  # mountinfo escapes spaces as \040
            if point == path or point.startswith(path + "/"):
                found.append(point)
    return found
def read_only(path):
    # A bind mount is writable until remounted; the flags a user namespace locks must be kept.
    for point in mountpoints_under(path):
        have = os.statvfs(point).f_flag
        keep = (have & (NOEXEC | 1024 | 2048)) | (1 << 21 if have & 4096 else 0)  # noexec, (no)atime
        mount(None, point, None, REMOUNT | BIND | RDONLY | NOSUID | NODEV | keep)
def bind(src, dst, writable=False):
    if os.path.isdir(src):
        os.makedirs(dst, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        os.close(os.open(dst, os.O_WRONLY | os.O_CREAT, 0o644))
    mount(src, dst, None, BIND | REC)
    if not writable:
        read_only(dst)
def copy_tree(src_fd, dst):
    # The caller's files, copied into the run's tmpfs (so nothing the code writes reaches the host disk).
    for name in os.listdir(src_fd):
        st = os.stat(name, dir_fd=src_fd, follow_symlinks=False)
        target = os.path.join(dst, name)
        if st.st_mode & 0o170000 == 0o040000:
            os.mkdir(target, 0o700)
            sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=src_fd)
            try:
                copy_tree(sub, target)
            finally:
                os.close(sub)
        elif st.st_mode & 0o170000 == 0o100000:
            fin = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=src_fd)
            fout = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                while chunk := os.read(fin, 1 << 16):
                    os.write(fout, chunk)
            finally:
                os.close(fin)
                os.close(fout)
        else:
            continue
        if uid >= 0:
            os.chown(target, uid, uid)
def build_root() -> tuple[str, str]:
    mount(None, "/", None, REC | PRIVATE)  # nothing leaks back to the host
    work = os.getcwd()
    src = os.open(work, os.O_RDONLY | os.O_DIRECTORY)
    # The new root is a tmpfs mounted on the (now hidden) working directory; its size caps
    # everything the code can write: the working directory, /tmp, /var/tmp and /dev/shm.
    root = work
    mount("tmpfs", root, "tmpfs", NOSUID | NODEV, f"mode=755,size={disk_mb}m")
    for top in SYSTEM:
        if os.path.islink(top):
            os.symlink(os.readlink(top), root + top)
        elif os.path.isdir(top):
            bind(top, root + top)
    for item in plan:
        path = item[2:]
        if item.startswith("e:") and not os.path.exists(root + path):
            bind(path, root + path)
    os.makedirs(root + "/dev", 0o755)
    for name in DEVICES:
        if os.path.exists("/dev/" + name):
            bind("/dev/" + name, root + "/dev/" + name, writable=True)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{root}/dev/{name}")
    for path, mode in (("/dev/shm", 0o1777), ("/tmp", 0o1777), ("/var/tmp", 0o1777), ("/proc", 0o555)):
        os.makedirs(root + path, exist_ok=True)
        os.chmod(root + path, mode)
    os.makedirs(root + work, 0o700)
    copy_tree(src, root + work)
    os.close(src)
    if uid >= 0:
        os.chown(root + work, uid, uid)
    return root, work
def enter_root(root, work, fresh_proc):
    # /proc is mounted before the old root goes: a user namespace may mount a new proc only while
    # a fully visible one exists in its mount namespace. A new instance shows this PID namespace.
    try:
        mount("proc", root + "/proc", "proc", NOSUID | NODEV | NOEXEC, None if fresh_proc else "hidepid=2")
    except OSError:
        if fresh_proc:
            raise
        mount("/proc", root + "/proc", None, BIND | REC)  # no PID namespace: the host's, as it is
    os.chdir(root)
    if libc.syscall(155, b".", b".") != 0:  # pivot_root(".", "."): the old root lands on top, detach it
        raise OSError(ctypes.get_errno(), "pivot_root")
    if libc.umount2(b".", 2) != 0:  # MNT_DETACH
        raise OSError(ctypes.get_errno(), "umount the old root")
    os.chdir(work)
new_root: tuple[str, str] | None = None
if got & NS:
    try:
        new_root = build_root()
        if not got & PID:  # else the PID namespace's init enters it, to mount that namespace's /proc
            enter_root(*new_root, fresh_proc=False)
    except OSError as exc:
        fail(f"could not build the sandbox's root: {exc}")
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
        if channel >= 0:  # the result channel is fd 3 for the code, whatever number the caller gave it
            os.dup2(channel, 3)
            if channel != 3:
                os.close(channel)
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
    if channel >= 0:
        os.close(channel)  # only the code holds the channel: its end is the end of the report
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
        if new_root:
            enter_root(*new_root, fresh_proc=True)  # only this namespace's processes are visible
    except OSError as exc:
        fail(f"could not enter the sandbox's root: {exc}")
    os.write(w, str(guard()).encode())
    os._exit(0)
os.close(w)
if channel >= 0:
    os.close(channel)
os.wait()
status = os.read(r, 32)
if not status:
    fail("the sandbox init process died")
finish(int(status))
