"""LoRA: which parameters are adapters, and merging them into the base weights for export."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from scoder_jax.models.llama import LORA_TARGETS, Decoder, lora_specs, param_specs


def merged_params(model: Decoder) -> dict[str, jax.Array]:
    """Base parameters with each LoRA delta (scale * A @ B, per layer) added in.

    A [L, *in, R] and B [L, R, *out] contract over R to the base weight's [L, *in, *out].
    """
    cfg = model.cfg
    out = {name: getattr(model, name).get_value() for name in param_specs(cfg)}
    if cfg.lora is None:
        return out
    for t in cfg.lora.targets:
        w = LORA_TARGETS[t][0]
        a = getattr(model, f"lora_{t}_a").get_value().astype(jnp.float32)
        b = getattr(model, f"lora_{t}_b").get_value().astype(jnp.float32)
        delta = jnp.tensordot(a, b, axes=([a.ndim - 1], [1]))  # [L, *in, L, *out]
        delta = jnp.moveaxis(jnp.diagonal(delta, axis1=0, axis2=a.ndim - 1), -1, 0)
        out[w] = (out[w].astype(jnp.float32) + cfg.lora.scale * delta).astype(out[w].dtype)
    return out


def lora_filter():
    """The nnx filter selecting LoRA adapter parameters (for LoRA-only optimizer state)."""
    return nnx.LoRAParam


def has_lora(model: Decoder) -> bool:
    return bool(lora_specs(model.cfg))
