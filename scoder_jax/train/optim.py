"""The optimizer: global-norm clipping, then AdamW under a warmup + decay schedule.

It acts on a flat dict {parameter name: array} of the trainable parameters only (the LoRA
factors in a LoRA run), so the optimizer state holds nothing for frozen weights. Weight decay
skips norms and biases. The Adam moments are `ScaleByAdamState.mu` / `.nu` inside the chain's
state; `adam_moments(state)` finds them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from scoder_jax.train.config import OptimConfig

NO_DECAY = ("norm", "bq", "bk", "bv", "bo")


def warmup_steps(cfg: OptimConfig, total_steps: int) -> int:
    return cfg.warmup_steps or int(round(cfg.warmup_ratio * total_steps))


def make_schedule(cfg: OptimConfig, total_steps: int) -> optax.Schedule:
    """Linear warmup from 0 to lr, then cosine / linear decay to lr * min_lr_ratio at total_steps
    (or constant). The value at count c is the learning rate of update c + 1."""
    warm = min(warmup_steps(cfg, total_steps), max(total_steps - 1, 0))
    decay = max(total_steps - warm, 1)
    end = cfg.lr * cfg.min_lr_ratio
    if cfg.schedule == "cosine":
        main = optax.cosine_decay_schedule(cfg.lr, decay, alpha=cfg.min_lr_ratio)
    elif cfg.schedule == "linear":
        main = optax.linear_schedule(cfg.lr, end, decay)
    else:
        main = optax.constant_schedule(cfg.lr)
    if warm == 0:
        return main
    # warmup reaches lr at its last step (count warm - 1), as transformers' schedules do
    ramp = lambda c: cfg.lr * (c + 1) / warm  # noqa: E731
    return optax.join_schedules([ramp, main], [warm])


def decay_mask(params: dict) -> dict:
    return {k: not any(tag in k for tag in NO_DECAY) for k in params}


def make_optimizer(cfg: OptimConfig, total_steps: int) -> tuple[optax.GradientTransformation, optax.Schedule]:
    schedule = make_schedule(cfg, total_steps)
    parts = []
    if cfg.clip_norm is not None:
        parts.append(optax.clip_by_global_norm(cfg.clip_norm))
    parts.append(optax.scale_by_adam(b1=cfg.b1, b2=cfg.b2, eps=cfg.eps))
    if cfg.weight_decay:
        parts.append(optax.add_decayed_weights(cfg.weight_decay, mask=decay_mask))
    parts.append(optax.scale_by_learning_rate(schedule))
    return optax.chain(*parts), schedule


def adam_moments(opt_state) -> tuple[dict, dict]:
    """(mu, nu) by parameter name from the optimizer state this module builds."""
    for leaf in jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(x, optax.ScaleByAdamState)):
        if isinstance(leaf, optax.ScaleByAdamState):
            return leaf.mu, leaf.nu
    raise ValueError("no Adam state in this optimizer state")


def cast_like(tree, ref):
    return jax.tree.map(lambda x, r: x.astype(r.dtype), tree, ref)


def zeros_like_f32(tree):
    return jax.tree.map(lambda x: jnp.zeros(x.shape, jnp.float32), tree)
