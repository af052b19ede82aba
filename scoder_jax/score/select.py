"""Scoring and initial selection: judge + execute every candidate, total its score, keep the best
candidate per snippet above a threshold.

`score_candidates(candidates, judge, out_dir, ...)` writes into `out_dir`:

    judge.json      the judge (checkpoint, aspects) the ratings come from (a rerun must match)
    judged.jsonl    per candidate, appended as it is done (resumable): id, snippet_id, lang,
                    scores {aspect: 0..9}, digit_mass {aspect: p}, truncated, signals
                    ({parses, runs, passes, ...} or null), unscored ("" or a reason)
    scores.jsonl    every candidate: the judged row plus total and reason (see REASONS)
    selected.jsonl  the kept candidates (Sample records; meta.score = {total, scores, signals})
    summary.json    counts per reason, snippets with a selection, weights and threshold used,
                    mean ratings, signal rates, judge timings

The last three are written atomically from judged.jsonl, so `reselect` can redo the selection
with other weights or threshold without judging again.

Each candidate gets exactly one reason, checked in this order:

    no_problem / no_solution   nothing to judge (counted, never selected)
    parse_error                a Python solution that does not parse (with require_parse)
    failed_tests               a Python candidate whose tests fail (with require_tests_pass; in the
                               format without tests, `passes` is None and drops nothing)
    below_threshold            total < threshold
    not_best                   another candidate of its snippet scored higher (ties: smaller id)
    selected
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import types
from collections import Counter
from pathlib import Path
from typing import Literal, Sequence

import numpy as np

from scoder_jax.errors import ConfigError, DataError
from scoder_jax.io import JsonlAppender, iter_jsonl, write_json_atomic, write_jsonl_atomic
from scoder_jax.score.signals import SIGNALS
from scoder_jax.score.weights import Weights

REASONS: tuple[str, ...] = ("selected", "no_problem", "no_solution", "parse_error", "failed_tests",
                            "below_threshold", "not_best")


@dataclasses.dataclass(frozen=True)
class SelectConfig:
    threshold: float | None = None  # None: the weights' suggested threshold, else keep all
    require_parse: bool = True  # drop Python candidates whose solution does not parse
    require_tests_pass: bool = False  # drop Python candidates whose tests fail (not those never tested)
    per_snippet: Literal["best", "all"] = "best"  # keep each snippet's best candidate, or every one that passes


def select_best(rows: Sequence[dict], cfg: SelectConfig = SelectConfig(), threshold: float | None = None
                ) -> tuple[list[str], dict[str, str]]:
    """rows: {id, snippet_id, total (float or None), signals (dict or None), unscored}.
    Returns (selected ids in row order, {id: reason})."""
    thr = cfg.threshold if cfg.threshold is not None else threshold
    reason: dict[str, str] = {}
    best: dict[str, dict] = {}
    for r in rows:
        sig = r.get("signals")
        total = r.get("total")
        if r.get("unscored"):
            reason[r["id"]] = r["unscored"]
        elif total is None or (isinstance(total, float) and math.isnan(total)):
            reason[r["id"]] = "no_solution"
        elif cfg.require_parse and sig is not None and not sig.get("parses"):
            reason[r["id"]] = "parse_error"
        elif cfg.require_tests_pass and sig is not None and sig.get("passes") is not None and not sig["passes"]:
            reason[r["id"]] = "failed_tests"
        elif thr is not None and total < thr:
            reason[r["id"]] = "below_threshold"
        elif cfg.per_snippet == "all":
            reason[r["id"]] = "selected"
        else:
            reason[r["id"]] = "not_best"
            cur = best.get(r["snippet_id"])
            if cur is None or total > cur["total"] or (total == cur["total"] and r["id"] < cur["id"]):
                best[r["snippet_id"]] = r
    for r in best.values():
        reason[r["id"]] = "selected"
    return [r["id"] for r in rows if reason[r["id"]] == "selected"], reason


# ----------------------------------------------------------------------------------------------
# Scoring


def load_candidates(path: str | Path, limit: int | None = None) -> list[dict]:
    """Candidate (Sample) records; DataError naming file:line for a malformed or id-less line,
    or a repeated id."""
    out, seen = [], set()
    for rec in iter_jsonl(path, require=("id", "snippet_id")):
        if rec["id"] in seen:
            raise DataError(f"{path}: candidate id {rec['id']!r} appears twice (merge shards with "
                            "`merge_shards`, or deduplicate)")
        seen.add(rec["id"])
        out.append(rec)
        if limit is not None and len(out) >= limit:
            break
    return out


class NoJudge:
    """Scoring without a judge (no aspects: the ablation without multi-aspect scoring): every
    candidate gets no ratings, and the total is the execution signals' part alone."""

    aspects: tuple = ()
    compiled: dict = {}
    stats: dict = {}

    def score(self, part: Sequence[dict]):
        n = len(part)
        return types.SimpleNamespace(skipped={}, scores=[[]] * n, digit_mass=[[]] * n, truncated=[False] * n)


