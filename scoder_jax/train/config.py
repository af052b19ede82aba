"""The trainer's part of the project config: frozen dataclasses, read from YAML.

A file is either the train section alone or a whole project config with a `train:` key.
Overrides are dotted (`optim.lr=1e-4`, `mesh.fsdp=2`, `lora.rank=16`, `lora=null`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Literal

from scoder_jax.config import load_config
from scoder_jax.models.config import AttentionImpl, Dtype, LoraConfig, RematPolicy


@dataclass(frozen=True)
class DataConfig:
    loss_on: Literal["response", "all"] = "response"  # loss on assistant tokens only, or on every token
    too_long: Literal["truncate", "drop"] = "truncate"  # a sample longer than seq_len + 1 tokens
    pack: bool = True  # several samples per row (segment ids keep them apart); False: one per row
    shuffle: bool = True
    system_prompt: str | None = None  # prepended as a system message to problem/solution records
    pack_window: int = 64  # first-fit packing looks back this many open rows
    # logits and loss only at the positions that carry loss (prompts and padding skipped): each row
    # holds a fixed number of loss slots, the plan's largest count rounded up to 128
    compact_loss: bool = True


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 2e-5
    schedule: Literal["cosine", "linear", "constant"] = "cosine"
    warmup_steps: int = 0
    warmup_ratio: float = 0.0  # used when warmup_steps is 0
    min_lr_ratio: float = 0.0  # the decay ends at lr * min_lr_ratio
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0
    clip_norm: float | None = 1.0  # global-norm clipping; null for none

    def __post_init__(self):
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not 0 <= self.b1 < 1 or not 0 <= self.b2 < 1:
            raise ValueError(f"b1 and b2 must lie in [0, 1), got {self.b1}, {self.b2}")


@dataclass(frozen=True)
class MeshConfig:
    data: int = -1  # -1 takes the devices the other axes leave
    fsdp: int = 1
    tensor: int = 1
    num_devices: int | None = None  # use only the first N devices (one process only); null: all


@dataclass(frozen=True)
class CheckpointConfig:
    every_steps: int = 0  # 0: only at epoch ends (and at the last step)
    at_epoch_end: bool = True
    keep: int = 3  # the last `keep` checkpoints stay: the set sampling and influence use
    async_save: bool = True


LoraSpec = LoraConfig  # the LoRA knobs are the model's (models/config.py), declared once


@dataclass(frozen=True)
class DistributedConfig:
    """`jax.distributed.initialize` arguments; unset ones come from SCODER_COORDINATOR,
    SCODER_NUM_PROCESSES, SCODER_PROCESS_ID (or, for all three unset, no multi-process start)."""

    coordinator: str | None = None
    num_processes: int | None = None
    process_id: int | None = None
    timeout_s: int = 300


@dataclass(frozen=True)
class TrainConfig:
    model: str = "tiny"  # a preset name (random init) or a checkpoint path (HF dir, .gguf, scoder-jax)
    tokenizer: str | None = None  # a tokenizer dir/.gguf; null: the checkpoint's; "chars": character-level
    seed: int = 0  # data order, initialisation
    seq_len: int = 2048  # tokens per packed row
    batch_size: int = 8  # rows per optimizer step, over all hosts
    grad_accum: int = 1  # microbatches per step (each batch_size / grad_accum rows)
    epochs: int = 3
    max_steps: int | None = None  # stop early (the schedule still spans max_steps)
    param_dtype: Dtype = "float32"  # master parameters
    compute_dtype: Dtype = "float32"  # bfloat16: bf16 matmuls over fp32 master parameters
    remat: RematPolicy = "none"  # none | full | dots_saveable | dots_with_no_batch_dims_saveable
    scan_unroll: int = 1  # layers per iteration of the layer scan; more: longer compile, faster steps on CPU
    attention: AttentionImpl = "auto"  # auto | xla | flash | splash | cudnn (models/attention_select.py)
    loss_chunk: int = 0  # compute logits + loss over this many positions at a time (0: all at once)
    log_every: int = 1
    progress: bool = True
    tensorboard: bool = True
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    lora: LoraConfig | None = None
    mesh: MeshConfig = field(default_factory=MeshConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)

    def __post_init__(self):
        if self.scan_unroll < 1:
            raise ValueError(f"scan_unroll must be at least 1, got {self.scan_unroll}")
        if self.seq_len < 2:
            raise ValueError(f"seq_len must be at least 2, got {self.seq_len}")
        if self.batch_size < 1 or self.grad_accum < 1 or self.batch_size % self.grad_accum:
            raise ValueError(
                f"batch_size {self.batch_size} must be a positive multiple of grad_accum {self.grad_accum}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")

    @property
    def micro_rows(self) -> int:
        return self.batch_size // self.grad_accum


def load_train_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> TrainConfig:
    """The train section of a YAML file (or the defaults), with dotted overrides applied."""
    return load_config(TrainConfig, path, overrides, section="train")
