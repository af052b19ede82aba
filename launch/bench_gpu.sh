#!/usr/bin/env bash
# Accelerator benchmarks (not run in CI): one prepared script, under 8 minutes, that prints one
# JSON line per figure, each with `bound_fraction` (the figure as a fraction of its bound):
#   decode          tests/benchmarks/decode_gpu.py: deepseek-coder-1.3b shape, bf16, batch 1 and 64,
#                   each with the unrolled decode loop (the engine's GPU default, 4 steps per loop
#                   iteration) and one step per iteration; bound: the weights and the KV cache read
#                   once per step at the measured memory bandwidth (target at batch 1: >= 0.6)
#   train_<attn>    tests/benchmarks/train_gpu.py --attention <attn>: MFU of a full fine-tuning step,
#                   1.3B shape, bf16, seq 2048 (`attention_ran` says which kernel ran; a kernel that
#                   cannot run here falls back to xla); bound: the device's dense bf16 peak (target
#                   on one H100/H200: >= 0.45). attn: cudnn, flash, xla on a GPU; splash, xla on a TPU
#   decode_cmdbuf   (not in the default set) batch 1 with the decode loop's while/conditional inside
#                   CUDA graphs
# BENCH_GPU_PARTS picks parts (default by backend: "train_cudnn decode train_flash train_xla" on a
# GPU, "train_splash decode train_xla" on a TPU). BENCH_GPU_BUDGET_S (default 450) bounds the
# whole script: each part runs under `timeout` with what is left (at most its own cap), a part
# that would start with under 60 s left is skipped, and a part that fails, times out or is
# skipped prints a JSON line saying so (figures it printed before stay valid). Needs jax with
# CUDA (or TPU); no network. BENCH_GPU_SMOKE=1 runs every part on tiny shapes (`--smoke`: a CPU
# dry run of the script, the Pallas kernels in their interpreter; its figures mean nothing).
#   bash launch/bench_gpu.sh [extra args for decode_gpu.py]
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
unset JAX_PLATFORMS XLA_FLAGS
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
DECODE=tests/benchmarks/decode_gpu.py
TRAIN=tests/benchmarks/train_gpu.py
CMDBUF="--xla_gpu_enable_command_buffer=FUSION,CUBLAS,CUBLASLT,CUSTOM_CALL,CUDNN,WHILE,CONDITIONAL"
BUDGET=${BENCH_GPU_BUDGET_S:-450}
MIN_LEFT=60
SMOKE=${BENCH_GPU_SMOKE:+--smoke}
status=0
backend=$("$PY" -c "import jax; print(jax.default_backend())" 2>/dev/null) || { echo "jax is not importable"; exit 1; }
"$PY" -c "import jax; print('jax', jax.__version__, jax.devices())" >&2
case $backend in
  tpu) default_parts="train_splash decode train_xla" ;;
  *)   default_parts="train_cudnn decode train_flash train_xla" ;;
esac

json_to_stdout() {  # JSON lines (the figures) stay on stdout, the readable lines go to stderr
  local line
  while IFS= read -r line; do
    case $line in '{'*) printf '%s\n' "$line" ;; *) printf '%s\n' "$line" >&2 ;; esac
  done
}

note() {  # part, what happened: one JSON line
  printf '{"benchmark": "bench_gpu", "part": "%s", "status": "%s"}\n' "$1" "$2"
}

for part in ${BENCH_GPU_PARTS:-$default_parts}; do
  case $part in
    decode)
      cap=240; cmd=("$PY" $DECODE --batches 1,64 --unroll auto,1 $SMOKE "$@") ;;
    decode_cmdbuf)
      cap=150; cmd=(env XLA_FLAGS="$CMDBUF" "$PY" $DECODE --batches 1 --unroll auto $SMOKE "$@") ;;
    train_*)
      cap=150; cmd=("$PY" $TRAIN --attention "${part#train_}" --seq-len 2048 --steps 6 --warmup 2 $SMOKE) ;;
    *) note "$part" "unknown part"; status=1; continue ;;
  esac
  left=$(( BUDGET - SECONDS ))
  if (( left < MIN_LEFT )); then note "$part" "skipped: ${left}s of the ${BUDGET}s budget left"; status=1; continue; fi
  limit=$(( left < cap ? left : cap ))
  echo "== $part (at most ${limit}s)" >&2
  timeout -k 10 "$limit" "${cmd[@]}" | json_to_stdout
  rc=${PIPESTATUS[0]}
  if (( rc == 124 )); then note "$part" "timed out after ${limit}s"; status=1
  elif (( rc != 0 )); then note "$part" "failed (exit $rc)"; status=1; fi
done
echo "== done in ${SECONDS}s" >&2
exit $status
