"""CLI of the scoring stage: `scoder score run | fit-weights | select`."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import click

from scoder_jax.errors import DataError
from scoder_jax.score.judge import RATINGS
from scoder_jax.synth.prompts import DEFAULT_FORMAT, FORMATS

DEFAULT_RATING = "expected"  # score.rating's default in `scoder iterate` (runconfig.ScoreSection)


_format_option = click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default=DEFAULT_FORMAT, show_default=True,
    help="Sample format (synth.format of `scoder iterate`): problem_solution_tests runs the samples' tests "
         "(signal passes); problem_solution checks parses and runs only (passes null).")


def _judge_options(f):
    f = click.option("--judge", "judge_path", required=True, type=click.Path(path_type=Path),
                     help="Judge checkpoint (GGUF, HF dir, scoder-jax checkpoint): the synthesizer's base model "
                          "or a trained scorer.")(f)
    f = click.option("--judge-tokenizer", type=click.Path(path_type=Path),
                     help="Tokenizer of the judge (default: the checkpoint's own).")(f)
    f = click.option("--aspects", "aspects_path", type=click.Path(path_type=Path, dir_okay=False),
                     help="JSON or YAML list of {name, title, rubric} (default: clarity, correctness, consistency, "
                          "relevance, difficulty).")(f)
    f = click.option("--rating", type=click.Choice(RATINGS), default=DEFAULT_RATING, show_default=True,
                     help="A rating from the judge's ten digit probabilities (score.rating of `scoder iterate`): "
                          "expected = the expected digit, integer = the most likely digit (the paper's).")(f)
    f = click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)(f)
    f = click.option("--max-prompt-tokens", type=click.IntRange(min=64),
                     help="Cut candidate texts so that one judge prompt fits (default: the judge's context).")(f)
    f = click.option("--exec/--no-exec", "use_exec", default=True, show_default=True,
                     help="Run solutions and tests in the sandbox for the execution signals.")(f)
    f = click.option("--timeout", "timeout_s", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
                     help="Sandbox wall-clock seconds per program.")(f)
    f = click.option("--workers", type=click.IntRange(min=1), help="Sandbox worker threads (default: CPU count).")(f)
    f = click.option("--progress/--no-progress", default=True, show_default=True)(f)
    return f


def _aspects(path):
    from scoder_jax.score.judge import aspects_from

    if path is None:
        return aspects_from(None)
    import yaml

    from scoder_jax.errors import ConfigError

    if not path.is_file():
        raise ConfigError(f"{path}: no such aspects file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: malformed YAML/JSON ({e})") from None
    if isinstance(data, dict):
        data = data.get("aspects")
    if not isinstance(data, list):
        raise ConfigError(f"{path}: expected a list of {{name, title, rubric}} (or a mapping with 'aspects')")
    try:
        return aspects_from(data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def _judge(judge_path, judge_tokenizer, aspects_path, batch_size, max_prompt_tokens, rating):
    from scoder_jax.score.judge import load_judge

    return load_judge(str(judge_path), _aspects(aspects_path),
                      tokenizer=str(judge_tokenizer) if judge_tokenizer else None,
                      batch_size=batch_size, max_prompt_tokens=max_prompt_tokens, rating=rating)


def _limits(timeout_s):
    from scoder_jax.score.sandbox_types import Limits

    return Limits(timeout_s=timeout_s)


@click.group("score")
def score() -> None:
    """Score candidates: a multi-aspect LLM judge, execution signals, weights, selection."""


@score.command("run")
@click.option("--candidates", "candidates_path", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="Candidates JSONL (`scoder sample`'s candidates.jsonl).")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Output directory: judged.jsonl, scores.jsonl, selected.jsonl, summary.json.")
@click.option("--weights", "weights_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Weights JSON from `scoder score fit-weights` (default: mean rating + execution bonus).")
@click.option("--threshold", type=float, help="Keep totals >= this (default: the weights' suggested threshold).")
@click.option("--require-parse/--no-require-parse", default=True, show_default=True)
@click.option("--require-pass/--no-require-pass", default=False, show_default=True)
@click.option("--limit", type=click.IntRange(min=1), help="Score only the first N candidates.")
@_format_option
@_judge_options
def run(candidates_path, out_dir, weights_path, threshold, require_parse, require_pass, limit, fmt, judge_path,
        judge_tokenizer, aspects_path, rating, batch_size, max_prompt_tokens, use_exec, timeout_s, workers,
        progress):
    """Judge, execute and select the best candidate per snippet.

    \b
    scoder score run --candidates runs/x/iter_01/samples/candidates.jsonl --judge base.gguf \\
                     --out runs/x/iter_01/scores --weights runs/x/weights.json

    Reruns resume: candidates already in judged.jsonl are not judged again.
    """
    from scoder_jax.score.select import SelectConfig, load_candidates, score_candidates
    from scoder_jax.score.weights import Weights
    from scoder_jax.synth.prompts import has_tests

    cands = load_candidates(candidates_path, limit)
    if not cands:
        raise DataError(f"{candidates_path}: no candidates")
    weights = Weights.load(weights_path) if weights_path else None
    judge = _judge(judge_path, judge_tokenizer, aspects_path, batch_size, max_prompt_tokens, rating)
    summary = score_candidates(cands, judge, out_dir, judge_name=str(judge_path), weights=weights,
                               select=SelectConfig(threshold, require_parse, require_pass), use_exec=use_exec,
                               limits=_limits(timeout_s), workers=workers, progress=progress, tests=has_tests(fmt))
    click.echo(json.dumps(summary))
    _echo_selection(summary, out_dir)


@score.command("select")
@click.option("--candidates", "candidates_path", required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="The directory of a finished `scoder score run` (its judged.jsonl is reused).")
@click.option("--weights", "weights_path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--threshold", type=float)
@click.option("--require-parse/--no-require-parse", default=True, show_default=True)
@click.option("--require-pass/--no-require-pass", default=False, show_default=True)
@click.option("--limit", type=click.IntRange(min=1))
def select_cmd(candidates_path, out_dir, weights_path, threshold, require_parse, require_pass, limit):
    """Redo the selection with other weights or threshold, without judging again."""
    from scoder_jax.score.select import SelectConfig, load_candidates, reselect
    from scoder_jax.score.weights import Weights

    cands = load_candidates(candidates_path, limit)
    weights = Weights.load(weights_path) if weights_path else None
    summary = reselect(cands, out_dir, weights=weights, select=SelectConfig(threshold, require_parse, require_pass))
    click.echo(json.dumps(summary))
    _echo_selection(summary, out_dir)


def _echo_selection(summary: dict, out_dir: Path) -> None:
    reasons = ", ".join(f"{k} {v}" for k, v in summary["reasons"].items() if k != "selected")
    click.echo(f"score: {summary['selected']} of {summary['candidates']} candidates selected for "
               f"{summary['snippets']} snippets (threshold {summary['threshold']}); dropped: {reasons or 'none'}; "
               f"in {out_dir / 'selected.jsonl'}", err=True)


@score.command("fit-weights")
@click.option("--positives", "positives_path", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="Seed samples (seed.jsonl): the positives; their corruptions are the negatives.")
@click.option("--out", "out_path", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="Weights JSON to write; the per-sample features go beside it (*.calibration.jsonl).")
@click.option("--method", type=click.Choice(["nnls", "logistic"]), default="nnls", show_default=True)
@click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True)
@click.option("--limit", type=click.IntRange(min=2), help="Use only the first N positives.")
@click.option("--negatives", type=click.IntRange(min=2),
              help="Number of corrupted samples (default: as many as positives).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--l2", type=click.FloatRange(min=0), default=1e-2, show_default=True, help="Logistic L2 penalty.")
@_format_option
@_judge_options
def fit_weights_cmd(positives_path, out_path, method, folds, limit, negatives, seed, l2, fmt, judge_path,
                    judge_tokenizer, aspects_path, rating, batch_size, max_prompt_tokens, use_exec, timeout_s, workers,
                    progress):
    """Fit the score weights on seed samples (positives) and corrupted copies (negatives).

    \b
    scoder score fit-weights --positives runs/x/seed/seed.jsonl --judge base.gguf --out runs/x/weights.json

    Prints the report: fitted weights, cross-validated AUC, each aspect's own AUC.
    """
    from scoder_jax.io import write_jsonl_atomic
    from scoder_jax.score.select import load_candidates
    from scoder_jax.score.weights import calibrate
    from scoder_jax.synth.prompts import has_tests

    positives = load_candidates(positives_path, limit)
    judge = _judge(judge_path, judge_tokenizer, aspects_path, batch_size, max_prompt_tokens, rating)
    weights, rows = calibrate(positives, judge, method=method, folds=folds, seed=seed, n_negatives=negatives,
                              use_exec=use_exec, limits=_limits(timeout_s), workers=workers, l2=l2, progress=progress,
                              tests=has_tests(fmt))
    weights = dataclasses.replace(weights, report={**weights.report, "judge": str(judge_path), "rating": rating,
                                                   "format": fmt, "positives": str(positives_path)})
    weights.save(out_path)
    calib = out_path.with_name(out_path.stem + ".calibration.jsonl")
    write_jsonl_atomic(calib, rows)
    d = weights.to_dict()
    click.echo(json.dumps(d))
    r = d["report"]
    click.echo(f"fit-weights ({method}): AUC {r['auc']:.3f} in sample, {r['cv_auc']:.3f} cross-validated "
               f"({r['folds']} folds) on {r['n_pos']} positives and {r['n_neg']} negatives; weights in {out_path}, "
               f"features in {calib}", err=True)
