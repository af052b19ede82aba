# Sourced by launch/*.sh: create .venv if absent, activate it, and upgrade pip.
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
. .venv/bin/activate
python -m pip install -q --upgrade pip
# XLA:CPU allocates each step's temporaries afresh (~200 MB a step for the smoke model's
# 49k-token logits, 1.2 GB for SmolLM2's) and glibc maps them fresh from the kernel, which
# zeroes every page: a third of a CPU run's time was the kernel's. One malloc arena, no mmap
# and no trimming below 4 GiB keep the freed memory for the next step: the smoke preset's
# page faults 7.5M -> 0.4M, system time 22 -> 5 s, wall 46-51 -> 34-35 s (huge pages, the
# earlier setting, cut the faults but not the zeroing: 14-18 s of system time). Read by glibc
# at process start; inherited by every process the demo and the tests start (CPU only: the GPU
# and TPU launch scripts do not source this file).
export GLIBC_TUNABLES="${GLIBC_TUNABLES:+$GLIBC_TUNABLES:}glibc.malloc.arena_max=1:glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=4294967296"
