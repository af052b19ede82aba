"""Influence features: scoder-jax vs the LESS procedure as published, on the same tiny LLaMA + LoRA.

LESS (`less/data_selection/collect_grad_reps.py`): torch, one example at a time, loss.backward()
for the LoRA gradient, the Adam direction from the checkpoint's moments, buffered 16 at a time
and projected by TRAK's BasicProjector (a dense Rademacher matrix regenerated block by block of
128 columns from per-block seeds), then L2-normalized. scoder-jax: `FeatureFn` (vmapped
per-example gradients, Adam direction, keyed projection, normalization in one compiled function).
Same weights, same examples, same d. Each side runs in its own process, so `peak_rss_mb` is its own.

`cost_vs_step`: scoder-jax's projected per-example features of a batch over one LoRA SFT step
(the trainer's step: forward, backward, AdamW) on the same batch.

Run: python tests/benchmarks/influence.py [--examples 32 --dim 8192]
Last line: {"ratio": ours examples/s over LESS examples/s, "cost_vs_step": ..., "peak_rss_mb": {...}, ...}
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")
REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def model_config():
    from scoder_jax.models.config import LoraConfig, ModelConfig, RopeConfig

    return ModelConfig(name="bench-tiny", vocab_size=256, hidden_size=128, num_layers=4, num_heads=4, num_kv_heads=4,
                       head_dim=32, intermediate_size=512, max_position=1024, rope=RopeConfig(theta=10000.0),
                       bos_token_id=1, eos_token_id=2, pad_token_id=0,
                       lora=LoraConfig(rank=8, alpha=16.0, targets=("q", "k", "v", "o")))


def examples(n: int, seed: int = 0) -> list[dict]:
    import random

    rng = random.Random(seed)
    out = []
    for i in range(n):
        words = " ".join(rng.choice(["parse", "list", "sort", "string", "numbers", "file", "json", "tree"])
                         for _ in range(rng.randint(8, 20)))
        body = "\n".join(f"    x{j} = x{j - 1} + {rng.randint(0, 99)}" for j in range(1, rng.randint(4, 10)))
        out.append({"id": f"e{i}", "problem": f"Write a function to {words}.",
                    "solution": f"def f(x0):\n{body}\n    return x0\n"})
    return out


def setup(args):
    """(model with trained-looking LoRA, moments {name: (mu, nu)}, encoded examples)."""
    import jax
    import numpy as np
    from flax import nnx

    from scoder_jax.models.llama import Decoder
    from scoder_jax.train.config import DataConfig
    from scoder_jax.train.data import char_tokenizer, encode_record

    model = Decoder(model_config(), rngs=nnx.Rngs(0))
    rng = np.random.default_rng(0)
    moments = {}
    for t in model.cfg.lora.targets:
        b = getattr(model, f"lora_{t}_b")
        b.set_value(jax.numpy.asarray(0.02 * rng.standard_normal(b.get_value().shape), jax.numpy.float32))
        for ab in "ab":
            shape = getattr(model, f"lora_{t}_{ab}").get_value().shape
            moments[f"lora_{t}_{ab}"] = ((1e-3 * rng.standard_normal(shape)).astype(np.float32),
                                         (1e-6 * rng.random(shape)).astype(np.float32))
    tok = char_tokenizer()
    enc = [(i[:args.seq + 1], m[:args.seq + 1]) for i, m in (encode_record(r, tok, DataConfig())
                                                          for r in examples(args.examples))]
    return model, moments, enc


def run_jax(args) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np
    from flax import nnx

    from scoder_jax import parallel
    from scoder_jax.influence.grads import Examples, FeatureFn, GradConfig, Moments, call_arrays, plan_calls
    from scoder_jax.influence.projection import ProjectionConfig
    from scoder_jax.train import step as step_lib

    model, moments, enc = setup(args)
    mesh = parallel.single_device_mesh()
    ex = Examples([e[0] for e in enc], [e[1] for e in enc])
    T = args.seq
    mb = args.micro_batch
    gc = GradConfig(micro_batch=mb, microbatches=1, seq_len=T, min_len=T)
    mom = Moments({k: jnp.asarray(v[0]) for k, v in moments.items()},
                  {k: jnp.asarray(v[1]) for k, v in moments.items()}, 0.9, 0.999, 1e-8)
    out = {}
    for label, two_stage in (("dense", False), ("two_stage", True)):
        ff = FeatureFn(model, gc, ProjectionConfig(d=args.dim, two_stage=two_stage, cache_bytes=4 << 30), mesh, mom)
        calls = plan_calls(ex, T, mb, T)
        batches = [(idx, call_arrays(ex, idx, T, 1, mb)) for _, idx in calls]
        ff(batches[0][1], True)  # compile
        t0 = time.perf_counter()
        feats = np.zeros((len(ex), args.dim), np.float32)
        for idx, b in batches:
            feats[idx] = ff(b, True)[:len(idx)]
        dt = time.perf_counter() - t0
        out[label] = {"examples_per_s": len(ex) / dt, "seconds": dt}
        # one microbatch, timed alone, for cost_vs_step
        b = batches[0][1]
        out[label]["batch_s"] = min(_timed(lambda ff=ff, b=b: ff(b, True)) for _ in range(3))
        if label == "dense":
            np.save(args.features_out, feats)

    # one LoRA SFT step on the same batch (the trainer's step function: loss, grads, clip, AdamW)
    graphdef, params, frozen = step_lib.split_model(model, nnx.LoRAParam)
    from scoder_jax.train.config import OptimConfig
    from scoder_jax.train.optim import make_optimizer

    tx, _ = make_optimizer(OptimConfig(lr=1e-4), 100)
    opt_state = tx.init(params)
    step = jax.jit(step_lib.build_step(graphdef, tx, grad_accum=1))
    b = {k: jnp.asarray(v) for k, v in batches[0][1].items()}
    jax.block_until_ready(step(params, opt_state, frozen, b))
    step_s = min(_timed(lambda: jax.block_until_ready(step(params, opt_state, frozen, b))) for _ in range(3))
    out["step_s"] = step_s
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["n_lora"] = int(sum(np.prod(v[0].shape) for v in moments.values()))
    return out


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run_less(args) -> dict:
    """LESS's collect_grads with TRAK's BasicProjector, on the same model in torch."""
    import math
    import tempfile

    import numpy as np
    import torch
    import transformers
    from flax import nnx

    from scoder_jax.models.checkpoint import save_hf
    from scoder_jax.models.llama import Decoder

    torch.set_num_threads(os.cpu_count() or 1)
    model, moments, enc = setup(args)
    cfg = model.cfg
    base = Decoder(cfg.replace(lora=None), rngs=nnx.Rngs(0))
    for name in ("embed", "final_norm", "attn_norm", "wq", "wk", "wv", "wo", "mlp_norm", "w_gate", "w_up", "w_down",
                 "lm_head"):
        getattr(base, name).set_value(getattr(model, name).get_value())
    with tempfile.TemporaryDirectory() as d:
        save_hf(base, d)
        hf = transformers.LlamaForCausalLM.from_pretrained(d, torch_dtype=torch.float32)
    hf.eval()
    for p in hf.parameters():
        p.requires_grad_(False)

    class LoraLinear(torch.nn.Module):
        def __init__(self, lin, a, b, scale):
            super().__init__()
            self.lin, self.scale = lin, scale
            self.lora_A = torch.nn.Parameter(torch.tensor(np.asarray(a).reshape(-1, a.shape[-1])))
            self.lora_B = torch.nn.Parameter(torch.tensor(np.asarray(b).reshape(b.shape[0], -1)))

        def forward(self, x):
            return self.lin(x) + self.scale * (x @ self.lora_A) @ self.lora_B

    names = []
    for l, layer in enumerate(hf.model.layers):
        for t, attr in (("q", "q_proj"), ("k", "k_proj"), ("v", "v_proj"), ("o", "o_proj")):
            a = getattr(model, f"lora_{t}_a").get_value()[l]
            b = getattr(model, f"lora_{t}_b").get_value()[l]
            setattr(layer.self_attn, attr, LoraLinear(getattr(layer.self_attn, attr), a, b, cfg.lora.scale))
            names.append((l, t))
    params = [p for p in hf.parameters() if p.requires_grad]
    # Adam moments in the same parameter order (A then B of each module, layer by layer)
    avg, avg_sq = [], []
    for l, t in names:
        for ab in "ab":
            mu, nu = moments[f"lora_{t}_{ab}"]
            avg.append(torch.tensor(mu[l]).reshape(-1))
            avg_sq.append(torch.tensor(nu[l]).reshape(-1))
    avg, avg_sq = torch.cat(avg), torch.cat(avg_sq)
    n = avg.numel()

    class BasicProjector:  # TRAK's, Rademacher, block_size 128
        def __init__(self, grad_dim, proj_dim, seed, block_size=128):
            self.grad_dim, self.proj_dim, self.block_size = grad_dim, proj_dim, min(block_size, proj_dim)
            self.num_blocks = math.ceil(proj_dim / self.block_size)
            self.proj_matrix = torch.empty(grad_dim, self.block_size)
            self.generator = torch.Generator()
            self.states = []
            for i in range(self.num_blocks):
                self.generator.manual_seed(seed + int(1e3) * i)
                self.states.append(self.generator.get_state())

        def generate(self, state):
            self.generator.set_state(state)
            self.proj_matrix.bernoulli_(p=0.5, generator=self.generator)
            self.proj_matrix *= 2.0
            self.proj_matrix -= 1.0

        def project(self, grads):
            sketch = torch.zeros(grads.size(0), self.proj_dim)
            for i in range(self.num_blocks):
                self.generate(self.states[i])
                st, ed = i * self.block_size, min((i + 1) * self.block_size, self.proj_dim)
                sketch[:, st:ed] = grads @ self.proj_matrix[:, :ed - st]
            return sketch

    proj = BasicProjector(n, args.dim, 0)
    b1, b2, eps = 0.9, 0.999, 1e-8
    feats, buf = [], []
    t0 = time.perf_counter()
    for ids, mask in enc:
        ids_t = torch.tensor(ids[:args.seq + 1], dtype=torch.long)[None]
        labels = ids_t.clone()
        labels[0, ~torch.tensor(mask[:args.seq + 1])] = -100
        hf.zero_grad()
        out = hf(input_ids=ids_t, labels=labels)
        out.loss.backward()
        g = torch.cat([p.grad.view(-1) for p in params])
        m = b1 * avg + (1 - b1) * g
        v = b2 * avg_sq + (1 - b2) * g ** 2
        buf.append(m / torch.sqrt(v + eps))
        if len(buf) == 16:
            feats.append(proj.project(torch.stack(buf)))
            buf = []
    if buf:
        feats.append(proj.project(torch.stack(buf)))
    f = torch.nn.functional.normalize(torch.cat(feats), dim=1).numpy()
    dt = time.perf_counter() - t0
    np.save(args.features_out, f)
    return {"examples_per_s": len(enc) / dt, "seconds": dt, "n_lora": n,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", type=int, default=32)
    ap.add_argument("--dim", type=int, default=8192)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--micro-batch", type=int, default=16)
    ap.add_argument("--side", choices=["jax", "less"], default=None)
    ap.add_argument("--features-out", default=None)
    args = ap.parse_args()
    if args.side:
        res = run_jax(args) if args.side == "jax" else run_less(args)
        print(json.dumps(res))
        return
    import tempfile

    import numpy as np

    res = {}
    with tempfile.TemporaryDirectory() as d:
        for side in ("less", "jax"):
            cmd = [sys.executable, __file__, "--side", side, "--examples", str(args.examples), "--dim", str(args.dim),
                   "--seq", str(args.seq), "--micro-batch", str(args.micro_batch),
                   "--features-out", str(Path(d) / f"{side}.npy")]
            env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
            p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
            if p.returncode:
                raise SystemExit(f"{side} failed:\n{p.stderr[-3000:]}")
            res[side] = json.loads(p.stdout.strip().splitlines()[-1])
            print(f"{side}: {json.dumps(res[side])}", file=sys.stderr)
        fl, fj = np.load(Path(d) / "less.npy"), np.load(Path(d) / "jax.npy")
    # different random matrices, the same geometry: cosines between examples agree
    cl, cj = fl @ fl.T, fj @ fj.T
    iu = np.triu_indices(len(fl), 1)
    from scipy.stats import spearmanr

    j = res["jax"]
    out = {
        "ratio": j["dense"]["examples_per_s"] / res["less"]["examples_per_s"],
        "ratio_two_stage": j["two_stage"]["examples_per_s"] / res["less"]["examples_per_s"],
        "cost_vs_step": j["dense"]["batch_s"] / j["step_s"],
        "cost_vs_step_two_stage": j["two_stage"]["batch_s"] / j["step_s"],
        "examples_per_s": {"scoder_jax": j["dense"]["examples_per_s"], "less": res["less"]["examples_per_s"]},
        "peak_rss_mb": {"scoder_jax": j["peak_rss_mb"], "less": res["less"]["peak_rss_mb"]},
        "cosine_spearman_vs_less": float(spearmanr(cl[iu], cj[iu]).statistic),
        "n_lora_params": j["n_lora"], "d": args.dim, "examples": args.examples, "seq": args.seq,
        "micro_batch": args.micro_batch, "machine": f"{platform.machine()} {os.cpu_count()} cpus",
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
