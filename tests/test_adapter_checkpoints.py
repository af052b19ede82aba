"""Adapter-only LoRA checkpoints: what they hold, what reads them, their base's fingerprint, resume.

A LoRA fine-tune over a tiny file base (a Hugging Face directory) is trained twice, identically:
once as the trainer does now (adapters + moments + a reference to the base), once with the base
reference withheld, which stores the frozen weights beside the adapters as every LoRA checkpoint
did before. Sampling, influence and export must not tell the two apart.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from scoder_jax.errors import CheckpointError
from scoder_jax.models.presets import PRESETS
from scoder_jax.train import checkpoints as ckpt_lib
from scoder_jax.train import trainer as trainer_lib
from scoder_jax.train.trainer import train
from test_train_support import records, tiny_cfg, write_jsonl

# the demo preset's LoRA (configs/demo.yaml): rank 16 on every projection
LORA = {"rank": 16, "alpha": 32.0, "targets": ("q", "k", "v", "o", "gate", "up", "down")}
SNIPPETS = [
    {"id": "sn-a", "lang": "python", "content": "def add(a, b):\n    return a + b\n"},
    {"id": "sn-b", "lang": "python", "content": "xs = sorted(set(items))\n"},
]


def _cfg(**over):
    base = dict(seq_len=128, batch_size=4, max_steps=4, lora=LORA, optim={"lr": 1e-2, "warmup_steps": 1},
                checkpoint={"every_steps": 2, "keep": 2})
    return tiny_cfg(**{**base, **over})


def _files_size(d: Path) -> int:
    return sum(p.stat().st_size for p in d.rglob("*") if p.is_file())


def _stored_names(item: Path) -> set[str]:
    import orbax.checkpoint as ocp

    with ocp.StandardCheckpointer() as c:
        md = c.metadata(item)
    tree = getattr(md, "item_metadata", md)
    return set(getattr(tree, "tree", tree).keys())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The base (HF directory), the data, an adapter-only run and a full-layout run of the same steps."""
    from scoder_jax import parallel
    from scoder_jax.models.checkpoint import save_hf

    d = tmp_path_factory.mktemp("adapters")
    base_cfg = PRESETS["tiny"].replace(name="tiny-base", max_position=2048)
    save_hf(trainer_lib.init_model(base_cfg, parallel.single_device_mesh(), 5), d / "base")
    data = write_jsonl(d / "d.jsonl", records(16))
    cfg = _cfg(model=str(d / "base"))
    train(cfg, data, d / "adapters")
    mp = pytest.MonkeyPatch()
    mp.setattr(trainer_lib, "base_reference", lambda run, model: None)  # the layout before: base stored too
    try:
        train(cfg, data, d / "full")
    finally:
        mp.undo()
    steps = [[i.path for i in ckpt_lib.list_checkpoints(d / r)] for r in ("adapters", "full")]
    assert [p.name for p in steps[0]] == [p.name for p in steps[1]] == ["2", "4"]
    return {"dir": d, "base": d / "base", "data": data, "cfg": cfg, "adapters": steps[0], "full": steps[1]}


def test_lora_checkpoint_holds_the_adapters_and_their_moments(runs):
    from scoder_jax.models.llama import lora_specs, param_specs

    mcfg = PRESETS["tiny"].replace(lora=tiny_cfg(lora=LORA).lora)
    adapters = sum(int(np.prod(s)) for s, _ in lora_specs(mcfg).values()) * 4  # fp32
    base = sum(int(np.prod(s)) for s, _ in param_specs(mcfg).values()) * 4
    for step, full in zip(runs["adapters"], runs["full"]):
        size = _files_size(step)
        # adapters + mu + nu, and orbax's metadata, the meta JSON and the tokenizer: within 10%
        # (orbax compresses: all-zero moments of the first step can come out smaller)
        assert 3 * adapters * 0.9 <= size <= 3 * adapters * 1.10, (size, 3 * adapters)
        assert _files_size(full) > size + base * 0.9  # the layout before carried the base
        assert _stored_names(step / "params") == set(lora_specs(mcfg))
        assert _stored_names(full / "params") == set(lora_specs(mcfg)) | set(param_specs(mcfg))
        meta = ckpt_lib.checkpoint_meta(step)
        ref = meta["base"]
        assert ref["kind"] == "checkpoint" and ref["path"] == str(runs["base"]) and ref["format"] == "hf"
        assert ref["fingerprint"].startswith("sha256:") and ref["probe"].startswith("sha256:")
        assert json.loads((step / "scoder_model.json").read_text())["base"] == ref
        assert {"step", "lr", "mean_lr", "data_position"} <= set(meta) and "base" not in ckpt_lib.checkpoint_meta(full)
        # the moments influence needs are there
        mom = ckpt_lib.load_adam_moments(step)
        assert set(mom.mu) == set(mom.nu) == set(lora_specs(mcfg))


