"""The bundled demo seed set: well-formed records, real stdlib snippets, tests that pass in the
sandbox and fail for a gutted solution, and no overlap with HumanEval or MBPP."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import re
from pathlib import Path

import pytest

from scoder_jax.records import SAMPLE_FIELDS, content_id

SEED = Path(__file__).resolve().parents[1] / "scoder_jax" / "data" / "seed" / "demo_seed.jsonl"
MBPP_FILE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sanitized-mbpp.json"


@pytest.fixture(scope="module")
def seed() -> list[dict]:
    with open(SEED, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _limits():
    from scoder_jax.score.sandbox_types import Limits

    return Limits(timeout_s=20.0)


def test_records_are_complete_and_unique(seed):
    assert len(seed) >= 55
    assert [r["id"] for r in seed] == [f"seed-{i:03d}" for i in range(1, len(seed) + 1)]
    for r in seed:
        assert set(r) == set(SAMPLE_FIELDS), r["id"]
        assert r["lang"] == "python" and r["origin"] == "bundled"
        assert r["meta"]["note"] == "hand-written stand-in for a teacher's output"
        assert r["snippet_id"] == content_id(r["snippet"]), r["id"]
        for key in ("snippet", "problem", "solution", "tests"):
            assert isinstance(r[key], str) and r[key].strip(), (r["id"], key)
        assert 3 <= len(r["snippet"].strip().splitlines()) <= 15, r["id"]
        n_asserts = sum(isinstance(node, ast.Assert) for node in ast.walk(ast.parse(r["tests"])))
        assert 5 <= n_asserts <= 12, (r["id"], n_asserts)
        # The API: public top-level functions, and public classes with their methods, are typed
        # and documented (nested helpers need not be).
        top = [n for n in ast.parse(r["solution"]).body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
        public = [n for n in top if not n.name.startswith("_")]
        methods = [m for c in public if isinstance(c, ast.ClassDef) for m in c.body if isinstance(m, ast.FunctionDef)]
        api = public + [m for m in methods if not m.name.startswith("_") or m.name == "__init__"]
        assert public and all(ast.get_docstring(n) for n in api), r["id"]
        assert all(n.returns is not None for n in api if isinstance(n, ast.FunctionDef)), r["id"]
        assert re.search(r"`\w+\(", r["problem"]) or "class" in r["problem"], r["id"]  # states the signature
    for key in ("snippet", "problem", "solution"):
        assert len({r[key] for r in seed}) == len(seed), f"duplicate {key}"
    assert len({r["meta"]["snippet_from"] for r in seed}) == len(seed)


def _normalized_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def test_snippets_are_excerpts_of_the_stdlib_they_name(seed):
    for r in seed:
        qualname = r["meta"]["snippet_from"]
        parts = qualname.split(".")
        module = None
        for i in range(len(parts), 0, -1):
            try:
                module = importlib.import_module(".".join(parts[:i]))
                break
            except ImportError:
                continue
        assert module is not None, qualname
        source = _normalized_lines(inspect.getsource(module))
        lines = _normalized_lines(r["snippet"])
        found = any(source[j : j + len(lines)] == lines for j in range(len(source) - len(lines) + 1))
        assert found, f"{r['id']}: snippet not found in the source of {module.__name__}"
        assert parts[-1] in "\n".join(source), qualname


def _gut(solution: str, body: str) -> str:
    """The solution with every function body replaced by `body` (a mutant that must fail)."""
    tree = ast.parse(solution)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            node.body = ast.parse(body).body
    return ast.unparse(tree)


def test_every_seed_test_passes_in_the_sandbox_and_has_teeth(seed):
    from scoder_jax.score.execution import run_many

    programs = [r["solution"] + "\n\n" + r["tests"] for r in seed]
    mutants = [_gut(r["solution"], "return None") + "\n\n" + r["tests"] for r in seed]
    mutants += [_gut(r["solution"], "raise NotImplementedError") + "\n\n" + r["tests"] for r in seed]
    outcomes = run_many(programs + mutants, limits=_limits())
    good, bad = outcomes[: len(seed)], outcomes[len(seed) :]
    failed = [(r["id"], o.status, o.reason, o.stderr[-300:]) for r, o in zip(seed, good) if not o.passed]
    assert failed == []
    survivors = [r["id"] for r, o in zip(seed + seed, bad) if o.passed]
    assert survivors == []


def test_seed_set_is_clear_of_humaneval_and_mbpp(seed):
    """No seed solution defines a benchmark entry point, and no problem shares a 10-word run
    with a benchmark prompt (the pool's decontamination, applied to the seed set)."""
    from scoder_jax.evaluate import load_benchmark

    bench = load_benchmark("humaneval")
    texts = [p.prompt for p in bench]
    names = {p.entry_point for p in bench}
    if MBPP_FILE.exists():
        mbpp = load_benchmark("mbpp", MBPP_FILE, split="all")
        texts += [p.prompt for p in mbpp]
        names |= {p.entry_point for p in mbpp}

    def grams(text: str, n: int = 10) -> set[tuple[str, ...]]:
        words = re.findall(r"[a-z0-9]+", text.lower())
        return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}

    bench_grams = set().union(*(grams(t) for t in texts))
    for r in seed:
        defined = {n.name for n in ast.parse(r["solution"]).body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        assert not defined & names, (r["id"], defined & names)
        assert not grams(r["problem"]) & bench_grams, r["id"]


def test_build_script_reproduces_the_file():
    import runpy

    module = runpy.run_path(str(Path(__file__).parent / "assets" / "build_demo_seed.py"), run_name="seed_builder")
    on_disk = [json.loads(line) for line in SEED.read_text(encoding="utf-8").splitlines()]
    # Snippets are cut from this interpreter's stdlib, which differs between Python versions;
    # everything hand-written must match exactly.
    drop = ("snippet", "snippet_id")
    assert [{k: v for k, v in r.items() if k not in drop} for r in module["records"]()] == [
        {k: v for k, v in r.items() if k not in drop} for r in on_disk
    ]
