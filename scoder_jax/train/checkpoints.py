"""Training checkpoints: the model, the optimizer state, the step, the learning rate, the data position.

`OUT/checkpoints/<step>/` holds
  params/            the parameters by name (orbax), as `save_orbax` writes them: every parameter
                     of a full fine-tune; the LoRA factors alone of a LoRA run (adapter-only)
  scoder_model.json  the model config (and, adapter-only, the `base` reference), so that
                     `load_model(<step dir>)` loads it like any checkpoint: an adapter-only one
                     composed with its base, which must be where it was and unchanged
                     (`models/base_ref.py`: path or preset + seed, fingerprint, value probe)
  tokenizer/         the run's tokenizer, when it has one
  opt_state/         the optimizer state as a flat dict, keys like `1.mu.wq` (chain index, field,
                     parameter name); `load_adam_moments` reads the Adam moments from it
  meta/metadata      JSON: step, lr (of the update that made this checkpoint), mean_lr (over the
                     updates since the previous checkpoint), data position, configs, fingerprint,
                     `base` (adapter-only)

Saving goes through an orbax `CheckpointManager`: asynchronous (the arrays are copied to host
before `save` returns, written in the background), into a temporary directory renamed into place
when complete, so a kill mid-save leaves the earlier checkpoints as they were. Only the last
`keep` survive: the checkpoint set that multi-checkpoint sampling and influence estimation use.
`scoder_model.json` and `tokenizer/` are written after the rename; a kill in between is repaired
from `meta` the next time the directory is listed.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from scoder_jax.errors import CheckpointError
from scoder_jax.io import make_temp, write_json_atomic
from scoder_jax.models.base_ref import BaseRef, check_same_base
from scoder_jax.models.checkpoint import ORBAX_MARKER, quiet_orbax_item_reads
from scoder_jax.models.config import ModelConfig

log = logging.getLogger(__name__)

CKPT_SUBDIR = "checkpoints"
ITEMS = ("params", "opt_state", "meta")


class CheckpointInfo(NamedTuple):
    step: int
    path: Path
    lr: float


def checkpoints_dir(out_dir: str | Path) -> Path:
    out_dir = Path(out_dir)
    return out_dir if out_dir.name == CKPT_SUBDIR else out_dir / CKPT_SUBDIR


# ----------------------------------------------------------------------------- flat optimizer state


def _key_str(entry) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(entry, attr):
            return str(getattr(entry, attr))
    return str(entry)


def flatten_state(tree) -> dict[str, Any]:
    """An optimizer state (nested tuples / NamedTuples / dicts) -> {"1.mu.wq": leaf, ...}."""
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    out = {}
    for path, leaf in flat:
        key = ".".join(_key_str(p) for p in path)
        if key in out:
            raise ValueError(f"duplicate optimizer-state key {key}")
        out[key] = leaf
    return out


def unflatten_state(flat: dict[str, Any], like) -> Any:
    """Inverse of `flatten_state`, given a tree of the same structure."""
    paths, treedef = jax.tree_util.tree_flatten_with_path(like)
    return jax.tree_util.tree_unflatten(treedef, [flat[".".join(_key_str(p) for p in path)] for path, _ in paths])


# ----------------------------------------------------------------------------- manager


class TrainCheckpointer:
    """Saves and restores training checkpoints under OUT/checkpoints (all processes call it)."""

    def __init__(self, out_dir: str | Path, *, keep: int, async_save: bool, model_cfg: ModelConfig,
                 tokenizer=None, base: BaseRef | None = None):
        """`base`: the frozen base of a LoRA run; given, checkpoints store the adapters alone and
        refer to it (without, they store the frozen parameters too, as full checkpoints)."""
        import orbax.checkpoint as ocp

        self.dir = checkpoints_dir(out_dir).absolute()
        self.model_cfg = model_cfg
        self.tokenizer = tokenizer
        self.base = base
        self.primary = jax.process_index() == 0
        if self.primary:
            self.dir.mkdir(parents=True, exist_ok=True)
        opts = ocp.CheckpointManagerOptions(
            max_to_keep=keep,
            enable_async_checkpointing=async_save,
            create=True,
            async_options=ocp.AsyncOptions(post_finalization_callback=self._finalized) if async_save else None,
        )
        self.mgr = ocp.CheckpointManager(self.dir, options=opts, item_names=ITEMS)
        self.async_save = async_save
        self._lock = threading.Lock()

    def _finalized(self) -> None:
        """Writes scoder_model.json and tokenizer/ into finished checkpoints (primary host only)."""
        if self.primary:
            with self._lock:
                list_checkpoints(self.dir, repair=True, tokenizer=self.tokenizer)

    def save(self, step: int, params: dict, opt_state, meta: dict, frozen: dict | None = None) -> None:
        """`params` are the trainable parameters; `frozen` the rest (a LoRA run's base weights),
        stored beside them, so that the step directory loads as a whole model, unless the
        checkpointer has a `base` to refer to instead."""
        import orbax.checkpoint as ocp

        meta = {**meta, "step": int(step), "model": self.model_cfg.to_dict(), "format": "scoder-jax-train/1",
                "trainable_names": sorted(params)}
        if self.base is not None:
            meta["base"] = self.base.to_dict()
            frozen = None
        self.mgr.save(step, args=ocp.args.Composite(
            params=ocp.args.StandardSave({**(frozen or {}), **params}),
            opt_state=ocp.args.StandardSave(flatten_state(opt_state)),
            meta=ocp.args.JsonSave(meta),
        ), force=True)
        if not self.async_save:
            self._finalized()

    def wait(self) -> None:
        self.mgr.wait_until_finished()
        if self.primary:
            self._finalized()

    def latest_step(self) -> int | None:
        steps = [i.step for i in list_checkpoints(self.dir, repair=False)]
        return max(steps) if steps else None

    def restore(self, step: int, params_target: dict, opt_target, frozen_target: dict | None = None
                ) -> tuple[dict, Any, dict]:
        """(trainable params, opt_state, meta) of a step, placed like the (abstract, sharded) targets."""
        path = self.dir / str(step)
        meta = read_meta(path)
        check_same_model(meta, self.model_cfg, path)
        if "base" in meta:  # adapter-only: the frozen parameters are this run's base, if it is the same
            stored = BaseRef.from_dict(meta["base"], path / "meta" / "metadata")
            if self.base is None:
                raise CheckpointError(f"{path}: holds LoRA adapters over the {stored.describe()}, but this run "
                                      "has no base to compose them with; train into a fresh --out directory")
            check_same_base(stored, self.base, path)
            frozen_target = None
        restored = restore_item(path / "params", {**(frozen_target or {}), **params_target})
        params = {k: restored[k] for k in params_target}
        opt_flat = restore_item(path / "opt_state", flatten_state(opt_target))
        return params, unflatten_state(opt_flat, opt_target), meta

    def close(self) -> None:
        self.mgr.close()


def restore_item(path: Path, target: dict) -> dict:
    """Restores a flat dict saved with StandardSave onto the target's shapes and shardings;
    a name or shape mismatch is a CheckpointError naming the entry."""
    import orbax.checkpoint as ocp

    quiet_orbax_item_reads()
    with ocp.StandardCheckpointer() as ckptr:
        try:
            stored = ckptr.metadata(path)
        except Exception as e:
            raise CheckpointError(f"{path}: unreadable checkpoint ({' '.join(str(e).split())[:200]})") from None
        tree = getattr(stored, "item_metadata", stored)
        tree = getattr(tree, "tree", tree)
        stored_keys = set(tree.keys())
        for k, t in target.items():
            if k not in stored_keys:
                raise CheckpointError(f"{path}: entry '{k}' is missing (a checkpoint of another model or run?)")
            shape = tuple(getattr(tree[k], "shape", ()) or ())
            if shape != tuple(t.shape):
                raise CheckpointError(f"{path}: entry '{k}' has shape {shape}, this run needs {tuple(t.shape)} "
                                      "(a checkpoint of another model?)")
        extra = sorted(stored_keys - set(target))
        if extra:
            raise CheckpointError(f"{path}: unexpected entry '{extra[0]}' (a checkpoint of another model or run?)")
        return ckptr.restore(path, target)


# ----------------------------------------------------------------------------- reading


def read_meta(step_dir: str | Path) -> dict:
    p = Path(step_dir) / "meta" / "metadata"
    try:
        return json.loads(p.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{p}: no such file (not a scoder-jax training checkpoint)") from None
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{p}: malformed JSON ({e.msg})") from None


ARCH_FIELDS = ("arch", "vocab_size", "hidden_size", "num_layers", "num_heads", "num_kv_heads", "head_dim",
               "intermediate_size", "tie_embeddings", "qkv_bias", "o_bias", "lora", "param_dtype")


def check_same_model(meta: dict, cfg: ModelConfig, where: Path) -> None:
    stored = meta.get("model") or {}
    mine = json.loads(json.dumps(cfg.to_dict()))  # as stored: tuples become lists
    for f in ARCH_FIELDS:
        if stored.get(f) != mine.get(f):
            raise CheckpointError(
                f"{where}: checkpoint of another model ({f} = {stored.get(f)!r}, this run has {mine.get(f)!r}); "
                "resume with the same model and config, or train into a fresh --out directory")


def _is_complete(d: Path) -> bool:
    return d.is_dir() and d.name.isdigit() and all((d / item).is_dir() for item in ITEMS) \
        and (d / "meta" / "metadata").is_file()


def list_checkpoints(out_dir: str | Path, *, repair: bool = True, tokenizer=None) -> list[CheckpointInfo]:
    """The complete checkpoints of a run (OUT or OUT/checkpoints), oldest first: (step, path, lr).

    With `repair`, a checkpoint whose `scoder_model.json` was not yet written gets it from `meta`.
    """
    d = checkpoints_dir(out_dir)
    if not d.is_dir():
        return []
    out = []
    for sub in sorted((p for p in d.iterdir() if _is_complete(p)), key=lambda p: int(p.name)):
        meta = read_meta(sub)
        if repair:
            _write_extras(sub, meta, tokenizer)
        out.append(CheckpointInfo(int(meta["step"]), sub, float(meta["lr"])))
    return out


def _write_extras(step_dir: Path, meta: dict, tokenizer) -> None:
    marker = step_dir / ORBAX_MARKER
    if tokenizer is not None and not (step_dir / "tokenizer" / "tokenizer.json").exists():
        tmp = make_temp(step_dir, "tokenizer", is_dir=True)
        tokenizer.save(tmp)
        try:
            tmp.rename(step_dir / "tokenizer")
        except OSError:  # written meanwhile by another lister
            shutil.rmtree(tmp, ignore_errors=True)
    if not marker.exists():
        extra = {"base": meta["base"]} if "base" in meta else {}
        write_json_atomic(marker, {"format": "scoder-jax/1", "model": meta["model"], **extra})


def latest_checkpoint(out_dir: str | Path) -> CheckpointInfo | None:
    infos = list_checkpoints(out_dir)
    return infos[-1] if infos else None


def checkpoint_meta(step_dir: str | Path) -> dict:
    """Everything a checkpoint records besides arrays: step, lr, mean_lr, data position, configs."""
    return read_meta(step_dir)


def checkpoint_lr(step_dir: str | Path, *, mean: bool = False) -> float:
    meta = read_meta(step_dir)
    return float(meta["mean_lr" if mean else "lr"])


class AdamMoments(NamedTuple):
    mu: dict[str, jax.Array]  # first moment by parameter name
    nu: dict[str, jax.Array]  # second moment by parameter name
    b1: float
    b2: float
    eps: float


def load_adam_moments(step_dir: str | Path, *, mesh=None, names: list[str] | None = None) -> AdamMoments:
    """The Adam moments of a checkpoint by parameter name (the LoRA factors in a LoRA run).

    Arrays land on `mesh` sharded by the parameters' logical axes (default: one device).
    """
    import orbax.checkpoint as ocp

    from scoder_jax import parallel
    from scoder_jax.models.llama import lora_specs, param_specs

    step_dir = Path(step_dir)
    meta = read_meta(step_dir)
    optim = meta["train"]["optim"]
    cfg = ModelConfig.from_dict(meta["model"])
    specs = {**param_specs(cfg), **lora_specs(cfg)}
    mesh = mesh or parallel.single_device_mesh()
    path = step_dir / "opt_state"
    quiet_orbax_item_reads()
    with ocp.StandardCheckpointer() as ckptr:
        stored = ckptr.metadata(path)
        tree = getattr(stored, "item_metadata", stored)
        tree = getattr(tree, "tree", tree)
        target, wanted = {}, []
        for k, m in tree.items():
            parts = k.split(".")
            sharding = parallel.replicated(mesh)
            if len(parts) >= 2 and parts[-2] in ("mu", "nu") and parts[-1] in specs:
                shape, axes = specs[parts[-1]]
                sharding = parallel.sharding_for(axes, shape, mesh)
                if names is None or parts[-1] in names:
                    wanted.append(k)
            target[k] = jax.ShapeDtypeStruct(tuple(m.shape), jnp.dtype(m.dtype), sharding=sharding)
        if not wanted:
            raise CheckpointError(f"{path}: no Adam moments in this optimizer state")
        restored = ckptr.restore(path, target)
    mu = {k.split(".")[-1]: restored[k] for k in wanted if k.split(".")[-2] == "mu"}
    nu = {k.split(".")[-1]: restored[k] for k in wanted if k.split(".")[-2] == "nu"}
    return AdamMoments(mu, nu, float(optim["b1"]), float(optim["b2"]), float(optim["eps"]))


def load_params(step_dir: str | Path, *, mesh=None) -> dict[str, jax.Array]:
    """The parameters of a checkpoint by name, without building a model."""
    from scoder_jax.models.checkpoint import _param_values, load_model

    return _param_values(load_model(step_dir, mesh=mesh))


def export_hf(step_dir: str | Path, out_dir: str | Path, *, dtype: str | None = None) -> Path:
    """A Hugging Face directory from a training checkpoint (LoRA merged), with its tokenizer."""
    from scoder_jax.models.checkpoint import load_model, load_tokenizer, save_hf

    model = load_model(step_dir)
    tok = load_tokenizer(step_dir, required=False)
    return save_hf(model, out_dir, tokenizer=tok, dtype=dtype)


def host_copy(tree) -> Any:
    return jax.tree.map(lambda x: np.asarray(jax.device_get(x)), tree)
