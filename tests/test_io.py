"""Atomic writes: nothing half-written, and the permissions a plain write would give."""

from __future__ import annotations

import os
import stat

import pytest

from scoder_jax.io import atomic_path, current_umask, write_jsonl_atomic, write_text_atomic


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(p) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def test_outputs_respect_the_umask(tmp_path, umask_022):
    """tempfile makes 0600 files and 0700 folders; outputs must read 0644 / 0755 under umask 022
    (a run directory shared with a team, or served read-only, must be readable)."""
    assert current_umask() == 0o022
    write_text_atomic(tmp_path / "a.txt", "x")
    write_jsonl_atomic(tmp_path / "b.jsonl", [{"a": 1}])
    with atomic_path(tmp_path / "folder", is_dir=True) as tmp:
        (tmp / "inside.txt").write_text("y")
    assert _mode(tmp_path / "a.txt") == 0o644
    assert _mode(tmp_path / "b.jsonl") == 0o644
    assert _mode(tmp_path / "folder") == 0o755
    os.umask(0o077)
    write_text_atomic(tmp_path / "private.txt", "z")
    assert _mode(tmp_path / "private.txt") == 0o600


def test_a_failed_write_leaves_the_old_file(tmp_path):
    write_text_atomic(tmp_path / "a.txt", "old")
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "a.txt") as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert (tmp_path / "a.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
