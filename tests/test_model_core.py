"""KV-cache decoding, packed sequences, the sharded forward, presets, remat and dtypes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from scoder_jax import parallel
from scoder_jax.models.config import LoraConfig
from scoder_jax.models.llama import Decoder, count_params, init_cache
from scoder_jax.models.presets import PRESETS, PUBLISHED_PARAMS

TINY = PRESETS["tiny"]


def _model(cfg=TINY, seed=0):
    return Decoder(cfg, rngs=nnx.Rngs(seed))


def test_kv_cache_decoding_matches_full_recompute_at_every_step():
    model = _model(TINY.replace(qkv_bias=True))
    rng = np.random.default_rng(0)
    B, P, N = 2, 5, 8
    toks = jnp.asarray(rng.integers(0, TINY.vocab_size, size=(B, P + N)), jnp.int32)
    full = np.asarray(model(toks).logits)
    cache = init_cache(TINY, B, P + N)
    pos = jnp.broadcast_to(jnp.arange(P), (B, P))
    out = model(toks[:, :P], positions=pos, cache=cache)
    np.testing.assert_allclose(np.asarray(out.logits), full[:, :P], atol=1e-5)
    cache = out.cache
    for t in range(P, P + N):
        out = model(toks[:, t:t + 1], positions=jnp.full((B, 1), t), cache=cache)
        cache = out.cache
        np.testing.assert_allclose(np.asarray(out.logits[:, 0]), full[:, t], atol=1e-5, err_msg=f"step {t}")


def test_rows_of_different_lengths_share_one_cache():
    """Right-padded prompts of lengths 3 and 6: each row's next-token logits equal its own run."""
    model = _model()
    a, b = [5, 9, 11], [7, 3, 8, 20, 4, 6]
    cache = init_cache(TINY, 2, 16)
    toks = jnp.asarray([a + [0, 0, 0], b], jnp.int32)
    out = model(toks, positions=jnp.broadcast_to(jnp.arange(6), (2, 6)), cache=cache)
    step = model(jnp.asarray([[13], [14]]), positions=jnp.asarray([[3], [6]]), cache=out.cache)
    alone_a = model(jnp.asarray([a + [13]])).logits[0, -1]
    alone_b = model(jnp.asarray([b + [14]])).logits[0, -1]
    np.testing.assert_allclose(np.asarray(step.logits[0, 0]), np.asarray(alone_a), atol=1e-5)
    np.testing.assert_allclose(np.asarray(step.logits[1, 0]), np.asarray(alone_b), atol=1e-5)


def test_two_packed_sequences_equal_each_alone():
    model = _model()
    s1, s2 = [3, 17, 42, 8, 99], [5, 6, 7]
    packed = jnp.asarray([s1 + s2 + [0, 0]], jnp.int32)
    seg = jnp.asarray([[1] * 5 + [2] * 3 + [0, 0]], jnp.int32)
    out = np.asarray(model(packed, segment_ids=seg).logits[0])
    np.testing.assert_allclose(out[:5], np.asarray(model(jnp.asarray([s1])).logits[0]), atol=1e-5)
    np.testing.assert_allclose(out[5:8], np.asarray(model(jnp.asarray([s2])).logits[0]), atol=1e-5)


def test_sharded_forward_on_8_devices_matches_single_device_and_rules():
    assert jax.device_count() >= 8, "conftest sets --xla_force_host_platform_device_count=8"
    cfg = TINY.replace(vocab_size=256, num_heads=4, num_kv_heads=2, lora=LoraConfig(rank=4, targets=("q", "v", "down")))
    model = _model(cfg)
    toks = jnp.asarray(np.random.default_rng(0).integers(0, cfg.vocab_size, size=(4, 12)), jnp.int32)
    ref = np.asarray(model(toks).logits)

    mesh = parallel.make_mesh(data=2, fsdp=2, tensor=2)
    graphdef, state = nnx.split(model)
    shardings = parallel.variable_shardings(state, mesh)
    state = jax.device_put(state, shardings)

    # every parameter carries the sharding its logical rule names
    expected = {"embed": ("tensor", "fsdp"), "wq": (None, "fsdp", "tensor", None), "wk": (None, "fsdp", "tensor", None),
                "wo": (None, "tensor", None, "fsdp"), "w_gate": (None, "fsdp", "tensor"),
                "w_down": (None, "tensor", "fsdp"), "lm_head": ("fsdp", "tensor"), "final_norm": (None,),
                "lora_q_a": (None, "fsdp", None), "lora_down_b": (None, None, "fsdp")}
    flat = dict(nnx.to_flat_state(state))
    for name, spec in expected.items():
        var = flat[(name,)]
        got = tuple(var.get_value().sharding.spec)
        assert got + (None,) * (len(spec) - len(got)) == spec, (name, got)
        assert var.get_metadata()["logical_axes"] is not None
    for path, var in flat.items():
        axes = var.get_metadata()["logical_axes"]
        want = parallel.spec_for(axes, var.get_value().shape, mesh)
        assert var.get_value().sharding.spec == want, path

    @jax.jit
    def fwd(state, toks):
        return nnx.merge(graphdef, state)(toks).logits

    out = fwd(state, jax.device_put(toks, parallel.batch_sharding(mesh)))
    np.testing.assert_allclose(np.asarray(out), ref, atol=1e-5)


