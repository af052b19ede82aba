"""Sandboxed execution of untrusted (model-generated) Python programs.

Every program runs in a fresh interpreter (`sys.executable -I -S`, see `_sandbox_boot.py`),
in its own session and working directory, with an environment built from an allow-list,
resource limits (CPU time, address space, processes, file size, open files, no core dumps),
a wall-clock timeout that kills the whole process tree, and a cap on captured output.

Isolation, strongest first (`Limits.isolation="auto"` picks the first that works here):

    namespaces  root: new pid, mount, network, ipc and uts namespaces; the program runs as a
                per-worker unprivileged uid with no_new_privs; every mount read-only, private
                tmpfs on /tmp, /var/tmp and /dev/shm; network namespace with only a down
                loopback. The pid namespace dies with the program: daemonized grandchildren
                cannot outlive it, and the program cannot see or signal anything outside.
    userns      non-root with unprivileged user namespaces: the same, with the caller's uid
                mapped into the namespace and all capabilities dropped.
    uid         root without namespaces: per-worker uid (processes, signals, files), leftovers
                killed by uid. No network isolation (logged as a warning).
    none        plain subprocess, same uid as the caller; leftovers are found as descendants
                of the sandbox's child-subreaper process. No network isolation, and the program
                can signal the caller and write wherever the caller can (logged as a warning).

Programs are forked from a trusted fork server (`_sandbox_boot.py`) that has the commonly
used stdlib modules imported and never runs untrusted code itself: a fresh process per
program without paying interpreter start-up each time.

`run_python` never raises for anything the program does; the `Outcome` says what happened.
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import logging
import marshal
import math
import os
import re
import resource
import selectors
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from scoder_jax.errors import ConfigError, ScoderError

log = logging.getLogger(__name__)

BOOT = str(Path(__file__).with_name("_sandbox_boot.py"))
MODES = ("namespaces", "userns", "uid", "none")
STATUSES = ("passed", "failed", "timeout", "memory", "output_limit", "killed", "error")
SANDBOX_WORKDIR = "/tmp/scoder-sandbox"  # inside the private /tmp tmpfs (namespace modes)
SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
BOOT_ENV = {"PATH": SAFE_PATH, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
_UID_SLOTS = 1024


class SandboxError(ScoderError):
    """The requested isolation is not available on this machine."""


@dataclass(frozen=True)
class Limits:
    """What a sandboxed program may use. `cpu_s=None` means `timeout_s + 1`.

    `site=True` lets the program import third-party packages (the interpreter's
    site-packages); the default keeps start-up lean (stdlib only). `isolation` picks a mode
    from `MODES` or "auto" (the strongest available).
    """

    timeout_s: float = 10.0
    cpu_s: float | None = None
    memory_mb: int = 1024
    max_processes: int = 64
    max_file_mb: int = 16
    max_open_files: int = 64
    max_output_bytes: int = 1 << 20
    network: bool = False
    site: bool = False
    isolation: str = "auto"

    def __post_init__(self):
        if not self.timeout_s > 0:
            raise ConfigError(f"sandbox timeout_s must be positive, got {self.timeout_s}")
        if self.cpu_s is not None and not self.cpu_s > 0:
            raise ConfigError(f"sandbox cpu_s must be positive or None, got {self.cpu_s}")
        if self.memory_mb < 64:
            raise ConfigError(f"sandbox memory_mb must be at least 64 (the interpreter needs it), got {self.memory_mb}")
        for name in ("max_processes", "max_file_mb", "max_open_files"):
            if getattr(self, name) < 1:
                raise ConfigError(f"sandbox {name} must be at least 1, got {getattr(self, name)}")
        if self.max_open_files < 16:
            raise ConfigError(f"sandbox max_open_files must be at least 16, got {self.max_open_files}")
        if self.max_output_bytes < 0:
            raise ConfigError(f"sandbox max_output_bytes must be >= 0, got {self.max_output_bytes}")
        if self.isolation not in ("auto", *MODES):
            raise ConfigError(f"sandbox isolation must be 'auto' or one of {', '.join(MODES)}, got {self.isolation!r}")

    @property
    def cpu_limit_s(self) -> int:
        return max(1, math.ceil(self.cpu_s if self.cpu_s is not None else self.timeout_s + 1))


@dataclass(frozen=True)
class Outcome:
    status: str  # one of STATUSES
    exit_code: int | None  # negative: killed by that signal; None: killed by the sandbox
    stdout: str
    stderr: str
    wall_s: float
    reason: str = ""  # short human reason for anything but "passed"

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "passed": self.passed}


@dataclass(frozen=True)
class Isolation:
    mode: str
    network_isolated: bool  # a private network namespace
    uid_separated: bool  # the program cannot signal the caller or write its files
    detail: str


_ISOLATION_DETAIL = {
    "namespaces": "pid+mount+net+ipc+uts namespaces, per-worker uid, read-only mounts, private /tmp",
    "userns": "user+pid+mount+net+ipc+uts namespaces, no capabilities, read-only mounts, private /tmp",
    "uid": "per-worker uid, no network isolation",
    "none": "same uid as the caller, no network isolation",
}


# ---------------------------------------------------------------------------- public API


def run_python(code: str, *, limits: Limits = Limits(), stdin: str = "") -> Outcome:
    """Runs `code` (Python source) in a fresh sandboxed interpreter; "passed" means exit 0."""
    iso = isolation(limits.isolation)
    with _SLOTS.slot() as slot:
        return _run(code, limits, stdin, iso, slot)


def run_many(programs: Sequence[str], *, limits: Limits = Limits(), workers: int | None = None) -> list[Outcome]:
    """Runs each program with `run_python` on a pool of `workers` threads; order is preserved."""
    programs = list(programs)
    if not programs:
        return []
    isolation(limits.isolation)  # probe once, before the threads start
    workers = max(1, min(workers or os.cpu_count() or 1, len(programs), _UID_SLOTS))
    if workers == 1:
        return [run_python(p, limits=limits) for p in programs]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox") as pool:
        return list(pool.map(lambda p: run_python(p, limits=limits), programs))


def network_isolation_available() -> bool:
    """Whether programs get a private network namespace here (the "auto" isolation)."""
    return isolation("auto").network_isolated


def isolation(requested: str = "auto") -> Isolation:
    """The isolation mode programs run under; probed once per process and mode.

    "auto" tries the strongest first and logs a warning where isolation is missing; a named
    mode raises `SandboxError` if it does not work here.
    """
    with _PROBE_LOCK:
        return _isolation(requested)


# ---------------------------------------------------------------------------- isolation probe

_PROBE_LOCK = threading.Lock()
_PROBE = """
import math, os, socket, sys
mode = {mode!r}
# the interpreter's own files must be reachable (the server preloads some modules, not all)
assert os.access(os.path.realpath(sys.executable), os.X_OK), "cannot execute " + sys.executable
os.listdir(os.path.dirname(os.__file__))
import _bz2, zipfile
if mode in ("namespaces", "userns"):
    assert os.getpid() == 2, os.getpid()
    try:
        socket.create_connection(("127.0.0.1", 9), timeout=1)
    except OSError:
        pass
    open(os.path.join(os.environ["TMPDIR"], "probe"), "w").write("ok")
