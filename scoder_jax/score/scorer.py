"""The dedicated multi-aspect scorer: a small model fine-tuned on the teacher's ratings.

Training records are the judge's own prompts (`judge.judge_messages`: one per candidate and
aspect, every aspect's rubric listed, ending where the answer starts) with the teacher's
integer rating as the answer, so the existing `Judge` reads a trained scorer unchanged: the
rating is read from the ten digit tokens' probabilities, as for an untrained judge.

`train_scorer(annotations_dir, out_dir, train_cfg)` holds out a seeded part of the annotated
candidates, fine-tunes on the rest with the project's trainer (LoRA or full, `train_cfg`),
and measures agreement with the teacher on the held-out part, per aspect, for the trained
scorer and for the untrained prompted judge (the base model) as the baseline:

    exact     fraction of ratings equal to the teacher's (an expected rating is rounded)
    within1   fraction within +-1 of the teacher's
    spearman  Spearman rank correlation with the teacher's (None where either side is constant)

`out_dir` holds train.jsonl (the records), ckpt/ (the trainer's folder), heldout.jsonl (per
held-out candidate: the teacher's, the baseline's and the scorer's ratings), report.json and,
written last, scorer.json (`scorer_info`): `score.judge: out_dir` then uses the scorer.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from scoder_jax.errors import DataError, ScoderError
from scoder_jax.io import write_json_atomic, write_jsonl_atomic
from scoder_jax.score.judge import Aspect, judge_messages
from scoder_jax.score.scorer_info import SCORER_FILE, SCORER_FORMAT

log = logging.getLogger(__name__)

# Trainer settings of a scorer fine-tune when no train config file is given (overrides apply on top).
SCORER_TRAIN_DEFAULTS: tuple[str, ...] = (
    "seq_len=1024", "batch_size=8", "epochs=3", "optim.lr=1e-4", "optim.warmup_ratio=0.05",
    "data.too_long=drop",  # a cut prompt would lose its answer digit
    "checkpoint.keep=1", "checkpoint.async_save=false", "tensorboard=false",
)


def scorer_records(rows: Sequence[dict], aspects: Sequence[Aspect]) -> list[dict]:
    """Annotated candidates -> chat records: the judge's prompt for each aspect, the teacher's
    integer rating as the assistant's answer. [len(rows) * Z] records."""
    out = []
    for r in rows:
        for a in aspects:
            out.append({"id": f"{r['id']}#{a.name}", "messages": judge_messages(r, a, aspects)
                        + [{"role": "assistant", "content": str(int(r["ratings"][a.name]))}]})
    return out


def check_answer_tokens(tokenizer, record: dict) -> None:
    """The judge reads its rating right after the prompt: the record's tokens must be the
    prompt's tokens (`encode_chat`) followed by one digit token, which carries loss."""
    from scoder_jax.score.judge import digit_token_ids

    prompt = tokenizer.encode_chat(record["messages"][:-1])
    ids, mask = tokenizer.encode_chat_with_loss_mask(record["messages"])
    digits = set(digit_token_ids(tokenizer))
    k = len(prompt)
    if ids[:k] != prompt or len(ids) <= k or ids[k] not in digits or not mask[k]:
        raise ScoderError(f"{getattr(tokenizer, 'source', 'the tokenizer')}: the chat template does not put the "
                          "rating's digit as one token right after the judge's prompt, so a scorer trained on these "
                          "records would not be read by the judge; use a tokenizer whose digits are single tokens")


