"""Named model configurations, with the published sizes their parameter counts must match."""

from __future__ import annotations

from scoder_jax.errors import ConfigError
from scoder_jax.models.config import ModelConfig, RopeConfig

_DEEPSEEK = dict(arch="llama", vocab_size=32256, rope=RopeConfig("linear", theta=100000.0, factor=4.0),
                 max_position=16384, rms_norm_eps=1e-6, bos_token_id=32013, eos_token_id=32014)
_QWEN = dict(arch="qwen2", vocab_size=152064, rope=RopeConfig(theta=1000000.0), max_position=32768,
             rms_norm_eps=1e-6, qkv_bias=True, bos_token_id=None, eos_token_id=151643, pad_token_id=151643)

PRESETS: dict[str, ModelConfig] = {
    "tiny": ModelConfig(name="tiny", vocab_size=256, hidden_size=64, num_layers=2, num_heads=4, num_kv_heads=2,
                        head_dim=16, intermediate_size=128, max_position=512, rope=RopeConfig(theta=10000.0),
                        bos_token_id=1, eos_token_id=2, pad_token_id=0),
    "deepseek-coder-1.3b": ModelConfig(name="deepseek-coder-1.3b", hidden_size=2048, num_layers=24, num_heads=16,
                                       num_kv_heads=16, head_dim=128, intermediate_size=5504, **_DEEPSEEK),
    "deepseek-coder-6.7b": ModelConfig(name="deepseek-coder-6.7b", hidden_size=4096, num_layers=32, num_heads=32,
                                       num_kv_heads=32, head_dim=128, intermediate_size=11008, **_DEEPSEEK),
    "deepseek-coder-33b": ModelConfig(name="deepseek-coder-33b", hidden_size=7168, num_layers=62, num_heads=56,
                                      num_kv_heads=8, head_dim=128, intermediate_size=19200, **_DEEPSEEK),
    "qwen2.5-coder-7b": ModelConfig(name="qwen2.5-coder-7b", hidden_size=3584, num_layers=28, num_heads=28,
                                    num_kv_heads=4, head_dim=128, intermediate_size=18944, **_QWEN),
    "qwen2.5-coder-14b": ModelConfig(name="qwen2.5-coder-14b", hidden_size=5120, num_layers=48, num_heads=40,
                                     num_kv_heads=8, head_dim=128, intermediate_size=13824, **_QWEN),
    "llama-3.1-8b": ModelConfig(name="llama-3.1-8b", arch="llama", vocab_size=128256, hidden_size=4096, num_layers=32,
                                num_heads=32, num_kv_heads=8, head_dim=128, intermediate_size=14336,
                                rope=RopeConfig("llama3", theta=500000.0, factor=8.0, low_freq_factor=1.0,
                                                high_freq_factor=4.0, original_max_position=8192),
                                max_position=131072, rms_norm_eps=1e-5, bos_token_id=128000, eos_token_id=128001),
    "smollm2-135m": ModelConfig(name="smollm2-135m", arch="llama", vocab_size=49152, hidden_size=576, num_layers=30,
                                num_heads=9, num_kv_heads=3, head_dim=64, intermediate_size=1536,
                                rope=RopeConfig(theta=100000.0), max_position=8192, rms_norm_eps=1e-5,
                                tie_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=2),
}
# The tiny model with SmolLM2's 49152-token vocabulary: smoke runs with a real tokenizer.
PRESETS["tiny-smollm2-vocab"] = PRESETS["tiny"].replace(name="tiny-smollm2-vocab", vocab_size=49152, max_position=2048,
                                                        bos_token_id=1, eos_token_id=2, pad_token_id=2)
# Instruct variants share the architecture (they differ in weights and chat template only).
PRESETS["deepseek-coder-1.3b-instruct"] = PRESETS["deepseek-coder-1.3b"].replace(name="deepseek-coder-1.3b-instruct",
                                                                                 eos_token_id=32021)
PRESETS["deepseek-coder-6.7b-instruct"] = PRESETS["deepseek-coder-6.7b"].replace(name="deepseek-coder-6.7b-instruct",
                                                                                 eos_token_id=32021)
PRESETS["deepseek-coder-33b-instruct"] = PRESETS["deepseek-coder-33b"].replace(name="deepseek-coder-33b-instruct",
                                                                               eos_token_id=32021)
PRESETS["qwen2.5-coder-7b-instruct"] = PRESETS["qwen2.5-coder-7b"].replace(name="qwen2.5-coder-7b-instruct",
                                                                           eos_token_id=151645)
PRESETS["qwen2.5-coder-14b-instruct"] = PRESETS["qwen2.5-coder-14b"].replace(name="qwen2.5-coder-14b-instruct",
                                                                             eos_token_id=151645)
PRESETS["llama-3.1-8b-instruct"] = PRESETS["llama-3.1-8b"].replace(name="llama-3.1-8b-instruct", eos_token_id=128009)
PRESETS["smollm2-135m-instruct"] = PRESETS["smollm2-135m"].replace(name="smollm2-135m-instruct")

# Published parameter counts (model cards / safetensors metadata).
PUBLISHED_PARAMS = {
    "deepseek-coder-1.3b": 1.347e9,
    "deepseek-coder-6.7b": 6.740e9,
    "deepseek-coder-33b": 33.34e9,
    "qwen2.5-coder-7b": 7.62e9,
    "qwen2.5-coder-14b": 14.77e9,
    "llama-3.1-8b": 8.03e9,
    "smollm2-135m": 134.5e6,
}


def get_preset(name: str) -> ModelConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown model preset {name!r} (known: {', '.join(sorted(PRESETS))})") from None
