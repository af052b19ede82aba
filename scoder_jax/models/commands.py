"""`scoder convert` and `scoder verify`."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import click

from scoder_jax.errors import ScoderError
from scoder_jax.output_dir import OVERWRITE_HELP, check_output_dir

VERIFY_TEXT = (
    "def quicksort(xs):\n    if len(xs) <= 1:\n        return xs\n    pivot = xs[0]\n"
    "    return quicksort([x for x in xs[1:] if x < pivot]) + [pivot] + quicksort([x for x in xs[1:] if x >= pivot])\n"
    "The quick brown fox jumps over the lazy dog. Paris is the capital of France."
)


@click.command()
@click.argument("src")
@click.argument("dst")
@click.option("--to", "fmt", type=click.Choice(["hf", "orbax"]), default="hf", show_default=True,
              help="Format of DST (GGUF is read-only).")
@click.option("--dtype", type=click.Choice(["float32", "bfloat16", "float16"]), default=None,
              help="Parameter dtype to write (default: the source's).")
@click.option("--max-shard-gb", type=float, default=5.0, show_default=True, help="Safetensors shard size (hf).")
@click.option("--overwrite", is_flag=True, help=OVERWRITE_HELP)
def convert(src: str, dst: str, fmt: str, dtype: str | None, max_shard_gb: float, overwrite: bool) -> None:
    """Convert SRC (HF directory, .gguf file or scoder-jax checkpoint) into the folder DST.

    DST must not exist or be empty, unless --overwrite is given.
    """
    from scoder_jax.models.checkpoint import load_model, load_tokenizer, save_hf, save_orbax

    if dst.endswith(".gguf"):
        raise ScoderError(
            f"{dst}: writing GGUF is not supported (GGUF is read-only); use --to hf and llama.cpp's converter")
    check_output_dir(dst, overwrite=overwrite)
    overrides = {"param_dtype": dtype} if dtype else {}
    model = load_model(src, **overrides)
    tok = load_tokenizer(src, required=False)
    if fmt == "hf":
        save_hf(model, dst, tokenizer=tok, max_shard_bytes=int(max_shard_gb * 2**30))
    else:
        save_orbax(model, dst, tokenizer=tok)
    click.echo(f"wrote {fmt} checkpoint {dst} ({model.cfg.name}, {model.cfg.num_layers} layers)")


def _reference_model(path: Path, tmp: Path):
    """transformers' own loading of the same checkpoint (orbax goes through an HF export)."""
    import torch
    import transformers

    from scoder_jax.models.checkpoint import checkpoint_kind, load_model, save_hf

    kind = checkpoint_kind(path)
    if kind == "gguf":
        return transformers.AutoModelForCausalLM.from_pretrained(
            str(path.parent), gguf_file=path.name, dtype=torch.float32).eval()
    if kind == "orbax":
        save_hf(load_model(path), tmp / "hf")
        path = tmp / "hf"
    return transformers.AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32).eval()


def compare_logits(path: str | Path, *, atol: float, seq_len: int = 32, seed: int = 0) -> dict:
    """Logits of scoder-jax and transformers on random and on real token sequences."""
    import jax.numpy as jnp
    import numpy as np
    import torch

    from scoder_jax.models.checkpoint import load_model, load_tokenizer

    path = Path(path)
    model = load_model(path)
    cfg = model.cfg
    rng = np.random.default_rng(seed)
    batches = {"random": rng.integers(0, cfg.vocab_size, size=(2, seq_len)).astype(np.int32)}
    tok = load_tokenizer(path, required=False)
    if tok is not None:
        ids = tok.encode(VERIFY_TEXT)[:seq_len * 2]
        batches["real"] = np.asarray([ids], np.int32)
    with tempfile.TemporaryDirectory() as tmp:
        ref = _reference_model(path, Path(tmp))
        report = {"model": str(path), "atol": atol}
        worst = 0.0
        for name, toks in batches.items():
            ours = np.asarray(model(jnp.asarray(toks)).logits, np.float64)
            with torch.no_grad():
                theirs = ref(torch.tensor(toks, dtype=torch.long)).logits.double().numpy()
            diff = float(np.abs(ours - theirs).max())
            agree = float((ours.argmax(-1) == theirs.argmax(-1)).mean())
            report[name] = {"max_abs_diff": diff, "top1_agreement": agree, "tokens": int(toks.size)}
            worst = max(worst, diff)
    report["max_abs_diff"] = worst
    report["ok"] = worst <= atol
    return report


@click.command()
@click.option("--model", "model_path", required=True, help="HF directory, .gguf file or scoder-jax checkpoint.")
@click.option("--atol", type=float, default=1e-3, show_default=True, help="Largest allowed |logit difference|.")
@click.option("--seq-len", type=int, default=32, show_default=True)
def verify(model_path: str, atol: float, seq_len: int) -> None:
    """Compare scoder-jax's logits with transformers' on the same checkpoint; exit 1 beyond --atol."""
    report = compare_logits(model_path, atol=atol, seq_len=seq_len)
    for name in ("random", "real"):
        if name in report:
            r = report[name]
            click.echo(f"{name:>6}: max |diff| {r['max_abs_diff']:.3e}  top-1 agreement {r['top1_agreement']:.4f}")
    click.echo(json.dumps(report))
    if not report["ok"]:
        click.echo(f"error: logits differ by {report['max_abs_diff']:.3e} > atol {atol}", err=True)
        sys.exit(1)
