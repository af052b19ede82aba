"""Influence estimation, unit level: per-example gradients, the Adam direction, projections."""

from __future__ import annotations

import hashlib
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from scoder_jax import parallel
from scoder_jax.influence.grads import (FeatureFn, GradConfig, adam_direction, call_arrays, encode_examples,
                                        example_loss, per_example_grads, probe_model)
from scoder_jax.influence.projection import ROWS_PER_KEY, ProjectionConfig, Projector, dense_reference
from scoder_jax.models.config import LoraConfig
from scoder_jax.models.llama import Decoder
from scoder_jax.models.presets import PRESETS
from scoder_jax.train.config import DataConfig
from scoder_jax.train.data import char_tokenizer
from test_train_support import records

T = 64


def _model(targets=("q", "v", "up"), rank=4, seed=0) -> Decoder:
    """The tiny preset with LoRA whose B factors are non-zero (as after some training)."""
    cfg = PRESETS["tiny"].replace(lora=LoraConfig(rank=rank, alpha=2.0 * rank, targets=targets))
    m = Decoder(cfg, rngs=nnx.Rngs(seed))
    for i, t in enumerate(targets):
        b = getattr(m, f"lora_{t}_b")
        b.set_value(0.05 * jax.random.normal(jax.random.key(100 + i), b.get_value().shape))
    return m


def _rows(n: int, seed: int = 0, seq: int = T) -> dict[str, np.ndarray]:
    """n examples (varied lengths, response-only loss) as [1, n, seq] rows."""
    ex = encode_examples(records(n, seed=seed), char_tokenizer(), DataConfig(), seq, source="<t>", vocab_size=256)
    return call_arrays(ex, list(range(n)), seq, 1, n)


def _split(model):
    g, lora, rest = nnx.split(model, nnx.LoRAParam, ...)
    return g, nnx.to_pure_dict(lora), nnx.to_pure_dict(rest)


@pytest.fixture(scope="module")
def model():
    return _model()


def test_per_example_grads_equal_a_loop_of_single_example_grads(model):
    graphdef, lora, rest = _split(model)
    rows = {k: v[0] for k, v in _rows(6).items()}
    assert len(set((rows["weights"] > 0).sum(1).tolist())) > 2  # different lengths and loss spans
    batched = jax.jit(lambda p, r: per_example_grads(graphdef, p, rest, r))(lora, rows)
    single = jax.jit(jax.grad(lambda p, r: example_loss(graphdef, p, rest, r)))
    for i in range(6):
        g = single(lora, {k: v[i] for k, v in rows.items()})
        for name in lora:
            np.testing.assert_allclose(np.asarray(batched[name][i]), np.asarray(g[name]), atol=1e-6, rtol=0)
    # the loss is the mean over response tokens: a row's gradient does not change when another row changes
    rows2 = {k: v.copy() for k, v in rows.items()}
    rows2["tokens"][1] = rows2["tokens"][2]
    again = jax.jit(lambda p, r: per_example_grads(graphdef, p, rest, r))(lora, rows2)
    np.testing.assert_allclose(np.asarray(again["lora_q_a"][0]), np.asarray(batched["lora_q_a"][0]), atol=1e-7)


def test_adam_direction_equals_hand_computation():
    rng = np.random.default_rng(0)
    g = rng.normal(size=(3, 5, 4)).astype(np.float32)
    mu = rng.normal(size=(5, 4)).astype(np.float32) * 0.1
    nu = rng.random(size=(5, 4)).astype(np.float32) * 0.01
    b1, b2, eps = 0.9, 0.999, 1e-8
    got = np.asarray(adam_direction(jnp.asarray(g), jnp.asarray(mu), jnp.asarray(nu), b1, b2, eps))
    for r in range(3):
        for i in range(5):
            for j in range(4):
                m = b1 * float(mu[i, j]) + (1 - b1) * float(g[r, i, j])
                v = b2 * float(nu[i, j]) + (1 - b2) * float(g[r, i, j]) ** 2
                assert got[r, i, j] == pytest.approx(m / math.sqrt(v + eps), rel=1e-5)


