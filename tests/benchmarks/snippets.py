"""Benchmark: snippet-pool throughput on the standard library, and scaling at 1x and 4x a corpus.

    python tests/benchmarks/snippets.py [--workers N] [--quick]

1. snippets/s: `build_pool` on the whole standard library of the running interpreter.
2. scaling: the library without its test suites (1x), then 1x plus three mutated copies (4x:
   called names suffixed, numbers shifted, so the copies are new text that goes through every
   stage). Each build runs in a fresh process that reports its own peak RSS and its workers'.
   `ratio` = 4 * time(1x) / time(4x): 1.0 is linear time, above 1 better than linear.

Prints one JSON line last: ratio, snippets_per_s, peak_rss_mb_1x, peak_rss_mb_4x, ...
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MBPP = ROOT.parent / "shared" / "data" / "sanitized-mbpp.json"
TEST_DIRS = ("test", "tests", "idle_test")


def _child(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT))
    from scoder_jax.data.pool import PoolConfig, build_pool

    exclude = PoolConfig().exclude + (TEST_DIRS if args.no_tests else ())
    benches = ("humaneval", "mbpp") if MBPP.exists() else ("humaneval",)
    cfg = PoolConfig(workers=args.workers, exclude=exclude, benchmarks=benches,
                     mbpp_path=str(MBPP) if MBPP.exists() else None)
    t0 = time.perf_counter()
    m = build_pool(args.sources, args.out, cfg, progress=False)
    dt = time.perf_counter() - t0
    print(json.dumps({"seconds": dt, "extracted": m["snippets"].get("extracted", 0), "kept": m["output"]["snippets"],
                      "documents": m["documents"].get("seen", 0),
                      "main_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "worker_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))


def run_build(sources: list[str], out: Path, workers: int, no_tests: bool) -> dict:
    cmd = [sys.executable, __file__, "--child", "--out", str(out), "--workers", str(workers)] + \
          (["--no-tests"] if no_tests else []) + ["--sources", *sources]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        sys.exit(f"build failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


_CALL = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\(")
_NUM = re.compile(r"(?<![\w.])(\d+)(?![\w.])")


def mutated_copy(src: Path, dst: Path, k: int) -> None:
    for path in src.rglob("*.py"):
        rel = path.relative_to(src)
        if any(part in TEST_DIRS or part in ("site-packages", "__pycache__") for part in rel.parts):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        text = _CALL.sub(lambda m: f"{m.group(1)}_m{k}(" if m.group(1) not in ("def", "class", "print")
                         else m.group(0), text)
        text = _NUM.sub(lambda m: str(int(m.group(1)) + k), text)
        out = dst / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--sources", nargs="*", default=[])
    ap.add_argument("--out")
    ap.add_argument("--no-tests", action="store_true")
    ap.add_argument("--workers", type=int, default=0, help="processes (0: all cores)")
    ap.add_argument("--quick", action="store_true", help="skip the whole-library throughput run")
    args = ap.parse_args()
    if args.child:
        _child(args)
        return
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    tmp = Path(tempfile.mkdtemp(prefix="snippets-bench-"))
    try:
        result: dict = {"cores": os.cpu_count(), "workers": args.workers or os.cpu_count(),
                        "python": sys.version.split()[0]}
        if not args.quick:
            full = run_build([str(stdlib)], tmp / "full", args.workers, no_tests=False)
            result.update(stdlib_seconds=round(full["seconds"], 2), stdlib_extracted=full["extracted"],
                          stdlib_kept=full["kept"], snippets_per_s=round(full["extracted"] / full["seconds"], 1),
                          kept_per_s=round(full["kept"] / full["seconds"], 1))
            print(f"stdlib: {full['kept']} snippets kept of {full['extracted']} in {full['seconds']:.1f}s",
                  file=sys.stderr)
        for k in (1, 2, 3):
            mutated_copy(stdlib, tmp / f"copy{k}", k)
        one = run_build([str(stdlib)], tmp / "x1", args.workers, no_tests=True)
        four = run_build([str(stdlib)] + [str(tmp / f"copy{k}") for k in (1, 2, 3)], tmp / "x4", args.workers,
                         no_tests=True)
        for name, r in (("1x", one), ("4x", four)):
            print(f"{name}: {r['documents']} documents, {r['extracted']} snippets extracted, {r['kept']} kept, "
                  f"{r['seconds']:.1f}s, peak RSS main {r['main_rss_mb']:.0f} MB, worker {r['worker_rss_mb']:.0f} MB",
                  file=sys.stderr)
        if "snippets_per_s" not in result:
            result["snippets_per_s"] = round(one["extracted"] / one["seconds"], 1)
        result.update(
            ratio=round(4 * one["seconds"] / four["seconds"], 3),
            time_1x_s=round(one["seconds"], 2), time_4x_s=round(four["seconds"], 2),
            extracted_1x=one["extracted"], extracted_4x=four["extracted"], kept_1x=one["kept"], kept_4x=four["kept"],
            peak_rss_mb_1x=round(one["main_rss_mb"], 1), peak_rss_mb_4x=round(four["main_rss_mb"], 1),
            worker_peak_rss_mb_1x=round(one["worker_rss_mb"], 1), worker_peak_rss_mb_4x=round(four["worker_rss_mb"], 1))
        print(json.dumps(result, sort_keys=True))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
