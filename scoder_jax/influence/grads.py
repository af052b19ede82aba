"""Per-example gradients, the Adam update direction, and their projected features.

The loss of an example is its training loss: the mean cross-entropy over its response tokens
(`scoder_jax.train.step.loss_sums` on one row holding the example alone, encoded by
`scoder_jax.train.data.encode_record`). Gradients are taken for a whole microbatch at once,
`jax.vmap(jax.grad(loss_one))` with only the differentiated parameters varying, and projected in
the same compiled function, so the [examples, parameters] gradient matrix never leaves the
device; a `jax.lax.map` over microbatches bounds memory by one microbatch.

Modes:
  * `lora`: the LoRA factors (`nnx.LoRAParam`) of a LoRA run, which is what LESS projects. For
    candidates the Adam update direction of the checkpoint's own moments is used,
        Gamma = (b1 m + (1 - b1) g) / sqrt(b2 v + (1 - b2) g^2 + eps)     (no bias correction),
    for targets the plain gradient.
  * `full`: every linear layer of every block (q, k, v, o, gate, up, down), each per-example
    gradient `sum_t a_t g_t^T` [in, out] projected as P_l G P_r^T without forming it: a probe
    adapter with A = P_l^T (fixed, random) and B = 0 leaves the forward pass unchanged, and its
    gradient dL/dB = sum_t (P_l a_t) g_t^T [k, out] is the left-projected gradient; the right
    factor and the dense stage follow. Plain gradients only: the element-wise Adam transform
    needs the gradient itself.

Shapes: M microbatches per call, R examples per microbatch, T positions, d projection dims.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec as P

from scoder_jax import parallel
from scoder_jax.errors import ConfigError, DataError
from scoder_jax.influence.projection import Block, ProjectionConfig, Projector, block_key, side_matrix
from scoder_jax.models.config import LoraConfig
from scoder_jax.models.llama import LORA_TARGETS, Decoder, lora_specs, param_specs
from scoder_jax.train.data import make_row
from scoder_jax.train.step import loss_sums

ALL_TARGETS = tuple(LORA_TARGETS)
ROW_KEYS = ("tokens", "segment_ids", "targets", "weights")


# ----------------------------------------------------------------------------- math


def example_loss(graphdef, diff: dict, rest: dict, row: dict) -> jax.Array:
    """Response-token-mean loss of one example. row: {tokens, segment_ids, targets, weights} [T]."""
    model = nnx.merge(graphdef, diff, rest)
    s, n = loss_sums(model, {k: v[None] for k, v in row.items()})
    return s / jnp.maximum(n, 1.0)


def per_example_grads(graphdef, diff: dict, rest: dict, rows: dict) -> dict[str, jax.Array]:
    """{name: [R, *shape]} gradients of each row's own loss w.r.t. `diff` (rows [R, T])."""
    g = jax.vmap(jax.grad(lambda p, r: example_loss(graphdef, p, rest, r)), in_axes=(None, 0))(diff, rows)
    return {k: v.astype(jnp.float32) for k, v in g.items()}


def adam_direction(g: jax.Array, mu: jax.Array, nu: jax.Array, b1: float, b2: float, eps: float) -> jax.Array:
    """Gamma = (b1 m + (1 - b1) g) / sqrt(b2 v + (1 - b2) g^2 + eps), element-wise (g [R, *shape],
    mu/nu [*shape] broadcast over R), as LESS computes it (no bias correction)."""
    m = b1 * mu.astype(jnp.float32) + (1.0 - b1) * g
    v = b2 * nu.astype(jnp.float32) + (1.0 - b2) * g * g
    return m / jnp.sqrt(v + eps)


def l2_normalize(z: jax.Array) -> jax.Array:
    """Rows of z [B, d] scaled to unit norm (an all-zero row stays zero)."""
    n = jnp.sqrt(jnp.sum(z * z, axis=-1, keepdims=True))
    return jnp.where(n > 0, z / jnp.where(n > 0, n, 1.0), 0.0)


class Moments(NamedTuple):
    mu: dict
    nu: dict
    b1: float
    b2: float
    eps: float


# ----------------------------------------------------------------------------- examples


@dataclass
class Examples:
    """Tokenized examples, one per row: ids/masks as `encode_record` gives them (truncated)."""

    ids: list[np.ndarray]
    masks: list[np.ndarray]
    truncated: int = 0

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def positions(self) -> np.ndarray:
        return np.asarray([max(len(x) - 1, 0) for x in self.ids], np.int64)

    def loss_tokens(self) -> np.ndarray:
        return np.asarray([int(m[1:].sum()) for m in self.masks], np.int64)


