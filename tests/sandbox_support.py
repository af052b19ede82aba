"""Shared by the sandbox tests: isolation a test needs but this machine lacks is a skip on a
developer's machine and a failure where `SCODER_REQUIRE_ISOLATION` is set (CI sets it)."""

from __future__ import annotations

import os

import pytest

from scoder_jax.score.execution import REQUIRE_ENV


def unavailable(reason: str) -> None:
    """Skips the test, or fails it when the environment requires isolation."""
    if os.environ.get(REQUIRE_ENV, "").strip():
        pytest.fail(f"{reason} ({REQUIRE_ENV}={os.environ[REQUIRE_ENV]} turns this skip into a failure)")
    pytest.skip(reason)
