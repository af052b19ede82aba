"""Flash attention for the no-cache forward pass (training, scoring) on GPU.

`ModelConfig.attention = "flash"` routes causal self-attention over packed rows through the
Pallas (Triton) flash-attention kernel that ships with JAX
(`jax.experimental.pallas.ops.gpu.attention.mha`): blocks of queries stream over blocks of keys
with an online softmax, masks by causality and segment id inside the kernel, and never
materialises the [T, T] scores; its backward pass is a Pallas kernel too. With "xla" (the
default) the chunked einsum attention of `scoder_jax.models.llama` runs everywhere.

The kernel runs on GPU only. Elsewhere "flash" falls back to the XLA path (said once in the
log), unless `INTERPRET` is set: then the kernel runs in Pallas' interpreter, which is how the
tests check it on CPU against the XLA path (values and gradients).

Under a mesh (`jax.set_mesh`, as the trainer traces its step) the kernel is wrapped in
`jax.shard_map`: rows split over the mesh's batch axes, heads over `tensor`, each device
running the kernel on its own block (a custom call the SPMD partitioner cannot split itself).

Shapes: B rows, T positions, H heads, K kv heads, D head_dim.
"""

from __future__ import annotations

import logging

import jax
import jax.numpy as jnp

log = logging.getLogger(__name__)

BLOCK = 128  # query/key block of the forward kernel (rows of T are cut into blocks of this many)
INTERPRET = False  # run the kernel in Pallas' interpreter where there is no GPU (tests)
_warned = False


def usable(T: int) -> bool:
    """Whether "flash" runs the kernel for rows of T positions here: on a GPU backend (or the
    interpreter, when asked) and with T a multiple of the block. Otherwise the caller uses the
    XLA attention; the first such fallback is logged."""
    global _warned
    if (jax.default_backend() == "gpu" or INTERPRET) and T % block_for(T) == 0:
        return True
    if not _warned:
        log.info("attention 'flash' needs a GPU and rows a multiple of %d positions (backend %s, T %d); "
                 "using the XLA attention", BLOCK, jax.default_backend(), T)
        _warned = True
    return False


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
    B, T, H, D = q.shape
    K = k.shape[2]
    if K != H:  # grouped-query attention: each kv head serves H / K query heads
        k, v = jnp.repeat(k, H // K, axis=2), jnp.repeat(v, H // K, axis=2)
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or mesh.size == 1:
        return _kernel(q, k, v, segment_ids)
    from scoder_jax import parallel

    # rows over the batch axes, heads over tensor, each where it divides (the model's rule table)
    qkv_spec = parallel.spec_for(("batch", "length", "heads", "head_dim"), q.shape, mesh)
    seg_spec = parallel.spec_for(("batch", "length"), segment_ids.shape, mesh)
    return jax.shard_map(_kernel, mesh=mesh, in_specs=(qkv_spec, qkv_spec, qkv_spec, seg_spec),
                         out_specs=qkv_spec, check_vma=False)(q, k, v, segment_ids)
