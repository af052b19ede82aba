"""Runs many sandboxed jobs in parallel, with a progress bar, streaming each result to disk so
a killed evaluation resumes where it stopped.

A `Job` names its work by a content key (a hash of everything the verdict depends on: the
program, the test data, the limits). Results are appended to `stream` (JSONL,
`{"key", "result"}`) as they finish; a rerun with the same stream skips every key already
there. The caller turns each `Outcome` into a small JSON-able result (`Job.finish`), so what
is streamed is the verdict, not the program's output.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from scoder_jax.io import JsonlAppender, iter_jsonl

HARNESS_DIR = Path(__file__).resolve().parent


def harness_program(name: str) -> str:
    """The text of a sandbox harness (`_sandbox_<name>.py`) with the value codec in front."""
    return (HARNESS_DIR / "codec.py").read_text(encoding="utf-8") + "\n\n" + (
        HARNESS_DIR / f"_sandbox_{name}.py").read_text(encoding="utf-8")


def content_key(*parts: str | bytes) -> str:
    """sha256 over the parts (length-prefixed, so part boundaries matter)."""
    h = hashlib.sha256()
    for p in parts:
        b = p.encode("utf-8", "surrogateescape") if isinstance(p, str) else p
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


@dataclass(frozen=True)
class Job:
    """One sandboxed program run.

    key      content key (see `content_key`): equal keys are the same verdict
    program  the Python source the sandbox runs
    stdin    a callable building the program's stdin (built only if the job runs)
    limits   `scoder_jax.score.sandbox_types.Limits`
    finish   Outcome -> JSON-able result dict (must not raise)
    """

    key: str
    program: str
    stdin: Callable[[], str]
    limits: Any
    finish: Callable[[Any], dict]


def read_stream(stream: Path | None) -> dict[str, dict]:
    """key -> result of the results already streamed to `stream` (none if it does not exist)."""
    if stream is None or not Path(stream).exists():
        return {}
    done = {}
    for rec in iter_jsonl(stream):
        if isinstance(rec.get("key"), str) and isinstance(rec.get("result"), dict):
            done[rec["key"]] = rec["result"]
    return done


def run_jobs(jobs: Sequence[Job], *, workers: int | None = None, stream: Path | None = None,
             progress: bool | None = None, desc: str = "sandbox") -> list[dict]:
    """Runs `jobs` in the sandbox on `workers` threads (default: the CPU count); returns their
    results in job order. `stream`: JSONL file results are appended to and resumed from.
    `progress`: a tqdm bar on stderr (None: only when stderr is a terminal)."""
    from tqdm import tqdm

    from scoder_jax.score.execution import isolation, run_python

    done = read_stream(stream)
    todo: dict[str, Job] = {}
    for job in jobs:
        if job.key not in done and job.key not in todo:
            todo[job.key] = job
    bar = tqdm(total=len({j.key for j in jobs}), initial=len({j.key for j in jobs}) - len(todo), desc=desc,
               unit="run", file=sys.stderr, dynamic_ncols=True,
               disable=(not sys.stderr.isatty()) if progress is None else not progress)
    if todo:
        isolation(next(iter(todo.values())).limits.isolation)  # probe once, before the threads start
        lock = threading.Lock()
        appender = JsonlAppender(stream) if stream is not None else None

        def run(job: Job) -> tuple[str, dict]:
            outcome = run_python(job.program, limits=job.limits, stdin=job.stdin())
            return job.key, job.finish(outcome)

        n_workers = max(1, min(workers or os.cpu_count() or 1, len(todo)))
        try:
            with ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="eval") as pool:
                futures = [pool.submit(run, job) for job in todo.values()]
                for fut in as_completed(futures):
                    key, result = fut.result()
                    with lock:
                        done[key] = result
                        if appender is not None:
                            appender.write({"key": key, "result": result})
                    bar.update(1)
        finally:
            if appender is not None:
                appender.close()
    bar.close()
    return [done[job.key] for job in jobs]
