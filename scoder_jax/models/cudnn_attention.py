"""cuDNN fused attention for the no-cache forward pass (training, scoring) on GPU.

`ModelConfig.attention = "cudnn"` (and "auto" on a GPU where cuDNN takes the shape) routes
causal self-attention over packed rows through `jax.nn.dot_product_attention(...,
implementation="cudnn")`: cuDNN's flash-attention kernels, forward and backward. Packed rows
are expressed with the public API's boolean mask: `is_causal` plus a [B, 1, T, T] same-segment
mask (cuDNN adds it as a bias; padding, segment 0, only sees padding, as in the XLA path).

cuDNN takes bf16/fp16 only, head_dim a multiple of 8 up to 128 (256 on Hopper), even T with a
bias; `unavailable` asks jax itself, by tracing the step's attention and its gradient for the
shape once (`jax.eval_shape`, nothing compiled), so a shape cuDNN refuses falls back to the
next choice instead of failing the run. Elsewhere "cudnn" falls back to the XLA attention (said
once in the log, `scoder_jax.models.attention_select`). With `EMULATE` set, the same call runs
jax's XLA implementation of `dot_product_attention` with the same arguments, which is how the
tests check the arguments (mask, GQA layout, scale, sharding) on CPU.

Shapes: B rows, T positions, H heads, K kv heads, D head_dim.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from scoder_jax.models import flash

DTYPES = ("bfloat16", "float16")
EMULATE = False  # run jax.nn's XLA implementation with the cuDNN call's arguments (tests on CPU)


def unavailable(T: int, heads: int, kv_heads: int, head_dim: int, dtype: str) -> str | None:
    """Why cuDNN attention cannot run here for rows of T positions (None: it can)."""
    if EMULATE:
        return None
    if jax.default_backend() != "gpu":
        return f"needs a GPU (backend {jax.default_backend()})"
    if dtype not in DTYPES:
        return f"needs compute_dtype bfloat16 or float16 (got {dtype})"
    return _refused(T, heads, kv_heads, head_dim, dtype)


@functools.lru_cache(maxsize=32)
def _refused(T: int, heads: int, kv_heads: int, head_dim: int, dtype: str) -> str | None:
    """jax's own checks (cuDNN present and recent enough, head_dim, T) for one row of this shape,
    forward and backward, traced without compiling: the first line of the refusal, or None."""
    q = jax.ShapeDtypeStruct((1, T, heads, head_dim), jnp.dtype(dtype))
    kv = jax.ShapeDtypeStruct((1, T, kv_heads, head_dim), jnp.dtype(dtype))
    seg = jax.ShapeDtypeStruct((1, T), jnp.int32)

    def loss(q, k, v, seg):
        return jnp.sum(_kernel(q, k, v, seg).astype(jnp.float32))

    try:
        jax.eval_shape(jax.grad(loss, argnums=(0, 1, 2)), q, kv, kv, seg)
    except (NotImplementedError, RuntimeError, ValueError, TypeError) as e:
        return f"cuDNN refuses T {T}, head_dim {head_dim}, {dtype}: {str(e).strip().splitlines()[0][:200]}"
    return None


def _kernel(q, k, v, segment_ids):
    same = segment_ids[:, :, None] == segment_ids[:, None, :]  # [B, T, T]
    return jax.nn.dot_product_attention(q, k, v, mask=same[:, None], is_causal=True, scale=q.shape[-1] ** -0.5,
                                        implementation="xla" if EMULATE else "cudnn")


def cudnn_attention(q: jax.Array, k: jax.Array, v: jax.Array, segment_ids: jax.Array) -> jax.Array:
    """Causal attention within segments. q [B, T, H, D]; k, v [B, T, K, D]; segment_ids [B, T]
    (positions attend to earlier positions of the same id) -> [B, T, H, D] in q's dtype."""
    return flash.on_mesh(_kernel, q, k, v, segment_ids)
