"""`scoder generate`: complete a prompt with a checkpoint, greedy or sampled, through the KV cache."""

from __future__ import annotations

import click

from scoder_jax.errors import ScoderError


@click.command()
@click.option("--model", "model_path", required=True, help="HF directory, .gguf file or scoder-jax checkpoint.")
@click.option("--prompt", required=True, help="Prompt text.")
@click.option("--chat/--raw", default=True, show_default=True, help="Wrap the prompt in the model's chat template.")
@click.option("--system", default=None, help="System message (chat mode).")
@click.option("--max-new-tokens", type=int, default=128, show_default=True)
@click.option("--temperature", type=float, default=0.0, show_default=True, help="0 = greedy.")
@click.option("--top-p", type=float, default=1.0, show_default=True)
@click.option("--top-k", type=int, default=0, show_default=True)
@click.option("--min-p", type=float, default=0.0, show_default=True)
@click.option("--n", type=int, default=1, show_default=True, help="Samples (they share one prefill).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--stop", multiple=True, help="Stop string (repeatable).")
def generate(model_path, prompt, chat, system, max_new_tokens, temperature, top_p, top_k, min_p, n, seed, stop):
    """Generate text from MODEL for PROMPT."""
    from scoder_jax.generate.engine import Engine, generate_texts
    from scoder_jax.generate.sampling import SamplingParams
    from scoder_jax.models.checkpoint import load_model, load_tokenizer

    try:
        params = SamplingParams(temperature=temperature, top_p=top_p, top_k=top_k, min_p=min_p,
                                max_new_tokens=max_new_tokens, n=n, seed=seed, stop_strings=tuple(stop))
    except ValueError as e:
        raise ScoderError(f"sampling options: {e}") from None
    model = load_model(model_path)
    tok = load_tokenizer(model_path)
    engine = Engine(model, pad_id=tok.pad_id)
    outs = generate_texts(engine, tok, [prompt], params, chat=chat, system=system)[0]
    for i, text in enumerate(outs):
        if n > 1:
            click.echo(f"--- sample {i}")
        click.echo(text)
