"""The decoder's forward pass specialised for generation: prefill and one decode step.

Same math as `scoder_jax.models.llama.Decoder` (it reuses its projections, norms and RoPE),
with a memory layout chosen for decoding speed:

- weights are split per layer (a Python list, the layer loop unrolled), so no step slices a
  stacked weight or cache;
- the KV cache is one buffer pair per layer, keys transposed: `k` [B, K, D, S] and `v`
  [B, K, S, D], updated in place (the caller donates it); a decode step writes slot `pos` of
  every row and attends to slots `<= pos`. With keys [D, S], the scores q.k stream the slots
  along the contiguous axis (on XLA:CPU the [S, D] layout ran the scores at a third of the
  memory bandwidth: 310 ms against 135 ms per SmolLM2 step at 64 rows x 512 slots);
- decode attention can run over blocks of `block` slots up to the longest live row (a dynamic
  loop), so its cost follows the rows' lengths, not the cache size, while the rows are short
  (past half the cache one pass over all slots is cheaper; `lax.cond` picks).

Shapes: B rows, T tokens, S cache slots, E embed, H heads, K kv heads, G = H / K, D head_dim,
V vocab, L layers.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from scoder_jax.models import rope as rope_lib
from scoder_jax.models.config import ModelConfig
from scoder_jax.models.llama import attention_inputs as _qkv, attention_output_and_mlp as _out_and_mlp
from scoder_jax.models.llama import lm_logits, lora_specs, param_specs, rms_norm
from scoder_jax.models.lora import merge_lora

Weights = dict[str, Any]  # {"embed", "final_norm", ["lm_head"], "layers": [ {name: [...]} * L ]}
LayerCache = tuple[jax.Array, jax.Array]  # k [B, K, D, S], v [B, K, S, D]


def layer_param_names(cfg: ModelConfig) -> list[str]:
    """Per-layer parameters a model holds (base and LoRA): what `split_weights` takes."""
    specs = {**param_specs(cfg), **lora_specs(cfg)}
    return [n for n, (_, axes) in specs.items() if axes[0] == "layers"]


def global_param_names(cfg: ModelConfig) -> list[str]:
    specs = {**param_specs(cfg), **lora_specs(cfg)}
    return [n for n, (_, axes) in specs.items() if axes[0] != "layers"]


def _base_names(cfg: ModelConfig, *, layers: bool) -> list[str]:
    """The base parameters (no LoRA) stacked over layers, or the global ones."""
    return [n for n, (_, axes) in param_specs(cfg).items() if (axes[0] == "layers") == layers]


def split_weights(cfg: ModelConfig, params: dict[str, jax.Array]) -> Weights:
    """Stacked parameters {name: [L, ...]} -> per-layer weights with LoRA adapters merged into
    their base weights (one matmul per projection while decoding, not three); a copy: run it
    under jit."""
    merged = merge_lora(cfg, params)
    w: Weights = {n: merged[n] for n in _base_names(cfg, layers=False)}
    w["layers"] = [{n: merged[n][i] for n in _base_names(cfg, layers=True)} for i in range(cfg.num_layers)]
    return w


def weight_axes(cfg: ModelConfig) -> Weights:
    """Logical axes of every leaf of `split_weights`' result (for shardings)."""
    specs = param_specs(cfg)
    w: Weights = {n: specs[n][1] for n in _base_names(cfg, layers=False)}
    w["layers"] = [{n: specs[n][1][1:] for n in _base_names(cfg, layers=True)} for _ in range(cfg.num_layers)]
    return w


def init_caches(cfg: ModelConfig, batch: int, slots: int, dtype: Any = None) -> list[LayerCache]:
    dtype = jnp.dtype(dtype or cfg.compute_dtype)
    kshape = (batch, cfg.num_kv_heads, cfg.head_dim, slots)
    vshape = (batch, cfg.num_kv_heads, slots, cfg.head_dim)
    return [(jnp.zeros(kshape, dtype), jnp.zeros(vshape, dtype)) for _ in range(cfg.num_layers)]


