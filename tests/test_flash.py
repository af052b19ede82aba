"""Flash attention (models/flash.py): the Pallas kernel, run in its interpreter on CPU, against
the XLA attention it replaces: values and gradients, grouped-query heads, packed segments with
padding, a model forward, and the fallback where the kernel cannot run."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from scoder_jax.models import attention_select, flash
from scoder_jax.models.config import ModelConfig
from scoder_jax.models.llama import Decoder, attention, segment_causal_mask
from scoder_jax.models.presets import PRESETS


@pytest.fixture
def interpret(monkeypatch):
    monkeypatch.setattr(flash, "INTERPRET", True)


def _packed(B, T, H, K, D, seed=0):
    rng = np.random.default_rng(seed)
    q, k, v, do = (jnp.asarray(rng.normal(size=(B, T, h, D)), jnp.float32) for h in (H, K, K, H))
    # segments of uneven lengths, the last positions padding (segment 0)
    seg = np.zeros((B, T), np.int32)
    for b in range(B):
        cuts = np.sort(rng.choice(np.arange(1, T - 8), size=2, replace=False))
        seg[b, :cuts[0]], seg[b, cuts[0]:cuts[1]], seg[b, cuts[1]:T - 5] = 1, 2, 3
    return q, k, v, do, jnp.asarray(seg)


def _packed_tokens(vocab=128):
    """Two rows of 128 tokens: segments of 50 and 70, then 8 padding positions."""
    toks = jnp.asarray(np.random.default_rng(1).integers(0, vocab, (2, 128)), jnp.int32)
    seg = jnp.asarray(np.repeat([[1] * 50 + [2] * 70 + [0] * 8], 2, axis=0), jnp.int32)
    return toks, seg


@pytest.mark.parametrize("H,K,T", [(4, 4, 64), (4, 2, 256)])
def test_kernel_matches_xla_attention_values_and_gradients(interpret, H, K, T):
    q, k, v, do, seg = _packed(2, T, H, K, 16)
    mask = segment_causal_mask(seg)
    out, vjp = jax.vjp(lambda q, k, v: flash.flash_attention(q, k, v, seg), q, k, v)
    ref, vjp_ref = jax.vjp(lambda q, k, v: attention(q, k, v, mask), q, k, v)
    np.testing.assert_allclose(np.asarray(out), np.asarray(ref), atol=2e-5)
    for name, g, g_ref in zip("qkv", vjp(do), vjp_ref(do)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(g_ref), atol=5e-5, err_msg=name)


def test_model_forward_with_flash_equals_xla(interpret):
    cfg = PRESETS["tiny"].replace(vocab_size=128, num_heads=4, num_kv_heads=2, attention="xla")
    model = Decoder(cfg, rngs=nnx.Rngs(0))
    fast = Decoder(cfg.replace(attention="flash"), rngs=nnx.Rngs(0))
    toks, seg = _packed_tokens()
    np.testing.assert_allclose(np.asarray(fast(toks, segment_ids=seg).logits),
                               np.asarray(model(toks, segment_ids=seg).logits), atol=1e-4)


def test_without_a_gpu_flash_falls_back_to_xla_attention(monkeypatch):
    monkeypatch.setattr(flash, "INTERPRET", False)
    assert jax.default_backend() == "cpu" and flash.unavailable(128) == "needs a GPU (backend cpu)"
    called = []
    monkeypatch.setattr(flash, "flash_attention", lambda *a: called.append(1))
    cfg = PRESETS["tiny"].replace(vocab_size=64, attention="flash")
    toks = jnp.ones((1, 16), jnp.int32)
    assert Decoder(cfg, rngs=nnx.Rngs(0))(toks).logits.shape == (1, 16, 64) and not called


def test_rows_not_a_multiple_of_the_block_use_xla_attention(interpret):
    assert flash.unavailable(256) is None and flash.unavailable(64) is None
    assert flash.unavailable(200) == "needs rows a multiple of 128 positions (T 200)"
    cfg = PRESETS["tiny"].replace(attention="flash")
    assert attention_select.kernel_for(cfg, 256) == "flash" and attention_select.kernel_for(cfg, 200) is None


def test_unknown_attention_is_a_config_error():
    with pytest.raises(ValueError, match=r"attention 'fast' is not one of "
                                         r"\('auto', 'xla', 'flash', 'splash', 'cudnn'\)"):
        ModelConfig(attention="fast")


@pytest.mark.parametrize("remat", ["full", "dots_with_no_batch_dims_saveable"])
def test_lora_gradients_under_remat_match_xla(interpret, remat):
    from scoder_jax.models.config import LoraConfig

    toks, seg = _packed_tokens()
    grads = {}
    for impl in ("xla", "flash"):
        cfg = PRESETS["tiny"].replace(vocab_size=128, remat=remat, attention=impl,
                                      lora=LoraConfig(rank=4, targets=("q", "v")))
        graphdef, lora, rest = nnx.split(Decoder(cfg, rngs=nnx.Rngs(0)), nnx.LoRAParam, ...)

        def loss(lora, graphdef=graphdef, rest=rest):
            return jnp.mean(nnx.merge(graphdef, lora, rest)(toks, segment_ids=seg).logits ** 2)

        grads[impl] = jax.tree.leaves(jax.jit(jax.grad(loss))(lora))
    assert any(float(jnp.max(jnp.abs(g))) > 0 for g in grads["xla"])
    for a, b in zip(grads["xla"], grads["flash"]):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), atol=1e-7)


def test_per_example_gradients_under_vmap_match_xla(interpret):
    """Influence vmaps `grad` over examples (influence/grads.py): the kernel, batched by that vmap,
    gives each example's gradient as the XLA attention does."""
    from scoder_jax.influence.grads import per_example_grads
    from scoder_jax.train.data import make_row

    cfg = PRESETS["tiny"].replace(vocab_size=96, num_heads=4, num_kv_heads=2)
    rng = np.random.default_rng(3)
    rows = [make_row([rng.integers(1, 96, n)], [np.r_[np.zeros(n // 2), np.ones(n - n // 2)]], 32)
            for n in (20, 33)]
    batch = {k: jnp.asarray(np.stack([r[k] for r in rows])) for k in rows[0]}
    grads = []
    for attn in ("xla", "flash"):
        graphdef, diff, rest = nnx.split(Decoder(cfg.replace(attention=attn), rngs=nnx.Rngs(0)), nnx.Param, ...)
        diff, rest = nnx.to_pure_dict(diff), nnx.to_pure_dict(rest)
        grads.append(jax.jit(per_example_grads, static_argnums=0)(graphdef, diff, rest, batch))
    (ref, got), names = grads, sorted(grads[0])
    assert names == sorted(got) and len(names) > 5 and all(ref[n].shape[0] == 2 for n in names)
    for n in names:
        np.testing.assert_allclose(np.asarray(got[n]), np.asarray(ref[n]), atol=5e-5, err_msg=n)
    assert float(jnp.max(jnp.abs(ref[names[0]][0] - ref[names[0]][1]))) > 0  # examples differ
