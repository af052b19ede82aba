"""The execution sandbox: ordinary programs, limits, and hostile programs it must contain.

Every hostile program re-executes itself as a Python process whose command line carries a
unique marker, so the test can scan /proc afterwards for anything of it still running.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
import uuid

import pytest
from click.testing import CliRunner

from scoder_jax.errors import ConfigError
from scoder_jax.score import execution, sandbox_process, sandbox_types
from scoder_jax.score.execution import isolation, network_isolation_available, run_many, run_python
from scoder_jax.score.sandbox_types import Limits, Outcome
from tests.sandbox_support import unavailable

HOSTILE = Limits(timeout_s=2.0, memory_mb=256)


def _alive_with(marker: str) -> list[int]:
    """Pids of live (non-zombie) processes whose command line contains `marker`."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if marker.encode() in cmd:
            found.append(int(name))
    return found


def _wrap(body: str, marker: str) -> str:
    """A program that becomes a python process running `body`, with `marker` in its argv."""
    return f"import os, sys\nos.execv(sys.executable, [sys.executable, '-S', '-c', {body!r}, {marker!r}])\n"


@pytest.fixture
def marker():
    m = f"scoder-sandbox-test-{uuid.uuid4().hex}"
    yield m
    left = _alive_with(m)
    for pid in left:  # do not leave them behind even when the test fails
        try:
            os.kill(pid, 9)
        except OSError:
            pass
    assert not left, f"processes of the sandboxed program still running: {left}"


def _run_contained(body: str, marker: str, limits: Limits = HOSTILE) -> Outcome:
    t = time.monotonic()
    out = run_python(_wrap(body, marker), limits=limits)
    elapsed = time.monotonic() - t
    assert elapsed <= limits.timeout_s + 1.0, (elapsed, out)
    assert out.wall_s <= limits.timeout_s + 1.0
    assert not out.passed, out
    assert not _alive_with(marker), "left running"
    # the calling pipeline carries on
    assert run_python("print('still fine')", limits=HOSTILE).stdout == "still fine\n"
    return out


def _need_strong_isolation():
    if isolation().mode not in ("namespaces", "userns", "uid"):
        unavailable(f"hostile programs need uid separation; this machine gives '{isolation().mode}'")


# ---------------------------------------------------------------------------- ordinary programs


def test_passed_program_captures_stdout_stderr_and_stdin():
    out = run_python("import sys\ns = sys.stdin.read()\nprint(s.upper())\nprint('note', file=sys.stderr)",
                     stdin="hello")
    assert out.status == "passed" and out.passed and out.exit_code == 0 and out.reason == ""
    assert out.stdout == "HELLO\n" and out.stderr == "note\n"
    assert 0 < out.wall_s < 5


def test_failures_keep_exit_code_and_traceback():
    out = run_python("def f():\n    raise ValueError('boom')\nf()\n")
    assert out.status == "failed" and out.exit_code == 1
    assert "ValueError: boom" in out.reason
    assert 'main.py", line 3' in out.stderr and "_sandbox_boot" not in out.stderr
    assert run_python("import sys; sys.exit(7)").exit_code == 7
    assert run_python("raise SystemExit('bye')").stderr == "bye\n"
    assert run_python("def (:\n").status == "failed"
    assert run_python("assert 1 + 1 == 3").status == "failed"


def test_program_semantics_atexit_threads_and_fresh_random_state():
    out = run_python(
        "import atexit, threading, time\natexit.register(print, 'atexit')\n"
        "threading.Thread(target=lambda: (time.sleep(0.1), print('thread'))).start()\nprint('main')\n"
    )
    assert out.passed and out.stdout == "main\nthread\natexit\n"
    draws = {run_python("import random; print(random.random())").stdout for _ in range(3)}
    assert len(draws) == 3
    assert run_python("print(__name__, __file__.endswith('main.py'))").stdout == "__main__ True\n"


