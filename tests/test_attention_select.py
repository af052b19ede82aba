"""The attention setting (models/attention_select.py): what `auto` picks on each backend and
shape, the fallbacks (logged once, never an error), the config field, and the cuDNN path's
arguments checked on CPU through jax's XLA implementation of the same call."""

from __future__ import annotations

import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from scoder_jax.errors import ConfigError
from scoder_jax.models import attention_select, cudnn_attention
from scoder_jax.models.llama import Decoder, attention, segment_causal_mask
from scoder_jax.models.presets import PRESETS
from test_flash import _packed, _packed_tokens


@pytest.fixture(autouse=True)
def fresh_decisions():
    attention_select._choose.cache_clear()
    yield
    attention_select._choose.cache_clear()


def _on(monkeypatch, backend: str, cudnn_refuses: str | None = None):
    """Pretend to run on `backend`; cuDNN's own shape check answers `cudnn_refuses`."""
    monkeypatch.setattr(jax, "default_backend", lambda: backend)
    monkeypatch.setattr(cudnn_attention, "_refused", lambda *a: cudnn_refuses)


@pytest.mark.parametrize("backend,dtype,T,want", [
    ("tpu", "bfloat16", 2048, "splash"),
    ("tpu", "float32", 256, "splash"),
    ("tpu", "bfloat16", 200, None),  # splash needs rows a multiple of 128
    ("gpu", "bfloat16", 2048, "cudnn"),
    ("gpu", "float16", 100, "cudnn"),
    ("gpu", "float32", 2048, "flash"),  # cuDNN takes bf16/fp16 only
    ("gpu", "float32", 64, "flash"),  # rows shorter than the block: one block
    ("gpu", "float32", 200, None),
    ("cpu", "bfloat16", 2048, None),
])
def test_auto_picks_by_backend_and_shape(monkeypatch, backend, dtype, T, want):
    _on(monkeypatch, backend)
    monkeypatch.setattr(attention_select, "GPU_AUTO", ("cudnn", "flash"))  # the order once measured
    cfg = PRESETS["deepseek-coder-1.3b"].replace(compute_dtype=dtype)
    assert cfg.attention == "auto"
    assert attention_select.kernel_for(cfg, T) == want


def test_auto_on_gpu_keeps_xla_until_the_kernels_are_measured(monkeypatch, caplog):
    _on(monkeypatch, "gpu")
    cfg = PRESETS["deepseek-coder-1.3b"].replace(compute_dtype="bfloat16")
    with caplog.at_level(logging.INFO, logger="scoder_jax.models.attention_select"):
        assert attention_select.kernel_for(cfg, 2048) is None
    assert "not yet measured on a GPU" in caplog.text


def test_auto_on_gpu_takes_flash_where_cudnn_refuses_the_shape_and_says_why(monkeypatch, caplog):
    _on(monkeypatch, "gpu", cudnn_refuses="cuDNN refuses T 2048, head_dim 256, bfloat16: The head dim must be <= 128")
    monkeypatch.setattr(attention_select, "GPU_AUTO", ("cudnn", "flash"))
    cfg = PRESETS["deepseek-coder-1.3b"].replace(compute_dtype="bfloat16")
    with caplog.at_level(logging.INFO, logger="scoder_jax.models.attention_select"):
        assert attention_select.kernel_for(cfg, 2048) == "flash"
        assert attention_select.kernel_for(cfg, 2048) == "flash"
    said = [r.getMessage() for r in caplog.records]
    assert said == ["attention 'auto' on gpu (T 2048, bfloat16, head_dim 128): flash (cudnn cuDNN refuses T 2048, "
                    "head_dim 256, bfloat16: The head dim must be <= 128)"], said


def test_cudnn_refusal_is_read_from_jax_own_checks_without_a_gpu():
    """On CPU, jax's cuDNN call refuses while tracing (no cuDNN / no GPU): `_refused` turns that
    into a reason instead of an error."""
    why = cudnn_attention._refused(128, 4, 2, 16, "bfloat16")
    assert why is not None and why.startswith("cuDNN refuses T 128, head_dim 16, bfloat16: "), why


