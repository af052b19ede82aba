"""What kind of benchmark row a record is, for errors that tell the user which file they passed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scoder_jax.errors import DataError


def guess_format(rec: Any) -> str:
    """A short name of the benchmark layout a parsed row looks like."""
    if not isinstance(rec, dict):
        return f"a JSON {type(rec).__name__}, not an object"
    keys = set(rec)
    if {"question_content", "private_test_cases"} & keys:
        return "a LiveCodeBench code_generation_lite row"
    if {"question_id", "code_list"} <= keys:
        return "LiveCodeBench samples ({question_id, code_list})"
    if {"base_input", "plus_input"} & keys:
        tid = str(rec.get("task_id", ""))
        return ("an MBPP+ row" if tid.startswith("Mbpp/")
                else "a HumanEval+ row" if tid.startswith("HumanEval/") else "an EvalPlus row")
    if "test_list" in keys:
        return "a sanitized-MBPP row"
    if {"test", "entry_point"} <= keys:
        return "a HumanEval row"
    if "task_id" in keys and ({"completion", "solution"} & keys):
        return "a samples line (task_id + completion/solution)"
    return f"an object with keys {sorted(keys)[:8]}"


def wrong_format(path: str | Path, row: int, rec: Any, expected: str, missing: str, hint: str = "") -> DataError:
    """A DataError for a row of another benchmark's (or no known) layout."""
    return DataError(f"{path}: row {row}: missing '{missing}': expected {expected}, got {guess_format(rec)}"
                     + (f"; {hint}" if hint else ""))
