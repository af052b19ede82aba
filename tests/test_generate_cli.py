"""`scoder generate` batch mode on a tiny checkpoint: streamed JSONL, resume without repeats,
and inputs that must fail before any work."""

from __future__ import annotations

import json

import pytest
from flax import nnx

from scoder_jax.models.config import ModelConfig
from scoder_jax.models.llama import Decoder


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, deepseek_vocab_gguf):
    from scoder_jax.models.checkpoint import save_hf
    from scoder_jax.tokenizer import Tokenizer

    tok = Tokenizer.load(deepseek_vocab_gguf)
    cfg = ModelConfig(name="tiny", vocab_size=tok.vocab_size, hidden_size=32, num_layers=2, num_heads=4,
                      num_kv_heads=2, head_dim=8, intermediate_size=48, max_position=256,
                      bos_token_id=tok.bos_id, eos_token_id=tok.eos_id)
    d = tmp_path_factory.mktemp("ckpt")
    save_hf(Decoder(cfg, rngs=nnx.Rngs(0)), d / "a", tokenizer=tok)
    save_hf(Decoder(cfg, rngs=nnx.Rngs(1)), d / "b", tokenizer=tok)
    save_hf(Decoder(cfg.replace(intermediate_size=40), rngs=nnx.Rngs(1)), d / "other", tokenizer=tok)
    return d


def _cli(args, capsys):
    from scoder_jax.cli import main

    try:
        main(["generate", *args])
        code = 0
    except SystemExit as e:
        code = e.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


def _write(path, lines):
    path.write_text("".join(l + "\n" for l in lines))
    return path


def _base(ckpt, prompts, out):
    return ["--model", str(ckpt / "a"), "--model", str(ckpt / "b"), "--prompts", str(prompts), "--out", str(out),
            "--n", "2", "--temperature", "0.9", "--top-p", "0.95", "--max-new-tokens", "8", "--raw", "--no-progress",
            "--max-batch", "4"]


def test_batch_mode_streams_and_resumes(tmp_path, ckpt, capsys):
    prompts = _write(tmp_path / "p.jsonl", [json.dumps({"id": f"q{i}", "prompt": f"def f{i}(x):"}) for i in range(5)])
    out = tmp_path / "out.jsonl"
    code, _, err = _cli(_base(ckpt, prompts, out), capsys)
    assert code == 0, err
    full = [json.loads(l) for l in out.read_text().splitlines()]
    assert len(full) == 2 * 5 * 2
    assert {(r["model"], r["index"], r["sample"]) for r in full} == {(m, i, s) for m in (0, 1) for i in range(5)
                                                                    for s in (0, 1)}
    assert {r["id"] for r in full} == {f"q{i}" for i in range(5)}
    # a run killed midway: keep 7 whole records and half of the 8th; rerun completes the rest
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:7]) + lines[7][:10])
    code, _, err = _cli(_base(ckpt, prompts, out), capsys)
    assert code == 0, err
    assert "wrote 13 samples" in err
    resumed = [json.loads(l) for l in out.read_text().splitlines()]
    key = lambda r: (r["model"], r["index"], r["sample"])  # noqa: E731
    assert sorted(map(key, resumed)) == sorted(map(key, full))  # nothing repeated, nothing missing
    assert {key(r): r["completion"] for r in resumed} == {key(r): r["completion"] for r in full}  # same keys


def test_batch_mode_bad_input(tmp_path, ckpt, capsys):
    out = tmp_path / "out.jsonl"
    empty = _write(tmp_path / "empty.jsonl", [])
    code, _, err = _cli(_base(ckpt, empty, out), capsys)
    assert code == 2 and "no prompts" in err
    bad = _write(tmp_path / "bad.jsonl", [json.dumps({"prompt": "a"}), "", "{not json"])
    code, _, err = _cli(_base(ckpt, bad, out), capsys)
    assert code == 2 and "bad.jsonl:3: malformed JSON" in err
    long = _write(tmp_path / "long.jsonl", [json.dumps({"prompt": "x"}), json.dumps({"prompt": "word " * 400})])
    code, _, err = _cli(_base(ckpt, long, out), capsys)
    assert code == 2 and "long.jsonl:2:" in err and "context of 256" in err
    ok = _write(tmp_path / "ok.jsonl", [json.dumps({"prompt": "def f():"})])
    code, _, err = _cli(_base(ckpt, ok, out) + ["--stop", "<|no_such_token|>"], capsys)
    assert code == 2 and "looks like a special token" in err
    args = _base(ckpt, ok, out)
    args[3] = str(ckpt / "other")
    code, _, err = _cli(args, capsys)
    assert code == 2 and "another architecture" in err
    assert not out.exists()  # every failure came before any sample was written
