"""Helpers for tests that start several processes or reuse a smoke run."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a JAX coordinator)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def copy_through_s0(finished_run, run):
    """A copy of a finished smoke run as it stood when S_0 was trained (pool, seed set, S_0): a
    later run from it reruns only what comes after (tests of resumes and of the loop's options)."""
    import json
    import shutil
    from pathlib import Path

    finished_run, run = Path(finished_run), Path(run)
    shutil.copytree(finished_run, run)
    m = json.loads((run / "manifest.json").read_text())
    for name in list(m["stages"]):
        if name not in {"pool", "seed", "sft_00"}:
            shutil.rmtree(run / m["stages"][name]["out"], ignore_errors=True)
            del m["stages"][name]
    (run / "manifest.json").write_text(json.dumps(m))
    (run / "report.html").unlink(missing_ok=True)
    return run
