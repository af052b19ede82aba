"""One sandboxed process, from start to verdict: the client of the trusted fork server
(`_sandbox_boot.py`, run by file path) that starts each program, `_Running` that captures its
output under the cap and the deadline, kills everything it left and turns its exit into an
`Outcome`, and the /proc helpers that find and kill leftovers.

Used by `execution`, which picks the isolation, limits and environment of each run.
"""

from __future__ import annotations

import atexit
import marshal
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from scoder_jax.score.sandbox_types import Outcome

BOOT = str(Path(__file__).with_name("_sandbox_boot.py"))
SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
BOOT_ENV = {"PATH": SAFE_PATH, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}


# ---------------------------------------------------------------------------- fork server

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
            for _attempt in range(2):
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


# ---------------------------------------------------------------------------- one started sandbox


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
