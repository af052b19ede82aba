"""Influence end to end: a planted selection after a real LoRA fine-tune, scores against a plain
reference computation, bad inputs, the command."""

from __future__ import annotations

import hashlib
import json
import math
import random
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from click.testing import CliRunner
from flax import nnx

from scoder_jax.errors import CheckpointError, ConfigError, DataError
from scoder_jax.influence.commands import influence
from scoder_jax.influence.grads import example_loss
from scoder_jax.influence.projection import ROWS_PER_KEY
from scoder_jax.influence.select import InfluenceConfig, run_influence
from scoder_jax.models.checkpoint import load_model, save_orbax
from scoder_jax.train import checkpoints as ckpt_lib
from scoder_jax.train.config import DataConfig
from scoder_jax.train.data import char_tokenizer, encode_record, make_row
from scoder_jax.train.trainer import train
from test_train_support import tiny_cfg, write_jsonl

SEQ = 64


def task_a(rng: random.Random, i: int) -> dict:
    """String manipulation: reverse a word."""
    s = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(4, 9)))
    return {"id": f"a{i}", "task": "strings", "problem": f"reverse {s}", "solution": s[::-1]}


def task_b(rng: random.Random, i: int) -> dict:
    """Arithmetic: add two numbers."""
    a, b = rng.randint(0, 9999), rng.randint(0, 9999)
    return {"id": f"b{i}", "task": "numbers", "problem": f"add {a} {b}", "solution": str(a + b)}


