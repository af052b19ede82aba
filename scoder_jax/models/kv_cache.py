"""The KV cache and the attention that reads it: one layout for every cached call (the sampling
engine's prefill and decode steps, the judge's shared-prefix passes, `Decoder(cache=...)`).

Layout: one buffer pair per layer (a tuple over layers, so a step updates each in place and
never slices a stacked cache), keys transposed: `k` [B, K, D, S] and `v` [B, K, S, D]. Token t
of row b lives in slot `positions[b, t]` and attends to the slots <= its position, so rows of
different lengths share one cache and stale slots past a row's position are masked. With keys
[D, S] the scores q.k stream the slots along the contiguous axis (on XLA:CPU the [S, D] layout
ran the scores at a third of the memory bandwidth: 310 ms against 135 ms per SmolLM2 decode
step at 64 rows x 512 slots).

`attend` can visit the slots in blocks of `block` up to the block of the largest position (a
dynamic loop with an online softmax), so a decode step's cost follows the rows' lengths rather
than the cache size while they are short (past BLOCKED_MAX_FRACTION of the cache one pass over
all slots is cheaper; `lax.cond` picks).

Shapes: B rows, T tokens in the call, S slots, H heads, K kv heads, G = H / K, D head_dim.
"""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp

from scoder_jax.models.config import ModelConfig

K_AXES = ("batch", "kv_heads", "head_dim", "length")  # logical axes of one layer's keys
V_AXES = ("batch", "kv_heads", "length", "head_dim")


@flax.struct.dataclass
class KVCache:
    k: tuple[jax.Array, ...]  # per layer [B, K, D, S]
    v: tuple[jax.Array, ...]  # per layer [B, K, S, D]

    @property
    def batch(self) -> int:
        return self.v[0].shape[0]

    @property
    def slots(self) -> int:
        return self.v[0].shape[2]

    def rows(self, idx: jax.Array) -> "KVCache":
        """The cache of rows idx [B2] (a gather)."""
        return jax.tree.map(lambda x: x[idx], self)


def init_cache(cfg: ModelConfig, batch: int, slots: int, dtype: Any = None) -> KVCache:
    """An empty cache for `batch` rows of `slots` positions (compute dtype unless given)."""
    dtype = jnp.dtype(dtype or cfg.compute_dtype)
    kshape = (batch, cfg.num_kv_heads, cfg.head_dim, slots)
    vshape = (batch, cfg.num_kv_heads, slots, cfg.head_dim)
    L = cfg.num_layers
    return KVCache(tuple(jnp.zeros(kshape, dtype) for _ in range(L)), tuple(jnp.zeros(vshape, dtype) for _ in range(L)))


def logical_axes(cfg: ModelConfig) -> KVCache:
    """The logical axes of every buffer, as a KVCache whose leaves are axis-name tuples (map it
    with `parallel.sharding_for` against the cache's shapes for its shardings)."""
    return KVCache((K_AXES,) * cfg.num_layers, (V_AXES,) * cfg.num_layers)


def write(k_cache: jax.Array, v_cache: jax.Array, k: jax.Array, v: jax.Array, positions: jax.Array):
    """One layer's cache with k, v [B, T, K, D] stored at slots positions [B, T] (a position
    past the cache is dropped)."""
    rows = jnp.arange(k.shape[0])[:, None]
    k_cache = k_cache.at[rows, :, :, positions].set(k.astype(k_cache.dtype), mode="drop")
    v_cache = v_cache.at[rows, :, positions].set(v.astype(v_cache.dtype), mode="drop")
    return k_cache, v_cache


def write_prefix(k_cache: jax.Array, v_cache: jax.Array, k: jax.Array, v: jax.Array):
    """One layer's cache with k, v [B, T, K, D] stored at slots 0..T-1 (T <= S): a prefill."""
    kt = jnp.transpose(k, (0, 2, 3, 1)).astype(k_cache.dtype)  # [B, K, D, T]
    vt = jnp.swapaxes(v, 1, 2).astype(v_cache.dtype)  # [B, K, T, D]
    return (jax.lax.dynamic_update_slice_in_dim(k_cache, kt, 0, axis=3),
            jax.lax.dynamic_update_slice_in_dim(v_cache, vt, 0, axis=2))


def copy_rows(dst: KVCache, src: KVCache, tgt: jax.Array, src_rows: jax.Array) -> KVCache:
    """dst with its rows tgt [N] (an index past dst's rows is dropped) replaced by src's rows
    src_rows [N], slots 0..min(S_src, S_dst)-1: prompts prefilled once, copied into the
    engine's slots (a prompt's n samples read the same source row)."""
    n = min(src.slots, dst.slots)
    ks = tuple(d.at[tgt, :, :, :n].set(s[src_rows, :, :, :n].astype(d.dtype), mode="drop")
               for d, s in zip(dst.k, src.k))
    vs = tuple(d.at[tgt, :, :n].set(s[src_rows, :, :n].astype(d.dtype), mode="drop") for d, s in zip(dst.v, src.v))
    return KVCache(ks, vs)


