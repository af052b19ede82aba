"""`scoder iterate` on the smoke preset (two devices): end to end, two processes killed and resumed, config
changes, bad input; and on 8 devices. One device, five kills and resumes: tests/test_loop_options.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.procs import copy_run, copy_through_s0, free_port, wait_until_running

from scoder_jax.errors import ConfigError, ScoderError

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _env(devices: int = 2):
    """One process with two simulated devices (the same mesh as two processes of one device each),
    or `devices` of them."""
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = str(REPO)
    return env


def _iterate(run_dir: Path, *extra: str, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "scoder_jax.cli", "iterate", "--config", "smoke", "--run-dir",
                        str(run_dir), "--no-progress", *extra], cwd=REPO, env=_env(), capture_output=True, text=True,
                       timeout=1500)
    if check:
        assert r.returncode == 0, r.stderr[-3000:]
    return r


def _manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


def _launch_two(run_dir: Path, logs: Path, tag: str, *extra: str) -> list[subprocess.Popen]:
    port = free_port()
    procs = []
    for i in range(2):
        env = _env(devices=1)
        env.update(SCODER_COORDINATOR=f"127.0.0.1:{port}", SCODER_NUM_PROCESSES="2", SCODER_PROCESS_ID=str(i),
                   SCODER_HEARTBEAT_S="10")
        with open(logs / f"{tag}.{i}.err", "w") as err:
            procs.append(subprocess.Popen([sys.executable, "-m", "scoder_jax.cli", "iterate", "--config", "smoke",
                                           "--run-dir", str(run_dir), "--no-progress", *extra], cwd=REPO, env=env,
                                          stdout=subprocess.DEVNULL, stderr=err, start_new_session=True))
    return procs


def _trained_params(run_dir: Path, stage: str) -> dict:
    """The last checkpoint of the fine-tune `stage` wrote, as arrays."""
    from scoder_jax.models.checkpoint import load_model
    from scoder_jax.models.lora import merged_params
    from scoder_jax.train.checkpoints import list_checkpoints

    out = _manifest(run_dir)["stages"][stage]["out"]
    return {k: np.asarray(v) for k, v in merged_params(load_model(list_checkpoints(run_dir / out)[-1].path)).items()}


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("smoke") / "run"
    _iterate(run_dir)
    return run_dir


def test_smoke_runs_end_to_end(smoke_run):
    m = _manifest(smoke_run)
    assert all(e["status"] == "done" for e in m["stages"].values()), m["stages"]
    names = list(m["stages"])
    for s in ("pool", "seed", "sft_00", "sample_01", "score_01", "influence_01", "select_01", "sft_01",
              "final_sample", "final_score", "export", "student", "eval", "report"):
        assert s in names
    rows = [json.loads(l) for l in (smoke_run / "final/dataset/dataset.jsonl").read_text().splitlines()]
    assert rows, "the smoke run's final dataset is empty"
    for r in rows:
        assert r["problem"] and r["solution"] and r["tests"] and r["score"] is not None
    import pyarrow.parquet as pq

    table = pq.read_table(smoke_run / "final/dataset/dataset.parquet")
    assert table.num_rows == len(rows)
    assert {"problem", "solution", "tests", "snippet", "influence"} <= set(table.column_names)
    html = (smoke_run / "report.html").read_text()
    assert "Per iteration" in html and "<img" in html
    cands = [json.loads(l) for l in (smoke_run / "iter_01/samples/candidates.jsonl").read_text().splitlines()]
    assert {c["meta"]["checkpoint_index"] for c in cands} == {0, 1}  # two checkpoints of S_0
    # a rerun does nothing
    before = {k: v["finished"] for k, v in m["stages"].items()}
    _iterate(smoke_run)
    after = {k: v["finished"] for k, v in _manifest(smoke_run)["stages"].items()}
    assert {k for k in after if after[k] != before[k]} <= {"report"}


def test_two_processes_survive_a_kill_and_match_one_process(smoke_run, tmp_path):
    """Two processes on 127.0.0.1 (gloo), from the smoke run's S_0 on: they sample, score and
    select, then process 1 is SIGKILLed while S_1 trains; process 0 must exit with a clear error
    within the heartbeat timeout, not hang. Both rerun: the run resumes and ends with the
    one-process run's final dataset, byte for byte, and its S_1 (the fine-tune they were killed
    in and reran together; parameters within 1e-5). The student's fine-tune is the same trainer
    on that dataset: not run again here."""
    run = copy_through_s0(smoke_run, tmp_path / "run")
    procs = _launch_two(run, tmp_path, "first")
    wait_until_running(run, "sft_01", procs, after_s=3)
    assert all(p.poll() is None for p in procs), (tmp_path / "first.0.err").read_text()[-3000:]
    os.killpg(procs[1].pid, signal.SIGKILL)
    t0 = time.time()
    try:
        rc = procs[0].wait(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(procs[0].pid, signal.SIGKILL)
        pytest.fail("process 0 still waits 240 s after process 1 died")
    err = (tmp_path / "first.0.err").read_text()
    assert rc != 0, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: stage sft_01: a collective failed on process 0"), err[-3000:]
    assert "another process most likely died" in last and "stack trace" not in err, err[-3000:]
    print(f"process 0 exited {time.time() - t0:.0f} s after the kill: {err.strip().splitlines()[-1][:300]}")

    procs = _launch_two(run, tmp_path, "rerun", "--until", "export")  # what is compared: S_1, the dataset
    for i, p in enumerate(procs):
        try:
            assert p.wait(timeout=1500) == 0, (tmp_path / f"rerun.{i}.err").read_text()[-3000:]
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
    m = _manifest(run)
    assert all(e["status"] == "done" for e in m["stages"].values())
    assert m["stages"]["sample_01"]["counts"]["process_count"] == 2
    assert ((run / "final/dataset/dataset.jsonl").read_bytes()
            == (smoke_run / "final/dataset/dataset.jsonl").read_bytes())
    ours, ref = _trained_params(run, "sft_01"), _trained_params(smoke_run, "sft_01")
    assert ours.keys() == ref.keys()
    for k in ref:
        np.testing.assert_allclose(ours[k], ref[k], atol=1e-5, err_msg=k)


def test_smoke_preset_ends_with_a_dataset_on_8_devices(tmp_path):
    """8 devices exercise the mesh that shrinks to the smoke batch of 2 rows. The preset's seed
    samples share one reply, so parsing does not hang on luck."""
    run = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "scoder_jax.cli", "iterate", "--config", "smoke", "--run-dir", str(run),
                        "--no-progress", "--until", "export"], cwd=tmp_path, env=_env(devices=8), capture_output=True,
                       text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Metadata file does not exist" not in r.stderr  # orbax's step-metadata warning is silenced
    m = _manifest(run)
    assert "mesh {'data': 2, 'fsdp': 1, 'tensor': 1}" in r.stderr  # the smoke batch has 2 rows: 2 of 8 devices
    rows = (run / "final/dataset/dataset.jsonl").read_text().splitlines()
    assert rows and m["stages"]["export"]["counts"]["rows"] == len(rows)
    assert m["stages"]["final_sample"]["counts"]["rejects"] == 0, m["stages"]["final_sample"]


def test_changing_a_scoring_weight_reruns_scoring_and_after_only(smoke_run, tmp_path):
    run = copy_run(smoke_run, tmp_path / "run")
    before = {k: v["finished"] for k, v in _manifest(run)["stages"].items()}
    _iterate(run, "--until", "select_01", "score.weights={clarity: 2.0}")
    after = {k: v["finished"] for k, v in _manifest(run)["stages"].items()}
    rerun = {k for k in after if after[k] != before[k]}
    assert rerun == {"score_01", "influence_01", "select_01"}, rerun


def test_bad_config_and_foreign_run_dir(tmp_path):
    from scoder_jax.pipeline import iterate
    from scoder_jax.runconfig import load_run_config

    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsample:\n  n: 2\n  temprature: 0.5\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:4.*temprature"):
        load_run_config(bad)
    bad.write_text("name: x\niterations: two\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:2.*iterations"):
        load_run_config(bad)
    r = subprocess.run([sys.executable, "-m", "scoder_jax.cli", "iterate", "--config", str(bad), "--run-dir",
                        str(tmp_path / "r")], cwd=REPO, env=_env(), capture_output=True, text=True)
    assert r.returncode == 2 and "iterations" in r.stderr and "bad.yaml" in r.stderr

    cfg, _ = load_run_config("smoke")
    run = tmp_path / "run"
    iterate(cfg, run, until="seed", progress=False)
    import dataclasses

    other = dataclasses.replace(cfg, name="other")
    with pytest.raises(ConfigError, match="belongs to config 'smoke'"):
        iterate(other, run, until="seed", progress=False)
    iterate(other, run, until="seed", force=True, progress=False)
    with pytest.raises(ConfigError, match="gs://b/runs/x: the run directory must be a filesystem path.*gcsfuse"):
        iterate(cfg, "gs://b/runs/x", progress=False)


def test_full_disk_keeps_the_last_good_stage(tmp_path, monkeypatch):
    import errno

    from scoder_jax import pipeline
    from scoder_jax.runconfig import load_run_config

    cfg, _ = load_run_config("smoke")
    run = tmp_path / "run"
    pipeline.iterate(cfg, run, until="pool", progress=False)

    def full(ctx, stage, out):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setitem(pipeline.RUNNERS, "seed", full)
    with pytest.raises(ScoderError, match=r"disk full while running stage seed; .*\(pool and earlier\) are intact"):
        pipeline.iterate(cfg, run, until="seed", progress=False)
    m = _manifest(run)
    assert m["stages"]["pool"]["status"] == "done" and (run / "pool/pool.jsonl").exists()


def test_no_progress_silences_the_trainers_bar_too(tmp_path, monkeypatch):
    """`scoder iterate --no-progress` on a preset whose fine-tunes show a bar (synth.progress:
    true, as in the demo): the trainer is handed progress off."""
    from scoder_jax import pipeline
    from scoder_jax.runconfig import load_run_config
    from scoder_jax.train import trainer

    seen = []

    def train(cfg, *args, **kwargs):
        seen.append(cfg.progress)
        raise ScoderError("stop here")

    monkeypatch.setattr(trainer, "train", train)
    cfg, _ = load_run_config("smoke", ["synth.progress=true"])
    assert cfg.synth.train_config().progress is True
    with pytest.raises(ScoderError, match="stop here"):
        pipeline.iterate(cfg, tmp_path / "run", until="sft_00", progress=False)
    with pytest.raises(ScoderError, match="stop here"):
        pipeline.iterate(cfg, tmp_path / "run", until="sft_00", progress=True)
    assert seen == [False, True]
