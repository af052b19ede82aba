"""One evaluation, any benchmark: samples (a file, or a model's replies) in, `results.json` and the
benchmark's own result files out. `scoder eval`, `scoder iterate`'s eval stages and the
tests all go through `run_benchmark`.

Benchmarks: `humaneval`, `mbpp` (original tests, `scoder_jax.evaluate`), `humaneval+`, `mbpp+`
(EvalPlus, `eval.evalplus`), `livecodebench` (`eval.livecodebench`), or a JSONL file of
HumanEval-format problems.

Files in `out_dir`:
    results.json    the headline (`eval.results`): benchmark, problems file + sha256, samples or
                    model + decoding settings, pass@k (base, and plus for EvalPlus)
    results.jsonl   one line per problem (n, passes, pass@k, per-sample verdicts)
    outcomes.jsonl  every sandbox verdict as it finished (content-keyed): a rerun with the same
                    --out resumes from it
    humaneval/mbpp: summary.json, samples.jsonl (EvalPlus format)
    humaneval+/mbpp+: eval_results.json (evalplus.evaluate's layout), samples.jsonl
    livecodebench:  eval_all.json (lcb_runner's custom-evaluator layout), samples.json
                    ([{question_id, code_list}], LiveCodeBench's own sample format)
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from scoder_jax.errors import DataError, ScoderError
from scoder_jax.io import write_json_atomic, write_jsonl_atomic

log = logging.getLogger(__name__)

PLUS = ("humaneval+", "mbpp+")
NAMED = ("humaneval", "mbpp", *PLUS, "livecodebench")
NEEDS_FILE = (*PLUS, "livecodebench")
EVALPLUS_INSTRUCTION = ("Please provide a self-contained Python script that solves the following problem in a "
                        "markdown code block:")


@dataclass(frozen=True)
class Settings:
    """What a run may vary besides its inputs. `timeout_s` None: the benchmark's default (10 s a
    program for humaneval/mbpp, 6 s a test for livecodebench; EvalPlus derives its own)."""

    timeout_s: float | None = None
    memory_mb: int | None = None
    workers: int | None = None
    limit: int = 0
    partial: bool = False
    split: str = "test"
    since: str | None = None
    until: str | None = None
    min_time_limit: float = 4.0
    gt_time_limit_factor: float = 4.0
    timeout_per_task: float = 60.0
    progress: bool | None = None


@dataclass(frozen=True)
class Decoding:
    n: int = 1
    temperature: float = 0.0
    max_new_tokens: int = 512
    chat: bool = True

    def as_dict(self, prompt: str) -> dict:
        return {"n": self.n, "temperature": self.temperature, "max_new_tokens": self.max_new_tokens, "prompt": prompt}


def _missing_check(problems: Sequence[Any], have: set, source: str, partial: bool, key) -> list:
    missing = [key(p) for p in problems if key(p) not in have]
    if missing and not partial:
        raise DataError(f"{source}: no samples for {len(missing)} of {len(problems)} problems (first: {missing[0]}); "
                        "pass --partial to score only the problems that have samples, or --limit N")
    return missing


def _engine():
    try:
        return importlib.import_module("scoder_jax.generate.engine")
    except ModuleNotFoundError as e:
        if e.name in ("scoder_jax.generate", "scoder_jax.generate.engine"):
            raise ScoderError("model-driven evaluation needs the sampling engine (scoder_jax.generate)") from None
        raise


def _replies(model: str, prompts: list, dec: Decoding, *, chat: bool, stop: Sequence[str] = ()) -> list[list[str]]:
    outs = _engine().generate_completions(str(model), prompts, n=dec.n, temperature=dec.temperature,
                                          max_new_tokens=dec.max_new_tokens, stop=list(stop), chat=chat)
    if len(outs) != len(prompts) or any(len(o) != dec.n for o in outs):
        raise RuntimeError(f"generate_completions returned a wrong shape for {len(prompts)} prompts x n={dec.n}")
    return outs


# ----------------------------------------------------------------------------- per family


def _run_original(benchmark: str, problems_file, samples_file, model, dec: Decoding, out: Path, st: Settings) -> dict:
    from scoder_jax import evaluate as ev
    from scoder_jax.eval.results import build_results, mean_pass_at_k
    from scoder_jax.score.sandbox_types import Limits

    problems = ev.load_benchmark(benchmark, problems_file, split=st.split)
    if st.limit:
        problems = problems[: st.limit]
    if samples_file is not None:
        samples, prompt = _given_samples(samples_file, problems, st), None
    elif dec.chat:
        replies = _replies(model, [ev.CHAT_INSTRUCTION.format(prompt=p.prompt) for p in problems], dec, chat=True)
        samples, prompt = ev.chat_solutions(problems, replies), "chat: complete the function in a code block"
    else:
        samples = ev.generate_samples_with_model(str(model), problems, n=dec.n, temperature=dec.temperature,
                                                 max_new_tokens=dec.max_new_tokens)
        prompt = "completion: the problem's prompt, cut at its stop sequences"
    name = Path(benchmark).stem if benchmark not in NAMED else benchmark
    limits = Limits(timeout_s=st.timeout_s or 10.0, memory_mb=st.memory_mb or Limits().memory_mb)
    evaluation = ev.evaluate_samples(problems, samples, limits, st.workers, partial=st.partial, benchmark=name,
                                     source=str(samples_file) if samples_file else f"model {model}",
                                     stream=out / "outcomes.jsonl", progress=st.progress)
    evaluation.summary["source"] = str(samples_file) if samples_file else f"model:{model}"
    if model:
        evaluation.summary.update({"n": dec.n, "temperature": dec.temperature, "max_new_tokens": dec.max_new_tokens})
    ev.write_evaluation(evaluation, out)
    ev.export_evalplus(samples, out / "samples.jsonl", problems)
    scores = mean_pass_at_k([(r["n"], r["c"]) for r in evaluation.per_problem], ev.DEFAULT_KS)
    pfile = problems_file if problems_file is not None else (benchmark if Path(benchmark).is_file() else None)
    return build_results(name, problems_file=pfile, n_problems=len(evaluation.per_problem), n_samples=len(samples),
                         pass_at_k={"base": scores}, samples=str(samples_file) if samples_file else None,
                         model=str(model) if model else None, decoding=dec.as_dict(prompt) if model else None,
                         settings={"timeout_s": limits.timeout_s, "split": st.split if benchmark == "mbpp" else None},
                         missing=evaluation.summary.get("missing", []))


def _given_samples(samples_file, problems, st: Settings) -> list[dict]:
    """A samples file's rows, only those of the kept problems when `st.limit` cut them."""
    from scoder_jax import evaluate as ev

    samples = ev.read_samples(samples_file)
    if st.limit:
        keep = {p.task_id for p in problems}
        samples = [s for s in samples if s["task_id"] in keep]
    return samples


