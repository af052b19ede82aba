"""Batched generation with a KV cache: one prefill per prompt, `n` samples sharing it, and a
decode loop compiled once per shape bucket (`jax.lax.while_loop` inside `jax.jit`).

Prompts are right-padded to a length bucket; every row keeps its own position, so rows of
different lengths decode together (cache slot = position). Parameters are an argument of the
compiled function, so checkpoints of one architecture swap in without recompiling.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from functools import partial
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from scoder_jax.errors import ScoderError
from scoder_jax.generate.sampling import SamplingParams, sample_key, sample_tokens
from scoder_jax.models.llama import Decoder, init_cache

log = logging.getLogger(__name__)

DEFAULT_BUCKETS = (32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)


@dataclass
class Completion:
    prompt_index: int
    sample_index: int
    tokens: list[int]
    finish_reason: str  # "stop" | "length"


def bucket(n: int, buckets: Sequence[int]) -> int:
    for b in buckets:
        if n <= b:
            return b
    return int(2 ** math.ceil(math.log2(max(n, 1))))


class Engine:
    """Generates from one model (or several checkpoints of one architecture, via `set_model`)."""

    def __init__(self, model: Decoder, *, buckets: Sequence[int] = DEFAULT_BUCKETS, max_batch: int = 64,
                 pad_id: int = 0):
        self.cfg = model.cfg
        self.graphdef, self.state = nnx.split(model)
        self.buckets = tuple(sorted(buckets))
        self.max_batch = max_batch
        self.pad_id = pad_id
        self.compilations = 0
        self._fns: dict[tuple, object] = {}

    def set_model(self, model: Decoder) -> None:
        """Swaps in another checkpoint of the same architecture (nothing recompiles)."""
        graphdef, state = nnx.split(model)
        if graphdef != self.graphdef or jax.tree.map(jnp.shape, state) != jax.tree.map(jnp.shape, self.state):
            raise ScoderError(f"checkpoint {model.cfg.name!r} has another architecture than {self.cfg.name!r}")
        self.state = state

    # ------------------------------------------------------------------ public
    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams,
                 prompt_ids: Sequence[int] | None = None) -> list[list[Completion]]:
        """prompts: token id lists. Returns, per prompt, `params.n` completions."""
        if not prompts:
            return []
        prompt_ids = list(prompt_ids) if prompt_ids is not None else list(range(len(prompts)))
        for i, p in enumerate(prompts):
            if len(p) == 0:
                raise ScoderError(f"prompt {prompt_ids[i]}: empty prompt")
            if len(p) + params.max_new_tokens > self.cfg.max_position:
                raise ScoderError(
                    f"prompt {prompt_ids[i]}: {len(p)} tokens + max_new_tokens {params.max_new_tokens} exceed "
                    f"the model's context of {self.cfg.max_position}")
        per_batch = max(1, self.max_batch // params.n)
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # similar lengths together
        results: dict[int, list[Completion]] = {}
        for start in range(0, len(order), per_batch):
            idx = order[start:start + per_batch]
            outs = self._generate_batch([prompts[i] for i in idx], [prompt_ids[i] for i in idx], params)
            for i, comps in zip(idx, outs):
                for c in comps:
                    c.prompt_index = i
                results[i] = comps
        return [results[i] for i in range(len(prompts))]

    # ------------------------------------------------------------------ internals
    def _generate_batch(self, prompts, prompt_ids, params: SamplingParams) -> list[list[Completion]]:
        n = params.n
        B0 = len(prompts)
        B0_pad = 1 << (B0 - 1).bit_length()  # bucket the batch too
        Tp = bucket(max(len(p) for p in prompts), self.buckets)
        new_bucket = bucket(params.max_new_tokens, self.buckets)
        tokens = np.full((B0_pad, Tp), self.pad_id, np.int32)
        lengths = np.ones((B0_pad,), np.int32)
        for r, p in enumerate(prompts):
            tokens[r, :len(p)] = p
            lengths[r] = len(p)
        keys = jnp.stack([sample_key(params.seed, pid, s) for pid in list(prompt_ids) + [0] * (B0_pad - B0)
                          for s in range(n)])
        stop = np.full((max(1, len(params.stop_ids)),), -1, np.int32)
        stop[:len(params.stop_ids)] = params.stop_ids
        rows = B0_pad * n
        knobs = (
            jnp.full((rows,), params.temperature, jnp.float32), jnp.full((rows,), params.top_k, jnp.int32),
            jnp.full((rows,), params.top_p, jnp.float32), jnp.full((rows,), params.min_p, jnp.float32),
        )
        fn = self._fn(B0_pad, Tp, n, new_bucket, len(stop))
        out, n_out, stopped = fn(self.state, jnp.asarray(tokens), jnp.asarray(lengths), keys, jnp.asarray(stop),
                                 jnp.int32(params.max_new_tokens), *knobs)
        out, n_out, stopped = np.asarray(out), np.asarray(n_out), np.asarray(stopped)
        comps = []
        for r in range(B0):
            row = []
            for s in range(n):
                k = r * n + s
                row.append(Completion(r, s, out[k, :n_out[k]].tolist(), "stop" if stopped[k] else "length"))
            comps.append(row)
        return comps

    def _fn(self, B0: int, Tp: int, n: int, max_new: int, n_stop: int):
        key = (B0, Tp, n, max_new, n_stop)
        if key not in self._fns:
            self.compilations += 1
            log.info("compiling generate for batch %d x %d samples, prompt bucket %d, %d new tokens "
                     "(compilation %d)", B0, n, Tp, max_new, self.compilations)
            self._fns[key] = jax.jit(partial(_generate, self.graphdef, n=n, max_new=max_new))
        return self._fns[key]


def _generate(graphdef, state, tokens, lengths, keys, stop_ids, limit, temperature, top_k, top_p, min_p,
              *, n: int, max_new: int):
    """tokens [B0, Tp] right-padded, lengths [B0]; keys [B0 * n]. Returns
    out [B0 * n, max_new] tokens, n_out [B0 * n] valid counts, stopped [B0 * n] bool."""
    model = nnx.merge(graphdef, state)
    cfg = model.cfg
    B0, Tp = tokens.shape
    S = Tp + max_new
    cache = init_cache(cfg, B0, S)
    positions = jnp.broadcast_to(jnp.arange(Tp, dtype=jnp.int32), (B0, Tp))
    pre = model(tokens, positions=positions, cache=cache, return_logits=False)
    last_h = jnp.take_along_axis(pre.hidden, (lengths - 1)[:, None, None], axis=1)  # [B0, 1, E]
    logits = model.logits(last_h)[:, 0]  # [B0, V]
    # n samples share the prompt's prefill: repeat rows
    logits = jnp.repeat(logits, n, axis=0)
    cache = jax.tree.map(lambda c: jnp.repeat(c, n, axis=1), pre.cache)
    pos = jnp.repeat(lengths, n)  # next position to write
    B = B0 * n

    def step_keys(step):
        return jax.vmap(lambda k: jax.random.fold_in(k, step))(keys)

    first = sample_tokens(logits, step_keys(0), temperature, top_k, top_p, min_p)
    out = jnp.zeros((B, max_new), jnp.int32).at[:, 0].set(first)
    done = jnp.isin(first, stop_ids) | (limit <= 1)
    n_out = jnp.ones((B,), jnp.int32)
    stopped = jnp.isin(first, stop_ids)

    def cond(carry):
        step, _, _, _, done, _, _ = carry
        return (step < limit) & ~jnp.all(done)

    def body(carry):
        step, cache, out, pos, done, n_out, stopped = carry
        tok = out[:, step - 1]
        o = model(tok[:, None], positions=pos[:, None], cache=cache)
        nxt = sample_tokens(o.logits[:, 0], step_keys(step), temperature, top_k, top_p, min_p)
        nxt = jnp.where(done, 0, nxt)
        out = out.at[:, step].set(nxt)
        hit = jnp.isin(nxt, stop_ids) & ~done
        n_out = jnp.where(done, n_out, n_out + 1)
        stopped = stopped | hit
        done = done | hit | (step + 1 >= limit)
        return step + 1, o.cache, out, pos + 1, done, n_out, stopped

    carry = (jnp.int32(1), cache, out, pos, done, n_out, stopped)
    _, _, out, _, _, n_out, stopped = jax.lax.while_loop(cond, body, carry)
    return out, n_out, stopped


def truncate_at_stops(text: str, stop_strings: Sequence[str]) -> tuple[str, bool]:
    """Cuts `text` at the earliest stop string; says whether one was found."""
    cut = min((i for i in (text.find(s) for s in stop_strings if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def generate_texts(engine: Engine, tokenizer, prompts: Sequence[str], params: SamplingParams, *,
                   chat: bool = False, system: str | None = None) -> list[list[str]]:
    """Text in, text out: per prompt, `params.n` completions (stop strings cut off)."""
    if chat:
        def msgs(p):
            return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": p}]
        ids = [tokenizer.encode_chat(msgs(p)) for p in prompts]
    else:
        ids = [tokenizer.encode(p, add_bos=tokenizer.add_bos) for p in prompts]
    stop_ids = tuple(sorted(set(params.stop_ids) | set(tokenizer.stop_ids)))
    from dataclasses import replace

    outs = engine.generate(ids, replace(params, stop_ids=stop_ids))
    return [[truncate_at_stops(tokenizer.decode(c.tokens), params.stop_strings)[0] for c in row] for row in outs]


def generate_completions(model_path, prompts: Sequence[str], *, n: int = 1, temperature: float = 0.0,
                         max_new_tokens: int = 512, stop: Sequence[str] = (), top_p: float = 1.0,
                         seed: int = 0, chat: bool = False) -> list[list[str]]:
    """Loads a checkpoint and its tokenizer and completes `prompts` (used by `scoder eval`)."""
    from scoder_jax.models.checkpoint import load_model, load_tokenizer

    model = load_model(model_path)
    tok = load_tokenizer(model_path)
    engine = Engine(model, pad_id=tok.pad_id)
    params = SamplingParams(temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, n=n, seed=seed,
                            stop_strings=tuple(stop))
    return generate_texts(engine, tok, prompts, params, chat=chat)
