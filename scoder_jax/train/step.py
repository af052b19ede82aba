"""The training step: masked cross-entropy, gradient accumulation, the optimizer update.

The model is split once into a graph definition, the trainable parameters (a flat dict
{name: array}: every `nnx.Param`, or only the `nnx.LoRAParam` adapters in a LoRA run) and the
frozen rest. The step is a pure function of (params, opt_state, frozen, batch), jitted with
explicit shardings, the parameters and optimizer state donated, and compiled ahead of time so
XLA's memory analysis is known before step 1.

Shapes: A microbatches (grad_accum), R rows per microbatch, T positions per row, V vocab, E embed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from scoder_jax import parallel
from scoder_jax.errors import ScoderError
from scoder_jax.models.llama import Decoder
from scoder_jax.train.optim import zeros_like_f32

log = logging.getLogger(__name__)


def token_cross_entropy(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """logits [..., V] (any float dtype, computed in fp32), targets [...] -> -log p(target) [...]."""
    logits = logits.astype(jnp.float32)
    lse = jax.nn.logsumexp(logits, axis=-1)
    picked = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
    return lse - picked


def loss_sums(model: Decoder, batch: dict, loss_chunk: int = 0) -> tuple[jax.Array, jax.Array]:
    """(sum of weighted token losses, sum of weights) over one microbatch.

    batch: tokens, segment_ids [R, T] int32; targets [R, T] int32, weights [R, T] float32 (0 on
    prompt tokens, padding and the last position of each sample), or, with loss_index [R, C]
    (the positions that carry loss), targets and weights [R, C] at those positions only: logits
    are then computed there alone. With `loss_chunk` (dividing T or C), logits exist for
    `loss_chunk` positions at a time and are recomputed in the backward pass.
    """
    out = model(batch["tokens"], segment_ids=batch["segment_ids"], return_logits=False)
    h, targets, w = out.hidden, batch["targets"], batch["weights"]
    if "loss_index" in batch:
        h = jnp.take_along_axis(h, batch["loss_index"][..., None], axis=1)
    T = h.shape[1]
    if not loss_chunk or loss_chunk >= T:
        ce = token_cross_entropy(model.logits(h), targets)
        return jnp.sum(ce * w), jnp.sum(w)
    if T % loss_chunk:
        raise ScoderError(f"loss_chunk {loss_chunk} does not divide seq_len {T}")
    n = T // loss_chunk

    def split(x):  # [R, T, ...] -> [n, R, chunk, ...]
        return jnp.moveaxis(x.reshape(x.shape[0], n, loss_chunk, *x.shape[2:]), 1, 0)

    @jax.checkpoint
    def chunk(carry, xs):
        hc, tc, wc = xs
        ce = token_cross_entropy(model.logits(hc), tc)
        return carry + jnp.sum(ce * wc), None

    total, _ = jax.lax.scan(chunk, jnp.zeros((), jnp.float32), (split(h), split(targets), split(w)))
    return total, jnp.sum(w)


@dataclass
class StepFns:
    """The jitted step and what it needs: shardings of its inputs and outputs."""

    step: Callable  # (params, opt_state, frozen, batch) -> (params, opt_state, metrics)
    param_shardings: dict
    opt_shardings: Any
    frozen_shardings: dict
    batch_sharding: NamedSharding
    compiled: Any = None


def split_model(model: Decoder, trainable) -> tuple[Any, dict, dict]:
    """(graphdef, trainable params {name: array}, frozen params {name: array})."""
    graphdef, train_state, frozen_state = nnx.split(model, trainable, ...)
    return graphdef, nnx.to_pure_dict(train_state), nnx.to_pure_dict(frozen_state)


def shardings_of(model: Decoder, trainable, mesh: Mesh) -> tuple[dict, dict]:
    """NamedShardings of the trainable and frozen flat dicts, from the parameters' logical axes."""
    _, train_state, frozen_state = nnx.split(model, trainable, ...)
    ts = nnx.to_pure_dict(parallel.variable_shardings(train_state, mesh))
    fs = nnx.to_pure_dict(parallel.variable_shardings(frozen_state, mesh))
    return ts, fs


def opt_state_shardings(tx: optax.GradientTransformation, params: dict, param_shardings: dict, mesh: Mesh):
    """Each optimizer-state leaf shaped like a parameter shards like it; scalars are replicated."""
    abstract = jax.eval_shape(tx.init, params)
    repl = NamedSharding(mesh, P())
    shapes = {k: (v.shape, v.dtype) for k, v in params.items()}

    def one(path, leaf):
        name = path[-1].key if path and isinstance(path[-1], jax.tree_util.DictKey) else None
        if name in param_shardings and tuple(leaf.shape) == tuple(shapes[name][0]):
            return param_shardings[name]
        return repl

    return jax.tree_util.tree_map_with_path(one, abstract)


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """[A, R, T] batches: rows over (data, fsdp)."""
    return NamedSharding(mesh, P(None, parallel.LOGICAL_RULES["batch"], None))


