"""The sandbox fork server: `python -I -S _sandbox_boot.py SERVER_CONFIG`, run by `sandbox_process.py`.

Stdlib only, no package imports. The server is a trusted zygote: it starts once per caller
process (and `site` setting), imports the stdlib modules generated code commonly uses, and
never runs untrusted code itself. For each program it receives a config and the program's
file descriptors over a SOCK_SEQPACKET socket and forks a fresh process tree:

    A  fork of the server, trusted; own session; unshares mount/net/ipc/uts/pid (+user)
       namespaces, makes every mount read-only, mounts private tmpfs on /tmp, /var/tmp and
       /dev/shm, and brings the interpreter's directories back read-only at their own paths
       where those mounts or non-traversable parents (e.g. /root, mode 0700) hide them
    B  fork of A, pid 1 of the new pid namespace, trusted: mounts a fresh /proc, waits for C,
       reports C's status on the status pipe, counts stray processes, exits -- and the kernel
       kills everything left in the namespace before B's exit completes
    C  fork of B: rlimits, drop to the slot uid (root) or drop all capabilities (user
       namespace), no_new_privs, own session, scrubbed environment, then runs the program

Without namespaces ("uid", "none") A plays B's part and C stays in A's process group.
The server answers each request with `ok <pid of A>` and a pidfd of A. The status pipe
carries `B <pid>`, then `exit <code> <cpu_s> <strays>` or `signal <signo> <cpu_s> <strays>`,
or `error <message>`. The server exits when the caller closes its end of the socket; every
sandbox dies with it (parent-death signals).
"""

import marshal
import os
import resource  # lib-dynload: import while still privileged
import sys

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND = 32, 1024, 2048, 4096
MS_REC, MS_PRIVATE, MS_RELATIME, MS_STRICTATIME = 16384, 1 << 18, 1 << 21, 1 << 24
_MOUNT_OPTS = {
    "nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC, "noatime": MS_NOATIME,
    "nodiratime": MS_NODIRATIME, "relatime": MS_RELATIME, "strictatime": MS_STRICTATIME,
}
SIGKILL = 9

_libc = None
INTERPRETER_DIRS = []  # set by `serve` (after `site` ran): what `_reveal` brings back


def _c():
    global _libc
    if _libc is None:
        import ctypes

        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _check(ret, what):
    if ret != 0:
        import ctypes

        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _prctl(option, arg):
    _check(_c().prctl(option, arg, 0, 0, 0), f"prctl({option})")


