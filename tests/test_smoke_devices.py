"""The smoke preset ends with a non-empty dataset on 8 devices (1: tests/test_loop_options.py,
2: tests/test_pipeline.py): 8 devices exercise the mesh that shrinks to the smoke batch of 2
rows. The preset's seed samples share one reply, so parsing does not hang on luck."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def test_smoke_preset_ends_with_a_dataset_on_8_devices(tmp_path):
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8", "JAX_PLATFORMS": "cpu",
           "PYTHONPATH": str(REPO)}
    run = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "scoder_jax.cli", "iterate", "--config", "smoke", "--run-dir", str(run),
                        "--no-progress", "--until", "export"], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Metadata file does not exist" not in r.stderr  # orbax's step-metadata warning is silenced
    m = json.loads((run / "manifest.json").read_text())
    assert "mesh {'data': 2, 'fsdp': 1, 'tensor': 1}" in r.stderr  # the smoke batch has 2 rows: 2 of 8 devices
    rows = (run / "final/dataset/dataset.jsonl").read_text().splitlines()
    assert rows and m["stages"]["export"]["counts"]["rows"] == len(rows)
    assert m["stages"]["final_sample"]["counts"]["rejects"] == 0, m["stages"]["final_sample"]
