#!/usr/bin/env bash
# Accelerator benchmarks (not run in CI): decode throughput against the HBM-bandwidth bound
# (tests/benchmarks/decode_gpu.py) and the training step's MFU (tests/benchmarks/train_gpu.py),
# each as it ships and with the variants still to be decided on a device:
#   decode_gpu            batch 1 and 64 (the engine's GPU default: 4 decode steps per loop iteration)
#   decode_gpu_unroll1    batch 1, one step per iteration (each iteration's exit test drains the queue)
#   decode_gpu_cmdbuf     batch 1 with the decode loop's while/conditional inside CUDA graphs
#   train_gpu             the XLA attention (the default)
#   train_gpu_flash       attention: flash (the Pallas kernel, scoder_jax/models/flash.py)
# Each part is optional: a failing part is reported and the others still run.
# BENCH_GPU_PARTS picks some (e.g. "decode_gpu train_gpu_flash"). Needs jax with CUDA; no network.
#   bash launch/bench_gpu.sh [extra args for decode_gpu.py]
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
unset JAX_PLATFORMS XLA_FLAGS
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
CMDBUF="--xla_gpu_enable_command_buffer=FUSION,CUBLAS,CUBLASLT,CUSTOM_CALL,CUDNN,WHILE,CONDITIONAL"
status=0
"$PY" -c "import jax; print('jax', jax.__version__, jax.devices())" || { echo "jax is not importable"; exit 1; }
for part in ${BENCH_GPU_PARTS:-decode_gpu decode_gpu_unroll1 decode_gpu_cmdbuf train_gpu train_gpu_flash}; do
  echo "== $part"
  case $part in
    decode_gpu)        cmd=("$PY" tests/benchmarks/decode_gpu.py "$@") ;;
    decode_gpu_unroll1) cmd=("$PY" tests/benchmarks/decode_gpu.py --batches 1 --unroll 1 "$@") ;;
    decode_gpu_cmdbuf) cmd=(env XLA_FLAGS="$CMDBUF" "$PY" tests/benchmarks/decode_gpu.py --batches 1 "$@") ;;
    train_gpu)         cmd=("$PY" tests/benchmarks/train_gpu.py) ;;
    train_gpu_flash)   cmd=("$PY" tests/benchmarks/train_gpu.py --attention flash) ;;
    *) echo "unknown part $part"; status=1; continue ;;
  esac
  if ! "${cmd[@]}"; then echo "== $part FAILED"; status=1; fi
done
exit $status
