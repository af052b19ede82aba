"""Supervised fine-tuning: packing, loss masks, optax AdamW, sharded steps, orbax checkpoints.

What other stages call:
  train(cfg, data, out_dir)                      -> summary dict          (trainer)
  load_train_config(path, overrides)             -> TrainConfig           (config)
  list_checkpoints(out_dir) -> [(step, path, lr)], latest_checkpoint(out_dir), checkpoint_meta(step_dir)
  load_adam_moments(step_dir) -> (mu, nu, b1, b2, eps) by parameter name
  export_hf(step_dir, hf_dir)                    (LoRA merged)
A checkpoint directory also loads as a model: `scoder_jax.models.checkpoint.load_model(step_dir)`.
"""

from scoder_jax.train.checkpoints import (
    AdamMoments,
    CheckpointInfo,
    checkpoint_lr,
    checkpoint_meta,
    export_hf,
    latest_checkpoint,
    list_checkpoints,
    load_adam_moments,
    load_params,
)
from scoder_jax.train.config import TrainConfig, load_train_config
from scoder_jax.train.trainer import train

__all__ = ["train", "TrainConfig", "load_train_config", "list_checkpoints", "latest_checkpoint", "checkpoint_meta",
           "checkpoint_lr", "load_adam_moments", "load_params", "export_hf", "AdamMoments", "CheckpointInfo"]