def build_step(graphdef, tx: optax.GradientTransformation, *, grad_accum: int, loss_chunk: int = 0) -> Callable:
    """The pure step (params, opt_state, frozen, batch) -> (params, opt_state, metrics).

    The loss is the mean over every weighted token of the global batch (all microbatches), so
    accumulation gives the same update as one large batch. metrics: loss, grad_norm (before
    clipping), tokens (loss tokens), all fp32 scalars.
    """

    def sums(params, frozen, mb):
        model = nnx.merge(graphdef, params, frozen)
        return loss_sums(model, mb, loss_chunk)

    def grad_sums(params, frozen, mb):
        (loss, n), g = jax.value_and_grad(lambda p: sums(p, frozen, mb), has_aux=True)(params)
        return loss, n, g

    def step(params, opt_state, frozen, batch):
        if grad_accum == 1:
            loss, n, g = grad_sums(params, frozen, jax.tree.map(lambda x: x[0], batch))
            g = jax.tree.map(lambda x: x.astype(jnp.float32), g)
        else:
            def body(carry, mb):
                gacc, lacc, nacc = carry
                loss, n, g = grad_sums(params, frozen, mb)
                gacc = jax.tree.map(lambda a, b: a + b.astype(jnp.float32), gacc, g)
                return (gacc, lacc + loss, nacc + n), None

            init = (zeros_like_f32(params), jnp.zeros((), jnp.float32), jnp.zeros((), jnp.float32))
            (g, loss, n), _ = jax.lax.scan(body, init, batch)
        denom = jnp.maximum(n, 1.0)
        g = jax.tree.map(lambda x: x / denom, g)
        gnorm = optax.global_norm(g)
        g = jax.tree.map(lambda x, p: x.astype(p.dtype), g, params)
        updates, opt_state = tx.update(g, opt_state, params)
        params = optax.apply_updates(params, updates)
        return params, opt_state, {"loss": loss / denom, "grad_norm": gnorm, "tokens": n}

    return step


def jit_step(step: Callable, param_shardings, opt_shardings, frozen_shardings, bsh: NamedSharding,
             batch_keys: tuple[str, ...] = ("tokens", "segment_ids", "targets", "weights")) -> Callable:
    batch_sh = {k: bsh for k in batch_keys}
    repl = NamedSharding(bsh.mesh, P())
    return jax.jit(
        step,
        in_shardings=(param_shardings, opt_shardings, frozen_shardings, batch_sh),
        out_shardings=(param_shardings, opt_shardings, {"loss": repl, "grad_norm": repl, "tokens": repl}),
        donate_argnums=(0, 1),
    )


def abstract_batch(grad_accum: int, micro_rows: int, seq_len: int, bsh: NamedSharding,
                   loss_slots: int | None = None) -> dict:
    """The step's batch as abstract arrays; with `loss_slots` < seq_len, the compact-loss layout."""
    shape = (grad_accum, micro_rows, seq_len)
    compact = loss_slots is not None and loss_slots < seq_len
    lshape = (grad_accum, micro_rows, loss_slots) if compact else shape
    out = {
        "tokens": jax.ShapeDtypeStruct(shape, jnp.int32, sharding=bsh),
        "segment_ids": jax.ShapeDtypeStruct(shape, jnp.int32, sharding=bsh),
        "targets": jax.ShapeDtypeStruct(lshape, jnp.int32, sharding=bsh),
        "weights": jax.ShapeDtypeStruct(lshape, jnp.float32, sharding=bsh),
    }
    if compact:
        out["loss_index"] = jax.ShapeDtypeStruct(lshape, jnp.int32, sharding=bsh)
    return out


def abstract_like(tree, shardings):
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree, shardings)


def compile_step(jitted: Callable, params, opt_state, frozen, batch_abstract) -> tuple[Any, dict]:
    """Lowers and compiles the step for these (abstract) arguments; returns (compiled, memory).

    Traced under the batch's mesh (`jax.set_mesh`), so kernels the partitioner cannot split
    (flash attention) find it and run per device under `shard_map`."""
    mesh = jax.tree.leaves(batch_abstract)[0].sharding.mesh
    with jax.set_mesh(mesh):
        lowered = jitted.lower(params, opt_state, frozen, batch_abstract)
    compiled = lowered.compile()
    return compiled, memory_report(compiled)


def memory_report(compiled) -> dict:
    """XLA's per-device memory analysis of a compiled step, in bytes (empty if unavailable)."""
    try:
        m = compiled.memory_analysis()
    except Exception:  # some backends do not implement it
        m = None
    if m is None:
        return {}
    out = {}
    for k in ("argument_size_in_bytes", "output_size_in_bytes", "alias_size_in_bytes",
              "temp_size_in_bytes", "generated_code_size_in_bytes"):
        out[k.replace("_size_in_bytes", "")] = int(getattr(m, k, 0) or 0)
    # donated arguments alias outputs: count them once
    out["total"] = out["argument"] + out["output"] - out["alias"] + out["temp"] + out["generated_code"]
    return out


def device_memory_limit() -> int | None:
    """Bytes a device can hold, where the backend says (GPU/TPU); None on CPU."""
    try:
        stats = jax.local_devices()[0].memory_stats()
    except Exception:
        return None
    if not stats:
        return None
    return int(stats.get("bytes_limit") or 0) or None


def check_fits(mem: dict, where: str = "the training step") -> None:
    limit = device_memory_limit()
    if mem and limit and mem["total"] > limit:
        raise ScoderError(
            f"{where} needs {mem['total'] / 2**30:.2f} GiB per device (XLA memory analysis: arguments "
            f"{mem['argument'] / 2**30:.2f}, temporaries {mem['temp'] / 2**30:.2f}) but a device holds "
            f"{limit / 2**30:.2f} GiB: lower batch_size, raise grad_accum, set remat, loss_chunk, or use more fsdp")
