"""The SCoder loop as resumable stages over a run directory.

    pool, seed, sft_00, [sample_t, score_t, influence_t, select_t, sft_t, eval_t] for t = 1..T,
    final_sample, final_score, export, student, eval, report

Each stage reads earlier stages' outputs and writes its own folder. `manifest.json` records for
every stage its status, its key (a hash of the config sections it reads and of its inputs'
fingerprints), its fingerprint (key + a digest of what it wrote), timings and counts. A rerun
skips stages whose key is unchanged, resumes the stage that was in flight (training resumes
from its checkpoints, sampling from its stream), and reruns exactly the stages downstream of a
changed config value. Stages that are not resumable write to a temporary folder and rename it.
"""

from __future__ import annotations

import errno
import json
import logging
import shutil
import sys
import time
from pathlib import Path

from scoder_jax import parallel
from scoder_jax.config import dump_yaml
from scoder_jax.errors import ConfigError, ScoderError
from scoder_jax.io import write_json_atomic, write_text_atomic
from scoder_jax.runconfig import RunConfig
# the plan (stage_plan) and the bodies (stages), re-exported: callers and tests use them from here
from scoder_jax.stage_plan import Stage, config_value, short_hash, build_stages, output_digest, stage_key  # noqa: F401
from scoder_jax.stages import (ALL_PROCESSES, BUNDLED_SEED, RESUMABLE, RUNNERS, Context, checkpoint_set,  # noqa: F401
                               sample_into, score_into, snippets_for, student_training_records,
                               synth_training_records, train_stage, why_empty)

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"


class Manifest:
    def __init__(self, run_dir: Path):
        self.path = run_dir / MANIFEST
        self.data: dict = {"version": 1, "stages": {}}
        if self.path.exists():
            try:
                self.data = json.loads(self.path.read_text())
            except json.JSONDecodeError as e:
                raise ScoderError(f"{self.path}: corrupt manifest ({e.msg} at line {e.lineno}); "
                                  "delete it to rerun every stage") from None

    @property
    def stages(self) -> dict[str, dict]:
        return self.data.setdefault("stages", {})

    def save(self) -> None:
        write_json_atomic(self.path, self.data)


# ----------------------------------------------------------------------------- the loop


def check_run_dir(run_dir: Path, cfg: RunConfig, force: bool) -> None:
    stored = run_dir / "config.yaml"
    if stored.exists() and not force:
        import yaml

        try:
            old = yaml.safe_load(stored.read_text()) or {}
        except yaml.YAMLError:
            old = {}
        if old.get("name") != cfg.name:
            raise ConfigError(f"{run_dir}: this run directory belongs to config {old.get('name')!r}, not "
                              f"{cfg.name!r}; use another --run-dir, or --force to reuse it")


def iterate(cfg: RunConfig, run_dir: str | Path, *, from_stage: str | None = None, until: str | None = None,
            force: bool = False, progress: bool = True) -> dict:
    """Runs (or resumes) the whole loop; returns the manifest."""
    if "://" in str(run_dir):
        raise ConfigError(f"--run-dir {run_dir}: the run directory must be a filesystem path; for a bucket, mount it "
                          "(gcsfuse BUCKET DIR, as launch/tpu_pod.sh does on every worker) and pass the mounted path")
    parallel.maybe_initialize_distributed()  # from SCODER_COORDINATOR etc., before JAX starts
    import jax

    run_dir = Path(run_dir).absolute()
    run_dir.mkdir(parents=True, exist_ok=True)
    check_run_dir(run_dir, cfg, force)
    stages = build_stages(cfg)
    names = [s.name for s in stages]
    for opt, val in (("--from", from_stage), ("--until", until)):
        if val is not None and val not in names:
            raise ConfigError(f"{opt} {val!r}: no such stage (stages: {', '.join(names)})")
    primary = parallel.is_primary()
    if primary:
        write_text_atomic(run_dir / "config.yaml", dump_yaml(cfg))
    parallel.barrier("start")
    manifest = Manifest(run_dir)
    manifest.data["name"] = cfg.name
    ctx = Context(cfg, run_dir, manifest, {s.name: s for s in stages}, progress)
    fingerprints = {n: e.get("fingerprint") for n, e in manifest.stages.items() if e.get("status") == "done"}
    forced = False
    for stage in stages:
        forced = forced or stage.name == from_stage
        key = stage_key(cfg, stage, fingerprints)
        entry = manifest.stages.get(stage.name, {})
        if entry.get("status") == "done" and entry.get("key") == key and not forced:
            fingerprints[stage.name] = entry["fingerprint"]
            log.info("stage %s: up to date", stage.name)
        else:
            out = run_dir / stage.out
            resuming = (entry.get("status") in ("running", "failed") and entry.get("key") == key
                        and stage.kind in RESUMABLE)
            manifest.stages[stage.name] = {"status": "running", "key": key, "started": time.time(),
                                           "kind": stage.kind, "iteration": stage.iteration, "out": stage.out}
            if primary:
                if out.exists() and not resuming:
                    shutil.rmtree(out)
                out.mkdir(parents=True, exist_ok=True)
                manifest.save()
                _say(f"stage {stage.name}: {'resuming' if resuming else 'running'}")
            parallel.barrier(f"{stage.name}/start")
            t0 = time.time()
            try:
                try:
                    counts = RUNNERS[stage.kind](ctx, stage, out) if primary or stage.kind in ALL_PROCESSES else {}
                    parallel.barrier(f"{stage.name}/done")
                except ScoderError:
                    raise
                except OSError as e:
                    if e.errno == errno.ENOSPC:
                        last = [n for n in names if manifest.stages.get(n, {}).get("status") == "done"]
                        raise ScoderError(f"{out}: disk full while running stage {stage.name}; the stages before it "
                                          f"({last[-1] if last else 'none'} and earlier) are intact; free space and "
                                          "rerun") from None
                    raise
                except Exception as e:  # noqa: BLE001
                    if parallel.lost_peer(e):
                        raise ScoderError(f"stage {stage.name}: a collective failed on process {jax.process_index()} "
                                          f"({parallel.first_line(e)}); another process most likely died: rerun every "
                                          "process with the same command to resume") from None
                    raise
            except BaseException as e:  # the manifest says which stage failed and why, then the error goes on
                manifest.stages[stage.name].update(status="failed", finished=time.time(),
                                                   seconds=round(time.time() - t0, 2),
                                                   error=parallel.first_line(e, limit=1000))
                if primary:
                    try:
                        manifest.save()
                    except OSError:
                        pass  # a full disk: the error that brought us here says so
                raise
            fp = short_hash({"key": key, "out": output_digest(out)})
            manifest.stages[stage.name].update(status="done", fingerprint=fp, finished=time.time(),
                                               seconds=round(time.time() - t0, 2), counts=counts)
            fingerprints[stage.name] = fp
            if primary:
                manifest.save()
        if stage.name == until:
            break
    return manifest.data


def _say(msg: str) -> None:
    print(f"[scoder] {msg}", file=sys.stderr, flush=True)