def logits_of(cfg: ModelConfig, w: Weights, h: jax.Array) -> jax.Array:
    """h [..., E] (after the final norm) -> logits [..., V] fp32."""
    return lm_logits(cfg, h, w["embed"] if cfg.tie_embeddings else w["lm_head"])


def prefill(cfg: ModelConfig, w: Weights, tokens: jax.Array, lengths: jax.Array):
    """tokens [P, T] right-padded, lengths [P] -> (logits of each row's last token [P, V] fp32,
    per-layer k [P, K, D, T], v [P, K, T, D] for slots 0..T-1). Causal attention; padding sees
    nothing real that matters (it lies after the prompt, and decoding overwrites it slot by slot)."""
    cd = jnp.dtype(cfg.compute_dtype)
    P, T = tokens.shape
    positions = jnp.broadcast_to(jnp.arange(T, dtype=jnp.int32), (P, T))
    cos, sin = rope_lib.cos_sin(cfg, positions)
    idx = jnp.arange(T)
    mask = idx[:, None] >= idx[None, :]  # [T, T]
    h = jnp.take(w["embed"], tokens, axis=0).astype(cd)
    kvs = []
    for p in w["layers"]:
        x = rms_norm(h, p["attn_norm"], cfg.rms_norm_eps)
        q, k, v = _qkv(cfg, p, x, cos, sin)
        K = k.shape[2]
        qg = q.reshape(P, T, K, -1, q.shape[-1])
        s = jnp.einsum("btkgd,bskd->bkgts", qg, k, preferred_element_type=jnp.float32) * (q.shape[-1] ** -0.5)
        s = jnp.where(mask, s, jnp.finfo(jnp.float32).min)
        probs = jax.nn.softmax(s, axis=-1).astype(v.dtype)
        attn = jnp.einsum("bkgts,bskd->btkgd", probs, v).reshape(q.shape)
        h = _out_and_mlp(cfg, p, h, attn)
        kvs.append((jnp.transpose(k, (0, 2, 3, 1)), jnp.swapaxes(v, 1, 2)))
    last = jnp.take_along_axis(h, (lengths - 1)[:, None, None], axis=1)[:, 0]  # [P, E]
    last = rms_norm(last, w["final_norm"], cfg.rms_norm_eps)
    return logits_of(cfg, w, last), kvs


def _scores(qg: jax.Array, kt: jax.Array) -> jax.Array:
    """qg [B, K, G, D], kt [B, K, D, S] -> q.k [B, K, G, S] fp32. On CPU as a fused multiply and
    reduce over D (in the decode step, XLA:CPU ran the batched dot of G = H / K rows 1.15-1.2x slower)."""
    if jax.default_backend() == "cpu":
        return jnp.sum(qg.astype(jnp.float32)[..., None] * kt.astype(jnp.float32)[:, :, None], axis=3)
    return jnp.einsum("bkgd,bkds->bkgs", qg, kt, preferred_element_type=jnp.float32)


# Blocks are visited only while the live ones span at most this fraction of the cache: the loop
# costs more per slot than one pass over all S slots (SmolLM2, 64 rows x 512 slots, one step:
# blocks of 128 up to slot 100 took 215 ms against 309 for full attention, up to slot 220
# 270 against 308; up to slot 300 blocks of 64 took 363 ms against 301).
BLOCKED_MAX_FRACTION = 0.5


