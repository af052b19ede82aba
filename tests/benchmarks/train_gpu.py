"""MFU of a full fine-tuning step of a deepseek-coder-1.3b-shaped model in bf16, on an accelerator.

Random weights (fp32 master parameters, bf16 compute), AdamW, packed rows of `--seq-len`
positions (samples of instruction lengths), the scoder-jax training step (jit with shardings,
donation, AOT compile) over a data-parallel mesh of all local devices. No downloads.

MFU = model FLOPs per second (6 N + 12 L H D T per token, scoder_jax.train.metrics) over the
device's published dense bf16 peak (`--peak-tflops` to override): the figure's fraction of its
bound. `--attention` picks the attention (auto | xla | flash | splash | cudnn,
scoder_jax/models/attention_select.py); `attention_ran` says which kernel the step actually ran
(a kernel that cannot run here falls back to xla). `--smoke` runs a tiny shape on CPU (for
tests), with the Pallas kernels in their interpreter and the cuDNN call emulated by jax's XLA
implementation, so every option's code path runs. Last line, one JSON object: {"benchmark":
"train_gpu", "figure": "train_mfu", "attention": ..., "attention_ran": ..., "mfu": ...,
"bound_fraction": ..., "tokens_per_s": ..., ...}
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scoder_jax.models.config import ATTENTION_IMPLS  # noqa: E402  (no jax import: the platform is set below)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="deepseek-coder-1.3b")
    ap.add_argument("--seq-len", type=int, default=2048)
    ap.add_argument("--rows", type=int, default=8, help="rows per step per device")
    ap.add_argument("--grad-accum", type=int, default=1)
    ap.add_argument("--remat", default="dots_with_no_batch_dims_saveable")
    ap.add_argument("--loss-chunk", type=int, default=512)
    ap.add_argument("--attention", default="auto", choices=ATTENTION_IMPLS,
                    help="the no-cache attention (scoder_jax/models/attention_select.py)")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--peak-tflops", type=float, default=None)
    ap.add_argument("--smoke", action="store_true", help="tiny shapes on CPU")
    args = ap.parse_args()

    import os

    if args.smoke:
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax
    import numpy as np
    from flax import nnx

    from scoder_jax import parallel
    from scoder_jax.models import attention_select, cudnn_attention, flash, splash
    from scoder_jax.models.presets import get_preset
    from scoder_jax.train import step as step_lib
    from scoder_jax.train.config import OptimConfig
    from scoder_jax.train.data import make_row
    from scoder_jax.train.metrics import peak_flops_per_device, train_flops_per_token
    from scoder_jax.train.optim import make_optimizer
    from scoder_jax.train.trainer import init_model

    if args.smoke:
        args.preset, args.seq_len, args.rows, args.steps, args.warmup = "tiny", 128, 2, 2, 1
        args.loss_chunk = min(args.loss_chunk, 64)
        flash.INTERPRET = splash.INTERPRET = cudnn_attention.EMULATE = True
    cfg = get_preset(args.preset).replace(param_dtype="float32", compute_dtype="bfloat16", remat=args.remat,
                                         attention=args.attention)
    attention_ran = attention_select.kernel_for(cfg, args.seq_len) or "xla"
    n_dev = jax.device_count()
    mesh = parallel.make_mesh(data=-1)
    model = init_model(cfg, mesh, 0)
    graphdef, params, frozen = step_lib.split_model(model, nnx.Param)
    del model
    p_sh, f_sh = step_lib.shardings_of(nnx.merge(graphdef, params, frozen), nnx.Param, mesh)
    tx, _ = make_optimizer(OptimConfig(lr=1e-5, warmup_steps=10, weight_decay=0.01), 1000)
    o_sh = step_lib.opt_state_shardings(tx, params, p_sh, mesh)
    opt_state = jax.jit(tx.init, out_shardings=o_sh)(params)
    bsh = step_lib.batch_sharding(mesh)
    rows = args.rows * n_dev
    micro = rows // args.grad_accum
    jitted = step_lib.jit_step(step_lib.build_step(graphdef, tx, grad_accum=args.grad_accum,
                                                   loss_chunk=args.loss_chunk), p_sh, o_sh, f_sh, bsh)
    t0 = time.time()
    compiled, mem = step_lib.compile_step(
        jitted, step_lib.abstract_like(params, p_sh), step_lib.abstract_like(opt_state, o_sh),
        step_lib.abstract_like(frozen, f_sh), step_lib.abstract_batch(args.grad_accum, micro, args.seq_len, bsh))
    compile_s = time.time() - t0
    print(f"compiled in {compile_s:.1f}s; memory per device (MiB): "
          + ", ".join(f"{k} {v / 2**20:.0f}" for k, v in mem.items()), file=sys.stderr, flush=True)
    step_lib.check_fits(mem)

    # instruction-length samples (random ids, loss on the second half of each), packed first-fit
    # into rows by the trainer's packer
    from scoder_jax.train.data import pack

    rng = np.random.default_rng(0)
    lens = np.clip(rng.lognormal(np.log(400), 0.6, 8 * rows * args.seq_len // 400), 32, args.seq_len + 1).astype(int)
    samples = [rng.integers(3, cfg.vocab_size, n).astype(np.int32) for n in lens]
    packed = pack(lens - 1, np.arange(len(lens)), args.seq_len, window=64)
    # the first rows of an epoch's packing (the steady state; only an epoch's last rows are emptier)
    host = [make_row([samples[i] for i in r], [np.arange(lens[i]) >= lens[i] // 2 for i in r], args.seq_len)
            for r in packed[:rows]]
    tokens = int(sum((r["segment_ids"] > 0).sum() for r in host))
    batch = {k: jax.device_put(np.stack([r[k] for r in host]).reshape(args.grad_accum, micro, -1), bsh)
             for k in host[0]}
    times = []
    for i in range(args.warmup + args.steps):
        t = time.perf_counter()
        params, opt_state, m = compiled(params, opt_state, frozen, batch)
        float(m["loss"])
        if i >= args.warmup:
            times.append(time.perf_counter() - t)
    step_s = float(np.median(times))
    peak, src = peak_flops_per_device("bfloat16", args.peak_tflops)
    flops_tok = train_flops_per_token(cfg, args.seq_len)
    tps = tokens / step_s
    mfu = tps * flops_tok / (peak * n_dev)
    print(json.dumps({
        "benchmark": "train_gpu", "figure": "train_mfu", "attention": args.attention, "attention_ran": attention_ran,
        "mfu": mfu, "bound_fraction": mfu, "bound": "dense bf16 peak FLOP/s",
        "tokens_per_s": tps, "step_s": step_s, "tokens_per_step": tokens,
        "row_fill": tokens / (rows * args.seq_len),
        "preset": args.preset, "params": int(sum(x.size for x in jax.tree.leaves(params))),
        "seq_len": args.seq_len, "rows_per_device": args.rows, "grad_accum": args.grad_accum, "remat": args.remat,
        "loss_chunk": args.loss_chunk, "devices": n_dev, "device": jax.devices()[0].device_kind,
        "peak_tflops_per_device": peak / 1e12, "peak_source": src, "compile_s": compile_s,
        "memory_mib": {k: v / 2**20 for k, v in mem.items()}, "final_loss": float(m["loss"]),
    }))


if __name__ == "__main__":
    main()