def test_full_fine_tune_still_stores_every_parameter(tmp_path):
    from scoder_jax.models.llama import param_specs

    cfg = tiny_cfg(seq_len=64, batch_size=2, max_steps=1, checkpoint={"async_save": False})
    train(cfg, records(4), tmp_path / "run")
    (info,) = ckpt_lib.list_checkpoints(tmp_path / "run")
    assert _stored_names(info.path / "params") == set(param_specs(PRESETS["tiny"]))
    assert "base" not in ckpt_lib.checkpoint_meta(info.path)
    assert "base" not in json.loads((info.path / "scoder_model.json").read_text())


def test_export_and_parameters_match_the_full_layout(runs, tmp_path):
    from safetensors.numpy import load_file

    for a, f in zip(runs["adapters"], runs["full"]):
        pa, pf = ckpt_lib.load_params(a), ckpt_lib.load_params(f)
        assert set(pa) == set(pf)
        for k in pa:
            assert np.array_equal(np.asarray(pa[k]), np.asarray(pf[k])), k
        ea = ckpt_lib.export_hf(a, tmp_path / f"a{a.name}")
        ef = ckpt_lib.export_hf(f, tmp_path / f"f{f.name}")
        ta, tf = load_file(str(ea / "model.safetensors")), load_file(str(ef / "model.safetensors"))
        assert set(ta) == set(tf) and all(np.array_equal(ta[k], tf[k]) for k in ta)
        assert (ea / "config.json").read_text() == (ef / "config.json").read_text()
    # caller overrides apply to the composed model as to a full checkpoint
    from scoder_jax.models.checkpoint import load_model

    assert load_model(runs["adapters"][0], max_position=1024).cfg == load_model(runs["full"][0], max_position=1024).cfg
    # the trained adapters moved the merged weights away from the base
    base = load_file(str(runs["base"] / "model.safetensors"))
    assert not np.array_equal(base["model.layers.0.self_attn.q_proj.weight"],
                              ta["model.layers.0.self_attn.q_proj.weight"])


def test_checkpoints_of_the_layout_before_still_load_and_resume(runs):
    """A LoRA run checkpointed before adapter-only checkpoints (base stored too) resumes as it did."""
    summary = train(runs["cfg"], runs["data"], runs["dir"] / "full")
    assert summary["resumed_from"] == 4 and summary["tokens"] == 0
    assert "base" not in json.loads((runs["full"][-1] / "scoder_model.json").read_text())


def test_sampling_matches_the_full_layout(runs, tmp_path):
    from scoder_jax.generate.engine import Engine
    from scoder_jax.models.checkpoint import load_model, load_tokenizer
    from scoder_jax.synth.sampler import SampleConfig, sample_candidates

    cfg = SampleConfig(n=2, temperature=1.0, top_p=1.0, max_new_tokens=8, seed=7, max_batch=8)
    tok = load_tokenizer(runs["adapters"][0])
    engine = Engine(load_model(runs["adapters"][0]), pad_id=tok.pad_id, max_batch=cfg.max_batch)
    out = {}
    for kind in ("adapters", "full"):
        summary = sample_candidates(SNIPPETS, [runs["dir"] / kind], tmp_path / kind, cfg, engine=engine)
        assert summary["merged"]["units_done"] == 4
        recs = []
        for name in ("candidates.jsonl", "rejects.jsonl"):
            recs += [json.loads(x) for x in (tmp_path / kind / name).read_text().splitlines()]
        out[kind] = sorted((r["snippet_id"], r.get("meta", r)["checkpoint_index"], r.get("meta", r)["sample_index"],
                            r.get("meta", r)["raw"]) for r in recs)
    assert len(out["adapters"]) == 8 and out["adapters"] == out["full"]


