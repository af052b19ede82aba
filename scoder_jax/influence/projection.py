"""Random projections of per-example gradients to d dimensions (Rademacher or Gaussian).

The projection is a function of (seed, parameter names and shapes, d) alone: the matrix of a
parameter block `name` is generated from `block_key(seed, name) = fold_in(key(seed),
stable_hash(name))`, chunk by chunk of `ROWS_PER_KEY` rows, chunk j from `fold_in(block_key, j)`.
The same seed therefore gives the same projection whatever the batch size, device count or
host count, and no (parameters x d) matrix ever needs to exist at once.

Two layouts:

* dense (LESS / TRAK): `z = sum_b vec(G_b) @ P_b / sqrt(d)`, P_b [n_b, d] with +-1 (or N(0, 1))
  entries. Below `cache_bytes` the chunks are generated once and kept on the device; above it
  they are regenerated chunk by chunk inside the compiled function (memory O(chunk * d)).
* two-stage (Kronecker, then dense): a block viewed per layer as a matrix G [r, c] becomes
  `P_l G P_r^T` [k_r, k_c] with P_l [k_r, r], P_r [k_c, c] drawn from `fold_in(block_key(f"{name}/{layer}"), 0|1)`
  (a side not larger than `kron_dim` is left as it is); the concatenation of every block's
  result (in block order) is then projected densely to d as the block named `STAGE2`.
  This is also how the full-model mode projects `sum_t g_t a_t^T` without forming it.

All products accumulate in fp32. Shapes: B examples, n_b parameters of a block, d output dims.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

ROWS_PER_KEY = 256  # rows of a projection matrix drawn from one key: part of the definition
STAGE2 = "__stage2__"
Kind = Literal["rademacher", "gaussian"]


def stable_hash(name: str) -> int:
    """A 31-bit integer from a name's sha256 (the same in every process and Python version)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:4], "little") & 0x7FFFFFFF


def block_key(seed: int, name: str) -> jax.Array:
    return jax.random.fold_in(jax.random.key(int(seed), impl="threefry2x32"), stable_hash(name))


def draw(key: jax.Array, shape: tuple[int, ...], kind: Kind) -> jax.Array:
    """Entries of one chunk: +-1 (Rademacher) or N(0, 1), fp32."""
    if kind == "rademacher":
        return jax.random.rademacher(key, shape, jnp.float32)
    if kind == "gaussian":
        return jax.random.normal(key, shape, jnp.float32)
    raise ValueError(f"unknown projection kind {kind!r} (rademacher or gaussian)")