def test_non_dividing_axes_are_replicated():
    mesh = parallel.make_mesh(data=2, fsdp=2, tensor=2)
    assert parallel.spec_for(("layers", "embed", "kv_heads", "head_dim"), (30, 576, 3, 64), mesh) == \
        jax.sharding.PartitionSpec(None, "fsdp", None, None)


def test_mesh_that_does_not_divide_devices_is_an_error():
    from scoder_jax.errors import ConfigError

    with pytest.raises(ConfigError, match="does not match the 8 available devices"):
        parallel.make_mesh(data=3, fsdp=1, tensor=1)


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS))
def test_preset_parameter_counts_match_published_sizes(name):
    n = count_params(PRESETS[name])  # nnx.eval_shape: nothing allocated
    assert abs(n / PUBLISHED_PARAMS[name] - 1) < 0.005, (name, n)


def test_remat_and_bf16_compute_agree_with_fp32():
    model = _model()
    toks = jnp.asarray(np.random.default_rng(3).integers(0, 256, size=(2, 10)), jnp.int32)
    ref = np.asarray(model(toks).logits)
    _, state = nnx.split(model)
    for remat in ("full", "dots_saveable"):
        m = _model(TINY.replace(remat=remat))
        nnx.update(m, state)
        np.testing.assert_allclose(np.asarray(m(toks).logits), ref, atol=1e-5)
        grads = jax.grad(lambda s, m=m: nnx.merge(nnx.graphdef(m), s)(toks).logits.sum())(nnx.state(m))
        assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree.leaves(grads))
    mb = _model(TINY.replace(compute_dtype="bfloat16"))
    nnx.update(mb, state)
    out = mb(toks).logits
    assert out.dtype == jnp.float32
    assert np.abs(np.asarray(out) - ref).max() < 0.05


def test_lora_starts_as_identity_and_merges():
    from scoder_jax.models.lora import merged_params

    base = _model()
    cfg = TINY.replace(lora=LoraConfig(rank=4, alpha=8, targets=("q", "k", "v", "o", "gate", "up", "down")))
    lora = _model(cfg)
    nnx.update(lora, nnx.state(base, nnx.Param))
    toks = jnp.asarray([[1, 2, 3, 4, 5]])
    np.testing.assert_allclose(np.asarray(lora(toks).logits), np.asarray(base(toks).logits), atol=1e-6)
    # give B non-zero values, merge, and compare with the unmerged forward
    for name in ("lora_q_b", "lora_o_b", "lora_down_b"):
        var = getattr(lora, name)
        var.set_value(0.05 * jax.random.normal(jax.random.key(1), var.get_value().shape))
    merged = _model()
    for name, value in merged_params(lora).items():
        getattr(merged, name).set_value(value)
    np.testing.assert_allclose(np.asarray(merged(toks).logits), np.asarray(lora(toks).logits), atol=1e-5)


def test_chunked_causal_attention_equals_full_attention():
    from scoder_jax.models.llama import attention, causal_attention, segment_causal_mask

    rng = np.random.default_rng(0)
    B, T, H, K, D = 2, 256, 4, 2, 8
    q, k, v = (jnp.asarray(rng.normal(size=(B, T, h, D)), jnp.float32) for h in (H, K, K))
    seg = jnp.asarray(np.repeat([[1, 2, 3, 0]], T // 4, axis=1).reshape(1, T).repeat(B, 0))
    mask = segment_causal_mask(seg)
    np.testing.assert_allclose(np.asarray(causal_attention(q, k, v, mask, chunk=64)),
                               np.asarray(attention(q, k, v, mask)), atol=1e-6)
