"""The smoke preset ends with a non-empty dataset on 1 and 8 devices (2: tests/test_pipeline.py).

One device is what every user has; with it the smoke run used to end with an empty final set
(S_1 garbled the format of two different memorised replies). The preset's seed samples now
share one reply, so parsing does not hang on luck; 8 devices exercise the mesh that shrinks to
the smoke batch of 2 rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("devices", [1, 8])
def test_smoke_preset_ends_with_a_dataset(devices, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    if devices > 1:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    env.update(JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO))
    run = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "scoder_jax.cli", "iterate", "--config", "smoke", "--run-dir", str(run),
                        "--no-progress", "--until", "export"], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Metadata file does not exist" not in r.stderr  # orbax's step-metadata warning is silenced
    m = json.loads((run / "manifest.json").read_text())
    mesh_devices = min(devices, 2)  # the smoke batch has 2 rows: 8 devices train on 2 of them
    assert f"mesh {{'data': {mesh_devices}, 'fsdp': 1, 'tensor': 1}}" in r.stderr
    rows = (run / "final/dataset/dataset.jsonl").read_text().splitlines()
    assert rows and m["stages"]["export"]["counts"]["rows"] == len(rows)
    assert m["stages"]["final_sample"]["counts"]["rejects"] == 0, m["stages"]["final_sample"]
