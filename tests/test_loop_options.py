"""The smoke preset on one device (what every user has) ends with a dataset; the loop's options
the paper leaves open, and the ablations, each from a copy of that run (the rerun redoes only
the stages its overrides feed), and five SIGKILLs and resumes from its S_0. 2 and 8 devices:
tests/test_pipeline.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.procs import copy_run, copy_through_s0, wait_until_running

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # one CPU device, as a user has
    env.update(JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO))
    return env


def _iterate(run: Path, *extra: str) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "scoder_jax.cli", "iterate", "--config", "smoke", "--run-dir", str(run),
                        "--no-progress", *extra], cwd=REPO, env=_env(), capture_output=True, text=True, timeout=1500)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def _manifest(run: Path) -> dict:
    return json.loads((run / "manifest.json").read_text())


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def one_device(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The smoke preset through export on one device (no XLA_FLAGS)."""
    run = tmp_path_factory.mktemp("one") / "run"
    return run, _iterate(run, "--until", "export")


@pytest.fixture(scope="module")
def finished(one_device) -> Path:
    """The one-device run: copied whole (copy_run, a rerun redoes what its overrides feed) or
    as it stood at S_0 (copy_through_s0)."""
    return one_device[0]


def _plan(*overrides: str) -> list[str]:
    from scoder_jax.runconfig import load_run_config
    from scoder_jax.stage_plan import build_stages

    return [s.name for s in build_stages(load_run_config("smoke", list(overrides))[0])]


def test_smoke_preset_ends_with_a_dataset_on_one_device(one_device):
    """It used to end with an empty final set on one device (S_1 garbled the format of two
    different memorised replies); the preset's seed samples now share one reply."""
    run, r = one_device
    assert "Metadata file does not exist" not in r.stderr  # orbax's step-metadata warning is silenced
    assert "mesh {'data': 1, 'fsdp': 1, 'tensor': 1}" in r.stderr
    m = _manifest(run)
    rows = (run / "final/dataset/dataset.jsonl").read_text().splitlines()
    assert rows and m["stages"]["export"]["counts"]["rows"] == len(rows)
    assert m["stages"]["final_sample"]["counts"]["rejects"] == 0, m["stages"]["final_sample"]


