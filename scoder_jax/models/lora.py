"""LoRA: which parameters are adapters, and merging them into the base weights for export."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from scoder_jax.models.llama import LORA_TARGETS, Decoder, lora_specs, param_specs


def merged_params(model: Decoder) -> dict[str, jax.Array]:
    """Base parameters with each LoRA delta (scale * A @ B, per layer) added in."""
    cfg = model.cfg
    params = {name: getattr(model, name).get_value() for name in {**param_specs(cfg), **lora_specs(cfg)}}
    return merge_lora(cfg, params)


def merge_lora(cfg, params: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """{name: stacked array} with the adapters folded in: the base parameters only, each target's
    weight plus scale * A @ B per layer (A [L, *in, R] and B [L, R, *out] contract over R to the
    base weight's [L, *in, *out]), summed in fp32 and cast back to the weight's dtype."""
    out = {name: params[name] for name in param_specs(cfg)}
    if cfg.lora is None:
        return out
    for t in cfg.lora.targets:
        w = LORA_TARGETS[t][0]
        a = params[f"lora_{t}_a"].astype(jnp.float32)
        b = params[f"lora_{t}_b"].astype(jnp.float32)
        L, R = a.shape[0], a.shape[-1]
        delta = jnp.einsum("lir,lro->lio", a.reshape(L, -1, R), b.reshape(L, R, -1)).reshape(out[w].shape)
        out[w] = (out[w].astype(jnp.float32) + cfg.lora.scale * delta).astype(out[w].dtype)
    return out


def lora_filter():
    """The nnx filter selecting LoRA adapter parameters (for LoRA-only optimizer state)."""
    return nnx.LoRAParam


def has_lora(model: Decoder) -> bool:
    return bool(lora_specs(model.cfg))
