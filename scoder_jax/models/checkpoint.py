"""Reading and writing model checkpoints: Hugging Face directories, GGUF files, orbax.

Loading never materialises the stacked weights on the host: each device shard is built by
`jax.make_array_from_callback` from the layers it covers, read lazily from memory-mapped
safetensors / GGUF files, so host memory peaks near one copy of the weights (one layer's
tensor at a time on top of what the devices hold), whatever the device count.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp
import ml_dtypes  # noqa: F401  (registers bfloat16 with numpy)
import numpy as np
from flax import nnx
from jax.sharding import Mesh

from scoder_jax import parallel
from scoder_jax.errors import CheckpointError, ScoderError
from scoder_jax.io import atomic_path, write_json_atomic
from scoder_jax.models.config import ModelConfig, from_hf_config, read_hf_config, to_hf_config
from scoder_jax.models.hf_names import BY_NAME, hf_shape, maps_for
from scoder_jax.models.llama import Decoder, init_value, lora_specs, param_specs

log = logging.getLogger(__name__)

ORBAX_MARKER = "scoder_model.json"
TensorGetter = Callable[[str], np.ndarray]


# ----------------------------------------------------------------------------- assembling


def assemble(cfg: ModelConfig, get: TensorGetter, *, where: str, mesh: Mesh | None = None,
             gguf: bool = False, seed: int = 0) -> Decoder:
    """Builds a Decoder whose parameters come from checkpoint tensors returned by `get`.

    `get(name)` returns one checkpoint tensor (HF or GGUF naming) as a numpy array, or raises
    KeyError. Each parameter lands directly on its sharding over `mesh` (default: one device).
    LoRA factors, which checkpoints do not hold, are freshly initialised.
    """
    mesh = mesh or parallel.single_device_mesh()
    model = nnx.eval_shape(lambda: Decoder(cfg, rngs=nnx.Rngs(seed)))
    dtype = np.dtype(jnp.dtype(cfg.param_dtype))
    specs = param_specs(cfg)
    for m in maps_for(specs):
        shape, axes = specs[m.ours]
        sharding = parallel.sharding_for(axes, shape, mesh)
        name_of = (lambda i, m=m: m.gguf.format(i=i)) if gguf else (lambda i, m=m: m.hf.format(i=i))

        def read(i: int | None, m=m, name_of=name_of, shape=shape) -> np.ndarray:
            name = name_of(i)
            try:
                raw = get(name)
            except KeyError:
                raise CheckpointError(f"{where}: tensor '{name}' is missing") from None
            want = hf_shape(m.ours, cfg)
            if tuple(raw.shape) != want:
                raise CheckpointError(
                    f"{where}: tensor '{name}' has shape {tuple(raw.shape)}, but the config implies {want}")
            return m.to_ours(raw, cfg)

        if m.per_layer:
            for i in range(cfg.num_layers):  # validate every layer up front: fail before any work
                _check_present(get, name_of(i), where)

            def cb(idx, read=read, dtype=dtype):
                layers = range(cfg.num_layers)[idx[0]]
                return np.stack([read(i)[idx[1:]] for i in layers]).astype(dtype)
        else:
            host = read(None).astype(dtype)

            def cb(idx, host=host):
                return host[idx]

        getattr(model, m.ours).set_value(jax.make_array_from_callback(shape, sharding, cb))
    keys = jax.random.split(jax.random.key(seed), max(1, len(lora_specs(cfg))))
    for key, (name, (shape, axes)) in zip(keys, lora_specs(cfg).items()):
        sharding = parallel.sharding_for(axes, shape, mesh)
        value = jax.jit(lambda k, name=name, shape=shape: init_value(cfg, name, shape, k), out_shardings=sharding)(key)
        getattr(model, name).set_value(value)
    return model


def _check_present(get: TensorGetter, name: str, where: str) -> None:
    checker = getattr(get, "has", None)
    if checker is not None and not checker(name):
        raise CheckpointError(f"{where}: tensor '{name}' is missing")


# ----------------------------------------------------------------------------- Hugging Face


class _SafetensorsDir:
    """Lazy, memory-mapped access to the tensors of a (possibly sharded) safetensors checkpoint."""

    def __init__(self, model_dir: Path):
        from safetensors import safe_open

        self.dir = model_dir
        index = model_dir / "model.safetensors.index.json"
        single = model_dir / "model.safetensors"
        if index.exists():
            try:
                weight_map = json.loads(index.read_text())["weight_map"]
            except (json.JSONDecodeError, KeyError) as e:
                raise CheckpointError(f"{index}: malformed index ({e})") from None
            self.where = str(index)
        elif single.exists():
            weight_map = None
            self.where = str(single)
        else:
            raise CheckpointError(f"{model_dir}: no model.safetensors or model.safetensors.index.json")
        files = sorted(set(weight_map.values())) if weight_map else ["model.safetensors"]
        self.handles = {}
        for f in files:
            path = model_dir / f
            if not path.exists():
                missing = next(t for t, ff in weight_map.items() if ff == f)
                raise CheckpointError(f"{index}: shard '{f}' (holding tensor '{missing}') is missing")
            _check_safetensors_size(path)
            try:
                self.handles[f] = safe_open(str(path), framework="numpy")
            except Exception as e:  # safetensors raises its own error type for corrupt headers
                raise CheckpointError(f"{path}: truncated or corrupt safetensors file ({_short(e)})") from None
        if weight_map is None:
            weight_map = {k: "model.safetensors" for k in self.handles["model.safetensors"].keys()}
        self.weight_map = weight_map

    def has(self, name: str) -> bool:
        return name in self.weight_map

    def __call__(self, name: str) -> np.ndarray:
        f = self.weight_map[name]
        try:
            return self.handles[f].get_tensor(name)
        except Exception as e:
            raise CheckpointError(f"{self.dir / f}: cannot read tensor '{name}' ({_short(e)})") from None


def _check_safetensors_size(path: Path) -> None:
    """A file cut short after its header still opens lazily; compare the header's extent to the size."""
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path}: truncated safetensors file (no header)")
        n = int.from_bytes(head, "little")
        try:
            header = json.loads(f.read(n))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise CheckpointError(f"{path}: truncated or corrupt safetensors header") from None
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    size = path.stat().st_size
    if 8 + n + end > size:
        last = max((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"][1])
        raise CheckpointError(
            f"{path}: truncated safetensors file ({size} bytes, header needs {8 + n + end}; "
            f"tensor '{last}' is cut off)")


def _short(e: Exception) -> str:
    return " ".join(str(e).split())[:200]


def load_hf(model_dir: str | Path, *, mesh: Mesh | None = None, **overrides) -> Decoder:
    """Loads a Hugging Face LLaMA/Qwen2 directory (config.json + safetensors)."""
    model_dir = Path(model_dir)
    cfg = read_hf_config(model_dir, **overrides)
    tensors = _SafetensorsDir(model_dir)
    return assemble(cfg, tensors, where=tensors.where, mesh=mesh)


def save_hf(model: Decoder, out_dir: str | Path, *, tokenizer=None, dtype: str | None = None,
            max_shard_bytes: int = 5 * 2**30) -> Path:
    """Writes a Hugging Face directory (sharded safetensors above `max_shard_bytes`), atomically.

    LoRA factors, if any, are merged into their base weights first.
    """
    from safetensors.numpy import save_file

    from scoder_jax.models.lora import merged_params

    cfg = model.cfg
    dtype = dtype or cfg.param_dtype
    np_dtype = np.dtype(jnp.dtype(dtype))
    params = merged_params(model)
    tensors: dict[str, np.ndarray] = {}
    for m in maps_for(params):
        value = np.asarray(jax.device_get(params[m.ours]))
        if m.per_layer:
            for i in range(cfg.num_layers):
                tensors[m.hf.format(i=i)] = m.to_hf(value[i], cfg).astype(np_dtype)
        else:
            tensors[m.hf] = m.to_hf(value, cfg).astype(np_dtype)
    shards: list[dict[str, np.ndarray]] = [{}]
    size = 0
    for name, t in tensors.items():
        if shards[-1] and size + t.nbytes > max_shard_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = t
        size += t.nbytes
    out_dir = Path(out_dir)
    with atomic_path(out_dir, is_dir=True) as tmp:
        if len(shards) == 1:
            save_file(shards[0], str(tmp / "model.safetensors"), metadata={"format": "pt"})
        else:
            weight_map = {}
            n = len(shards)
            for k, shard in enumerate(shards, 1):
                fname = f"model-{k:05d}-of-{n:05d}.safetensors"
                save_file(shard, str(tmp / fname), metadata={"format": "pt"})
                weight_map.update({name: fname for name in shard})
            total = sum(t.nbytes for t in tensors.values())
            (tmp / "model.safetensors.index.json").write_text(
                json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
        hf_cfg = to_hf_config(cfg.replace(lora=None), torch_dtype=dtype)
        (tmp / "config.json").write_text(json.dumps(hf_cfg, indent=2))
        gen = {"bos_token_id": cfg.bos_token_id, "eos_token_id": cfg.eos_token_id}
        if cfg.pad_token_id is not None:
            gen["pad_token_id"] = cfg.pad_token_id
        (tmp / "generation_config.json").write_text(json.dumps(gen, indent=2))
        if tokenizer is not None:
            tokenizer.save(tmp)
    return out_dir


# ----------------------------------------------------------------------------- GGUF


def read_gguf_header(path: Path) -> tuple[dict, dict]:
    """The GGUF file's header fields and its tensors by name (gguf_meta: the index alone, no data)."""
    from scoder_jax import gguf_meta

    try:
        kv, tensors = gguf_meta.read_header(path)
    except ScoderError as e:
        raise CheckpointError(f"{path}: not a readable GGUF file ({str(e).removeprefix(f'{path}: ')})") from None
    by_name = {}
    for t in tensors:
        if t.name in by_name:
            raise CheckpointError(f"{path}: tensor '{t.name}' is listed twice")
        by_name[t.name] = t
    return kv, by_name


def gguf_config(kv: dict, names, where: str, **overrides) -> ModelConfig:
    """The model config from a GGUF header's fields (`kv`) and its tensor names."""
    arch = kv.get("general.architecture")
    if arch not in ("llama", "qwen2"):
        raise CheckpointError(f"{where}: field 'general.architecture' = {arch!r} is not supported (llama, qwen2)")
    g = lambda k, d=None: kv.get(f"{arch}.{k}", d)  # noqa: E731
    path_name = Path(where).stem
    try:
        hidden = int(g("embedding_length"))
        heads = int(g("attention.head_count"))
        vocab = g("vocab_size") or len(kv.get("tokenizer.ggml.tokens") or [])
        scaling = g("rope.scaling.type", "none")
        rope_type = {"none": "default", "linear": "linear"}.get(scaling)
        if rope_type is None:
            raise CheckpointError(f"{where}: field '{arch}.rope.scaling.type' = {scaling!r} is not supported")
        hf = {
            "_name_or_path": kv.get("general.name") or path_name,
            "architectures": ["LlamaForCausalLM" if arch == "llama" else "Qwen2ForCausalLM"],
            "model_type": arch,
            "vocab_size": int(vocab),
            "hidden_size": hidden,
            "num_hidden_layers": int(g("block_count")),
            "num_attention_heads": heads,
            "num_key_value_heads": int(g("attention.head_count_kv", heads)),
            "head_dim": int(g("attention.key_length", hidden // heads)),
            "intermediate_size": int(g("feed_forward_length")),
            "rms_norm_eps": float(g("attention.layer_norm_rms_epsilon", 1e-6)),
            "max_position_embeddings": int(g("context_length", 4096)),
            "rope_theta": float(g("rope.freq_base", 10000.0)),
            "rope_scaling": (None if rope_type == "default"
                             else {"type": rope_type, "factor": float(g("rope.scaling.factor"))}),
            "tie_word_embeddings": "output.weight" not in names,
            "attention_bias": "blk.0.attn_q.bias" in names and arch == "llama",
            "bos_token_id": kv.get("tokenizer.ggml.bos_token_id"),
            "eos_token_id": kv.get("tokenizer.ggml.eos_token_id"),
            "pad_token_id": kv.get("tokenizer.ggml.padding_token_id"),
        }
    except TypeError as e:
        raise CheckpointError(f"{where}: missing model metadata ({e})") from None
    return from_hf_config(hf, where=where, **overrides)


def _unpermute(w: np.ndarray, n_heads: int) -> np.ndarray:
    """Undoes llama.cpp's Q/K row permutation (interleaved -> rotate-half RoPE layout)."""
    return w.reshape(n_heads, w.shape[0] // n_heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def load_gguf(path: str | Path, *, mesh: Mesh | None = None, **overrides) -> Decoder:
    """Loads a llama / qwen2 GGUF (F32, F16, BF16, Q4_0, Q4_1, Q8_0 and every type gguf-py dequantizes)."""
    import gguf

    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such file")
    kv, by_name = read_gguf_header(path)
    cfg = gguf_config(kv, by_name, str(path), **overrides)
    arch = kv["general.architecture"]
    data = np.memmap(path, np.uint8, mode="r")

    def get(name: str) -> np.ndarray:
        t = by_name[name]
        try:
            qtype = gguf.GGMLQuantizationType(t.ggml_type)
        except ValueError:
            raise CheckpointError(f"{path}: tensor '{name}' has unknown GGML type {t.ggml_type}") from None
        try:
            shape = gguf.quant_shape_to_byte_shape(t.shape, qtype)  # its bytes, rows of blocks
            if t.offset + math.prod(shape) > data.size:
                raise CheckpointError(f"{path}: tensor '{name}' lies past the end of the file (truncated?)")
            raw = np.asarray(data[t.offset:t.offset + math.prod(shape)])  # a plain view: slicing a memmap is slow
            w = gguf.quants.dequantize(raw.reshape(shape), qtype)
        except (NotImplementedError, KeyError):
            raise CheckpointError(
                f"{path}: tensor '{name}' has type {qtype.name}, which cannot be dequantized") from None
        w = np.asarray(w, np.float32).reshape(t.shape)
        if arch == "llama" and (".attn_q." in name or ".attn_k." in name):
            w = _unpermute(w, cfg.num_heads if ".attn_q." in name else cfg.num_kv_heads)
        return w

    get.has = lambda name: name in by_name  # type: ignore[attr-defined]
    return assemble(cfg, get, where=str(path), mesh=mesh, gguf=True)


# ----------------------------------------------------------------------------- orbax


def save_orbax(model: Decoder, out_dir: str | Path, *, tokenizer=None) -> Path:
    """The project's own checkpoint: `scoder_model.json` (the config), `params/` (orbax) and
    `tokenizer/` when a tokenizer is given."""
    import orbax.checkpoint as ocp

    out_dir = Path(out_dir).absolute()
    params = {k: v for k, v in _param_values(model).items()}
    with atomic_path(out_dir, is_dir=True) as tmp:
        with ocp.StandardCheckpointer() as ckptr:
            ckptr.save(tmp / "params", params)
            ckptr.wait_until_finished()
        if tokenizer is not None:
            tokenizer.save(tmp / "tokenizer")
        write_json_atomic(tmp / ORBAX_MARKER, {"format": "scoder-jax/1", "model": model.cfg.to_dict()})
    return out_dir


class _NoStepMetadataWarning(logging.Filter):
    """Drops orbax's "Metadata file does not exist" warning, and only that one.

    A training checkpoint is a CheckpointManager step (`params/`, `opt_state/`, `meta/`); its
    `_CHECKPOINT_METADATA` (the step's save time) lives in the step folder, and the items are
    read here directly, each complete with its own `_METADATA`. Orbax warns about the step
    file on every such read, which says nothing a user can act on."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith("Metadata file does not exist")


def quiet_orbax_item_reads() -> None:
    absl = logging.getLogger("absl")
    if not any(isinstance(f, _NoStepMetadataWarning) for f in absl.filters):
        absl.addFilter(_NoStepMetadataWarning())


def load_orbax(ckpt_dir: str | Path, *, mesh: Mesh | None = None, **overrides) -> Decoder:
    """A scoder-jax checkpoint; an adapter-only one (its `scoder_model.json` names a `base`) is
    composed: the base, checked against its fingerprint (`base_ref.load_base`), plus the adapters."""
    import orbax.checkpoint as ocp

    from scoder_jax.models import base_ref

    quiet_orbax_item_reads()

    ckpt_dir = Path(ckpt_dir).absolute()
    marker = ckpt_dir / ORBAX_MARKER
    try:
        meta = json.loads(marker.read_text())
        cfg = ModelConfig.from_dict(meta["model"]).replace(**overrides)
    except FileNotFoundError:
        raise CheckpointError(f"{marker}: no such file (not a scoder-jax checkpoint)") from None
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise CheckpointError(f"{marker}: malformed ({_short(e)})") from None
    mesh = mesh or parallel.single_device_mesh()
    base = base_ref.BaseRef.from_dict(meta["base"], marker) if "base" in meta else None
    if base is not None:
        model = base_ref.load_base(base, cfg, mesh=mesh, where=ckpt_dir)
    else:
        model = nnx.eval_shape(lambda: Decoder(cfg, rngs=nnx.Rngs(0)))
    specs = {**param_specs(cfg), **lora_specs(cfg)}
    target = {}
    for name, (shape, axes) in specs.items():
        dtype = jnp.float32 if name.startswith("lora_") else jnp.dtype(cfg.param_dtype)
        target[name] = jax.ShapeDtypeStruct(shape, dtype, sharding=parallel.sharding_for(axes, shape, mesh))
    kw = {}
    p = jax.process_index()
    if jax.process_count() > 1 and all(d.process_index == p for d in mesh.devices.flat):
        # a process-local restore (a stage that runs on one process only) must not wait for the others
        kw["multiprocessing_options"] = ocp.options.MultiprocessingOptions(
            primary_host=p, active_processes={p}, barrier_sync_key_prefix=f"scoder-local-{p}")
    with ocp.StandardCheckpointer(**kw) as ckptr:
        stored = ckptr.metadata(ckpt_dir / "params")
        stored_tree = getattr(stored, "item_metadata", stored)
        stored_names = set(stored_tree.keys()) if hasattr(stored_tree, "keys") else set(target)
        if base is None:  # a full checkpoint: every base parameter; LoRA factors it lacks start fresh
            missing = [n for n in target if n not in stored_names and not n.startswith("lora_")]
        else:  # adapter-only: every adapter the checkpoint's own config has
            trained = lora_specs(ModelConfig.from_dict(meta["model"]))
            missing = [n for n in target if n in trained and n not in stored_names]
        if missing:
            raise CheckpointError(f"{ckpt_dir / 'params'}: parameter '{missing[0]}' is missing")
        target_here = {k: v for k, v in target.items() if k in stored_names}
        try:
            restored = ckptr.restore(ckpt_dir / "params", target_here)
        except Exception as e:
            raise CheckpointError(f"{ckpt_dir / 'params'}: cannot restore ({_short(e)})") from None
    for name, value in restored.items():
        getattr(model, name).set_value(value)
    fresh = [n for n in target if n not in restored and base is None]  # a composed model has the base's
    for i, name in enumerate(fresh):
        shape = specs[name][0]
        getattr(model, name).set_value(
            jax.device_put(init_value(cfg, name, shape, jax.random.key(i)), target[name].sharding))
    return model


def _param_values(model: Decoder) -> dict[str, jax.Array]:
    specs = {**param_specs(model.cfg), **lora_specs(model.cfg)}
    return {name: getattr(model, name).get_value() for name in specs}


# ----------------------------------------------------------------------------- dispatch


def checkpoint_kind(path: str | Path) -> str:
    path = Path(path)
    if path.is_file() and path.suffix == ".gguf":
        return "gguf"
    if path.is_dir() and (path / ORBAX_MARKER).exists():
        return "orbax"
    if path.is_dir() and (path / "config.json").exists():
        return "hf"
    if not path.exists():
        raise CheckpointError(f"{path}: no such file or directory")
    raise CheckpointError(
        f"{path}: not a model checkpoint (expected a .gguf file, a Hugging Face directory with config.json, "
        f"or a scoder-jax checkpoint with {ORBAX_MARKER})")


def load_model(path: str | Path, *, mesh: Mesh | None = None, **overrides) -> Decoder:
    """Loads any supported checkpoint; `overrides` replace config fields (dtypes, remat, lora)."""
    kind = checkpoint_kind(path)
    return {"gguf": load_gguf, "orbax": load_orbax, "hf": load_hf}[kind](path, mesh=mesh, **overrides)


def load_tokenizer(path: str | Path, *, required: bool = True):
    """The tokenizer that travels with a checkpoint (GGUF metadata, HF files, or orbax `tokenizer/`)."""
    from scoder_jax.tokenizer import Tokenizer

    kind = checkpoint_kind(path)
    path = Path(path)
    where = {"gguf": path, "hf": path, "orbax": path / "tokenizer"}[kind]
    if kind != "gguf" and not (where / "tokenizer.json").exists():
        if required:
            raise CheckpointError(f"{where}: no tokenizer.json next to the checkpoint")
        return None
    return Tokenizer.load(where)


def parameter_bytes(cfg: ModelConfig) -> int:
    specs = param_specs(cfg)
    return sum(math.prod(s) for s, _ in specs.values()) * jnp.dtype(cfg.param_dtype).itemsize


__all__ = ["load_model", "load_hf", "load_gguf", "load_orbax", "save_hf", "save_orbax", "checkpoint_kind",
           "assemble", "BY_NAME"]