def _keys_reference(shapes: dict, d: int, seed: int) -> np.ndarray:
    """The dense Rademacher matrix written out from the documented key scheme alone."""
    parts = []
    for name in sorted(shapes):
        n = math.prod(shapes[name])
        h = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little") & 0x7FFFFFFF
        k = jax.random.fold_in(jax.random.key(seed, impl="threefry2x32"), h)
        chunks = [np.asarray(jax.random.rademacher(jax.random.fold_in(k, j), (ROWS_PER_KEY, d), jnp.float32))
                  for j in range(-(-n // ROWS_PER_KEY))]
        parts.append(np.concatenate(chunks)[:n])
    return np.concatenate(parts) / math.sqrt(d)


def test_projection_is_the_keyed_dense_matrix_whatever_the_batch_or_cache():
    shapes = {"lora_q_a": (2, 8, 3), "lora_q_b": (2, 3, 4, 2), "w": (300,)}
    d = 96
    cfg = ProjectionConfig(d=d, seed=7)
    rng = np.random.default_rng(1)
    grads = {k: rng.normal(size=(5, *s)).astype(np.float32) for k, s in shapes.items()}
    flat = np.concatenate([grads[k].reshape(5, -1) for k in sorted(shapes)], axis=1)
    ref = flat.astype(np.float64) @ _keys_reference(shapes, d, 7)
    np.testing.assert_array_equal(dense_reference(shapes, cfg) * math.sqrt(d),
                                  _keys_reference(shapes, d, 7) * math.sqrt(d))
    assert set(np.unique(dense_reference(shapes, cfg) * math.sqrt(d))) == {-1.0, 1.0}
    cached = Projector.for_shapes(shapes, cfg)
    drawn = Projector.for_shapes(shapes, ProjectionConfig(d=d, seed=7, cache_bytes=0))
    assert cached.cached and not drawn.cached
    for p in (cached, drawn):
        z = np.asarray(jax.jit(p.project)({k: jnp.asarray(v) for k, v in grads.items()}, p.mats))
        np.testing.assert_allclose(z, ref, rtol=1e-5, atol=1e-5)
        # batch-size independent: any subset of rows projects to the same rows
        z2 = np.asarray(p.project({k: jnp.asarray(v[3:4]) for k, v in grads.items()}))
        np.testing.assert_allclose(z2, z[3:4], rtol=1e-6, atol=1e-6)
    # sharded over two devices: the same
    mesh = parallel.make_mesh(2, 1, 1, devices=jax.devices()[:2])
    sh = {k: jax.device_put(np.concatenate([v, v[:1]]), parallel.batch_sharding(mesh, v.ndim))
          for k, v in grads.items()}
    z3 = np.asarray(jax.jit(cached.project)(sh, cached.mats))[:5]
    np.testing.assert_allclose(z3, ref, rtol=1e-5, atol=1e-5)
    other = Projector.for_shapes(shapes, ProjectionConfig(d=d, seed=8))
    assert not np.allclose(np.asarray(other.project(grads)), ref, atol=1e-2)
    gauss = dense_reference(shapes, ProjectionConfig(d=d, seed=7, kind="gaussian")) * math.sqrt(d)
    assert abs(gauss.mean()) < 0.02 and abs(gauss.std() - 1) < 0.02


def test_full_mode_probe_gradient_is_the_left_projected_weight_gradient():
    model = _model(targets=("q",))
    mesh = parallel.single_device_mesh()
    probe, blocks = probe_model(model, 8, seed=3, mesh=mesh)
    assert sorted(blocks) == sorted(f"lora_{t}_b" for t in ("q", "k", "v", "o", "gate", "up", "down"))
    rows = {k: v[0] for k, v in _rows(3).items()}
    row = {k: v[1] for k, v in rows.items()}
    g_probe, lora, rest = _split(probe)
    diff = {k: lora[k] for k in blocks}
    rest = {**rest, **{k: v for k, v in lora.items() if k not in blocks}}
    gp = jax.grad(lambda p: example_loss(g_probe, p, rest, row))(diff)
    # the same loss as the model itself (LoRA merged, B = 0): the probe changes nothing in the forward
    gm, lm, rm = _split(model)
    assert float(example_loss(g_probe, diff, rest, row)) == pytest.approx(float(example_loss(gm, lm, rm, row)),
                                                                           rel=1e-5)
    # explicit per-example gradient of the (merged) base weights
    from scoder_jax.models.lora import merged_params

    base = merged_params(model)
    pure = Decoder(PRESETS["tiny"], rngs=nnx.Rngs(0))
    for k, v in base.items():
        getattr(pure, k).set_value(v)
    gd, params = nnx.split(pure, nnx.Param)
    gw = jax.grad(lambda p: example_loss(gd, p, {}, row))(nnx.to_pure_dict(params))
    for t, w in (("q", "wq"), ("o", "wo"), ("down", "w_down")):
        a = np.asarray(lora[f"lora_{t}_a"])  # [L, *in, k] = P_l^T
        L, k = a.shape[0], a.shape[-1]
        G = np.asarray(gw[w]).reshape(L, a[0, ..., 0].size, -1)  # [L, in, out]
        want = np.einsum("lik,lio->lko", a.reshape(L, -1, k), G)
        np.testing.assert_allclose(np.asarray(gp[f"lora_{t}_b"]).reshape(L, k, -1), want, atol=2e-6, rtol=1e-4)


def _cos(x):
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    return x


@pytest.mark.slow
def test_projected_cosines_rank_like_exact_cosines():
    """200 (candidate, target) pairs: Spearman of projected (d=8192) vs exact gradient cosines."""
    from scipy.stats import spearmanr

    model = _model(targets=("q", "k", "v", "o"))
    mesh = parallel.single_device_mesh()
    data = _rows(30, seed=3, seq=128)
    assert (data["weights"].sum(-1) > 0).all()
    graphdef, lora, rest = _split(model)
    exact = jax.jit(lambda p, r: per_example_grads(graphdef, p, rest, r))(lora, {k: v[0] for k, v in data.items()})
    flat = _cos(np.concatenate([np.asarray(exact[k]).reshape(30, -1) for k in sorted(exact)], axis=1))
    true = (flat[:20] @ flat[20:].T).ravel()
    assert true.std() > 0.05  # a spread to rank
    gc = GradConfig(micro_batch=30, microbatches=1, seq_len=128)
    for two_stage, bound in ((False, 0.95), (True, 0.9)):
        ff = FeatureFn(model, gc, ProjectionConfig(d=8192, two_stage=two_stage, kron_dim=16), mesh)
        f = ff(data, adam=False)
        np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1.0, atol=1e-5)
        rho = spearmanr((f[:20] @ f[20:].T).ravel(), true).statistic
        assert rho >= bound, (two_stage, rho)
    # full-model mode against exact cosines of the full per-example gradients of every linear layer
    from scoder_jax.models.lora import merged_params

    pure = Decoder(PRESETS["tiny"], rngs=nnx.Rngs(0))
    for k, v in merged_params(model).items():
        getattr(pure, k).set_value(v)
    gd, params = nnx.split(pure, nnx.Param)
    rows = {k: v[0] for k, v in data.items()}
    gw = jax.jit(lambda p, r: per_example_grads(gd, p, {}, r))(nnx.to_pure_dict(params), rows)
    lin = ("wq", "wk", "wv", "wo", "w_gate", "w_up", "w_down")
    full = _cos(np.concatenate([np.asarray(gw[k]).reshape(30, -1) for k in lin], axis=1))
    true_full = (full[:20] @ full[20:].T).ravel()
    ff = FeatureFn(model, GradConfig(mode="full", micro_batch=30, microbatches=1, seq_len=128, full_rank=32),
                   ProjectionConfig(d=8192), mesh)
    f = ff(data, adam=False)
    rho = spearmanr((f[:20] @ f[20:].T).ravel(), true_full).statistic
    assert rho >= 0.9, rho
