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
                The interpreter's own directories (executable, prefixes, sys.path) are bound
                back read-only at their own paths where the private /tmp or a parent the
                sandbox uid may not search (a pyenv under /root, mode 0700) would hide them,
                so a venv in a clone under /tmp works; the rest of such a parent stays hidden.
    userns      non-root with unprivileged user namespaces: the same, with the caller's uid
                mapped into the namespace and all capabilities dropped.
    uid         root without namespaces: per-worker uid (processes, signals, files), leftovers
                killed by uid. No network isolation (logged as a warning). With no mount
                namespace it needs an interpreter every uid can reach; its probe names the
                directory in the way otherwise.
    none        plain subprocess, same uid as the caller; leftovers are found as descendants
                of the sandbox's child-subreaper process. No network isolation, and the program
                can signal the caller and write wherever the caller can (logged as a warning).

`scoder sandbox info` prints the mode "auto" picks here and why each stronger one failed its
self-test. `SCODER_REQUIRE_ISOLATION=<mode>` makes "auto" refuse anything weaker (CI sets it).

Programs are forked from a trusted fork server (`_sandbox_boot.py`) that has the commonly
used stdlib modules imported and never runs untrusted code itself: a fresh process per
program without paying interpreter start-up each time.

`run_python` never raises for anything the program does; the `Outcome` says what happened.

This module picks the isolation and builds each run (limits, environment, working directory);
`sandbox_types` holds `Limits`, `Outcome`, `Isolation` and `SandboxError`, and `sandbox_process`
the fork-server client and the watch over one started sandbox (capture, kill, verdict).
"""

from __future__ import annotations

import functools
import logging
import os
import resource
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

from scoder_jax.score.sandbox_process import _SERVERS, SAFE_PATH, _count_own_processes, _rmtree, _Running
from scoder_jax.errors import ConfigError
from scoder_jax.score.sandbox_types import _ISOLATION_DETAIL, MODES, Isolation, Limits, Outcome, SandboxError

log = logging.getLogger(__name__)

SANDBOX_WORKDIR = "/tmp/scoder-sandbox"  # inside the private /tmp tmpfs (namespace modes)
_UID_SLOTS = 1024


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
    mode raises `SandboxError` if it does not work here. With `SCODER_REQUIRE_ISOLATION` set
    to a mode, "auto" raises `SandboxError` where only a weaker one works (CI sets it, so a
    machine that lost its isolation fails instead of running the sandbox tests half-armed).
    """
    with _PROBE_LOCK:
        iso = _isolation(requested)
    if requested == "auto":
        _check_required(iso)
    return iso


def required_isolation() -> str | None:
    """The weakest mode "auto" may pick, from `SCODER_REQUIRE_ISOLATION` (unset or empty: any)."""
    want = os.environ.get(REQUIRE_ENV, "").strip()
    if not want:
        return None
    if want not in MODES or want == "none":
        raise ConfigError(f"{REQUIRE_ENV} must be one of namespaces, userns, uid (the weakest sandbox isolation "
                          f"to accept) or empty, got {want!r}")
    return want


def _check_required(iso: Isolation) -> None:
    want = required_isolation()
    if want is not None and MODES.index(iso.mode) > MODES.index(want):
        why = "; ".join(iso.unavailable) or "not tried"
        raise SandboxError(f"sandbox isolation is '{iso.mode}' but {REQUIRE_ENV}={want} asks for '{want}' or "
                           f"stronger ({why})")


# ---------------------------------------------------------------------------- isolation probe

REQUIRE_ENV = "SCODER_REQUIRE_ISOLATION"
_PROBE_LOCK = threading.Lock()
_PROBE = """
import os, sys


def blocked(path):
    # why this uid cannot reach `path`: the first directory on the way it may not search
    cur = "/"
    for comp in os.path.realpath(path).strip("/").split("/")[:-1]:
        cur = os.path.join(cur, comp)
        if not os.access(cur, os.X_OK):
            try:
                how = "mode %o" % (os.stat(cur).st_mode & 0o7777)
            except OSError as e:
                how = e.strerror
            return " (uid %d may not search %s, %s)" % (os.getuid(), cur, how)
    return ""


# the interpreter's own files must be reachable (the server preloads some modules, not all),
# and programs must be able to start it again (subprocess.run([sys.executable, ...]))
for exe in (sys.executable, os.path.realpath(sys.executable)):
    assert os.access(exe, os.X_OK), "cannot execute " + exe + blocked(exe)
os.listdir(os.path.dirname(os.__file__))
import _bz2, socket, subprocess, zipfile
run = subprocess.run([sys.executable, "-I", "-S", "-c", "import encodings, _bz2"], capture_output=True)
assert run.returncode == 0, "the interpreter does not start: " + run.stderr.decode(errors="replace")[-200:]
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
            return _warn_if_weak(_describe(mode, tuple(errors)))
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
            "signal the caller and write any file it can%s.", os.geteuid(),
            "; as root the process limit (RLIMIT_NPROC) does not hold either" if os.geteuid() == 0 else "",
        )
    return iso


def _describe(mode: str, unavailable: tuple[str, ...] = ()) -> Isolation:
    return Isolation(
        mode=mode,
        network_isolated=mode in ("namespaces", "userns"),
        uid_separated=mode != "none",
        detail=_ISOLATION_DETAIL[mode],
        unavailable=unavailable,
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
        out = _run(f"mode = {mode!r}\n" + _PROBE, limits, "", iso, slot)
    if out.passed and out.stdout.strip() == "ok":
        return ""
    return f"{out.status}: {out.reason or (out.stderr.strip().splitlines() or [''])[-1]}"[:400]


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
    }
    mine: list[int] = []  # our read ends
    theirs: list[int] = []  # the sandbox's ends, closed here once sent
    start = time.monotonic()
    try:
        stdin_fd = (_memfd(stdin.encode("utf-8", "surrogateescape"), "sandbox-stdin") if stdin
                    else os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
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