def test_influence_matches_the_full_layout(runs, tmp_path):
    from scoder_jax.influence.select import InfluenceConfig, run_influence

    recs = records(12, seed=3)
    cfg = InfluenceConfig(keep=0.5, dim=512, seed=3, microbatch=4, microbatches=1, seq_len=128, min_len=128,
                          progress=False, mesh_devices=1)
    scores = {}
    for kind in ("adapters", "full"):
        run_influence(recs[:8], recs[8:], runs[kind], tmp_path / kind, cfg)
        scores[kind] = [json.loads(x)["score"] for x in (tmp_path / kind / "scores.jsonl").read_text().splitlines()]
    assert len(scores["adapters"]) == 8 and all(s is not None for s in scores["adapters"])
    assert scores["adapters"] == scores["full"]


def _moved(path: Path):
    """Context manager: `path` renamed away, then back."""
    import contextlib

    @contextlib.contextmanager
    def cm():
        away = path.with_name(path.name + ".away")
        path.rename(away)
        try:
            yield away
        finally:
            if path.exists():
                shutil.rmtree(path)
            away.rename(path)

    return cm()


def test_moved_base_is_refused_by_name(runs, tmp_path, capsys):
    from scoder_jax import cli
    from scoder_jax.models.checkpoint import load_model
    from scoder_jax.synth.sampler import SampleConfig, sample_candidates

    step = runs["adapters"][-1]
    base = runs["base"]
    with _moved(base):
        msg = rf"{step}: holds LoRA adapters only, and its base model {base} is missing \(moved or deleted\?\)"
        with pytest.raises(CheckpointError, match=msg):
            load_model(step)
        with pytest.raises(CheckpointError, match=msg):
            sample_candidates(SNIPPETS, [step], tmp_path / "s", SampleConfig(n=1, max_new_tokens=4))
        for args in (["convert", str(step), str(tmp_path / "c")], ["verify", "--model", str(step)]):
            with pytest.raises(SystemExit) as e:
                cli.main(args)
            err = capsys.readouterr().err
            assert e.value.code == 2 and f"its base model {base} is missing" in err, err
        # resuming the run over the base at a new place is another base only if it differs
        summary = train(runs["cfg"], runs["data"], runs["dir"] / "adapters", model=str(base) + ".away")
        assert summary["resumed_from"] == 4 and summary["tokens"] == 0
    assert np.isfinite(np.asarray(ckpt_lib.load_params(step)["lora_q_b"])).all()  # back in place: loads again


def test_changed_base_is_refused_by_name(runs, tmp_path):
    from scoder_jax import parallel
    from scoder_jax.models.checkpoint import load_model, save_hf

    step = runs["adapters"][0]
    base = runs["base"]
    other = trainer_lib.init_model(PRESETS["tiny"].replace(name="tiny-base", max_position=2048),
                                   parallel.single_device_mesh(), 6)
    with _moved(base):
        save_hf(other, base)
        with pytest.raises(CheckpointError, match=rf"{step}: holds LoRA adapters only, and its base model {base} "
                                                  r"has changed since it was trained \(fingerprint sha256:"):
            load_model(step)
        # a resumed run over the changed base is refused before it trains
        with pytest.raises(CheckpointError, match=rf"{runs['dir'] / 'adapters' / 'checkpoints' / '4'}: trained over "
                                                  rf"the base model {base} \(fingerprint sha256:\w+\), but this run's"):
            train(runs["cfg"], runs["data"], runs["dir"] / "adapters")


