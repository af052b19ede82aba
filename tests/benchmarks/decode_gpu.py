"""Decode throughput on an accelerator as a fraction of the memory-bandwidth bound.

A deepseek-coder-1.3b-shaped model (random weights, bf16) decodes through the sampling engine
at batch 1 and 64, with the engine's unrolled decode loop (`--unroll auto`: 4 steps per loop
iteration on GPU) and one step per iteration (`1`); each decode step must stream every weight
(and the KV cache) from memory, so the bound at batch B is (weight bytes + KV bytes read per
step) / measured bandwidth. Prints, for each batch and unroll, a readable line and one JSON
line: {"benchmark": "decode_gpu", "figure": "decode", "batch": B, "unroll": ..., "tok_s": ...,
"bound_fraction": ... (at batch 1 the target is >= 0.6), ...}.

    python tests/benchmarks/decode_gpu.py            # on a GPU / TPU host
    python tests/benchmarks/decode_gpu.py --smoke    # tiny model, seconds, runs on CPU
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


def measure_bandwidth(n_bytes: int) -> float:
    """Bytes/s of a jitted reduction over an array of n_bytes (read once)."""
    x = jnp.ones((n_bytes // 2,), jnp.bfloat16)
    f = jax.jit(lambda a: jnp.sum(a, dtype=jnp.float32))
    f(x).block_until_ready()
    best = 0.0
    for _ in range(5):  # the best of 5 trials of 20 passes: the bound must not flatter us
        t = time.perf_counter()
        for _ in range(20):
            y = f(x)
        y.block_until_ready()
        best = max(best, 20 * x.nbytes / (time.perf_counter() - t))
    del x
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true", help="tiny model, few tokens (CPU check)")
    ap.add_argument("--batches", default="1,64")
    ap.add_argument("--prompt-len", type=int, default=32)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--chunk", type=int, default=32)
    ap.add_argument("--unroll", default="auto,1",
                    help="decode steps per loop iteration, comma-separated settings (auto: the engine's choice)")
    args = ap.parse_args()

    from scoder_jax.models.config import ModelConfig
    from scoder_jax.models.llama import Decoder, count_params
    from scoder_jax.models.presets import PRESETS

    if args.smoke:
        cfg = ModelConfig(name="smoke", vocab_size=256, hidden_size=64, num_layers=2, num_heads=4, num_kv_heads=4,
                          head_dim=16, intermediate_size=128, max_position=512, param_dtype="bfloat16",
                          compute_dtype="bfloat16")
        args.new_tokens, args.prompt_len = min(args.new_tokens, 16), min(args.prompt_len, 8)
    else:
        cfg = PRESETS["deepseek-coder-1.3b"].replace(param_dtype="bfloat16", compute_dtype="bfloat16")
    model = Decoder(cfg, rngs=nnx.Rngs(0))
    n_params = count_params(cfg)
    weight_bytes = 2 * n_params - (2 * cfg.vocab_size * cfg.hidden_size)  # the embedding is gathered, not streamed
    bw = measure_bandwidth(min(1 << 31, 4 * weight_bytes))
    print(f"{jax.devices()[0].device_kind}: {bw / 1e9:.0f} GB/s measured; {cfg.name}: {n_params / 1e9:.2f}B params, "
          f"{weight_bytes / 1e9:.2f} GB streamed per step", flush=True)
    rng = np.random.default_rng(0)
    common = {"benchmark": "decode_gpu", "figure": "decode", "model": f"{cfg.name} bf16 random weights",
              "device": jax.devices()[0].device_kind, "mem_bw_gb_s": round(bw / 1e9, 1),
              "new_tokens": args.new_tokens, "chunk": args.chunk}
    for B in [int(b) for b in args.batches.split(",")]:
        prompts = [rng.integers(3, cfg.vocab_size, size=args.prompt_len).tolist() for _ in range(B)]
        for setting in args.unroll.split(","):
            print(json.dumps({**common, **decode_figure(model, cfg, B, prompts, args, setting, weight_bytes, bw)}),
                  flush=True)


def decode_figure(model, cfg, B: int, prompts: list, args, setting: str, weight_bytes: int, bw: float) -> dict:
    """Decode throughput at batch B with the loop unrolled per `setting`, against its bound."""
    from scoder_jax.generate.engine import Engine
    from scoder_jax.generate.sampling import SamplingParams

    engine = Engine(model, max_batch=B, chunk=args.chunk, unroll=setting if setting == "auto" else int(setting))
    params = SamplingParams(temperature=0.0, max_new_tokens=args.new_tokens)
    engine.generate(prompts, params)  # compile and warm up
    compile_s = engine.stats["compile_s"]
    engine.stats.clear()
    t = time.perf_counter()
    res = engine.generate(prompts, params)
    wall = time.perf_counter() - t
    n_tok = sum(len(c.tokens) for row in res for c in row)
    st = engine.stats
    step_s = st["decode_s"] / max(st["decode_steps"], 1)
    S = max(k[2] for k in engine.compiled_shapes if k[0] == "decode")
    kv_bytes = 2 * cfg.num_layers * B * S * cfg.num_kv_heads * cfg.head_dim * 2  # full cache read per step
    bound_s = (weight_bytes + kv_bytes) / bw
    frac = bound_s / step_s
    print(f"batch {B}, unroll {engine.unroll} ({setting}): {n_tok / wall:.1f} tok/s end to end, decode step "
          f"{step_s * 1e3:.2f} ms ({B / step_s:.1f} tok/s), bound {bound_s * 1e3:.2f} ms -> {frac:.1%} of the "
          f"bandwidth bound", flush=True)
    return {"batch": B, "unroll": engine.unroll, "unroll_setting": setting, "tok_s": round(B / step_s, 1),
            "end_to_end_tok_s": round(n_tok / wall, 1), "step_ms": round(step_s * 1e3, 3),
            "bound_ms": round(bound_s * 1e3, 3), "bound_fraction": round(frac, 3),
            "bound": "weights + full KV cache read once per step at the measured bandwidth",
            "weight_bytes": weight_bytes, "kv_bytes": kv_bytes, "compile_s": round(compile_s, 1)}

if __name__ == "__main__":
    main()
