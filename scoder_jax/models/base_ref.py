"""The base model of an adapter-only checkpoint: its reference, its fingerprint, loading it back.

A LoRA run's checkpoint stores the adapters alone (`train/checkpoints.py`); its `meta/metadata`
and `scoder_model.json` carry `base`, a reference to the frozen weights it was trained over:

  kind         "checkpoint": a GGUF file, Hugging Face directory or scoder-jax checkpoint;
               "preset": a preset initialised from a seed (nothing on disk: re-initialised)
  path         the checkpoint's absolute path (kind checkpoint)
  format       gguf | hf | orbax (kind checkpoint)
  preset, seed the preset's name and the trainer's seed (kind preset)
  fingerprint  "sha256:<hex>". checkpoint: over each weight file's name, size, first 64 KiB,
               16 evenly spaced 4-KiB samples and last 4 KiB (about 0.4 MB read per file, whatever
               its size: it tells another file or a re-export apart, not a single flipped byte);
               preset: over (name, seed, the config fields that decide its values)
  param_dtype  the dtype the base was loaded in for training
  probe        "sha256:<hex>" over 8 elements of every base parameter as loaded (read from the
               device shards that hold them, so any mesh gives the same probe): a base that
               loads to other values (another loader, another JAX's random numbers) is caught

`load_base` checks the fingerprint before reading any weight and the probe after; a missing,
changed or differently loading base is a CheckpointError naming the base and the checkpoint.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path

import jax
import numpy as np

from scoder_jax.errors import CheckpointError
from scoder_jax.models.config import ModelConfig

HEAD_BYTES = 64 * 2**10
SAMPLE_BYTES = 4 * 2**10
SAMPLES = 16
PROBE_POINTS = 8
# config fields that do not change a parameter's value (how it is computed with, or the adapters)
RUNTIME_FIELDS = ("compute_dtype", "remat", "scan_unroll", "attention", "lora")
# config fields that decide what the base's weights mean
WEIGHT_FIELDS = ("arch", "vocab_size", "hidden_size", "num_layers", "num_heads", "num_kv_heads", "head_dim",
                 "intermediate_size", "tie_embeddings", "qkv_bias", "o_bias", "rope", "rms_norm_eps", "param_dtype")


@dataclasses.dataclass(frozen=True)
class BaseRef:
    kind: str  # "checkpoint" | "preset"
    fingerprint: str
    probe: str
    param_dtype: str
    path: str | None = None
    format: str | None = None
    preset: str | None = None
    seed: int | None = None

    def describe(self) -> str:
        if self.kind == "preset":
            return f"base preset '{self.preset}' (seed {self.seed})"
        return f"base model {self.path}"

    def to_dict(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, d, where: str | Path) -> "BaseRef":
        if not isinstance(d, dict):
            raise CheckpointError(f"{where}: field 'base' is not an object")
        need = ("kind", "fingerprint", "probe", "param_dtype") + (("preset", "seed") if d.get("kind") == "preset"
                                                                  else ("path", "format"))
        for k in need:
            if d.get(k) is None:
                raise CheckpointError(f"{where}: field 'base.{k}' is missing")
        if d["kind"] not in ("checkpoint", "preset"):
            raise CheckpointError(f"{where}: field 'base.kind' = {d['kind']!r} (expected checkpoint or preset)")
        return cls(**{f.name: d.get(f.name) for f in dataclasses.fields(cls)})


# ----------------------------------------------------------------------------- fingerprints


def weight_files(path: str | Path, kind: str) -> list[Path]:
    """The files whose content decides a checkpoint's weights and config."""
    path = Path(path)
    if kind == "gguf":
        return [path]
    if kind == "hf":
        index = path / "model.safetensors.index.json"
        if index.is_file():
            try:
                shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            except (json.JSONDecodeError, KeyError, TypeError):
                shards = []
            return [path / "config.json", index, *(path / s for s in shards)]
        return [path / "config.json", path / "model.safetensors"]
    from scoder_jax.models.checkpoint import ORBAX_MARKER

    return [path / ORBAX_MARKER, *sorted(p for p in (path / "params").rglob("*") if p.is_file())]