def test_preset_base_resume_is_bitwise_and_its_values_are_checked(tmp_path, monkeypatch):
    """A preset base (the smoke runs') is re-initialised from its seed; resuming from a kept
    checkpoint ends exactly where the uninterrupted run did."""
    from scoder_jax.models.checkpoint import load_model

    cfg = _cfg(checkpoint={"every_steps": 2, "keep": 2, "async_save": False})
    data = write_jsonl(tmp_path / "d.jsonl", records(16, seed=4))
    train(cfg, data, tmp_path / "ref")
    last = tmp_path / "ref" / "checkpoints" / "4"
    ref = ckpt_lib.checkpoint_meta(last)["base"]
    assert ref["kind"] == "preset" and ref["preset"] == "tiny" and ref["seed"] == cfg.seed
    # interrupted after step 2: the later checkpoint and the summary are gone
    shutil.copytree(tmp_path / "ref", tmp_path / "cut")
    shutil.rmtree(tmp_path / "cut" / "checkpoints" / "4")
    (tmp_path / "cut" / "summary.json").unlink()
    summary = train(cfg, data, tmp_path / "cut")
    assert summary["resumed_from"] == 2
    a, b = ckpt_lib.load_params(last), ckpt_lib.load_params(tmp_path / "cut" / "checkpoints" / "4")
    for k in a:
        assert np.array_equal(np.asarray(a[k]), np.asarray(b[k])), k
    ma, mb = ckpt_lib.load_adam_moments(last), ckpt_lib.load_adam_moments(tmp_path / "cut" / "checkpoints" / "4")
    for k in ma.mu:
        assert np.array_equal(np.asarray(ma.mu[k]), np.asarray(mb.mu[k])) and np.array_equal(ma.nu[k], mb.nu[k]), k
    # another seed is another base: refused on resume, by name
    from dataclasses import replace

    with pytest.raises(CheckpointError, match=r"trained over the base preset 'tiny' \(seed 0\) .* but this run's "
                                              r"is the base preset 'tiny' \(seed 1\)"):
        train(replace(cfg, seed=1), data, tmp_path / "ref")
    # a preset that re-initialises to other values (another JAX's random numbers) is refused
    init = trainer_lib.init_model
    monkeypatch.setattr(trainer_lib, "init_model", lambda c, mesh, seed: init(c, mesh, seed + 1))
    with pytest.raises(CheckpointError, match=rf"{last}: its base preset 'tiny' \(seed 0\) loads to other values"):
        load_model(last)


def test_plan_reports_the_checkpoint_size():
    from scoder_jax.plan import checkpoint_size

    lora = tiny_cfg(lora=LORA).lora
    mcfg = PRESETS["qwen2.5-coder-7b-instruct"].replace(param_dtype="bfloat16", lora=lora)
    size = checkpoint_size(mcfg)
    assert size.params == 40_370_176 * 4 and size.moments == 2 * size.params  # fp32 adapters, mu, nu
    assert size.before - size.total == 7_615_616_512 * 2  # the bf16 base it no longer stores
    full = checkpoint_size(mcfg.replace(lora=None))
    assert full.params == 7_615_616_512 * 2 and full.total == 3 * full.params and full.before == full.total


def test_plan_prints_the_checkpoint_size(tmp_path):
    from scoder_jax.plan import make_plan

    cfg = tmp_path / "p.yaml"
    cfg.write_text("name: p\nsynth:\n  model: tiny\n  seq_len: 64\n  batch_size: 8\n"
                   "  lora: {rank: 16, alpha: 32, targets: [q, k, v, o, gate, up, down]}\n"
                   "  checkpoint: {keep: 4}\nstudent:\n  model: tiny\n  seq_len: 64\n  batch_size: 8\n")
    text, data = make_plan(str(cfg), 1, section="synth", compile=False)
    size = data["checkpoint_bytes"]
    # per layer: q 64x16 + 16x64, k and v 64x16 + 16x32, o 64x16 + 16x64, gate/up 64x16 + 16x128,
    # down 128x16 + 16x64 = 16384 factors; the tiny base has 106816 parameters
    assert size["total"] == 3 * 2 * 16384 * 4 and size["with_base"] == size["total"] + 106816 * 4
    assert "checkpoint on disk: 0.375 MiB each, 1.500 MiB for the 4 kept" in text
    assert "with the base stored beside them: 0.782 MiB each" in text


def test_value_probe_and_composition_do_not_depend_on_the_mesh(runs):
    """The probe reads each point from a shard that holds it: a base sharded over 8 devices
    probes like one on a single device, so a checkpoint composes on any mesh."""
    import jax

    from scoder_jax import parallel
    from scoder_jax.models.base_ref import value_probe
    from scoder_jax.models.checkpoint import _param_values, load_model

    if jax.device_count() < 8:
        pytest.skip("needs 8 simulated CPU devices (conftest sets XLA_FLAGS)")
    mesh = parallel.make_mesh(2, 2, 2)
    cfg = PRESETS["tiny"]
    one = value_probe(_param_values(trainer_lib.init_model(cfg, parallel.single_device_mesh(), 3)))
    eight = _param_values(trainer_lib.init_model(cfg, mesh, 3))
    assert any(len(v.sharding.device_set) == 8 and not v.sharding.is_fully_replicated for v in eight.values())
    assert value_probe(eight) == one
    step = runs["adapters"][-1]
    sharded, single = _param_values(load_model(step, mesh=mesh)), ckpt_lib.load_params(step)
    for k in single:
        assert np.array_equal(np.asarray(sharded[k]), np.asarray(single[k])), k
