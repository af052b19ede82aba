# Sourced by launch/*.sh: create .venv if absent, activate it, and upgrade pip.
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
. .venv/bin/activate
python -m pip install -q --upgrade pip
# XLA:CPU maps each step's temporaries afresh (150 MB a step for the smoke model's 49k-token
# logits): transparent huge pages fault them in 2 MiB at a time, not 4 KiB (3.9M -> 0.19M page
# faults, 13.4 -> 10.7 s for the smoke preset's first fine-tune). Read by glibc at process start.
export GLIBC_TUNABLES="${GLIBC_TUNABLES:+$GLIBC_TUNABLES:}glibc.malloc.hugetlb=1"
