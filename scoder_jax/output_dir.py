"""The guard commands put before writing an output folder: never replace what a folder holds
unless the user asked for it (`--overwrite`).

The writing itself goes through `scoder_jax.io.atomic_path(..., is_dir=True)`: the new output is
built in a temporary sibling and swapped in only once complete, so with `--overwrite` a failure
half-way leaves the old folder as it was.
"""

from __future__ import annotations

import os
from pathlib import Path

from scoder_jax.errors import ScoderError

OVERWRITE_HELP = ("Replace a non-empty output folder (the new output is built beside it and swapped in "
                  "once complete; without this flag a non-empty folder is refused).")


def check_output_dir(path: str | os.PathLike, *, overwrite: bool, flag: str = "--overwrite") -> Path:
    """`path` as a Path if a command may write its output folder there, else ScoderError.

    Allowed: a path that does not exist, an empty folder, or (with `overwrite`) a non-empty one.
    A file is never replaced by a folder.
    """
    path = Path(path)
    if path.is_symlink() and not path.exists():
        raise ScoderError(f"{path}: a broken symbolic link; remove it or choose another output folder")
    if not path.exists():
        return path
    if not path.is_dir():
        raise ScoderError(f"{path}: is a file, not a folder; choose another output folder")
    if not overwrite and any(path.iterdir()):
        raise ScoderError(f"{path}: the output folder is not empty; choose another one, or pass {flag} to "
                          "replace it (the new output replaces it only once complete)")
    return path