def split_holdout(rows: Sequence[dict], fraction: float, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """(train, held out): each row held out by a hash of (seed, id), so the split is stable as
    annotations are added; at least one row on each side when there are two or more."""
    if not 0 <= fraction < 1:
        raise DataError(f"--holdout must lie in [0, 1), got {fraction}")

    def u(r):
        h = hashlib.sha256(f"{seed}\0{r['id']}".encode()).digest()
        return int.from_bytes(h[:8], "big") / 2 ** 64

    ranked = sorted(rows, key=u)
    n_out = int(round(fraction * len(rows)))
    if fraction > 0 and len(rows) >= 2:
        n_out = min(max(n_out, 1), len(rows) - 1)
    out_ids = {r["id"] for r in ranked[:n_out]}
    return [r for r in rows if r["id"] not in out_ids], [r for r in rows if r["id"] in out_ids]


def agreement(pred: np.ndarray, teacher: np.ndarray, names: Sequence[str]) -> dict:
    """Per aspect and averaged: exact, within1, spearman, n. pred [n, Z] (float, NaN: not
    rated), teacher [n, Z] integers."""
    from scipy.stats import spearmanr

    pred, teacher = np.asarray(pred, np.float64), np.asarray(teacher, np.float64)
    out: dict = {}
    for z, name in enumerate(names):
        ok = ~np.isnan(pred[:, z])
        p, t = pred[ok, z], teacher[ok, z]
        if not len(p):
            out[name] = {"exact": None, "within1": None, "spearman": None, "n": 0}
            continue
        rounded = np.floor(p + 0.5)
        rho = None
        if len(p) > 2 and np.ptp(p) > 0 and np.ptp(t) > 0:
            rho = float(spearmanr(p, t).statistic)
        out[name] = {"exact": float(np.mean(rounded == t)), "within1": float(np.mean(np.abs(p - t) <= 1.0 + 1e-9)),
                     "spearman": rho, "n": int(len(p))}
    out["mean"] = {k: (float(np.mean(v)) if (v := [out[n][k] for n in names if out[n][k] is not None]) else None)
                   for k in ("exact", "within1", "spearman")}
    return out


def _rate(judge, rows: Sequence[dict]) -> np.ndarray:
    res = judge.score(rows)
    if res.skipped:
        raise DataError(f"annotated candidate {rows[min(res.skipped)]['id']!r} has no problem or solution")
    return res.scores


def _baseline_judge(cfg, base: str, aspects, rating: str, batch_size: int):
    """The untrained prompted judge: the model the fine-tune starts from (a preset: its random
    init with the train config's seed), with the train config's tokenizer."""
    from scoder_jax.score.judge import Judge
    from scoder_jax.train.data import resolve_tokenizer
    from scoder_jax.train.trainer import build_mesh, load_initial_model

    model, path = load_initial_model(cfg, build_mesh(cfg), base)
    tok = resolve_tokenizer(cfg.tokenizer, path)
    if tok is None:
        raise ScoderError(f"{base}: no tokenizer (give --tokenizer)")
    return Judge(model, tok, aspects, batch_size=batch_size, rating=rating)


def train_scorer(annotations_dir: str | Path, out_dir: str | Path, cfg, *, base: str | None = None,
                 holdout: float = 0.2, seed: int = 0, rating: str = "integer", batch_size: int = 8,
                 progress: bool = False) -> dict:
    """Fine-tunes a scorer on `annotations_dir` (`scoder scorer annotate`'s folder) into
    `out_dir` and returns the report (see the module docstring). `cfg` is a TrainConfig (its
    model is the base unless `base` is given); `rating` is how agreement reads the judges'
    ratings ("integer": the most likely digit, the paper's; "expected": the expected digit)."""
    from scoder_jax.models.checkpoint import load_model, load_tokenizer
    from scoder_jax.score.annotate import load_annotations
    from scoder_jax.score.judge import Judge
    from scoder_jax.train.data import resolve_tokenizer
    from scoder_jax.train.trainer import train

    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    aspects, rows = load_annotations(annotations_dir)
    rows = sorted(rows, key=lambda r: r["id"])  # annotations arrive in reply order: train in a fixed one
    names = [a.name for a in aspects]
    base = base or cfg.model
    cfg = dataclasses.replace(cfg, model=base)
    train_rows, held = split_holdout(rows, holdout, seed)
    if not train_rows:
        raise DataError(f"{annotations_dir}: no annotations to train on ({len(rows)} rated candidates)")
    records = scorer_records(train_rows, aspects)
    from scoder_jax.assets import resolve

    tok = resolve_tokenizer(cfg.tokenizer, resolve(base))
    if tok is None:
        raise ScoderError(f"{base}: no tokenizer beside the model; give one (--tokenizer)")
    check_answer_tokens(tok, records[0])
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / SCORER_FILE).unlink(missing_ok=True)  # the folder is a scorer again only once it is complete
    data_path = out_dir / "train.jsonl"
    write_jsonl_atomic(data_path, records)
    summary = train(cfg, data_path, out_dir / "ckpt", resume=True)
    ckpt = Path(summary["checkpoints"][-1]["path"])
    report = {"annotations": str(annotations_dir), "base": base, "aspects": names, "rating": rating,
              "train_candidates": len(train_rows), "train_records": len(records),
              "dropped_too_long": int((summary.get("data") or {}).get("dropped_too_long", 0) or 0),
              "heldout_candidates": len(held), "steps": summary.get("steps"), "final_loss": summary.get("final_loss"),
              "train_s": round(float(summary.get("elapsed_s") or 0.0), 1)}
    if held:
        teacher = np.asarray([[r["ratings"][n] for n in names] for r in held], np.float64)
        baseline = _rate(_baseline_judge(cfg, base, aspects, rating, batch_size), held)
        scorer_tok = load_tokenizer(ckpt, required=False) or tok
        trained = _rate(Judge(load_model(ckpt), scorer_tok, aspects, batch_size=batch_size, rating=rating), held)
        report["scorer"] = agreement(trained, teacher, names)
        report["baseline"] = agreement(baseline, teacher, names)
        write_jsonl_atomic(out_dir / "heldout.jsonl", [
            {"id": r["id"], "teacher": r["ratings"], "baseline": dict(zip(names, map(float, baseline[i]))),
             "scorer": dict(zip(names, map(float, trained[i])))} for i, r in enumerate(held)])
    report["wall_s"] = round(time.perf_counter() - t0, 1)
    write_json_atomic(out_dir / "report.json", report)
    write_json_atomic(out_dir / SCORER_FILE, {
        "format": SCORER_FORMAT, "aspects": [dataclasses.asdict(a) for a in aspects],
        "checkpoint": ckpt.relative_to(out_dir.absolute()).as_posix() if ckpt.is_absolute() else str(ckpt),
        "base": base, "annotations": str(annotations_dir), "heldout": [r["id"] for r in held],
        "report": "report.json"})
    return report


def report_table(report: dict) -> str:
    """The agreement figures as a fixed-width table (one row per aspect, then the mean)."""
    if "scorer" not in report:
        return "(no held-out annotations: agreement not measured)"
    names = [*report["aspects"], "mean"]

    def f(v):
        return "   —  " if v is None else f"{v:6.3f}"

    lines = [f"{'aspect':<14} {'scorer: exact':>13} {'±1':>6} {'spearman':>8}   {'untrained: exact':>16} "
             f"{'±1':>6} {'spearman':>8}"]
    for n in names:
        s, b = report["scorer"][n], report["baseline"][n]
        lines.append(f"{n:<14} {f(s['exact']):>13} {f(s['within1']):>6} {f(s['spearman']):>8}   "
                     f"{f(b['exact']):>16} {f(b['within1']):>6} {f(b['spearman']):>8}")
    return "\n".join(lines)


__all__ = ["scorer_records", "split_holdout", "agreement", "train_scorer", "report_table", "check_answer_tokens",
           "SCORER_TRAIN_DEFAULTS"]
