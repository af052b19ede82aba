"""Model configuration for the LLaMA family, and its translation to and from Hugging Face.

One frozen dataclass describes every decoder the project runs (LLaMA 1-3, DeepSeek-Coder,
Qwen2/2.5, SmolLM2). `from_hf_config` reads both forms of `config.json`: transformers 4
(`rope_theta` + `rope_scaling` with `type` or `rope_type`) and transformers 5
(`rope_parameters`); `to_hf_config` writes a file both versions read.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from scoder_jax.errors import CheckpointError

ROPE_TYPES = ("default", "linear", "dynamic", "llama3")
ARCHITECTURES = {"LlamaForCausalLM": "llama", "Qwen2ForCausalLM": "qwen2", "MistralForCausalLM": "llama"}
Dtype = Literal["float32", "bfloat16", "float16"]
DTYPES: tuple[str, ...] = get_args(Dtype)
RematPolicy = Literal["none", "full", "dots_saveable", "dots_with_no_batch_dims_saveable"]
REMAT_POLICIES: tuple[str, ...] = get_args(RematPolicy)
# no-cache attention (models/attention_select.py): auto (by backend and shape), chunked einsums, the Pallas
# flash kernel (GPU), the Pallas splash kernel (TPU), cuDNN's fused attention (GPU); a kernel that cannot run
# here falls back to xla
AttentionImpl = Literal["auto", "xla", "flash", "splash", "cudnn"]
ATTENTION_IMPLS: tuple[str, ...] = get_args(AttentionImpl)


@dataclass(frozen=True)
class RopeConfig:
    """Rotary embedding frequencies, with the scalings transformers names."""

    type: str = "default"  # default | linear | dynamic | llama3
    theta: float = 10000.0
    factor: float = 1.0  # linear, dynamic, llama3
    low_freq_factor: float = 1.0  # llama3
    high_freq_factor: float = 4.0  # llama3
    original_max_position: int | None = None  # llama3, dynamic (defaults to max_position)


@dataclass(frozen=True)
class LoraConfig:
    """Low-rank adapters on the named projections (q, k, v, o, gate, up, down)."""

    rank: int = 8
    alpha: float = 16.0
    targets: tuple[str, ...] = ("q", "k", "v", "o")

    @property
    def scale(self) -> float:
        return self.alpha / self.rank


@dataclass(frozen=True)
class ModelConfig:
    name: str = "custom"
    arch: str = "llama"  # llama | qwen2 (only changes the HF class names written on export)
    vocab_size: int = 32000
    hidden_size: int = 4096
    num_layers: int = 32
    num_heads: int = 32
    num_kv_heads: int = 32
    head_dim: int = 128
    intermediate_size: int = 11008
    rope: RopeConfig = field(default_factory=RopeConfig)
    rms_norm_eps: float = 1e-6
    max_position: int = 4096
    tie_embeddings: bool = False
    qkv_bias: bool = False
    o_bias: bool = False
    bos_token_id: int | None = 1
    eos_token_id: int | None = 2
    pad_token_id: int | None = None
    param_dtype: str = "float32"
    compute_dtype: str = "float32"
    remat: str = "none"
    scan_unroll: int = 1  # layers per iteration of the layer scan (num_layers: straight-line code)
    attention: AttentionImpl = "auto"  # one of ATTENTION_IMPLS
    lora: LoraConfig | None = None

    def __post_init__(self):
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_heads {self.num_heads} is not a multiple of num_kv_heads {self.num_kv_heads}")
        if self.rope.type not in ROPE_TYPES:
            raise ValueError(f"rope type {self.rope.type!r} is not one of {ROPE_TYPES}")
        for f in ("param_dtype", "compute_dtype"):
            if getattr(self, f) not in DTYPES:
                raise ValueError(f"{f} {getattr(self, f)!r} is not one of {DTYPES}")
        if self.remat not in REMAT_POLICIES:
            raise ValueError(f"remat {self.remat!r} is not one of {REMAT_POLICIES}")
        if self.scan_unroll < 1:
            raise ValueError(f"scan_unroll must be at least 1, got {self.scan_unroll}")
        if self.attention not in ATTENTION_IMPLS:
            raise ValueError(f"attention {self.attention!r} is not one of {ATTENTION_IMPLS}")

    def replace(self, **kw) -> "ModelConfig":
        return dataclasses.replace(self, **kw)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        d = dict(d)
        d["rope"] = RopeConfig(**d.get("rope", {}))
        if d.get("lora") is not None:
            lora = dict(d["lora"])
            lora["targets"] = tuple(lora.get("targets", LoraConfig.targets))
            d["lora"] = LoraConfig(**lora)
        return cls(**d)


# ----------------------------------------------------------------------------- HF config.json


def _rope_from_hf(hf: dict, where: str) -> RopeConfig:
    """Reads rope settings from transformers 5 `rope_parameters` or 4 `rope_theta`/`rope_scaling`."""
    params = hf.get("rope_parameters")
    key = "rope_parameters"
    if params is None:
        params = dict(hf.get("rope_scaling") or {})
        key = "rope_scaling"
        params.setdefault("rope_theta", hf.get("rope_theta", 10000.0))
    params = dict(params)
    rope_type = params.get("rope_type", params.get("type", "default"))
    field_name = f"{key}.{'rope_type' if 'rope_type' in params else 'type'}"
    if rope_type not in ROPE_TYPES:
        raise CheckpointError(
            f"{where}: field '{field_name}' = {rope_type!r} is not supported (supported: {', '.join(ROPE_TYPES)})"
        )
    theta = float(params.get("rope_theta", hf.get("rope_theta", 10000.0)))
    return RopeConfig(
        type=rope_type,
        theta=theta,
        factor=float(params.get("factor", 1.0)),
        low_freq_factor=float(params.get("low_freq_factor", 1.0)),
        high_freq_factor=float(params.get("high_freq_factor", 4.0)),
        original_max_position=params.get("original_max_position_embeddings"),
    )


def from_hf_config(hf: dict, where: str = "config.json", **overrides: Any) -> ModelConfig:
    """Builds a ModelConfig from a parsed HF `config.json`; `where` names the file in errors."""
    archs = hf.get("architectures") or []
    model_type = hf.get("model_type")
    arch = None
    for a in archs:
        if a in ARCHITECTURES:
            arch = ARCHITECTURES[a]
    if arch is None and not archs and model_type in ("llama", "qwen2", "mistral"):
        arch = "qwen2" if model_type == "qwen2" else "llama"
    if arch is None:
        raise CheckpointError(
            f"{where}: field 'architectures' = {archs or model_type!r} is not supported "
            f"(supported: {', '.join(ARCHITECTURES)})"
        )
    if hf.get("mlp_bias"):
        raise CheckpointError(f"{where}: field 'mlp_bias' = true is not supported")
    if hf.get("sliding_window") and hf.get("use_sliding_window", model_type == "mistral"):
        raise CheckpointError(f"{where}: field 'sliding_window' (sliding-window attention) is not supported")
    try:
        hidden = int(hf["hidden_size"])
        heads = int(hf["num_attention_heads"])
        cfg = dict(
            name=hf.get("_name_or_path") or model_type or "hf",
            arch=arch,
            vocab_size=int(hf["vocab_size"]),
            hidden_size=hidden,
            num_layers=int(hf["num_hidden_layers"]),
            num_heads=heads,
            num_kv_heads=int(hf.get("num_key_value_heads") or heads),
            head_dim=int(hf.get("head_dim") or hidden // heads),
            intermediate_size=int(hf["intermediate_size"]),
            rope=_rope_from_hf(hf, where),
            rms_norm_eps=float(hf.get("rms_norm_eps", 1e-6)),
            max_position=int(hf.get("max_position_embeddings", 4096)),
            tie_embeddings=bool(hf.get("tie_word_embeddings", False)),
            qkv_bias=bool(arch == "qwen2" or hf.get("attention_bias", False)),
            o_bias=bool(arch == "llama" and hf.get("attention_bias", False)),
            bos_token_id=_first_id(hf.get("bos_token_id")),
            eos_token_id=_first_id(hf.get("eos_token_id")),
            pad_token_id=_first_id(hf.get("pad_token_id")),
        )
    except KeyError as e:
        raise CheckpointError(f"{where}: missing field {e.args[0]!r}") from None
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{where}: bad value ({e})") from None
    cfg.update(overrides)
    try:
        return ModelConfig(**cfg)
    except ValueError as e:
        raise CheckpointError(f"{where}: {e}") from None


def _first_id(v):
    if isinstance(v, list):
        return int(v[0]) if v else None
    return None if v is None else int(v)


def read_hf_config(model_dir: str | Path, **overrides: Any) -> ModelConfig:
    path = Path(model_dir) / "config.json"
    if not path.exists():
        raise CheckpointError(f"{path}: no such file (a Hugging Face model directory needs config.json)")
    try:
        hf = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: malformed JSON at line {e.lineno}: {e.msg}") from None
    return from_hf_config(hf, where=str(path), **overrides)


def to_hf_config(cfg: ModelConfig, *, torch_dtype: str = "float32") -> dict:
    """A `config.json` dict that transformers 4 and 5 both load as the same model."""
    arch = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM"}[cfg.arch]
    rope: dict[str, Any] = {"rope_type": cfg.rope.type}
    if cfg.rope.type != "default":
        rope["factor"] = cfg.rope.factor
    if cfg.rope.type == "llama3":
        rope.update(low_freq_factor=cfg.rope.low_freq_factor, high_freq_factor=cfg.rope.high_freq_factor)
    if cfg.rope.original_max_position is not None:
        rope["original_max_position_embeddings"] = cfg.rope.original_max_position
    hf: dict[str, Any] = {
        "architectures": [arch],
        "model_type": cfg.arch,
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.hidden_size,
        "num_hidden_layers": cfg.num_layers,
        "num_attention_heads": cfg.num_heads,
        "num_key_value_heads": cfg.num_kv_heads,
        "head_dim": cfg.head_dim,
        "intermediate_size": cfg.intermediate_size,
        "hidden_act": "silu",
        "rms_norm_eps": cfg.rms_norm_eps,
        "max_position_embeddings": cfg.max_position,
        "tie_word_embeddings": cfg.tie_embeddings,
        "rope_theta": cfg.rope.theta,
        "rope_scaling": None if cfg.rope.type == "default" else rope,
        "rope_parameters": {**rope, "rope_theta": cfg.rope.theta},
        "bos_token_id": cfg.bos_token_id,
        "eos_token_id": cfg.eos_token_id,
        "pad_token_id": cfg.pad_token_id,
        "torch_dtype": torch_dtype,
        "dtype": torch_dtype,
        "use_cache": True,
    }
    if cfg.arch == "llama":
        hf["attention_bias"] = cfg.qkv_bias
        hf["mlp_bias"] = False
        if cfg.qkv_bias != cfg.o_bias:
            raise CheckpointError("LLaMA export: q/k/v bias without o bias has no transformers equivalent")
    else:
        hf["use_sliding_window"] = False
    return hf
