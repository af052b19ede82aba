"""Acceptance: greedy decoding of SmolLM2-135M-Instruct through the engine equals transformers'
greedy `generate` on the same GGUF, 8 prompts x 64 new tokens (batched, different lengths)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow

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
