"""`scoder train --config FILE --data FILE --out DIR [key=value ...]`."""

from __future__ import annotations

import json
import logging

import click


@click.command(context_settings={"ignore_unknown_options": False})
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="YAML file: the train section, or a project config with a `train:` key.")
@click.option("--data", "data_path", type=click.Path(dir_okay=False), required=True,
              help="JSONL records: problem/solution, messages, or input_ids/loss_mask.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Run directory: checkpoints/, metrics.jsonl, tensorboard/. Resumes if it holds checkpoints.")
@click.option("--model", default=None, help="Preset name or checkpoint path (overrides `model:` in the config).")
@click.option("--export-hf", "export_dir", type=click.Path(file_okay=False), default=None,
              help="After training, write the last checkpoint as a Hugging Face directory here.")
@click.option("--no-resume", is_flag=True, help="Fail if OUT already holds checkpoints.")
@click.argument("overrides", nargs=-1)
def train(config_path, data_path, out_dir, model, export_dir, no_resume, overrides):
    """Supervised fine-tuning (full or LoRA) on a sharded mesh.

    OVERRIDES are dotted KEY=VALUE pairs, e.g. optim.lr=1e-4 mesh.fsdp=2 lora.rank=16 epochs=2.
    """
    from scoder_jax.train.checkpoints import export_hf
    from scoder_jax.train.config import load_train_config
    from scoder_jax.train.trainer import train as run

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    cfg = load_train_config(config_path, overrides)
    summary = run(cfg, data_path, out_dir, model=model, resume=not no_resume)
    import jax

    if jax.process_index() != 0:
        return
    if export_dir and summary["checkpoints"]:
        export_hf(summary["checkpoints"][-1]["path"], export_dir)
        summary["exported_hf"] = export_dir
    click.echo(json.dumps({k: summary[k] for k in ("steps", "final_loss", "tokens", "elapsed_s", "out_dir")}
                          | {"last_checkpoint": (summary["checkpoints"][-1]["path"] if summary["checkpoints"]
                                                 else None)}))
