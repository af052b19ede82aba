"""Splash attention for the no-cache forward pass (training, scoring) on TPU.

`ModelConfig.attention = "splash"` (and "auto" on a TPU) routes causal self-attention over
packed rows through the Pallas TPU splash-attention kernel that ships with JAX
(`jax.experimental.pallas.ops.tpu.splash_attention`): block-sparse flash attention whose
static causal mask lets it skip the blocks above the diagonal, with segment ids (packed
samples never see each other; padding, segment 0, only sees padding) applied inside the
kernel, grouped-query heads read without repeating k and v, and its own backward kernels (dq,
and dk + dv).

The kernel scales nothing itself: q is multiplied by D ** -0.5 before it, as the XLA attention
scales its scores. It runs on TPU only; elsewhere "splash" falls back to the XLA attention
(said once in the log, `scoder_jax.models.attention_select`), unless `INTERPRET` is set: then
it runs in Pallas' interpreter, which is how the tests check it on CPU against the XLA path.
Under a mesh it runs per device in `jax.shard_map` (`flash.on_mesh`): rows over the batch axes,
heads over `tensor`.

Shapes: B rows, T positions, H heads, K kv heads, D head_dim.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from scoder_jax.models import flash

LANES = 128  # the kernel's blocks are multiples of this many positions (TPU lanes)
BLOCKS = (512, 256, 128)  # the largest dividing T is the query/key block of every kernel
INTERPRET = False  # run the kernel in Pallas' interpreter where there is no TPU (tests)


def unavailable(T: int) -> str | None:
    """Why the kernel cannot run here for rows of T positions (None: it can): it needs a TPU
    backend (or the interpreter, when asked) and T a multiple of 128."""
    if jax.default_backend() != "tpu" and not INTERPRET:
        return f"needs a TPU (backend {jax.default_backend()})"
    if T % LANES:
        return f"needs rows a multiple of {LANES} positions (T {T})"
    return None


def block_for(T: int) -> int:
    """The query/key block of the forward and backward kernels for rows of T (a multiple of 128)."""
    return next(b for b in BLOCKS if T % b == 0)


def make_kernel(heads: int, T: int, interpret: bool):
    """The splash kernel for one row: q [heads, T, D], k, v [kv heads, T, D] (heads a multiple
    of kv heads), segment ids -> [heads, T, D]; causal, differentiable."""
    from jax.experimental.pallas.ops.tpu.splash_attention import splash_attention_kernel as kernel_lib
    from jax.experimental.pallas.ops.tpu.splash_attention import splash_attention_mask as mask_lib

    b = block_for(T)
    sizes = kernel_lib.BlockSizes(block_q=b, block_kv=b, block_kv_compute=b, block_q_dkv=b, block_kv_dkv=b,
                                  block_kv_dkv_compute=b, block_q_dq=b, block_kv_dq=b)
    mask = mask_lib.MultiHeadMask([mask_lib.CausalMask((T, T))] * heads)
    return kernel_lib.make_splash_mha(mask, block_sizes=sizes, head_shards=1, q_seq_shards=1, interpret=interpret)


def _kernel(q, k, v, segment_ids):
    from jax.experimental.pallas.ops.tpu.splash_attention.splash_attention_kernel import SegmentIds

    B, T, H, D = q.shape
    kernel = make_kernel(H, T, interpret=jax.default_backend() != "tpu")
    qh = (jnp.swapaxes(q, 1, 2) * D ** -0.5).astype(q.dtype)  # [B, H, T, D]
    kh, vh = jnp.swapaxes(k, 1, 2), jnp.swapaxes(v, 1, 2)  # [B, K, T, D]

    def row(q1, k1, v1, seg):
        return kernel(q1, k1, v1, segment_ids=SegmentIds(q=seg, kv=seg))

    return jnp.swapaxes(jax.vmap(row)(qh, kh, vh, segment_ids.astype(jnp.int32)), 1, 2)


def splash_attention(q: jax.Array, k: jax.Array, v: jax.Array, segment_ids: jax.Array) -> jax.Array:
    """Causal attention within segments. q [B, T, H, D]; k, v [B, T, K, D]; segment_ids [B, T]
    (positions attend to earlier positions of the same id) -> [B, T, H, D] in q's dtype."""
    return flash.on_mesh(_kernel, q, k, v, segment_ids)