def test_killed_at_five_moments_resumes_to_the_same_dataset(finished, tmp_path):
    """A run that got as far as S_0 (the trainer's own SIGKILL test covers a kill inside a
    fine-tune) is killed at five moments across the later stages, rerun each time, and ends
    with the uninterrupted run's dataset, byte for byte."""
    run = copy_through_s0(finished, tmp_path / "run")
    for stage in ["sample_01", "score_01", "influence_01", "sft_01", "final_sample"]:
        proc = subprocess.Popen([sys.executable, "-m", "scoder_jax.cli", "iterate", "--config", "smoke", "--run-dir",
                                 str(run), "--no-progress"], cwd=REPO, env=_env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        wait_until_running(run, stage, [proc], after_s=0.5)
        assert proc.poll() is None, f"the run ended before stage {stage} was killed"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    _iterate(run, "--until", "export")
    a = (finished / "final/dataset/dataset.jsonl").read_bytes()
    b = (run / "final/dataset/dataset.jsonl").read_bytes()
    ids = [json.loads(line)["id"] for line in b.decode().splitlines()]
    assert ids and len(ids) == len(set(ids))
    assert a == b


def test_previous_init_and_accumulated_selections(finished, tmp_path):
    """synth.init: previous starts S_t from S_{t-1}'s last checkpoint (its first loss is S_{t-1}'s
    last, not a random model's); select.accumulate: true makes D_2 = D_p + both selections.
    S_0 and the first iteration's sampling, scoring and influence are the copied run's."""
    run = copy_run(finished, tmp_path / "run")
    before = _manifest(run)["stages"]
    _iterate(run, "iterations=2", "synth.init=previous", "select.accumulate=true", "--until", "select_02")
    m = _manifest(run)
    kept = {n for n in before if m["stages"][n]["finished"] == before[n]["finished"]}
    assert {"sft_00", "sample_01", "score_01", "influence_01"} <= kept and "sft_01" not in kept, kept
    first = _rows(run / "iter_01/selected/synthesized.jsonl")
    second = _rows(run / "iter_02/selected/synthesized.jsonl")
    train2 = _rows(run / "iter_02/selected/train.jsonl")
    seed = _rows(run / "seed/seed.jsonl")
    ids = [r["id"] for r in train2]
    assert ids[:len(seed)] == [r["id"] for r in seed]
    assert set(ids[len(seed):]) == {r["id"] for r in first} | {r["id"] for r in second}
    assert m["stages"]["select_02"]["counts"]["accumulated"] == len(ids) - len(seed)

    def losses(stage):
        return [r["loss"] for r in map(json.loads, (run / m["stages"][stage]["out"] / "metrics.jsonl").read_text()
                .splitlines()) if "loss" in r]
    assert losses("sft_00")[0] > 5.0  # a random tiny model on a 49k vocabulary
    assert losses("sft_01")[0] < 1.0  # continued from S_0, which memorised the seed reply


def test_synthesizers_judged_by_their_students(finished, tmp_path):
    """eval.per_iteration: student: S_0 by a student trained on what S_0 synthesized (kept by
    score_01), S_1 on the final set's; each on the same fixed number of rows (or all there are).
    Only the eval stages read eval.*: what the synthesizers made is the copied run's."""
    run = copy_run(finished, tmp_path / "run")
    before = _manifest(run)["stages"]
    overrides = ("eval.per_iteration=student", "eval.student_samples=1")
    _iterate(run, *overrides, "--until", "eval_01")
    m = _manifest(run)
    assert all(m["stages"][n]["finished"] == before[n]["finished"] for n in before), m["stages"]
    names = _plan(*overrides)
    assert names.index("eval_00") == names.index("score_01") + 1 and names.index("eval_01") > names.index("final_score")
    for t in (0, 1):
        c = m["stages"][f"eval_{t:02d}"]["counts"]
        assert c["trained_on"] == 1 and c["fixed_size"] == 1 and c["pass@1"] is not None, c
        assert (run / f"iter_{t:02d}/student_eval/eval/results.json").exists()
    assert "eval_02" not in names and not (run / "iter_01/eval").exists()  # S_t itself is not evaluated


def test_ablation_without_scoring_keeps_every_parsed_candidate(finished, tmp_path):
    """No judge is loaded, nothing is executed: every parsed candidate (all of a snippet's, not
    its best) goes on to influence."""
    run = copy_run(finished, tmp_path / "run")
    r = _iterate(run, "--ablation", "no-scoring", "--until", "influence_01")
    cands = _rows(run / "iter_01/samples/candidates.jsonl")
    kept = _rows(run / "iter_01/scores/selected.jsonl")
    assert len(cands) == 8 and {c["id"] for c in kept} == {c["id"] for c in cands}
    scored = _rows(run / "iter_01/scores/scores.jsonl")
    assert all(not row.get("scores") and row.get("signals") is None for row in scored)
    assert "judge" not in r.stderr.lower() or "loading judge" not in r.stderr.lower()
    assert _manifest(run)["stages"]["influence_01"]["counts"]["candidates"] == 8


def test_smoke_with_fitted_weights(finished, tmp_path):
    """`scoder iterate --config smoke score.weights=fit`: the score stage fits w on the seed set
    against its corruptions and the failed candidates, writes them with the fit report, and
    totals and selects with them."""
    import numpy as np

    from scoder_jax.score.judge import DEFAULT_ASPECTS
    from scoder_jax.score.weights import Weights

    run = copy_run(finished, tmp_path / "run")
    _iterate(run, "score.weights=fit", "score.fit=logistic", "score.rating=integer", "--until", "select_01")
    scores = run / "iter_01" / "scores"

    w = Weights.load(scores / "weights.json")
    report = json.loads((scores / "fit_report.json").read_text())
    assert w.method == "logistic" and sorted(w.aspects) == sorted(a.name for a in DEFAULT_ASPECTS)
    assert report["positives"] == 2 and report["corrupted"] == 2 and report["rating"] == "integer"
    assert report["n_pos"] == 2 and report["n_neg"] == 2 + report["failed_execution"]
    rows = [json.loads(x) for x in (scores / "scores.jsonl").read_text().splitlines()]
    judged = [x for x in rows if x["scores"]]
    assert judged and all(float(v).is_integer() for x in judged for v in x["scores"].values())  # integer ratings
    # the totals are the fitted weights' and the threshold theirs
    A = np.array([[x["scores"][a] for a in w.aspects] for x in judged])
    np.testing.assert_allclose([x["total"] for x in judged], w.total(A, [x["signals"] for x in judged]), rtol=1e-9)
    summary = json.loads((scores / "summary.json").read_text())
    assert summary["threshold"] == pytest.approx(w.threshold) and summary["weights"]["method"] == "logistic"
    assert "judge" in summary and summary["fit_cv_auc"] == report["cv_auc"]
    kept = {x["id"] for x in rows if x["reason"] == "selected"}
    assert all(x["total"] >= w.threshold for x in rows if x["id"] in kept)
    m = json.loads((run / "manifest.json").read_text())
    assert m["stages"]["select_01"]["status"] == "done"


def test_final_set_reaches_its_size_in_rounds(finished, tmp_path):
    """final.size: rounds of final.snippets until K are kept (the smoke pool of 3 snippets wraps
    around); a K out of reach stops at final.max_rounds, reported, not an error. Fitted weights
    are fitted on the first round and total every round (the K are ranked on one scale)."""
    run = copy_through_s0(finished, tmp_path / "run")
    _iterate(run, "iterations=0", "final.size=3", "--until", "export")
    m = _manifest(run)
    counts = m["stages"]["final_score"]["counts"]
    assert counts["reached"] is True and counts["rounds"] == 2 and counts["selected"] == 3
    assert len(_rows(run / "final/dataset/dataset.jsonl")) == 3
    assert (run / "final/scores/round_02/samples/candidates.jsonl").exists()

    # with weights fitted at the score stage: fitted once, on round 1, and every round totalled with them
    r = _iterate(run, "iterations=0", "final.size=50", "final.max_rounds=3", "score.weights=fit",
                 "score.fit=logistic", "score.rating=integer", "--until", "export")
    counts = _manifest(run)["stages"]["final_score"]["counts"]
    assert counts["reached"] is False and counts["rounds"] == 3 and counts["selected"] == counts["kept_all_rounds"]
    assert "final.size 50 not reached" in r.stderr and "final.max_rounds" in r.stderr
    from scoder_jax.score.weights import Weights

    scores = run / "final/scores"
    fitted = Weights.load(scores / "weights.json")
    assert fitted.method == "logistic" and (scores / "fit_report.json").exists()
    assert (scores / "round_01/scores/fit_report.json").exists()
    for rnd in ("round_02", "round_03"):
        assert not (scores / rnd / "scores/fit_report.json").exists(), rnd  # not refitted
        assert Weights.load(scores / rnd / "scores/weights.json") == fitted, rnd


def test_ablations_single_checkpoint_and_without_influence(finished, tmp_path):
    """Two ablations in one run (their overrides touch different stages): M = 1 (S_0's last
    checkpoint only), and a random selection of the same size instead of influence."""
    run = copy_through_s0(finished, tmp_path / "run")
    _iterate(run, "--ablation", "single-checkpoint", "--ablation", "no-influence", "--until", "select_01")
    cands = _rows(run / "iter_01/samples/candidates.jsonl")
    assert cands and {c["meta"]["checkpoint_index"] for c in cands} == {0}
    assert {Path(c["meta"]["checkpoint"]).name for c in cands} == {"100"}  # S_0's last checkpoint
    m = _manifest(run)
    kept = _rows(run / "iter_01/scores/selected.jsonl")
    chosen = _rows(run / "iter_01/selected/synthesized.jsonl")
    assert m["stages"]["select_01"]["counts"]["by"] == "random"
    assert len(chosen) == -(-len(kept) // 2)  # influence.keep 0.5, rounded up, as with influence
    assert {r["id"] for r in chosen} <= {r["id"] for r in kept}
    assert m["stages"]["influence_01"]["counts"].get("skipped") is True
