"""The exported dataset: loads in `datasets`, pandas and pyarrow alike; every row carries its provenance."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.fake_run import fake_run

from scoder_jax.config import dump_yaml
from scoder_jax.export import Provenance, dataset_config_hash, export_dataset, provenance


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return fake_run(tmp_path_factory.mktemp("export"))


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return (a is None and b is None) or (a is not None and b is not None
                                             and (math.isclose(a, b) or (math.isnan(a) and math.isnan(b))))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def test_parquet_and_jsonl_load_in_datasets_pandas_and_pyarrow(run, tmp_path):
    import datasets
    import pandas as pd
    import pyarrow.parquet as pq

    run_dir, _, cfg = run
    folder = run_dir / "final" / "dataset"
    rows = _jsonl(folder / "dataset.jsonl")
    assert len(rows) >= 3
    for kind, name in (("parquet", "dataset.parquet"), ("json", "dataset.jsonl")):
        ds = datasets.load_dataset(kind, data_files=str(folder / name), split="train",
                                   cache_dir=str(tmp_path / f"hf-{kind}"))
        assert ds.num_rows == len(rows)
        assert set(ds.features["scores"]) == set(cfg.score.aspects)
        for got, want in zip(ds, rows):
            assert _same(dict(got), want), (kind, got, want)
    frame = pd.read_parquet(folder / "dataset.parquet")
    assert list(frame["id"]) == [r["id"] for r in rows]
    assert [dict(s) for s in frame["scores"]] == [r["scores"] for r in rows]
    table = pq.read_table(folder / "dataset.parquet")
    assert table.to_pylist() == rows


def test_an_aspect_a_row_lacks_is_null_in_the_struct(tmp_path):
    import datasets

    recs = [{"id": "a", "problem": "p", "solution": "s", "meta": {"score": {"total": 3.0, "scores": {"clarity": 4.0}}}},
            {"id": "b", "problem": "q", "solution": "t",
             "meta": {"score": {"total": 5.0, "scores": {"clarity": 6.0, "novelty": 2.0}}}}]
    export_dataset(recs, tmp_path / "out", provenance=Provenance(aspects=("clarity", "correctness")))
    ds = datasets.load_dataset("parquet", data_files=str(tmp_path / "out" / "dataset.parquet"), split="train",
                               cache_dir=str(tmp_path / "hf"))
    assert list(ds.features["scores"]) == ["clarity", "correctness", "novelty"]
    assert ds[0]["scores"] == {"clarity": 4.0, "correctness": None, "novelty": None}
    assert ds[1]["scores"] == {"clarity": 6.0, "correctness": None, "novelty": 2.0}


def test_every_row_carries_its_provenance(run):
    run_dir, _, cfg = run
    rows = _jsonl(run_dir / "final" / "dataset" / "dataset.jsonl")
    selected = {r["id"]: r for r in _jsonl(run_dir / "final" / "scores" / "selected.jsonl")}
    for row in rows:
        src = selected[row["id"]]["meta"]
        assert row["run"] == "fake"
        assert row["config_hash"] == dataset_config_hash(cfg) and len(row["config_hash"]) == 16
        assert row["seed"] == src["seed"] == cfg.seed + 1000 * (cfg.iterations + 1)
        assert row["temperature"] == cfg.final.temperature
        assert row["tests_pass"] is src["score"]["signals"]["passes"]
        assert row["iteration"] == cfg.iterations + 1
        assert not Path(row["checkpoint"]).is_absolute()  # named relative to the run directory
    assert {r["tests_pass"] for r in rows} <= {True, False}
    summary = json.loads((run_dir / "final" / "dataset" / "summary.json").read_text())
    assert summary["tests_pass"] == sum(r["tests_pass"] for r in rows)
    assert summary["provenance"]["config_hash"] == dataset_config_hash(cfg)


def test_config_hash_follows_what_feeds_the_dataset(run):
    import dataclasses

    _, _, cfg = run
    h = dataset_config_hash(cfg)
    final = dataclasses.replace(cfg.final, temperature=0.9)
    assert dataset_config_hash(dataclasses.replace(cfg, final=final)) != h
    score = dataclasses.replace(cfg.score, threshold=1.5)
    assert dataset_config_hash(dataclasses.replace(cfg, score=score)) != h
    # the student, the evaluation and the run's name do not make the dataset
    assert dataset_config_hash(dataclasses.replace(cfg, name="other", eval=dataclasses.replace(cfg.eval, limit=9),
                                                   student=dataclasses.replace(cfg.student, epochs=7))) == h


def test_provenance_reads_what_the_final_set_was_sampled_with(run, tmp_path):
    run_dir, _, cfg = run
    prov = provenance(cfg, run_dir)
    assert (prov.run, prov.temperature, prov.seed) == ("fake", cfg.final.temperature, cfg.seed + 3000)
    assert prov.aspects == tuple(cfg.score.aspects)
    bad = tmp_path / "final" / "samples"
    bad.mkdir(parents=True)
    (bad / "sample_config.json").write_text("{")
    with pytest.raises(Exception, match="sample_config.json: malformed"):
        provenance(cfg, tmp_path)


def _export(capsys, *args: str) -> tuple[int, str, str]:
    from scoder_jax.cli import main

    try:
        main(["export", *args])
        code = 0
    except SystemExit as e:
        code = e.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


def test_export_command_writes_what_the_pipeline_wrote_and_refuses_a_stale_selection(run, tmp_path, capsys):
    import dataclasses
    import shutil

    run_dir, _, cfg = run
    code, out, err = _export(capsys, "--run-dir", str(run_dir), "--out", str(tmp_path / "out"))
    assert code == 0, err
    assert (tmp_path / "out" / "dataset.jsonl").read_bytes() == (run_dir / "final/dataset/dataset.jsonl").read_bytes()
    assert json.loads(out.strip().splitlines()[-1])["rows"] == len(_jsonl(tmp_path / "out" / "dataset.jsonl"))
    # config.yaml now asks for another final temperature than the final set was sampled with
    other = tmp_path / "other"
    shutil.copytree(run_dir, other)
    (other / "config.yaml").write_text(dump_yaml(dataclasses.replace(
        cfg, final=dataclasses.replace(cfg.final, temperature=0.7))))
    code, out, err = _export(capsys, "--run-dir", str(other), "--out", str(tmp_path / "out2"))
    assert code == 2 and "stage final_sample is not done under it" in err, err
    assert not (tmp_path / "out2").exists()
    (other / "config.yaml").unlink()
    code, out, err = _export(capsys, "--run-dir", str(other), "--out", str(tmp_path / "out2"))
    assert code == 2 and "config.yaml: no such file" in err, err