def test_environment_is_scrubbed(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-parent-secret")
    monkeypatch.setenv("HF_TOKEN", "hf_parent_secret")
    out = run_python("import os, json; print(json.dumps(dict(os.environ))); print(os.getcwd())")
    env_line, cwd = out.stdout.splitlines()
    env = json.loads(env_line)
    assert "OPENAI_API_KEY" not in env and "HF_TOKEN" not in env and "secret" not in out.stdout
    assert env["HOME"] == cwd == env["TMPDIR"]
    assert set(env) <= {"PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "PYTHONHASHSEED", "PYTHONDONTWRITEBYTECODE",
                        "PYTHONIOENCODING", "OMP_NUM_THREADS", "SCODER_SANDBOX"}


def test_site_packages_only_when_asked():
    code = "import click; print('ok')"
    assert "ModuleNotFoundError" in run_python(code).stderr
    assert run_python(code, limits=Limits(site=True)).stdout == "ok\n"


def test_limits_are_validated():
    for bad in (dict(timeout_s=0), dict(memory_mb=10), dict(max_processes=0), dict(isolation="chroot"),
                dict(cpu_s=-1), dict(max_open_files=3)):
        with pytest.raises(ConfigError):
            Limits(**bad)
    assert Limits(timeout_s=2.5).cpu_limit_s == 4 and Limits(cpu_s=1.2).cpu_limit_s == 2


def test_run_many_keeps_order():
    outs = run_many([f"print({i} * {i})" for i in range(12)], limits=HOSTILE, workers=3)
    assert [o.stdout for o in outs] == [f"{i * i}\n" for i in range(12)]
    assert run_many([]) == []


# ---------------------------------------------------------------------------- limits


def test_output_cap_keeps_exactly_the_first_bytes():
    out = run_python("import sys\nsys.stdout.write('a' * 5000)\nsys.stdout.flush()\nimport time; time.sleep(5)",
                     limits=Limits(timeout_s=5, max_output_bytes=1000))
    # 5000 bytes > cap: killed as soon as the cap is crossed, not after the sleep
    assert out.status == "output_limit" and out.stdout == "a" * 1000 and out.wall_s < 4


def test_file_size_open_files_processes_and_cpu_limits():
    big = run_python("open('big', 'wb').write(b'x' * (3 << 20))", limits=Limits(max_file_mb=1))
    assert big.status == "failed" and "File too large" in big.stderr
    files = run_python("fs = [open('f%d' % i, 'w') for i in range(100)]", limits=Limits(max_open_files=32))
    assert files.status == "failed" and "Too many open files" in files.stderr
    procs = run_python(
        "import os, time\nfor i in range(20):\n    if os.fork() == 0:\n        time.sleep(3); os._exit(0)\n",
        limits=Limits(max_processes=5, timeout_s=5),
    )
    assert procs.status == "failed" and "Resource temporarily unavailable" in procs.stderr
    cpu = run_python("while True: pass", limits=Limits(timeout_s=8, cpu_s=1))
    assert cpu.status == "timeout" and "CPU" in cpu.reason and cpu.wall_s < 5


def test_memory_limit():
    out = run_python("x = bytearray(600 << 20)", limits=Limits(memory_mb=256))
    assert out.status == "memory" and "256 MB" in out.reason
    assert run_python("x = bytearray(100 << 20); print(len(x))", limits=Limits(memory_mb=256)).passed


def test_network_limit_can_be_lifted():
    if not network_isolation_available():
        unavailable("no network namespace on this machine")
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        code = f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=2).close(); print('ok')"
        assert run_python(code, limits=Limits(network=True)).stdout == "ok\n"
        assert run_python(code).status == "failed"


# ---------------------------------------------------------------------------- hostile programs


def test_infinite_loop(marker):
    assert _run_contained("while True: pass", marker).status == "timeout"


def test_long_sleep(marker):
    out = _run_contained("import time; time.sleep(1000)", marker)
    assert out.status == "timeout" and out.exit_code is None


def test_fork_bomb(marker):
    _need_strong_isolation()
    body = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    assert _run_contained(body, marker).status in ("timeout", "failed", "killed")


def test_memory_bomb(marker):
    assert _run_contained("x = []\nwhile True:\n    x.append(bytearray(1 << 24))\n", marker).status == "memory"


def test_stdout_flood_of_one_gigabyte(marker):
    body = "import os\nb = b'x' * (1 << 20)\nfor _ in range(1024):\n    os.write(1, b)\n"
    out = _run_contained(body, marker)
    assert out.status == "output_limit" and len(out.stdout) == HOSTILE.max_output_bytes


def test_writing_outside_its_directory(marker, tmp_path):
    _need_strong_isolation()
    outside = tmp_path / "escape.txt"
    tries = [f"/var/tmp/{marker}", f"/dev/shm/{marker}", f"/root/{marker}", str(tmp_path / "also.txt")]
    body = (
        f"for p in {tries!r}:\n    try:\n        open(p, 'w').write('pwned')\n    except OSError as e:\n"
        f"        print(p, e)\nopen({str(outside)!r}, 'w').write('pwned')\n"
    )
    out = _run_contained(body, marker)
    assert out.status == "failed"
    for p in [str(outside), *tries]:
        assert not os.path.exists(p), p


def test_reading_the_parents_secrets(marker, monkeypatch):
    secret = uuid.uuid4().hex
    monkeypatch.setenv("SCODER_TEST_API_KEY", secret)
    body = (
        "import os, sys\nfound = [v for k, v in os.environ.items() if 'API_KEY' in k]\n"
        "for pid in os.listdir('/proc'):\n    try:\n        env = open(f'/proc/{pid}/environ', 'rb').read()\n"
        "    except OSError:\n        continue\n"
        "    found += [e.decode() for e in env.split(b'\\0') if b'API_KEY' in e]\n"
        "print(found)\nsys.exit(0 if found else 1)\n"
    )
    out = _run_contained(body, marker)
    assert out.status == "failed" and secret not in out.stdout + out.stderr


