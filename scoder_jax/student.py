"""`scoder student --data FILE --config CONFIG --out DIR`: fine-tune and evaluate the student on
any instruction set, with a run config's `student` and `eval` sections.

This is the paper's baseline: the same student, trained the same way, on another data set
(OSS-Instruct-75K, distilled from proprietary LLMs) instead of SCoder's final set, so that
`scoder compare runs/scoder runs/baseline` sets the two side by side.

`--data` takes Magicoder's OSS-Instruct JSONL (problem, solution as markdown: its code is
kept, asserts embedded at its end are split off), this project's Sample JSONL, or a run's
final `dataset.jsonl`, all through `synth.seed_import` (duplicates dropped by content). A
line that is not a sample (bad JSON, not an object, no problem or solution) is an error naming
file:line, before anything is written; a sample whose solution holds no usable code (a
distilled set has a few) is skipped, counted in summary.json and listed in DIR/skipped.jsonl.

DIR after a run:

    summary.json          data (path, sha256, rows read/used/duplicates/skipped), config (path,
                          hashes of the student and eval sections), training and eval results
    student.train.jsonl   the (problem -> solution) chat records the student was trained on
    student/              the fine-tune (checkpoints, metrics), as `scoder train` writes it
    eval/                 results.json (one benchmark) or eval/<benchmark>/results.json

A DIR that is not empty must be an earlier `scoder student` run of the same data and student
settings: it is resumed (training from its latest checkpoint, evaluation from its verdicts);
a changed `eval` section re-evaluates the trained student; anything else is refused.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from scoder_jax.errors import DataError, ScoderError

SUMMARY = "summary.json"
COMMAND = "scoder student"  # summary.json's "command": marks a folder as this command's output
# The one import failure that is the data's content rather than its format: skipped, counted.
UNUSABLE_CODE = "field 'solution' has no usable"


def section_hash(section: Any) -> str:
    """A config section's hash (16 hex digits of the sha256 of its values as sorted JSON)."""
    from scoder_jax.config import to_dict

    return hashlib.sha256(json.dumps(to_dict(section), sort_keys=True, default=str).encode()).hexdigest()[:16]


def load_samples(path: Path) -> tuple[list[dict], dict, list[dict]]:
    """Reads an instruction set (Magicoder OSS-Instruct, scoder Sample or dataset JSONL) into
    Sample records. Returns (samples, counts, skipped rows). A line that is not a sample raises
    DataError naming file:line; rows whose solution holds no usable code are skipped."""
    from scoder_jax.synth.seed_import import import_seed

    with tempfile.TemporaryDirectory(prefix="scoder-student-") as tmp:
        try:
            counts = import_seed(path, Path(tmp), strict=False)
        except DataError as e:  # no usable line at all: it says which was the first, and why
            raise DataError(str(e).replace("--import expects", "--data expects")) from None
        errors_file = Path(tmp) / "import_errors.jsonl"
        skipped = [json.loads(x) for x in errors_file.read_text(encoding="utf-8").splitlines()] \
            if errors_file.exists() else []
        bad = next((e for e in skipped if not e["reason"].startswith(UNUSABLE_CODE)), None)
        if bad is not None:
            raise DataError(f"{bad['file']}:{bad['line']}: {bad['reason']}; --data expects Magicoder OSS-Instruct "
                            "JSONL (problem, solution), scoder Sample JSONL or a run's dataset.jsonl; nothing written")
        samples = [json.loads(x) for x in (Path(tmp) / "seed.jsonl").read_text(encoding="utf-8").splitlines()]
    return samples, {k: counts[k] for k in ("read", "imported", "duplicates", "skipped", "formats")}, skipped


