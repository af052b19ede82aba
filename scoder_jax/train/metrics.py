"""Training metrics: FLOPs and MFU, a JSONL log, TensorBoard event files, a progress bar.

MFU = achieved model FLOPs / peak FLOPs. Model FLOPs per non-padding token are those of the
dense forward and backward pass (PaLM's count): 6 N for N matmul parameters (the output head
included, the embedding lookup not) plus 12 L H D T for attention over rows of T positions; a
LoRA run's frozen weights need no weight gradient (4 N + 6 N_lora). Recomputation under remat
is not counted. The peak is the accelerator's published dense figure for the compute dtype,
or, on CPU, the dense fp32 matmul throughput measured in this process.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from functools import lru_cache
from pathlib import Path

import jax
import jax.numpy as jnp

from scoder_jax.io import JsonlAppender, iter_jsonl, write_jsonl_atomic
from scoder_jax.models.config import ModelConfig

log = logging.getLogger(__name__)

# Dense peak FLOP/s per device by device_kind substring: (bf16/fp16, fp32 matmul as the
# library runs it: TF32 on NVIDIA, bf16 passes on TPU).
PEAK_FLOPS = {
    "H200": (989e12, 494e12),
    "H100": (989e12, 494e12),
    "A100": (312e12, 156e12),
    "L4": (121e12, 60e12),
    "TPU v4": (275e12, 275e12),
    "TPU v5 lite": (197e12, 197e12),
    "TPU v5e": (197e12, 197e12),
    "TPU v5p": (459e12, 459e12),
    "TPU v6": (918e12, 918e12),
}


def matmul_params(cfg: ModelConfig) -> tuple[int, int]:
    """(matmul parameters of the base model, of the LoRA adapters)."""
    E, H, K, D, F, V, L = (cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim,
                           cfg.intermediate_size, cfg.vocab_size, cfg.num_layers)
    per_layer = E * H * D + 2 * E * K * D + H * D * E + 3 * E * F
    base = L * per_layer + E * V
    lora = 0
    if cfg.lora is not None:
        dims = {"q": (E, H * D), "k": (E, K * D), "v": (E, K * D), "o": (H * D, E),
                "gate": (E, F), "up": (E, F), "down": (F, E)}
        lora = L * sum(cfg.lora.rank * (dims[t][0] + dims[t][1]) for t in cfg.lora.targets)
    return base, lora


def train_flops_per_token(cfg: ModelConfig, seq_len: int) -> float:
    base, lora = matmul_params(cfg)
    attn = 12 * cfg.num_layers * cfg.num_heads * cfg.head_dim * seq_len
    if cfg.lora is not None:
        return 4 * base + 6 * lora + attn
    return 6 * base + attn


@lru_cache(maxsize=None)
def measured_matmul_flops(n: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of a jitted fp32 [n, n] @ [n, n] on the default device, best of `repeats`."""
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
    f = jax.jit(jnp.dot)
    f(a, b).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        f(a, b).block_until_ready()
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best


def peak_flops_per_device(compute_dtype: str = "float32", override_tflops: float | None = None) -> tuple[float, str]:
    """(peak FLOP/s of one device, where the figure comes from)."""
    if override_tflops:
        return override_tflops * 1e12, "config"
    dev = jax.devices()[0]
    if dev.platform == "cpu":
        return measured_matmul_flops(), "measured fp32 matmul"
    kind = getattr(dev, "device_kind", "")
    for key, (half, full) in PEAK_FLOPS.items():
        if key.lower() in kind.lower():
            return (full if compute_dtype == "float32" else half), f"published ({kind})"
    return measured_matmul_flops(), f"measured fp32 matmul ({kind})"


class MetricsLogger:
    """JSONL (`OUT/metrics.jsonl`) and TensorBoard (`OUT/tensorboard/`) on the primary host."""

    def __init__(self, out_dir: str | Path, *, tensorboard: bool = True, resume_step: int = 0):
        self.primary = jax.process_index() == 0
        self.path = Path(out_dir) / "metrics.jsonl"
        self.tb = None
        if not self.primary:
            return
        if resume_step is not None and self.path.exists():
            # entries past the checkpoint we resume from belong to the run that died: drop them
            kept = [r for r in iter_jsonl(self.path) if r.get("step", 0) <= resume_step]
            write_jsonl_atomic(self.path, kept)
        self.jsonl = JsonlAppender(self.path)
        if tensorboard:
            try:
                from tensorboardX import SummaryWriter
            except ImportError:
                log.warning("tensorboardX is not installed: no TensorBoard events (pip install tensorboardX)")
            else:
                self.tb = SummaryWriter(str(Path(out_dir) / "tensorboard"), purge_step=resume_step or None,
                                        flush_secs=10)

    def event(self, rec: dict) -> None:
        if self.primary:
            self.jsonl.write(rec)

    def log(self, step: int, metrics: dict) -> None:
        if not self.primary:
            return
        self.jsonl.write({"step": step, **metrics})
        if self.tb is not None:
            for k, v in metrics.items():
                if isinstance(v, (int, float)):
                    self.tb.add_scalar(f"train/{k}", v, step)

    def close(self) -> None:
        if not self.primary:
            return
        self.jsonl.close()
        if self.tb is not None:
            self.tb.close()


class Progress:
    """A progress bar (step, loss, tokens/s, ETA) on the primary host's stderr."""

    def __init__(self, total: int, initial: int, enabled: bool):
        self.bar = None
        if enabled and jax.process_index() == 0:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, file=sys.stderr,
                            mininterval=0.5)

    def update(self, step: int, loss: float, tokens_per_s: float) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"loss {loss:.4f} tok/s {tokens_per_s:,.0f}", refresh=False)
            self.bar.update(step - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def read_metrics(out_dir: str | Path) -> list[dict]:
    path = Path(out_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
