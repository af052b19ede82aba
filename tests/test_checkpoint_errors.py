"""Broken checkpoints fail with one line naming the file and the tensor or field, exit status 2."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from scoder_jax.errors import CheckpointError
from scoder_jax.models.checkpoint import load_hf, save_hf
from tests.tiny_hf import make_hf_model


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpt") / "hf"
    make_hf_model("llama_gqa_linear").save_pretrained(d)
    return d


@pytest.fixture()
def sharded(hf_dir, tmp_path):
    out = save_hf(load_hf(hf_dir), tmp_path / "sharded", max_shard_bytes=20_000)
    return out


def _edit_config(d, **changes):
    cfg = json.loads((d / "config.json").read_text())
    for k, v in changes.items():
        if v is None:
            cfg.pop(k, None)
        else:
            cfg[k] = v
    (d / "config.json").write_text(json.dumps(cfg))


def test_missing_shard(sharded):
    index = json.loads((sharded / "model.safetensors.index.json").read_text())
    victim = sorted(set(index["weight_map"].values()))[1]
    (sharded / victim).unlink()
    with pytest.raises(CheckpointError, match=rf"index.json: shard '{victim}' \(holding tensor '.+'\) is missing"):
        load_hf(sharded)


def test_shape_mismatch(hf_dir, tmp_path):
    d = shutil.copytree(hf_dir, tmp_path / "m")
    _edit_config(d, intermediate_size=48)
    with pytest.raises(CheckpointError, match=r"tensor 'model.layers.0.mlp.gate_proj.weight' has shape \(64, 32\), "
                                              r"but the config implies \(48, 32\)"):
        load_hf(d)


def test_unknown_architecture(hf_dir, tmp_path):
    d = shutil.copytree(hf_dir, tmp_path / "m")
    _edit_config(d, architectures=["GPT2LMHeadModel"], model_type="gpt2")
    with pytest.raises(CheckpointError,
                       match=r"config.json: field 'architectures' = \['GPT2LMHeadModel'\] is not supported"):
        load_hf(d)


def test_unsupported_rope_type(hf_dir, tmp_path):
    d = shutil.copytree(hf_dir, tmp_path / "m")
    _edit_config(d, rope_parameters=None, rope_scaling={"type": "yarn", "factor": 4.0})
    with pytest.raises(CheckpointError, match=r"config.json: field 'rope_scaling.type' = 'yarn' is not supported"):
        load_hf(d)


def test_truncated_safetensors(hf_dir, tmp_path):
    d = shutil.copytree(hf_dir, tmp_path / "m")
    f = d / "model.safetensors"
    data = f.read_bytes()
    f.write_bytes(data[: len(data) - 1000])
    with pytest.raises(CheckpointError,
                       match=r"model.safetensors: truncated safetensors file .*tensor '.+' is cut off"):
        load_hf(d)
    f.write_bytes(data[:20])
    with pytest.raises(CheckpointError, match=r"model.safetensors: truncated"):
        load_hf(d)


def _scoder(*args, env=None):
    return subprocess.run([sys.executable, "-m", "scoder_jax.cli", *args], capture_output=True, text=True, env=env)


def test_cli_reports_one_line_and_exit_2(hf_dir, tmp_path):
    d = shutil.copytree(hf_dir, tmp_path / "m")
    _edit_config(d, rope_parameters=None, rope_scaling={"type": "yarn", "factor": 4.0})
    r = _scoder("convert", str(d), str(tmp_path / "out"))
    assert r.returncode == 2
    lines = [l for l in r.stderr.splitlines() if l.startswith("error:")]
    assert len(lines) == 1 and "rope_scaling.type" in lines[0] and str(d) in lines[0], r.stderr
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_verify_passes_on_a_good_checkpoint_and_fails_on_a_tampered_one(hf_dir, tmp_path):
    r = _scoder("verify", "--model", str(hf_dir), "--atol", "1e-4")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert report["random"]["top1_agreement"] == 1.0 and report["max_abs_diff"] < 1e-4

    # an orbax checkpoint converted from it verifies too (in this process: the CLI ran above)
    from click.testing import CliRunner
    from safetensors.numpy import load_file, save_file

    from scoder_jax.models import commands

    res = CliRunner().invoke(commands.convert, [str(hf_dir), str(tmp_path / "orbax"), "--to", "orbax"])
    assert res.exit_code == 0, (res.output, res.exception)
    res = CliRunner().invoke(commands.verify, ["--model", str(tmp_path / "orbax"), "--atol", "1e-4"])
    assert res.exit_code == 0, (res.output, res.exception)

    # a checkpoint whose logits differ from the reference's: scoder-jax reads a copy with a
    # changed final norm, transformers the original; `scoder verify` must exit 1

    d = shutil.copytree(hf_dir, tmp_path / "tampered")
    tensors = load_file(d / "model.safetensors")
    tensors["model.norm.weight"] = tensors["model.norm.weight"] * np.float32(3.0)
    save_file(tensors, d / "model.safetensors", metadata={"format": "pt"})
    orig = commands._reference_model
    try:
        commands._reference_model = lambda path, tmp: orig(hf_dir, tmp)
        res = CliRunner().invoke(commands.verify, ["--model", str(d), "--atol", "1e-4"])
    finally:
        commands._reference_model = orig
    assert res.exit_code == 1, res.output
    report = json.loads(next(l for l in res.output.splitlines() if l.startswith("{")))
    assert report["ok"] is False and report["max_abs_diff"] > 1e-2
