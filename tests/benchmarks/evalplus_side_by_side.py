"""Side by side with the real EvalPlus harness: the same HumanEval+ and MBPP+ files (written here,
in the released layout) and the same samples, scored by `evalplus.evaluate` and by
`scoder eval`; every sample's (base_status, plus_status) must agree.

Needs a Python with the `evalplus` package (PyPI; nothing else is fetched: the datasets are
passed through its HUMANEVAL_OVERRIDE_PATH / MBPP_OVERRIDE_PATH variables, its cache goes to a
temporary XDG_CACHE_HOME). For example:

    python -m venv /tmp/evalplus-venv && /tmp/evalplus-venv/bin/pip install evalplus
    python tests/benchmarks/evalplus_side_by_side.py --evalplus-python /tmp/evalplus-venv/bin/python

Both sides run with the same --min-time-limit (the evalplus 0.3.1 wheel's default is 1 s, its
repository's 4 s). HumanEval/32 (find_zero) is left out: the 0.3.1 wheel fails every sample of it
(its special oracle never marks the input as passed; fixed in the repository, which we follow).
Exit status 1 when any verdict differs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HUMANEVAL = [
    ("HumanEval/0", "def add(a: int, b: int) -> int:\n", "add", "    return a + b\n",
     [[1, 2], [-3, 3]], [[10 ** 20, 1], [7, -9]], 0),
    ("HumanEval/1", "def mean(xs: list) -> float:\n", "mean", "    return sum(xs) / len(xs)\n",
     [[[1.0, 2.0]], [[3.0]]], [[[0.1, 0.2, 0.3]], [[1e300, 1e300]]], 0),
    ("HumanEval/2", "def scale(xs: list, k: float) -> list:\n", "scale", "    return [x * k for x in xs]\n",
     [[[1.0, 2.0], 0.5]], [[[3.0, 4.0], 1.5], [[-1.0], 2.0]], 0.01),
    ("HumanEval/3", "def words(s: str) -> dict:\n", "words",
     "    out = {}\n    for w in s.split():\n        out[w] = out.get(w, 0) + 1\n    return out\n",
     [["a b a"], [""]], [["x y z x y x"], ["  spaced   out  "]], 0),
    ("HumanEval/4", "def first(xs: list):\n", "first", "    return xs[0] if xs else None\n",
     [[[1, 2]], [[]]], [[["a"]], [[None, 1]]], 0),
]
HE_SAMPLES = {
    "HumanEval/0": ["    return a + b\n", "    return a - b\n", "    return a + b if abs(a) < 1000 else 0\n",
                    "    while True:\n        pass\n", "    import itertools\n    return sum(itertools.count())\n",
                    "    print('noise')\n    return a + b\n", "    return input()\n", "    raise ValueError('no')\n",
                    "    return float(a + b)\n", "    import os\n    os._exit(0)\n"],
    "HumanEval/1": ["    return sum(xs) / len(xs)\n", "    return sum(xs) / len(xs) + 1e-7\n",
                    "    return sum(xs) / len(xs) + 1e-4\n", "    return round(sum(xs) / len(xs), 1)\n",
                    "    import statistics\n    return statistics.fmean(xs)\n"],
    "HumanEval/2": ["    return [x * k for x in xs]\n", "    return [x * k + 0.005 for x in xs]\n",
                    "    return [x * k + 0.05 for x in xs]\n", "    return tuple(x * k for x in xs)\n",
                    "    return [x * k for x in xs][:1]\n"],
    "HumanEval/3": ["    import collections\n    return dict(collections.Counter(s.split()))\n",
                    "    return {w: 1 for w in s.split()}\n", "    return {w: s.count(w) for w in s.split()}\n",
                    "    open('x', 'w')\n    return {}\n"],
    "HumanEval/4": ["    return xs[0] if xs else None\n", "    return xs[0]\n", "    return xs[:1] or None\n",
                    "    return xs and xs[0]\n"],
}
MBPP = [
    ("Mbpp/106", '"""\nAppend the list to the tuple.\n"""\n', "add_lists",
     "def add_lists(test_list, test_tup):\n    return test_tup + tuple(test_list)\n",
     [[[5, 6], [9, 10]]], [[[], [1]], [[1, 2, 3], []]], 0),
    ("Mbpp/2", '"""\nShared elements.\n"""\n', "similar_elements",
     "def similar_elements(a, b):\n    return tuple(set(a) & set(b))\n",
     [[[3, 4, 5, 6], [5, 7, 4, 10]]], [[[1, 2, 3, 4], [4, 3, 2, 1]], [[1], [2]]], 0),
    ("Mbpp/3", '"""\nIs n not prime.\n"""\n', "is_not_prime",
     "def is_not_prime(n):\n    if n < 2:\n        return True\n"
     "    return any(n % i == 0 for i in range(2, int(n ** 0.5) + 1))\n",
     [[2], [10]], [[1], [97], [100]], 0),
]
MBPP_SAMPLES = {
    "Mbpp/106": ["def add_lists(l, t):\n    return t + tuple(l)\n",
                 "def add_lists(l, t):\n    return t + tuple(l) if l else ()\n",
                 "def add_lists(l, t):\n    return list(t) + l\n"],
    "Mbpp/2": ["def similar_elements(a, b):\n    return tuple(sorted(set(a) & set(b), reverse=True))\n",
               "def similar_elements(a, b):\n    return (a[0],)\n",
               "def similar_elements(a, b):\n    return set(a) & set(b)\n"],
    "Mbpp/3": ["def is_not_prime(n):\n    return not all(n % i for i in range(2, n))\n",
               "def is_not_prime(n):\n    return n % 2 == 0\n"],
}


def _rows(tasks):
    for tid, prompt, entry, canonical, base, plus, atol in tasks:
        yield {"task_id": tid, "prompt": prompt, "entry_point": entry, "canonical_solution": canonical,
               "contract": "", "base_input": base, "plus_input": plus, "atol": atol}


def _write(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def run_evalplus(python: str, dataset: str, problems: Path, samples: Path, min_time_limit: float, work: Path) -> dict:
    env = dict(os.environ, XDG_CACHE_HOME=str(work / "xdg"),
               **{("HUMANEVAL_OVERRIDE_PATH" if dataset == "humaneval" else "MBPP_OVERRIDE_PATH"): str(problems)})
    code = ("import sys; from evalplus.evaluate import evaluate; "
            f"evaluate({dataset!r}, samples={str(samples)!r}, min_time_limit={min_time_limit}, parallel=2, "
            "i_just_wanna_run=True)")
    subprocess.run([python, "-c", code], env=env, check=True, stdout=subprocess.DEVNULL)
    for name in (samples.with_name(samples.stem + "_eval_results.json"), samples.with_suffix(".eval_results.json")):
        if name.exists():
            return json.loads(name.read_text())
    raise SystemExit("evalplus wrote no results file")


def run_scoder(benchmark: str, problems: Path, samples: Path, min_time_limit: float, out: Path) -> dict:
    subprocess.run([sys.executable, "-m", "scoder_jax.cli", "eval", "-b", benchmark, "--problems", str(problems),
                    "--samples", str(samples), "--out", str(out), "--min-time-limit", str(min_time_limit),
                    "--workers", "2"], check=True, stdout=subprocess.DEVNULL)
    return json.loads((out / "eval_results.json").read_text())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--evalplus-python", required=True, help="a Python interpreter with the evalplus package")
    ap.add_argument("--min-time-limit", type=float, default=1.0)
    args = ap.parse_args()
    differ = 0
    with tempfile.TemporaryDirectory(prefix="evalplus-sbs-") as tmp:
        work = Path(tmp)
        os.environ["SCODER_EVAL_CACHE"] = str(work / "scoder-cache")
        for benchmark, dataset, tasks, samples in (("humaneval+", "humaneval", HUMANEVAL, HE_SAMPLES),
                                                   ("mbpp+", "mbpp", MBPP, MBPP_SAMPLES)):
            problems = _write(work / f"{dataset}.jsonl", _rows(tasks))
            sample_rows = [{"task_id": tid, ("completion" if dataset == "humaneval" else "solution"): s}
                           for tid, ss in samples.items() for s in ss]
            sfile = _write(work / f"{dataset}_samples.jsonl", sample_rows)
            t0 = time.time()
            theirs = run_evalplus(args.evalplus_python, dataset, problems, sfile, args.min_time_limit, work)
            t1 = time.time()
            ours = run_scoder(benchmark, problems, sfile, args.min_time_limit, work / f"out-{dataset}")
            t2 = time.time()
            n = 0
            for tid in samples:
                for i, (a, b) in enumerate(zip(theirs["eval"][tid], ours["eval"][tid])):
                    n += 1
                    va, vb = (a["base_status"], a["plus_status"]), (b["base_status"], b["plus_status"])
                    mark = "ok" if va == vb else "DIFFERS"
                    differ += va != vb
                    print(f"{benchmark:10s} {tid:12s} #{i}  evalplus={va}  scoder={vb}  {mark}")
            print(f"{benchmark}: {n} samples; evalplus {t1 - t0:.1f} s, scoder {t2 - t1:.1f} s")
    print("all verdicts equal" if not differ else f"{differ} verdicts differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