def mix(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    out = [f(rng, i) for i in range(n) for f in (task_a, task_b)]
    rng.shuffle(out)
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A short LoRA fine-tune on both tasks: two checkpoints with Adam moments."""
    d = tmp_path_factory.mktemp("influence")
    cfg = tiny_cfg(seq_len=SEQ, batch_size=8, epochs=2, max_steps=16,
                   lora={"rank": 4, "alpha": 8.0, "targets": ("q", "v", "up")},
                   optim={"lr": 1e-2, "warmup_steps": 2}, checkpoint={"every_steps": 8, "async_save": False})
    train(cfg, mix(32, seed=0), d / "train")
    ckpts = [i.path for i in ckpt_lib.list_checkpoints(d / "train")]
    assert len(ckpts) == 2
    rng = random.Random(1)
    cands = mix(12, seed=2)
    targets = [task_a(rng, 100 + i) for i in range(12)]
    return {"dir": d, "ckpts": ckpts, "cands": cands, "targets": targets}


def _cfg(**kw) -> InfluenceConfig:
    base = dict(keep=0.5, dim=2048, seed=3, microbatch=8, microbatches=2, seq_len=SEQ, min_len=SEQ, progress=False,
                mesh_devices=1)
    return InfluenceConfig(**{**base, **kw})


def test_planted_selection_keeps_the_targets_kind(run, tmp_path):
    summary = run_influence(run["cands"], run["targets"], run["ckpts"], tmp_path / "out", _cfg())
    assert summary["kept"] == 12 and summary["candidates"] == 24
    kept = [json.loads(x) for x in (tmp_path / "out" / "selected.jsonl").read_text().splitlines()]
    share = sum(r["task"] == "strings" for r in kept) / len(kept)
    assert share >= 0.8, share
    assert [r["meta"]["influence"]["rank"] for r in kept] == list(range(12))
    scores = [json.loads(x) for x in (tmp_path / "out" / "scores.jsonl").read_text().splitlines()]
    assert [s["index"] for s in scores] == list(range(24)) and all(s["score"] is not None for s in scores)
    assert sum(s["selected"] for s in scores) == 12
    w = [c["weight"] for c in summary["checkpoints"]]
    assert sum(w) == pytest.approx(1.0) and all(x > 0 for x in w)
    shards = sorted((tmp_path / "out" / "features" / "ckpt-1" / "candidates").glob("shard-*.npy"))
    f = np.load(shards[0], mmap_mode="r")
    assert f.dtype == np.float16 and f.shape == (24, 2048)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(f, np.float32), axis=1), 1.0, atol=2e-3)


def _reference_scores(run, d: int, seed: int) -> np.ndarray:
    """Explicit per-example gradients (one jax.grad per example), the Adam direction in float64,
    an explicit dense Rademacher matrix from the documented keys, cosines, lr-weighted mean."""
    tok = char_tokenizer()

    def rows(recs):
        out = []
        for r in recs:
            ids, m = encode_record(r, tok, DataConfig())
            out.append(make_row([ids], [m], SEQ))
        return out

    cand_rows, tgt_rows = rows(run["cands"]), rows(run["targets"])
    lrs = [ckpt_lib.checkpoint_lr(c, mean=True) for c in run["ckpts"]]
    total = 0.0
    for c, lr in zip(run["ckpts"], lrs):
        model = load_model(c)
        graphdef, lora, rest = nnx.split(model, nnx.LoRAParam, ...)
        lora, rest = nnx.to_pure_dict(lora), nnx.to_pure_dict(rest)
        names = sorted(lora)
        grad = jax.jit(jax.grad(lambda p, r, graphdef=graphdef, rest=rest: example_loss(graphdef, p, rest, r)))
        mom = ckpt_lib.load_adam_moments(c)
        proj = []
        for name in names:
            n = math.prod(lora[name].shape)
            h = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little") & 0x7FFFFFFF
            k = jax.random.fold_in(jax.random.key(seed, impl="threefry2x32"), h)
            proj.append(np.concatenate([np.asarray(jax.random.rademacher(jax.random.fold_in(k, j), (ROWS_PER_KEY, d),
                                                                         jnp.float32))
                                        for j in range(-(-n // ROWS_PER_KEY))])[:n])
        P = np.concatenate(proj).astype(np.float64)

        def feats(rws, adam, grad=grad, lora=lora, names=names, mom=mom, P=P):
            out = []
            for r in rws:
                g = grad(lora, {k: jnp.asarray(v) for k, v in r.items()})
                vecs = []
                for name in names:
                    gi = np.asarray(g[name], np.float64).ravel()
                    if adam:
                        m = mom.b1 * np.asarray(mom.mu[name], np.float64).ravel() + (1 - mom.b1) * gi
                        v = mom.b2 * np.asarray(mom.nu[name], np.float64).ravel() + (1 - mom.b2) * gi ** 2
                        gi = m / np.sqrt(v + mom.eps)
                    vecs.append(gi)
                z = np.concatenate(vecs) @ P
                out.append(z / np.linalg.norm(z))
            return np.stack(out)

        fc, ft = feats(cand_rows, True), feats(tgt_rows, False)
        total = total + lr / sum(lrs) * (fc @ ft.T).mean(axis=1)
    return total


@pytest.mark.slow
def test_scores_equal_a_plain_reference_computation(run, tmp_path):
    d, seed = 1024, 11
    run_influence(run["cands"], run["targets"], run["ckpts"], tmp_path / "out", _cfg(dim=d, seed=seed, microbatch=4))
    got = np.asarray([json.loads(x)["score"] for x in (tmp_path / "out" / "scores.jsonl").read_text().splitlines()])
    want = _reference_scores(run, d, seed)
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    assert np.ptp(want) > 1e-2  # the scores differ: the comparison means something


def test_bad_inputs_fail_clearly(run, tmp_path):
    c0 = run["ckpts"][0]
    # an empty target set
    with pytest.raises(DataError, match="target set is empty"):
        run_influence(run["cands"], [], run["ckpts"], tmp_path / "o1", _cfg())
    # a checkpoint without optimizer state: the Adam transform needs moments; --sgd works
    plain = save_orbax(load_model(c0), tmp_path / "plain", tokenizer=char_tokenizer())
    with pytest.raises(CheckpointError, match="Adam transform needs the checkpoint's Adam moments.*--sgd"):
        run_influence(run["cands"], run["targets"], [plain], tmp_path / "o2", _cfg())
    s = run_influence(run["cands"][:4], run["targets"][:2], [plain], tmp_path / "o3", _cfg(sgd=True))
    assert s["kept"] == 2 and s["checkpoints"][0]["transform"] == "sgd"
    # the full-model mode cannot apply the element-wise Adam transform
    with pytest.raises(ConfigError, match="--sgd"):
        run_influence(run["cands"], run["targets"], [c0], tmp_path / "o4", _cfg(mode="full"))
    # checkpoints of different tokenizers
    other = tmp_path / "other"
    shutil.copytree(c0, other)
    tok_json = other / "tokenizer" / "tokenizer.json"
    t = json.loads(tok_json.read_text())
    vocab = t["model"]["vocab"]
    a, b = vocab["a"], vocab["b"]
    vocab["a"], vocab["b"] = b, a
    tok_json.write_text(json.dumps(t))
    with pytest.raises(CheckpointError, match="tokenizer differs"):
        run_influence(run["cands"], run["targets"], [c0, other], tmp_path / "o5", _cfg())
    # pre-tokenized candidates of another tokenizer (ids past the vocabulary, or a named other tokenizer)
    bad = [{"id": "x", "input_ids": [5, 300, 7], "loss_mask": [0, 1, 1]}]
    with pytest.raises(DataError, match="outside the checkpoint's vocabulary"):
        run_influence(bad, run["targets"], [c0], tmp_path / "o6", _cfg())
    named = [{"id": "x", "input_ids": [5, 6, 7], "loss_mask": [0, 1, 1], "meta": {"tokenizer": "0123456789abcdef"}}]
    with pytest.raises(DataError, match="tokenized with tokenizer 0123456789abcdef"):
        run_influence(named, run["targets"], [c0], tmp_path / "o7", _cfg())


def test_command_writes_scores_and_selection(run, tmp_path):
    cands = write_jsonl(tmp_path / "c.jsonl", run["cands"])
    tgts = write_jsonl(tmp_path / "t.jsonl", run["targets"])
    train_dir = run["ckpts"][0].parent.parent
    res = CliRunner().invoke(influence, ["--candidates", str(cands), "--targets", str(tgts), "--checkpoints",
                                         str(train_dir), "--keep", "0.25", "--out", str(tmp_path / "out"),
                                         "--dim", "512", "--seq-len", str(SEQ), "--micro-batch", "8", "--no-progress"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    line = json.loads(res.output.strip().splitlines()[-1])
    assert line["candidates"] == 24 and line["kept"] == 6
    assert len((tmp_path / "out" / "selected.jsonl").read_text().splitlines()) == 6
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [c["step"] for c in summary["checkpoints"]] == [8, 16]
    res = CliRunner().invoke(influence, ["--candidates", str(cands), "--targets", str(tmp_path / "none.jsonl"),
                                         "--checkpoints", str(train_dir), "--out", str(tmp_path / "o2")])
    assert res.exit_code != 0 and "no such file" in str(res.exception)
