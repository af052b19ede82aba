"""CLI command of the sampling stage: `scoder sample` (multi-checkpoint sampling)."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("sample")
@click.option("--snippets", "snippets_path", type=click.Path(path_type=Path),
              help="Snippet pool: a JSONL file or a directory of them (fields id, lang, content).")
@click.option("--checkpoints", "checkpoints", multiple=True, type=click.Path(path_type=Path),
              help="A checkpoint (GGUF, HF dir, scoder-jax checkpoint) or a training run's output directory "
                   "(all its kept checkpoints). Repeat the option for several.")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Output directory: candidates.jsonl, rejects.jsonl, summary.json and per-host shards.")
@click.option("--n", "n", type=click.IntRange(min=1), default=4, show_default=True,
              help="Samples per snippet from each checkpoint.")
@click.option("--temperature", type=click.FloatRange(min=0), default=0.8, show_default=True)
@click.option("--top-p", type=click.FloatRange(min=0, min_open=True, max=1), default=0.95, show_default=True)
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=1024, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["problem_solution", "problem_solution_tests"]),
              default="problem_solution_tests", show_default=True,
              help="Sample format asked for and parsed: [Problem] + [Solution], or also [Tests] with asserts.")
@click.option("--limit", type=click.IntRange(min=1), help="Use only the first N snippets of the pool.")
@click.option("--max-batch", type=click.IntRange(min=1), default=64, show_default=True,
              help="Decode slots of the sampling engine.")
@click.option("--tokenizer", "tokenizer", type=click.Path(path_type=Path),
              help="Tokenizer (default: the first checkpoint's own).")
@click.option("--skip-missing", is_flag=True, help="Sample from the checkpoints that exist; count the missing ones.")
@click.option("--process-index", type=click.IntRange(min=0),
              help="This host's shard (default: jax.process_index(); set both for independent jobs).")
@click.option("--process-count", type=click.IntRange(min=1), help="Number of shards (default: jax.process_count()).")
@click.option("--merge", "merge_only", is_flag=True,
              help="Only merge the shards in --out (after independent jobs finished) and print the summary.")
@click.option("--progress/--no-progress", default=True, show_default=True)
def sample(snippets_path, checkpoints, out_dir, n, temperature, top_p, max_new_tokens, seed, fmt, limit, max_batch,
           tokenizer, skip_missing, process_index, process_count, merge_only, progress):
    """Sample candidates from each synthesizer checkpoint, N per snippet.

    \b
    scoder sample --snippets runs/x/pool --checkpoints runs/x/iter_01/ckpt --out runs/x/iter_02/samples \\
                  --n 4 --temperature 0.8 --max-new-tokens 1024

    Reruns resume: finished (snippet, checkpoint) units are kept, unfinished ones are redone.
    On several hosts (jax.distributed, SCODER_COORDINATOR...) each samples its share (by
    process index) into its own shard files and process 0 merges them once all are done.
    Independent jobs give --process-index/--process-count, then one `--merge` joins the shards.
    """
    from scoder_jax.errors import ScoderError
    from scoder_jax.synth.sampler import SampleConfig, merge_shards, read_snippets, sample_candidates

    if merge_only:
        merged = merge_shards(out_dir)
        click.echo(json.dumps(merged))
        if not merged["complete"]:
            click.echo(f"merge: {merged['units_done']} of {merged['units_expected']} units done in {merged['shards']} "
                       f"of {merged['process_count']} shards; rerun the unfinished shards, then --merge again",
                       err=True)
        return
    if snippets_path is None or not checkpoints:
        raise ScoderError("scoder sample: --snippets and --checkpoints are required (or --merge alone)")
    from scoder_jax import parallel

    parallel.maybe_initialize_distributed()
    cfg = SampleConfig(n=n, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed,
                       format=fmt, max_batch=max_batch, skip_missing=skip_missing, process_index=process_index,
                       process_count=process_count, tokenizer=str(tokenizer) if tokenizer else None)
    snippets = read_snippets(snippets_path, limit)
    summary = sample_candidates(snippets, [str(c) for c in checkpoints], out_dir, cfg, progress=progress)
    if summary["process_count"] > 1:
        import jax

        if jax.process_count() == summary["process_count"]:
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices("scoder-sample-done")
            if summary["process_index"] == 0:
                summary["merged"] = merge_shards(out_dir)
        else:
            click.echo(f"shard {summary['process_index']} of {summary['process_count']} done; once every shard is, "
                       f"run `scoder sample --merge --out {out_dir}`", err=True)
    click.echo(json.dumps(summary))
    merged = summary.get("merged")
    reasons = ", ".join(f"{k} {v}" for k, v in summary["reasons"].items())
    parts = [f"sample: {summary['units_done']} units sampled now ({summary['units_already_done']} done before)",
             f"{summary['candidates']} candidates",
             f"{summary['rejects']} rejected" + (f" ({reasons})" if reasons else "")]
    if summary["prompt_too_long"]:
        parts.append(f"{summary['prompt_too_long']} prompts too long for the context")
    if merged:
        parts.append(f"in all {merged['candidates']} candidates in {out_dir / 'candidates.jsonl'}")
    click.echo(", ".join(parts), err=True)
    if summary["missing_checkpoints"]:
        click.echo(f"skipped {len(summary['missing_checkpoints'])} missing checkpoints: "
                   f"{', '.join(summary['missing_checkpoints'])}", err=True)
    if summary["bad_snippets"]:
        click.echo(f"skipped {summary['bad_snippets']} unusable snippets; first: {summary['first_bad_snippets'][0]}",
                   err=True)