def _judge_identity(judge, judge_name: str, tests: bool) -> dict:
    """What makes two ratings comparable: the judge, its aspects, how it rates (expected or
    integer digit) and whether candidates' tests ran (judge.json of older runs: expected, run)."""
    return {"judge": judge_name, "aspects": [dataclasses.asdict(a) for a in judge.aspects],
            "rating": getattr(judge, "rating", "expected"), "tests": tests}


_IDENTITY_DEFAULTS = {"rating": "expected", "tests": True}


def score_candidates(candidates: Sequence[dict], judge, out_dir: str | Path, *, judge_name: str = "",
                     weights: Weights | None = None, select: SelectConfig = SelectConfig(), use_exec: bool = True,
                     limits=None, workers: int | None = None, chunk: int = 256, progress: bool = False,
                     tests: bool = True) -> dict:
    """Judges and executes the candidates not yet in `out_dir/judged.jsonl`, then totals and
    selects (see the module docstring). `judge` is a `score.judge.Judge`; `weights` default to
    `Weights.default(aspects)`. `tests=False` (sample format "problem_solution"): the execution
    signals are parses and runs only (`signals.execution_signals`). Returns the summary (also
    written to summary.json)."""
    from scoder_jax.score.signals import execution_signals

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    ident = _judge_identity(judge, judge_name, tests)
    jpath = out_dir / "judge.json"
    if jpath.exists():
        have = {**_IDENTITY_DEFAULTS, **json.loads(jpath.read_text(encoding="utf-8"))}
        if have != ident:
            def shown(k, v):
                return [a.get("name") for a in v] if k == "aspects" and isinstance(v, list) else v

            differ = ", ".join(f"{k} {shown(k, have.get(k))!r}, now {shown(k, ident[k])!r}"
                               for k in ident if have.get(k) != ident[k])
            raise ConfigError(f"{out_dir} holds ratings from another judge, aspects, rating or test setting "
                              f"({jpath}: {differ}); use a fresh --out directory")
    else:
        write_json_atomic(jpath, ident)
    judged_path = out_dir / "judged.jsonl"
    done: set[str] = set()
    if judged_path.exists():
        JsonlAppender(judged_path).close()  # cut a torn last line
        done = {r["id"] for r in iter_jsonl(judged_path)}
    todo = [c for c in candidates if c["id"] not in done]
    names = [a.name for a in judge.aspects]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), unit="cand", desc="score", dynamic_ncols=True)
    try:
        with JsonlAppender(judged_path, flush_every=1 << 30) as out:
            for k in range(0, len(todo), chunk):
                part = todo[k:k + chunk]
                res = judge.score(part)
                sigs = execution_signals(part, limits=limits, workers=workers, tests=tests) if use_exec \
                    else [None] * len(part)
                for i, c in enumerate(part):
                    unscored = res.skipped.get(i, "")
                    out.write({
                        "id": c["id"], "snippet_id": c["snippet_id"], "lang": c.get("lang") or "python",
                        "scores": None if unscored else dict(zip(names, map(float, res.scores[i]))),
                        "digit_mass": None if unscored else dict(zip(names, map(float, res.digit_mass[i]))),
                        "truncated": bool(res.truncated[i]), "signals": sigs[i], "unscored": unscored,
                    })
                out.flush()
                if bar is not None:
                    bar.update(len(part))
    finally:
        if bar is not None:
            bar.close()
    summary = reselect(candidates, out_dir, weights=weights, select=select)
    summary["judged_now"] = len(todo)
    summary["judged_before"] = len(candidates) - len(todo)
    summary["judge"] = {"name": judge_name, "compiled_shapes": len(judge.compiled),
                        **{k: round(float(v), 3) for k, v in judge.stats.items()}}
    summary["wall_s"] = round(time.perf_counter() - t0, 3)
    write_json_atomic(out_dir / "summary.json", summary)
    return summary


