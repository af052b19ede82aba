"""SFT throughput: scoder-jax's trainer against a plain transformers + torch training loop.

Both train the same ~30M-parameter LLaMA (random weights, fp32, AdamW) on the same
instruction-length mix of pre-tokenized samples (prompt + response, loss on the response),
on this machine's CPUs, in one process. scoder-jax packs samples into rows of `--seq-len`
positions; the reference pads each batch of samples to its longest, as a transformers user
writes it. The figure is non-padding tokens per second over the timed steps (after warmup).

`mfu` is scoder-jax's model FLOPs per second (6 N + 12 L H D T per token, see
scoder_jax.train.metrics) over the dense fp32 matmul throughput measured in this process.

Last line: {"benchmark": "train", "ratio": jax_tps / torch_tps, "mfu": ..., ...}
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402


def model_config(vocab: int):
    from scoder_jax.models.config import ModelConfig, RopeConfig

    return ModelConfig(name="bench-30m", vocab_size=vocab, hidden_size=512, num_layers=6, num_heads=8,
                       num_kv_heads=8, head_dim=64, intermediate_size=1408, max_position=2048,
                       rope=RopeConfig(theta=10000.0), bos_token_id=1, eos_token_id=2, pad_token_id=0)


def instruction_mix(n: int, vocab: int, max_len: int, seed: int = 0) -> list[dict]:
    """Prompt and response lengths log-normal around 80 and 160 tokens (OSS-Instruct-like), capped."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        p = int(np.clip(rng.lognormal(np.log(80), 0.6), 8, max_len // 2))
        r = int(np.clip(rng.lognormal(np.log(160), 0.7), 8, max_len - p - 1))
        ids = [1] + rng.integers(3, vocab, p + r).tolist()
        mask = [0] * (p + 1) + [1] * r
        out.append({"input_ids": ids, "loss_mask": mask})
    return out


def bench_jax(recs, cfg_model, args) -> dict:
    from scoder_jax.models.checkpoint import save_orbax
    from scoder_jax.models.presets import PRESETS  # noqa: F401
    from scoder_jax.train.config import CheckpointConfig, MeshConfig, OptimConfig, TrainConfig
    from scoder_jax.train.trainer import init_model, train
    from scoder_jax import parallel

    tmp = Path(tempfile.mkdtemp(prefix="bench-train-"))
    model_dir = tmp / "model"
    save_orbax(init_model(cfg_model, parallel.single_device_mesh(), 0), model_dir)
    cfg = TrainConfig(model=str(model_dir), seq_len=args.seq_len, batch_size=args.rows, epochs=1,
                      max_steps=args.warmup + args.steps, progress=False, tensorboard=False, log_every=1,
                      optim=OptimConfig(lr=1e-4, warmup_steps=0, clip_norm=1.0, weight_decay=0.01),
                      mesh=MeshConfig(data=1, num_devices=1), checkpoint=CheckpointConfig(keep=1),
                      remat=args.remat, loss_chunk=args.loss_chunk, scan_unroll=args.scan_unroll)
    try:
        summary = train(cfg, recs, tmp / "run")
        logs = [json.loads(line) for line in (tmp / "run" / "metrics.jsonl").read_text().splitlines()]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    steps = [r for r in logs if "loss" in r][args.warmup:]
    tokens = sum(r["tokens"] for r in steps)
    secs = sum(r["step_s"] for r in steps)
    return {"tokens_per_s": tokens / secs, "mfu_logged": float(np.mean([r["mfu"] for r in steps])),
            "steps": len(steps), "tokens": tokens, "seconds": secs, "compile_s": summary["compile_s"],
            "final_loss": summary["final_loss"]}


def bench_torch(recs, cfg_model, args, n_tokens_target: int) -> dict:
    import torch
    import transformers

    from scoder_jax.models.config import to_hf_config

    torch.manual_seed(0)
    hf = transformers.LlamaConfig(**{k: v for k, v in to_hf_config(cfg_model).items()
                                     if k not in ("architectures", "torch_dtype", "dtype")})
    model = transformers.LlamaForCausalLM(hf).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)

    def batches():
        for i in range(0, len(recs), args.torch_batch):
            chunk = recs[i:i + args.torch_batch]
            n = max(len(r["input_ids"]) for r in chunk)
            ids = torch.zeros((len(chunk), n), dtype=torch.long)
            att = torch.zeros((len(chunk), n), dtype=torch.long)
            labels = torch.full((len(chunk), n), -100, dtype=torch.long)
            for j, r in enumerate(chunk):
                x = torch.tensor(r["input_ids"])
                ids[j, :len(x)] = x
                att[j, :len(x)] = 1
                m = torch.tensor(r["loss_mask"], dtype=torch.bool)
                labels[j, :len(x)] = torch.where(m, x, torch.tensor(-100))
            yield ids, att, labels

    tokens, secs, done = 0, 0.0, 0
    for ids, att, labels in batches():
        t0 = time.perf_counter()
        out = model(input_ids=ids, attention_mask=att, labels=labels)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        dt = time.perf_counter() - t0
        done += 1
        if done > args.warmup:
            tokens += int(att.sum())  # non-padding input tokens, counted like scoder-jax's
            secs += dt
        if done > args.warmup and tokens >= n_tokens_target:
            break
    return {"tokens_per_s": tokens / secs, "steps": done - args.warmup, "tokens": tokens, "seconds": secs,
            "torch_threads": torch.get_num_threads()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--rows", type=int, default=4, help="packed rows per scoder-jax step")
    ap.add_argument("--torch-batch", type=int, default=8, help="samples per reference step")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--samples", type=int, default=400)
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--remat", default="none")
    ap.add_argument("--loss-chunk", type=int, default=0)
    ap.add_argument("--scan-unroll", type=int, default=6, help="layers per iteration of the layer scan (6: all)")
    args = ap.parse_args()

    import jax

    from scoder_jax.models.llama import count_params
    from scoder_jax.train.metrics import measured_matmul_flops, train_flops_per_token

    cfg_model = model_config(args.vocab)
    recs = instruction_mix(args.samples, args.vocab, args.seq_len)
    peak = measured_matmul_flops()
    j = bench_jax(recs, cfg_model, args)
    t = bench_torch(recs, cfg_model, args, j["tokens"])
    peak_after = measured_matmul_flops.__wrapped__()
    flops_tok = train_flops_per_token(cfg_model, args.seq_len)
    peak = max(peak, peak_after)
    mfu = j["tokens_per_s"] * flops_tok / peak
    lengths = [len(r["input_ids"]) for r in recs]
    print(json.dumps({
        "benchmark": "train", "ratio": j["tokens_per_s"] / t["tokens_per_s"], "mfu": mfu,
        "scoder_jax_tokens_per_s": j["tokens_per_s"], "torch_tokens_per_s": t["tokens_per_s"],
        "params": count_params(cfg_model), "flops_per_token": flops_tok, "peak_matmul_gflops": peak / 1e9,
        "seq_len": args.seq_len, "rows": args.rows, "torch_batch": args.torch_batch,
        "mean_sample_tokens": float(np.mean(lengths)), "jax": j, "torch": t,
        "device": jax.devices()[0].device_kind, "cpus": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