def _run_plus(benchmark: str, problems_file, samples_file, model, dec: Decoding, out: Path, st: Settings) -> dict:
    from scoder_jax import evaluate as ev
    from scoder_jax.eval import evalplus as ep
    from scoder_jax.eval.results import build_results

    problems = ep.load_plus(problems_file, benchmark)
    if st.limit:
        problems = problems[: st.limit]
    if samples_file is not None:
        samples, prompt = _given_samples(samples_file, problems, st), None
    elif dec.chat:
        prompts = [f"{EVALPLUS_INSTRUCTION}\n```\n{p.prompt.strip()}\n```\n" for p in problems]
        samples = ev.chat_solutions(problems, _replies(model, prompts, dec, chat=True))
        prompt = "chat: EvalPlus's instruction (no assistant prefill)"
    else:
        stop = ev.HUMANEVAL_STOP if benchmark == "humaneval+" else ev.MBPP_STOP
        replies = _replies(model, [p.prompt for p in problems], dec, chat=False, stop=stop)
        samples = [{"task_id": p.task_id, "completion": ev.truncate_at_stop(c, stop)}
                   for p, cs in zip(problems, replies) for c in cs]
        prompt = "completion: the problem's prompt, cut at its stop sequences"
    source = str(samples_file) if samples_file else f"model {model}"
    known = {p.task_id for p in problems}  # checked before the (slow, cached) ground truth runs
    for i, s in enumerate(samples):
        if s["task_id"] not in known:
            raise DataError(f"{source}: sample {i + 1}: task_id {s['task_id']!r} is not a task of {problems_file}")
    missing = _missing_check(problems, {s["task_id"] for s in samples}, source, st.partial, lambda p: p.task_id)
    with_samples = [p for p in problems if p.task_id not in set(missing)]
    truth = ep.ground_truth(with_samples, problems_file, benchmark, workers=st.workers, progress=st.progress,
                            memory_mb=st.memory_mb or ep.DEFAULT_MEMORY_MB)
    records = ep.check_samples(problems, samples, truth, benchmark, source=source, workers=st.workers,
                               stream=out / "outcomes.jsonl", progress=st.progress, min_time_limit=st.min_time_limit,
                               gt_time_limit_factor=st.gt_time_limit_factor, timeout_per_task=st.timeout_per_task,
                               memory_mb=st.memory_mb or ep.DEFAULT_MEMORY_MB)
    eval_results, per_problem, scores = ep.evalplus_results(problems, records, problems_file)
    write_json_atomic(out / "eval_results.json", eval_results)
    write_jsonl_atomic(out / "results.jsonl", per_problem)
    write_jsonl_atomic(out / "samples.jsonl", ({"task_id": r["task_id"], "solution": r["solution"]} for r in records))
    return build_results(benchmark, problems_file=problems_file, n_problems=len(per_problem), n_samples=len(records),
                         pass_at_k=scores, samples=str(samples_file) if samples_file else None,
                         model=str(model) if model else None, decoding=dec.as_dict(prompt) if model else None,
                         settings={"min_time_limit": st.min_time_limit, "gt_time_limit_factor": st.gt_time_limit_factor,
                                   "timeout_per_task": st.timeout_per_task}, missing=missing)


