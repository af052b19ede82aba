"""The sampling engine: prefill and decode with a KV cache, continuous batching, per-sample keys.

Design (one generate call):

- One model path: prefill and every decode step are the model's own layers
  (`llama.forward_cached`), against the one KV cache layout of `scoder_jax.models.kv_cache`
  (one buffer per layer, keys [B, K, D, S] and values [B, K, S, D]; the judge uses the same).
  The prefill attends by the no-cache attention (the chunked XLA path, or cfg's kernel);
  a decode step attends through `kv_cache.attend`, which on CPU visits blocks of `attn_block`
  slots up to the longest live row. Weights are unstacked per layer and LoRA merged once per
  checkpoint (`decode_weights`), so no step slices a stacked weight or cache.
- A decode batch of B slots and S cache slots per row, S = the length bucket of the longest
  prompt plus `max_new_tokens`. Everything the batch carries between device calls (the cache,
  each row's token, slot, step, limit, key, ...) is one `DecodeState` pytree, donated whole
  and sharded by one tree of logical axes (`state_axes`). `steps.py` holds this device side
  (the state, each call's inputs, the jitted insert and decode bodies); this module the host.
- Decoding runs in chunks of up to `chunk` steps inside one jitted `while_loop` (the state
  donated); a chunk ends early once enough slots are free for the next waiting prompt.
  Between chunks the host collects finished rows (stop ids are checked on device, stop
  strings on the host, decoding only each row's new tokens: `stop_strings`), emits them,
  and refills free slots: a jitted insert prefills the waiting prompts (a small batch,
  bucketed by count and length), samples their first tokens and copies their KV into the
  free slots. The `n` samples of a prompt share its prefill
  (its KV is copied into n slots). Rows restart at position 0; stale slots beyond a row's
  position are masked.
- Once nothing waits, the batch shrinks: when the live rows fit half of it, a jitted gather
  moves them (the whole state) into the smallest halving that holds them (not below
  MIN_SHRUNK_BATCH rows), so the run's tail does not decode dead rows.
- Sample `s` of the prompt with id `p` draws its t-th token with
  `fold_in(sample_key(seed, p, s), t)`, so outputs do not depend on batch size, slot, order
  or device count.
- Compiled shapes are bounded: decode per (B, S) (B halved at most log2(max_batch / 8)
  times), insert per (prefill count bucket, prompt length bucket) for that (B, S).
  Parameters are arguments, so checkpoints of one architecture swap in (`set_model`)
  without recompiling.
- With a mesh, weights are placed by their logical axes (fsdp / tensor) and the decode batch
  is split over ('data', 'fsdp').
"""

from __future__ import annotations

import collections
import re
import logging
import math
import time
from dataclasses import dataclass, replace
from functools import partial
from typing import Callable, Sequence

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh

from scoder_jax import parallel
from scoder_jax.errors import ScoderError
from scoder_jax.generate.sampling import SamplingParams, sampling_mode
from scoder_jax.generate.steps import (Admission, ChunkRequest, DecodeState, Knobs, decode_chunk, decode_weights,
                                       init_state, insert, state_axes)
from scoder_jax.generate.stop_strings import StopStringWatch, split_rule
from scoder_jax.models import llama
from scoder_jax.models.llama import Decoder, lora_specs, param_specs

log = logging.getLogger(__name__)

