"""Trainer end to end: memorization, sharding parity, SIGKILL + resume, two processes, export, LoRA."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from tests.procs import free_port

from scoder_jax.errors import CheckpointError
from scoder_jax.train import checkpoints as ckpt_lib
from scoder_jax.train.trainer import train
from test_train_support import (REPO, child_env, params_of, records, replace, run, tiny_cfg, train_cmd,
                                write_jsonl)


def _read_tb_scalars(tb_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Scalars from TensorBoard event files (TFRecord framing, Event protos)."""
    from tensorboardX.proto import event_pb2

    out: dict[str, list] = {}
    for f in sorted(tb_dir.glob("events.out.tfevents.*")):
        data = f.read_bytes()
        pos = 0
        while pos < len(data):
            (n,) = struct.unpack("<Q", data[pos:pos + 8])
            ev = event_pb2.Event.FromString(data[pos + 12:pos + 12 + n])
            pos += 12 + n + 4
            for v in ev.summary.value:
                out.setdefault(v.tag, []).append((ev.step, v.simple_value))
    return out


@pytest.mark.slow
def test_tiny_model_memorizes_32_samples(tmp_path):
    cfg = tiny_cfg(seq_len=256, batch_size=12, epochs=120, tensorboard=True, log_every=10,
                   optim={"lr": 1e-2, "warmup_steps": 5, "schedule": "cosine", "min_lr_ratio": 0.1},
                   checkpoint={"at_epoch_end": False, "every_steps": 0})
    summary = train(cfg, write_jsonl(tmp_path / "d.jsonl", records(32)), tmp_path / "run")
    stats = json.loads((tmp_path / "run" / "data_stats.json").read_text())
    assert stats["samples"] == 32 and stats["steps_per_epoch"] == [1] * 120  # full batch: loss over all 32
    assert summary["final_loss"] < 0.05, summary["final_loss"]
    logged = [r for r in map(json.loads, (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) if "loss" in r]
    assert [r["step"] for r in logged] == list(range(10, 121, 10))
    assert logged[0]["loss"] > 1.0 and logged[-1]["loss"] == summary["final_loss"]
    for key in ("loss", "grad_norm", "lr", "tokens_per_s", "mfu"):
        assert all(np.isfinite(r[key]) for r in logged), key
    assert 0 < logged[-1]["mfu"] < 1 and logged[-1]["tokens_per_s"] > 0
    tb = _read_tb_scalars(tmp_path / "run" / "tensorboard")
    assert [s for s, _ in tb["train/loss"]] == list(range(10, 121, 10))
    np.testing.assert_allclose(tb["train/loss"][-1][1], summary["final_loss"], rtol=1e-6)
    assert {"train/tokens_per_s", "train/mfu", "train/grad_norm", "train/lr"} <= set(tb)
    (info,) = ckpt_lib.list_checkpoints(tmp_path / "run")
    assert info.step == 120 and info.path == tmp_path / "run" / "checkpoints" / "120"


@pytest.fixture(scope="module")
def one_step_single(tmp_path_factory):
    """One step on one device (the reference for the sharded run)."""
    d = tmp_path_factory.mktemp("single")
    data = write_jsonl(d / "d.jsonl", records(16))
    # Adam's first update is lr * g / (|g| + eps), whose slope in g peaks at lr / eps where a
    # gradient element cancels to ~0: float32 rounding there (another summation order when
    # sharded) came out as 3e-5 apart with eps 1e-8 and 1e-5 with 1e-6. eps 1e-4 bounds the slope
    # at 100, so this checks the sharded step rather than rounding in near-zero gradients; a
    # sharding error still moves every update by ~lr.
    cfg = tiny_cfg(seq_len=128, batch_size=4, max_steps=1, optim={"lr": 1e-2, "eps": 1e-4},
                   checkpoint={"async_save": False})
    train(cfg, data, d / "run")
    return cfg, data, d / "run"


@pytest.mark.slow
def test_sharded_step_matches_single_device(one_step_single, tmp_path):
    cfg, data, ref = one_step_single
    assert jax.device_count() == 8
    sharded = replace(cfg, mesh=replace(cfg.mesh, data=2, fsdp=2, tensor=2, num_devices=None))
    train(sharded, data, tmp_path / "run")
    a, b = params_of(ref / "checkpoints" / "1"), params_of(tmp_path / "run" / "checkpoints" / "1")
    init = params_of_init(cfg)
    for k in a:
        assert not np.allclose(a[k], init[k]) or "norm" in k, k  # the step did move the weights
        np.testing.assert_allclose(b[k], a[k], atol=1e-5, rtol=0, err_msg=k)


@pytest.mark.slow
def test_flash_attention_step_on_the_8_device_mesh_matches_xla(one_step_single, tmp_path, monkeypatch):
    """The flash kernel (interpreted on CPU) under the trainer's shard_map, rows over data x fsdp
    and heads over tensor: the same step as the XLA attention on one device."""
    from scoder_jax.models import flash
    from scoder_jax.models.presets import PRESETS

    monkeypatch.setattr(flash, "INTERPRET", True)
    calls = []
    kernel = flash._kernel
    monkeypatch.setattr(flash, "_kernel", lambda *a: calls.append(a[0].shape) or kernel(*a))
    cfg, data, ref = one_step_single
    sharded = replace(cfg, attention="flash", mesh=replace(cfg.mesh, data=2, fsdp=2, tensor=2, num_devices=None))
    train(sharded, data, tmp_path / "run")
    # per device: 4 rows / (data 2 x fsdp 2) = 1 row, heads / tensor 2
    heads = PRESETS["tiny"].num_heads
    assert calls and all(s[0] == 1 and s[2] == heads // 2 for s in calls), calls
    a, b = params_of(ref / "checkpoints" / "1"), params_of(tmp_path / "run" / "checkpoints" / "1")
    for k in a:
        np.testing.assert_allclose(b[k], a[k], atol=1e-5, rtol=0, err_msg=k)


def params_of_init(cfg):
    from scoder_jax import parallel
    from scoder_jax.models.checkpoint import _param_values
    from scoder_jax.models.presets import PRESETS
    from scoder_jax.train.trainer import init_model

    m = init_model(PRESETS["tiny"], parallel.single_device_mesh(), cfg.seed)
    return {k: np.asarray(v) for k, v in _param_values(m).items()}


def test_resume_from_another_models_checkpoint_fails(one_step_single, tmp_path):
    from scoder_jax import parallel
    from scoder_jax.models.checkpoint import save_orbax
    from scoder_jax.models.presets import PRESETS
    from scoder_jax.train.trainer import init_model

    cfg, data, ref = one_step_single
    import shutil

    shutil.copytree(ref, tmp_path / "run")
    other = init_model(PRESETS["tiny"].replace(num_layers=1), parallel.single_device_mesh(), 0)
    save_orbax(other, tmp_path / "other")
    with pytest.raises(CheckpointError, match=r"checkpoint of another model \(num_layers = 2, this run has 1\)"):
        train(replace(cfg, max_steps=2), data, tmp_path / "run", model=str(tmp_path / "other"))
    with pytest.raises(CheckpointError, match="holds checkpoints"):
        train(replace(cfg, max_steps=2), data, tmp_path / "run", resume=False)


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_matches_uninterrupted(tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", records(48, seed=1))
    cfg = tiny_cfg(seq_len=128, batch_size=2, epochs=3, optim={"lr": 3e-3, "weight_decay": 0.01},
                   checkpoint={"every_steps": 3, "keep": 2})
    total = 72  # 48 samples of one row each (seq_len 128), 2 rows a step, 3 epochs
    env = child_env(1)
    # uninterrupted, in a process like the killed one (XLA:CPU's code, and so its rounding, depends
    # on the process's device count)
    ref_proc = subprocess.Popen(train_cmd(data, tmp_path / "ref", cfg), env=env, cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    # killed after it logged step 20, then restarted with the same command
    out = tmp_path / "killed"
    proc = subprocess.Popen(train_cmd(data, out, cfg), env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            metrics = out / "metrics.jsonl"
            steps = [json.loads(line).get("step", 0) for line in metrics.read_text().splitlines()] \
                if metrics.exists() else []
            if steps and max(steps) >= 20:
                break
            assert proc.poll() is None, proc.stderr.read()[-3000:]
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    except BaseException:
        ref_proc.kill()
        raise
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not (out / "summary.json").exists(), "the run finished before it was killed"
    before = [i.step for i in ckpt_lib.list_checkpoints(out, repair=False)]
    assert before and max(before) < total
    # a save torn by a kill (orbax's temporary directory) is ignored
    torn = out / "checkpoints" / f"{max(before) + 1}.orbax-checkpoint-tmp-12345"
    (torn / "params").mkdir(parents=True)
    run(train_cmd(data, out, cfg), env)
    _, err = ref_proc.communicate(timeout=180)
    assert ref_proc.returncode == 0, err[-3000:]
    a, b = params_of(tmp_path / "ref" / "checkpoints" / str(total)), params_of(out / "checkpoints" / str(total))
    for k in a:
        assert np.array_equal(a[k], b[k]), f"{k}: max diff {np.abs(a[k] - b[k]).max()}"
    mu_a, nu_a, *_ = ckpt_lib.load_adam_moments(tmp_path / "ref" / "checkpoints" / str(total))
    mu_b, nu_b, *_ = ckpt_lib.load_adam_moments(out / "checkpoints" / str(total))
    for k in mu_a:
        assert np.array_equal(np.asarray(mu_a[k]), np.asarray(mu_b[k])) and np.array_equal(nu_a[k], nu_b[k]), k
    log = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in log if "loss" in r]
    assert steps == sorted(set(steps)) and steps[-1] == total  # no duplicated steps after the resume
    ref_loss = {r["step"]: r["loss"]
                for r in map(json.loads, (tmp_path / "ref" / "metrics.jsonl").read_text().splitlines()) if "loss" in r}
    assert all(ref_loss[r["step"]] == r["loss"] for r in log if "loss" in r)
    kept = ckpt_lib.list_checkpoints(out)
    assert [i.step for i in kept] == [i.step for i in ckpt_lib.list_checkpoints(tmp_path / "ref")]
    assert len(kept) == 2


@pytest.mark.slow
def test_two_processes_match_one_process_with_two_devices(tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", records(24, seed=2))
    # gloo's all-reduce may sum the two halves in another order than one process's two devices:
    # float32 gradients then differ in their last bits, which Adam (update lr * g / (|g| + eps))
    # amplifies by up to lr / eps where an element cancels to ~0 (3e5 with eps 1e-8: one such
    # element came out 1.05e-6 apart). eps 1e-4 bounds that slope at 30, so the parameters agree
    # to float32 rounding (~1e-7 x |p|) and atol 1e-6 tests the sharding, not the rounding.
    cfg = tiny_cfg(seq_len=128, batch_size=4, epochs=1, max_steps=4, optim={"lr": 3e-3, "eps": 1e-4},
                   mesh={"data": 2, "num_devices": None})
    port = free_port()
    out = tmp_path / "multi"
    procs = []
    for pid in range(2):
        env = child_env(1, SCODER_COORDINATOR=f"127.0.0.1:{port}", SCODER_NUM_PROCESSES=2, SCODER_PROCESS_ID=pid)
        procs.append(subprocess.Popen(train_cmd(data, out, cfg), env=env, cwd=REPO, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    try:
        for p in procs:
            _, err = p.communicate(timeout=180)
            assert p.returncode == 0, err[-4000:]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    ref = train(replace(cfg, mesh=replace(cfg.mesh, num_devices=2)), data, tmp_path / "ref")
    a = params_of(tmp_path / "ref" / "checkpoints" / str(ref["steps"]))
    b = params_of(out / "checkpoints" / str(ref["steps"]))
    for k in a:
        np.testing.assert_allclose(b[k], a[k], atol=1e-6, rtol=0, err_msg=k)
    log = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert log[0]["processes"] == 2 and log[0]["mesh"] == {"data": 2, "fsdp": 1, "tensor": 1}


@pytest.mark.slow
def test_lora_run_state_and_hf_export_logits_match_transformers(tmp_path):
    import torch
    import transformers

    from scoder_jax.models.checkpoint import load_model

    from scoder_jax import cli
    from test_train_support import cfg_overrides

    data = write_jsonl(tmp_path / "d.jsonl", records(16))
    cfg = tiny_cfg(seq_len=128, batch_size=4, max_steps=3, lora={"rank": 4, "alpha": 8.0, "targets": ("q", "v", "up")},
                   optim={"lr": 5e-2})
    # through the `scoder train` command, exporting the last checkpoint
    cli.COMMANDS.setdefault("train", "scoder_jax.train.commands:train")
    cli.main(["train", "--data", str(data), "--out", str(tmp_path / "run"), "--export-hf", str(tmp_path / "hf"),
              *cfg_overrides(cfg)])
    step_dir = tmp_path / "run" / "checkpoints" / "3"
    assert ckpt_lib.latest_checkpoint(tmp_path / "run").path == step_dir
    # the same command again resumes (same LoRA model), finds the run finished, and trains nothing
    again = train(cfg, data, tmp_path / "run")
    assert again["resumed_from"] == 3 and again["tokens"] == 0 and np.isfinite(again["final_loss"])
    # optimizer state: LoRA factors only
    meta = ckpt_lib.checkpoint_meta(step_dir)
    assert meta["trainable"] == "lora" and meta["step"] == 3 and meta["lr"] > 0
    mom = ckpt_lib.load_adam_moments(step_dir)
    lora_names = {f"lora_{t}_{ab}" for t in ("q", "v", "up") for ab in "ab"}
    assert set(mom.mu) == set(mom.nu) == lora_names
    assert (mom.b1, mom.b2, mom.eps) == (0.9, 0.999, 1e-8)
    import orbax.checkpoint as ocp

    with ocp.StandardCheckpointer() as c:
        md = c.metadata(step_dir / "opt_state")
        tree = getattr(getattr(md, "item_metadata", md), "tree", getattr(md, "item_metadata", md))
    assert {k.split(".")[-1] for k in tree} <= lora_names | {"count"}
    # the checkpoint loads as a model with trained adapters
    model = load_model(step_dir)
    assert model.cfg.lora is not None and np.abs(np.asarray(model.lora_q_b[...])).max() > 0
    # export merges LoRA; transformers gives the same logits
    hf_dir = tmp_path / "hf"
    assert (hf_dir / "tokenizer.json").exists() and (hf_dir / "config.json").exists()
    ids = np.array([[1, 40, 41, 42, 5, 60, 61, 62, 63, 7]], np.int32)
    ours = np.asarray(model(ids).logits)
    ref = transformers.AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32).eval()
    with torch.no_grad():
        theirs = ref(torch.tensor(ids, dtype=torch.long)).logits.numpy()
    np.testing.assert_allclose(theirs, ours, atol=2e-4, rtol=1e-4)
    assert transformers.AutoTokenizer.from_pretrained(str(hf_dir)).convert_tokens_to_ids("a") is not None


@pytest.mark.slow
def test_gpu_benchmark_smoke_runs_on_cpu():
    p = run([os.sys.executable, "tests/benchmarks/train_gpu.py", "--smoke"], child_env(1), timeout=180)
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["benchmark"] == "train_gpu" and 0 < out["mfu"] < 1 and out["tokens_per_step"] > 0
    assert np.isfinite(out["final_loss"]) and out["memory_mib"]["total"] > 0
