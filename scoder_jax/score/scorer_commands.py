"""CLI of the dedicated scorer: `scoder scorer annotate | train`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from scoder_jax.errors import ConfigError, DataError


def _aspects(spec: str | None, config_spec: str | None):
    """The aspects: a run config's score.aspects, a JSON/YAML file of {name, title, rubric}, or
    comma-separated names of the judge's default aspects; default: every default aspect."""
    from scoder_jax.score.judge import DEFAULT_ASPECTS

    if spec and config_spec:
        raise ConfigError("give --aspects or --config, not both")
    if config_spec:
        from scoder_jax.runconfig import load_run_config

        cfg, _ = load_run_config(config_spec, check_inputs=False)
        names = list(cfg.score.aspects)
    elif spec and Path(spec).is_file():
        from scoder_jax.score.score_commands import _aspects as from_file

        return from_file(Path(spec))
    elif spec:
        names = [n.strip() for n in spec.split(",") if n.strip()]
    else:
        return DEFAULT_ASPECTS
    by_name = {a.name: a for a in DEFAULT_ASPECTS}
    unknown = [n for n in names if n not in by_name]
    if unknown or not names or len(set(names)) != len(names):
        raise ConfigError(f"--aspects {spec!r}: expected distinct names among {', '.join(by_name)} "
                          "(or a JSON/YAML file of {name, title, rubric})")
    return tuple(by_name[n] for n in names)


@click.group("scorer")
def scorer() -> None:
    """The dedicated multi-aspect scorer: teacher annotations, then a fine-tuned small model."""


@scorer.command("annotate")
@click.option("--candidates", "candidates_path", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="Candidates JSONL (`scoder sample`'s candidates.jsonl, a run's iter_XX/samples/candidates.jsonl, "
                   "or a seed.jsonl).")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Annotation folder: annotations.jsonl, failures.jsonl, cache/, usage.json, summary.json.")
@click.option("--teacher-url", required=True, help="OpenAI-compatible base URL, e.g. https://api.openai.com/v1.")
@click.option("--teacher-model", required=True, help="Model name sent to the teacher.")
@click.option("--api-key-env", default="OPENAI_API_KEY", show_default=True,
              help="Environment variable holding the API key ('' for none). The key itself is never a flag.")
@click.option("--aspects", "aspects_spec",
              help="Comma-separated aspect names (default: all of clarity, correctness, consistency, relevance, "
                   "difficulty), or a JSON/YAML file of {name, title, rubric}.")
@click.option("--config", "config_spec", help="Take the aspects from this run config's score.aspects.")
@click.option("--sample", "sample_n", type=click.IntRange(min=1),
              help="Rate a seeded random sample of this many candidates (default: all).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of --sample.")
@click.option("--parse-retries", type=click.IntRange(min=0), default=2, show_default=True,
              help="Ask again this many times when a reply does not read as one digit per aspect.")
@click.option("--concurrency", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--budget-usd", type=click.FloatRange(min=0), default=20.0, show_default=True,
              help="Hard cap on the cumulative cost in --out; with --price-* at 0 it never binds.")
@click.option("--max-tokens-total", type=click.IntRange(min=0), help="Hard cap on cumulative tokens.")
@click.option("--price-prompt", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="USD per 1k prompt tokens.")
@click.option("--price-completion", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="USD per 1k completion tokens.")
@click.option("--max-tokens", type=click.IntRange(min=1), default=64, show_default=True, help="max_tokens per reply.")
@click.option("--temperature", type=float, default=0.0, show_default=True)
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0.001), default=120.0, show_default=True)
@click.option("--deadline", "deadline_s", type=click.FloatRange(min=0.001), default=600.0, show_default=True)
@click.option("--max-retries", type=click.IntRange(min=0), default=6, show_default=True,
              help="HTTP retries (429, 5xx, timeouts) per request.")