def test_explicit_kernels_fall_back_on_cpu_logged_once(caplog):
    tiny = PRESETS["tiny"].replace(vocab_size=64, num_layers=1)
    cfgs = {name: tiny.replace(attention=name) for name in ("splash", "cudnn", "flash")}
    toks = jnp.ones((1, 128), jnp.int32)
    ref = Decoder(tiny.replace(attention="xla"), rngs=nnx.Rngs(0))(toks).logits
    with caplog.at_level(logging.INFO, logger="scoder_jax.models.attention_select"):
        for cfg in cfgs.values():
            model = Decoder(cfg, rngs=nnx.Rngs(0))
            for _ in range(2):
                np.testing.assert_array_equal(np.asarray(model(toks).logits), np.asarray(ref))
    said = sorted(r.getMessage() for r in caplog.records)
    assert said == [f"attention '{n}' needs a {d} (backend cpu); using the XLA attention (T 128, float32, head_dim 16)"
                    for n, d in (("cudnn", "GPU"), ("flash", "GPU"), ("splash", "TPU"))], said


def test_auto_on_cpu_runs_the_xla_attention_and_says_so(caplog):
    cfg = PRESETS["tiny"].replace(vocab_size=64)
    with caplog.at_level(logging.INFO, logger="scoder_jax.models.attention_select"):
        assert attention_select.kernel_for(cfg, 128) is None
    assert [r.getMessage() for r in caplog.records] == ["attention 'auto' on cpu (T 128, float32, head_dim 16): xla"]


@pytest.fixture
def emulate(monkeypatch):
    monkeypatch.setattr(cudnn_attention, "EMULATE", True)


@pytest.mark.parametrize("H,K", [(4, 4), (4, 2)])
def test_cudnn_call_arguments_match_xla_attention(emulate, H, K):
    """The cuDNN call (causal + same-segment mask, GQA, scale), run by jax.nn's XLA
    implementation: values and gradients equal the model's XLA attention, padding included."""
    q, k, v, do, seg = _packed(2, 64, H, K, 16)
    out, vjp = jax.vjp(lambda q, k, v: cudnn_attention.cudnn_attention(q, k, v, seg), q, k, v)
    ref, vjp_ref = jax.vjp(lambda q, k, v: attention(q, k, v, segment_causal_mask(seg)), q, k, v)
    np.testing.assert_allclose(np.asarray(out), np.asarray(ref), atol=2e-5)
    for name, g, g_ref in zip("qkv", vjp(do), vjp_ref(do)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(g_ref), atol=5e-5, err_msg=name)


def test_cudnn_model_forward_on_the_mesh_equals_xla(emulate):
    cfg = PRESETS["tiny"].replace(vocab_size=128, num_layers=1, attention="xla")
    toks, seg = _packed_tokens()
    ref = Decoder(cfg, rngs=nnx.Rngs(0))(toks, segment_ids=seg).logits
    model = Decoder(cfg.replace(attention="cudnn"), rngs=nnx.Rngs(0))
    assert attention_select.kernel_for(model.cfg, 128) == "cudnn"
    from scoder_jax import parallel

    graphdef, state = nnx.split(model)
    with jax.set_mesh(parallel.make_mesh(data=2, fsdp=1, tensor=4)):
        out = jax.jit(lambda s: nnx.merge(graphdef, s)(toks, segment_ids=seg).logits)(state)
    np.testing.assert_allclose(np.asarray(out), np.asarray(ref), atol=1e-4)


def test_attention_setting_in_the_train_config(tmp_path):
    from scoder_jax.train.config import load_train_config

    assert load_train_config().attention == "auto"
    assert load_train_config(overrides=["attention=splash"]).attention == "splash"
    (tmp_path / "c.yaml").write_text("train:\n  attention: fast\n")
    with pytest.raises(ConfigError, match=r"c.yaml.*'attention' = 'fast' is not one of 'auto', 'xla', 'flash', "
                                          r"'splash', 'cudnn'"):
        load_train_config(tmp_path / "c.yaml")