DEFAULT_BUCKETS = (32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
UNROLL_GPU = 4


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


def _pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


@dataclass
class _Slot:
    prompt: int
    sample: int
    tokens: list[int]
    stops: StopStringWatch | None = None  # its stop-string check (None: none to check)


class Engine:
    """Generates from one model (or several checkpoints of one architecture, via `set_model`).

    `chunk`: decode steps per device call; `unroll`: decode steps per iteration of its loop
    (auto: UNROLL_GPU on GPU, where every iteration's exit test waits for the device; else 1).
    `attn_block`: decode attention visits the cache in blocks of this many slots up to the
    longest live row (None: all slots every step; the default is 128 on CPU and None on
    accelerators, where a dynamic inner loop costs more than it saves at typical lengths).
    `mesh`: shard weights (fsdp/tensor) and the batch (data, fsdp).
    """

    def __init__(self, model: Decoder, *, buckets: Sequence[int] = DEFAULT_BUCKETS, max_batch: int = 64,
                 pad_id: int = 0, mesh: Mesh | None = None, chunk: int = 8, attn_block: int | None | str = "auto",
                 unroll: int | str = "auto"):
        self.cfg = model.cfg
        self.graphdef, state = nnx.split(model)
        self._shapes = jax.tree.map(lambda x: (tuple(x.shape), str(x.dtype)), state)
        self.buckets = tuple(sorted(buckets))
        self.mesh = mesh
        self.dp = 1 if mesh is None else mesh.shape.get("data", 1) * mesh.shape.get("fsdp", 1)
        self.max_batch = max(max_batch, 1)
        self.pad_id = pad_id
        self.chunk = chunk
        if attn_block == "auto":
            attn_block = 128 if jax.default_backend() == "cpu" else None
        self.attn_block = attn_block
        if unroll == "auto":
            unroll = UNROLL_GPU if jax.default_backend() == "gpu" else 1
        if unroll < 1 or chunk % unroll:
            raise ValueError(f"unroll {unroll} must be at least 1 and divide chunk {chunk}")
        self.unroll = unroll
        self.compilations = 0
        self.compiled_shapes: list[tuple] = []
        # cumulative timings: compile_s, decode_s (device time of decode chunks), decode_steps,
        # decode_row_steps (steps x live rows), insert_s, prompts_prefilled, shrinks (batch halvings)
        self.stats = collections.Counter()
        self._fns: dict[tuple, object] = {}
        self.weights = self._weights_of(model)

    # ------------------------------------------------------------------ weights
    def _sharding(self, axes, shape):
        return None if self.mesh is None else parallel.sharding_for(axes, shape, self.mesh)

    def _weights_of(self, model: Decoder):
        specs = {**param_specs(self.cfg), **lora_specs(self.cfg)}
        stacked = {n: getattr(model, n).value for n in specs}
        if self.mesh is not None:
            stacked = {n: jax.device_put(v, self._sharding(specs[n][1], v.shape)) for n, v in stacked.items()}
        key = ("split",)
        if key not in self._fns:
            self._weight_shardings = None
            if self.mesh is not None:
                abstract = jax.eval_shape(partial(decode_weights, self.cfg), stacked)
                self._weight_shardings = jax.tree.map(lambda a, axes: self._sharding(axes, a.shape), abstract,
                                                      llama.weights_axes(self.cfg, param_specs(self.cfg)))
            self._fns[key] = self._compile(key, jax.jit(partial(decode_weights, self.cfg),
                                                        out_shardings=self._weight_shardings), stacked)
        return self._fns[key](stacked)

    def set_model(self, model: Decoder) -> None:
        """Swaps in another checkpoint of the same architecture (nothing recompiles)."""
        graphdef, state = nnx.split(model)
        shapes = jax.tree.map(lambda x: (tuple(x.shape), str(x.dtype)), state)
        if graphdef != self.graphdef or shapes != self._shapes:
            mine = dict(jax.tree_util.tree_flatten_with_path(self._shapes)[0])
            theirs = dict(jax.tree_util.tree_flatten_with_path(shapes)[0])
            diff = next((f"{jax.tree_util.keystr(k)}: {mine.get(k)} vs {theirs.get(k)}"
                         for k in sorted(set(mine) | set(theirs), key=str) if mine.get(k) != theirs.get(k)),
                        "module structure differs")
            raise ScoderError(f"checkpoint {model.cfg.name!r} has another architecture than {self.cfg.name!r} "
                              f"({diff}); one engine serves checkpoints of one architecture only")
        self.weights = self._weights_of(model)

    def _compile(self, key: tuple, jitted, *args):
        t0 = time.perf_counter()
        compiled = jitted.lower(*args).compile()
        self.compilations += 1
        self.compiled_shapes.append(key)
        self.stats["compile_s"] += time.perf_counter() - t0
        log.info("compiled %s in %.1fs (compilation %d)", key, time.perf_counter() - t0, self.compilations)
        return compiled

    # ------------------------------------------------------------------ public
    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams,
                 prompt_ids: Sequence[int] | None = None, *,
                 samples: Sequence[Sequence[int]] | None = None,
                 on_complete: Callable[[Completion], None] | None = None,
                 decode: Callable[[list[int]], str] | None = None) -> list[list[Completion]]:
        """prompts: token id lists. Returns, per prompt, its completions (`params.n` of them, or
        those listed in `samples[i]`, sample indices to produce, for resuming).

        `prompt_ids` (default 0..) name the prompts in the sample keys; `on_complete` is called
        with each completion as soon as it finishes; `decode` (ids -> text) lets stop strings
        end a sample early (without it they are not checked here).
        """
        if not prompts:
            return []
        prompt_ids = list(prompt_ids) if prompt_ids is not None else list(range(len(prompts)))
        if len(prompt_ids) != len(prompts):
            raise ScoderError(f"{len(prompt_ids)} prompt ids for {len(prompts)} prompts")
        self.validate(prompts, params, prompt_ids)
        todo = [list(range(params.n)) if samples is None else list(samples[i]) for i in range(len(prompts))]
        total = sum(len(t) for t in todo)
        results: list[list[Completion]] = [[] for _ in prompts]
        if total == 0:
            return results
        _Run(self, prompts, prompt_ids, todo, params, results, on_complete, decode).run(total)
        for r in results:
            r.sort(key=lambda c: c.sample_index)
        return results

    def validate(self, prompts: Sequence[Sequence[int]], params: SamplingParams,
                 prompt_ids: Sequence[int] | None = None) -> None:
        """Raises ScoderError for an empty prompt, one that does not fit the context with
        `max_new_tokens`, or a token id outside the vocabulary (before any work)."""
        for i, p in enumerate(prompts):
            name = prompt_ids[i] if prompt_ids is not None else i
            if len(p) == 0:
                raise ScoderError(f"prompt {name}: empty prompt")
            if len(p) + params.max_new_tokens > self.cfg.max_position:
                raise ScoderError(
                    f"prompt {name}: {len(p)} tokens + max_new_tokens {params.max_new_tokens} exceed the model's "
                    f"context of {self.cfg.max_position} (shorten the prompt or lower max_new_tokens)")
            if min(p) < 0 or max(p) >= self.cfg.vocab_size:
                raise ScoderError(f"prompt {name}: token id outside the vocabulary of {self.cfg.vocab_size}")

    # ------------------------------------------------------------------ compiled functions
    def _state_shardings(self, B: int, S: int):
        """The DecodeState of B rows and S slots as a tree of shardings (from its logical axes)."""
        abstract = jax.eval_shape(partial(init_state, self.cfg, B, S))
        return jax.tree.map(lambda a, axes: parallel.sharding_for(axes, a.shape, self.mesh), abstract,
                            state_axes(self.cfg))

    def _init_fn(self, B: int, S: int):
        key = ("init", B, S)
        if key not in self._fns:
            out = None if self.mesh is None else self._state_shardings(B, S)
            self._fns[key] = self._compile(key, jax.jit(partial(init_state, self.cfg, B, S), out_shardings=out))
        return self._fns[key]

    def _decode_fn(self, B: int, S: int, mode: str, ngram: int, args):
        key = ("decode", B, S, self.chunk, mode, ngram, self.unroll)
        if key not in self._fns:
            kw = {}
            if self.mesh is not None:
                st, rep = self._state_shardings(B, S), parallel.replicated(self.mesh)
                rows = parallel.sharding_for(("batch", None), (B, self.chunk), self.mesh)
                req = ChunkRequest(kill=st.active, max_steps=rep, exit_free=rep)
                kw = dict(in_shardings=(self._weight_shardings, st, req, rep), out_shardings=(st, rows, rep))
            block = self.attn_block if self.attn_block and S % self.attn_block == 0 else None
            fn = jax.jit(partial(decode_chunk, self.cfg, self.chunk, block, mode, ngram, self.unroll),
                         donate_argnums=(1,), **kw)
            self._fns[key] = self._compile(key, fn, *args)
        return self._fns[key]

    def _gather_fn(self, B: int, B2: int, S: int, args):
        key = ("gather", B, B2, S)
        if key not in self._fns:
            kw = {}
            if self.mesh is not None:
                kw = dict(in_shardings=(self._state_shardings(B, S), parallel.replicated(self.mesh)),
                          out_shardings=self._state_shardings(B2, S))
            self._fns[key] = self._compile(key, jax.jit(DecodeState.rows, **kw), *args)
        return self._fns[key]

    def _insert_fn(self, B: int, S: int, Pn: int, Tp: int, mode: str, args):
        key = ("insert", B, S, Pn, Tp, mode)
        if key not in self._fns:
            kw = {}
            if self.mesh is not None:
                st, rep = self._state_shardings(B, S), parallel.replicated(self.mesh)
                kw = dict(in_shardings=(self._weight_shardings, st, rep, rep), out_shardings=(st, rep))
            fn = jax.jit(partial(insert, self.cfg, mode), donate_argnums=(1,), **kw)
            self._fns[key] = self._compile(key, fn, *args)
        return self._fns[key]


