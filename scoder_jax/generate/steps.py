"""The sampling engine's device side: the state a decode batch carries between device calls (one
pytree), a call's inputs (pytrees of their own), and the jitted bodies: insert (prefill the
admitted prompts and start their slots) and a chunk of decode steps. Both run the model's own
cached forward (`llama.forward_cached`); `engine.py` holds the host side.

Shapes: B decode rows, S cache slots, Pn prompts admitted, Tp their length bucket.
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp

from scoder_jax.generate.sampling import apply_ngram_ban, sample_key, sample_tokens, step_keys
from scoder_jax.models import kv_cache, llama
from scoder_jax.models.kv_cache import KVCache
from scoder_jax.models.lora import merge_lora


@flax.struct.dataclass
class DecodeState:
    """What a decode batch of B rows carries from one device call to the next: one pytree,
    donated whole, gathered whole when the batch shrinks, sharded by one tree (`state_axes`)."""

    cache: KVCache  # the rows' KV cache (models/kv_cache.py), S slots
    tok: jax.Array  # [B] int32: the token fed at the next step
    pos: jax.Array  # [B] int32: its slot
    step: jax.Array  # [B] int32: tokens generated so far (folded into the sample's key)
    limit: jax.Array  # [B] int32: max_new_tokens
    active: jax.Array  # [B] bool: the row still generates
    keys: jax.Array  # [B, 2] uint32: key data of the sample's base key (`sample_key`)
    start: jax.Array  # [B] int32: slot of the first generated token (the prompt's length)
    hist: jax.Array  # [B, S] int32: the token fed at each slot (for the n-gram ban)

    def rows(self, idx: jax.Array) -> "DecodeState":
        """Rows idx [B2] of everything: a smaller decode batch."""
        return jax.tree.map(lambda x: x[idx], self)


def init_state(cfg, B: int, S: int) -> DecodeState:
    z = jnp.zeros((B,), jnp.int32)
    return DecodeState(cache=kv_cache.init_cache(cfg, B, S), tok=z, pos=z, step=z, limit=z,
                       active=jnp.zeros((B,), bool), keys=jnp.zeros((B, 2), jnp.uint32), start=z,
                       hist=jnp.zeros((B, S), jnp.int32))


def state_axes(cfg) -> DecodeState:
    """The logical axes of every DecodeState leaf (a DecodeState of axis-name tuples): rows over
    the batch axes, the cache's heads by the model's rule table."""
    row = ("batch",)
    return DecodeState(cache=kv_cache.logical_axes(cfg), tok=row, pos=row, step=row, limit=row, active=row,
                       keys=("batch", None), start=row, hist=("batch", None))


@flax.struct.dataclass
class Knobs:
    """One generate call's sampling settings, as the device reads them (replicated)."""

    stop: jax.Array  # [n] int32 stop ids, padded with -1
    temperature: jax.Array  # () float32
    top_k: jax.Array  # () int32
    top_p: jax.Array  # () float32
    min_p: jax.Array  # () float32

    def per_row(self, B: int):
        """(temperature, top_k, top_p, min_p), each [B], as `sample_tokens` takes them."""
        return (jnp.full((B,), self.temperature, jnp.float32), jnp.full((B,), self.top_k, jnp.int32),
                jnp.full((B,), self.top_p, jnp.float32), jnp.full((B,), self.min_p, jnp.float32))


@flax.struct.dataclass
class Admission:
    """Prompts to prefill and the slots they start (replicated): slot tgt[j] (B = none) becomes
    sample sidx[j] of prompt row src[j], whose id is pids[j]."""

    tokens: jax.Array  # [Pn, Tp] int32, right-padded
    lengths: jax.Array  # [Pn] int32
    tgt: jax.Array  # [B] int32
    src: jax.Array  # [B] int32
    pids: jax.Array  # [B] int32
    sidx: jax.Array  # [B] int32
    seed: jax.Array  # () int32
    limit: jax.Array  # () int32: max_new_tokens


@flax.struct.dataclass
class ChunkRequest:
    """One decode chunk's orders: rows the host ended (kill [B]), at most max_steps steps, end
    early once exit_free rows are free."""

    kill: jax.Array  # [B] bool
    max_steps: jax.Array  # () int32
    exit_free: jax.Array  # () int32


def decode_weights(cfg, params: dict[str, jax.Array]) -> llama.Weights:
    """Stacked parameters {name: [L, ...]} -> per-layer weights with LoRA adapters merged into
    their base weights (one matmul per projection while decoding, not three), so no decode step
    slices a stacked weight; a copy: run it under jit."""
    return llama.unstack_layers(cfg, merge_lora(cfg, params))


