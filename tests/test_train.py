"""Trainer units: config, tokenization and loss masks, packing, loss equivalences, optimizer, errors."""

from __future__ import annotations

import functools
import gc
import weakref

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from scoder_jax.errors import ConfigError, DataError
from scoder_jax.train import data as data_lib
from scoder_jax.train import step as step_lib
from scoder_jax.train.config import load_train_config
from test_train_support import records, tiny_cfg, write_jsonl

# ----------------------------------------------------------------------------- config


def test_config_yaml_overrides_and_errors(tmp_path):
    f = tmp_path / "train.yaml"
    f.write_text("train:\n  seq_len: 256\n  optim:\n    lr: 1e-4\n    schedule: linear\n  lora:\n    rank: 4\n")
    cfg = load_train_config(f, ["optim.lr=3e-4", "mesh.fsdp=2", "lora.targets=[q,v]"])
    assert cfg.seq_len == 256 and cfg.optim.lr == 3e-4 and cfg.optim.schedule == "linear"
    assert cfg.mesh.fsdp == 2 and cfg.lora.rank == 4 and cfg.lora.targets == ("q", "v")
    assert load_train_config(f, ["lora=null"]).lora is None

    bad = tmp_path / "bad.yaml"
    bad.write_text("seq_len: 128\noptim:\n  lr: 1e-4\n  betas: [0.9, 0.95]\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:4: unknown key 'optim.betas'"):
        load_train_config(bad)
    bad.write_text("seq_len: long\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:1: 'seq_len' must be an integer"):
        load_train_config(bad)
    with pytest.raises(ConfigError, match=r"'optim.schedule' = 'step' is not one of .*override"):
        load_train_config(None, ["optim.schedule=step"])
    with pytest.raises(ConfigError, match="batch_size 6 must be a positive multiple of grad_accum 4"):
        load_train_config(None, ["batch_size=6", "grad_accum=4"])


# ----------------------------------------------------------------------------- data


def test_records_become_ids_with_response_only_loss():
    tok = data_lib.char_tokenizer()
    cfg = tiny_cfg()
    ids, mask = data_lib.encode_record({"problem": "add 1 2", "solution": "3"}, tok, cfg.data)
    text = "".join(tok.id_to_token(int(i)) for i in ids)
    assert text == "<s>### Instruction:\nadd 1 2\n\n### Response:\n3</s>\n\n"
    assert "".join(tok.id_to_token(int(i)) for i, m in zip(ids, mask) if m) == "3</s>"
    # chat records: every assistant turn is trained on, user turns are not
    msgs = {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                         {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]}
    ids, mask = data_lib.encode_record(msgs, tok, cfg.data)
    assert "".join(tok.id_to_token(int(i)) for i, m in zip(ids, mask) if m) == "b</s>d</s>"
    ids, mask = data_lib.encode_record(msgs, tok, tiny_cfg(data={"loss_on": "all"}).data)
    assert mask.all()
    ids, mask = data_lib.encode_record({"input_ids": [5, 6, 7], "loss_mask": [0, 1, 1]}, None, cfg.data)
    assert ids.tolist() == [5, 6, 7] and mask.tolist() == [False, True, True]
    with pytest.raises(DataError, match="record 1: a record needs 'problem' and 'solution'"):
        data_lib.build_dataset([{"text": "x"}], tok, cfg)


