"""`results.json`: one evaluation's headline, the same keys for every benchmark, so
`scoder compare` and the run report read any of them.

    {
      "benchmark": "humaneval+",            # humaneval | mbpp | humaneval+ | mbpp+ | livecodebench | <file stem>
      "problems_file": "HumanEvalPlus.jsonl", "problems_sha256": "...",
      "samples": "samples.jsonl" | null,     # scored samples file, or
      "model": "ckpt/" | null,               # the checkpoint that wrote them
      "decoding": {"n", "temperature", "top_p", "max_new_tokens", "prompt"} | null,
      "n_problems": 164, "n_samples": 164,
      "pass_at_k": {"base": {"pass@1": 0.5}, "plus": {"pass@1": 0.4}},   # "plus" for EvalPlus only
      "by_difficulty": {"easy": {"pass@1": ..., "n_problems": ...}, ...},  # LiveCodeBench only
      "window": {"since": "2024-08-01", "until": null},                    # LiveCodeBench only
      "settings": {...}, "date": "2026-12-01 10:00", "scoder_version": "0.1.0"
    }
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

from scoder_jax.errors import DataError
from scoder_jax.io import write_json_atomic

RESULTS_NAME = "results.json"


def file_digest(path: str | Path, algo: str = "sha256") -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def mean_pass_at_k(per_problem_counts: Sequence[tuple[int, int]], ks: Sequence[int]) -> dict[str, float]:
    """Mean over problems of the unbiased pass@k, for each k every problem has (k <= min n)."""
    from scoder_jax.evaluate import pass_at_k

    if not per_problem_counts:
        return {}
    min_n = min(n for n, _ in per_problem_counts)
    return {f"pass@{k}": sum(pass_at_k(n, c, k) for n, c in per_problem_counts) / len(per_problem_counts)
            for k in ks if k <= min_n}


def build_results(benchmark: str, *, problems_file: str | Path | None, n_problems: int, n_samples: int,
                  pass_at_k: dict[str, dict[str, float]], samples: str | None = None, model: str | None = None,
                  decoding: dict | None = None, **extra: Any) -> dict:
    """The results.json record (see the module docstring)."""
    try:
        from importlib.metadata import version

        scoder_version = version("scoder-jax")
    except Exception:
        scoder_version = None
    sha = file_digest(problems_file) if problems_file is not None and Path(problems_file).is_file() else None
    return {
        "benchmark": benchmark,
        "problems_file": str(problems_file) if problems_file is not None else None,
        "problems_sha256": sha,
        "samples": samples,
        "model": model,
        "decoding": decoding,
        "n_problems": n_problems,
        "n_samples": n_samples,
        "pass_at_k": pass_at_k,
        **extra,
        "date": datetime.now().strftime("%Y-%m-%d %H:%M"),
        "scoder_version": scoder_version,
    }


def write_results(record: dict, out_dir: str | Path) -> Path:
    path = Path(out_dir) / RESULTS_NAME
    write_json_atomic(path, record)
    return path


def read_results(path: str | Path) -> dict:
    """A results.json, checked for the keys the table needs."""
    path = Path(path)
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not a JSON results file ({e})") from None
    if (not isinstance(rec, dict) or not isinstance(rec.get("benchmark"), str)
            or not isinstance(rec.get("pass_at_k"), dict)):
        raise DataError(f"{path}: not a scoder results.json (needs 'benchmark' and 'pass_at_k')")
    return rec
