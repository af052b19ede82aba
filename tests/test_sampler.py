"""Multi-checkpoint sampling: tagging, resume after an interruption, host shards, bad input.

Two tiny random checkpoints with SmolLM2's real tokenizer (vocabulary 49152) keep the engine
fast; their replies are noise, so they land in rejects.jsonl: the mechanics (units, tags,
resume, shards) are checked on candidates and rejects together, and the parse path on canned
replies through `unit_records`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from scoder_jax.errors import CheckpointError, ConfigError, DataError
from scoder_jax.synth import prompts
from scoder_jax.synth.sampler import (CheckpointRef, SampleConfig, merge_shards, resolve_checkpoints,
                                      sample_candidates, unit_prompt_id, unit_records)

SNIPPETS = [
    {"id": "sn-a", "lang": "python", "content": "def add(a, b):\n    return a + b\n"},
    {"id": "sn-b", "lang": "python", "content": "xs = sorted(set(items))\n"},
    {"id": "sn-c", "lang": "python", "content": "for k, v in d.items():\n    print(k, v)\n"},
]
CFG = SampleConfig(n=2, temperature=1.0, top_p=1.0, max_new_tokens=8, seed=7, max_batch=8)


def _random_model(cfg, seed: int):
    """A Decoder with random weights, drawn with numpy (eager jax init compiles per parameter)."""
    import jax.numpy as jnp
    import numpy as np
    from flax import nnx

    from scoder_jax.models.llama import Decoder, param_specs

    model = nnx.eval_shape(lambda: Decoder(cfg, rngs=nnx.Rngs(0)))
    rng = np.random.default_rng(seed)
    for name, (shape, _) in param_specs(cfg).items():
        value = np.ones(shape, np.float32) if "norm" in name else rng.normal(0, 0.5, shape).astype(np.float32)
        getattr(model, name).set_value(jnp.asarray(value))
    return model


@pytest.fixture(scope="module")
def tiny_ckpts(tmp_path_factory, smollm2_gguf) -> list[Path]:
    from scoder_jax.models.checkpoint import save_hf
    from scoder_jax.models.config import ModelConfig
    from scoder_jax.tokenizer import Tokenizer

    tok = Tokenizer.load(smollm2_gguf)
    cfg = ModelConfig(name="tiny-smol", vocab_size=49152, hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=1,
                      head_dim=16, intermediate_size=64, max_position=1024, tie_embeddings=True,
                      bos_token_id=1, eos_token_id=2)
    root = tmp_path_factory.mktemp("ckpts")
    out = []
    for i in range(2):
        save_hf(_random_model(cfg, 10 + i), root / f"ckpt{i}", tokenizer=tok)
        out.append(root / f"ckpt{i}")
    return out


@pytest.fixture(scope="module")
def engine(tiny_ckpts):
    """One engine for the module: its compiled functions carry over between runs."""
    from scoder_jax.generate.engine import Engine
    from scoder_jax.models.checkpoint import load_model

    return Engine(load_model(tiny_ckpts[0]), pad_id=2, max_batch=CFG.max_batch)


def _records(d: Path) -> dict[str, dict]:
    recs = {}
    for name in ("candidates.jsonl", "rejects.jsonl"):
        for line in (d / name).read_text().splitlines():
            r = json.loads(line)
            assert r["id"] not in recs, f"duplicate {r['id']}"
            recs[r["id"]] = r
    return recs


def _tags(r: dict) -> tuple:
    m = r.get("meta", r)
    return r["snippet_id"], m["checkpoint"], m["checkpoint_index"], m["sample_index"], m["seed"], m["raw"]


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, tiny_ckpts, engine) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("full")
    summary = sample_candidates(SNIPPETS, tiny_ckpts, out, CFG, engine=engine)
    return out, summary


@pytest.mark.slow
def test_two_checkpoints_tag_every_sample(full_run, tiny_ckpts):
    out, summary = full_run
    recs = _records(out)
    assert len(recs) == len(SNIPPETS) * 2 * CFG.n
    assert summary["units_done"] == 6 and summary["samples"] == 12
    assert summary["merged"]["complete"] and summary["merged"]["units_done"] == 6
    seen = {(r["snippet_id"], _tags(r)[2], _tags(r)[3]) for r in recs.values()}
    assert seen == {(s["id"], c, k) for s in SNIPPETS for c in range(2) for k in range(CFG.n)}
    for r in recs.values():
        sid, path, ci, si, seed, raw = _tags(r)
        assert path == str(tiny_ckpts[ci]) and seed == 7 and isinstance(raw, str)
        assert r.get("meta", r)["prompt_id"] == unit_prompt_id(sid, ci)
    # replies of random weights do not parse: every one is a reject with a reason
    assert sum(summary["reasons"].values()) == summary["rejects"] == 12 - summary["candidates"]
    assert all(r["reason"] in prompts.REASONS for r in recs.values() if "reason" in r)
    merged = json.loads((out / "summary.json").read_text())
    assert set(merged["per_checkpoint"]) == {"0", "1"}
    # the two checkpoints do not share randomness (different prompt ids) nor weights
    by = {}
    for r in recs.values():
        by.setdefault((r["snippet_id"], _tags(r)[3]), {})[_tags(r)[2]] = _tags(r)[5]
    assert any(v[0] != v[1] for v in by.values())


@pytest.mark.slow
def test_interrupted_run_resumes_without_loss_or_duplicates(full_run, tiny_ckpts, engine, tmp_path):
    ref_dir, _ = full_run
    out = tmp_path / "s"

    class Kill(Exception):
        pass

    units = []

    def die_after_two(marker):
        units.append(marker)
        if len(units) == 2:
            raise Kill()

    with pytest.raises(Kill):
        sample_candidates(SNIPPETS, tiny_ckpts, out, CFG, on_unit=die_after_two, engine=engine)
    done = (out / "done.0.jsonl").read_text().splitlines()
    assert len(done) == 2
    # a kill between a unit's records and its marker, and a torn last line
    stray = {"id": "cand-stray", "snippet_id": "sn-c", "lang": "python", "checkpoint": str(tiny_ckpts[1]),
             "checkpoint_step": None, "checkpoint_index": 1, "sample_index": 0, "seed": 7, "prompt_id": 1,
             "reason": "empty", "detail": "", "raw": ""}
    with open(out / "rejects.0.jsonl", "a") as f:
        f.write(json.dumps(stray) + "\n" + '{"id": "cand-torn", "snippet')
    with open(out / "done.0.jsonl", "a") as f:
        f.write('{"snippet_id": "sn-c", "checkp')

    summary = sample_candidates(SNIPPETS, tiny_ckpts, out, CFG, engine=engine)
    assert summary["units_already_done"] == 2 and summary["units_done"] == 4
    got, want = _records(out), _records(ref_dir)
    assert set(got) == set(want)
    assert {k: _tags(v) for k, v in got.items()} == {k: _tags(v) for k, v in want.items()}
    # a third run has nothing left to do
    again = sample_candidates(SNIPPETS, tiny_ckpts, out, CFG, engine=engine)
    assert again["units_done"] == 0 and again["units_already_done"] == 6
    assert set(_records(out)) == set(want)


@pytest.mark.slow
def test_host_shards_merge_to_the_single_host_result(full_run, tiny_ckpts, engine, tmp_path):
    ref_dir, _ = full_run
    out = tmp_path / "s"
    import dataclasses

    s0 = sample_candidates(SNIPPETS, tiny_ckpts, out, dataclasses.replace(CFG, process_index=0, process_count=2),
                           engine=engine)
    assert s0["snippets"] == 2 and "merged" not in s0
    partial = merge_shards(out)
    assert not partial["complete"]
    s1 = sample_candidates(SNIPPETS, tiny_ckpts, out, dataclasses.replace(CFG, process_index=1, process_count=2),
                           engine=engine)
    assert s1["snippets"] == 1
    merged = merge_shards(out)
    assert merged["complete"] and merged["units_done"] == 6
    got, want = _records(out), _records(ref_dir)
    assert {k: _tags(v) for k, v in got.items()} == {k: _tags(v) for k, v in want.items()}


@pytest.mark.slow
def test_resume_with_other_settings_is_refused(full_run, tiny_ckpts):
    out, _ = full_run
    import dataclasses

    with pytest.raises(ConfigError, match="other sampling parameters"):
        sample_candidates(SNIPPETS, tiny_ckpts, out, dataclasses.replace(CFG, temperature=0.5))
    with pytest.raises(ConfigError, match="other checkpoints"):
        sample_candidates(SNIPPETS, tiny_ckpts[::-1], out, CFG)


def test_missing_checkpoint_is_reported_and_counted(tmp_path, tiny_ckpts):
    gone = tmp_path / "nope"
    with pytest.raises(CheckpointError, match=r"1 of 2 checkpoints missing: .*nope"):
        resolve_checkpoints([tiny_ckpts[0], gone])
    refs, missing = resolve_checkpoints([tiny_ckpts[0], gone], skip_missing=True)
    assert [r.path for r in refs] == [str(tiny_ckpts[0])] and missing == [str(gone)]
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="not a model checkpoint"):
        resolve_checkpoints([tmp_path / "empty"])


def test_training_run_directory_expands_to_its_checkpoints(tmp_path, tiny_ckpts):
    import shutil

    run = tmp_path / "run" / "checkpoints"
    for step in (20, 100):
        d = run / str(step)
        shutil.copytree(tiny_ckpts[0], d)
        (d / "meta").mkdir()
        (d / "opt_state").mkdir()
        (d / "params").mkdir(exist_ok=True)
        (d / "meta" / "metadata").write_text(json.dumps({"step": step, "lr": 1e-4, "model": {}}))
    refs, _ = resolve_checkpoints([tmp_path / "run"])
    assert [(r.index, r.step, Path(r.path).name) for r in refs] == [(0, 20, "20"), (1, 100, "100")]


def test_unit_records_parse_and_reject_with_reasons():
    snip = {"id": "sn-x", "lang": "python", "content": "def f(x): return x"}
    ref = CheckpointRef(1, "/ck/1", 40)
    good = prompts.format_response("Write `double(x)` returning 2*x.", "def double(x):\n    return 2 * x",
                                   "assert double(2) == 4\nassert double(0) == 0", "python")
    no_solution = "[Problem]\nWrite something.\n\n[Tests]\n```python\nassert True\n```\n"
    cands, rejects = unit_records(snip, ref, 3, [(1, no_solution, "stop", 20), (0, good, "stop", 40),
                                                 (2, "", "length", 8)])
    assert [c["meta"]["sample_index"] for c in cands] == [0]
    c = cands[0]
    assert c["origin"] == "synth" and c["problem"].startswith("Write `double")
    assert c["solution"].startswith("def double") and "assert double(2)" in c["tests"]
    assert c["meta"] | {"raw": None} == {"checkpoint": "/ck/1", "checkpoint_step": 40, "checkpoint_index": 1,
                                         "sample_index": 0, "seed": 3, "prompt_id": unit_prompt_id("sn-x", 1),
                                         "raw": None, "parse": "ok", "finish_reason": "stop", "n_tokens": 40}
    assert [(r["sample_index"], r["reason"]) for r in rejects] == [(1, "no_solution"), (2, "empty")]
    assert all(r["raw"] is not None and r["checkpoint_index"] == 1 for r in rejects)
    assert len({c["id"], *(r["id"] for r in rejects)}) == 3


def test_prompt_ids_are_stable_and_distinct():
    assert unit_prompt_id("sn-a", 0) == unit_prompt_id("sn-a", 0)
    ids = {unit_prompt_id(s, c) for s in ("sn-a", "sn-b", "sn-c") for c in range(4)}
    assert len(ids) == 12 and all(0 <= i < 2 ** 31 for i in ids)


@pytest.mark.slow
def test_sample_command(tmp_path, tiny_ckpts):
    from scoder_jax.synth.sample_commands import sample

    pool = tmp_path / "pool.jsonl"
    lines = [json.dumps(s) for s in SNIPPETS] + [json.dumps({"id": "sn-bad", "lang": "python"})]
    pool.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    args = ["--snippets", str(pool), "--checkpoints", str(tiny_ckpts[0]), "--checkpoints", str(tmp_path / "gone"),
            "--out", str(out), "--n", "1", "--max-new-tokens", "4", "--limit", "4", "--no-progress"]
    res = CliRunner().invoke(sample, args)
    assert isinstance(res.exception, CheckpointError) and "gone" in str(res.exception)
    res = CliRunner().invoke(sample, args + ["--skip-missing"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.splitlines()[0])
    assert summary["bad_snippets"] == 1 and "content" in summary["first_bad_snippets"][0]
    assert summary["missing_checkpoints"] == [str(tmp_path / "gone")]
    assert summary["merged"]["units_done"] == 3 and len(_records(out)) == 3
    assert "skipped 1 missing checkpoints" in res.stderr and "unusable snippets" in res.stderr
    res = CliRunner().invoke(sample, ["--merge", "--out", str(out)])
    assert res.exit_code == 0 and json.loads(res.stdout)["complete"] is True
    res = CliRunner().invoke(sample, ["--out", str(out)])
    assert "--snippets and --checkpoints are required" in str(res.exception)
    with pytest.raises(DataError, match="no shard"):
        merge_shards(tmp_path)