if mode in ("namespaces", "uid"):
    assert os.getuid() != 0
print("ok")
"""


@functools.lru_cache(maxsize=None)
def _isolation(requested: str) -> Isolation:
    if requested != "auto":
        err = _probe(requested)
        if err:
            raise SandboxError(f"sandbox isolation '{requested}' does not work on this machine: {err}")
        return _warn_if_weak(_describe(requested))
    candidates = ["namespaces", "userns", "uid", "none"] if os.geteuid() == 0 else ["userns", "none"]
    errors = []
    for mode in candidates:
        err = _probe(mode)
        if not err:
            if errors:
                log.warning("sandbox: stronger isolation unavailable (%s); using '%s'", "; ".join(errors), mode)
            return _warn_if_weak(_describe(mode))
        errors.append(f"{mode}: {err}")
    raise SandboxError("no sandbox isolation works here: " + "; ".join(errors))


def _warn_if_weak(iso: Isolation) -> Isolation:
    if not iso.network_isolated:
        log.warning(
            "sandbox: NO NETWORK ISOLATION (isolation '%s', no network namespace): sandboxed programs can "
            "open network connections. Run as root, or enable unprivileged user namespaces "
            "(sysctl kernel.unprivileged_userns_clone=1 / user.max_user_namespaces > 0), to fix this.", iso.mode
        )
    if not iso.uid_separated:
        log.warning(
            "sandbox: NO PROCESS SEPARATION (isolation 'none'): sandboxed programs run as uid %d and can "
            "signal the caller and write any file it can.", os.geteuid()
        )
    return iso


def _describe(mode: str) -> Isolation:
    return Isolation(
        mode=mode,
        network_isolated=mode in ("namespaces", "userns"),
        uid_separated=mode != "none",
        detail=_ISOLATION_DETAIL[mode],
    )


def _probe(mode: str) -> str:
    """'' if `mode` runs a probe program correctly here, else why not."""
    if mode in ("namespaces", "uid") and os.geteuid() != 0:
        return "needs root"
    if not hasattr(os, "pidfd_open"):
        return "needs Linux >= 5.3 and Python >= 3.9 (pidfd_open)"
    limits = Limits(timeout_s=20, memory_mb=256, isolation=mode)
    iso = _describe(mode)
    with _SLOTS.slot() as slot:
        out = _run(_PROBE.format(mode=mode), limits, "", iso, slot)
    if out.passed and out.stdout.strip() == "ok":
        return ""
    detail = (out.reason or "") + " " + (out.stderr.strip().splitlines() or [""])[-1]
    return f"{out.status}: {detail.strip()}"[:300]


@functools.lru_cache(maxsize=4)
def _reveal(site: bool) -> tuple[tuple[str, str], ...]:
    """(parent, child) pairs: directories the interpreter needs that sit under a parent the
    unprivileged sandbox uid cannot traverse (e.g. a pyenv under /root, mode 0700)."""
    import sysconfig

    paths = {sysconfig.get_path("stdlib"), sysconfig.get_path("platstdlib"),
             os.path.dirname(os.__file__), os.path.dirname(os.path.realpath(sys.executable)),
             os.path.dirname(sys.executable), sys.base_prefix, sys.base_exec_prefix}
    if site:
        import site as site_mod

        paths |= {sys.prefix, sys.exec_prefix, *site_mod.getsitepackages()}
    pairs: set[tuple[str, str]] = set()
    for p in paths:
        if not p or not os.path.isdir(p):
            continue
        for q in {os.path.abspath(p), os.path.realpath(p)}:
            parts = Path(q).parts
            cur = parts[0]
            for comp in parts[1:]:
                try:
                    mode = os.stat(cur).st_mode
                except OSError:
                    break
                if not mode & stat.S_IXOTH:
                    pairs.add((cur, comp))
                cur = os.path.join(cur, comp)
    return tuple(sorted(pairs, key=lambda pc: (pc[0].count("/"), pc)))


# ---------------------------------------------------------------------------- uid slots


class _SlotPool:
    """Gives each concurrently running program its own index (and so its own uid)."""

    def __init__(self, n: int):
        self._free = list(range(n))
        self._cond = threading.Condition()

    def slot(self):
        pool = self

        class _Ctx:
            def __enter__(self):
                with pool._cond:
                    while not pool._free:
                        pool._cond.wait()
                    pool._free.sort()
                    self.slot = pool._free.pop(0)
                return self.slot

            def __exit__(self, *exc):
                with pool._cond:
                    pool._free.append(self.slot)
                    pool._cond.notify()

        return _Ctx()


_SLOTS = _SlotPool(_UID_SLOTS)


def _slot_uid(slot: int) -> int:
    # High uids that no account uses, spread by pid so two pipelines on one machine differ.
    return 2_000_000_000 + (os.getpid() % 100_000) * _UID_SLOTS + slot


# ---------------------------------------------------------------------------- one run


def _memfd(data: bytes, name: str) -> int:
    """A file descriptor holding `data`, positioned at its start (no file on disk)."""
    fd = os.memfd_create(name)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _rlimits(limits: Limits) -> list[tuple[int, int, int]]:
    cpu = limits.cpu_limit_s
    mem = limits.memory_mb << 20
    fsize = limits.max_file_mb << 20
    return [
        (resource.RLIMIT_CPU, cpu, cpu + 1),
        (resource.RLIMIT_AS, mem, mem),
        (resource.RLIMIT_FSIZE, fsize, fsize),
        (resource.RLIMIT_NOFILE, limits.max_open_files, limits.max_open_files),
        (resource.RLIMIT_NPROC, limits.max_processes, limits.max_processes),
        (resource.RLIMIT_CORE, 0, 0),
    ]


def _child_env(workdir: str) -> dict[str, str]:
    return {
        "PATH": SAFE_PATH,
        "HOME": workdir,
        "TMPDIR": workdir,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONIOENCODING": "utf-8",
        "OMP_NUM_THREADS": "1",
        "SCODER_SANDBOX": "1",
    }


# Imported once by the fork server, so programs find them already loaded (as they would in a
# harness that forks from its own process): what generated solutions and tests commonly use.
PRELOAD = (
    "abc", "array", "bisect", "cmath", "collections", "contextlib", "copy", "dataclasses", "datetime",
    "decimal", "enum", "fractions", "functools", "hashlib", "heapq", "io", "itertools", "json", "math",
    "numbers", "operator", "random", "re", "statistics", "string", "struct", "textwrap", "time",
    "traceback", "typing", "unittest",
)


class _Server:
    """The fork server for one `site` setting: started on first use, restarted if it died."""

    def __init__(self, site: bool):
        self.site = site
        self.lock = threading.Lock()
        self.sock: socket.socket | None = None
        self.proc: subprocess.Popen | None = None
        self.owner = -1

    def _start(self) -> None:
        self._stop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        cfg = {"sock_fd": theirs.fileno(), "site": self.site, "preload": list(PRELOAD)}
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-S", BOOT, marshal.dumps(cfg).hex()],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, pass_fds=(theirs.fileno(),),
                start_new_session=True, env=dict(BOOT_ENV), close_fds=True, cwd="/",
            )
        finally:
            theirs.close()
        self.sock, self.owner = ours, os.getpid()

    def _stop(self) -> None:
        if self.sock is not None and self.owner == os.getpid():
            self.sock.close()
            if self.proc is not None:
                with _suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout=2)
        self.sock = self.proc = None

    def spawn(self, job: dict, fds: list[int]) -> tuple[int, int]:
        """Starts one sandbox; returns (pid, pidfd) of its process A."""
        payload = marshal.dumps(job)
        with self.lock:
            for attempt in range(2):
                if self.sock is None or self.owner != os.getpid() or self.proc.poll() is not None:
                    self._start()
                try:
                    socket.send_fds(self.sock, [payload], fds)
                    msg, rfds, _, _ = socket.recv_fds(self.sock, 4096, 1)
                except OSError:
                    msg, rfds = b"", []
                if msg.startswith(b"ok ") and len(rfds) == 1:
                    return int(msg[3:]), rfds[0]
                for fd in rfds:
                    os.close(fd)
                if msg:
                    raise OSError(f"sandbox server refused the job: {msg.decode(errors='replace')}")
                self._start()  # it died: one restart, then give up
            raise OSError("the sandbox server keeps dying")


_SERVERS = {True: _Server(True), False: _Server(False)}


@atexit.register
def _stop_servers() -> None:
    for server in _SERVERS.values():
        with _suppress(Exception):
            server._stop()


def _run(code: str, limits: Limits, stdin: str, iso: Isolation, slot: int) -> Outcome:
    namespaces = iso.mode in ("namespaces", "userns")
    uid = _slot_uid(slot) if iso.mode in ("namespaces", "uid") else None
    host_dir = None
    if namespaces:
        workdir = SANDBOX_WORKDIR
    else:
        host_dir = workdir = tempfile.mkdtemp(prefix="scoder-sandbox-")
        if uid is not None:
            os.chown(workdir, uid, uid)
    nproc = limits.max_processes
    if iso.mode == "none" and os.geteuid() != 0:
        nproc += _count_own_processes()  # RLIMIT_NPROC counts every process of the caller's uid
    job = {
        "mode": iso.mode,
        "uid": uid,
        "gid": uid,
        "workdir": workdir,
        "network": bool(limits.network),
        "site": bool(limits.site),
        "rlimits": [(r, s, h) if r != resource.RLIMIT_NPROC else (r, nproc, nproc) for r, s, h in _rlimits(limits)],
        "env": _child_env(workdir),
        "tmpfs_mb": max(64, 4 * limits.max_file_mb),
        "reveal": list(_reveal(limits.site)) if iso.mode == "namespaces" else [],
    }
    mine: list[int] = []  # our read ends
    theirs: list[int] = []  # the sandbox's ends, closed here once sent
    start = time.monotonic()
    try:
        stdin_fd = _memfd(stdin.encode("utf-8", "surrogateescape"), "sandbox-stdin") if stdin else os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        theirs.append(stdin_fd)
        for _ in range(3):  # stdout, stderr, status
            r, w = os.pipe()
            mine.append(r)
            theirs.append(w)
        theirs.append(_memfd(code.encode("utf-8", "surrogateescape"), "sandbox-src"))
        pid, pidfd = _SERVERS[bool(limits.site)].spawn(job, theirs)
    except OSError as e:
        for fd in mine:
            os.close(fd)
        if host_dir is not None:
            _rmtree(host_dir)
        return Outcome("error", None, "", "", time.monotonic() - start, f"could not start the sandbox: {e}")
    finally:
        for fd in theirs:
            os.close(fd)
    run = _Running(pid, pidfd, *mine, iso, uid, limits, start)
    try:
        return run.finish()
    finally:
        run.close()
        if host_dir is not None:
            _rmtree(host_dir)


class _Running:
    """One started sandbox: captures its output under the cap and the deadline, kills it."""

    def __init__(self, pid, pidfd, out_r, err_r, status_r, iso, uid, limits, start):
        self.pid, self.pidfd, self.out_r, self.err_r, self.status_r = pid, pidfd, out_r, err_r, status_r
        self.iso, self.uid, self.limits, self.start = iso, uid, limits, start
        self.namespaces = iso.mode in ("namespaces", "userns")
        self.status = bytearray()
        self.b_pid = None
        self.b_pidfd = None
        self.out = {out_r: bytearray(), err_r: bytearray()}
        self.total = 0
        self.strays = 0

    def close(self):
        for fd in (self.out_r, self.err_r, self.status_r, self.pidfd, self.b_pidfd):
            if fd is not None:
                os.close(fd)

    def _read_status(self, data: bytes) -> None:
        if len(self.status) < 4096:
            self.status += data
        if self.b_pid is None:
            m = re.match(rb"B (\d+)\n", bytes(self.status))
            if m:
                self.b_pid = int(m.group(1))
                try:
                    self.b_pidfd = os.pidfd_open(self.b_pid)
                except ProcessLookupError:
                    pass

    def _capture(self) -> str | None:
        """Reads until the sandbox exits and its pipes close; "timeout"/"output_limit" if cut."""
        cap = self.limits.max_output_bytes
        deadline = self.start + self.limits.timeout_s
        sel = selectors.DefaultSelector()
        for fd in (*self.out, self.status_r):
            os.set_blocking(fd, False)
            sel.register(fd, selectors.EVENT_READ)
        sel.register(self.pidfd, selectors.EVENT_READ)
        drain_until = None
        try:
            while sel.get_map():
                now = time.monotonic()
                if now >= deadline:
                    return "timeout"
                if drain_until is not None and now >= drain_until:
                    return None  # exited; something we could not kill still holds a pipe
                wait = deadline - now if drain_until is None else min(deadline, drain_until) - now
                for key, _ in sel.select(wait):
                    fd = key.fd
                    if fd == self.pidfd:
                        sel.unregister(fd)
                        if not self.namespaces:
                            self.strays += self._kill_leftovers()  # strays may hold the pipes open
                        drain_until = time.monotonic() + 0.5
                        continue
                    try:
                        data = os.read(fd, 1 << 16)
                    except BlockingIOError:
                        continue
                    if not data:
                        sel.unregister(fd)
                    elif fd == self.status_r:
                        self._read_status(data)
                    else:
                        room = cap - self.total
                        self.total += len(data)
                        if room > 0:
                            self.out[fd] += data[:room]
                        if self.total > cap:
                            return "output_limit"
            return None
        finally:
            sel.close()

    def _drain_status(self) -> None:
        os.set_blocking(self.status_r, False)
        while True:
            try:
                data = os.read(self.status_r, 4096)
            except OSError:
                return
            if not data:
                return
            self._read_status(data)

    def _kill(self) -> None:
        """Kills everything the program started, and waits until it is gone."""
        self._drain_status()
        if self.b_pidfd is not None:
            # Killing B (pid 1 of the namespace) tears the namespace down; A reaps B and exits.
            with _suppress(ProcessLookupError):
                signal.pidfd_send_signal(self.b_pidfd, signal.SIGKILL)
            _wait_fd(self.b_pidfd, 2.0)
        elif not self.namespaces:
            self._kill_leftovers()
        if not _wait_fd(self.pidfd, 0.0):
            # A is alive (so its pid, which is also its process group, is still its own)
            with _suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
            with _suppress(ProcessLookupError):
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
        _wait_fd(self.pidfd, 2.0)
        self._drain_status()
        if self.b_pidfd is not None:
            _wait_fd(self.b_pidfd, 2.0)
        if not self.namespaces:
            self._kill_leftovers()

    def _kill_leftovers(self) -> int:
        """uid / none modes: kills what is left of the program -- A's descendants (A is a child
        subreaper, so orphans stay in its tree) and, in uid mode, every process of the slot uid."""
        n = _kill_matching(lambda pid: _descends_from(pid, self.pid), exclude=(self.pid,))
        if self.uid is not None:
            n += _kill_matching(lambda pid: _proc_uid(pid) == self.uid)
        return n

    def finish(self) -> Outcome:
        stop = self._capture()
        if stop is not None:
            self._kill()
        else:
            _wait_fd(self.pidfd, 2.0)
            self._drain_status()
            if not self.namespaces:
                self.strays += self._kill_leftovers()
        strays = self.strays
        wall = time.monotonic() - self.start
        stdout = self.out[self.out_r].decode("utf-8", "replace")
        stderr = self.out[self.err_r].decode("utf-8", "replace")
        lim = self.limits

        def outcome(status, code, reason=""):
            return Outcome(status, code, stdout, stderr, round(wall, 4), reason)

        if stop == "timeout":
            return outcome("timeout", None, f"wall-clock limit of {lim.timeout_s:g}s exceeded; killed")
        if stop == "output_limit":
            return outcome("output_limit", None, f"output exceeded {lim.max_output_bytes} bytes; killed")
        final = None
        for line in self.status.decode("utf-8", "replace").splitlines():
            if line.split(" ", 1)[0] in ("exit", "signal", "error"):
                final = line
        if final is None:
            return outcome("killed", None, "the sandbox died without reporting a status")
        if final.startswith("error"):
            return outcome("error", None, f"sandbox setup failed: {final[6:]}")
        kind, num, cpu, reported_strays = final.split()
        num, cpu = int(num), float(cpu)
        strays = max(strays, int(reported_strays))
        stray_note = f"; left {strays} process(es) running (killed)" if strays else ""
        if kind == "signal":
            name = _signame(num)
            if num == signal.SIGXCPU or (num == signal.SIGKILL and cpu >= lim.cpu_limit_s - 0.05):
                return outcome("timeout", -num, f"CPU time limit of {lim.cpu_limit_s}s exceeded ({name})" + stray_note)
            return outcome("killed", -num, f"killed by {name}" + stray_note)
        if num == 125 and stderr.startswith("sandbox: child setup failed"):
            return outcome("error", num, stderr.strip().splitlines()[0][9:])
        if num == 0:
            if strays:
                return outcome("failed", 0, "exited 0 but" + stray_note[1:])
            return outcome("passed", 0)
        if _is_memory_error(stderr):
            return outcome("memory", num, f"memory limit of {lim.memory_mb} MB exceeded (MemoryError)" + stray_note)
        last = (stderr.strip().splitlines() or [""])[-1][:200]
        return outcome("failed", num, f"exit code {num}" + (f": {last}" if last else "") + stray_note)


# ---------------------------------------------------------------------------- helpers


class _suppress:
    def __init__(self, *exc):
        self.exc = exc

    def __enter__(self):
        return self

    def __exit__(self, typ, value, tb):
        return typ is not None and issubclass(typ, self.exc)


def _wait_fd(fd: int, timeout: float) -> bool:
    """Whether `fd` (a pidfd: the process exited) becomes readable within `timeout` seconds."""
    sel = selectors.DefaultSelector()
    try:
        sel.register(fd, selectors.EVENT_READ)
        return bool(sel.select(timeout))
    finally:
        sel.close()


def _signame(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


def _is_memory_error(stderr: str) -> bool:
    lines = stderr.strip().splitlines()
    return bool(lines) and re.match(r"(\w+\.)*MemoryError\b", lines[-1]) is not None


def _pids() -> list[int]:
    return [int(n) for n in os.listdir("/proc") if n.isdigit()]


def _proc_uid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"Uid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _ppid(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def _descends_from(pid: int, root: int) -> bool:
    for _ in range(64):
        pid = _ppid(pid)
        if pid == root:
            return True
        if pid <= 1:
            return False
    return False


def _count_own_processes() -> int:
    me = os.getuid()
    return sum(1 for pid in _pids() if _proc_uid(pid) == me)


def _kill_matching(match, exclude=()) -> int:
    """SIGKILLs every process `match` accepts until none is left (a fork race needs rounds)."""
    killed: set[int] = set()
    for _ in range(100):
        found = [pid for pid in _pids() if pid not in exclude and match(pid)]
        found = [pid for pid in found if not _is_zombie(pid)]
        if not found:
            break
        for pid in found:
            with _suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
            killed.add(pid)
        time.sleep(0.005)
    return len(killed)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")
    except (OSError, IndexError):
        return True


def _rmtree(path: str) -> None:
    def onerror(func, p, exc):
        with _suppress(OSError):
            os.chmod(os.path.dirname(p), 0o700)
            os.chmod(p, 0o700)
            func(p)

    shutil.rmtree(path, onerror=onerror)
