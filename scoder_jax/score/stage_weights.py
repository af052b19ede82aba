"""Score weights fitted inside the loop (`score.weights: fit`), from labelled data the run has.

At each score stage, after its candidates are judged and executed:

    positives  the seed set D_p (a seeded sample of `max_positives`), judged and executed here
    negatives  corrupted copies of those seed samples (`weights.corrupt`: solution swapped,
               problem replaced, off-topic, code broken), judged and executed here, and the
               stage's own candidates that failed execution (their solution does not parse or
               does not run, or their tests fail), with the ratings they already have

and `weights.fit_weights` fits w (nnls or logistic, cross-validated) on them. The stage's folder
gets weights.json (the fitted weights, `scoder score fit-weights`' format, threshold included),
fit_report.json (the fit's report and the calibration set's make-up) and calibration.jsonl (one
row per calibration sample: id, label, kind, ratings, signals, total).
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import Sequence

import numpy as np

from scoder_jax.errors import DataError
from scoder_jax.io import write_json_atomic, write_jsonl_atomic
from scoder_jax.score.signals import SIGNALS
from scoder_jax.score.weights import Weights, corrupt, fit_weights


def failed_execution(row: dict) -> bool:
    """A judged row whose solution was executed and did not parse, did not run, or failed its tests."""
    sig = row.get("signals")
    if not isinstance(sig, dict):
        return False
    return not sig.get("parses") or not sig.get("runs") or sig.get("passes") is False


def fit_stage_weights(seed: Sequence[dict], judged: Sequence[dict], judge, out_dir: str | Path, *,
                      method: str = "nnls", max_positives: int = 0, use_exec: bool = True, tests: bool = True,
                      limits=None, rng_seed: int = 0, progress: bool = False) -> Weights:
    """Fits the weights of one score stage (see the module docstring) and writes weights.json,
    fit_report.json and calibration.jsonl into `out_dir`. `seed`: D_p's samples; `judged`: the
    stage's judged.jsonl rows; `judge`: the stage's judge (its aspects name the weights)."""
    from scoder_jax.score.judge import unjudgeable
    from scoder_jax.score.signals import execution_signals

    out_dir = Path(out_dir)
    names = [a.name for a in judge.aspects]
    P = [s for s in seed if not unjudgeable(s)]
    if max_positives and len(P) > max_positives:
        keep = sorted(random.Random(rng_seed).sample(range(len(P)), max_positives))
        P = [P[i] for i in keep]
    if len(P) < 2:
        raise DataError(f"score.weights: fit needs at least 2 seed samples with a problem and a solution as "
                        f"positives (and to corrupt into negatives); the seed set has {len(P)}")
    N = corrupt(P, len(P), seed=rng_seed)
    samples = [*P, *N]
    res = judge.score(samples, progress=progress)
    sigs = execution_signals(samples, limits=limits, tests=tests) if use_exec else [None] * len(samples)
    failed = [r for r in judged if r.get("scores") and not r.get("unscored") and failed_execution(r)]
    A = np.concatenate([res.scores, np.asarray([[r["scores"][a] for a in names] for r in failed],
                                               np.float64).reshape(len(failed), len(names))])
    all_sigs = [*sigs, *(r["signals"] if use_exec else None for r in failed)]
    labels = [1] * len(P) + [0] * (len(N) + len(failed))
    kinds = ["seed"] * len(P) + [n["meta"]["corruption"] for n in N] + ["failed_execution"] * len(failed)
    ids = [s.get("id") for s in samples] + [r["id"] for r in failed]
    ok = ~np.isnan(A).any(axis=1)  # a sample the judge could not rate (a corruption left without a problem)
    w = fit_weights(A[ok], [s for s, k in zip(all_sigs, ok) if k], [y for y, k in zip(labels, ok) if k], names,
                    method=method, seed=rng_seed, use_exec=use_exec)
    totals = w.total(A, all_sigs)
    rows = [{"id": ids[i], "label": labels[i], "kind": kinds[i],
             "scores": dict(zip(names, map(float, A[i]))), "signals": all_sigs[i],
             "total": None if np.isnan(totals[i]) else float(totals[i])} for i in range(len(ids))]
    by_kind: dict[str, dict] = {}
    for r in rows:
        if r["total"] is None:
            continue
        d = by_kind.setdefault(r["kind"], {"n": 0, "total": 0.0, **{a: 0.0 for a in names}})
        d["n"] += 1
        d["total"] += r["total"]
        for a in names:
            d[a] += r["scores"][a]
    for d in by_kind.values():
        for k in ("total", *names):
            d[k] = round(d[k] / d["n"], 4)
    report = {**w.report, "positives": len(P), "corrupted": len(N), "failed_execution": len(failed),
              "not_rated": int((~ok).sum()), "mean_by_kind": by_kind, "rating": getattr(judge, "rating", None),
              "weights": {**dict(zip(names, w.aspect_weights)), **dict(zip(SIGNALS, w.exec_weights)), "bias": w.bias},
              "threshold": w.threshold}
    w = dataclasses.replace(w, report=report)
    write_jsonl_atomic(out_dir / "calibration.jsonl", rows)
    write_json_atomic(out_dir / "fit_report.json", report)
    w.save(out_dir / "weights.json")
    return w


__all__ = ["fit_stage_weights", "failed_execution"]