MIN_SHRUNK_BATCH = 8  # below this a decode step costs about the same (weight streaming dominates)


class _Run:
    """The host side of one generate call: the waiting queue, the slots, refills, results."""

    def __init__(self, eng: Engine, prompts, prompt_ids, todo, params: SamplingParams, results, on_complete,
                 decode):
        self.eng, self.prompts, self.prompt_ids, self.params = eng, prompts, prompt_ids, params
        self.results, self.on_complete, self.decode = results, on_complete, decode
        # stop strings are checked on the host, decoding only each slot's new tokens (stop_strings.py)
        self.check_stops = bool(decode is not None and any(params.stop_strings))
        self.split_rule = split_rule(decode) if self.check_stops else None
        self.queue = collections.deque((i, list(t)) for i, t in enumerate(todo) if t)
        stops = sorted(set(params.stop_ids))
        self.stop_set = set(stops)
        self.stop = np.full((max(8, _pow2(len(stops))),), -1, np.int32)
        self.stop[:len(stops)] = stops
        self.mode = sampling_mode(params)
        self.knobs = Knobs(stop=self.stop, temperature=np.float32(params.temperature), top_k=np.int32(params.top_k),
                           top_p=np.float32(params.top_p), min_p=np.float32(params.min_p))

    def run(self, total: int) -> None:
        eng, params = self.eng, self.params
        B = min(eng.max_batch, _pow2(total))
        B = -(-B // eng.dp) * eng.dp
        S = bucket(max(len(self.prompts[i]) for i, _ in self.queue) + params.max_new_tokens, eng.buckets)
        if eng.attn_block and S > eng.attn_block:  # a cache of one block or less: one pass, no blocks
            S = -(-S // eng.attn_block) * eng.attn_block
        self.B, self.S = B, S
        st = eng._init_fn(B, S)()
        self.slots: list[_Slot | None] = [None] * B
        self.dev_active = np.zeros((B,), bool)  # what the device believes
        while self.queue or any(s is not None for s in self.slots):
            st = self._refill(st)
            if not any(s is not None for s in self.slots):
                continue
            if not self.queue:
                st = self._shrink(st)
            B = self.B
            # rows the host ended (stop strings) that the device still decodes
            killed = self.dev_active & np.array([s is None for s in self.slots])
            if self.queue:
                exit_free = min(len(self.queue[0][1]), B)
            else:  # nothing waits: end the chunk once the live rows fit half the batch
                exit_free = B - B // 2 if self._smaller(B // 2) < B else B + 1
            args = (eng.weights, st, ChunkRequest(kill=killed, max_steps=np.int32(eng.chunk),
                                                  exit_free=np.int32(exit_free)), self.knobs)
            fn = eng._decode_fn(B, S, self.mode, params.no_repeat_ngram, args)
            t0 = time.perf_counter()
            st, toks, steps = fn(*args)
            toks, active = np.asarray(toks), np.asarray(st.active)
            eng.stats["decode_s"] += time.perf_counter() - t0
            eng.stats["decode_steps"] += int(steps)
            eng.stats["decode_row_steps"] += int((toks >= 0).sum())
            self.dev_active = active.copy()
            for b, slot in enumerate(self.slots):
                if slot is None:
                    continue
                new = toks[b][toks[b] >= 0].tolist()
                slot.tokens.extend(new)
                if not active[b]:
                    self._finish(b, "stop" if slot.tokens[-1] in self.stop_set else "length")
                elif new and self._hit_stop_string(slot):
                    self._finish(b, "stop")

    def _smaller(self, live: int) -> int:
        """The decode batch for `live` rows once nothing waits: the current one halved while
        they fit (not below MIN_SHRUNK_BATCH, a multiple of the data-parallel size)."""
        B, dp = self.B, self.eng.dp
        while B // 2 >= max(live, MIN_SHRUNK_BATCH) and (B // 2) % dp == 0:
            B //= 2
        return B

    def _shrink(self, st: DecodeState) -> DecodeState:
        """Once nothing waits and the live rows fit a smaller batch, gathers them (cache rows
        and state) into it: the tail of a run does not decode dead rows. Same samples (keys
        are per sample, not per row); at most log2(max_batch / MIN_SHRUNK_BATCH) more decode shapes."""
        live = [b for b, s in enumerate(self.slots) if s is not None]
        B2 = self._smaller(len(live))
        if B2 == self.B:
            return st
        # padding rows: dead ones, those the device already stopped first (a row the host
        # ended may still be active there: the next chunk kills it, wherever it lands)
        dead = sorted((b for b, s in enumerate(self.slots) if s is None), key=lambda b: self.dev_active[b])
        idx = np.array(live + dead[:B2 - len(live)], np.int32)
        args = (st, idx)
        st = self.eng._gather_fn(self.B, B2, self.S, args)(*args)
        self.slots = [self.slots[b] for b in idx]
        self.dev_active = self.dev_active[idx]
        self.B = B2
        self.eng.stats["shrinks"] += 1
        return st

    def _hit_stop_string(self, slot: _Slot) -> bool:
        """Whether a stop string occurs in the slot's decoded completion (same answer as decoding
        it all; only its tokens since the last check's safe boundary are decoded)."""
        return slot.stops is not None and slot.stops.hit(slot.tokens)

    def _finish(self, b: int, reason: str) -> None:
        slot = self.slots[b]
        self.slots[b] = None
        c = Completion(slot.prompt, slot.sample, slot.tokens, reason)
        self.results[slot.prompt].append(c)
        if self.on_complete is not None:
            self.on_complete(c)

    def _refill(self, st: DecodeState) -> DecodeState:
        eng, B = self.eng, self.B
        free = [b for b, s in enumerate(self.slots) if s is None]
        n_active = B - len(free)
        admitted: list[tuple[int, list[int]]] = []
        n_free = len(free)
        while self.queue and n_free:
            i, rest = self.queue[0]
            k = min(len(rest), n_free)
            if k < len(rest) and (n_active or admitted) and k < max(1, B // 2):
                break  # wait for room for the whole group rather than prefill it twice
            admitted.append((i, rest[:k]))
            n_free -= k
            if k == len(rest):
                self.queue.popleft()
            else:
                self.queue[0] = (i, rest[k:])
        if not admitted:
            return st
        Pn = _pow2(len(admitted))
        Tp = bucket(max(len(self.prompts[i]) for i, _ in admitted), eng.buckets)
        tokens = np.full((Pn, Tp), eng.pad_id, np.int32)
        lengths = np.ones((Pn,), np.int32)
        tgt = np.full((B,), B, np.int32)
        src = np.zeros((B,), np.int32)
        pids = np.zeros((B,), np.int32)
        sidx = np.zeros((B,), np.int32)
        j = 0
        placed = []
        for r, (i, samples) in enumerate(admitted):
            p = self.prompts[i]
            tokens[r, :len(p)] = p
            lengths[r] = len(p)
            for s in samples:
                b = free[j]
                tgt[j], src[j], pids[j], sidx[j] = b, r, self.prompt_ids[i], s
                watch = StopStringWatch(self.decode, self.params.stop_strings, self.split_rule) \
                    if self.check_stops else None
                self.slots[b] = _Slot(i, s, [], watch)
                placed.append((j, b))
                j += 1
        adm = Admission(tokens=tokens, lengths=lengths, tgt=tgt, src=src, pids=pids, sidx=sidx,
                        seed=np.int32(self.params.seed), limit=np.int32(self.params.max_new_tokens))
        args = (eng.weights, st, adm, self.knobs)
        fn = eng._insert_fn(B, self.S, Pn, Tp, self.mode, args)
        t0 = time.perf_counter()
        st, first = fn(*args)
        first = np.asarray(first)
        eng.stats["insert_s"] += time.perf_counter() - t0
        eng.stats["prompts_prefilled"] += len(admitted)
        for j, b in placed:
            self.dev_active[b] = first[j] not in self.stop_set and self.params.max_new_tokens > 1
            slot = self.slots[b]
            slot.tokens.append(int(first[j]))
            if slot.tokens[-1] in self.stop_set or self.params.max_new_tokens <= 1:
                self._finish(b, "stop" if slot.tokens[-1] in self.stop_set else "length")
            elif self._hit_stop_string(slot):
                self._finish(b, "stop")
        return st


def truncate_at_stops(text: str, stop_strings: Sequence[str]) -> tuple[str, bool]:
    """Cuts `text` at the earliest stop string; says whether one was found."""
    cut = min((i for i in (text.find(s) for s in stop_strings if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


_SPECIAL_LIKE = re.compile(r"<[|\uff5c][^<>]*[|\uff5c]>")


def resolve_stops(tokenizer, params: SamplingParams) -> SamplingParams:
    """Adds the tokenizer's stop ids; a stop string that is a special token becomes a stop id
    (decoded text never shows special tokens). An empty stop string, or one that looks like a
    special token (`<|...|>`) but is not in the vocabulary, is an error."""
    ids = set(params.stop_ids) | set(tokenizer.stop_ids)
    strings = []
    for s in params.stop_strings:
        if not s:
            raise ScoderError("stop string: empty (remove it)")
        tid = tokenizer.token_to_id(s)
        if tid is not None and tokenizer.is_special(tid):
            ids.add(tid)
            continue
        if _SPECIAL_LIKE.fullmatch(s) and tid is None:
            raise ScoderError(f"stop string {s!r} looks like a special token but is not in the vocabulary of "
                              f"{getattr(tokenizer, 'source', 'the tokenizer')} (check its spelling)")
        strings.append(s)
    return replace(params, stop_ids=tuple(sorted(ids)), stop_strings=tuple(strings))


def encode_prompts(tokenizer, prompts: Sequence, *, chat: bool = False, system: str | None = None) -> list[list[int]]:
    """Prompt texts (or chat message lists) -> token ids, through the chat template if `chat`."""
    out = []
    for p in prompts:
        if isinstance(p, list):
            out.append(tokenizer.encode_chat(p))
        elif chat:
            msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": p}]
            out.append(tokenizer.encode_chat(msgs))
        else:
            out.append(tokenizer.encode(p, add_bos=tokenizer.add_bos))
    return out


def completion_text(tokenizer, c: Completion, stop_strings: Sequence[str]) -> str:
    return truncate_at_stops(tokenizer.decode(c.tokens), stop_strings)[0]


def generate_texts(engine: Engine, tokenizer, prompts: Sequence[str], params: SamplingParams, *,
                   chat: bool = False, system: str | None = None) -> list[list[str]]:
    """Text in, text out: per prompt, `params.n` completions (stop strings cut off)."""
    params = resolve_stops(tokenizer, params)
    ids = encode_prompts(tokenizer, prompts, chat=chat, system=system)
    outs = engine.generate(ids, params, decode=tokenizer.decode)
    return [[completion_text(tokenizer, c, params.stop_strings) for c in row] for row in outs]


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