def decode_attention(q: jax.Array, ck: jax.Array, cv: jax.Array, pos: jax.Array, n_live: jax.Array | None,
                     block: int | None) -> jax.Array:
    """q [B, H, D]; ck [B, K, D, S], cv [B, K, S, D]; pos [B] -> [B, H, D], attending to slots <= pos.

    With `block`, slots are visited in blocks of `block` (online softmax) up to block
    `n_live` (dynamic), so the cost follows the longest live row, as long as those blocks
    cover at most BLOCKED_MAX_FRACTION of S; otherwise (or without `block`) all S slots.
    """
    B, H, D = q.shape
    K, S = cv.shape[1], cv.shape[2]
    qg = q.reshape(B, K, H // K, D)
    scale = D ** -0.5

    def full(qg, ck, cv):
        s = _scores(qg, ck) * scale
        mask = jnp.arange(S)[None, :] <= pos[:, None]
        s = jnp.where(mask[:, None, None], s, jnp.finfo(jnp.float32).min)
        probs = jax.nn.softmax(s, axis=-1).astype(cv.dtype)
        return jnp.einsum("bkgs,bksd->bkgd", probs, cv).reshape(B, H, D)

    if block is None or block >= S:
        return full(qg, ck, cv)

    def body(j, carry):
        m, l, acc = carry
        kb = jax.lax.dynamic_slice_in_dim(ck, j * block, block, axis=3)
        vb = jax.lax.dynamic_slice_in_dim(cv, j * block, block, axis=2)
        s = _scores(qg, kb) * scale
        mask = (j * block + jnp.arange(block))[None, :] <= pos[:, None]
        s = jnp.where(mask[:, None, None], s, -jnp.inf)
        m_new = jnp.maximum(m, jnp.max(s, axis=-1))
        p = jnp.exp(s - m_new[..., None])
        a = jnp.exp(m - m_new)
        acc = acc * a[..., None] + jnp.einsum("bkgs,bksd->bkgd", p.astype(cv.dtype), vb,
                                               preferred_element_type=jnp.float32)
        return m_new, l * a + jnp.sum(p, axis=-1), acc

    G = H // K
    # slot 0 is always live (pos >= 0), so m is finite after the first block
    init = (jnp.full((B, K, G), -jnp.inf, jnp.float32), jnp.zeros((B, K, G), jnp.float32),
            jnp.zeros((B, K, G, D), jnp.float32))

    def blocked(qg, ck, cv):
        _, l, acc = jax.lax.fori_loop(0, n_live, body, init)
        return (acc / l[..., None]).astype(cv.dtype).reshape(B, H, D)

    return jax.lax.cond(n_live * block <= int(S * BLOCKED_MAX_FRACTION), blocked, full, qg, ck, cv)


def decode_step(cfg: ModelConfig, w: Weights, caches: list[LayerCache], tok: jax.Array, pos: jax.Array,
                *, block: int | None = None):
    """tok [B] fed at slot pos [B] -> (next-token logits [B, V] fp32, updated caches)."""
    cd = jnp.dtype(cfg.compute_dtype)
    B = tok.shape[0]
    S = caches[0][1].shape[2]
    cos, sin = rope_lib.cos_sin(cfg, pos[:, None])
    rows = jnp.arange(B)
    n_live = None
    if block is not None and block < S:
        n_live = jnp.minimum(jnp.max(pos) // block + 1, S // block)
    h = jnp.take(w["embed"], tok, axis=0).astype(cd)[:, None, :]  # [B, 1, E]
    out = []
    for p, (ck, cv) in zip(w["layers"], caches):
        x = rms_norm(h, p["attn_norm"], cfg.rms_norm_eps)
        q, k, v = _qkv(cfg, p, x, cos, sin)
        ck = ck.at[rows, :, :, pos].set(k[:, 0].astype(ck.dtype), mode="drop")
        cv = cv.at[rows, :, pos].set(v[:, 0].astype(cv.dtype), mode="drop")
        attn = decode_attention(q[:, 0], ck.astype(cd), cv.astype(cd), pos, n_live, block)
        h = _out_and_mlp(cfg, p, h, attn[:, None])
        out.append((ck, cv))
    h = rms_norm(h[:, 0], w["final_norm"], cfg.rms_norm_eps)
    return logits_of(cfg, w, h), out
