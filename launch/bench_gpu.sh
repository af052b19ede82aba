#!/usr/bin/env bash
# Accelerator benchmarks (not run in CI): decode throughput against the HBM-bandwidth bound
# (tests/benchmarks/decode_gpu.py) and, when present, the training benchmark
# (tests/benchmarks/train_gpu.py). Each part is optional: a missing or failing part is
# reported and the others still run. Needs jax with CUDA (or TPU); no network.
#   bash launch/bench_gpu.sh [extra args for decode_gpu.py]
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
unset JAX_PLATFORMS XLA_FLAGS
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
status=0
"$PY" -c "import jax; print('jax', jax.__version__, jax.devices())" || { echo "jax is not importable"; exit 1; }
for part in decode_gpu train_gpu; do
  script=tests/benchmarks/$part.py
  if [ ! -f "$script" ]; then echo "== $part: $script not present, skipped"; continue; fi
  echo "== $part"
  args=()
  [ "$part" = decode_gpu ] && args=("$@")
  if ! "$PY" "$script" "${args[@]}"; then echo "== $part FAILED"; status=1; fi
done
exit $status
