"""The repository passes its ruff configuration (pyproject.toml's [tool.ruff]: pyflakes,
pycodestyle, bugbear; line length 120). ruff comes with the test extras."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_ruff_finds_nothing():
    r = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", str(REPO)],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"ruff check (exit {r.returncode}):\n{r.stdout}{r.stderr}"
