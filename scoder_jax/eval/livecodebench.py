"""LiveCodeBench code generation from its released `code_generation_lite` rows, graded as
lcb_runner grades it.

Rows (the dataset's test*.jsonl files): `question_title`, `question_content`, `platform`
(leetcode/codeforces/atcoder), `question_id`, `contest_id`, `contest_date` (ISO),
`starter_code`, `difficulty` (easy/medium/hard), `public_test_cases` (a JSON string of
[{input, output, testtype}]), `private_test_cases` (the same JSON, or -- as released --
base64(zlib(pickle(that JSON string)))), `metadata` (a JSON string; `func_name` makes a problem
functional). The pickle is read by an unpickler that refuses every global, so only plain
strings come out of it: unpickling a file someone handed you cannot run code.

Tests: public + private, in that order; a problem is functional iff its metadata names
`func_name` (lcb_runner's rule), else stdin. `_sandbox_lcb.py` grades one sample on all of them
(first failure stops), under `signal.alarm(timeout)` per test (lcb_runner's --timeout, default
6 s) and a whole-run limit (timeout + 1) * tests + 5 s; a run killed by that limit scores -1 on
every test. A sample is correct when every result is > 0 (True). pass@1 per problem =
correct / samples; reported overall and per difficulty (means over problems).

The date window keeps problems with since <= contest_date <= until, both parsed as midnight
(as lcb_runner's --start_date/--end_date; a problem dated during `until`'s day after 00:00 is
outside).

Prompts for instruct models are LiveCodeBench's generic chat prompt (system message +
`### Question:` / `### Format:` / `### Answer:`), with and without starter code; code is
taken from a reply the way lcb_runner does (between the last two lines holding ```).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import pickle
import secrets
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

from scoder_jax.errors import DataError, ScoderError
from scoder_jax.eval.formats import guess_format, wrong_format
from scoder_jax.eval.runner import Job, content_key, harness_program, run_jobs
from scoder_jax.io import iter_jsonl

PLATFORMS = ("leetcode", "codeforces", "atcoder")
DIFFICULTIES = ("easy", "medium", "hard")
DEFAULT_TIMEOUT_S = 6
DEFAULT_MEMORY_MB = 4096
MAX_TESTS_BYTES = 1 << 30  # a decompressed private-test field larger than this is refused

SYSTEM_MESSAGE = ("You are an expert Python programmer. You will be given a question (problem specification) and "
                  "will generate a correct Python program that matches the specification and passes all tests.")
FORMAT_WITH_STARTER = ("You will use the following starter code to write the solution to the problem and enclose your "
                       "code within delimiters.")
FORMAT_WITHOUT_STARTER = ("Read the inputs from stdin solve the problem and write the answer to stdout "
                          "(do not directly test on the sample inputs). Enclose your code within delimiters "
                          "as follows. Ensure that when the python program runs, it reads the inputs, runs "
                          "the algorithm and writes output to STDOUT.")
ROW_FIELDS = ("question_title", "question_content", "platform", "question_id", "contest_id", "contest_date",
              "starter_code", "difficulty", "public_test_cases", "private_test_cases", "metadata")


@dataclass(frozen=True)
class LCBProblem:
    """One code_generation_lite row, decoded. `tests`: [{input, output, testtype}], public then private."""

    question_id: str
    question_title: str
    question_content: str
    platform: str
    contest_id: str
    contest_date: datetime
    starter_code: str
    difficulty: str
    tests: list = field(repr=False)
    metadata: dict = field(default_factory=dict)
    row: int = 0

    @property
    def fn_name(self) -> str | None:
        return self.metadata.get("func_name")


# ----------------------------------------------------------------------------- private tests


class _StringsOnly(pickle.Unpickler):
    """Builds only pickle's plain values (str, bytes, numbers, containers): any global
    (class, function) is refused, so no code runs while loading."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refused global {module}.{name}")

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("refused persistent id")


