"""`scoder plan`: the formula against XLA's memory analysis of the compiled step, on 8 simulated devices."""

from __future__ import annotations

import json

import jax
import pytest
from click.testing import CliRunner
from test_train_support import child_env

from scoder_jax.errors import ConfigError
from scoder_jax.plan import formula, make_plan, model_config_for, parse_mesh, plan

TINY = """\
name: tiny-plan
synth:
  model: tiny
  seq_len: 64
  batch_size: 8
  lora: {rank: 4, alpha: 8, targets: [q, v, gate]}
student:
  model: tiny
  seq_len: 64
  batch_size: 8
  grad_accum: 2
"""


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    p = tmp_path_factory.mktemp("plan") / "tiny.yaml"
    p.write_text(TINY)
    return str(p)


def _run(args):
    res = CliRunner().invoke(plan, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.output


@pytest.mark.skipif(jax.device_count() < 8, reason="needs 8 simulated CPU devices (conftest sets XLA_FLAGS)")
@pytest.mark.parametrize("section,limit_gb,verdict", [("student", 16, "fits"), ("synth", 1e-6, "does not fit")])
def test_formula_matches_xla_arguments(tiny_config, section, limit_gb, verdict):
    text, data = make_plan(tiny_config, 8, section=section, mesh="2,2,2", device_memory_gb=limit_gb)
    assert data["mesh"] == {"data": 2, "fsdp": 2, "tensor": 2}
    xla, f = data["xla"], data["formula"]
    assert xla and xla["argument"] > 0
    # parameters + optimizer state (+ the batch) are the step's arguments
    assert abs(f["arguments"] - xla["argument"]) <= 0.10 * xla["argument"], (f, xla)
    # the parameters and optimizer state are donated: XLA aliases exactly the trainable part
    assert abs(f["params_trainable"] + f["optimizer"] - xla["alias"]) <= 0.10 * xla["alias"], (f, xla)
    assert f["optimizer"] == pytest.approx(2 * f["params_trainable"], abs=8)
    if section == "synth":  # LoRA: frozen base weights, optimizer state for the adapters only
        assert data["lora"] and f["params_frozen"] > 10 * f["params_trainable"]
    else:
        assert not data["lora"] and f["params_frozen"] == 0
    # the verdict uses XLA's total and flips with the device memory
    assert data["verdict"] == verdict
    assert "XLA memory analysis" in text
    assert (f"verdict: fits in {limit_gb:g} GiB" in text) == (verdict == "fits")
    assert (f"verdict: does NOT fit in {limit_gb:g} GiB" in text) == (verdict != "fits")


def test_cli_verdict_flips(tiny_config):
    args = ["--config", tiny_config, "--devices", "8", "--mesh", "2,2,2", "--section", "synth", "--no-compile"]
    roomy = _run(args + ["--device-memory-gb", "16"])
    assert "verdict: fits in 16 GiB per device" in roomy and "by formula" in roomy
    assert "LoRA rank 4" in roomy and "mesh data=2 fsdp=2 tensor=2" in roomy
    tight = _run(args + ["--device-memory-gb", "1e-6"])
    assert "verdict: does NOT fit in 1e-06 GiB" in tight


def test_sharding_divides_memory(tiny_config):
    from scoder_jax.train.config import TrainConfig

    tcfg = TrainConfig(model="tiny", seq_len=64, batch_size=8)
    mcfg = model_config_for("tiny")
    one = formula(tcfg, mcfg, {"data": 1, "fsdp": 1, "tensor": 1})
    fsdp = formula(tcfg, mcfg, {"data": 1, "fsdp": 8, "tensor": 1})
    data = formula(tcfg, mcfg, {"data": 8, "fsdp": 1, "tensor": 1})
    assert data.params_trainable == one.params_trainable  # pure data parallel replicates
    assert fsdp.params_trainable < one.params_trainable / 4  # fsdp shards the embed dimension
    assert data.activations < one.activations  # rows split over data
    # the published size of DeepSeek-Coder-6.7B, from the preset
    big = formula(tcfg, model_config_for("deepseek-coder-6.7b"), {"data": 1, "fsdp": 1, "tensor": 1})
    assert big.n_total == pytest.approx(6.74e9, rel=0.01)
    assert big.optimizer == pytest.approx(2 * big.params_trainable, abs=8)


def test_bad_inputs(tiny_config):
    with pytest.raises(ConfigError, match="is not --devices 8"):
        parse_mesh("2,2,1", 8)
    with pytest.raises(ConfigError, match="three integers"):
        parse_mesh("2,2", 8)
    assert parse_mesh("-1,2,2", 8) == {"data": 2, "fsdp": 2, "tensor": 2}
    res = CliRunner().invoke(plan, ["--config", tiny_config, "--devices", "8", "--mesh", "8,1,1", "--no-compile",
                                    "student.batch_size=4", "student.grad_accum=1"])
    assert res.exit_code != 0 and "not divisible" in str(res.exception)
    res = CliRunner().invoke(plan, ["--config", tiny_config, "--devices", "2", "--no-compile",
                                    "student.model=no-such-model"])
    assert res.exit_code != 0 and "'student.model' = no-such-model: neither a file or folder" in str(res.exception)


def test_reexec_when_jax_has_too_few_devices(tiny_config):
    """A process whose backend already started with 1 device re-runs the plan with the flag set."""
    import subprocess
    import sys

    code = ("import jax; assert len(jax.devices()) == 1; from scoder_jax.cli import main; "
            f"main(['plan', '--config', {tiny_config!r}, '--devices', '4', '--mesh', '1,2,2', '--json'])")
    # one device, the parent's XLA backend level (compiling is the work here)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=child_env(1))
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout.strip().splitlines()[-1])
    assert data["mesh"] == {"data": 1, "fsdp": 2, "tensor": 2} and data["xla"]["argument"] > 0
