"""The key-value header of a GGUF file, read directly (no tensors).

`gguf.GGUFReader` indexes every part of every field as a numpy view before returning: for a
49k-token vocabulary (tokens, token types, 49k merges) that is ~150k views and 6 s on each load,
for what is a few MB of length-prefixed strings. A tokenizer needs only these fields, so this
module walks the header with `struct` and returns Python values (numeric arrays as lists), as
`GGUFReader(...).fields[key].contents()` does; a test compares the two on real files. The
same walk goes on to the tensor index (name, GGML type, shape, where its bytes lie): loading a
model's weights then costs the dequantisation alone (gguf.quants does it), not 3 s of field
views first.

Layout (GGUF v2/v3, little-endian): magic "GGUF", u32 version, u64 tensor count, u64 key count,
then per key: string key, u32 type, value; strings are u64 length + UTF-8 bytes. Then per
tensor: string name, u32 n_dims, n_dims x u64 dims (innermost first), u32 GGML type, u64 offset
from the data section, which starts at the next multiple of `general.alignment` (default 32).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from scoder_jax.errors import ScoderError

# GGUF value types -> numpy dtype (scalars and numeric arrays)
_NUMERIC = {0: np.uint8, 1: np.int8, 2: np.uint16, 3: np.int16, 4: np.uint32, 5: np.int32, 6: np.float32,
            7: np.bool_, 10: np.uint64, 11: np.int64, 12: np.float64}
_STRING, _ARRAY = 8, 9


class _Cursor:
    def __init__(self, f, path: Path):
        self.f, self.path = f, path
        self.size = os.fstat(f.fileno()).st_size

    def take(self, n: int) -> bytes:
        pos = self.f.tell()
        out = self.f.read(n) if 0 <= n <= self.size - pos else b""  # a length past the end is not read
        if len(out) != n:
            raise ScoderError(f"{self.path}: truncated GGUF header (needs {n} bytes at offset {pos})")
        return out

    def u32(self) -> int:
        return struct.unpack("<I", self.take(4))[0]

    def u64(self) -> int:
        return struct.unpack("<Q", self.take(8))[0]

    def string(self) -> str:
        raw = self.take(self.u64())
        try:
            return str(raw, "utf-8")
        except UnicodeDecodeError:
            raise ScoderError(f"{self.path}: a GGUF string at offset {self.f.tell() - len(raw)} is not UTF-8") from None

    def value(self, vtype: int, key: str) -> Any:
        if vtype == _STRING:
            return self.string()
        if vtype in _NUMERIC:
            dt = np.dtype(_NUMERIC[vtype]).newbyteorder("<")
            return np.frombuffer(self.take(dt.itemsize), dt)[0].item()
        if vtype == _ARRAY:
            itype, count = self.u32(), self.u64()
            if itype in _NUMERIC:
                dt = np.dtype(_NUMERIC[itype]).newbyteorder("<")
                return np.frombuffer(self.take(dt.itemsize * count), dt).tolist()
            if itype == _STRING:
                return [self.string() for _ in range(count)]
            if itype == _ARRAY:
                return [self.value(_ARRAY, key) for _ in range(count)]
            raise ScoderError(f"{self.path}: field {key}: unknown GGUF array item type {itype}")
        raise ScoderError(f"{self.path}: field {key}: unknown GGUF value type {vtype}")


@dataclass(frozen=True)
class TensorInfo:
    """One tensor of a GGUF file: `shape` in numpy order (outermost first), `offset` in the file."""

    name: str
    ggml_type: int
    shape: tuple[int, ...]
    offset: int


def read_kv(path: str | Path, want: Callable[[str], bool] = lambda key: True) -> dict[str, Any]:
    """{key: value} of the header fields for which `want(key)` holds; ScoderError on a malformed file."""
    return read_header(path, want, tensors=False)[0]


def read_header(path: str | Path, want: Callable[[str], bool] = lambda key: True, *,
                tensors: bool = True) -> tuple[dict[str, Any], list[TensorInfo]]:
    """The wanted header fields and (with `tensors`) the tensor index; ScoderError on a malformed file."""
    path = Path(path)
    try:
        with open(path, "rb", buffering=1 << 20) as f:
            cur = _Cursor(f, path)
            if cur.take(4) != b"GGUF":
                raise ScoderError(f"{path}: not a GGUF file (bad magic)")
            version = cur.u32()
            if version not in (2, 3):
                raise ScoderError(f"{path}: GGUF version {version} is not supported (2 or 3)")
            n_tensors = cur.u64()
            out: dict[str, Any] = {}
            alignment = 32
            for _ in range(cur.u64()):
                key = cur.string()
                value = cur.value(cur.u32(), key)  # read even when not wanted: it must be passed
                if key == "general.alignment":
                    alignment = value
                if want(key):
                    out[key] = value
            if not tensors:
                return out, []
            if not isinstance(alignment, int) or alignment <= 0:
                raise ScoderError(f"{path}: field general.alignment = {alignment!r} is not a positive integer")
            infos = []
            for _ in range(n_tensors):
                name = cur.string()
                dims = [cur.u64() for _ in range(cur.u32())]
                infos.append((name, cur.u32(), tuple(reversed(dims)), cur.u64()))
            start = -(-f.tell() // alignment) * alignment
            return out, [TensorInfo(name, gtype, shape, start + off) for name, gtype, shape, off in infos]
    except OSError as e:
        raise ScoderError(f"{path}: not a readable GGUF file ({type(e).__name__}: {e})") from None
