"""`scoder iterate` (the whole SCoder loop) and `scoder export` (the final dataset)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from scoder_jax.errors import ScoderError


@click.command()
@click.option("--config", "config_spec", required=True, help="A YAML file or a preset in configs/ (smoke, demo, ...).")
@click.option("--run-dir", required=True, type=click.Path(file_okay=False), help="Run directory (resumable).")
@click.option("--from", "from_stage", default=None, help="Rerun from this stage on (e.g. score_01).")
@click.option("--until", default=None, help="Stop after this stage.")
@click.option("--force", is_flag=True, help="Reuse a run directory made by another config.")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
@click.option("--ablation", "ablations", multiple=True,
              help="An ablation of the method (single-checkpoint, no-scoring, no-influence): its overrides "
                   "come first, so KEY=VALUE pairs still win.")
@click.argument("overrides", nargs=-1)
def iterate(config_spec, run_dir, from_stage, until, force, no_progress, ablations, overrides):
    """Run (or resume) the SCoder loop: pool, seed, S_0, iterations, final set, student, eval.

    OVERRIDES are dotted KEY=VALUE pairs (score.threshold=5, sample.n=2, synth.optim.lr=1e-4).
    """
    from scoder_jax.pipeline import iterate as run
    from scoder_jax.runconfig import load_run_config

    cfg, path = load_run_config(config_spec, [*(f"ablation={a}" for a in ablations), *overrides])
    manifest = run(cfg, run_dir, from_stage=from_stage, until=until, force=force, progress=not no_progress)
    stages = manifest["stages"]
    done = sum(1 for e in stages.values() if e.get("status") == "done")
    click.echo(f"{done}/{len(stages)} stages done in {run_dir}")
    if "eval" in stages and stages["eval"].get("counts"):
        click.echo(f"student pass@1: {stages['eval']['counts'].get('pass@1')}")
    report = Path(run_dir) / "report.html"
    if report.exists():
        click.echo(f"report: {report}")


@click.command()
@click.option("--run-dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
def export(run_dir, out_dir):
    """Write a run's final dataset as JSONL and Parquet (OSS-Instruct fields, scores, provenance)."""
    from scoder_jax.export import export_run, stale_stage
    from scoder_jax.runconfig import load_run_config

    run = Path(run_dir)
    src = run / "final" / "scores" / "selected.jsonl"
    config, manifest = run / "config.yaml", run / "manifest.json"
    for path in (config, manifest):
        if not path.exists():
            raise ScoderError(f"{path}: no such file; --run-dir must be a run directory made by `scoder iterate`")
    cfg, _ = load_run_config(config)
    try:
        stages = json.loads(manifest.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ScoderError(f"{manifest}: corrupt manifest ({e.msg} at line {e.lineno})") from None
    stale = stale_stage(cfg, stages)
    if stale is not None or not src.exists():
        raise ScoderError(f"{src}: the final selection is not up to date with {config} (stage {stale or 'final_score'} "
                          "is not done under it); run `scoder iterate` up to final_score first")
    counts = export_run(run, cfg, out_dir)
    click.echo(json.dumps(counts))
