"""The sandbox's isolated modes wherever the interpreter lives: a venv under /tmp (hidden by the
sandbox's private /tmp) whose base interpreter may sit under a 0700 home; and the variable that
turns a weaker isolation into an error."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from scoder_jax.errors import ConfigError
from scoder_jax.score import execution
from scoder_jax.score.sandbox_types import SandboxError
from tests.sandbox_support import unavailable

REPO = Path(__file__).resolve().parents[1]

# Runs under the venv's interpreter: every isolated mode this machine has, with that interpreter.
_CHECK = r"""
import json, os, sys
from scoder_jax.score import execution
from scoder_jax.score.sandbox_types import Limits

modes = {"namespaces": os.geteuid() == 0, "userns": True}
report = {"auto": execution.isolation("auto").mode, "modes": {}, "uid_probe": execution._probe("uid")}
program = '''
import json, os, subprocess, sys
try:
    open(os.path.join(sys.prefix, "pwned"), "w")
    wrote = True
except OSError:
    wrote = False
again = subprocess.run([sys.executable, "-c", "import sys; print(sys.prefix)"], capture_output=True, text=True)
import sbx_probe_mod
print(json.dumps({"uid": os.getuid(), "pid": os.getpid(), "prefix": sys.prefix, "wrote": wrote,
                  "again": again.stdout.strip(), "mod": sbx_probe_mod.VALUE}))
'''
for mode, possible in modes.items():
    try:
        execution.isolation(mode)
    except Exception as e:
        report["modes"][mode] = {"error": str(e), "possible": possible}
        continue
    out = execution.run_python(program, limits=Limits(timeout_s=20, site=True, isolation=mode))
    report["modes"][mode] = {"outcome": out.to_dict()}
print(json.dumps(report))
"""


@pytest.fixture
def under_tmp():
    """A fresh directory right under /tmp (mode 0700), whatever pytest's --basetemp says."""
    path = Path(tempfile.mkdtemp(prefix="scoder-sbx-test-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _venv_under_tmp(tmp_path: Path) -> Path:
    """A venv (no pip) in a clone-like directory under `tmp_path`."""
    venv = tmp_path / "clone" / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    (site,) = (venv / "lib").glob("python*/site-packages")
    (site / "sbx_probe_mod.py").write_text("VALUE = 'from the venv'\n")
    return venv


def test_isolated_modes_work_with_a_venv_under_tmp(under_tmp):
    venv = _venv_under_tmp(under_tmp)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "VIRTUAL_ENV")}
    env["PYTHONPATH"] = str(REPO)  # scoder_jax itself (stdlib only on this path); not the servers' path
    res = subprocess.run([str(venv / "bin" / "python"), "-c", _CHECK], capture_output=True, text=True, env=env,
                         timeout=300, cwd="/")
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads(res.stdout.strip().splitlines()[-1])
    ran = 0
    for mode, got in report["modes"].items():
        if "error" in got:
            assert not got["possible"] or mode == "userns", got  # root always has the namespaces mode
            continue
        ran += 1
        out = got["outcome"]
        assert out["passed"], (mode, out)
        seen = json.loads(out["stdout"])
        assert seen["prefix"] == str(venv) and seen["again"] == str(venv), seen  # the venv, re-executable
        assert seen["mod"] == "from the venv" and seen["pid"] == 2 and not seen["wrote"], seen
        assert not (venv / "pwned").exists()
        if mode == "namespaces":
            assert seen["uid"] != 0
    if not ran:
        unavailable(f"no namespace isolation on this machine: {report['modes']}")
    if os.geteuid() == 0:
        assert report["auto"] == "namespaces", report
        # 'uid' mode has no mount namespace: it cannot reach the venv, and says which directory blocks it
        assert "may not search" in report["uid_probe"], report["uid_probe"]


def test_required_isolation_turns_a_weaker_mode_into_an_error(monkeypatch):
    weak = execution._describe("none", ("namespaces: failed: cannot execute /x/python",))
    monkeypatch.setattr(execution, "_isolation", lambda requested: weak)
    monkeypatch.delenv(execution.REQUIRE_ENV, raising=False)
    assert execution.isolation().mode == "none"
    monkeypatch.setenv(execution.REQUIRE_ENV, "uid")
    with pytest.raises(SandboxError, match=r"'none' but SCODER_REQUIRE_ISOLATION=uid .*cannot execute /x/python"):
        execution.isolation()
    assert execution.isolation("none").mode == "none"  # a mode asked for by name is the caller's choice
    from scoder_jax.cli import cli

    res = CliRunner().invoke(cli, ["sandbox", "info"])
    assert isinstance(res.exception, SandboxError) and "SCODER_REQUIRE_ISOLATION" in str(res.exception)
    monkeypatch.setattr(execution, "_isolation", lambda requested: execution._describe("userns"))
    assert execution.isolation().mode == "userns"  # stronger than required
    monkeypatch.setenv(execution.REQUIRE_ENV, "strong")
    with pytest.raises(ConfigError, match="SCODER_REQUIRE_ISOLATION must be one of"):
        execution.isolation()


def test_ci_requires_isolation():
    """CI runs the hostile-program tests for real: `.ci/run` exports the requirement."""
    ci = (REPO / ".ci" / "run").read_text()
    assert f"export {execution.REQUIRE_ENV}=" in ci


def test_missing_isolation_is_a_failure_where_required(monkeypatch):
    monkeypatch.setenv(execution.REQUIRE_ENV, "namespaces")
    with pytest.raises(pytest.fail.Exception, match="turns this skip into a failure"):
        unavailable("no network namespace on this machine")
    monkeypatch.setenv(execution.REQUIRE_ENV, "")
    with pytest.raises(pytest.skip.Exception):
        unavailable("no network namespace on this machine")
