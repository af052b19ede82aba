"""CLI commands of the synthesis stage: `scoder seed` (teacher or import)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Iterator

import click

from scoder_jax.errors import DataError, ScoderError
from scoder_jax.synth.prompts import DEFAULT_FORMAT, FORMATS


def _iter_snippets(path: Path) -> Iterator[dict]:
    """Snippet records from a JSONL file or every *.jsonl[.gz|.zst] of a directory, in name
    order; each record carries `_where` (file:line) for error messages."""
    from scoder_jax.io import iter_jsonl

    if path.is_dir():
        files = sorted(p for p in path.iterdir()
                       if p.is_file() and p.name.endswith((".jsonl", ".jsonl.gz", ".jsonl.zst")))
        if not files:
            raise DataError(f"{path}: no *.jsonl files in this directory (--snippets expects the pool)")
    elif path.exists():
        files = [path]
    else:
        raise DataError(f"{path}: no such file (--snippets expects a pool JSONL file or directory)")
    for f in files:
        yield from iter_jsonl(f, where_field="_where")


@click.command("seed")
@click.option("--snippets", "snippets_path", type=click.Path(path_type=Path),
              help="Snippet pool: a JSONL file or a directory of them (fields id, lang, content).")
@click.option("--import", "import_path", type=click.Path(path_type=Path),
              help="Import an existing seed set instead (Magicoder OSS-Instruct JSONL or scoder Sample JSONL).")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Seed directory: seed.jsonl, failures.jsonl, cache/, usage.json.")
@click.option("--teacher-url", help="OpenAI-compatible base URL, e.g. https://api.openai.com/v1.")
@click.option("--teacher-model", help="Model name sent to the teacher.")
@click.option("--api-key-env", default="OPENAI_API_KEY", show_default=True,
              help="Environment variable holding the API key ('' for none). The key itself is never a flag.")
@click.option("--limit", type=click.IntRange(min=1), help="Use only the first N snippets of the pool.")
@click.option("--concurrency", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--budget-usd", type=click.FloatRange(min=0), default=20.0, show_default=True,
              help="Hard cap on the cumulative cost in --out; with --price-* at 0 it never binds.")
@click.option("--max-tokens-total", type=click.IntRange(min=0), help="Hard cap on cumulative tokens.")
@click.option("--price-prompt", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="USD per 1k prompt tokens.")
@click.option("--price-completion", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="USD per 1k completion tokens.")
@click.option("--max-tokens", type=click.IntRange(min=1), default=2048, show_default=True,
              help="max_tokens per reply.")
@click.option("--temperature", type=float, default=0.0, show_default=True)
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0.001), default=120.0, show_default=True,
              help="Seconds to wait for a connection or for the next byte of a reply.")
@click.option("--deadline", "deadline_s", type=click.FloatRange(min=0.001), default=600.0, show_default=True,
              help="Seconds one attempt may spend reading its reply.")
@click.option("--max-retries", type=click.IntRange(min=0), default=6, show_default=True)
@click.option("--retry-failed", is_flag=True,
              help="Send again the snippets whose failure was transient (429, 5xx, timeouts).")
@click.option("--strict", is_flag=True, help="With --import: stop at the first unusable line.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=DEFAULT_FORMAT, show_default=True,
              help="Sample format (synth.format of `scoder iterate`): problem_solution_tests asks the teacher for "
                   "[Tests] and requires them (--import drops the samples without tests, e.g. all of Magicoder "
                   "OSS-Instruct's but those with embedded asserts); problem_solution asks for and needs none.")
@click.option("--progress/--no-progress", default=True, show_default=True)
def seed(snippets_path, import_path, out_dir, teacher_url, teacher_model, api_key_env, limit, concurrency,
         budget_usd, max_tokens_total, price_prompt, price_completion, max_tokens, temperature, timeout_s,
         deadline_s, max_retries, retry_failed, strict, fmt, progress):
    """Make the seed set D_p: ask a teacher LLM, or import an existing set.

    \b
    scoder seed --snippets pool/ --out runs/x/seed --teacher-url https://api.openai.com/v1 \\
                --teacher-model gpt-4o-mini --api-key-env OPENAI_API_KEY --limit 2000
    scoder seed --import oss-instruct-75k.jsonl --format problem_solution --out runs/x/seed

    Reruns resume: snippets already answered (or failed for good) are skipped and cached
    replies are reused, so no request is paid twice. When the budget cap stops the run, the
    remaining snippets stay pending; rerun with a larger --budget-usd to continue.
    """
    if (snippets_path is None) == (import_path is None):
        raise ScoderError("scoder seed: give exactly one of --snippets POOL (ask a teacher) or --import FILE")
    if import_path is not None:
        from scoder_jax.synth.seed_import import import_seed

        summary = import_seed(import_path, out_dir, strict=strict, fmt=fmt)
        click.echo(json.dumps(summary))
        if summary["skipped"]:
            click.echo(f"skipped {summary['skipped']} unusable lines (all in {out_dir / 'import_errors.jsonl'}); "
                       f"first: {summary['first_errors'][0]}", err=True)
        if summary["dropped_no_tests"]:
            click.echo(f"dropped {summary['dropped_no_tests']} samples without tests (--format {fmt} needs them; "
                       f"--format problem_solution keeps them); first: "
                       f"{', '.join(summary['first_dropped_no_tests'])}", err=True)
        return

    for flag, value in (("--teacher-url", teacher_url), ("--teacher-model", teacher_model)):
        if not value:
            raise ScoderError(f"scoder seed --snippets: {flag} is required")
    from scoder_jax.synth.teacher import run_teacher
    from scoder_jax.synth.teacher_client import TeacherConfig

    cfg = TeacherConfig(
        url=teacher_url, model=teacher_model, api_key_env=api_key_env or None, concurrency=concurrency,
        max_retries=max_retries, timeout_s=timeout_s, deadline_s=deadline_s, temperature=temperature,
        max_tokens=max_tokens, price_per_1k_prompt=price_prompt, price_per_1k_completion=price_completion,
        budget_usd=budget_usd, max_tokens_total=max_tokens_total,
    )
    if budget_usd and not (price_prompt or price_completion):
        click.echo("note: --price-prompt/--price-completion are 0, so --budget-usd cannot bind; "
                   "set the teacher's prices (USD per 1k tokens) to enforce it", err=True)
    records = list(itertools.islice(_iter_snippets(snippets_path), limit))
    summary = run_teacher(records, out_dir, cfg, fmt=fmt, retry_failed=retry_failed, progress=progress)
    click.echo(json.dumps(summary))
    reasons = ", ".join(f"{k} {v}" for k, v in summary["reasons"].items())
    click.echo(f"seed: {summary['samples']} new samples, {summary['failures']} failures"
               f"{f' ({reasons})' if reasons else ''}, {summary['already_done']} already done, "
               f"{summary['pending']} pending; {summary['requests']} requests this run, "
               f"${summary['cost_usd']:.4f} spent in {out_dir}", err=True)
    if summary["budget_stopped"]:
        click.echo(f"budget cap reached: {summary['pending']} snippets left pending; rerun with a larger "
                   "--budget-usd (or --max-tokens-total) to continue", err=True)
