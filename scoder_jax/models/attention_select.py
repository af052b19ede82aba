"""Which attention the no-cache forward pass (training, scoring) runs: `ModelConfig.attention`.

- "xla": the chunked einsum attention of `scoder_jax.models.llama`, everywhere.
- "flash": the Pallas (Triton) flash kernel on GPU (`models/flash.py`).
- "splash": the Pallas splash kernel on TPU (`models/splash.py`).
- "cudnn": cuDNN's fused attention on GPU (`models/cudnn_attention.py`).
- "auto": by backend and shape: TPU -> splash (rows a multiple of 128); GPU -> xla until the
  kernels are measured on a device (`GPU_AUTO`; the intended order is cudnn where cuDNN takes
  the shape and dtype (bf16/fp16), else flash (rows a multiple of its block, or shorter));
  CPU -> xla.

A kernel that cannot run here (no such device, a shape it refuses) falls back to the XLA
attention, never an error; each decision is logged once (per setting, backend and shape). A
cached prefill attends through it too; the decode steps over the KV cache use
`models/kv_cache.attend`.

Shapes: B rows, T positions, H heads, K kv heads, D head_dim.
"""

from __future__ import annotations

import functools
import logging

import jax

from scoder_jax.models import cudnn_attention, flash, splash
from scoder_jax.models.config import ModelConfig

log = logging.getLogger(__name__)

# What `auto` tries, in order, per backend. On GPU neither kernel has run on a device yet, so
# `auto` keeps the XLA attention there (the one path measured on an H100) until
# launch/bench_gpu.sh has compared cudnn, flash and xla on one; `attention: cudnn | flash`
# opts in meanwhile. Then this becomes the measured order, e.g. ("cudnn", "flash").
TPU_AUTO: tuple[str, ...] = ("splash",)
GPU_AUTO: tuple[str, ...] = ()
NOT_MEASURED = "cudnn and flash not yet measured on a GPU: attention=cudnn|flash opts in"

def kernel_for(cfg: ModelConfig, T: int) -> str | None:
    """The kernel the no-cache attention over rows of T positions runs here ("flash", "splash",
    "cudnn"), or None for the XLA attention."""
    return _choose(cfg.attention, T, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim, cfg.compute_dtype,
                   jax.default_backend(), (TPU_AUTO, GPU_AUTO), flash.INTERPRET, splash.INTERPRET,
                   cudnn_attention.EMULATE)


def attend(cfg: ModelConfig, q: jax.Array, k: jax.Array, v: jax.Array, segment_ids: jax.Array) -> jax.Array:
    """Causal attention within segments through `kernel_for(cfg, T)` (which must not be None).
    q [B, T, H, D]; k, v [B, T, K, D]; segment_ids [B, T] -> [B, T, H, D] in q's dtype."""
    kernels = {"flash": flash.flash_attention, "splash": splash.splash_attention,
               "cudnn": cudnn_attention.cudnn_attention}
    return kernels[kernel_for(cfg, q.shape[1])](q, k, v, segment_ids)


def _why_not(kernel: str, T: int, heads: int, kv_heads: int, head_dim: int, dtype: str) -> str | None:
    if kernel == "flash":
        return flash.unavailable(T)
    if kernel == "splash":
        return splash.unavailable(T)
    return cudnn_attention.unavailable(T, heads, kv_heads, head_dim, dtype)


@functools.lru_cache(maxsize=64)
def _choose(setting: str, T: int, heads: int, kv_heads: int, head_dim: int, dtype: str, backend: str,
            auto: tuple[tuple[str, ...], tuple[str, ...]], *flags: bool) -> str | None:
    """`kernel_for`, once per setting, shape, backend and test flags (`flags`: the interpreter
    and emulation switches, part of the key only), logging the decision."""
    shape = f"T {T}, {dtype}, head_dim {head_dim}"
    if setting == "xla":
        return None
    if setting != "auto":
        why = _why_not(setting, T, heads, kv_heads, head_dim, dtype)
        if why is None:
            log.info("attention %r: the %s kernel (%s)", setting, setting, shape)
            return setting
        log.info("attention %r %s; using the XLA attention (%s)", setting, why, shape)
        return None
    candidates = {"tpu": auto[0], "gpu": auto[1]}.get(backend, ())
    reasons = [] if candidates or backend not in ("gpu", "tpu") else [NOT_MEASURED]
    for kernel in candidates:
        why = _why_not(kernel, T, heads, kv_heads, head_dim, dtype)
        if why is None:
            log.info("attention 'auto' on %s (%s): %s%s", backend, shape, kernel,
                     f" ({'; '.join(reasons)})" if reasons else "")
            return kernel
        reasons.append(f"{kernel} {why}")
    log.info("attention 'auto' on %s (%s): xla%s", backend, shape, f" ({'; '.join(reasons)})" if reasons else "")
    return None
