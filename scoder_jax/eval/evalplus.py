"""HumanEval+ and MBPP+ (EvalPlus) from their released files, scored the way `evalplus.evaluate` does.

Files: `HumanEvalPlus.jsonl` / `MbppPlus.jsonl` (the `.jsonl.gz` of the humanevalplus_release /
mbppplus_release GitHub releases, gunzipped or not): per task `task_id`, `prompt`,
`entry_point`, `canonical_solution`, `base_input`, `plus_input`, `atol` (and HumanEval+'s
`contract`). MBPP+ inputs are converted after loading as EvalPlus does (lists to tuples, sets,
complex numbers, for the tasks whose reference takes those).

Expected outputs are the canonical solution's (`prompt + canonical_solution`) on every input,
computed in the sandbox with the time each call took, and cached per file (sha256) under
$SCODER_EVAL_CACHE (default ~/.cache/scoder-jax/eval). Each sample runs twice in the sandbox,
on the base inputs and on the plus inputs (`_sandbox_evalplus.py`), with EvalPlus's per-input
time limit max(min_time_limit, factor * reference time) (defaults 4 s and 4, EvalPlus's) and
a whole-run limit min(timeout_per_task, sum of the limits) + 2 s. Statuses are EvalPlus's:
"pass", "fail", or "timeout" (the run was killed before it reported: over the whole-run limit,
out of memory, or the program ended the process). A sample passes *base* when base_status is
"pass" and *plus* when both are.

Written beside results.json: `eval_results.json` in evalplus.evaluate's layout (`date`, `hash`
= md5 of the problems file, `eval` = per task a list of {task_id, solution, base_status,
plus_status, base_fail_tests, plus_fail_tests}, `pass_at_k` = {base, plus}), so tools that read
EvalPlus results read ours.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

from scoder_jax.errors import DataError, ScoderError
from scoder_jax.eval.codec import encode_value
from scoder_jax.eval.formats import wrong_format
from scoder_jax.eval.runner import Job, content_key, harness_program, run_jobs
from scoder_jax.io import iter_jsonl, write_json_atomic

DATASETS = {"humaneval+": "humaneval", "mbpp+": "mbpp"}  # our name -> EvalPlus's dataset name
TASK_PREFIX = {"humaneval+": "HumanEval/", "mbpp+": "Mbpp/"}
DEFAULT_MIN_TIME_LIMIT = 4.0  # evalplus.config (4.0 since 2025; the 0.3.1 wheel has 1.0)
DEFAULT_GT_TIME_LIMIT_FACTOR = 4.0
DEFAULT_TIMEOUT_PER_TASK = 60.0  # EVALPLUS_TIMEOUT_PER_TASK
DEFAULT_MEMORY_MB = 4096  # EVALPLUS_MAX_MEMORY_BYTES
GT_VERSION = 1  # bump when the cached ground truth's layout or meaning changes
MBPP_OUTPUT_NOT_NONE = ("check_str", "text_match_three", "text_starta_endb")


@dataclass(frozen=True)
class PlusProblem:
    """One HumanEval+/MBPP+ task. `inputs[part]` are Python argument lists (converted for MBPP+);
    `raw_inputs[part]` the JSON values as in the file; `row` its 1-based line."""

    task_id: str
    prompt: str
    entry_point: str
    canonical_solution: str
    atol: float
    inputs: dict[str, list] = field(repr=False)
    raw_inputs: dict[str, list] = field(repr=False)
    row: int = 0

    @property
    def number(self) -> int:
        return int(self.task_id.rsplit("/", 1)[-1])


# ----------------------------------------------------------------------------- loading

# MBPP+ argument conversions (evalplus.data.mbpp.mbpp_deserialize_inputs), by task number.
_EACH_ARG_TUPLE = {2, 116, 132, 143, 222, 261, 273, 394, 399, 421, 424, 429, 470, 560, 579, 596, 616, 630, 726, 740,
                   744, 809}
_EACH_ARG_ROWS_TUPLES = {63, 64, 70, 94, 120, 237, 272, 299, 400, 409, 417, 438, 473, 614, 780}
_FIRST_ARG_ROWS_TUPLES = {75, 413, 444, 753}
_SECOND_ARG_TUPLE = {106, 750}
_FIRST_ARG_TUPLE = {250, 405, 446, 617, 720, 763, 808}
_EACH_ARG_TUPLE_OF_TUPLES = {259, 401, 445}
_ALL_LISTS_TUPLES = {580, 615, 791}


def _deep_tuple(x):
    return tuple(_deep_tuple(v) for v in x) if isinstance(x, list) else x


def mbpp_convert_args(task: int, args: list) -> Any:
    """One MBPP+ input (the JSON argument list) -> the arguments EvalPlus calls the task with."""
    if task in _EACH_ARG_TUPLE:
        return [tuple(a) for a in args]
    if task in _EACH_ARG_ROWS_TUPLES:
        return [[tuple(r) for r in a] for a in args]
    if task in _FIRST_ARG_ROWS_TUPLES:
        return [[tuple(r) for r in args[0]], args[1]]
    if task in _SECOND_ARG_TUPLE:
        return [args[0], tuple(args[1])]
    if task == 115:
        return [[set(item) if isinstance(item, list) and len(item) else {} for item in args[0]]]
    if task == 124:
        return (float(args[0]), complex(args[1]))
    if task in _FIRST_ARG_TUPLE:
        return [tuple(args[0]), args[1]]
    if task in _EACH_ARG_TUPLE_OF_TUPLES:
        return [tuple(tuple(r) for r in a) for a in args]
    if task == 278:
        return [tuple(tuple(item) if isinstance(item, list) else item for item in args[0])]
    if task == 307:
        return [tuple(args[0]), args[1], args[2]]
    if task == 722:
        return [{k: tuple(v) for k, v in args[0].items()}, *args[1:]]
    if task == 252:
        return [complex(args[0])]
    if task in _ALL_LISTS_TUPLES:
        return _deep_tuple(args)
    return args


def _fail_test(problem: PlusProblem, part: str, index: int) -> Any:
    """A failing input as evalplus.evaluate reports it (its JSON, MBPP+ 115/124/252 serialized)."""
    if problem.task_id.startswith("Mbpp/") and problem.number in (115, 124, 252):
        args = problem.inputs[part][index]
        if problem.number == 115:
            return [[list(item) for item in args[0]]]
        if problem.number == 124:
            return [str(args[0]), str(args[1])]
        return [str(args[0])]
    return problem.raw_inputs[part][index]


def load_plus(path: str | Path, benchmark: str) -> list[PlusProblem]:
    """Reads HumanEvalPlus.jsonl (`benchmark="humaneval+"`) or MbppPlus.jsonl (`"mbpp+"`), .gz too."""
    if benchmark not in DATASETS:
        raise ScoderError(f"unknown EvalPlus benchmark {benchmark!r} (humaneval+ or mbpp+)")
    path = Path(path)
    if path.is_dir() or not path.exists():
        raise DataError(f"{path}: no such file ({'HumanEvalPlus' if benchmark == 'humaneval+' else 'MbppPlus'}.jsonl)")
    other = "mbpp+" if benchmark == "humaneval+" else "humaneval+"
    required = ["task_id", "prompt", "entry_point", "canonical_solution", "base_input", "plus_input", "atol"]
    if benchmark == "humaneval+":
        required.append("contract")
    problems: list[PlusProblem] = []
    seen: set[str] = set()
    try:
        rows = list(enumerate(iter_jsonl(path), 1))
    except DataError as e:
        if path.suffix == ".json" or "malformed JSON" in str(e):
            raise DataError(f"{e}; expected {benchmark} rows, one JSON object per line "
                            "(HumanEvalPlus.jsonl / MbppPlus.jsonl)") from None
        raise
    for row, rec in rows:
        for key in required:
            if key not in rec:
                raise wrong_format(path, row, rec, f"a {benchmark} row", key)
        tid = rec["task_id"]
        if not isinstance(tid, str) or not tid.startswith(TASK_PREFIX[benchmark]):
            hint = f"pass --benchmark {other}" if isinstance(tid, str) and tid.startswith(TASK_PREFIX[other]) else ""
            raise DataError(f"{path}: row {row}: task_id {tid!r} is not a {benchmark} task "
                            f"({TASK_PREFIX[benchmark]}N){'; ' + hint if hint else ''}")
        if tid in seen:
            raise DataError(f"{path}: row {row}: duplicate task_id {tid!r}")
        seen.add(tid)
        for key in ("prompt", "entry_point", "canonical_solution"):
            if not isinstance(rec[key], str):
                raise DataError(f"{path}: row {row} ({tid}): '{key}' must be a string")
        if not rec["entry_point"].isidentifier():
            raise DataError(f"{path}: row {row} ({tid}): entry_point {rec['entry_point']!r} is not an identifier")
        if isinstance(rec["atol"], bool) or not isinstance(rec["atol"], (int, float)):
            raise DataError(f"{path}: row {row} ({tid}): 'atol' must be a number")
        raw = {}
        for part in ("base", "plus"):
            inputs = rec[f"{part}_input"]
            if not isinstance(inputs, list) or not all(isinstance(a, list) for a in inputs):
                raise DataError(f"{path}: row {row} ({tid}): '{part}_input' must be a list of argument lists")
            raw[part] = inputs
        converted = raw
        if benchmark == "mbpp+":
            num = int(tid.split("/")[1]) if tid.split("/")[1].isdigit() else -1
            try:
                converted = {part: [mbpp_convert_args(num, a) for a in raw[part]] for part in raw}
            except (TypeError, ValueError, IndexError, AttributeError) as e:
                raise DataError(
                    f"{path}: row {row} ({tid}): inputs do not have MBPP+'s layout for this task ({e})") from None
        problems.append(PlusProblem(task_id=tid, prompt=rec["prompt"], entry_point=rec["entry_point"],
                                    canonical_solution=rec["canonical_solution"], atol=rec["atol"],
                                    inputs=converted, raw_inputs=raw, row=row))
    if not problems:
        raise DataError(f"{path}: no problems")
    return problems


# ----------------------------------------------------------------------------- ground truth


def cache_dir() -> Path:
    return Path(os.environ.get("SCODER_EVAL_CACHE") or Path.home() / ".cache" / "scoder-jax" / "eval")


def _limits(timeout_s: float, memory_mb: int):
    from scoder_jax.score.sandbox_types import Limits

    return Limits(timeout_s=timeout_s, memory_mb=memory_mb, site=True, max_output_bytes=8 << 20)


def _parse_protocol(stdout: str, nonce: str) -> tuple[list[bool], dict | None]:
    """(per-input verdicts, result object or None) from a harness's protocol lines."""
    details: list[bool] = []
    result = None
    for line in stdout.splitlines():
        if not line.startswith(nonce + " "):
            continue
        _, kind, rest = line.split(" ", 2)
        if kind == "input":
            details.append(rest.split()[1] == "1")
        elif kind == "result":
            try:
                result = json.loads(rest)
            except json.JSONDecodeError:
                result = None
    return details, result


