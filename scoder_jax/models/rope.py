"""Rotary position embeddings with the scalings transformers names default, linear, dynamic, llama3.

Pure functions; the rotation uses the `rotate_half` layout (first half / second half of each
head), as Hugging Face LLaMA checkpoints expect.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from scoder_jax.models.config import ModelConfig, RopeConfig


def base_inv_freq(theta: float | jnp.ndarray, head_dim: int):
    """[head_dim // 2] inverse frequencies 1 / theta^(2i / head_dim), in fp32."""
    exponents = jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim
    return 1.0 / (jnp.asarray(theta, jnp.float32) ** exponents)


def _llama3_inv_freq(rope: RopeConfig, head_dim: int, max_position: int) -> np.ndarray:
    inv = np.asarray(base_inv_freq(rope.theta, head_dim), np.float32)
    old_len = rope.original_max_position or max_position
    low_wavelen = old_len / rope.low_freq_factor
    high_wavelen = old_len / rope.high_freq_factor
    wavelen = 2 * math.pi / inv
    scaled = np.where(wavelen > low_wavelen, inv / rope.factor, inv)
    smooth = (old_len / wavelen - rope.low_freq_factor) / (rope.high_freq_factor - rope.low_freq_factor)
    smoothed = (1 - smooth) * scaled / rope.factor + smooth * scaled
    medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
    return np.where(medium, smoothed, scaled).astype(np.float32)


def inv_freq(cfg: ModelConfig, positions: jnp.ndarray) -> jnp.ndarray:
    """[head_dim // 2] inverse frequencies for this call (dynamic NTK looks at the positions)."""
    rope, dim = cfg.rope, cfg.head_dim
    if rope.type == "default":
        return base_inv_freq(rope.theta, dim)
    if rope.type == "linear":
        return base_inv_freq(rope.theta, dim) / rope.factor
    if rope.type == "llama3":
        return jnp.asarray(_llama3_inv_freq(rope, dim, cfg.max_position))
    if rope.type == "dynamic":
        orig = rope.original_max_position or cfg.max_position
        seq_len = jnp.maximum(jnp.max(positions).astype(jnp.float32) + 1.0, float(orig))
        base = rope.theta * ((rope.factor * seq_len / orig) - (rope.factor - 1)) ** (dim / (dim - 2))
        return base_inv_freq(base, dim)
    raise ValueError(f"unsupported rope type {rope.type!r}")


def cos_sin(cfg: ModelConfig, positions: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """positions [batch, seq] -> cos, sin [batch, seq, head_dim], fp32."""
    freqs = positions.astype(jnp.float32)[..., None] * inv_freq(cfg, positions)
    emb = jnp.concatenate([freqs, freqs], axis=-1)
    return jnp.cos(emb), jnp.sin(emb)


def apply_rope(x: jnp.ndarray, cos: jnp.ndarray, sin: jnp.ndarray) -> jnp.ndarray:
    """x [batch, seq, heads, head_dim]; cos/sin [batch, seq, head_dim]."""
    half = x.shape[-1] // 2
    rotated = jnp.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    cos = cos[:, :, None, :].astype(x.dtype)
    sin = sin[:, :, None, :].astype(x.dtype)
    return x * cos + rotated * sin
