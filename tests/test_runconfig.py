"""The run config is checked whole at load, before any stage runs; presets resolve their files
beside themselves; a failed stage is recorded as failed, with a hint that helps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scoder_jax.errors import ConfigError, ScoderError
from scoder_jax.runconfig import load_run_config

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("override, message", [
    ("sample.n=-1", r"'sample.n' must be >= 1, got -1 \(from override 'sample.n=-1'\)"),
    ("sample.temperature=-0.5", r"'sample.temperature' must be >= 0"),
    ("sample.no_repeat_ngram=1", r"'sample.no_repeat_ngram' must be 0 \(off\) or >= 2"),
    ("sample.checkpoints=3", r"'sample.checkpoints' = 3 exceeds the checkpoints each fine-tune keeps"),
    ("final.snippets=0", r"'final.snippets' must be >= 1"),
    ("final.top_p=1.5", r"'final.top_p' must lie in \(0, 1\]"),
    ("influence.keep=0", r"'influence.keep' must lie in \(0, 1\]"),
    ("influence.mode=both", r"'influence.mode' = 'both' is not one of 'auto', 'lora', 'full'"),
    ("score.aspects=[clarity, beauty]", r"'score.aspects' has unknown aspect 'beauty'"),
    ("score.weights={clarity: 1, speed: 2}", r"'score.weights' has unknown key 'speed'"),
    ("score.timeout_s=0", r"'score.timeout_s' must be > 0"),
    ("seed_set.limit=-2", r"'seed_set.limit' must be >= 0"),
    ("pool.sources=[]", r"'pool.sources' must name at least one source"),
    ("iterations=-1", r"'iterations' must be >= 0"),
    ("seed_set.source=missing.jsonl", r"'seed_set.source' = missing.jsonl: no such file or folder"),
    ("synth.model=gguf:nothing", r"'synth.model' = gguf:nothing: no such named asset"),
    ("eval.files={humaneval+: nowhere.jsonl}", r"'eval.files.humaneval\+' = nowhere.jsonl: no such file"),
    ("synth.format=tests_only", r"'synth.format' = 'tests_only' is not one of 'problem_solution', "),
])
def test_every_section_is_checked_at_load(override, message):
    with pytest.raises(ConfigError, match=message):
        load_run_config("smoke", [override])


def test_a_bad_value_fails_before_any_stage_runs(tmp_path):
    """`sample.n=-1` used to pass three stages (35 s of training) before failing."""
    run = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "scoder_jax.cli", "iterate", "--config", "smoke", "--run-dir", str(run),
                        "sample.n=-1"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 2, r.stderr[-2000:]
    assert r.stderr.strip().splitlines()[-1].startswith("error: ") and "'sample.n' must be >= 1" in r.stderr
    assert not (run / "manifest.json").exists()


def test_preset_files_resolve_beside_the_preset_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg, path = load_run_config("smoke")
    assert Path(cfg.seed_set.source).is_absolute() and Path(cfg.seed_set.source).exists()
    assert all(Path(s).is_absolute() and Path(s).exists() for s in cfg.pool.sources)
    # a user's own config: relative paths beside it first, then the working directory
    (tmp_path / "cfgs").mkdir()
    (tmp_path / "cfgs" / "seed.jsonl").write_text((REPO / "configs/smoke_seed.jsonl").read_text())
    (tmp_path / "here.jsonl").write_text((REPO / "configs/smoke_snippets.jsonl").read_text())
    text = (REPO / "configs/smoke.yaml").read_text().replace("source: smoke_seed.jsonl", "source: seed.jsonl")
    text = text.replace("sources: [smoke_snippets.jsonl]", "sources: [here.jsonl]")
    (tmp_path / "cfgs" / "mine.yaml").write_text(text)
    cfg, _ = load_run_config(tmp_path / "cfgs" / "mine.yaml")
    assert cfg.seed_set.source == str(tmp_path / "cfgs" / "seed.jsonl")
    assert cfg.pool.sources == ("here.jsonl",)


def test_a_failed_stage_is_recorded_as_failed_and_resumes(tmp_path, monkeypatch):
    from scoder_jax import pipeline

    cfg, _ = load_run_config("smoke")
    run = tmp_path / "run"

    def broken(ctx, stage, out):
        raise ScoderError("the seed stage broke on purpose")

    monkeypatch.setitem(pipeline.RUNNERS, "seed", broken)
    with pytest.raises(ScoderError, match="on purpose"):
        pipeline.iterate(cfg, run, until="seed", progress=False)
    entry = json.loads((run / "manifest.json").read_text())["stages"]["seed"]
    assert entry["status"] == "failed" and entry["error"] == "the seed stage broke on purpose"
    monkeypatch.undo()
    pipeline.iterate(cfg, run, until="seed", progress=False)
    assert json.loads((run / "manifest.json").read_text())["stages"]["seed"]["status"] == "done"


def _ctx(tmp_path, final_counts, score_counts, rejects):
    from scoder_jax import pipeline

    cfg, _ = load_run_config("smoke")
    run = tmp_path / "run"
    stages = {s.name: s for s in pipeline.build_stages(cfg)}
    (run / "final/samples").mkdir(parents=True)
    (run / "final/samples/rejects.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rejects))
    m = pipeline.Manifest(run)
    m.stages["final_sample"] = {"status": "done", "counts": final_counts}
    m.stages["final_score"] = {"status": "done", "counts": score_counts}
    return pipeline.Context(cfg, run, m, stages, False)


def test_an_empty_final_set_says_why_and_what_to_change(tmp_path):
    from scoder_jax.pipeline import why_empty

    ctx = _ctx(tmp_path, {"candidates": 0}, {"candidates": 0, "selected": 0},
               [{"reason": "truncated"}, {"reason": "truncated"}, {"reason": "no_solution"}])
    said = why_empty(ctx)
    assert "none of final sampling's 3 replies parsed (no_solution 1, truncated 2" in said
    assert "synth.max_steps" in said and "threshold" not in said  # the threshold cannot help here

    ctx = _ctx(tmp_path / "b", {"candidates": 4}, {"candidates": 4, "selected": 0, "reasons": {"tests_failed": 4}}, [])
    said = why_empty(ctx)
    assert "scoring kept none of the 4 parsed candidates (tests_failed 4" in said
    assert "score.require_tests_pass=false" in said


def test_a_file_the_config_names_enters_its_stages_key(tmp_path):
    """A seed set (or weights file) edited in place reruns what it feeds, not only a changed path."""
    import dataclasses

    from scoder_jax.stage_plan import build_stages, stage_key

    seed = tmp_path / "seed.jsonl"
    seed.write_text((Path(__file__).resolve().parent.parent / "configs/smoke_seed.jsonl").read_text())
    cfg, _ = load_run_config("smoke", [f"seed_set.source={seed}"])
    stages = {s.name: s for s in build_stages(cfg)}
    before = {n: stage_key(cfg, stages[n], {}) for n in ("seed", "pool", "sft_00")}
    seed.write_text(seed.read_text().replace("count_words", "count_tokens"))
    after = {n: stage_key(cfg, stages[n], {}) for n in ("seed", "pool", "sft_00")}
    assert after["seed"] != before["seed"]
    assert after["pool"] == before["pool"] and after["sft_00"] == before["sft_00"]  # they get it through `seed`
    same = dataclasses.replace(cfg, name="renamed")
    assert stage_key(same, stages["seed"], {}) == after["seed"]


def test_synth_init_reruns_the_later_fine_tunes_not_s0():
    """synth.init says how S_1 .. S_T start; S_0 always starts from the base model, so a run
    switched to synth.init=previous keeps its S_0 (and what S_0 fed) and retrains from S_1 on."""
    import dataclasses

    from scoder_jax.stage_plan import build_stages, stage_key

    base, _ = load_run_config("smoke", [])
    prev, _ = load_run_config("smoke", ["synth.init=previous"])
    b, p = ({s.name: s for s in build_stages(c)} for c in (base, prev))
    assert stage_key(base, b["sft_00"], {}) == stage_key(prev, p["sft_00"], {})
    assert stage_key(base, b["sft_01"], {}) != stage_key(prev, p["sft_01"], {})
    longer, _ = load_run_config("smoke", ["synth.max_steps=101"])
    assert stage_key(longer, b["sft_00"], {}) != stage_key(base, b["sft_00"], {})  # the rest of synth still counts
    # a run made before synth.init was pinned (init: base, the default) keeps its S_0's key
    unpinned = dataclasses.replace(b["sft_00"], pins=())
    assert stage_key(base, unpinned, {}) == stage_key(base, b["sft_00"], {})
    # and the exported dataset's config hash follows what reaches its stages
    from scoder_jax.export import dataset_config_hash

    only_s0 = [load_run_config("smoke", ["iterations=0", *o])[0] for o in ([], ["synth.init=previous"])]
    assert dataset_config_hash(only_s0[0]) == dataset_config_hash(only_s0[1])
    assert dataset_config_hash(base) != dataset_config_hash(prev)


def test_a_scorer_retrained_in_place_reruns_scoring(tmp_path):
    """score.judge as a folder: a file in it rewritten (`scoder scorer train` into the same
    folder) changes the score stages' keys, not the stages before them."""
    import dataclasses
    import os

    from scoder_jax.stage_plan import build_stages, stage_key

    cfg, _ = load_run_config("smoke", [])
    scorer = tmp_path / "scorer"
    (scorer / "adapter").mkdir(parents=True)
    weights = scorer / "adapter" / "model.safetensors"
    weights.write_bytes(b"0" * 64)
    cfg = dataclasses.replace(cfg, score=dataclasses.replace(cfg.score, judge=str(scorer)))
    stages = {s.name: s for s in build_stages(cfg)}
    before = {n: stage_key(cfg, stages[n], {}) for n in ("score_01", "sft_00")}
    weights.write_bytes(b"1" * 64)
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 1_000_000))
    after = {n: stage_key(cfg, stages[n], {}) for n in ("score_01", "sft_00")}
    assert after["score_01"] != before["score_01"] and after["sft_00"] == before["sft_00"]
