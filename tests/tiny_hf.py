"""Tiny random Hugging Face checkpoints of each family, built with transformers (no downloads)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

FAMILIES = {
    # DeepSeek-Coder-33B-like: GQA + linear RoPE scaling x4, untied
    "llama_gqa_linear": dict(cls="llama", num_attention_heads=8, num_key_value_heads=2,
                             rope_scaling={"type": "linear", "factor": 4.0}, rope_theta=100000.0),
    # Qwen2: q/k/v bias, GQA, untied
    "qwen2_bias": dict(cls="qwen2", num_attention_heads=4, num_key_value_heads=2, rope_theta=1000000.0),
    # Llama 3.1: llama3 scaling
    "llama3_scaling": dict(cls="llama", num_attention_heads=4, num_key_value_heads=1, rope_theta=500000.0,
                           rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                         "high_freq_factor": 4.0, "original_max_position_embeddings": 16}),
    # SmolLM2-like: tied embeddings
    "llama_tied": dict(cls="llama", num_attention_heads=4, num_key_value_heads=4, tie_word_embeddings=True),
    # dynamic NTK scaling, positions beyond the original context
    "llama_dynamic": dict(cls="llama", num_attention_heads=4, num_key_value_heads=2,
                          rope_scaling={"type": "dynamic", "factor": 2.0}),
}


def make_hf_model(kind: str, seed: int = 0, **extra):
    import torch
    import transformers

    spec = dict(FAMILIES[kind])
    cls = spec.pop("cls")
    common = dict(vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  max_position_embeddings=32, rms_norm_eps=1e-6, bos_token_id=1, eos_token_id=2,
                  tie_word_embeddings=spec.pop("tie_word_embeddings", False))
    common.update(spec)
    common.update(extra)
    torch.manual_seed(seed)
    if cls == "qwen2":
        model = transformers.Qwen2ForCausalLM(transformers.Qwen2Config(**common))
    else:
        model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**common))
    # perturb norms and biases so that they are not the trivial ones/zeros
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def save_hf_model(model, out: Path) -> Path:
    model.save_pretrained(out)
    return out


def hf_logits(model, tokens: np.ndarray, **kw):
    import torch

    with torch.no_grad():
        out = model(torch.tensor(tokens, dtype=torch.long), output_hidden_states=True, **kw)
    return out.logits.numpy(), [h.numpy() for h in out.hidden_states]
