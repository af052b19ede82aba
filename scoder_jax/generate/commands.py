"""`scoder generate`: complete one prompt, or a JSONL file of prompts in batch mode.

Batch mode (`--prompts FILE.jsonl --out FILE.jsonl`): each input line is an object with
`prompt` (text) or `messages` (a chat), and optionally `id`; each output line is one sample
`{"id", "index", "sample", "model", "completion", "finish_reason", "num_tokens"}`, appended as
it finishes (fsynced), so a killed run keeps what it finished; rerunning the same command
skips the (model, prompt, sample) triples already in the output. Sample `s` of the prompt on
input record `i` (0-based) uses the key `sample_key(seed + model_index, i, s)`, so a resumed
run produces what an uninterrupted one would have. Several `--model` checkpoints (of one
architecture) run one after another through the same compiled functions.
"""

from __future__ import annotations

import time

import click

from scoder_jax.errors import DataError, ScoderError


@click.command()
@click.option("--model", "model_paths", required=True, multiple=True,
              help="HF directory, .gguf file or scoder-jax checkpoint (repeatable in batch mode).")
@click.option("--prompt", default=None, help="Prompt text (single-prompt mode).")
@click.option("--prompts", "prompts_file", default=None, type=click.Path(dir_okay=False),
              help="Batch mode: JSONL file, one {'prompt': ...} or {'messages': [...]} per line.")
@click.option("--out", "out_file", default=None, type=click.Path(dir_okay=False), help="Batch mode: output JSONL.")
@click.option("--chat/--raw", default=True, show_default=True, help="Wrap the prompt in the model's chat template.")
@click.option("--system", default=None, help="System message (chat mode).")
@click.option("--max-new-tokens", type=int, default=128, show_default=True)
@click.option("--temperature", type=float, default=0.0, show_default=True, help="0 = greedy.")
@click.option("--top-p", type=float, default=1.0, show_default=True)
@click.option("--top-k", type=int, default=0, show_default=True)
@click.option("--min-p", type=float, default=0.0, show_default=True)
@click.option("--no-repeat-ngram", type=int, default=0, show_default=True,
              help="Never generate an n-gram the sample already generated (0 = off).")
@click.option("--n", type=int, default=1, show_default=True, help="Samples per prompt (they share one prefill).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--stop", multiple=True, help="Stop string (repeatable).")
@click.option("--max-batch", type=int, default=64, show_default=True, help="Decode slots.")
@click.option("--progress/--no-progress", default=True, show_default=True)
def generate(model_paths, prompt, prompts_file, out_file, chat, system, max_new_tokens, temperature, top_p, top_k,
             min_p, no_repeat_ngram, n, seed, stop, max_batch, progress):
    """Generate text from MODEL for PROMPT, or for every line of --prompts into --out."""
    from scoder_jax.generate.sampling import SamplingParams

    try:
        params = SamplingParams(temperature=temperature, top_p=top_p, top_k=top_k, min_p=min_p,
                                no_repeat_ngram=no_repeat_ngram, max_new_tokens=max_new_tokens, n=n, seed=seed,
                                stop_strings=tuple(stop))
    except ValueError as e:
        raise ScoderError(f"sampling options: {e}") from None
    if prompts_file is not None or out_file is not None:
        if prompts_file is None or out_file is None:
            raise ScoderError("batch mode needs both --prompts FILE.jsonl and --out FILE.jsonl")
        if prompt is not None:
            raise ScoderError("give either --prompt or --prompts, not both")
        run_batch(list(model_paths), prompts_file, out_file, params, chat=chat, system=system,
                  max_batch=max_batch, progress=progress)
        return
    if prompt is None:
        raise ScoderError("give --prompt TEXT, or --prompts FILE.jsonl --out FILE.jsonl")
    if len(model_paths) > 1:
        raise ScoderError("several --model checkpoints need batch mode (--prompts/--out)")
    from scoder_jax.generate.engine import Engine, generate_texts
    from scoder_jax.models.checkpoint import load_model, load_tokenizer

    model = load_model(model_paths[0])
    tok = load_tokenizer(model_paths[0])
    engine = Engine(model, pad_id=tok.pad_id, max_batch=max_batch)
    outs = generate_texts(engine, tok, [prompt], params, chat=chat, system=system)[0]
    for i, text in enumerate(outs):
        if n > 1:
            click.echo(f"--- sample {i}")
        click.echo(text)