def _file_digest(h, f: Path, name: str) -> None:
    size = f.stat().st_size
    h.update(f"{name}\0{size}\0".encode())
    with open(f, "rb") as fh:
        h.update(fh.read(HEAD_BYTES))
        if size > HEAD_BYTES:
            for k in range(SAMPLES + 1):  # k = SAMPLES: the last bytes
                fh.seek(min(HEAD_BYTES + (size - HEAD_BYTES) * k // SAMPLES, size - SAMPLE_BYTES))
                h.update(fh.read(SAMPLE_BYTES))


def file_fingerprint(path: str | Path, kind: str) -> str:
    """sha256 over the weight files' names, sizes and sampled bytes (see the module docstring)."""
    path = Path(path)
    h = hashlib.sha256(f"scoder-base/1\0{kind}\0".encode())
    for f in weight_files(path, kind):
        if not f.is_file():
            raise CheckpointError(f"{f}: no such file (part of the base model {path})")
        _file_digest(h, f, "" if f == path else f.relative_to(path).as_posix())
    return "sha256:" + h.hexdigest()


def preset_fingerprint(name: str, seed: int, cfg: ModelConfig) -> str:
    fields = {k: v for k, v in cfg.to_dict().items() if k not in RUNTIME_FIELDS}
    blob = json.dumps({"preset": name, "seed": int(seed), "config": fields}, sort_keys=True)
    return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()


def _probe_points(shape: tuple[int, ...]) -> np.ndarray:
    """[P, ndim] indices: PROBE_POINTS elements evenly spread over the flattened array."""
    n = math.prod(shape)
    flat = np.unique(np.linspace(0, n - 1, num=min(n, PROBE_POINTS)).round().astype(np.int64))
    return np.stack(np.unravel_index(flat, shape), axis=-1)


def _probe_values(x: jax.Array) -> np.ndarray:
    """The probe points' values as float32, each read from an addressable shard that holds it
    (a small gather on that shard's device); other processes' points come by an all-gather."""
    if x.ndim == 0:
        return np.asarray(jax.device_get(x.addressable_data(0)), np.float32).reshape(1)
    points = _probe_points(tuple(x.shape))
    vals = np.zeros(len(points), np.float32)
    found = np.zeros(len(points), bool)
    for shard in x.addressable_shards:
        start = np.array([s.start or 0 for s in shard.index], np.int64)
        stop = np.array([d if s.stop is None else s.stop for s, d in zip(shard.index, x.shape)], np.int64)
        inside = ~found & np.all((points >= start) & (points < stop), axis=1)
        if inside.any():
            got = shard.data[tuple((points[inside] - start).T)]
            vals[inside] = np.asarray(jax.device_get(got), np.float32).reshape(-1)
            found |= inside
    if not x.is_fully_addressable:
        from jax.experimental import multihost_utils

        all_vals, all_found = multihost_utils.process_allgather((vals, found))
        first = np.argmax(np.asarray(all_found), axis=0)
        vals, found = np.asarray(all_vals)[first, np.arange(len(points))], np.asarray(all_found).any(axis=0)
    if not found.all():
        raise RuntimeError("probe point outside every shard")  # a bug, not bad input
    return vals


def value_probe(params: dict[str, jax.Array]) -> str:
    """sha256 over PROBE_POINTS values (as float32) of each parameter, by name."""
    h = hashlib.sha256(b"scoder-probe/1")
    for name in sorted(params):
        x = params[name]
        h.update(f"\0{name}\0{tuple(x.shape)}\0".encode())
        h.update(_probe_values(x).tobytes())
    return "sha256:" + h.hexdigest()


# ----------------------------------------------------------------------------- reference, check, load


def reference(spec: str, *, seed: int, cfg: ModelConfig, params: dict[str, jax.Array]) -> BaseRef:
    """The reference of the base a run loaded from `spec` (a checkpoint path, or a preset name
    initialised with `seed`), whose frozen parameters as loaded are `params`."""
    from scoder_jax.models.checkpoint import checkpoint_kind

    probe = value_probe(params)
    if Path(spec).exists():
        kind = checkpoint_kind(spec)
        path = Path(spec).absolute()
        return BaseRef("checkpoint", file_fingerprint(path, kind), probe, cfg.param_dtype, path=str(path),
                       format=kind)
    return BaseRef("preset", preset_fingerprint(spec, seed, cfg), probe, cfg.param_dtype, preset=spec, seed=int(seed))


def check_same_base(stored: BaseRef, current: BaseRef, where: str | Path) -> None:
    """A resumed run must train over the base its checkpoint was trained over."""
    if stored.fingerprint != current.fingerprint or (
            stored.param_dtype == current.param_dtype and stored.probe != current.probe):
        raise CheckpointError(
            f"{where}: trained over the {stored.describe()} (fingerprint {stored.fingerprint[:19]}), "
            f"but this run's is the {current.describe()} (fingerprint {current.fingerprint[:19]}); resume over "
            "the same base, or train into a fresh --out directory")


def check_files(ref: BaseRef, where: str | Path) -> None:
    """The base a checkpoint refers to is where it was, unchanged (checked before loading)."""
    if ref.kind != "checkpoint":
        return
    path = Path(ref.path)
    if not path.exists():
        raise CheckpointError(
            f"{where}: holds LoRA adapters only, and its base model {path} is missing (moved or deleted?); "
            f"put the base (or a link to it) back at that path (fingerprint {ref.fingerprint[:19]})")
    try:
        now = file_fingerprint(path, ref.format)
    except (CheckpointError, OSError) as e:
        raise CheckpointError(f"{where}: its base model {path} is unreadable or incomplete ({e})") from None
    if now != ref.fingerprint:
        raise CheckpointError(
            f"{where}: holds LoRA adapters only, and its base model {path} has changed since it was trained "
            f"(fingerprint {now[:19]}, recorded {ref.fingerprint[:19]}); restore the original base at that path")


def load_base(ref: BaseRef, cfg: ModelConfig, *, mesh=None, where: str | Path):
    """The base model of an adapter-only checkpoint as a Decoder with config `cfg` (the
    checkpoint's, with any caller overrides): base weights as trained over, fresh LoRA factors."""
    from scoder_jax import parallel

    mesh = mesh or parallel.single_device_mesh()
    check_files(ref, where)
    if ref.kind == "preset":
        from scoder_jax.train.trainer import init_model

        model = init_model(cfg, mesh, int(ref.seed))
    else:
        from scoder_jax.models.checkpoint import load_model

        model = load_model(ref.path, mesh=mesh, param_dtype=cfg.param_dtype, compute_dtype=cfg.compute_dtype,
                           remat=cfg.remat, scan_unroll=cfg.scan_unroll, attention=cfg.attention, lora=cfg.lora)
        theirs = json.loads(json.dumps(model.cfg.to_dict()))
        mine = json.loads(json.dumps(cfg.to_dict()))
        diff = next((k for k in WEIGHT_FIELDS if mine[k] != theirs.get(k)), None)
        if diff is not None:
            raise CheckpointError(f"{where}: its base model {ref.path} now has {diff} = {theirs.get(diff)!r}, "
                                  f"the checkpoint records {mine[diff]!r}")
        model.cfg = cfg  # the checkpoint's config (and the caller's overrides), as a full checkpoint loads
    if cfg.param_dtype == ref.param_dtype:
        from scoder_jax.models.llama import param_specs

        probe = value_probe({name: getattr(model, name).get_value() for name in param_specs(cfg)})
        if probe != ref.probe:
            why = "another JAX version's random numbers?" if ref.kind == "preset" else "another loader version?"
            raise CheckpointError(
                f"{where}: its {ref.describe()} loads to other values than when the checkpoint was trained "
                f"(probe {probe[:19]}, recorded {ref.probe[:19]}: {why})")
    return model