def decode_private_tests(text: Any) -> list:
    """LiveCodeBench's `private_test_cases`: JSON, or base64(zlib(pickle(JSON string))).
    Returns the test list; raises ValueError saying which step failed."""
    if not isinstance(text, str):
        raise ValueError(f"expected a string, got {type(text).__name__}")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ValueError("neither JSON nor base64") from None
    try:
        d = zlib.decompressobj()
        data = d.decompress(raw, MAX_TESTS_BYTES)
        if d.unconsumed_tail:
            raise ValueError(f"decompresses to more than {MAX_TESTS_BYTES >> 20} MiB")
    except zlib.error as e:
        raise ValueError(f"base64 but not zlib data ({e})") from None
    try:
        value = _StringsOnly(io.BytesIO(data)).load()
    except Exception as e:  # UnpicklingError, EOFError, ...: all mean "not the released layout"
        raise ValueError(f"zlib data but not a pickled string ({type(e).__name__}: {e})") from None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        raise ValueError(f"the pickle holds a {type(value).__name__}, not a JSON string")
    try:
        return json.loads(value)
    except json.JSONDecodeError as e:
        raise ValueError(f"the decompressed string is not JSON ({e.msg})") from None


def encode_private_tests(tests: list) -> str:
    """The released layout (base64(zlib(pickle(json string)))), for writing test files."""
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(tests)))).decode("ascii")


# ----------------------------------------------------------------------------- loading


def _rows(path: Path):
    """(row number, record) from JSONL(.gz) or a JSON array."""
    head = path.open("rb").read(1) if path.suffix != ".gz" else b""
    if head == b"[":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise DataError(f"{path}: malformed JSON ({e.msg} at line {e.lineno})") from None
        return list(enumerate(data, 1))
    return list(enumerate(iter_jsonl(path), 1))


def _tests(value: Any, where: str, name: str, decode) -> list:
    try:
        tests = decode(value)
    except (ValueError, TypeError) as e:
        raise DataError(f"{where}: '{name}' is malformed: {e}") from None
    if not isinstance(tests, list):
        raise DataError(f"{where}: '{name}' must hold a list of tests")
    for j, t in enumerate(tests):
        if not (isinstance(t, dict) and isinstance(t.get("input"), str) and isinstance(t.get("output"), str)
                and t.get("testtype") in ("stdin", "functional")):
            raise DataError(f"{where}: '{name}'[{j}] is not a test (input, output strings; testtype stdin|functional)")
    return tests


def parse_day(text: str | None, what: str) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        raise ScoderError(f"{what} {text!r}: expected a date YYYY-MM-DD") from None


def load_lcb(path: str | Path, *, since: str | None = None,
             until: str | None = None) -> tuple[list[LCBProblem], set[str]]:
    """(problems in the date window sorted by question_id, every question_id in the file)."""
    path = Path(path)
    if path.is_dir() or not path.exists():
        raise DataError(f"{path}: no such file (a code_generation_lite test*.jsonl)")
    start, end = parse_day(since, "--since"), parse_day(until, "--until")
    problems, seen = [], set()
    for row, rec in _rows(path):
        for key in ROW_FIELDS:
            if not isinstance(rec, dict) or key not in rec:
                raise wrong_format(path, row, rec, "a LiveCodeBench code_generation_lite row", key)
        qid = str(rec["question_id"])
        where = f"{path}: row {row} ({qid})"
        if qid in seen:
            raise DataError(f"{where}: duplicate question_id")
        seen.add(qid)
        if rec["platform"] not in PLATFORMS:
            raise DataError(f"{where}: platform {rec['platform']!r} is not one of {', '.join(PLATFORMS)}")
        if rec["difficulty"] not in DIFFICULTIES:
            raise DataError(f"{where}: difficulty {rec['difficulty']!r} is not one of {', '.join(DIFFICULTIES)}")
        try:
            date = datetime.fromisoformat(str(rec["contest_date"])).replace(tzinfo=None)
        except ValueError:
            raise DataError(f"{where}: contest_date {rec['contest_date']!r} is not an ISO date") from None
        for key in ("question_content", "starter_code"):
            if not isinstance(rec[key], str):
                raise DataError(f"{where}: '{key}' must be a string")
        if (start is not None and date < start) or (end is not None and date > end):
            continue  # outside the window: its tests are not decoded
        tests = _tests(rec["public_test_cases"], where, "public_test_cases", json.loads)
        tests += _tests(rec["private_test_cases"], where, "private_test_cases", decode_private_tests)
        try:
            meta = json.loads(rec["metadata"]) if isinstance(rec["metadata"], str) else rec["metadata"]
        except json.JSONDecodeError as e:
            raise DataError(f"{where}: 'metadata' is not JSON ({e.msg})") from None
        if not isinstance(meta, dict):
            raise DataError(f"{where}: 'metadata' must be a JSON object")
        if meta.get("func_name") is not None and not str(meta["func_name"]).isidentifier():
            raise DataError(f"{where}: metadata func_name {meta['func_name']!r} is not an identifier")
        problems.append(LCBProblem(question_id=qid, question_title=str(rec["question_title"]),
                                   question_content=rec["question_content"], platform=rec["platform"],
                                   contest_id=str(rec["contest_id"]), contest_date=date,
                                   starter_code=rec["starter_code"],
                                   difficulty=rec["difficulty"], tests=tests, metadata=meta, row=row))
    if not seen:
        raise DataError(f"{path}: no problems")
    if not problems:
        raise DataError(f"{path}: no problem has a contest_date in the window [{since or '-'}, {until or '-'}] "
                        f"({len(seen)} problems in the file)")
    return sorted(problems, key=lambda p: p.question_id), seen