def _run_lcb(problems_file, samples_file, model, dec: Decoding, out: Path, st: Settings) -> dict:
    from scoder_jax.eval import livecodebench as lcb
    from scoder_jax.eval.results import build_results

    problems, all_ids = lcb.load_lcb(problems_file, since=st.since, until=st.until)
    if st.limit:
        problems = problems[: st.limit]
    window = {p.question_id for p in problems}
    if samples_file is not None:
        samples = lcb.read_lcb_samples(samples_file)
        for s in samples:
            if s["task_id"] not in all_ids:
                raise DataError(f"{s['where']}: question_id {s['task_id']!r} is not a problem of {problems_file}")
        skipped = sum(s["task_id"] not in window for s in samples)
        samples = [s for s in samples if s["task_id"] in window]
        if skipped:
            log.info("livecodebench: %d samples are for problems outside the window (or --limit); not scored", skipped)
        prompt = None
    else:
        prompts = [[{"role": "system", "content": lcb.SYSTEM_MESSAGE}, {"role": "user", "content": lcb.user_prompt(p)}]
                   for p in problems]
        replies = _replies(model, prompts, dec, chat=True)
        samples = [{"task_id": p.question_id, "code": lcb.extract_code(r), "reply": r}
                   for p, rs in zip(problems, replies) for r in rs]
        prompt = "chat: LiveCodeBench's generic instruct prompt (system + question + format)"
    source = str(samples_file) if samples_file else f"model {model}"
    missing = _missing_check(problems, {s["task_id"] for s in samples}, source, st.partial, lambda p: p.question_id)
    timeout = int(st.timeout_s or lcb.DEFAULT_TIMEOUT_S)
    graded = lcb.grade(problems, samples, timeout_s=timeout, memory_mb=st.memory_mb or lcb.DEFAULT_MEMORY_MB,
                       workers=st.workers, stream=out / "outcomes.jsonl", progress=st.progress)
    eval_all, per_problem, scores, by_difficulty = lcb.lcb_results(problems, samples, graded)
    write_json_atomic(out / "eval_all.json", eval_all)
    write_jsonl_atomic(out / "results.jsonl", per_problem)
    by_q: dict[str, list[str]] = {}
    for s in samples:
        by_q.setdefault(s["task_id"], []).append(s["code"])
    write_json_atomic(out / "samples.json", [{"question_id": q, "code_list": c} for q, c in by_q.items()])
    dates = [p.contest_date for p in problems if p.question_id in by_q]
    return build_results("livecodebench", problems_file=problems_file, n_problems=len(per_problem),
                         n_samples=len(samples), pass_at_k=scores, samples=str(samples_file) if samples_file else None,
                         model=str(model) if model else None, decoding=dec.as_dict(prompt) if model else None,
                         by_difficulty=by_difficulty,
                         window={"since": st.since, "until": st.until,
                                 "first": min(dates).date().isoformat() if dates else None,
                                 "last": max(dates).date().isoformat() if dates else None},
                         settings={"timeout_s": timeout}, missing=missing)