def test_opening_a_network_connection(marker):
    if not network_isolation_available():
        unavailable("no network namespace on this machine")
    with socket.create_server(("0.0.0.0", 0)) as server:
        port = server.getsockname()[1]
        hosts = ["127.0.0.1"]
        try:
            hosts += sorted({ai[4][0] for ai in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)})
        except OSError:
            pass
        body = (
            f"import socket, sys\nfor h in {hosts!r}:\n    try:\n"
            f"        socket.create_connection((h, {port}), timeout=1)\n        print('connected', h)\n"
            f"        sys.exit(0)\n    except OSError as e:\n        print('blocked', h, e)\nsys.exit(1)\n"
        )
        out = _run_contained(body, marker)
        assert out.status == "failed" and "connected" not in out.stdout
        server.setblocking(False)
        with pytest.raises(BlockingIOError):
            server.accept()


def test_killing_its_parent(marker):
    _need_strong_isolation()
    body = (
        f"import os, signal\nfor pid in (os.getppid(), {os.getpid()}, 1, -1):\n    try:\n"
        f"        os.kill(pid, signal.SIGKILL)\n    except OSError as e:\n        print(pid, e)\n"
        f"os.killpg(0, signal.SIGKILL)\n"
    )
    out = _run_contained(body, marker)
    assert out.status in ("failed", "killed")


def test_daemonized_grandchildren(marker):
    _need_strong_isolation()
    body = (
        "import os, sys\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        "        os.execv(sys.executable, [sys.executable, '-S', '-c', 'import time; time.sleep(1000)', sys.argv[1]])\n"
        "    os._exit(0)\nos.wait()\nprint('daemonized')\n"
    )
    out = _run_contained(body, marker)
    assert out.status == "failed" and out.exit_code == 0 and "left" in out.reason
    assert out.stdout == "daemonized\n"


def test_ignoring_sigterm_and_sigalrm(marker):
    body = (
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "signal.signal(signal.SIGALRM, signal.SIG_IGN)\nsignal.alarm(1)\nwhile True:\n    time.sleep(0.05)\n"
    )
    assert _run_contained(body, marker).status == "timeout"


def test_hostile_programs_side_by_side_on_the_worker_pool(marker):
    """A fork bomb in one worker must not starve the others (each worker has its own uid)."""
    _need_strong_isolation()
    bomb = _wrap("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n", marker)
    flood = _wrap("import os\nwhile True:\n    os.write(1, b'y' * 65536)\n", marker)
    forker = ("import os\nfor _ in range(5):\n    pid = os.fork()\n    if pid == 0:\n        os._exit(0)\n"
              "    os.waitpid(pid, 0)\nprint('forked')\n")
    programs = [bomb, forker, flood, forker, forker, "print('plain')", forker]
    t = time.monotonic()
    outs = run_many(programs, limits=HOSTILE, workers=3)
    assert time.monotonic() - t < 3 * (HOSTILE.timeout_s + 1)
    assert outs[0].status in ("timeout", "failed", "killed") and outs[2].status == "output_limit"
    assert [o.stdout for i, o in enumerate(outs) if i in (1, 3, 4, 6)] == ["forked\n"] * 4
    assert outs[5].stdout == "plain\n"


# ---------------------------------------------------------------------------- isolation modes


def test_auto_isolation_is_reported_consistently():
    iso = isolation()
    assert iso.mode in sandbox_types.MODES
    assert network_isolation_available() == iso.network_isolated
    if iso.mode in ("namespaces", "userns"):
        out = run_python("import os\nprint(os.getpid(), sorted(p for p in os.listdir('/proc') if p.isdigit()))")
        assert out.stdout == "2 ['1', '2']\n"  # its own pid namespace: only B (init) and itself
    if os.geteuid() == 0 and iso.uid_separated:
        assert run_python("import os; print(os.getuid())").stdout != "0\n"


def test_user_namespace_mode(marker):
    try:
        isolation("userns")
    except sandbox_types.SandboxError as e:
        unavailable(f"no unprivileged user namespaces here: {e}")
    limits = Limits(timeout_s=2, memory_mb=256, isolation="userns")
    out = run_python("import os, socket\nprint(os.getpid())\nsocket.create_connection(('127.0.0.1', 9), timeout=1)",
                     limits=limits)
    assert out.status == "failed" and out.stdout == "2\n"
    body = ("import os, sys\nif os.fork() == 0:\n    os.setsid()\n    os.execv(sys.executable, [sys.executable, '-S', "
            "'-c', 'import time; time.sleep(1000)', sys.argv[1]])\nprint('left one')\n")
    out = _run_contained(body, marker, limits)
    assert "left" in out.reason