# ----------------------------------------------------------------------------- prompts and replies


def user_prompt(problem: LCBProblem) -> str:
    """LiveCodeBench's generic instruct prompt (the user turn; `SYSTEM_MESSAGE` is the system turn)."""
    text = f"### Question:\n{problem.question_content}\n\n"
    if problem.starter_code:
        text += f"### Format: {FORMAT_WITH_STARTER}\n```python\n{problem.starter_code}\n```\n\n"
    else:
        text += f"### Format: {FORMAT_WITHOUT_STARTER}\n```python\n# YOUR CODE HERE\n```\n\n"
    return text + "### Answer: (use the provided format with backticks)\n\n"


def extract_code(reply: str) -> str:
    """lcb_runner's rule for chat models: the lines between the last two lines holding ```; '' if fewer."""
    lines = reply.split("\n")
    fences = [i for i, line in enumerate(lines) if "```" in line]
    if len(fences) < 2:
        return ""
    return "\n".join(lines[fences[-2] + 1: fences[-1]])


# ----------------------------------------------------------------------------- samples


def read_lcb_samples(path: str | Path) -> list[dict]:
    """Samples as [{"task_id", "code", "where"}]: LiveCodeBench's JSON array of
    {question_id, code_list}, or the project's JSONL (task_id or question_id, and `solution`
    (the program) or `completion` (a reply, code extracted as lcb_runner does))."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    out: list[dict] = []
    for row, rec in _rows(path):
        if not isinstance(rec, dict):
            raise DataError(f"{path}: row {row}: expected an object, got {guess_format(rec)}")
        qid = rec.get("question_id", rec.get("task_id"))
        if qid is None:
            raise wrong_format(path, row, rec, "a sample ({question_id, code_list} or {task_id, solution})",
                               "question_id")
        qid = str(qid)
        if "code_list" in rec:
            codes = rec["code_list"]
            if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
                raise DataError(f"{path}: row {row} ({qid}): 'code_list' must be a list of strings")
            out.extend({"task_id": qid, "code": c, "where": f"{path}: row {row}"} for c in codes)
        elif isinstance(rec.get("solution"), str):
            out.append({"task_id": qid, "code": rec["solution"], "where": f"{path}: row {row}"})
        elif isinstance(rec.get("completion"), str):
            out.append({"task_id": qid, "code": extract_code(rec["completion"]), "where": f"{path}: row {row}"})
        else:
            raise DataError(f"{path}: row {row} ({qid}): needs 'code_list', 'solution' or 'completion' (strings)")
    return out


# ----------------------------------------------------------------------------- grading


def grade(problems: Sequence[LCBProblem], samples: Sequence[dict], *, timeout_s: int = DEFAULT_TIMEOUT_S,
          memory_mb: int = DEFAULT_MEMORY_MB, workers: int | None = None, stream: Path | None = None,
          progress: bool | None = None) -> list[dict]:
    """Per sample (`{"task_id", "code"}`, task ids already checked): {"graded": bool, "results":
    [per test: True/False/-1/-2/-3/-4], "metadata": {...}} as lcb_runner computes them."""
    from scoder_jax.score.sandbox_types import Limits

    by_id = {p.question_id: p for p in problems}
    program = harness_program("lcb")
    cached: dict[str, tuple[str, Any]] = {}
    jobs = []
    for s in samples:
        p = by_id[s["task_id"]]
        if p.question_id not in cached:
            tests_json = json.dumps({"inputs": [t["input"] for t in p.tests], "outputs": [t["output"] for t in p.tests],
                                     "fn_name": p.fn_name, "timeout": int(timeout_s)})
            wall = (timeout_s + 1) * len(p.tests) + 5
            cached[p.question_id] = (tests_json, Limits(timeout_s=wall, memory_mb=memory_mb, site=True,
                                                        max_output_bytes=8 << 20))
        tests_json, limits = cached[p.question_id]
        nonce = secrets.token_hex(8)

        def stdin(code=s["code"], tests_json=tests_json, nonce=nonce):
            return tests_json[:-1] + f', "code": {json.dumps(code)}, "nonce": "{nonce}"}}\n'

        def finish(outcome, nonce=nonce, n=len(p.tests)):
            result = None
            for line in outcome.stdout.splitlines():
                if line.startswith(f"{nonce} result "):
                    try:
                        result = json.loads(line[len(nonce) + 8:])
                    except json.JSONDecodeError:
                        result = None
            if not (isinstance(result, dict) and isinstance(result.get("results"), list)):
                result = {"results": [-1] * n, "metadata": {
                    "error_code": -1, "error_message": "Global Timeout",
                    "sandbox": f"{outcome.status}: {outcome.reason}"[:200]}}
            results = [r if isinstance(r, (bool, int)) else -4 for r in result["results"]]
            return {"graded": all(r > 0 for r in results), "results": results,
                    "metadata": result.get("metadata") if isinstance(result.get("metadata"), dict) else {}}

        key = content_key("lcb", program, tests_json, s["code"], repr(limits))
        jobs.append(Job(key, program, stdin, limits, finish))
    return run_jobs(jobs, workers=workers, stream=stream, progress=progress, desc="livecodebench")


def lcb_results(problems: Sequence[LCBProblem], samples: Sequence[dict], graded: Sequence[dict],
                ks: Sequence[int] = (1, 5, 10)) -> tuple[list[dict], list[dict], dict, dict]:
    """(eval_all rows as lcb_runner's custom evaluator writes them, per-problem rows,
    pass_at_k {"base": {...}} overall, by_difficulty {difficulty: {"pass@1", "n_problems"}})."""
    from scoder_jax.eval.results import mean_pass_at_k

    grouped: dict[str, list[tuple[dict, dict]]] = {}
    for s, g in zip(samples, graded):
        grouped.setdefault(s["task_id"], []).append((s, g))
    eval_all, per_problem = [], []
    counts: dict[str, list[tuple[int, int]]] = {d: [] for d in DIFFICULTIES}
    for p in problems:
        pairs = grouped.get(p.question_id)
        if not pairs:
            continue
        codes = [s["code"] for s, _ in pairs]
        graded_list = [g["graded"] for _, g in pairs]
        n, c = len(graded_list), sum(graded_list)
        counts[p.difficulty].append((n, c))
        eval_all.append({
            "question_title": p.question_title, "question_content": p.question_content, "platform": p.platform,
            "question_id": p.question_id, "contest_id": p.contest_id, "contest_date": p.contest_date.isoformat(),
            "starter_code": p.starter_code, "difficulty": p.difficulty, "output_list": codes, "code_list": codes,
            "graded_list": graded_list, "pass@1": c / n, "metadata": [json.dumps(g["metadata"]) for _, g in pairs]})
        per_problem.append({"task_id": p.question_id, "difficulty": p.difficulty,
                            "contest_date": p.contest_date.isoformat(),
                            "n": n, "c": c, "pass@1": c / n,
                            "samples": [{"passed": g["graded"], "results": g["results"], "metadata": g["metadata"]}
                                        for _, g in pairs]})
    overall = mean_pass_at_k([x for d in DIFFICULTIES for x in counts[d]], ks)
    by_difficulty = {d: {**mean_pass_at_k(counts[d], (1,)), "n_problems": len(counts[d])}
                     for d in DIFFICULTIES if counts[d]}
    return eval_all, per_problem, {"base": overall}, by_difficulty