def live_blocks(positions: jax.Array, slots: int, block: int | None) -> jax.Array | None:
    """How many blocks of `block` slots hold the largest position (None without blocks)."""
    if block is None or block >= slots:
        return None
    return jnp.minimum(jnp.max(positions) // block + 1, slots // block)


def _scores(qg: jax.Array, kt: jax.Array) -> jax.Array:
    """qg [B, K, G, T, D], kt [B, K, D, S] -> q.k [B, K, G, T, S] fp32. For one token on CPU as
    a fused multiply and reduce over D (in the decode step, XLA:CPU ran the batched dot of
    G = H / K rows 1.15-1.2x slower); otherwise one batched matmul."""
    if jax.default_backend() == "cpu" and qg.shape[3] == 1:
        return jnp.sum(qg.astype(jnp.float32)[..., None] * kt.astype(jnp.float32)[:, :, None, None], axis=4)
    return jnp.einsum("bkgtd,bkds->bkgts", qg, kt, preferred_element_type=jnp.float32)


# Blocks are visited only while the live ones span at most this fraction of the cache: the loop
# costs more per slot than one pass over all S slots (SmolLM2, 64 rows x 512 slots, one step:
# blocks of 128 up to slot 100 took 215 ms against 309 for full attention, up to slot 220
# 270 against 308; up to slot 300 blocks of 64 took 363 ms against 301).
BLOCKED_MAX_FRACTION = 0.5


def attend(q: jax.Array, kt: jax.Array, v: jax.Array, positions: jax.Array, *, block: int | None = None,
           n_live: jax.Array | None = None) -> jax.Array:
    """Grouped-query attention of q [B, T, H, D] over one layer's cache kt [B, K, D, S],
    v [B, K, S, D]: token t of row b sees the slots <= positions[b, t]. Returns [B, T, H, D] in
    v's dtype; scores and softmax in fp32.

    With `block` (and `n_live`, from `live_blocks`), the slots are visited in blocks of `block`
    (online softmax) up to block n_live, as long as those cover at most BLOCKED_MAX_FRACTION of
    S; otherwise (or without `block`) all S slots in one pass.
    """
    B, T, H, D = q.shape
    K, S = v.shape[1], v.shape[2]
    G = H // K
    qg = jnp.transpose(q.reshape(B, T, K, G, D), (0, 2, 3, 1, 4))  # [B, K, G, T, D]
    scale = D ** -0.5

    def out(o):  # [B, K, G, T, D] -> [B, T, H, D]
        return jnp.transpose(o, (0, 3, 1, 2, 4)).reshape(B, T, H, D)

    def full(qg, kt, v):
        s = _scores(qg, kt) * scale
        mask = jnp.arange(S)[None, None, :] <= positions[:, :, None]  # [B, T, S]
        s = jnp.where(mask[:, None, None], s, jnp.finfo(jnp.float32).min)
        probs = jax.nn.softmax(s, axis=-1).astype(v.dtype)
        return out(jnp.einsum("bkgts,bksd->bkgtd", probs, v))

    if block is None or block >= S or n_live is None:
        return full(qg, kt, v)

    def body(j, carry):
        m, total, acc = carry
        kb = jax.lax.dynamic_slice_in_dim(kt, j * block, block, axis=3)
        vb = jax.lax.dynamic_slice_in_dim(v, j * block, block, axis=2)
        s = _scores(qg, kb) * scale
        mask = (j * block + jnp.arange(block))[None, None, :] <= positions[:, :, None]  # [B, T, block]
        s = jnp.where(mask[:, None, None], s, -jnp.inf)
        m_new = jnp.maximum(m, jnp.max(s, axis=-1))
        p = jnp.exp(s - m_new[..., None])
        a = jnp.exp(m - m_new)
        acc = acc * a[..., None] + jnp.einsum("bkgts,bksd->bkgtd", p.astype(v.dtype), vb,
                                               preferred_element_type=jnp.float32)
        return m_new, total * a + jnp.sum(p, axis=-1), acc

    # slot 0 is always live (positions >= 0), so m is finite after the first block
    init = (jnp.full((B, K, G, T), -jnp.inf, jnp.float32), jnp.zeros((B, K, G, T), jnp.float32),
            jnp.zeros((B, K, G, T, D), jnp.float32))

    def blocked(qg, kt, v):
        _, total, acc = jax.lax.fori_loop(0, n_live, body, init)
        return out((acc / total[..., None]).astype(v.dtype))

    return jax.lax.cond(n_live * block <= int(S * BLOCKED_MAX_FRACTION), blocked, full, qg, kt, v)
