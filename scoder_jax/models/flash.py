"""Flash attention for the no-cache forward pass (training, scoring) on GPU.

`ModelConfig.attention = "flash"` routes causal self-attention over packed rows through the
Pallas (Triton) flash-attention kernel that ships with JAX
(`jax.experimental.pallas.ops.gpu.attention.mha`): blocks of queries stream over blocks of keys
with an online softmax, masks by causality and segment id inside the kernel, and never
materialises the [T, T] scores; its backward pass is a Pallas kernel too. Which attention runs
where ("auto", and the fallbacks) is decided in `scoder_jax.models.attention_select`.

The kernel runs on GPU only. Elsewhere "flash" falls back to the XLA path (said once in the
log), unless `INTERPRET` is set: then the kernel runs in Pallas' interpreter, which is how the
tests check it on CPU against the XLA path (values and gradients).

Under a mesh (`jax.set_mesh`, as the trainer traces its step) the kernel is wrapped in
`jax.shard_map` (`on_mesh`, shared with the splash and cuDNN kernels): rows split over the
mesh's batch axes, heads over `tensor`, each device running the kernel on its own block (a
custom call the SPMD partitioner cannot split itself).

Shapes: B rows, T positions, H heads, K kv heads, D head_dim.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

BLOCK = 128  # query/key block of the forward kernel (rows of T are cut into blocks of this many)
INTERPRET = False  # run the kernel in Pallas' interpreter where there is no GPU (tests)

Kernel = Callable[[jax.Array, jax.Array, jax.Array, jax.Array], jax.Array]


def unavailable(T: int) -> str | None:
    """Why the kernel cannot run here for rows of T positions (None: it can): it needs a GPU
    backend (or the interpreter, when asked) and T a multiple of the block."""
    if jax.default_backend() != "gpu" and not INTERPRET:
        return f"needs a GPU (backend {jax.default_backend()})"
    if T % block_for(T):
        return f"needs rows a multiple of {BLOCK} positions (T {T})"
    return None


def block_for(T: int) -> int:
    """The kernel's query/key block: BLOCK, or T itself when T is shorter."""
    return min(BLOCK, T)


def _kernel(q, k, v, segment_ids):
    from jax.experimental.pallas.ops.gpu import attention as pallas_attention

    B, T, H, D = q.shape
    blk = block_for(T)
    bwd = min(32, blk)
    sizes = pallas_attention.BlockSizes(block_q=blk, block_k=blk, block_q_dkv=bwd, block_kv_dkv=bwd,
                                        block_q_dq=bwd, block_kv_dq=bwd)
    return pallas_attention.mha(q, k, v, segment_ids, sm_scale=D ** -0.5, causal=True, block_sizes=sizes,
                                interpret=jax.default_backend() != "gpu")


def flash_attention(q: jax.Array, k: jax.Array, v: jax.Array, segment_ids: jax.Array) -> jax.Array:
    """Causal attention within segments. q [B, T, H, D]; k, v [B, T, K, D]; segment_ids [B, T]
    (positions attend to earlier positions of the same id) -> [B, T, H, D] in q's dtype."""
    H, K = q.shape[2], k.shape[2]
    if K != H:  # grouped-query attention: each kv head serves H / K query heads
        k, v = jnp.repeat(k, H // K, axis=2), jnp.repeat(v, H // K, axis=2)
    return on_mesh(_kernel, q, k, v, segment_ids)


def on_mesh(kernel: Kernel, q: jax.Array, k: jax.Array, v: jax.Array, segment_ids: jax.Array) -> jax.Array:
    """kernel(q, k, v, segment_ids) -> [B, T, H, D], as it is on one device; under a mesh of
    several devices in `jax.shard_map`, each device running it on its own rows and heads.

    q [B, T, H, D]; k, v [B, T, K, D]; segment_ids [B, T]. Rows split over the batch axes and
    heads over `tensor`, each where it divides (the model's rule table, `parallel.spec_for`).
    Where `tensor` divides H but not K, k and v are first repeated to H heads, so every device
    holds the kv heads of its query heads."""
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or mesh.size == 1:
        return kernel(q, k, v, segment_ids)
    from scoder_jax import parallel

    q_spec = parallel.spec_for(("batch", "length", "heads", "head_dim"), q.shape, mesh)
    kv_spec = parallel.spec_for(("batch", "length", "kv_heads", "head_dim"), k.shape, mesh)
    if kv_spec[2] != q_spec[2]:
        groups = q.shape[2] // k.shape[2]
        k, v = jnp.repeat(k, groups, axis=2), jnp.repeat(v, groups, axis=2)
        kv_spec = q_spec
    seg_spec = parallel.spec_for(("batch", "length"), segment_ids.shape, mesh)
    return jax.shard_map(kernel, mesh=mesh, in_specs=(q_spec, kv_spec, kv_spec, seg_spec),
                         out_specs=q_spec, check_vma=False)(q, k, v, segment_ids)
