# Sourced by launch/*.sh: create .venv if absent, activate it, and upgrade pip.
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
. .venv/bin/activate
python -m pip install -q --upgrade pip
