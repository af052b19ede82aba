"""`scoder eval`: pass@k of samples or of a model on HumanEval, MBPP, HumanEval+, MBPP+,
LiveCodeBench or a HumanEval-format file (`eval.suite.run_benchmark` does the work)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from scoder_jax.eval.suite import NAMED, Decoding, Settings, run_benchmark


@click.command("eval")
@click.option("--benchmark", "-b", required=True,
              help="humaneval, mbpp, humaneval+, mbpp+, livecodebench, or a JSONL file of HumanEval-format problems.")
@click.option("--problems", "problems_file", type=click.Path(dir_okay=False), default=None,
              help="Problems file: HumanEvalPlus.jsonl, MbppPlus.jsonl, a LiveCodeBench code_generation_lite "
                   "test*.jsonl, MBPP sanitized JSON (sanitized-mbpp.json), or a HumanEval JSONL(.gz).")
@click.option("--split", default="test", show_default=True,
              help="MBPP task-id range: test (257 sanitized problems), train, validation, prompt, or all.")
@click.option("--samples", "samples_file", type=click.Path(dir_okay=False), default=None,
              help="Score existing samples: EvalPlus JSONL (task_id and solution or completion); for livecodebench "
                   "also LiveCodeBench's JSON array of {question_id, code_list}.")
@click.option("--model", "model_path", default=None, help="Checkpoint to sample from.")
@click.option("--n", "n", type=click.IntRange(min=1), default=1, show_default=True,
              help="Samples per problem (--model).")
@click.option("--temperature", type=click.FloatRange(min=0.0), default=0.0, show_default=True,
              help="Sampling temperature (--model).")
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=512, show_default=True,
              help="Reply length cap (--model).")
@click.option("--chat/--completion", "chat", default=None,
              help="--model: instruct prompts through the chat template, or plain prompt completion "
                   "[default: completion for humaneval/mbpp/+, chat for livecodebench].")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Output directory [default: eval-<benchmark>]; a rerun with the same one resumes.")
@click.option("--timeout", type=click.FloatRange(min=0.0, min_open=True), default=None,
              help="humaneval/mbpp: seconds per program [10]; livecodebench: seconds per test [6].")
@click.option("--memory", "memory_mb", type=click.IntRange(min=64), default=None,
              help="MB of memory per sandboxed program [1024; 4096 for humaneval+/mbpp+/livecodebench].")
@click.option("--since", default=None, help="livecodebench: only problems with contest_date >= YYYY-MM-DD.")
@click.option("--until", default=None, help="livecodebench: only problems with contest_date <= YYYY-MM-DD (midnight).")
@click.option("--min-time-limit", type=click.FloatRange(min=0.0, min_open=True), default=4.0, show_default=True,
              help="humaneval+/mbpp+: floor of the per-input time limit (EvalPlus's; its 0.3.1 wheel used 1).")
@click.option("--gt-time-limit-factor", type=click.FloatRange(min=0.0, min_open=True), default=4.0, show_default=True,
              help="humaneval+/mbpp+: per-input limit = factor x the canonical solution's time.")
@click.option("--timeout-per-task", type=click.FloatRange(min=0.0, min_open=True), default=60.0, show_default=True,
              help="humaneval+/mbpp+: cap on one run over all inputs (EVALPLUS_TIMEOUT_PER_TASK).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Parallel sandboxed programs [default: CPU count].")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N problems.")
@click.option("--partial", is_flag=True, help="With --samples: score only the problems that have samples.")
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr [default: when it is a terminal].")
def eval_command(benchmark, problems_file, split, samples_file, model_path, n, temperature, max_new_tokens, chat,
                 out_dir, timeout, memory_mb, since, until, min_time_limit, gt_time_limit_factor, timeout_per_task,
                 workers, limit, partial, progress):
    """pass@k (unbiased estimator) of samples or of a model on a benchmark; writes results.json."""
    name = benchmark.lower() if benchmark.lower() in NAMED else benchmark
    if chat is None:
        chat = name == "livecodebench"
    settings = Settings(timeout_s=timeout, memory_mb=memory_mb, workers=workers, limit=limit or 0, partial=partial,
                        split=split, since=since, until=until, min_time_limit=min_time_limit,
                        gt_time_limit_factor=gt_time_limit_factor, timeout_per_task=timeout_per_task, progress=progress)
    label = Path(name).stem if name not in NAMED else name.replace("+", "_plus")
    out = Path(out_dir) if out_dir else Path(f"eval-{label}")
    record = run_benchmark(name, out, problems_file=problems_file, samples_file=samples_file, model=model_path,
                           decoding=Decoding(n=n, temperature=temperature, max_new_tokens=max_new_tokens, chat=chat),
                           settings=settings)
    line = {"benchmark": record["benchmark"], "n_problems": record["n_problems"]}
    for part, scores in record["pass_at_k"].items():
        line.update({(k if part == "base" else f"{k}_plus"): v for k, v in scores.items()})
    if record.get("by_difficulty"):
        line["by_difficulty"] = {d: v.get("pass@1") for d, v in record["by_difficulty"].items()}
    click.echo(json.dumps({**line, "out": str(out)}))