def encode_examples(records: Sequence[dict], tokenizer, data_cfg, seq_len: int, *, source: str,
                    vocab_size: int) -> Examples:
    """Each record encoded as the trainer encodes it; longer than seq_len + 1 tokens: truncated."""
    from scoder_jax.train.data import encode_record

    ids_out, masks_out, trunc = [], [], 0
    for i, rec in enumerate(records):
        where = f"{source}: record {i + 1}"
        if not isinstance(rec, dict):
            raise DataError(f"{where}: expected a JSON object")
        ids, mask = encode_record(rec, tokenizer, data_cfg, where)
        if len(ids) and (int(ids.max()) >= vocab_size or int(ids.min()) < 0):
            raise DataError(f"{where}: token id {int(ids.max())} is outside the checkpoint's vocabulary of "
                            f"{vocab_size} (tokenized with another tokenizer? give text records, or ids from "
                            "the checkpoint's tokenizer)")
        if len(ids) > seq_len + 1:
            ids, mask = ids[:seq_len + 1], mask[:seq_len + 1]
            trunc += 1
        ids_out.append(ids)
        masks_out.append(mask)
    return Examples(ids_out, masks_out, trunc)


def bucket_length(n: int, seq_len: int, minimum: int = 32) -> int:
    """Row length for an example of n positions: the next power of two (>= minimum), capped at seq_len."""
    t = minimum
    while t < n:
        t *= 2
    return min(t, seq_len)


def plan_calls(ex: Examples, seq_len: int, per_call: int, min_len: int = 32) -> list[tuple[int, list[int]]]:
    """[(row length T, example indices)]: examples sorted by length, grouped `per_call` at a time
    (a call's examples share one T, so little is padded and few shapes are compiled)."""
    pos = ex.positions
    order = sorted(range(len(ex)), key=lambda i: (pos[i], i))
    calls: list[tuple[int, list[int]]] = []
    for i in order:
        T = bucket_length(int(pos[i]), seq_len, min_len)
        if calls and calls[-1][0] == T and len(calls[-1][1]) < per_call:
            calls[-1][1].append(i)
        else:
            calls.append((T, [i]))
    return calls


def call_arrays(ex: Examples, idx: Sequence[int], T: int, n_micro: int, micro: int) -> dict[str, np.ndarray]:
    """[M, R, T] arrays for the examples `idx` (empty rows past them: zero weight, zero gradient)."""
    rows = [make_row([ex.ids[i]], [ex.masks[i]], T) if len(ex.ids[i]) >= 2 else
            make_row([], [], T) for i in idx]
    rows += [make_row([], [], T)] * (n_micro * micro - len(rows))
    return {k: np.stack([r[k] for r in rows]).reshape(n_micro, micro, T) for k in ROW_KEYS}


# ----------------------------------------------------------------------------- full-model probes


def probe_model(model: Decoder, k: int, seed: int, mesh) -> tuple[Decoder, dict]:
    """A copy of `model` (LoRA merged) with probe adapters on every linear layer of the blocks:
    A = P_l^T [L, *in, k] (Rademacher / sqrt(k), from block_key(seed, f"{w}/{layer}")), B = 0.
    Returns (model, {name: Block of the B gradient} for the projector)."""
    from scoder_jax.models.lora import merged_params

    cfg = model.cfg
    base = merged_params(model)
    pcfg = cfg.replace(lora=LoraConfig(rank=k, alpha=float(k), targets=ALL_TARGETS))
    abstract = nnx.eval_shape(lambda: Decoder(pcfg, rngs=nnx.Rngs(0)))
    specs = {**param_specs(pcfg), **lora_specs(pcfg)}
    blocks = {}
    for name, (shape, axes) in specs.items():
        sh = parallel.sharding_for(axes, shape, mesh)
        if name in base:
            val = base[name]
        elif name.endswith("_a"):
            L, n_in = shape[0], math.prod(shape[1:-1])
            w = LORA_TARGETS[name.split("_")[1]][0]
            val = jnp.stack([side_matrix(jax.random.fold_in(block_key(seed, f"{w}/{l}"), 0), k, n_in, "rademacher").T
                             for l in range(L)]).reshape(shape)
        else:
            val = jnp.zeros(shape, jnp.float32)
            blocks[name] = Block(name, shape, shape[0], k, math.prod(shape[2:]))
        getattr(abstract, name).set_value(jax.device_put(val, sh))
    return abstract, blocks


# ----------------------------------------------------------------------------- the compiled function


@dataclass(frozen=True)
class GradConfig:
    mode: str = "lora"  # lora | full
    micro_batch: int = 8  # examples per vmap (R), over all devices
    microbatches: int = 4  # microbatches per compiled call (M)
    seq_len: int = 2048  # longest example row; longer ones are truncated
    full_rank: int = 32  # full mode: k of the per-layer Kronecker factors
    min_len: int = 32  # shortest row length (rows are powers of two from here up to seq_len)