def insert(cfg, mode, w, st: DecodeState, adm: Admission, knobs: Knobs):
    """Prefills adm.tokens through the model's own layers (`llama.forward_cached(prefill=True)`:
    the no-cache attention, kernels included) into a cache of their own, copies each admitted
    sample's prompt row into its slot and draws its first token. Returns state, first tokens [B]."""
    B = st.tok.shape[0]
    Pn, Tp = adm.tokens.shape
    segments = (jnp.arange(Tp)[None, :] < adm.lengths[:, None]).astype(jnp.int32)
    h, prompts = llama.forward_cached(cfg, w, adm.tokens, None, kv_cache.init_cache(cfg, Pn, Tp, st.cache.v[0].dtype),
                                      prefill=True, segment_ids=segments)
    last = h[jnp.arange(Pn), adm.lengths - 1]  # [Pn, E]
    logits = llama.logits_of(cfg, w, last)
    cache = kv_cache.copy_rows(st.cache, prompts, adm.tgt, adm.src)
    keys = jax.vmap(sample_key, in_axes=(None, 0, 0))(adm.seed, adm.pids, adm.sidx)
    first = sample_tokens(logits[adm.src], step_keys(keys, jnp.zeros((B,), jnp.int32)), *knobs.per_row(B), mode=mode)
    hit = jnp.isin(first, knobs.stop)
    length = adm.lengths[adm.src]
    upd = {"tok": first, "pos": length, "step": jnp.ones((B,), jnp.int32),
           "limit": jnp.full((B,), adm.limit, jnp.int32), "active": ~hit & (adm.limit > 1),
           "keys": jax.random.key_data(keys), "start": length}
    st = st.replace(cache=cache, **{k: getattr(st, k).at[adm.tgt].set(v.astype(getattr(st, k).dtype), mode="drop")
                                    for k, v in upd.items()})
    return st, first


def decode_chunk(cfg, chunk: int, block, mode: str, ngram: int, unroll: int, w, st: DecodeState, req: ChunkRequest,
                  knobs: Knobs):
    """Up to `req.max_steps` (<= chunk) decode steps; stops early when all rows are done or at
    least `req.exit_free` slots are free. Returns state, tokens [B, chunk] (-1 where a row did
    not produce one), steps run.

    Each step is the model's own cached forward of one token per row (`llama.forward_cached`).
    Each loop iteration runs `unroll` steps, so the exit test (a device-to-host read of the loop
    predicate on GPU, which drains the launch queue) comes once per `unroll` steps; a step past
    `max_steps` changes nothing (no row is active in it), and the ones past an early exit
    condition just decode on, so the samples are those of `unroll` = 1."""
    B = st.tok.shape[0]
    active = st.active & ~req.kill
    st = st.replace(active=active, pos=jnp.where(active, st.pos, 0))
    per_row = knobs.per_row(B)
    keys = jax.random.wrap_key_data(st.keys)
    toks = jnp.full((B, chunk), -1, jnp.int32)
    max_steps, exit_free = req.max_steps, req.exit_free

    def cond(c):
        i, st, _ = c
        n_free = jnp.sum(~st.active)
        return (i < max_steps) & jnp.any(st.active) & ((i == 0) | (n_free < exit_free))

    def one_step(c):
        i, st, toks = c
        live = i < max_steps
        h, cache = llama.forward_cached(cfg, w, st.tok[:, None], st.pos[:, None], st.cache, block=block)
        logits = llama.logits_of(cfg, w, h[:, 0])  # [B, V] fp32
        if ngram:  # (a step past max_steps rewrites the same token at the same slot)
            st = st.replace(hist=st.hist.at[jnp.arange(B), st.pos].set(st.tok, mode="drop"))
            logits = apply_ngram_ban(logits, st.hist, st.start, st.pos, ngram)
        nxt = sample_tokens(logits, step_keys(keys, st.step), *per_row, mode=mode)
        act = st.active & live
        toks = toks.at[:, i].set(jnp.where(act, nxt, -1), mode="drop")
        step = st.step + act.astype(jnp.int32)
        done = act & (jnp.isin(nxt, knobs.stop) | (step >= st.limit))
        active = jnp.where(live, act & ~done, st.active)
        st = st.replace(cache=cache, tok=jnp.where(act, nxt, st.tok), step=step, active=active,
                        pos=jnp.where(live, jnp.where(active, st.pos + 1, 0), st.pos))
        return i + live.astype(jnp.int32), st, toks

    def body(c):
        for _ in range(unroll):
            c = one_step(c)
        return c

    i, st, toks = jax.lax.while_loop(cond, body, (jnp.int32(0), st, toks))
    return st, toks, i