# ----------------------------------------------------------------------------- entry points


def run_benchmark(benchmark: str, out_dir: str | Path, *, problems_file: str | Path | None = None,
                  samples_file: str | Path | None = None, model: str | Path | None = None,
                  decoding: Decoding = Decoding(), settings: Settings = Settings()) -> dict:
    """Scores `samples_file` or `model` on `benchmark`; writes the files above; returns results.json's record."""
    from scoder_jax.eval.results import write_results

    if (samples_file is None) == (model is None):
        raise ScoderError("pass exactly one of --samples FILE (score existing samples) or --model PATH")
    name = benchmark.lower() if benchmark.lower() in NAMED else benchmark
    if name in NEEDS_FILE and problems_file is None:
        raise ScoderError(f"--benchmark {name} needs --problems FILE (see the README for where to get it)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if name in PLUS:
        record = _run_plus(name, problems_file, samples_file, model, decoding, out, settings)
    elif name == "livecodebench":
        record = _run_lcb(problems_file, samples_file, model, decoding, out, settings)
    else:
        record = _run_original(name, problems_file, samples_file, model, decoding, out, settings)
    write_results(record, out)
    return record


def run_suite(model: str | Path, cfg: Any, out_dir: str | Path) -> dict:
    """The run config's evaluation (`eval` section): every benchmark of `cfg.benchmarks` whose
    problems file is given (`cfg.files[name]`, or `cfg.problems` for `cfg.benchmark`), else
    `cfg.benchmark` alone; each into out_dir/<name>/ (alone: out_dir). Returns the stage's
    counts: the first benchmark's pass@1 and n_problems, and per benchmark its pass@k."""
    names = tuple(getattr(cfg, "benchmarks", ()) or ()) or (cfg.benchmark,)
    files = dict(getattr(cfg, "files", None) or {})
    since, until = getattr(cfg, "since", None), getattr(cfg, "until", None)
    decoding = Decoding(n=cfg.n, temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens, chat=True)
    counts: dict[str, Any] = {"benchmarks": {}, "skipped": []}
    for name in names:
        pfile = files.get(name) or (cfg.problems if name == cfg.benchmark else None)
        if name in NEEDS_FILE and not pfile:
            log.warning("eval: %s skipped: no problems file (eval.files.%s)", name, name)
            counts["skipped"].append(name)
            continue
        out = Path(out_dir) / name.replace("+", "_plus") if len(names) > 1 else Path(out_dir)
        settings = Settings(timeout_s=cfg.timeout_s if name in ("humaneval", "mbpp") or name not in NAMED else None,
                            limit=cfg.limit, since=since, until=until, progress=False)
        record = run_benchmark(name, out, problems_file=pfile, model=model, decoding=decoding, settings=settings)
        flat = {f"{k}{'' if part == 'base' else '_plus'}": v
                for part, d in record["pass_at_k"].items() for k, v in d.items()}
        counts["benchmarks"][name] = {**flat, "n_problems": record["n_problems"]}
        if "pass@1" not in counts:
            counts.update({"benchmark": name, "n_problems": record["n_problems"], **flat})
    return counts