def previous_run(out: Path) -> dict | None:
    """The summary of an earlier `scoder student` run in `out`; None when `out` is missing or
    empty; ScoderError when it holds anything else."""
    from scoder_jax.output_dir import check_output_dir

    check_output_dir(out, overwrite=True)  # a file, a broken link: refused
    if not out.exists() or not any(out.iterdir()):
        return None
    try:
        summary = json.loads((out / SUMMARY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        summary = None
    if not isinstance(summary, dict) or summary.get("command") != COMMAND:
        raise ScoderError(f"{out}: the output folder is not empty and is not a `{COMMAND}` run; choose another "
                          "--out (a `scoder student` folder of the same data and config is resumed)")
    return summary


def check_same_run(out: Path, old: dict, data_sha: str, student_hash: str) -> None:
    """An earlier run in `out` is resumed only with the same data file and student settings."""
    if old.get("data", {}).get("sha256") != data_sha:
        raise ScoderError(f"{out}: holds a `{COMMAND}` run of other data ({old.get('data', {}).get('path')}); "
                          "choose another --out to train on this file")
    if old.get("config", {}).get("student_hash") != student_hash:
        raise ScoderError(f"{out}: holds a `{COMMAND}` run with other student settings (config "
                          f"{old.get('config', {}).get('path')}); choose another --out, or use the same config")


def run_student(data: Path, cfg, config_path: Path, out: Path, *, say=print) -> dict:
    """Fine-tunes `cfg.student` on the samples of `data` into out/student, evaluates the result
    with `cfg.eval` into out/eval, writes out/summary.json and returns it."""
    from scoder_jax import parallel
    from scoder_jax.eval.results import file_digest
    from scoder_jax.io import write_json_atomic, write_jsonl_atomic
    from scoder_jax.stages import student_training_records, train_stage

    if not data.is_file():
        raise DataError(f"{data}: no such file (--data expects a JSONL file)")
    data_sha = file_digest(data)
    student_hash, eval_hash = section_hash(cfg.student), section_hash(cfg.eval)
    old = previous_run(out)
    if old is not None:
        check_same_run(out, old, data_sha, student_hash)
    samples, counts, skipped = load_samples(data)  # every line checked before anything is written
    state = {**(old or {}), "command": COMMAND, "status": "training",
             "data": {"path": str(data.resolve()), "sha256": data_sha, "rows": len(samples), **counts},
             "config": {"path": str(config_path.resolve()), "name": cfg.name, "student_hash": student_hash,
                        "eval_hash": eval_hash}}
    state.setdefault("started", time.time())
    primary = parallel.is_primary()

    def save() -> None:
        if primary:
            write_json_atomic(out / SUMMARY, state)

    if primary:
        out.mkdir(parents=True, exist_ok=True)
    save()  # first: a folder with anything in it is marked as this command's
    if primary and skipped:
        write_jsonl_atomic(out / "skipped.jsonl", skipped)
    if old is not None:
        say(f"resuming {out} (it was {old.get('status')})")
    if skipped:
        say(f"{len(skipped)} row(s) without usable code skipped (first: {skipped[0]['file']}:{skipped[0]['line']}: "
            f"{skipped[0]['reason']}); see {out / 'skipped.jsonl'}")
    say(f"training the student on {len(samples)} samples of {data}")
    state["train"] = train_stage(cfg.student, student_training_records(samples), out / "student")
    state["status"] = "trained"
    save()
    evaluated = (old is not None and old.get("status") == "done" and old.get("evaluated_with") == eval_hash
                 and (out / "eval").is_dir())
    if cfg.eval.enabled and primary and not evaluated:
        ev = out / "eval"
        if ev.exists() and state.get("evaluated_with") != eval_hash:
            shutil.rmtree(ev)  # results of other eval settings: not this run's
        state.pop("eval", None)
        state["evaluated_with"] = eval_hash  # what eval/ holds (resumable: run_suite keeps its verdicts)
        save()
        state["eval"] = run_suite_on(out / "student", cfg.eval, ev, say)
    parallel.barrier("student/eval")
    state.update(status="done", finished=time.time())
    save()
    return state


def run_suite_on(train_dir: Path, eval_cfg, out: Path, say) -> dict:
    """The eval section's benchmarks on the latest checkpoint in `train_dir`, into `out`."""
    from scoder_jax.eval.suite import run_suite
    from scoder_jax.train.checkpoints import latest_checkpoint

    ckpt = latest_checkpoint(train_dir)
    if ckpt is None:
        raise ScoderError(f"{train_dir}: no checkpoint after training (check the student.checkpoint settings)")
    say(f"evaluating {ckpt.path}")
    return run_suite(str(ckpt.path), eval_cfg, out)


@click.command("student")
@click.option("--data", "data", required=True, type=click.Path(dir_okay=False),
              help="The instruction set: Magicoder OSS-Instruct JSONL, scoder Sample JSONL or a run's dataset.jsonl.")
@click.option("--config", "config_spec", required=True,
              help="A run config (YAML or preset: baseline_oss_instruct, demo, smoke); its student and eval sections.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Output folder (an earlier `scoder student` run of the same data and config is resumed).")
@click.argument("overrides", nargs=-1)
def student(data, config_spec, out_dir, overrides):
    """Fine-tune the student on an instruction set and evaluate it: the baseline SCoder is compared with.

    OVERRIDES are dotted KEY=VALUE pairs of the run config (student.epochs=3, eval.limit=20).
    Then `scoder compare RUN_DIR OUT` prints the two side by side.
    """
    from scoder_jax.runconfig import RunConfig, check_input_files, load_run_config

    cfg, path = load_run_config(config_spec, overrides, check_inputs=False)
    # only the files the student and its evaluation read (not the loop's pool or seed set)
    check_input_files(RunConfig(name=cfg.name, student=cfg.student, eval=cfg.eval), path)
    from scoder_jax import parallel

    parallel.maybe_initialize_distributed()  # from SCODER_COORDINATOR etc., before JAX starts
    summary = run_student(Path(data), cfg, path, Path(out_dir), say=lambda m: print(f"[scoder] {m}", file=sys.stderr,
                                                                                      flush=True))
    ev = summary.get("eval") or {}
    if "pass@1" in ev:
        click.echo(f"student pass@1 ({ev.get('benchmark')}, {ev.get('n_problems')} problems): {ev['pass@1']}")
    click.echo(f"summary: {Path(out_dir) / SUMMARY}")