@click.option("--retry-failed", is_flag=True, help="Send again the candidates whose failure was transient.")
@click.option("--progress/--no-progress", default=True, show_default=True)
def annotate_cmd(candidates_path, out_dir, teacher_url, teacher_model, api_key_env, aspects_spec, config_spec,
                 sample_n, seed, parse_retries, concurrency, budget_usd, max_tokens_total, price_prompt,
                 price_completion, max_tokens, temperature, timeout_s, deadline_s, max_retries, retry_failed,
                 progress):
    """The teacher rates candidates on the aspects, 0-9 each (one prompt per candidate).

    \b
    scoder scorer annotate --candidates runs/x/iter_01/samples/candidates.jsonl --out runs/scorer/ann \\
        --teacher-url https://api.openai.com/v1 --teacher-model gpt-4o-mini --api-key-env OPENAI_API_KEY \\
        --sample 2000 --config configs/demo.yaml

    Replies are read strictly (one `name: digit` line per aspect); one that does not read is
    asked again (--parse-retries), then recorded as a failure, never guessed at. Reruns resume
    and reuse cached replies; the budget cap leaves the rest pending.
    """
    from scoder_jax.score.annotate import annotate, pick_sample
    from scoder_jax.score.select import load_candidates
    from scoder_jax.synth.teacher_client import TeacherConfig

    aspects = _aspects(aspects_spec, config_spec)
    cfg = TeacherConfig(url=teacher_url, model=teacher_model, api_key_env=api_key_env or None,
                        concurrency=concurrency, max_retries=max_retries, timeout_s=timeout_s, deadline_s=deadline_s,
                        temperature=temperature, max_tokens=max_tokens, price_per_1k_prompt=price_prompt,
                        price_per_1k_completion=price_completion, budget_usd=budget_usd,
                        max_tokens_total=max_tokens_total)
    cands = load_candidates(candidates_path)
    chosen = pick_sample(cands, sample_n, seed)
    if not chosen:
        raise DataError(f"{candidates_path}: no candidate with a problem and a solution to rate")
    summary = annotate(chosen, out_dir, cfg, aspects, parse_retries=parse_retries, retry_failed=retry_failed,
                       progress=progress)
    click.echo(json.dumps(summary))
    reasons = ", ".join(f"{k} {v}" for k, v in summary["reasons"].items())
    click.echo(f"annotate: {summary['annotations']} rated, {summary['failures']} failed"
               f"{f' ({reasons})' if reasons else ''}, {summary['already_done']} already done, "
               f"{summary['pending']} pending; {summary['requests']} requests, ${summary['cost_usd']:.4f} spent; "
               f"in {out_dir / 'annotations.jsonl'}", err=True)
    if summary["budget_stopped"]:
        click.echo(f"budget cap reached: {summary['pending']} candidates left pending; rerun with a larger "
                   "--budget-usd (or --max-tokens-total) to continue", err=True)


@scorer.command("train")
@click.option("--annotations", "annotations_dir", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="`scoder scorer annotate`'s folder.")
@click.option("--base", required=True, help="The model to fine-tune: a checkpoint path or a preset.")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Scorer folder (use it as score.judge): scorer.json, ckpt/, report.json, heldout.jsonl.")
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Train config YAML (the train section); without it the scorer's defaults below apply.")
@click.option("--tokenizer", help="Tokenizer of the base (default: the checkpoint's own).")
@click.option("--holdout", type=click.FloatRange(0, 1, max_open=True), default=0.2, show_default=True,
              help="Fraction of the annotated candidates held out for the agreement figures.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the held-out split.")
@click.option("--rating", type=click.Choice(["integer", "expected"]), default="integer", show_default=True,
              help="How the agreement reads a judge's rating: the most likely digit, or the expected digit.")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True, help="Judge batch size.")
@click.argument("overrides", nargs=-1)
def train_cmd(annotations_dir, base, out_dir, config_path, tokenizer, holdout, seed, rating, batch_size, overrides):
    """Fine-tune a small model to give the teacher's aspect ratings; report held-out agreement.

    \b
    scoder scorer train --annotations runs/scorer/ann --base smollm2-135m.gguf --out runs/scorer/s1 \\
        lora.rank=16 max_steps=2000

    OVERRIDES are the trainer's dotted keys (seq_len=1024, optim.lr=1e-4, lora.rank=8, lora=null).
    Without --config the scorer's defaults apply first: seq_len=1024 batch_size=8 epochs=3
    optim.lr=1e-4 data.too_long=drop. Prints per-aspect agreement with the teacher (exact,
    within 1, Spearman) for the scorer and for the untrained base as a judge.
    """
    from scoder_jax.score.scorer import SCORER_TRAIN_DEFAULTS, report_table, train_scorer
    from scoder_jax.train.config import load_train_config

    extra = [f"tokenizer={tokenizer}"] if tokenizer else []
    cfg = load_train_config(config_path, [*(() if config_path else SCORER_TRAIN_DEFAULTS), *extra, *overrides])
    report = train_scorer(annotations_dir, out_dir, cfg, base=base, holdout=holdout, seed=seed, rating=rating,
                          batch_size=batch_size)
    click.echo(json.dumps(report))
    click.echo(report_table(report), err=True)
    click.echo(f"scorer: {out_dir} (use it as score.judge; report in {out_dir / 'report.json'})", err=True)
