"""The GGUF header reader against gguf's own GGUFReader, on real files and on every value type."""

from __future__ import annotations

import gguf
import numpy as np
import pytest

from scoder_jax import gguf_meta
from scoder_jax.errors import ScoderError


def _reference(path) -> dict:
    r = gguf.GGUFReader(str(path), "r")
    return {k: f.contents() for k, f in r.fields.items() if not k.startswith("GGUF.")}


@pytest.mark.parametrize("asset", ["smollm2_gguf", "deepseek_vocab_gguf"])
def test_real_files_match_gguf_reader(asset, request):
    path = request.getfixturevalue(asset)
    ref, ours = _reference(path), gguf_meta.read_kv(path)
    assert ours.keys() == ref.keys()
    for k in ref:
        assert ours[k] == ref[k], k
    assert len(ours["tokenizer.ggml.tokens"]) > 30000
    only = gguf_meta.read_kv(path, lambda k: k == "tokenizer.ggml.model")
    assert only == {"tokenizer.ggml.model": ref["tokenizer.ggml.model"]}


def test_tensor_index_matches_gguf_reader(smollm2_gguf, tmp_path):
    """Each tensor's name, type, shape and file offset as GGUFReader finds them, on the real
    SmolLM2 file and on a file with a non-default alignment."""
    _, ours = gguf_meta.read_header(smollm2_gguf)
    ref = gguf.GGUFReader(str(smollm2_gguf), "r").tensors
    assert len(ours) == len(ref) == 272
    for a, b in zip(ours, ref):
        assert (a.name, a.ggml_type, a.offset) == (b.name, int(b.tensor_type), b.data_offset), b.name
        assert a.shape == tuple(reversed(b.shape.tolist())), b.name
    assert {t.ggml_type for t in ours} >= {int(gguf.GGMLQuantizationType.Q4_1), int(gguf.GGMLQuantizationType.F32)}

    path = tmp_path / "aligned.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_custom_alignment(256)
    w.add_tensor("a", np.arange(6, dtype=np.float32).reshape(2, 3))
    w.add_tensor("b", np.ones((5,), np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    _, ours = gguf_meta.read_header(path)
    ref = gguf.GGUFReader(str(path), "r").tensors
    assert [(t.name, t.shape, t.offset) for t in ours] == [(t.name, (2, 3), t.data_offset) for t in ref[:1]] + [
        (ref[1].name, (5,), ref[1].data_offset)]
    assert all(t.offset % 256 == 0 for t in ours)
    raw = path.read_bytes()
    assert np.frombuffer(raw, np.float32, 6, ours[0].offset).tolist() == [0, 1, 2, 3, 4, 5]


def test_every_value_type_and_tensors_after_the_header(tmp_path):
    path = tmp_path / "types.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_uint8("t.u8", 250)
    w.add_int8("t.i8", -5)
    w.add_uint16("t.u16", 65000)
    w.add_int16("t.i16", -300)
    w.add_uint32("t.u32", 4_000_000_000)
    w.add_int32("t.i32", -7)
    w.add_float32("t.f32", 0.25)
    w.add_bool("t.bool", True)
    w.add_string("t.str", "héllo ✓")
    w.add_uint64("t.u64", 2**40)
    w.add_int64("t.i64", -(2**40))
    w.add_float64("t.f64", 1e-300)
    w.add_array("t.ints", [1, 2, 3])
    w.add_array("t.floats", [0.5, 1.5])
    w.add_array("t.strs", ["a", "", "ü"])
    w.add_tensor("w", np.ones((2, 3), np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    ref, ours = _reference(path), gguf_meta.read_kv(path)
    assert ours == ref
    assert ours["t.str"] == "héllo ✓" and ours["t.u64"] == 2**40 and ours["t.strs"] == ["a", "", "ü"]


def test_bad_files_name_the_file(tmp_path, smollm2_gguf):
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(smollm2_gguf.read_bytes()[:200_000])
    with pytest.raises(ScoderError, match=r"cut\.gguf: truncated GGUF header"):
        gguf_meta.read_kv(cut)
    other = tmp_path / "x.gguf"
    other.write_bytes(b"PK\x03\x04" + b"\x00" * 64)
    with pytest.raises(ScoderError, match=r"x\.gguf: not a GGUF file"):
        gguf_meta.read_kv(other)
    huge = tmp_path / "huge.gguf"  # one key whose string claims 2^62 bytes: refused, not read
    huge.write_bytes(b"GGUF" + (3).to_bytes(4, "little") + (0).to_bytes(8, "little") + (1).to_bytes(8, "little")
                     + (2**62).to_bytes(8, "little") + b"k" * 16)
    with pytest.raises(ScoderError, match=r"huge\.gguf: truncated GGUF header \(needs 4611686018427387904 bytes"):
        gguf_meta.read_kv(huge)
    empty = tmp_path / "e.gguf"
    empty.write_bytes(b"")
    with pytest.raises(ScoderError, match=r"e\.gguf: truncated"):
        gguf_meta.read_kv(empty)
