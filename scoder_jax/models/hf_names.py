"""The one map between our stacked parameter names and Hugging Face / GGUF tensor names.

Each entry says which checkpoint tensor holds a parameter (per layer for stacked ones) and
how to turn the checkpoint's `[out, in]` matrix into our einsum layout and back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from scoder_jax.models.config import ModelConfig


@dataclass(frozen=True)
class TensorMap:
    ours: str
    hf: str  # with {i} for the layer index
    gguf: str
    to_ours: Callable[[np.ndarray, ModelConfig], np.ndarray]  # one layer's HF tensor -> our layout
    to_hf: Callable[[np.ndarray, ModelConfig], np.ndarray]  # our per-layer value -> HF tensor
    per_layer: bool = True


def _ident(x, cfg):
    return x


def _t(x, cfg):
    return np.ascontiguousarray(x.T)


def _in_heads(n_heads_attr: str):
    def to_ours(x, cfg):  # [heads * D, E] -> [E, heads, D]
        n = getattr(cfg, n_heads_attr)
        return np.ascontiguousarray(x.T.reshape(cfg.hidden_size, n, cfg.head_dim))

    def to_hf(x, cfg):
        return np.ascontiguousarray(x.reshape(cfg.hidden_size, -1).T)

    return to_ours, to_hf


def _bias_heads(n_heads_attr: str):
    def to_ours(x, cfg):
        return x.reshape(getattr(cfg, n_heads_attr), cfg.head_dim)

    def to_hf(x, cfg):
        return x.reshape(-1)

    return to_ours, to_hf


def _o_to_ours(x, cfg):  # [E, H * D] -> [H, D, E]
    return np.ascontiguousarray(x.T.reshape(cfg.num_heads, cfg.head_dim, cfg.hidden_size))


def _o_to_hf(x, cfg):
    return np.ascontiguousarray(x.reshape(-1, cfg.hidden_size).T)


_q = _in_heads("num_heads")
_kv = _in_heads("num_kv_heads")
_bq = _bias_heads("num_heads")
_bkv = _bias_heads("num_kv_heads")

TENSOR_MAPS = [
    TensorMap("embed", "model.embed_tokens.weight", "token_embd.weight", _ident, _ident, per_layer=False),
    TensorMap("final_norm", "model.norm.weight", "output_norm.weight", _ident, _ident, per_layer=False),
    TensorMap("lm_head", "lm_head.weight", "output.weight", _t, _t, per_layer=False),
    TensorMap("attn_norm", "model.layers.{i}.input_layernorm.weight", "blk.{i}.attn_norm.weight", _ident, _ident),
    TensorMap("wq", "model.layers.{i}.self_attn.q_proj.weight", "blk.{i}.attn_q.weight", *_q),
    TensorMap("wk", "model.layers.{i}.self_attn.k_proj.weight", "blk.{i}.attn_k.weight", *_kv),
    TensorMap("wv", "model.layers.{i}.self_attn.v_proj.weight", "blk.{i}.attn_v.weight", *_kv),
    TensorMap("wo", "model.layers.{i}.self_attn.o_proj.weight", "blk.{i}.attn_output.weight", _o_to_ours, _o_to_hf),
    TensorMap("bq", "model.layers.{i}.self_attn.q_proj.bias", "blk.{i}.attn_q.bias", *_bq),
    TensorMap("bk", "model.layers.{i}.self_attn.k_proj.bias", "blk.{i}.attn_k.bias", *_bkv),
    TensorMap("bv", "model.layers.{i}.self_attn.v_proj.bias", "blk.{i}.attn_v.bias", *_bkv),
    TensorMap("bo", "model.layers.{i}.self_attn.o_proj.bias", "blk.{i}.attn_output.bias", _ident, _ident),
    TensorMap("mlp_norm", "model.layers.{i}.post_attention_layernorm.weight", "blk.{i}.ffn_norm.weight",
              _ident, _ident),
    TensorMap("w_gate", "model.layers.{i}.mlp.gate_proj.weight", "blk.{i}.ffn_gate.weight", _t, _t),
    TensorMap("w_up", "model.layers.{i}.mlp.up_proj.weight", "blk.{i}.ffn_up.weight", _t, _t),
    TensorMap("w_down", "model.layers.{i}.mlp.down_proj.weight", "blk.{i}.ffn_down.weight", _t, _t),
]
BY_NAME = {m.ours: m for m in TENSOR_MAPS}


def maps_for(names) -> list[TensorMap]:
    """The tensor maps of the parameters a model of this config has, in a stable order."""
    names = set(names)
    return [m for m in TENSOR_MAPS if m.ours in names]


def hf_shape(name: str, cfg: ModelConfig) -> tuple[int, ...]:
    """The shape a checkpoint stores for one layer of parameter `name` (HF `[out, in]` order)."""
    E, H, K, D, F, V = (cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim,
                        cfg.intermediate_size, cfg.vocab_size)
    return {
        "embed": (V, E), "lm_head": (V, E), "final_norm": (E,), "attn_norm": (E,), "mlp_norm": (E,),
        "wq": (H * D, E), "wk": (K * D, E), "wv": (K * D, E), "wo": (E, H * D),
        "bq": (H * D,), "bk": (K * D,), "bv": (K * D,), "bo": (E,),
        "w_gate": (F, E), "w_up": (F, E), "w_down": (E, F),
    }[name]