def reselect(candidates: Sequence[dict], out_dir: str | Path, *, weights: Weights | None = None,
             select: SelectConfig = SelectConfig()) -> dict:
    """Totals and selection from `out_dir/judged.jsonl` (every candidate must be judged):
    writes scores.jsonl, selected.jsonl and summary.json; returns the summary."""
    out_dir = Path(out_dir)
    judged_path = out_dir / "judged.jsonl"
    if not judged_path.exists():
        raise DataError(f"{judged_path}: no such file (run `scoder score run` first)")
    ident = json.loads((out_dir / "judge.json").read_text(encoding="utf-8"))
    names = [a["name"] for a in ident["aspects"]]
    rows = {r["id"]: r for r in iter_jsonl(judged_path)}
    missing = [c["id"] for c in candidates if c["id"] not in rows]
    if missing:
        raise DataError(f"{judged_path}: {len(missing)} candidates are not judged yet (first {missing[0]!r}); "
                        "run `scoder score run` to finish")
    w = (weights or Weights.default(names)).aligned(names)
    ordered = [rows[c["id"]] for c in candidates]
    A = np.asarray([[r["scores"][a] for a in names] if r["scores"] else [np.nan] * len(names) for r in ordered],
                   np.float64).reshape(len(ordered), len(names))
    totals = w.total(A, [r["signals"] for r in ordered])
    scored = []
    for r, t in zip(ordered, totals):
        scored.append({**r, "total": None if np.isnan(t) else float(t)})
    chosen, reason = select_best(scored, select, w.threshold)
    for r in scored:
        r["reason"] = reason[r["id"]]
    by_id = {r["id"]: r for r in scored}
    selected = []
    for c in candidates:
        if reason[c["id"]] == "selected":
            r = by_id[c["id"]]
            meta = dict(c.get("meta") or {})
            meta["score"] = {"total": r["total"], "scores": r["scores"], "signals": r["signals"]}
            selected.append({**c, "meta": meta})
    write_jsonl_atomic(out_dir / "scores.jsonl", scored)
    write_jsonl_atomic(out_dir / "selected.jsonl", selected)
    counts = Counter(reason.values())
    judged = [r for r in scored if r["scores"]]
    py = [r for r in scored if r["signals"] is not None]
    thr = select.threshold if select.threshold is not None else w.threshold
    summary = {
        "candidates": len(scored), "snippets": len({r["snippet_id"] for r in scored}),
        "selected": len(selected), "reasons": {k: counts[k] for k in REASONS if counts[k]},
        "threshold": thr, "require_parse": select.require_parse, "require_tests_pass": select.require_tests_pass,
        "weights": w.to_dict() | {"report": None},
        "mean_scores": {a: float(np.mean([r["scores"][a] for r in judged])) for a in names} if judged else {},
        "mean_total": float(np.mean([r["total"] for r in scored if r["total"] is not None])) if judged else None,
        "truncated": sum(1 for r in scored if r.get("truncated")),
        "executed": len(py),
        # over the candidates a signal was checked for (None: not checked, e.g. passes without tests)
        "signal_rates": {s: float(np.mean(v)) for s in SIGNALS
                         if (v := [bool(r["signals"][s]) for r in py if r["signals"].get(s) is not None])},
    }
    write_json_atomic(out_dir / "summary.json", summary)
    return summary


__all__ = ["REASONS", "SelectConfig", "select_best", "score_candidates", "reselect", "load_candidates"]
