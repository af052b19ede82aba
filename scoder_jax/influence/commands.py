"""`scoder influence --candidates FILE --targets FILE --checkpoints DIR... --keep FRACTION --out DIR`."""

from __future__ import annotations

import json
import logging

import click


@click.command()
@click.option("--candidates", type=click.Path(dir_okay=False), required=True,
              help="JSONL samples to score (problem/solution, chats or pre-tokenized, as the trainer reads them).")
@click.option("--targets", type=click.Path(dir_okay=False), required=True,
              help="JSONL target samples (the seed set D_p): plain gradients, the mean cosine to them is the score.")
@click.option("--checkpoints", "checkpoints", multiple=True, required=True,
              help="Checkpoint step directories, or a training run (all its checkpoints); several may follow.")
@click.argument("more_checkpoints", nargs=-1, type=click.Path(exists=True))
@click.option("--keep", type=float, default=None, help="Fraction of candidates kept (default 0.05).")
@click.option("--top-k", type=int, default=None, help="Keep this many instead of a fraction.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Directory for scores.jsonl, selected.jsonl, features/, summary.json.")
@click.option("--dim", "d", type=int, default=8192, show_default=True, help="Projection dimensions.")
@click.option("--seed", type=int, default=0, show_default=True, help="Projection seed.")
@click.option("--projection", type=click.Choice(["rademacher", "gaussian"]), default="rademacher", show_default=True)
@click.option("--two-stage", is_flag=True, help="Per-block Kronecker projection before the dense one.")
@click.option("--mode", type=click.Choice(["lora", "full"]), default="lora", show_default=True,
              help="LoRA factors (LESS), or every linear layer by Kronecker factors (needs --sgd).")
@click.option("--sgd", is_flag=True, help="Plain gradients for candidates (no Adam moments needed).")
@click.option("--group-field", default=None,
              help="Targets' field naming their group: the score is the max over groups.")
@click.option("--micro-batch", type=int, default=8, show_default=True, help="Examples per vmapped gradient.")
@click.option("--seq-len", type=int, default=2048, show_default=True, help="Longer examples are truncated.")
@click.option("--tokenizer", default=None, help="Tokenizer (default: the checkpoints'); must match theirs.")
@click.option("--fsdp", type=int, default=1, show_default=True, help="Shard the model over this many devices.")
@click.option("--no-progress", is_flag=True)
def influence(candidates, targets, checkpoints, more_checkpoints, keep, top_k, out_dir, d, seed, projection,
              two_stage, mode, sgd, group_field, micro_batch, seq_len, tokenizer, fsdp, no_progress):
    """LESS-style influence of candidates on targets over the checkpoints; keeps the top fraction.

    Every candidate's score lands in OUT/scores.jsonl, the kept ones in OUT/selected.jsonl.
    """
    import jax

    from scoder_jax.influence.select import InfluenceConfig, run_influence

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    cfg = InfluenceConfig(keep=keep if keep is not None else (None if top_k else 0.05), top_k=top_k, dim=d, seed=seed,
                          projection=projection, two_stage=two_stage, mode=mode, sgd=sgd, group_field=group_field,
                          microbatch=micro_batch, seq_len=seq_len, tokenizer=tokenizer, mesh_fsdp=fsdp,
                          progress=not no_progress)
    summary = run_influence(candidates, targets, [*checkpoints, *more_checkpoints], out_dir, cfg)
    if jax.process_index() == 0:
        click.echo(json.dumps({k: summary[k] for k in ("candidates", "targets", "kept", "scores", "selected",
                                                          "examples_per_s")}))
