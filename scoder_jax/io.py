"""Atomic file writing and strict JSONL reading, shared by every stage.

Every file a stage produces is written to a temporary sibling and renamed into place, so a
kill at any moment leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

from scoder_jax.errors import DataError

PathLike = str | os.PathLike


def current_umask() -> int:
    """This process's umask, read without changing it (Linux), else set and restored."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def make_temp(parent: PathLike, name: str, *, is_dir: bool) -> Path:
    """A fresh temporary file or folder in `parent`, with the permissions a plain open() or
    mkdir() would give (tempfile's are 0600 / 0700 whatever the umask says)."""
    if is_dir:
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=parent))
        os.chmod(tmp, 0o777 & ~current_umask())
    else:
        fd, path = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=parent)
        os.fchmod(fd, 0o666 & ~current_umask())
        os.close(fd)
        tmp = Path(path)
    return tmp


@contextlib.contextmanager
def atomic_path(path: PathLike, *, is_dir: bool = False) -> Iterator[Path]:
    """Yields a temporary path beside `path`; renames it onto `path` if the block succeeds.

    For directories an existing target is replaced (old one removed after the rename).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp(path.parent, path.name, is_dir=is_dir)
    try:
        yield tmp
        if is_dir:
            old = None
            if path.exists():
                old = path.with_name(f".{path.name}.old-{os.getpid()}")
                os.replace(path, old)
            os.replace(tmp, path)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        else:
            _fsync_file(tmp)
            os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        raise


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_text_atomic(path: PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes_atomic(path: PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json_atomic(path: PathLike, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def write_jsonl_atomic(path: PathLike, records: Iterable[dict]) -> int:
    """Writes records as JSONL atomically; returns how many were written."""
    n = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            n += 1
    return n


def _open_text(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    if path.suffix == ".zst":
        import zstandard

        return zstandard.open(path, "rt", encoding="utf-8")
    return open(path, "r", encoding="utf-8")


def iter_jsonl(path: PathLike, *, require: tuple[str, ...] = (), where_field: str | None = None) -> Iterator[dict]:
    """Yields one dict per non-blank line; a malformed line raises DataError naming file:line.

    `require` lists fields every record must have; `where_field`, if given, is set on each
    record to its "file:line" (for later error messages). Reads .gz and .zst too.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    try:
        with _open_text(path) as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataError(f"{path}:{lineno}: malformed JSON ({e.msg} at column {e.colno})") from None
                if not isinstance(rec, dict):
                    raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(rec).__name__}")
                for key in require:
                    if key not in rec:
                        raise DataError(f"{path}:{lineno}: missing field '{key}'")
                if where_field is not None:
                    rec[where_field] = f"{path}:{lineno}"
                yield rec
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def read_jsonl(path: PathLike, *, require: tuple[str, ...] = ()) -> list[dict]:
    return list(iter_jsonl(path, require=require))


class JsonlAppender:
    """Appends records to a JSONL file in flushed, fsynced chunks, for resumable streams.

    On open, a torn last line (a kill mid-write) is cut off, so readers only ever see whole
    records. `done_keys(field)` returns the values of `field` already on disk, for resuming.
    """

    def __init__(self, path: PathLike, *, flush_every: int = 1):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _truncate_torn_tail(self.path)
        self._f = open(self.path, "a", encoding="utf-8")
        self._pending = 0
        self.flush_every = flush_every

    def write(self, rec: dict) -> None:
        self._f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        self._pending += 1
        if self._pending >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        self._f.flush()
        os.fsync(self._f.fileno())
        self._pending = 0

    def close(self) -> None:
        if not self._f.closed:
            self.flush()
            self._f.close()

    def __enter__(self) -> "JsonlAppender":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _truncate_torn_tail(path: Path) -> None:
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as f:
        data = f.read()
        if data.endswith(b"\n"):
            return
        cut = data.rfind(b"\n") + 1
        f.truncate(cut)