def _mount(src, target, fstype, flags, data=None):
    enc = lambda s: None if s is None else s.encode()  # noqa: E731
    _check(_c().mount(enc(src), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


def _write(path, text):
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _unescape(field):
    # mountinfo escapes space, tab, newline and backslash as \ooo
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def _remount_all_readonly():
    with open("/proc/self/mountinfo") as f:
        lines = f.read().splitlines()
    for line in lines:
        parts = line.split()
        target, opts = _unescape(parts[4]), parts[5].split(",")
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID
        for opt in opts:
            flags |= _MOUNT_OPTS.get(opt, 0)
        try:
            _mount(None, target, None, flags)
        except OSError:
            if target == "/":
                raise
            # over-mounted or vanished mount points cannot be reached by path; skip them


# Mounts the sandbox covers with a private tmpfs: the program's scratch space.
PRIVATE_TMP = ("/tmp", "/var/tmp", "/dev/shm")
ST_MOUNT_FLAGS = ((1, MS_RDONLY), (2, MS_NOSUID), (4, MS_NODEV), (8, MS_NOEXEC), (1024, MS_NOATIME),
                  (2048, MS_NODIRATIME), (4096, MS_RELATIME))  # statvfs f_flag bit -> mount flag


def interpreter_dirs():
    """The directories this interpreter reads, outermost only: its executable's (as invoked
    and resolved), its prefixes and every directory on `sys.path` (absolute and resolved)."""
    found = set()
    for p in (os.path.dirname(sys.executable), os.path.dirname(os.path.realpath(sys.executable)), sys.prefix,
              sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix, *sys.path):
        if not p:
            continue
        p = os.path.abspath(p)
        if os.path.isfile(p):  # a zip archive on sys.path
            p = os.path.dirname(p)
        for q in (p, os.path.realpath(p)):
            if q != "/" and q not in PRIVATE_TMP and os.path.isdir(q):
                found.add(q)
    outermost = []
    for p in sorted(found):
        if not any(p.startswith(q + "/") for q in outermost):
            outermost.append(p)
    return outermost


def _searchable_by_others(path):
    try:
        return bool(os.stat(path).st_mode & 0o001)
    except OSError:
        return False


def _same_dir(path, st):
    try:
        here = os.stat(path)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (st.st_dev, st.st_ino)


def _mount_flags(path):
    f_flag = os.statvfs(path).f_flag
    return sum(ms for st, ms in ST_MOUNT_FLAGS if f_flag & st)


def _mkdir(path):
    os.mkdir(path)
    os.chmod(path, 0o755)  # whatever the umask


def _reveal(path, fd, covered):
    """Makes the directory open as `fd` visible read-only at `path` to an unprivileged uid.

    Ancestors that others cannot search (e.g. /root, mode 0700) get a tmpfs over them (kept in
    `covered`, to be made read-only later); ancestors that a private tmpfs hid (a venv under
    /tmp) are recreated there; then the directory is bind-mounted back at `path`.
    """
    want = os.fstat(fd)
    parts = path.strip("/").split("/")
    cur = "/"
    for comp in parts[:-1]:
        cur = os.path.join(cur, comp)
        if not os.path.lexists(cur):
            _mkdir(cur)
        elif not _searchable_by_others(cur):
            _mount("tmpfs", cur, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,nr_inodes=1024,mode=0755")
            covered.append(cur)
    if _same_dir(path, want):
        return
    if not os.path.lexists(path):
        _mkdir(path)
    _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
    _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | _mount_flags(path))


def _setup_mounts(cfg):
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    # The interpreter's directories: open them now, while the real tree is still visible; bring
    # back those the private tmpfs mounts hide or non-traversable parents keep from the sandbox
    # uid, at their own paths (so sys.path, sys.executable and module files stay valid).
    held = []
    for path in INTERPRETER_DIRS:
        try:
            held.append((path, os.open(path, os.O_PATH | os.O_DIRECTORY)))
        except OSError:
            pass  # gone since the server started (a removed sys.path entry): nothing to bring back
    _remount_all_readonly()
    size = f"size={cfg['tmpfs_mb']}m,nr_inodes=4096,mode=1777"
    for path in PRIVATE_TMP:
        if os.path.isdir(path):
            _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, size)
    covered = []
    for path, fd in held:
        _reveal(path, fd, covered)
        os.close(fd)
    for parent in covered:
        _mount(None, parent, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _enter_namespaces(cfg):
    flags = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWPID
    if not cfg["network"]:
        flags |= CLONE_NEWNET
    if cfg["mode"] == "userns":
        flags |= CLONE_NEWUSER
    uid, gid = os.getuid(), os.getgid()
    _check(_c().unshare(flags), "unshare")
    if cfg["mode"] == "userns":
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{uid} {uid} 1\n")
        _write("/proc/self/gid_map", f"{gid} {gid} 1\n")
    _setup_mounts(cfg)


def _drop_capabilities():
    import ctypes

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    hdr, data = Header(0x20080522, 0), (Data * 2)()
    _check(_c().capset(ctypes.byref(hdr), data), "capset")


def _child(cfg, path, namespaces):
    """C: becomes the program's process; returns what `_run_program` runs."""
    try:
        os.close(cfg["status_fd"])
        os.chdir(cfg["workdir"])
        for res, soft, hard in cfg["rlimits"]:
            resource.setrlimit(res, (soft, hard))
        if cfg["uid"] is not None:
            os.setgroups([])
            os.setgid(cfg["gid"])
            os.setuid(cfg["uid"])
        elif cfg["mode"] == "userns":
            _drop_capabilities()
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
        _prctl(PR_SET_PDEATHSIG, SIGKILL)  # after setuid, which clears it
        if namespaces:
            os.setsid()
        os.umask(0o022)
        os.environ.clear()
        os.environ.update(cfg["env"])
        os.closerange(3, 1 << 16)
        if "random" in sys.modules:  # forked from the server: do not share its random state
            sys.modules["random"].seed()
        with open(path, "rb") as f:
            src = f.read()
    except BaseException as e:  # setup failure: report on stderr with a distinct code
        os.write(2, f"sandbox: child setup failed: {e!r}\n".encode())
        os._exit(125)
    return src, path, cfg["workdir"]


def _count_strays():
    try:
        return sum(1 for name in os.listdir("/proc") if name.isdigit() and name != "1")
    except OSError:
        return -1


def _children():
    me = os.getpid()
    try:
        with open(f"/proc/{me}/task/{me}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:  # kernels without CONFIG_PROC_CHILDREN
        kids = []
        for name in os.listdir("/proc"):
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    if int(f.read().rsplit(b")", 1)[1].split()[1]) == me:
                        kids.append(int(name))
            except (OSError, ValueError, IndexError):
                continue
        return kids


def _kill_descendants():
    """A without namespaces: as child subreaper, every orphaned descendant of the program is
    A's child; kill them, reap, repeat until none is left. Returns how many were alive."""
    alive = set()
    for _ in range(10000):
        for pid in _children():
            try:
                with open(f"/proc/{pid}/stat", "rb") as f:
                    if f.read().rsplit(b")", 1)[1].split()[0] != b"Z":
                        alive.add(pid)
                os.kill(pid, SIGKILL)
            except OSError:
                pass
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            return len(alive)
        import time

        time.sleep(0.001)
    return len(alive)


def _wait_and_report(cfg, child, status_fd, namespaces):
    """A or B: waits for C; as pid 1 also reaps orphans. Reports C's status."""
    while True:
        try:
            pid, status, usage = os.wait4(-1, 0)
        except ChildProcessError:
            os._exit(4)
        except InterruptedError:
            continue
        if pid == child:
            break
    cpu = usage.ru_utime + usage.ru_stime
    strays = 0
    if namespaces:
        while True:  # reap zombies; anything left alive is a stray (killed when B exits)
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                strays = _count_strays()
                break
    else:
        strays = _kill_descendants()
    if os.WIFSIGNALED(status):
        line = f"signal {os.WTERMSIG(status)} {cpu:.3f} {strays}\n"
    else:
        line = f"exit {os.WEXITSTATUS(status)} {cpu:.3f} {strays}\n"
    os.write(status_fd, line.encode())
    os._exit(0)


def _sandbox(cfg, fds, server_pid, server_sock):
    """A: runs in the fork of the server. Returns only in C, with the program to run."""
    import signal

    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    os.setsid()
    _prctl(PR_SET_PDEATHSIG, SIGKILL)
    if os.getppid() != server_pid:
        os._exit(5)  # the server died before prctl took effect
    os.close(server_sock.detach())
    stdin_fd, out_fd, err_fd, status_fd, src_fd = fds
    for fd, target in ((stdin_fd, 0), (out_fd, 1), (err_fd, 2)):
        os.dup2(fd, target)
        os.close(fd)
    cfg["status_fd"] = status_fd
    namespaces = cfg["mode"] in ("namespaces", "userns")
    path = os.path.join(cfg["workdir"], "main.py")
    try:
        with os.fdopen(src_fd, "rb") as f:
            src = f.read()
        if namespaces:
            _enter_namespaces(cfg)
            os.makedirs(cfg["workdir"], mode=0o700)
            if cfg["uid"] is not None:
                os.chown(cfg["workdir"], cfg["uid"], cfg["gid"])
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(src)
    except OSError as e:
        os.write(status_fd, f"error setup: {e}\n".encode())
        os._exit(3)
    if namespaces:
        b = os.fork()
        if b:
            os.write(status_fd, f"B {b}\n".encode())
            while True:
                try:
                    os.waitpid(b, 0)
                    break
                except InterruptedError:
                    continue
            os._exit(0)
        # B: pid 1 of the new pid namespace
        _prctl(PR_SET_PDEATHSIG, SIGKILL)
        try:
            _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        except OSError as e:
            os.write(status_fd, f"error proc: {e}\n".encode())
            os._exit(3)
    else:
        _prctl(PR_SET_CHILD_SUBREAPER, 1)  # orphans of the program come back to A
    child = os.fork()
    if child == 0:
        return _child(cfg, path, namespaces)
    _wait_and_report(cfg, child, status_fd, namespaces)


def _reap(*_):
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def serve(cfg):
    """The server loop; returns only in a program's own process (C), with what to run."""
    import signal
    import socket

    server_pid = os.getpid()
    _prctl(PR_SET_DUMPABLE, 0)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)  # orphaned B processes come back here to be reaped
    if cfg["site"]:
        import site

        site.main()
    INTERPRETER_DIRS[:] = interpreter_dirs()
    for name in cfg["preload"]:
        try:
            __import__(name)
        except Exception:  # a missing optional module is not the server's problem
            pass
    _c()
    sock = socket.socket(fileno=cfg["sock_fd"])
    signal.signal(signal.SIGCHLD, _reap)
    while True:
        try:
            msg, fds, _, _ = socket.recv_fds(sock, 1 << 20, 8)
        except ConnectionError:
            break
        if not msg:
            break  # the caller went away
        try:
            job = marshal.loads(msg)
            if len(fds) != 5:
                raise ValueError(f"expected 5 file descriptors, got {len(fds)}")
        except Exception as e:
            for fd in fds:
                os.close(fd)
            sock.send(f"error {e!r}".encode())
            continue
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGCHLD])  # no reaping before pidfd_open
        try:
            pid = os.fork()
            if pid == 0:
                try:
                    return _sandbox(job, fds, server_pid, sock)
                except BaseException as e:
                    os.write(2, f"sandbox: internal error: {e!r}\n".encode())
                    os._exit(70)
            pidfd = os.pidfd_open(pid)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGCHLD])
        for fd in fds:
            os.close(fd)
        try:
            socket.send_fds(sock, [f"ok {pid}".encode()], [pidfd])
        except OSError:
            break
        finally:
            os.close(pidfd)
    os._exit(0)


