"""Splash attention (models/splash.py): the Pallas TPU kernel, run in its interpreter on CPU,
against the XLA attention it replaces: values and gradients, grouped-query heads, packed
segments with padding, the model's kernel per device on the data x fsdp x tensor mesh
(one training step), and the fallback where the kernel cannot run."""

from __future__ import annotations

import logging

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from scoder_jax import parallel
from scoder_jax.models import attention_select, splash
from scoder_jax.models.llama import Decoder, attention, segment_causal_mask
from scoder_jax.models.presets import PRESETS
from test_flash import _packed


@pytest.fixture
def interpret(monkeypatch):
    monkeypatch.setattr(splash, "INTERPRET", True)


@pytest.mark.parametrize("H,K,T", [(4, 4, 128), (4, 2, 256)])
def test_kernel_matches_xla_attention_values_and_gradients(interpret, H, K, T):
    q, k, v, do, seg = _packed(2, T, H, K, 16)
    mask = segment_causal_mask(seg)
    out, vjp = jax.vjp(lambda q, k, v: splash.splash_attention(q, k, v, seg), q, k, v)
    ref, vjp_ref = jax.vjp(lambda q, k, v: attention(q, k, v, mask), q, k, v)
    np.testing.assert_allclose(np.asarray(out), np.asarray(ref), atol=2e-5)
    for name, g, g_ref in zip("qkv", vjp(do), vjp_ref(do)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(g_ref), atol=5e-5, err_msg=name)


def test_blocks_are_the_largest_dividing_the_row():
    assert [splash.block_for(T) for T in (128, 256, 384, 1024, 2048)] == [128, 256, 128, 512, 512]


def test_without_a_tpu_splash_falls_back_to_xla_attention_logged_once(monkeypatch, caplog):
    monkeypatch.setattr(splash, "INTERPRET", False)
    assert jax.default_backend() == "cpu" and splash.unavailable(128) == "needs a TPU (backend cpu)"
    called = []
    monkeypatch.setattr(splash, "splash_attention", lambda *a: called.append(1))
    attention_select._choose.cache_clear()  # decisions are logged once per process; this test needs the first
    cfg = PRESETS["tiny"].replace(vocab_size=64, attention="splash")
    model = Decoder(cfg, rngs=nnx.Rngs(0))
    toks = jnp.ones((1, 128), jnp.int32)
    with caplog.at_level(logging.INFO, logger="scoder_jax.models.attention_select"):
        for _ in range(2):
            assert model(toks).logits.shape == (1, 128, 64)
    assert not called
    said = [r.getMessage() for r in caplog.records if "'splash'" in r.getMessage()]
    assert said == ["attention 'splash' needs a TPU (backend cpu); using the XLA attention "
                    "(T 128, float32, head_dim 16)"], said


def test_rows_not_a_multiple_of_128_use_xla_attention(interpret):
    assert splash.unavailable(256) is None
    assert splash.unavailable(100) == "needs rows a multiple of 128 positions (T 100)"
    cfg = PRESETS["tiny"].replace(attention="splash")
    assert attention_select.kernel_for(cfg, 256) == "splash" and attention_select.kernel_for(cfg, 100) is None


def _mesh_batch(rows=4, T=128, vocab=128):
    """rows packed rows: two or three samples each, the last positions padding."""
    rng = np.random.default_rng(5)
    seg = np.zeros((rows, T), np.int32)
    for r in range(rows):
        cuts = np.sort(rng.choice(np.arange(8, T - 16), size=2, replace=False))
        seg[r, :cuts[0]], seg[r, cuts[0]:cuts[1]], seg[r, cuts[1]:T - 3 * (r + 1)] = 1, 2, 3
    toks = rng.integers(0, vocab, (1, rows, T)).astype(np.int32)
    targets = rng.integers(0, vocab, (1, rows, T)).astype(np.int32)
    return {"tokens": toks, "segment_ids": seg[None], "targets": targets, "weights": (seg[None] > 0).astype(np.float32)}


def _one_step(cfg, mesh, batch):
    """One step of the trainer's jitted step (SGD, lr 1: the update is the gradient) on `mesh`."""
    from scoder_jax.train import step as step_lib
    from scoder_jax.train.trainer import init_model

    model = init_model(cfg, mesh, 0)
    graphdef, params, frozen = step_lib.split_model(model, nnx.Param)
    p_sh, f_sh = step_lib.shardings_of(model, nnx.Param, mesh)
    tx = optax.sgd(1.0)
    o_sh = step_lib.opt_state_shardings(tx, params, p_sh, mesh)
    opt_state = jax.jit(tx.init, out_shardings=o_sh)(params)
    bsh = step_lib.batch_sharding(mesh)
    step = step_lib.jit_step(step_lib.build_step(graphdef, tx, grad_accum=1), p_sh, o_sh, f_sh, bsh)
    before = {k: np.asarray(v) for k, v in params.items()}
    with jax.set_mesh(mesh):
        params, _, metrics = step(params, opt_state, frozen, {k: jax.device_put(v, bsh) for k, v in batch.items()})
    return before, {k: np.asarray(v) for k, v in params.items()}, {k: float(v) for k, v in metrics.items()}


def test_training_step_on_the_data_fsdp_tensor_mesh_matches_xla(interpret, monkeypatch):
    """The kernel under the trainer's shard_map, rows over data x fsdp and heads (and the
    grouped kv heads) over tensor: the same step as the XLA attention on one device."""
    assert jax.device_count() == 8
    calls = []
    kernel = splash._kernel
    monkeypatch.setattr(splash, "_kernel", lambda *a: calls.append((a[0].shape, a[1].shape)) or kernel(*a))
    cfg = PRESETS["tiny"].replace(vocab_size=128, num_layers=1)  # 4 heads, 2 kv heads
    batch = _mesh_batch()
    before, ref, m_ref = _one_step(cfg.replace(attention="xla"), parallel.single_device_mesh(), batch)
    assert not calls
    _, got, m = _one_step(cfg.replace(attention="splash"), parallel.make_mesh(data=2, fsdp=2, tensor=2), batch)
    # per device: 4 rows / (data 2 x fsdp 2) = 1 row; 4 heads / tensor 2, 2 kv heads / tensor 2
    assert calls and all(c == ((1, 128, 2, 16), (1, 128, 1, 16)) for c in calls), calls
    np.testing.assert_allclose(m["loss"], m_ref["loss"], rtol=1e-5)
    np.testing.assert_allclose(m["grad_norm"], m_ref["grad_norm"], rtol=1e-4)
    assert m["tokens"] == m_ref["tokens"] == float(batch["weights"].sum())
    for k in ref:
        assert k.endswith("norm") or not np.allclose(ref[k], before[k]), k  # the step moved the weights
        np.testing.assert_allclose(got[k], ref[k], atol=2e-6, rtol=0, err_msg=k)


def test_kv_heads_tensor_cannot_split_are_repeated_per_device(interpret):
    """tensor 4 divides 4 query heads but not 2 kv heads: each device gets its query head's kv head."""
    q, k, v, do, seg = _packed(2, 128, 4, 2, 16, seed=2)
    mesh = parallel.make_mesh(data=2, fsdp=1, tensor=4)
    with jax.set_mesh(mesh):
        out = jax.jit(splash.splash_attention)(q, k, v, seg)
    np.testing.assert_allclose(np.asarray(out), np.asarray(attention(q, k, v, segment_causal_mask(seg))), atol=2e-5)