class FeatureFn:
    """Compiled `batch -> normalized projected features` for one checkpoint.

    `__call__(batch, adam)`: batch {tokens, ...} [M, R, T] (host numpy) -> [M * R, d] float32 numpy
    on every process; `adam` selects the Adam direction (candidates) or the plain gradient.
    """

    def __init__(self, model: Decoder, cfg: GradConfig, proj_cfg: ProjectionConfig, mesh,
                 moments: Moments | None = None):
        self.cfg, self.mesh = cfg, mesh
        if cfg.mode == "full":
            model, blocks = probe_model(model, cfg.full_rank, proj_cfg.seed, mesh)
            graphdef, lora, rest = nnx.split(model, nnx.LoRAParam, ...)
            lora, rest = nnx.to_pure_dict(lora), nnx.to_pure_dict(rest)
            self.diff_names = sorted(blocks)
            rest = {**rest, **{k: v for k, v in lora.items() if k not in blocks}}
            diff = {k: lora[k] for k in self.diff_names}
            pc = ProjectionConfig(**{**proj_cfg.__dict__, "two_stage": True, "kron_dim": cfg.full_rank})
            self.projector = Projector(pc, tuple(b for _, b in sorted(blocks.items())))
            self.projector.mats = (self.projector.materialize() if self.projector.dense_bytes() <= pc.cache_bytes
                                   else self.projector.side_mats())
            if moments is not None:
                raise ConfigError("the full-model mode projects gradients without forming them, so the element-wise "
                                  "Adam transform cannot apply: use plain gradients (--sgd) or the LoRA mode")
        elif cfg.mode == "lora":
            if model.cfg.lora is None:
                raise ConfigError("the checkpoint has no LoRA adapters: influence in LoRA mode needs a LoRA run's "
                                  "checkpoints (or use the full-model mode, --mode full, with --sgd)")
            graphdef, lora, rest = nnx.split(model, nnx.LoRAParam, ...)
            diff, rest = nnx.to_pure_dict(lora), nnx.to_pure_dict(rest)
            self.diff_names = sorted(diff)
            self.projector = Projector.for_shapes({k: v.shape for k, v in diff.items()}, proj_cfg)
        else:
            raise ConfigError(f"influence mode {cfg.mode!r} is not one of lora, full")
        if moments is not None:
            missing = [n for n in self.diff_names if n not in moments.mu or n not in moments.nu]
            if missing:
                raise ConfigError(f"the checkpoint's Adam moments lack '{missing[0]}'")
        self.graphdef, self.diff, self.rest, self.moments = graphdef, diff, rest, moments
        self.d = proj_cfg.d
        rows = parallel.LOGICAL_RULES["batch"]
        self.batch_sharding = NamedSharding(mesh, P(None, rows, None))
        self.out_sharding = NamedSharding(mesh, P(None, rows, None))
        n_rows = mesh.shape["data"] * mesh.shape["fsdp"]
        if cfg.micro_batch % n_rows:
            raise ConfigError(f"micro_batch {cfg.micro_batch} is not divisible by the mesh's data*fsdp = {n_rows}")

    @property
    def n_params(self) -> int:
        return int(sum(math.prod(v.shape) for v in self.diff.values()))

    def compiled(self) -> Callable:
        return _compiled_features(self.graphdef, self.projector.cfg, self.projector.blocks, self.out_sharding)

    def device_batch(self, batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
        return {k: parallel.host_local_array(v, self.batch_sharding) for k, v in batch.items()}

    def __call__(self, batch: dict[str, np.ndarray], adam: bool) -> np.ndarray:
        if adam and self.moments is None:
            raise ConfigError("the Adam transform needs the checkpoint's moments (or use --sgd)")
        m = self.moments
        moments = (m.mu, m.nu, np.float32(m.b1), np.float32(m.b2), np.float32(m.eps)) if adam else None
        out = self.compiled()(self.diff, self.rest, moments, bool(adam), self.projector.mats,
                              self.device_batch(batch))
        return host_array(out).reshape(-1, self.d)


@functools.lru_cache(maxsize=32)
def _compiled_features(graphdef, proj_cfg: ProjectionConfig, blocks: tuple, out_sharding) -> Callable:
    """The jitted feature function, shared by every checkpoint of one model and projection
    (a second checkpoint, or the targets after the candidates, reuse the compilations).

    (diff, rest, (mu, nu, b1, b2, eps) or None, adam: static bool, mats, batch [M, R, T]) -> [M, R, d]

    `adam` is static: candidates (the Adam direction) and targets (plain gradients) compile
    apart, and each computes only its own transform.
    """
    projector = Projector(proj_cfg, blocks)

    def features(diff, rest, moments, adam, mats, batch):
        def one(mb):
            g = per_example_grads(graphdef, diff, rest, mb)
            if adam:
                mu, nu, b1, b2, eps = moments
                g = {k: adam_direction(v, mu[k], nu[k], b1, b2, eps) for k, v in g.items()}
            return l2_normalize(projector.project(g, mats))

        return jax.lax.map(one, batch)

    return jax.jit(features, static_argnames=("adam",), out_shardings=out_sharding)


def host_array(x: jax.Array) -> np.ndarray:
    """A (possibly multi-host) jax Array as a whole numpy array on every process."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(jax.device_get(x))


__all__ = ["per_example_grads", "adam_direction", "l2_normalize", "example_loss", "encode_examples", "plan_calls",
           "call_arrays", "FeatureFn", "GradConfig", "Moments", "probe_model", "Examples", "bucket_length"]