def read_prompts(path: str) -> list[dict]:
    """Prompt records of a JSONL file; errors name the file and line."""
    from scoder_jax.io import iter_jsonl

    records = []
    for lineno, rec in _numbered(iter_jsonl(path), path):
        if "prompt" in rec:
            if not isinstance(rec["prompt"], str) or not rec["prompt"]:
                raise DataError(f"{path}:{lineno}: field 'prompt' must be a non-empty string")
        elif "messages" in rec:
            if not isinstance(rec["messages"], list) or not rec["messages"]:
                raise DataError(f"{path}:{lineno}: field 'messages' must be a non-empty list of chat messages")
        else:
            raise DataError(f"{path}:{lineno}: needs a 'prompt' (text) or 'messages' (chat) field")
        rec = dict(rec, _line=lineno)
        records.append(rec)
    if not records:
        raise DataError(f"{path}: no prompts (the file is empty)")
    return records


def _numbered(records, path):
    # iter_jsonl skips blank lines; recover line numbers by reading the file alongside
    with open(path, encoding="utf-8") as f:
        linenos = [i for i, line in enumerate(f, 1) if line.strip()]
    for lineno, rec in zip(linenos, records):
        yield lineno, rec


def run_batch(model_paths: list[str], prompts_file: str, out_file: str, params, *, chat: bool = True,
              system: str | None = None, max_batch: int = 64, progress: bool = True) -> int:
    """Batch mode; returns the number of samples written by this run."""
    import json
    from pathlib import Path

    from scoder_jax.generate.engine import Engine, completion_text, encode_prompts, resolve_stops
    from scoder_jax.io import JsonlAppender
    from scoder_jax.models.checkpoint import load_model, load_tokenizer

    records = read_prompts(prompts_file)
    tok = load_tokenizer(model_paths[0])
    params = resolve_stops(tok, params)
    msgs = [r["messages"] if "messages" in r else r["prompt"] for r in records]
    try:
        ids = encode_prompts(tok, msgs, chat=chat, system=system)
    except ScoderError as e:
        raise ScoderError(f"{prompts_file}: {e}") from None
    done: set[tuple[int, int, int]] = set()
    out_path = Path(out_file)
    if out_path.exists():
        with open(out_path, encoding="utf-8") as f:
            for line in f:
                try:
                    r = json.loads(line)
                    done.add((int(r["model"]), int(r["index"]), int(r["sample"])))
                except (ValueError, KeyError, TypeError):
                    continue  # a torn tail: JsonlAppender cuts it off
    models = []
    engine = None
    for path in model_paths:  # every checkpoint is checked before any work
        model = load_model(path)
        if engine is None:
            engine = Engine(model, pad_id=tok.pad_id, max_batch=max_batch)
            for i, r in enumerate(records):
                try:
                    engine.validate([ids[i]], params)
                except ScoderError as e:
                    raise ScoderError(f"{prompts_file}:{r['_line']}: {e}") from None
        else:
            engine.set_model(model)  # raises for another architecture
        models.append(path if len(model_paths) > 1 else None)
        del model
    todo_total = sum(1 for m in range(len(model_paths)) for i in range(len(records)) for s in range(params.n)
                     if (m, i, s) not in done)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=todo_total, unit="sample", desc="generate", dynamic_ncols=True)
    written = 0
    tokens = 0
    t0 = time.perf_counter()
    from dataclasses import replace

    with JsonlAppender(out_path) as out:
        for m, path in enumerate(model_paths):
            samples = [[s for s in range(params.n) if (m, i, s) not in done] for i in range(len(records))]
            if not any(samples):
                continue
            if len(model_paths) > 1:
                engine.set_model(load_model(path))

            def emit(c, m=m):
                nonlocal written, tokens
                r = records[c.prompt_index]
                out.write({"id": r.get("id", c.prompt_index), "index": c.prompt_index, "sample": c.sample_index,
                           "model": m, "completion": completion_text(tok, c, params.stop_strings),
                           "finish_reason": c.finish_reason, "num_tokens": len(c.tokens)})
                written += 1
                tokens += len(c.tokens)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(tok_s=f"{tokens / max(time.perf_counter() - t0, 1e-9):.1f}")

            engine.generate(ids, replace(params, seed=params.seed + m), list(range(len(records))), samples=samples,
                            on_complete=emit, decode=tok.decode)
    if bar is not None:
        bar.close()
    click.echo(f"wrote {written} samples to {out_file} ({tokens} tokens, "
               f"{tokens / max(time.perf_counter() - t0, 1e-9):.1f} tok/s)", err=True)
    return written