def test_packing_rows_segments_and_determinism():
    tok = data_lib.char_tokenizer()
    cfg = tiny_cfg(seq_len=256, batch_size=4, epochs=2, data={"compact_loss": False})
    ds = data_lib.build_dataset(records(40), tok, cfg)
    plan = data_lib.DataPlan(ds, cfg)
    assert plan.loss_slots == 256 and plan.batch_keys == data_lib.BATCH_KEYS
    for e in range(2):
        rows = plan.rows(e)
        assert sorted(i for r in rows for i in r) == list(range(len(ds)))  # each sample once per epoch
        assert all(sum(ds.lengths[i] for i in r) <= cfg.seq_len for r in rows)
    assert plan.rows(0) != plan.rows(1)  # reshuffled per epoch
    again = data_lib.DataPlan(ds, cfg)
    assert again.rows(1) == plan.rows(1) and again.total_steps == plan.total_steps
    other = data_lib.DataPlan(ds, tiny_cfg(seq_len=256, batch_size=4, epochs=2, seed=1))
    assert other.rows(0) != plan.rows(0)

    b = plan.host_batch(0)
    assert b["tokens"].shape == (1, 4, 256)
    row = {k: v[0, 0] for k, v in b.items()}
    samples = plan.step_rows(0)[0]
    assert len(samples) >= 2  # packed
    for k, i in enumerate(samples, 1):
        seg = row["segment_ids"] == k
        ids, mask = ds.ids[i], ds.masks[i]
        np.testing.assert_array_equal(row["tokens"][seg], ids[:-1])
        np.testing.assert_array_equal(row["targets"][seg], ids[1:])
        np.testing.assert_array_equal(row["weights"][seg], mask[1:].astype(np.float32))
    assert (row["weights"][row["segment_ids"] == 0] == 0).all()

    # the sharded global batch holds the same rows
    mesh = jax.make_mesh((2, 2, 2), ("data", "fsdp", "tensor"))
    dev = plan.device_batch(0, step_lib.batch_sharding(mesh))
    for k in data_lib.BATCH_KEYS:
        np.testing.assert_array_equal(np.asarray(dev[k]), b[k])

    # compact loss: the same rows, targets and weights at the loss positions only
    compact = data_lib.DataPlan(ds, tiny_cfg(seq_len=256, batch_size=4, epochs=2))
    most = max(int(sum(np.count_nonzero(ds.masks[i][1:]) for i in r)) for e in range(2) for r in plan.rows(e))
    m = data_lib.LOSS_SLOT_MULTIPLE
    assert compact.loss_slots == -(-most // m) * m < 256
    assert compact.rows(1) == plan.rows(1)
    for step in range(plan.total_steps):
        full, c = plan.host_batch(step), compact.host_batch(step)
        assert c["targets"].shape == c["loss_index"].shape == (1, 4, compact.loss_slots)
        np.testing.assert_array_equal(c["tokens"], full["tokens"])
        got = np.take_along_axis(full["targets"], c["loss_index"], axis=-1)
        np.testing.assert_array_equal(np.where(c["weights"] > 0, c["targets"], 0), np.where(c["weights"] > 0, got, 0))
        np.testing.assert_array_equal(c["weights"], np.take_along_axis(full["weights"], c["loss_index"], axis=-1))
        assert c["weights"].sum() == full["weights"].sum()
    dev = compact.device_batch(0, step_lib.batch_sharding(mesh))
    for k in compact.batch_keys:
        np.testing.assert_array_equal(np.asarray(dev[k]), compact.host_batch(0)[k])


def test_a_plan_caches_its_own_rows_and_is_freed_with_them():
    tok = data_lib.char_tokenizer()
    cfg = tiny_cfg(seq_len=256, batch_size=4, epochs=2)
    ds = data_lib.build_dataset(records(8), tok, cfg)
    plan = data_lib.DataPlan(ds, cfg)
    assert plan.rows(1) is plan.rows(1)  # packed once per epoch
    gone = weakref.ref(plan)
    del plan
    gc.collect()
    assert gone() is None  # no cache outside the plan keeps it (and its dataset) alive


def test_too_long_samples_truncated_or_dropped_and_counted(caplog):
    tok = data_lib.char_tokenizer()
    recs = records(6) + [{"problem": "p" * 30, "solution": "s" * 200}]
    cfg = tiny_cfg(seq_len=128)
    ds = data_lib.build_dataset(recs, tok, cfg)
    assert ds.stats["truncated"] == 1 and len(ds) == 7 and max(len(x) for x in ds.ids) == 129
    assert "1 of 7 samples are longer than seq_len + 1 = 129 tokens and were truncated" in caplog.text
    ds = data_lib.build_dataset(recs, tok, tiny_cfg(seq_len=128, data={"too_long": "drop"}))
    assert ds.stats["dropped_too_long"] == 1 and len(ds) == 6
    # a prompt longer than the row leaves no loss tokens: dropped, counted
    ds = data_lib.build_dataset(records(3) + [{"problem": "p" * 120, "solution": "s"}], tok, cfg)
    assert ds.stats["dropped_no_loss"] == 1 and len(ds) == 3


def test_empty_dataset_fails_clearly(tmp_path):
    tok = data_lib.char_tokenizer()
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(DataError, match=r"empty.jsonl: the dataset is empty"):
        data_lib.load_dataset(empty, tok, tiny_cfg())
    f = write_jsonl(tmp_path / "long.jsonl", [{"problem": "p" * 200, "solution": "s" * 200}])
    with pytest.raises(DataError, match=r"no trainable samples among 1 records \(records 1, dropped_too_long 1\)"):
        data_lib.load_dataset(f, tok, tiny_cfg(data={"too_long": "drop"}))


# ----------------------------------------------------------------------------- loss


def _tiny_model(**over):
    from scoder_jax import parallel
    from scoder_jax.models.presets import PRESETS
    from scoder_jax.train.trainer import init_model

    return init_model(PRESETS["tiny"].replace(**over), parallel.single_device_mesh(), 0)


@pytest.fixture(scope="module")
def tiny_model():
    return _tiny_model()


@functools.lru_cache(maxsize=None)
def _loss_fn(graphdef, loss_chunk):
    def f(p, frozen, batch):
        model = nnx.merge(graphdef, p, frozen)
        s, n = step_lib.loss_sums(model, batch, loss_chunk)
        return s / n

    def g(p, frozen, batch):
        loss, grads = jax.value_and_grad(f)(p, frozen, batch)
        model = nnx.merge(graphdef, p, frozen)
        ce = step_lib.token_cross_entropy(model(batch["tokens"], segment_ids=batch["segment_ids"]).logits,
                                          batch["targets"])
        return loss, grads, ce

    return jax.jit(g)


def _loss_and_grads(model, batch, loss_chunk=0):
    graphdef, params, frozen = step_lib.split_model(model, nnx.Param)
    return _loss_fn(graphdef, loss_chunk)(params, frozen, batch)


@pytest.mark.slow
def test_packed_batch_matches_unpacked_and_prompt_has_no_loss(tiny_model):
    tok = data_lib.char_tokenizer()
    recs = records(6, seed=3)
    ds = data_lib.build_dataset(recs, tok, tiny_cfg(seq_len=256))
    model = tiny_model
    packed = data_lib.make_row(ds.ids[:3], ds.masks[:3], 256)
    assert set(np.unique(packed["segment_ids"])) == {0, 1, 2, 3}
    empty = data_lib.make_row([], [], 256)
    unpacked = [data_lib.make_row([ds.ids[i]], [ds.masks[i]], 256) for i in range(3)]
    # same shapes (one compile): the packed row plus two empty rows
    b_packed = {k: jnp.asarray(np.stack([packed[k], empty[k], empty[k]])) for k in data_lib.BATCH_KEYS}
    b_unpacked = {k: jnp.asarray(np.stack([r[k] for r in unpacked])) for k in data_lib.BATCH_KEYS}
    lp, gp, _ = _loss_and_grads(model, b_packed)
    lu, gu, ce = _loss_and_grads(model, b_unpacked)
    np.testing.assert_allclose(lp, lu, rtol=1e-5, atol=1e-6)
    for k in gp:
        np.testing.assert_allclose(gp[k], gu[k], rtol=1e-5, atol=1e-5, err_msg=k)

    # the loss is the mean cross-entropy over response positions only
    ce = np.asarray(ce)
    resp = np.zeros_like(ce, bool)
    for r, i in enumerate(range(3)):
        n = len(ds.ids[i]) - 1
        resp[r, :n] = ds.masks[i][1:]
    assert 0 < resp.sum() < (b_unpacked["segment_ids"] > 0).sum()
    np.testing.assert_allclose(lu, ce[resp].mean(), rtol=1e-6)
    # changing prompt tokens' targets changes nothing
    t2 = np.asarray(b_unpacked["targets"]).copy()
    t2[~resp] = 7
    lu2, _, _ = _loss_and_grads(model, {**b_unpacked, "targets": jnp.asarray(t2)})
    assert float(lu2) == float(lu)
    # chunked logits give the same loss and gradients
    lc, gc, _ = _loss_and_grads(model, b_unpacked, loss_chunk=64)
    np.testing.assert_allclose(lc, lu, rtol=1e-6)
    np.testing.assert_allclose(gc["embed"], gu["embed"], rtol=1e-5, atol=1e-7)
    # so do logits at the loss positions only (compact rows), chunked or not
    compact = [data_lib.compact_row(r, 128) for r in unpacked]
    b_compact = {k: jnp.asarray(np.stack([r[k] for r in compact])) for k in compact[0]}
    graphdef, params, frozen = step_lib.split_model(model, nnx.Param)
    for chunk in (0, 64):
        lk, gk = jax.jit(jax.value_and_grad(
            lambda p, b, chunk=chunk: jnp.divide(*step_lib.loss_sums(nnx.merge(graphdef, p, frozen), b, chunk))))(
            params, b_compact)
        np.testing.assert_allclose(lk, lu, rtol=1e-6)
        for k in gk:
            np.testing.assert_allclose(gk[k], gu[k], rtol=1e-5, atol=1e-6, err_msg=k)
    with pytest.raises(ValueError, match="loss positions does not fit 8 loss slots"):
        data_lib.compact_row(unpacked[0], 8)


@pytest.mark.slow
def test_grad_accumulation_equals_one_big_batch(tiny_model):
    from scoder_jax.train.optim import make_optimizer

    tok = data_lib.char_tokenizer()
    cfg = tiny_cfg(seq_len=96, batch_size=4)
    ds = data_lib.build_dataset(records(12), tok, cfg)
    plan = data_lib.DataPlan(ds, cfg)
    big = plan.host_batch(0)
    model = tiny_model
    graphdef, params, frozen = step_lib.split_model(model, nnx.Param)
    tx, _ = make_optimizer(cfg.optim, 10)
    outs = []
    for accum in (1, 4):
        batch = {k: jnp.asarray(v.reshape(accum, 4 // accum, -1)) for k, v in big.items()}
        step = jax.jit(step_lib.build_step(graphdef, tx, grad_accum=accum))
        outs.append(step(params, tx.init(params), frozen, batch))
    (p1, _, m1), (p4, _, m4) = outs
    np.testing.assert_allclose(m1["loss"], m4["loss"], rtol=1e-6)
    np.testing.assert_allclose(m1["grad_norm"], m4["grad_norm"], rtol=1e-5)
    for k in p1:
        np.testing.assert_allclose(p1[k], p4[k], atol=1e-6, err_msg=k)


# ----------------------------------------------------------------------------- optimizer


def test_schedule_warmup_then_cosine_and_linear():
    from scoder_jax.train.config import OptimConfig
    from scoder_jax.train.optim import make_schedule

    s = make_schedule(OptimConfig(lr=1.0, warmup_steps=4, schedule="cosine", min_lr_ratio=0.1), 14)
    vals = [float(s(i)) for i in range(14)]
    np.testing.assert_allclose(vals[:4], [0.25, 0.5, 0.75, 1.0], rtol=1e-6)
    np.testing.assert_allclose(vals[4], 1.0, rtol=1e-6)
    assert all(a > b for a, b in zip(vals[4:], vals[5:]))
    np.testing.assert_allclose(float(s(14)), 0.1, rtol=1e-5)
    lin = make_schedule(OptimConfig(lr=2.0, schedule="linear"), 4)
    np.testing.assert_allclose([float(lin(i)) for i in range(5)], [2.0, 1.5, 1.0, 0.5, 0.0], atol=1e-6)


def test_lora_optimizer_state_holds_only_lora_parameters():
    from scoder_jax.models.config import LoraConfig
    from scoder_jax.train.checkpoints import flatten_state
    from scoder_jax.train.optim import adam_moments, make_optimizer

    cfg = tiny_cfg(lora={"rank": 4, "alpha": 8.0, "targets": ("q", "v", "down")}, optim={"weight_decay": 0.1})
    from scoder_jax.models.llama import Decoder
    from scoder_jax.models.presets import PRESETS

    mcfg = PRESETS["tiny"].replace(lora=LoraConfig(4, 8.0, ("q", "v", "down")))
    model = nnx.eval_shape(lambda: Decoder(mcfg, rngs=nnx.Rngs(0)))  # shapes only
    graphdef, params, frozen = step_lib.split_model(model, nnx.LoRAParam)
    assert set(params) == {f"lora_{t}_{ab}" for t in ("q", "v", "down") for ab in "ab"}
    assert "wq" in frozen and "embed" in frozen
    tx, _ = make_optimizer(cfg.optim, 10)
    state = jax.eval_shape(tx.init, params)
    mu, nu = adam_moments(state)
    assert set(mu) == set(nu) == set(params)
    names = {k.split(".")[-1] for k in flatten_state(state)}
    assert names <= set(params) | {"count"}


# ----------------------------------------------------------------------------- errors


def test_mesh_that_does_not_divide_devices_fails(tmp_path):
    from scoder_jax.train.trainer import build_mesh

    with pytest.raises(ConfigError, match=r"data\*fsdp\*tensor = 3\*1\*1 = 3 does not match the 8 available devices"):
        build_mesh(tiny_cfg(mesh={"data": 3, "num_devices": None}))
    with pytest.raises(ConfigError, match=r"8 devices are not divisible by 3"):
        build_mesh(tiny_cfg(mesh={"data": -1, "fsdp": 3, "num_devices": None}))
    with pytest.raises(ConfigError, match=r"microbatch\) has 4 rows, not divisible by the mesh's data\*fsdp = 8"):
        build_mesh(tiny_cfg(batch_size=4, mesh={"data": 8, "num_devices": None}))


def test_auto_mesh_shrinks_to_a_batch_smaller_than_the_devices(caplog):
    """data = -1 (the default) on 8 devices with 2 rows per step: the step runs on 2 devices,
    with a warning, instead of failing (a preset sized for one device runs anywhere)."""
    from scoder_jax.train.trainer import build_mesh

    mesh = build_mesh(tiny_cfg(batch_size=2, mesh={"data": -1, "num_devices": None}))
    assert dict(mesh.shape) == {"data": 2, "fsdp": 1, "tensor": 1}
    assert "using 2 of the 8 devices" in caplog.text
    mesh = build_mesh(tiny_cfg(batch_size=6, mesh={"data": -1, "num_devices": None}))
    assert dict(mesh.shape) == {"data": 6, "fsdp": 1, "tensor": 1}  # 6 rows: 6 of the 8 devices


def test_train_command_reports_config_errors(tmp_path, monkeypatch, capsys):
    from scoder_jax import cli

    monkeypatch.setitem(cli.COMMANDS, "train", "scoder_jax.train.commands:train")
    data = write_jsonl(tmp_path / "d.jsonl", records(4))
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "--data", str(data), "--out", str(tmp_path / "o"), "optim.nope=1"])
    assert e.value.code == 2
    assert "error: <defaults>: unknown key 'optim.nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "--data", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "o"),
                  "tokenizer=chars", "mesh.num_devices=1"])
    assert e.value.code == 2 and "missing.jsonl: no such file" in capsys.readouterr().err
