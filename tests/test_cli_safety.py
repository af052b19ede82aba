"""No data loss, no silent mistakes: output folders are replaced only with --overwrite (and then
atomically), influence refuses checkpoints of different models or vocabularies before any work,
a seed import in the wrong format writes nothing, a pool of no snippet is an error."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from click.testing import CliRunner

from scoder_jax.cli import main
from scoder_jax.errors import CheckpointError, DataError, ScoderError
from scoder_jax.models.config import ModelConfig

TINY = ModelConfig(name="t", vocab_size=104, hidden_size=16, num_layers=1, num_heads=2, num_kv_heads=2, head_dim=8,
                   intermediate_size=32, max_position=64)
CODE = ("def merge_sorted(left, right):\n    out, i, j = [], 0, 0\n    while i < len(left) and j < len(right):\n"
        "        if left[i] <= right[j]:\n            out.append(left[i])\n            i += 1\n"
        "        else:\n            out.append(right[j])\n            j += 1\n"
        "    return out + left[i:] + right[j:]\n")


def _exit_code_and_error(args, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as e:
        main(args)
    return e.value.code, capsys.readouterr().err


def _siblings(path) -> list[str]:
    """Names beside `path` that start with its name (temporary or old copies left behind)."""
    return sorted(p.name for p in path.parent.iterdir() if p.name.lstrip(".").startswith(path.name) and p != path)


# ----------------------------------------------------------------------------- convert


@pytest.fixture(scope="module")
def tiny_hf(tmp_path_factory):
    from flax import nnx

    from scoder_jax.models.checkpoint import save_hf
    from scoder_jax.models.llama import Decoder
    from scoder_jax.train.data import char_tokenizer

    d = tmp_path_factory.mktemp("convert") / "src"
    save_hf(Decoder(TINY, rngs=nnx.Rngs(0)), d, tokenizer=char_tokenizer())
    return d


def test_convert_refuses_a_non_empty_folder_and_replaces_it_with_overwrite(tiny_hf, tmp_path, capsys):
    dst = tmp_path / "dst"
    dst.mkdir()
    (dst / "precious.txt").write_text("keep me")
    code, err = _exit_code_and_error(["convert", str(tiny_hf), str(dst)], capsys)
    assert code == 2 and f"{dst}: the output folder is not empty" in err and "--overwrite" in err
    assert (dst / "precious.txt").read_text() == "keep me"
    # an empty folder, or a new one, is fine without the flag
    (tmp_path / "empty").mkdir()
    for out in (tmp_path / "empty", tmp_path / "new"):
        main(["convert", str(tiny_hf), str(out)])
        assert (out / "config.json").is_file()
    main(["convert", str(tiny_hf), str(dst), "--overwrite"])
    assert (dst / "config.json").is_file() and not (dst / "precious.txt").exists()
    assert _siblings(dst) == []
    # a file is never replaced by a folder
    (tmp_path / "f").write_text("x")
    code, err = _exit_code_and_error(["convert", str(tiny_hf), str(tmp_path / "f"), "--overwrite"], capsys)
    assert code == 2 and "is a file" in err and (tmp_path / "f").read_text() == "x"
    from scoder_jax.models.commands import convert

    assert "--overwrite" in CliRunner().invoke(convert, ["--help"]).output


def test_convert_overwrite_failing_half_way_keeps_the_old_folder(tiny_hf, tmp_path, monkeypatch):
    from scoder_jax.tokenizer import Tokenizer

    dst = tmp_path / "dst"
    dst.mkdir()
    (dst / "precious.txt").write_text("keep me")

    def full_disk(self, out_dir):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Tokenizer, "save", full_disk)  # after the weights were written
    with pytest.raises(OSError, match="No space left"):
        main(["convert", str(tiny_hf), str(dst), "--overwrite"])
    assert sorted(p.name for p in dst.iterdir()) == ["precious.txt"] and _siblings(dst) == []


# ----------------------------------------------------------------------------- snippets build


def test_snippets_build_refuses_a_non_empty_folder(tmp_path, capsys):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "merge.py").write_text(CODE)
    out = tmp_path / "pool"
    out.mkdir()
    (out / "notes.md").write_text("mine")
    args = ["snippets", "build", str(tmp_path / "src"), "--out", str(out), "--benchmarks", "none", "--workers", "1",
            "--no-progress"]
    code, err = _exit_code_and_error(args, capsys)
    assert code == 2 and f"{out}: the output folder is not empty" in err and "--overwrite" in err
    assert (out / "notes.md").read_text() == "mine"
    main(args + ["--overwrite"])
    assert (out / "manifest.json").is_file() and not (out / "notes.md").exists() and _siblings(out) == []
    assert json.loads((out / "manifest.json").read_text())["output"]["snippets"] >= 1


@pytest.mark.parametrize("kind", ["empty folder", "unknown language", "all filtered"])
def test_snippets_build_of_no_snippet_fails_naming_the_path(kind, tmp_path, capsys):
    src = tmp_path / "src"
    if kind == "empty folder":
        src.mkdir()
        want = f"{src}: no code found"
    elif kind == "unknown language":
        src = tmp_path / "notes.txt"
        src.write_text("just some notes\n" * 20)
        want = f"{src}: none of the 1 document(s) could be used (unknown language 1)"
    else:
        src.mkdir()
        (src / "a.py").write_text("x = 1\n")
        want = f"{src}: 0 snippets kept of 1 extracted from 1 document(s) (dropped: too short 1)"
    out = tmp_path / "pool"
    code, err = _exit_code_and_error(["snippets", "build", str(src), "--out", str(out), "--benchmarks", "none",
                                      "--workers", "1", "--no-progress"], capsys)
    assert code == 2 and want in err, err
    assert not out.exists() and _siblings(out) == []


# ----------------------------------------------------------------------------- seed --import


def test_seed_import_of_another_format_writes_nothing(tmp_path, capsys):
    from scoder_jax.synth.seed_import import import_seed

    wrong = tmp_path / "pool.jsonl"  # a snippet pool, not a seed set
    wrong.write_text("".join(json.dumps({"id": f"s{i}", "lang": "python", "content": CODE}) + "\n" for i in range(3)))
    out = tmp_path / "seed"
    with pytest.raises(DataError, match=re.escape(f"{wrong}: no usable sample in 3 line(s) (first: {wrong}:1: "
                                                  "missing or empty field 'problem')")):
        import_seed(wrong, out)
    assert not out.exists()
    code, err = _exit_code_and_error(["seed", "--import", str(wrong), "--out", str(out)], capsys)
    assert code == 2 and "no usable sample" in err and not out.exists()
    # into an existing seed set: that one stays as it was
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"problem": "Add two numbers.", "solution": "def add(a, b):\n    return a + b",
                                "tests": "assert add(1, 2) == 3", "snippet_id": "x"}) + "\n")
    assert import_seed(good, out)["total"] == 1
    before = (out / "seed.jsonl").read_bytes()
    with pytest.raises(DataError, match="no usable sample"):
        import_seed(wrong, out)
    assert (out / "seed.jsonl").read_bytes() == before and not (out / "import_errors.jsonl").exists()


# ----------------------------------------------------------------------------- influence


def _fake_checkpoint(path, cfg: ModelConfig, tokenizer=None):
    """A checkpoint's metadata only (config and tokenizer, no weights): what the check reads."""
    from scoder_jax.models.checkpoint import ORBAX_MARKER

    path.mkdir(parents=True)
    (path / ORBAX_MARKER).write_text(json.dumps({"format": "scoder-jax/1", "model": cfg.to_dict()}))
    if tokenizer is not None:
        tokenizer.save(path / "tokenizer")
    return path


