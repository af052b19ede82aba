"""Helpers for tests that start several processes or reuse a smoke run."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a JAX coordinator)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def copy_run(finished_run, run):
    """A copy of a finished run: a rerun of it with overrides redoes only the stages they feed."""
    import shutil
    from pathlib import Path

    shutil.copytree(finished_run, run)
    return Path(run)


def copy_through_s0(finished_run, run):
    """A copy of a finished smoke run as it stood when S_0 was trained (pool, seed set, S_0): a
    later run from it reruns only what comes after (tests of resumes and of the loop's options)."""
    import json
    import shutil

    run = copy_run(finished_run, run)
    m = json.loads((run / "manifest.json").read_text())
    for name in list(m["stages"]):
        if name not in {"pool", "seed", "sft_00"}:
            shutil.rmtree(run / m["stages"][name]["out"], ignore_errors=True)
            del m["stages"][name]
    (run / "manifest.json").write_text(json.dumps(m))
    (run / "report.html").unlink(missing_ok=True)
    return run


def wait_until_running(run, stage: str, procs, after_s: float, timeout: float = 900.0) -> None:
    """Polls `run`'s manifest until `stage` has been running for `after_s` seconds, one of the
    processes `procs` ended, or `timeout` passed (the caller checks which)."""
    import json
    import time
    from pathlib import Path

    manifest = Path(run) / "manifest.json"
    deadline = time.time() + timeout
    while time.time() < deadline and all(p.poll() is None for p in procs):
        try:
            entry = json.loads(manifest.read_text())["stages"].get(stage, {})
        except (json.JSONDecodeError, FileNotFoundError):
            entry = {}
        if entry.get("status") == "running" and time.time() - entry.get("started", 0) > after_s:
            return
        time.sleep(0.3)
