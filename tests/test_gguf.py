"""GGUF import: every tensor type we claim, llama.cpp's Q/K permutation, transformers as reference."""

from __future__ import annotations

import gguf
import jax.numpy as jnp
import numpy as np
import pytest

from scoder_jax.errors import CheckpointError
from scoder_jax.models.checkpoint import load_gguf
from tests.tiny_hf import hf_logits, make_hf_model

Q = gguf.GGMLQuantizationType


def _permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's convert_hf_to_gguf permutation of Q/K rows (rotate-half -> interleaved)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_gguf(model, path, qtype: Q, *, arch: str = "llama"):
    """Writes a tiny HF LLaMA as GGUF the way llama.cpp's converter does."""
    cfg = model.config
    w = gguf.GGUFWriter(str(path), arch)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_rope_freq_base(cfg.rope_parameters["rope_theta"])
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_vocab_size(cfg.vocab_size)
    w.add_tokenizer_model("gpt2")
    w.add_token_list([f"t{i}" for i in range(cfg.vocab_size)])
    w.add_token_types([1] * cfg.vocab_size)
    w.add_token_merges([])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    names = {"model.embed_tokens": "token_embd", "model.norm": "output_norm", "lm_head": "output"}
    per_layer = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
                 "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate",
                 "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down", "post_attention_layernorm": "ffn_norm"}
    for name, t in model.state_dict().items():
        a = t.float().numpy()
        base, kind = name.rsplit(".", 1)
        if base in names:
            gname = names[base]
        else:
            _, _, i, rest = base.split(".", 3)
            gname = f"blk.{i}.{per_layer[rest]}"
        if gname.endswith("attn_q"):
            a = _permute(a, cfg.num_attention_heads)
        elif gname.endswith("attn_k"):
            a = _permute(a, cfg.num_key_value_heads)
        gname = f"{gname}.{kind}"
        if a.ndim == 1:
            w.add_tensor(gname, a.astype(np.float32))
        elif qtype == Q.F32:
            w.add_tensor(gname, a.astype(np.float32))
        elif qtype == Q.F16:
            w.add_tensor(gname, a.astype(np.float16))
        else:
            w.add_tensor(gname, gguf.quants.quantize(a, qtype), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.mark.parametrize("qtype", [Q.F32, Q.F16, Q.BF16, Q.Q8_0, Q.Q4_0, Q.Q4_1])
def test_gguf_types_match_transformers_gguf_loading(qtype, tmp_path):
    import torch
    import transformers

    ref = make_hf_model("llama_gqa_linear", rope_scaling=None)
    path = write_gguf(ref, tmp_path / f"tiny-{qtype.name}.gguf", qtype)
    ours = load_gguf(path)
    toks = np.random.default_rng(0).integers(0, 96, size=(2, 11))
    theirs = transformers.AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file=path.name,
                                                               dtype=torch.float32).eval()
    theirs_logits, _ = hf_logits(theirs, toks)
    np.testing.assert_allclose(np.asarray(ours(jnp.asarray(toks)).logits), theirs_logits, atol=1e-4)
    if qtype in (Q.F32,):  # lossless: equals the original model exactly, so the permutation is undone
        orig_logits, _ = hf_logits(ref, toks)
        np.testing.assert_allclose(np.asarray(ours(jnp.asarray(toks)).logits), orig_logits, atol=1e-5)


def test_gguf_unknown_tensor_type_names_the_tensor(tmp_path):
    ref = make_hf_model("llama_tied")
    path = write_gguf(ref, tmp_path / "bad.gguf", Q.F32)
    data = bytearray(path.read_bytes())
    name = b"blk.0.attn_q.weight"
    at = data.index(name) + len(name)
    n_dims = int.from_bytes(data[at:at + 4], "little")
    type_at = at + 4 + 8 * n_dims
    data[type_at:type_at + 4] = (250).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"bad\.gguf: tensor 'blk\.0\.attn_q\.weight' has unknown GGML type 250"):
        load_gguf(path)


def test_gguf_missing_tensor_and_not_gguf(tmp_path):
    p = tmp_path / "junk.gguf"
    p.write_bytes(b"not a gguf at all" * 10)
    with pytest.raises(CheckpointError, match="junk.gguf: not a readable GGUF"):
        load_gguf(p)
    ref = make_hf_model("llama_tied")
    path = write_gguf(ref, tmp_path / "cut.gguf", Q.Q8_0)
    path.write_bytes(path.read_bytes()[:-100])  # the last tensor's bytes cut short
    with pytest.raises(CheckpointError, match=r"cut\.gguf: tensor '.+' lies past the end of the file"):
        load_gguf(path)
    path.write_bytes(path.read_bytes()[:300])  # cut inside the header
    with pytest.raises(CheckpointError, match=r"cut\.gguf: not a readable GGUF file \(truncated GGUF header"):
        load_gguf(path)
