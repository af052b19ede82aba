"""Helpers shared by the trainer tests (no tests here)."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def records(n: int = 32, seed: int = 0) -> list[dict]:
    """Short problem/solution samples of varied lengths (character tokenizer friendly)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        a, b = rng.randint(0, 999), rng.randint(0, 999)
        op = rng.choice(["add", "sub", "mul"])
        val = {"add": a + b, "sub": a - b, "mul": a * b}[op]
        pad = " please" * rng.randint(0, 3)
        out.append({"id": f"s{i}", "problem": f"{op} {a} {b}{pad}", "solution": f"def f():\n    return {val}"})
    return out


def write_jsonl(path: Path, recs: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return path


def tiny_cfg(**over):
    """A TrainConfig for the tiny preset and the character tokenizer; nested sections by dict."""
    from scoder_jax.train.config import (CheckpointConfig, DataConfig, LoraSpec, MeshConfig, OptimConfig,
                                         TrainConfig)

    sections = {"optim": OptimConfig, "mesh": MeshConfig, "checkpoint": CheckpointConfig, "data": DataConfig,
                "lora": LoraSpec}
    base = dict(model="tiny", tokenizer="chars", seq_len=96, batch_size=4, epochs=1, progress=False,
                tensorboard=False, optim=dict(lr=3e-3, warmup_steps=2), mesh=dict(num_devices=1),
                checkpoint=dict(keep=3, async_save=True))
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            base[k] = {**base[k], **v}
        else:
            base[k] = v
    kw = {k: (sections[k](**v) if k in sections and isinstance(v, dict) else v) for k, v in base.items()}
    return TrainConfig(**kw)


def cfg_overrides(cfg) -> list[str]:
    """The dotted overrides that rebuild `cfg` from the defaults (for the command line)."""
    from scoder_jax.config import to_dict

    out = []

    def walk(d, prefix):
        for k, v in d.items():
            if isinstance(v, dict):
                walk(v, f"{prefix}{k}.")
            else:
                out.append(f"{prefix}{k}={json.dumps(v)}")

    walk(to_dict(cfg), "")
    return out


def params_of(step_dir) -> dict[str, np.ndarray]:
    from scoder_jax.train.checkpoints import load_params

    return {k: np.asarray(v) for k, v in load_params(step_dir).items()}


def child_env(devices: int = 1, **extra) -> dict:
    env = dict(os.environ)
    # the device count, and the parent's XLA backend level (conftest): a child and its in-process reference alike
    level = [f for f in os.environ.get("XLA_FLAGS", "").split() if f.startswith("--xla_backend_optimization_level")]
    env["XLA_FLAGS"] = " ".join([f"--xla_force_host_platform_device_count={devices}", *level])
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    # child processes compiling the same step share XLA's persistent compilation cache
    env.setdefault("JAX_COMPILATION_CACHE_DIR", str(Path(tempfile.gettempdir()) / "scoder-train-tests-xla-cache"))
    env.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    env.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
    env.update({k: str(v) for k, v in extra.items()})
    return env


def train_cmd(data: Path, out: Path, cfg) -> list[str]:
    return [sys.executable, "-m", "scoder_jax.train", "--data", str(data), "--out", str(out), *cfg_overrides(cfg)]


def run(cmd, env, timeout=120) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, f"exit {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-5000:]}"
    return p


def replace(cfg, **kw):
    return dataclasses.replace(cfg, **kw)
