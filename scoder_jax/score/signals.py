"""Execution signals of a candidate, from the sandbox: does its solution parse, run, pass its tests.

    parses   the solution is valid Python (`ast.parse`, nothing executed)
    runs     the solution alone exits 0 within the limits (definitions load, no crash at import)
    passes   the solution followed by its tests exits 0 (every assert holds)

Generated code is hostile: it only ever runs through `execution.run_many` (a fresh sandboxed
interpreter per program). A solution that does not parse is not run (runs = passes = False);
tests that do not parse are not run (passes = False). Candidates in other languages get
`None`: the project executes Python only, and their scores carry no execution term.

In the sample format without tests ("problem_solution", `tests=False`) only what can be checked
is: parses and runs; `passes` is None (not checked), never False, so a selection that requires
passing tests does not drop a candidate for having none.
"""

from __future__ import annotations

import ast
import warnings
from typing import Sequence

from scoder_jax.synth.prompts import is_python

SIGNALS: tuple[str, ...] = ("parses", "runs", "passes")


def _parses(code: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(code)
        return True
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False


def test_program(solution: str, tests: str) -> str:
    """The program that checks a solution: the solution, then its tests, in one module."""
    return f"{solution.rstrip()}\n\n\n{tests.strip()}\n"


def execution_signals(candidates: Sequence[dict], *, limits=None, workers: int | None = None,
                      progress: bool = False, tests: bool = True) -> list[dict | None]:
    """Per candidate: None (not Python) or {"parses", "runs", "passes": bool, "run_status",
    "test_status": a `sandbox_types.STATUSES` value or "not_run", "detail": a short reason}.
    `tests=False` (format "problem_solution"): no test program is run, "passes" is None."""
    from scoder_jax.score import execution
    from scoder_jax.score.sandbox_types import Limits

    limits = limits or Limits(timeout_s=10.0)
    out: list[dict | None] = [None] * len(candidates)
    programs: list[str] = []
    slots: list[tuple[int, str]] = []  # (candidate index, "run" | "test")
    for i, c in enumerate(candidates):
        if not is_python(c.get("lang") or "python"):
            continue
        solution, test_code = c.get("solution") or "", c.get("tests") or ""
        sig = {"parses": False, "runs": False, "passes": False if tests else None, "run_status": "not_run",
               "test_status": "not_run", "detail": ""}
        out[i] = sig
        if not solution.strip():
            sig["detail"] = "no solution"
            continue
        if not _parses(solution):
            sig["detail"] = "the solution does not parse"
            continue
        sig["parses"] = True
        programs.append(solution)
        slots.append((i, "run"))
        if not tests:
            continue
        if test_code.strip() and _parses(test_code):
            programs.append(test_program(solution, test_code))
            slots.append((i, "test"))
        else:
            sig["detail"] = "no tests" if not test_code.strip() else "the tests do not parse"
    if programs:
        outcomes = _run(programs, limits, workers, progress, execution)
        for (i, kind), o in zip(slots, outcomes):
            sig = out[i]
            if kind == "run":
                sig["runs"], sig["run_status"] = o.passed, o.status
                if not o.passed and not sig["detail"]:
                    sig["detail"] = f"the solution alone: {o.reason or o.status}"
            else:
                sig["passes"], sig["test_status"] = o.passed, o.status
                if not o.passed and not sig["detail"]:
                    sig["detail"] = f"the tests: {o.reason or o.status}"
    return out


def _run(programs, limits, workers, progress, execution):
    if not progress:
        return execution.run_many(programs, limits=limits, workers=workers)
    from tqdm import tqdm

    outs = []
    step = max(1, (workers or 8) * 4)
    with tqdm(total=len(programs), unit="prog", desc="execute", dynamic_ncols=True) as bar:
        for k in range(0, len(programs), step):
            outs.extend(execution.run_many(programs[k:k + step], limits=limits, workers=workers))
            bar.update(min(step, len(programs) - k))
    return outs


def signal_vector(sig: dict | None) -> list[float]:
    """[parses, runs, passes] as 0/1 floats; zeros for a candidate without signals."""
    if sig is None:
        return [0.0] * len(SIGNALS)
    return [1.0 if sig.get(k) else 0.0 for k in SIGNALS]