def _run_program(src, path, workdir):
    """C: runs the program as `__main__`, as `python main.py` would, then exits."""
    main = type(sys)("__main__")
    main.__file__ = path
    main.__builtins__ = __builtins__
    sys.modules["__main__"] = main
    sys.argv = [path]
    sys.path.insert(0, workdir)
    try:
        exec(compile(src, path, "exec"), main.__dict__)
        status = 0
    except SystemExit as e:
        status = _exit_status(e.code)
    except BaseException as e:  # print it as python would, without this bootstrap's frame
        e = e.with_traceback(e.__traceback__.tb_next)
        sys.excepthook(type(e), e, e.__traceback__)
        status = 1
    _exit(status)


def _exit_status(code):
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    try:
        print(code, file=sys.stderr)
    except BaseException:
        pass
    return 1


def _exit(status):
    """What interpreter shutdown does that a program can observe -- join non-daemon threads,
    run atexit handlers, flush stdout/stderr -- without tearing down every module the server
    preloaded (that teardown costs more than most test programs take to run)."""
    for step in (lambda: sys.modules["threading"]._shutdown() if "threading" in sys.modules else None,
                 lambda: __import__("atexit")._run_exitfuncs()):
        try:
            step()
        except SystemExit as e:
            status = _exit_status(e.code)
        except BaseException:
            pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            status = status or 120
    os._exit(status & 0xFF)


if __name__ == "__main__":
    _run_program(*serve(marshal.loads(bytes.fromhex(sys.argv[1]))))
