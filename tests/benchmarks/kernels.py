"""The kernels under the CPU benchmarks: XLA:CPU (what scoder-jax compiles to) against torch's
CPU kernels (what the transformers references run), same shapes, same process, same threads.

`train.py` and `sampling.py` compare whole programs; this breaks their time down to the
operations that dominate it, so a gap in a ratio can be told apart from a gap in the kernels
underneath. Shapes (fp32):

  train   the 27.7M LLaMA of `train.py` at 4 x 512 positions: the projections' forward
          (X W), input gradient (dY W^T) and weight gradient (X^T dY), and the lm-head.
  decode  SmolLM2-135M at 64 rows (`sampling.py`'s decode step): q/k/v, o, gate/up, down and
          the lm-head projections (M = 64), and the attention over 512 cache slots
          (3 kv heads x 3 query heads of 64: scores q.K and the weighted sum p.V).

Operands stay in cache between repetitions (both sides alike), so the figures are each
library's best case. Each figure is the median of `--reps` timings of `--inner` calls.

    python tests/benchmarks/kernels.py [--reps 9] [--inner 5]

Last line: {"benchmark": "kernels", "geomean_ratio": xla / torch over all shapes, "rows": [...]}
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

# (group, name, einsum, lhs shape, rhs shape)
CASES = [
    ("train", "gate/up  X W", "mk,kn->mn", (2048, 512), (512, 1408)),
    ("train", "gate/up  dY W^T", "mn,kn->mk", (2048, 1408), (512, 1408)),
    ("train", "gate/up  X^T dY", "mk,mn->kn", (2048, 512), (2048, 1408)),
    ("train", "down  X W", "mk,kn->mn", (2048, 1408), (1408, 512)),
    ("train", "q/k/v/o  X W", "mk,kn->mn", (2048, 512), (512, 512)),
    ("train", "q/k/v/o  X^T dY", "mk,mn->kn", (2048, 512), (2048, 512)),
    ("train", "lm-head  X W", "mk,kn->mn", (2048, 512), (512, 8192)),
    ("decode", "q/o  x W", "mk,kn->mn", (64, 576), (576, 576)),
    ("decode", "k/v  x W", "mk,kn->mn", (64, 576), (576, 192)),
    ("decode", "gate/up  x W", "mk,kn->mn", (64, 576), (576, 1536)),
    ("decode", "down  x W", "mk,kn->mn", (64, 1536), (1536, 576)),
    ("decode", "lm-head  x W", "mk,kn->mn", (64, 576), (576, 49152)),
    ("decode", "attention q.K", "bkgd,bkds->bkgs", (64, 3, 3, 64), (64, 3, 64, 512)),
    ("decode", "attention p.V", "bkgs,bksd->bkgd", (64, 3, 3, 512), (64, 3, 512, 64)),
]


def flops(eq: str, a: tuple, b: tuple) -> int:
    dims = {}
    lhs, rhs = eq.split("->")[0].split(",")
    for spec, shape in ((lhs, a), (rhs, b)):
        dims.update(zip(spec, shape))
    return 2 * math.prod(dims.values())


def median_seconds(call, sync, reps: int, inner: int) -> float:
    sync(call())
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(inner):
            out = call()
        sync(out)
        times.append((time.perf_counter() - t) / inner)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--inner", type=int, default=5)
    args = ap.parse_args()

    import jax
    import jax.numpy as jnp
    import numpy as np
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    rng = np.random.default_rng(0)
    rows = []
    for group, name, eq, sa, sb in CASES:
        a, b = rng.standard_normal(sa, np.float32), rng.standard_normal(sb, np.float32)
        ja, jb = jnp.asarray(a), jnp.asarray(b)
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        f = jax.jit(lambda x, y, eq=eq: jnp.einsum(eq, x, y))
        np.testing.assert_allclose(np.asarray(f(ja, jb)), torch.einsum(eq, ta, tb).numpy(), rtol=1e-3, atol=1e-2)
        n = flops(eq, sa, sb)
        with torch.no_grad():
            t_torch = median_seconds(lambda eq=eq, ta=ta, tb=tb: torch.einsum(eq, ta, tb), lambda o: None,
                                     args.reps, args.inner)
        t_xla = median_seconds(lambda f=f, ja=ja, jb=jb: f(ja, jb), lambda o: o.block_until_ready(),
                               args.reps, args.inner)
        row = {"group": group, "op": name, "einsum": eq, "shapes": [list(sa), list(sb)],
               "xla_gflop_s": round(n / t_xla / 1e9, 1), "torch_gflop_s": round(n / t_torch / 1e9, 1),
               "ratio": round(t_torch / t_xla, 3)}
        rows.append(row)
        print(f"{group:6s} {name:18s} {str(sa):>16s} x {str(sb):<18s} xla {row['xla_gflop_s']:7.1f}  "
              f"torch {row['torch_gflop_s']:7.1f} GFLOP/s  ratio {row['ratio']:.2f}", flush=True)

    def geomean(rs):
        return round(math.exp(statistics.fmean(math.log(r["ratio"]) for r in rs)), 3)

    print(json.dumps({
        "benchmark": "kernels", "geomean_ratio": geomean(rows),
        "geomean_ratio_train": geomean([r for r in rows if r["group"] == "train"]),
        "geomean_ratio_decode": geomean([r for r in rows if r["group"] == "decode"]),
        "threads": torch.get_num_threads(), "jax": jax.__version__, "torch": torch.__version__.split("+")[0],
        "device": jax.devices()[0].device_kind, "rows": rows,
    }))


if __name__ == "__main__":
    main()