def test_influence_refuses_checkpoints_of_another_model_before_any_work(tmp_path, monkeypatch, capsys):
    import scoder_jax.models.checkpoint as ckpt_mod
    from scoder_jax.influence.select import InfluenceConfig, check_same_model, run_influence
    from scoder_jax.train.data import char_tokenizer

    def no_loading(*a, **k):
        raise AssertionError("a checkpoint was loaded before the checkpoints were checked")

    monkeypatch.setattr(ckpt_mod, "load_model", no_loading)
    tok = char_tokenizer()
    a = _fake_checkpoint(tmp_path / "a", TINY, tok)
    same = _fake_checkpoint(tmp_path / "same", TINY.replace(param_dtype="bfloat16"), tok)
    check_same_model([a, same])  # the same model in another dtype is fine
    deeper = _fake_checkpoint(tmp_path / "deeper", TINY.replace(num_layers=2), tok)
    bare = _fake_checkpoint(tmp_path / "bare", TINY)
    other_vocab = _fake_checkpoint(tmp_path / "other_vocab", TINY, tok)
    tj = other_vocab / "tokenizer" / "tokenizer.json"
    t = json.loads(tj.read_text())
    t["model"]["vocab"]["x"], t["model"]["vocab"]["y"] = t["model"]["vocab"]["y"], t["model"]["vocab"]["x"]
    tj.write_text(json.dumps(t))
    step = tmp_path / "run" / "checkpoints" / "8"  # a training step read before its scoder_model.json is written
    (step / "meta").mkdir(parents=True)
    meta = {"step": 8, "lr": 0.1, "model": TINY.replace(head_dim=4).to_dict()}
    (step / "meta" / "metadata").write_text(json.dumps(meta))
    records = [{"problem": "p", "solution": "s"}]
    cfg = InfluenceConfig(sgd=True, progress=False, mesh_devices=1)
    cases = [
        ([a, deeper], rf"{re.escape(str(deeper))}: a checkpoint of another model than {re.escape(str(a))}: "
                      r"num_layers = 2, not 1"),
        ([a, step], rf"{re.escape(str(step))}: a checkpoint of another model than {re.escape(str(a))}: "
                    r"head_dim = 4, not 8"),
        ([a, bare], rf"{re.escape(str(bare))}: no tokenizer saved with this checkpoint, but {re.escape(str(a))} "
                    "has one"),
        ([bare, a], rf"{re.escape(str(bare))}: no tokenizer saved with this checkpoint, but {re.escape(str(a))} "
                    "has one"),
        ([a, other_vocab], rf"{re.escape(str(other_vocab))}: its tokenizer differs from that of "
                           rf"{re.escape(str(a))} \(vocabulary: token 'x' has id \d+, not \d+\)"),
    ]
    for ckpts, want in cases:
        with pytest.raises(CheckpointError, match=want):
            run_influence(records, records, ckpts, tmp_path / "out", cfg)
        assert not (tmp_path / "out").exists()
    cands = tmp_path / "c.jsonl"
    cands.write_text(json.dumps(records[0]) + "\n")
    code, err = _exit_code_and_error(["influence", "--candidates", str(cands), "--targets", str(cands), "--checkpoints",
                                      str(a), str(deeper), "--sgd", "--out", str(tmp_path / "out"), "--no-progress"],
                                     capsys)
    assert code == 2 and f"error: {deeper}: a checkpoint of another model" in err and "num_layers" in err
    assert len(err.strip().splitlines()) == 1


def test_output_dir_guard_unit(tmp_path):
    from scoder_jax.output_dir import check_output_dir

    assert check_output_dir(tmp_path / "new", overwrite=False) == tmp_path / "new"
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(ScoderError, match="not empty.*--overwrite"):
        check_output_dir(tmp_path / "full", overwrite=False)
    assert check_output_dir(tmp_path / "full", overwrite=True) == tmp_path / "full"
    shutil.rmtree(tmp_path / "full")
    (tmp_path / "link").symlink_to(tmp_path / "gone")
    with pytest.raises(ScoderError, match="broken symbolic link"):
        check_output_dir(tmp_path / "link", overwrite=True)
