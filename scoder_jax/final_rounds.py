"""The final set at its size: rounds of sampling and scoring until `final.size` samples are kept.

Round 1 is the final_sample stage's candidates. While fewer than K are kept and fewer than
`final.max_rounds` rounds have run, the next `final.snippets` snippets of the pool (wrapping
around, each round with its own seed) are sampled from S_T's last checkpoint and scored, each
round in its own folder of the final_score stage (`round_NN/samples`, `round_NN/scores`), so a
killed run resumes the round in flight. The kept set is every round's selection, the K with
the highest totals (ties by id); a cap hit before K is reported, not an error. With
`score.weights: fit` the weights are fitted once, on the first round that has candidates, and
every later round is totalled and thresholded with them, so the K are ranked on one scale; the
stage's weights.json (and fit_report.json) are that round's.
"""

from __future__ import annotations

import logging
from pathlib import Path

from scoder_jax.io import read_jsonl, write_json_atomic, write_jsonl_atomic, write_text_atomic

log = logging.getLogger(__name__)


def _total(row: dict) -> float:
    score = (row.get("meta") or {}).get("score") or {}
    total = score.get("total") if isinstance(score, dict) else None
    return float(total) if isinstance(total, (int, float)) else float("-inf")


def score_to_size(ctx, round_one: list[dict], out: Path) -> dict:
    """final_score with final.size = K: returns the stage's counts; writes out/scores.jsonl (every
    round's), out/selected.jsonl (the K kept) and out/rounds.json."""
    from scoder_jax.stages import checkpoint_set, sample_into, score_into, snippets_for

    fin = ctx.cfg.final
    K, cap = fin.size, fin.max_rounds
    checkpoint = checkpoint_set(ctx, f"sft_{ctx.cfg.iterations:02d}", 1)
    stage = ctx.stages["final_sample"]
    scores, kept, rounds = [], [], []
    weighed = None  # the scores of the first round that wrote weights (with score.weights: fit, fitted there)
    for r in range(1, cap + 1):
        rdir = out / f"round_{r:02d}"
        if r == 1:
            cands = round_one
        else:
            seed = ctx.cfg.seed + 1000 * (ctx.cfg.iterations + 1) + 100 * (r - 1)
            counts = sample_into(ctx, snippets_for(ctx, stage, final_round=r), checkpoint, fin, seed,
                                 rdir / "samples", f"final_round_{r:02d}", alone=True)
            path = rdir / "samples" / "candidates.jsonl"
            cands = read_jsonl(path) if path.exists() else []
            log.info("final set, round %d: %d candidates (%s rejects)", r, len(cands), counts.get("rejects"))
        reuse = weighed is not None and ctx.cfg.score.weights == "fit"
        score_into(ctx, cands, rdir / "scores", weights_file=weighed / "weights.json" if reuse else None)
        if weighed is None and (rdir / "scores" / "weights.json").exists():
            weighed = rdir / "scores"
            for name in ("weights.json", "fit_report.json"):  # the stage's, where the report looks
                if (weighed / name).exists():
                    write_text_atomic(out / name, (weighed / name).read_text(encoding="utf-8"))
        scores += read_jsonl(rdir / "scores" / "scores.jsonl")
        chosen = read_jsonl(rdir / "scores" / "selected.jsonl")
        kept += chosen
        rounds.append({"round": r, "candidates": len(cands), "kept": len(chosen)})
        if len(kept) >= K:
            break
    kept.sort(key=lambda row: (-_total(row), row["id"]))
    selected = kept[:K]
    reached = len(kept) >= K
    if not reached:
        log.warning("final.size %d not reached: %d kept after %d rounds (final.max_rounds); the synthesizer's "
                    "replies parse or pass too rarely: raise final.max_rounds or final.snippets, or train it "
                    "longer", K, len(kept), len(rounds))
    write_jsonl_atomic(out / "scores.jsonl", scores)
    write_jsonl_atomic(out / "selected.jsonl", selected)
    write_json_atomic(out / "rounds.json", {"size": K, "max_rounds": cap, "reached": reached, "rounds": rounds})
    return {"candidates": sum(x["candidates"] for x in rounds), "selected": len(selected), "size": K,
            "rounds": len(rounds), "reached": reached, "kept_all_rounds": len(kept)}