def test_no_isolation_mode_warns_and_still_cleans_up(marker, caplog):
    execution._isolation.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="scoder_jax.score.execution"):
            iso = isolation("none")
        assert not iso.network_isolated and not iso.uid_separated
        assert "NO NETWORK ISOLATION" in caplog.text and "NO PROCESS SEPARATION" in caplog.text
        limits = Limits(timeout_s=2, memory_mb=256, isolation="none")
        assert run_python("print(6 * 7)", limits=limits).stdout == "42\n"
        body = ("import os, sys\nif os.fork() == 0:\n    os.setsid()\n    os.execv(sys.executable, [sys.executable, "
                "'-S', '-c', 'import time; time.sleep(1000)', sys.argv[1]])\nprint('left one')\n")
        assert "left" in _run_contained(body, marker, limits).reason
        assert _run_contained("import time; time.sleep(100)", marker, limits).status == "timeout"
    finally:
        execution._isolation.cache_clear()


# ---------------------------------------------------------------------------- CLI


def test_cli_sandbox_run(tmp_path):
    from scoder_jax.cli import cli

    prog = tmp_path / "prog.py"
    prog.write_text("print('hi')\n")
    res = CliRunner().invoke(cli, ["sandbox", "run", str(prog), "--timeout", "2", "--memory", "256"])
    assert res.exit_code == 0, res.output
    rec = json.loads(res.output.strip().splitlines()[-1])
    assert rec["status"] == "passed" and rec["stdout"] == "hi\n" and rec["passed"] is True
    assert rec["isolation"] == isolation().mode

    prog.write_text("import time; time.sleep(10)\n")
    t = time.monotonic()
    res = CliRunner().invoke(cli, ["sandbox", "run", str(prog), "--timeout", "1", "--memory", "256"])
    assert res.exit_code == 1 and time.monotonic() - t < 2.5
    assert json.loads(res.output.strip().splitlines()[-1])["status"] == "timeout"

    res = CliRunner().invoke(cli, ["sandbox", "run", str(prog), "--memory", "8"])
    assert res.exit_code != 0 and "memory_mb" in str(res.exception or res.output)

    res = CliRunner().invoke(cli, ["sandbox", "info"])
    assert res.exit_code == 0 and json.loads(res.output)["mode"] == isolation().mode


def test_cli_entry_point_prints_json(tmp_path):
    import subprocess

    prog = tmp_path / "prog.py"
    prog.write_text("import sys; print('x'); sys.exit(3)\n")
    res = subprocess.run([sys.executable, "-m", "scoder_jax.cli", "sandbox", "run", str(prog), "--timeout", "5",
                          "--memory", "256"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    rec = json.loads(res.stdout.strip().splitlines()[-1])
    assert rec["status"] == "failed" and rec["exit_code"] == 3 and rec["stdout"] == "x\n"


def _processes_of_uid(uid: int) -> list[int]:
    return [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc"))) if sandbox_process._proc_uid(pid) == uid]


def test_uid_mode_kills_everything_of_the_slot_uid():
    """'uid' isolation (root without namespaces) is not selectable where the interpreter sits
    under a 0700 home, so drive it directly with programs that need only preloaded modules."""
    if os.geteuid() != 0:
        unavailable("uid isolation needs root")
    iso = execution._describe("uid")
    limits = Limits(timeout_s=2, memory_mb=256, isolation="uid")
    slot = execution._UID_SLOTS - 1
    uid = execution._slot_uid(slot)
    daemon = ("import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
              "        time.sleep(1000)\n    os._exit(0)\nos.wait()\nprint(os.getuid())\n")
    out = execution._run(daemon, limits, "", iso, slot)
    assert out.status == "failed" and "left" in out.reason and out.stdout == f"{uid}\n"
    assert not _processes_of_uid(uid)
    t = time.monotonic()
    out = execution._run(daemon.replace("print(os.getuid())", "time.sleep(1000)"), limits, "", iso, slot)
    assert out.status == "timeout" and time.monotonic() - t < limits.timeout_s + 1
    assert not _processes_of_uid(uid)
    out = execution._run("import os; os.kill(os.getppid(), 9)", limits, "", iso, slot)
    assert out.status == "failed" and "PermissionError" in out.stderr


def test_fork_server_is_restarted_after_it_dies():
    assert run_python("print(1)").passed
    server = sandbox_process._SERVERS[False]
    server.proc.kill()
    server.proc.wait()
    out = run_python("print(2)")
    assert out.passed and out.stdout == "2\n"