def dense_chunks(key: jax.Array, n_rows: int, d: int, kind: Kind) -> jax.Array:
    """The whole [ceil(n_rows / ROWS_PER_KEY), ROWS_PER_KEY, d] matrix of a block (rows past n_rows
    are drawn and later met by zero padding). Unscaled."""
    n_chunks = -(-n_rows // ROWS_PER_KEY)
    keys = jax.vmap(lambda j: jax.random.fold_in(key, j))(jnp.arange(n_chunks, dtype=jnp.uint32))
    return jax.vmap(lambda k: draw(k, (ROWS_PER_KEY, d), kind))(keys)


def side_matrix(key: jax.Array, k: int, n: int, kind: Kind) -> jax.Array:
    """One Kronecker factor [k, n] / sqrt(k) (rows chunked like every other matrix)."""
    m = dense_chunks(key, k, n, kind).reshape(-1, n)[:k]
    return m / math.sqrt(k)


@dataclass(frozen=True)
class Block:
    """A parameter as the projection sees it: per-layer matrices [layers, rows, cols]."""

    name: str
    shape: tuple[int, ...]  # the parameter's own shape
    layers: int
    rows: int
    cols: int

    @property
    def size(self) -> int:
        return self.layers * self.rows * self.cols


def lora_block(name: str, shape: tuple[int, ...]) -> Block:
    """LoRA A [L, *in, R] -> per layer [prod(in), R]; B [L, R, *out] -> [R, prod(out)]."""
    L = shape[0]
    if name.endswith("_a"):
        return Block(name, tuple(shape), L, math.prod(shape[1:-1]), shape[-1])
    return Block(name, tuple(shape), L, shape[1], math.prod(shape[2:]))


def generic_block(name: str, shape: tuple[int, ...]) -> Block:
    """Any other array: one matrix [prod(shape[:-1]), shape[-1]] (a vector is [1, n])."""
    shape = tuple(shape)
    if len(shape) <= 1:
        return Block(name, shape, 1, 1, int(math.prod(shape)))
    return Block(name, shape, 1, math.prod(shape[:-1]), shape[-1])


@dataclass(frozen=True)
class ProjectionConfig:
    d: int = 8192
    seed: int = 0
    kind: Kind = "rademacher"
    two_stage: bool = False  # Kronecker per block, then dense
    kron_dim: int = 32  # k of the Kronecker factors (a side <= k is not projected)
    cache_bytes: int = 1 << 30  # keep the dense matrices on the device below this size (per device)


@dataclass
class Projector:
    """Projects {name: [B, *shape]} per-example gradients to [B, d] fp32."""

    cfg: ProjectionConfig
    blocks: tuple[Block, ...]
    mats: dict = field(default_factory=dict)  # cached matrices (arguments of the compiled function)

    @classmethod
    def for_shapes(cls, shapes: dict[str, tuple[int, ...]], cfg: ProjectionConfig) -> "Projector":
        """LoRA factors (`lora_*_a`, `lora_*_b`) as per-layer matrices, anything else as one matrix."""
        def mk(n, s):
            return lora_block(n, s) if n.startswith("lora_") and n[-2:] in ("_a", "_b") and len(s) >= 3 \
                else generic_block(n, s)

        blocks = tuple(mk(n, tuple(shapes[n])) for n in sorted(shapes))
        p = cls(cfg, blocks)
        p.mats = p.materialize() if p.dense_bytes() <= cfg.cache_bytes else p.side_mats()
        return p

    # ------------------------------------------------------------------ layout
    def kron_shape(self, b: Block) -> tuple[int, int]:
        k = self.cfg.kron_dim
        return (min(b.rows, k), min(b.cols, k))

    def stage1_size(self) -> int:
        return sum(b.layers * math.prod(self.kron_shape(b)) for b in self.blocks)

    def dense_inputs(self) -> list[tuple[str, int]]:
        """(name, rows) of every dense-projected block."""
        if self.cfg.two_stage:
            return [(STAGE2, self.stage1_size())]
        return [(b.name, b.size) for b in self.blocks]

    def dense_bytes(self) -> int:
        return sum(-(-n // ROWS_PER_KEY) * ROWS_PER_KEY * self.cfg.d * 4 for _, n in self.dense_inputs())

    @property
    def cached(self) -> bool:
        return any(k.startswith("dense/") for k in self.mats)

    def side_mats(self) -> dict:
        """The Kronecker factors of the two-stage layout (small: k x rows, k x cols per layer)."""
        if not self.cfg.two_stage:
            return {}
        out = {}
        for b in self.blocks:
            kr, kc = self.kron_shape(b)
            if kr < b.rows:
                out[f"left/{b.name}"] = jnp.stack([
                    side_matrix(jax.random.fold_in(block_key(self.cfg.seed, f"{b.name}/{l}"), 0),
                                kr, b.rows, self.cfg.kind) for l in range(b.layers)])
            if kc < b.cols:
                out[f"right/{b.name}"] = jnp.stack([
                    side_matrix(jax.random.fold_in(block_key(self.cfg.seed, f"{b.name}/{l}"), 1),
                                kc, b.cols, self.cfg.kind) for l in range(b.layers)])
        return out

    def materialize(self) -> dict:
        out = self.side_mats()
        for name, n in self.dense_inputs():
            out[f"dense/{name}"] = jax.jit(dense_chunks, static_argnums=(1, 2, 3))(
                block_key(self.cfg.seed, name), n, self.cfg.d, self.cfg.kind)
        return out

    # ------------------------------------------------------------------ projecting
    def project(self, grads: dict[str, jax.Array], mats: dict | None = None) -> jax.Array:
        """grads {name: [B, *shape]} -> [B, d] fp32 (inside or outside jit; `mats` as from `self.mats`)."""
        mats = self.mats if mats is None else mats
        if self.cfg.two_stage:
            flat = jnp.concatenate([self.kron(b, grads[b.name], mats).reshape(grads[b.name].shape[0], -1)
                                    for b in self.blocks], axis=1)
            return self.dense(STAGE2, flat, mats)
        out = None
        for b in self.blocks:
            g = grads[b.name]
            z = self.dense(b.name, g.reshape(g.shape[0], -1), mats)
            out = z if out is None else out + z
        return out

    def kron(self, b: Block, g: jax.Array, mats: dict) -> jax.Array:
        """[B, *shape] -> [B, layers, k_r, k_c]: P_l G P_r^T per layer."""
        g = g.reshape(g.shape[0], b.layers, b.rows, b.cols).astype(jnp.float32)
        hp = jax.lax.Precision.HIGHEST
        if f"left/{b.name}" in mats:
            g = jnp.einsum("lkr,blrc->blkc", mats[f"left/{b.name}"], g, precision=hp)
        if f"right/{b.name}" in mats:
            g = jnp.einsum("blrc,lkc->blrk", g, mats[f"right/{b.name}"], precision=hp)
        return g

    def dense(self, name: str, x: jax.Array, mats: dict) -> jax.Array:
        """x [B, n] -> x @ P / sqrt(d) [B, d], from the cached chunks or drawing them as it goes."""
        B, n = x.shape
        d = self.cfg.d
        n_chunks = -(-n // ROWS_PER_KEY)
        x = jnp.pad(x.astype(jnp.float32), ((0, 0), (0, n_chunks * ROWS_PER_KEY - n)))
        x = x.reshape(B, n_chunks, ROWS_PER_KEY)
        hp = jax.lax.Precision.HIGHEST
        if f"dense/{name}" in mats:
            z = jnp.einsum("bcr,crd->bd", x, mats[f"dense/{name}"], precision=hp)
        else:
            key = block_key(self.cfg.seed, name)

            def body(acc, xs):
                j, xj = xs
                p = draw(jax.random.fold_in(key, j), (ROWS_PER_KEY, d), self.cfg.kind)
                return acc + jnp.dot(xj, p, precision=hp), None

            z, _ = jax.lax.scan(body, jnp.zeros((B, d), jnp.float32),
                                (jnp.arange(n_chunks, dtype=jnp.uint32), jnp.moveaxis(x, 1, 0)))
        return z / math.sqrt(d)


def dense_reference(shapes: dict[str, tuple[int, ...]], cfg: ProjectionConfig) -> np.ndarray:
    """The explicit [sum of sizes, d] matrix of the dense layout (blocks sorted by name, each
    flattened row-major), scaled by 1/sqrt(d): for tests on small shapes only."""
    parts = []
    for name in sorted(shapes):
        n = math.prod(shapes[name])
        m = np.asarray(dense_chunks(block_key(cfg.seed, name), n, cfg.d, cfg.kind)).reshape(-1, cfg.d)[:n]
        parts.append(m)
    return np.concatenate(parts, axis=0) / math.sqrt(cfg.d)
