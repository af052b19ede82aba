"""Importing an existing seed set (`scoder seed --import`, the pipeline's seed stage):
Magicoder OSS-Instruct JSONL or this project's own Sample JSONL, merged into `out_dir/seed.jsonl`.

Tests and the sample format. Magicoder OSS-Instruct has no tests; asserts embedded in a
solution's code become the sample's tests, otherwise its tests are "". What happens to a sample
without tests depends on the run's sample format (`synth.format`, `fmt` here):

    None                     kept (a format-agnostic import: this function's default)
    problem_solution         kept: the synthesizer is taught [Problem] + [Solution] only
    problem_solution_tests   dropped and counted (`dropped_no_tests`, with the first file:lines):
                             a synthesizer taught an empty [Tests] block writes replies the
                             parser rejects. (Having a teacher write the missing tests is not
                             implemented; convert such a set with `scoder seed --snippets`.)

The pipeline's seed stage and `scoder seed --import --format F` (default: the loop's default,
problem_solution_tests) both pass the format here.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

from scoder_jax.errors import DataError
from scoder_jax.io import JsonlAppender, iter_jsonl, write_jsonl_atomic
from scoder_jax.records import content_id
from scoder_jax.synth.prompts import check_format, has_tests, language
from scoder_jax.synth.reply_parser import extract_code, split_embedded_tests


def _import_record(rec: Any) -> tuple[dict | None, str]:
    """One imported line -> (Sample record, "") or (None, reason)."""
    if not isinstance(rec, dict):
        return None, f"expected a JSON object, got {type(rec).__name__}"
    problem, solution = rec.get("problem"), rec.get("solution")
    if not isinstance(problem, str) or not problem.strip():
        return None, "missing or empty field 'problem'"
    if not isinstance(solution, str) or not solution.strip():
        return None, "missing or empty field 'solution'"
    lang = rec.get("lang") if isinstance(rec.get("lang"), str) and rec.get("lang") else "python"
    own = "snippet_id" in rec or "tests" in rec
    if own:
        # The project's own Sample format: trusted as written, re-labelled "import".
        tests = rec.get("tests", "")
        if not isinstance(tests, str):
            return None, "field 'tests' must be a string"
        snippet = rec.get("snippet", "") if isinstance(rec.get("snippet"), str) else ""
        meta = dict(rec.get("meta") or {}) if isinstance(rec.get("meta"), dict) else {}
        if rec.get("origin") and rec.get("origin") != "import":
            meta.setdefault("original_origin", rec["origin"])
        snippet_id = rec.get("snippet_id") or content_id(snippet or problem)
        code, tests_out = solution.strip("\n"), tests
        fmt = "scoder"
    else:
        # Magicoder OSS-Instruct: `solution` is markdown (a code block and an explanation); `seed`
        # is the snippet. Tests are not part of the format; asserts embedded in the code are kept.
        snippet = rec.get("seed", "") if isinstance(rec.get("seed"), str) else ""
        code, why = extract_code(solution, lang)
        if why:
            return None, f"field 'solution' has no usable {language(lang).name} code ({why.replace('_', ' ')})"
        code, tests_out = split_embedded_tests(code, lang)
        meta = {k: rec[k] for k in ("index", "raw_index", "model") if k in rec}
        snippet_id = content_id(snippet) if snippet.strip() else content_id(problem)
        fmt = "magicoder"
    meta["import_format"] = fmt
    # A seed sample teaches the synthesizer snippet -> reply: one reply drawn from two snippets is two samples.
    sid = rec.get("id") if own and isinstance(rec.get("id"), str) and rec.get("id") else \
        content_id(f"{problem.strip()}\0{code}" + (f"\0{snippet}" if snippet.strip() else ""), prefix="seed")
    return {
        "id": sid,
        "snippet_id": snippet_id,
        "snippet": snippet,
        "lang": lang,
        "problem": problem.strip(),
        "solution": code,
        "tests": tests_out,
        "origin": "import",
        "meta": meta,
    }, ""


def import_seed(path: Path, out_dir: Path, *, strict: bool = False, fmt: str | None = None) -> dict:
    """Imports a seed set (Magicoder OSS-Instruct JSONL, or this project's Sample JSONL) into
    `out_dir/seed.jsonl`, merged by id with what is already there.

    Lines that cannot be used are skipped and recorded in `out_dir/import_errors.jsonl` with
    their file:line (or, with `strict`, the first one raises DataError). A file with no usable
    line at all raises DataError and writes nothing. `fmt` "problem_solution_tests" drops (and
    counts, never raises for) samples without tests; see the module docstring.
    """
    need_tests = fmt is not None and has_tests(check_format(fmt))
    path, out_dir = Path(path), Path(out_dir)
    if not path.is_file():
        raise DataError(f"{path}: no such file (--import expects a JSONL file)")
    seed_path = out_dir / "seed.jsonl"
    existing: list[dict] = []
    if seed_path.exists():
        JsonlAppender(seed_path).close()
        existing = list(iter_jsonl(seed_path))
    ids = {r.get("id") for r in existing}
    new: list[dict] = []
    errors: list[dict] = []
    counts: Counter = Counter()
    formats: Counter = Counter()
    dropped: list[str] = []  # file:line of samples without tests that the format needs
    opener = _open_lines(path)
    with opener as lines:
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                rec, why = None, f"malformed JSON ({e.msg} at column {e.colno})"
            else:
                rec, why = _import_record(rec)
            if rec is None:
                if strict:
                    raise DataError(f"{where}: {why}")
                errors.append({"file": str(path), "line": lineno, "reason": why})
                counts["skipped"] += 1
                continue
            if need_tests and not rec["tests"].strip():
                dropped.append(where)
                continue
            counts["read"] += 1
            formats[rec["meta"]["import_format"]] += 1
            if rec["id"] in ids:
                counts["duplicates"] += 1
                continue
            ids.add(rec["id"])
            new.append(rec)
    if not counts["read"] and dropped:
        raise DataError(f"{path}: none of its {len(dropped)} usable sample(s) has tests (first: {dropped[0]}), and "
                        "the sample format problem_solution_tests needs them (Magicoder OSS-Instruct has none); use "
                        "synth.format=problem_solution (scoder seed --format problem_solution), or a seed set "
                        "with tests; nothing written")
    if not counts["read"]:  # a file in another format (or empty): write nothing, not an empty seed set
        first = f" (first: {errors[0]['file']}:{errors[0]['line']}: {errors[0]['reason']})" if errors else ""
        raise DataError(f"{path}: no usable sample in {counts['skipped']} line(s){first}; --import expects "
                        "Magicoder OSS-Instruct JSONL (problem, solution) or scoder Sample JSONL; nothing written")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_jsonl_atomic(seed_path, [*existing, *new])
    if errors:
        write_jsonl_atomic(out_dir / "import_errors.jsonl", errors)
    return {
        "read": counts["read"],
        "imported": len(new),
        "duplicates": counts["duplicates"],
        "skipped": counts["skipped"],
        "formats": dict(formats),
        "with_tests": sum(1 for r in new if r["tests"].strip()),
        "dropped_no_tests": len(dropped),
        "first_dropped_no_tests": dropped[:5],
        "total": len(existing) + len(new),
        "first_errors": [f"{e['file']}:{e['line']}: {e['reason']}" for e in errors[:5]],
    }


@contextlib.contextmanager
def _open_lines(path: Path):
    from scoder_jax.io import _open_text  # noqa: PLC0415 (gz/zst support shared with iter_jsonl)

    try:
        with _open_text(path) as f:
            yield f
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