def ground_truth(problems: Sequence[PlusProblem], path: str | Path, benchmark: str, *, workers: int | None = None,
                 timeout_s: float = 300.0, memory_mb: int = DEFAULT_MEMORY_MB, progress: bool | None = None) -> dict:
    """task_id -> {"base", "plus": encoded expected outputs (JSON data), "base_time", "plus_time": [s]}.

    The canonical solutions run in the sandbox (site-packages allowed, `timeout_s` per task);
    the result is cached per file content. A reference that fails is a DataError naming the row."""
    from scoder_jax.eval.results import file_digest

    sha = file_digest(path)
    cache = cache_dir() / f"{benchmark.replace('+', 'plus')}-{sha}-gt{GT_VERSION}.json"
    known: dict = {}
    if cache.exists():
        try:
            known = json.loads(cache.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            known = {}  # a damaged cache is recomputed
    todo = [p for p in problems if p.task_id not in known]
    if not todo:
        return known
    program = harness_program("evalplus")
    limits = _limits(timeout_s, memory_mb)
    not_none = DATASETS[benchmark] == "mbpp"
    jobs = []
    for p in todo:
        nonce = secrets.token_hex(8)
        payload = {"mode": "truth", "code": p.prompt + p.canonical_solution, "entry_point": p.entry_point,
                   "output_not_none": not_none and p.entry_point in MBPP_OUTPUT_NOT_NONE, "nonce": nonce}

        def stdin(p=p, payload=payload):
            return json.dumps({**payload, "base": encode_value(p.inputs["base"]),
                               "plus": encode_value(p.inputs["plus"])}) + "\n"

        def finish(outcome, nonce=nonce):
            _, result = _parse_protocol(outcome.stdout, nonce)
            if result is None:
                return {"error": f"{outcome.status}: {outcome.reason or outcome.stderr[-300:]}".strip()}
            return result

        key = content_key("evalplus-truth", str(GT_VERSION), program, json.dumps(payload | {"nonce": ""}),
                          json.dumps(p.raw_inputs), repr(limits))
        jobs.append(Job(key, program, stdin, limits, finish))
    stream = cache.with_suffix(".partial.jsonl")
    stream.parent.mkdir(parents=True, exist_ok=True)
    results = run_jobs(jobs, workers=workers, stream=stream, progress=progress, desc=f"{benchmark} expected outputs")
    out = dict(known)
    for p, res in zip(todo, results):
        if "error" in res:
            stream.unlink(missing_ok=True)  # a failed reference is not cached: fix the file or the limits
            raise DataError(f"{path}: row {p.row} ({p.task_id}): the canonical solution fails in the sandbox: "
                            f"{res['error']}")
        out[p.task_id] = res
    write_json_atomic(cache, out)
    stream.unlink(missing_ok=True)
    return out


# ----------------------------------------------------------------------------- checking samples


def solution_of(problem: PlusProblem, sample: dict) -> str:
    """EvalPlus: the sample's `solution`, else prompt + `completion`."""
    return sample["solution"] if "solution" in sample else problem.prompt + sample["completion"]


def time_limits(ref_times: Sequence[float], min_time_limit: float, factor: float) -> list[float]:
    """EvalPlus's per-input limits: max(min_time_limit, factor * reference time)."""
    return [max(min_time_limit, factor * t) for t in ref_times]


def check_samples(problems: Sequence[PlusProblem], samples: Sequence[dict], truth: dict, benchmark: str, *,
                  source: str = "samples", workers: int | None = None, stream: Path | None = None,
                  progress: bool | None = None, min_time_limit: float = DEFAULT_MIN_TIME_LIMIT,
                  gt_time_limit_factor: float = DEFAULT_GT_TIME_LIMIT_FACTOR,
                  timeout_per_task: float = DEFAULT_TIMEOUT_PER_TASK, memory_mb: int = DEFAULT_MEMORY_MB) -> list[dict]:
    """Per sample, in order: {task_id, solution, base_status, plus_status, base_fail_tests,
    plus_fail_tests} (evalplus.evaluate's record). Samples name their task by `task_id`; one
    for a task not in `problems` is a DataError naming `source` and the sample's line."""
    by_id = {p.task_id: p for p in problems}
    dataset = DATASETS[benchmark]
    program = harness_program("evalplus")
    per_task: dict[str, dict] = {}
    jobs: list[Job] = []
    plan: list[tuple[PlusProblem, str]] = []
    for i, s in enumerate(samples):
        tid = s.get("task_id")
        if tid not in by_id:
            raise DataError(f"{source}: sample {i + 1}: task_id {tid!r} is not a task of this {benchmark} file")
        p = by_id[tid]
        solution = solution_of(p, s)
        plan.append((p, solution))
        if tid not in per_task:
            per_task[tid] = {}
            for part in ("base", "plus"):
                limits_s = time_limits(truth[tid][f"{part}_time"], min_time_limit, gt_time_limit_factor)
                per_task[tid][part] = {
                    "limits": limits_s,
                    "sandbox": _limits(min(timeout_per_task, sum(limits_s)) + 2.0, memory_mb),
                    "inputs": json.dumps(encode_value(p.inputs[part])),
                    "expected": json.dumps(truth[tid][part]),
                }
        for part in ("base", "plus"):
            t = per_task[tid][part]
            nonce = secrets.token_hex(8)
            head = {"mode": "check", "dataset": dataset, "entry_point": p.entry_point, "code": solution,
                    "atol": p.atol, "time_limits": t["limits"], "fast_check": True}

            def stdin(head=head, t=t, nonce=nonce):
                text = json.dumps({**head, "nonce": nonce})
                return text[:-1] + f', "inputs": {t["inputs"]}, "expected": {t["expected"]}}}\n'

            def finish(outcome, nonce=nonce, n=len(p.inputs[part])):
                details, result = _parse_protocol(outcome.stdout, nonce)
                stat = result.get("stat") if isinstance(result, dict) else None
                if stat not in ("pass", "fail"):
                    stat = "timeout"  # killed before it reported (EvalPlus: the process never set its status)
                if stat == "pass" and (len(details) != n or not all(details)):
                    stat = "fail"
                rec = {"stat": stat, "n_done": len(details)}
                if outcome.status != "passed":
                    rec["sandbox"] = f"{outcome.status}: {outcome.reason}"[:200]
                return rec

            key = content_key("evalplus-check", program, json.dumps(head), t["inputs"], t["expected"],
                              repr(t["sandbox"]))
            jobs.append(Job(key, program, stdin, t["sandbox"], finish))
    verdicts = run_jobs(jobs, workers=workers, stream=stream, progress=progress, desc=f"{benchmark} samples")
    records = []
    for j, (p, solution) in enumerate(plan):
        rec = {"task_id": p.task_id, "solution": solution}
        for part, v in zip(("base", "plus"), verdicts[2 * j: 2 * j + 2]):
            rec[f"{part}_status"] = v["stat"]
        for part, v in zip(("base", "plus"), verdicts[2 * j: 2 * j + 2]):
            fails = [] if v["stat"] == "pass" or not v["n_done"] else [_fail_test(p, part, v["n_done"] - 1)]
            rec[f"{part}_fail_tests"] = fails
        records.append(rec)
    return records


def evalplus_results(problems: Sequence[PlusProblem], records: Sequence[dict], problems_file: str | Path,
                     ks: Sequence[int] = (1, 10, 100)) -> tuple[dict, list[dict], dict]:
    """(eval_results.json as evalplus.evaluate writes it, per-problem rows, pass_at_k {base, plus}).
    Problems without samples are left out (the caller decides whether that is an error)."""
    from scoder_jax.eval.results import file_digest, mean_pass_at_k
    from scoder_jax.evaluate import pass_at_k

    grouped: dict[str, list[dict]] = {}
    for r in records:
        grouped.setdefault(r["task_id"], []).append(r)
    per_problem, counts_base, counts_plus = [], [], []
    ev: dict[str, list] = {}
    for p in problems:
        rs = grouped.get(p.task_id)
        if not rs:
            continue
        ev[p.task_id] = list(rs)
        n = len(rs)
        c_base = sum(r["base_status"] == "pass" for r in rs)
        c_plus = sum(r["base_status"] == r["plus_status"] == "pass" for r in rs)
        counts_base.append((n, c_base))
        counts_plus.append((n, c_plus))
        row: dict[str, Any] = {"task_id": p.task_id, "n": n, "c_base": c_base, "c_plus": c_plus}
        for k in ks:
            if k <= n:
                row[f"pass@{k}_base"] = pass_at_k(n, c_base, k)
                row[f"pass@{k}_plus"] = pass_at_k(n, c_plus, k)
        row["samples"] = [{"base_status": r["base_status"], "plus_status": r["plus_status"]} for r in rs]
        per_problem.append(row)
    scores = {"base": mean_pass_at_k(counts_base, ks), "plus": mean_pass_at_k(counts_plus, ks)}
    eval_results = {"date": datetime.now().strftime("%Y-%m-%d %H:%M"), "hash": file_digest(problems_file, "md5"),
                    "eval": ev, "pass_at_k": scores}
    return eval_results, per_problem, scores


__all__ = ["PlusProblem", "load_plus", "ground_truth", "check_samples", "evalplus_results", "mbpp_convert_args",
           "time_limits", "solution_of"]
