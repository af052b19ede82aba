"""A synthetic, finished run directory for the export and report tests (seconds, no model).

`fake_run(root)` lays out what `scoder iterate` leaves behind for the stages export and the
report read: config.yaml, manifest.json (every stage done, keys as the pipeline computes them),
each sample stage's candidates.jsonl (the final set's sample_config.json), each score stage's
judge.json, judged.jsonl and, from the real `reselect`, scores.jsonl / selected.jsonl /
summary.json, each influence stage's scores.jsonl, the export stage's dataset (the real
`export_run`) and each eval stage's results.json per benchmark. Ratings rise with the
iteration; influence scores sit in a narrow band, as they do in real runs (cosines within 1e-3
of each other).
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

from scoder_jax.config import dump_yaml
from scoder_jax.eval.results import build_results, write_results
from scoder_jax.io import write_json_atomic, write_jsonl_atomic
from scoder_jax.runconfig import load_run_config

ASPECTS = ("clarity", "correctness", "consistency", "relevance", "difficulty")


def _candidates(run_dir: Path, it: int, n_snippets: int, per_snippet: int, seed: int) -> list[dict]:
    out = []
    for s in range(n_snippets):
        for k in range(per_snippet):
            name = f"f{it}_{s}_{k}"
            out.append({
                "id": f"c{it:02d}-{s}-{k}", "snippet_id": f"snip{it}-{s}", "snippet": f"def g{s}():\n    return {s}\n",
                "lang": "python", "origin": "synth",
                "problem": f"Write `{name}(x)` returning x plus {s + k} (iteration {it}).",
                "solution": f"def {name}(x):\n    return x + {s + k}\n",
                "tests": f"assert {name}(1) == {1 + s + k}\n",
                "meta": {"checkpoint": str(run_dir / f"iter_{it - 1:02d}/ckpt/step_{90 + 10 * (k % 2)}"),
                         "checkpoint_index": k % 2, "sample_index": k // 2, "seed": seed, "prompt_id": s * 10 + k,
                         "parse": "ok", "finish_reason": "stop", "n_tokens": 40},
            })
    return out


def _score(out: Path, cands: list[dict], it: int, rng: random.Random) -> dict:
    from scoder_jax.score.judge import DEFAULT_ASPECTS
    from scoder_jax.score.select import SelectConfig, reselect

    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "judge.json", {"judge": "fake", "aspects": [
        {"name": a.name, "title": a.title, "rubric": a.rubric} for a in DEFAULT_ASPECTS]})
    judged = []
    for c in cands:
        scores = {a: float(min(9, max(0, round(rng.gauss(3 + it, 1.5))))) for a in ASPECTS}
        passes = rng.random() < 0.15 * it
        judged.append({"id": c["id"], "snippet_id": c["snippet_id"], "lang": "python", "scores": scores,
                       "digit_mass": {a: 0.9 for a in ASPECTS}, "truncated": False,
                       "signals": {"parses": True, "runs": True, "passes": passes}, "unscored": ""})
    write_jsonl_atomic(out / "judged.jsonl", judged)
    summary = reselect(cands, out, select=SelectConfig(threshold=0.0, require_tests_pass=False))
    return {"candidates": summary["candidates"], "selected": summary["selected"]}


def fake_run(root: Path, iterations: int = 2, seed: int = 0, overrides: tuple[str, ...] = ()):
    """Builds the run directory root/run; returns (run_dir, manifest dict, RunConfig)."""
    from scoder_jax.export import export_run
    from scoder_jax.pipeline import build_stages, stage_key

    cfg, _ = load_run_config("smoke", [f"iterations={iterations}", "name=fake", "eval.per_iteration=true",
                                       "final.snippets=4", f"seed={seed}", *overrides])
    run_dir = Path(root) / "run"
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(dump_yaml(cfg))
    rng = random.Random(seed)
    stages, fingerprints = {}, {}
    final_it = iterations + 1
    for st in build_stages(cfg):
        out = run_dir / st.out
        out.mkdir(parents=True, exist_ok=True)
        it = st.iteration
        if st.kind == "sample":
            per = cfg.final.n if st.name == "final_sample" else cfg.sample.n * cfg.sample.checkpoints
            n_snip = cfg.final.snippets if st.name == "final_sample" else 3 + it
            sample_seed = cfg.seed + 1000 * it
            cands = _candidates(run_dir, it, n_snip, max(per, 2), sample_seed)
            write_jsonl_atomic(out / "candidates.jsonl", cands)
            temperature = cfg.final.temperature if st.name == "final_sample" else cfg.sample.temperature
            write_json_atomic(out / "sample_config.json", {"sampling": {"temperature": temperature,
                                                                        "seed": sample_seed}})
            counts = {"candidates": len(cands), "rejects": 2}
        elif st.kind == "score":
            src = "final_sample" if st.name == "final_score" else f"sample_{it:02d}"
            cands = [json.loads(x)
                     for x in (run_dir / stages[src]["out"] / "candidates.jsonl").read_text().splitlines()]
            counts = _score(out, cands, it, rng)
        elif st.kind == "influence":
            kept = [json.loads(x) for x in (run_dir / f"iter_{it:02d}/scores/selected.jsonl").read_text().splitlines()]
            write_jsonl_atomic(out / "scores.jsonl", [{"id": r["id"], "score": 0.0118 + rng.random() * 8e-4}
                                                      for r in kept])
            counts = {"candidates": len(kept)}
        elif st.kind == "select":
            counts = {"selected": (stages[f"influence_{it:02d}"]["counts"]["candidates"] + 1) // 2}
        elif st.kind == "eval":
            p1 = 0.5 if st.name == "eval" else round(0.125 * it, 3)  # the shape of eval.suite.run_suite's counts
            counts = {"benchmarks": {"humaneval": {"pass@1": p1, "n_problems": 8},
                                     "humaneval+": {"pass@1": p1 / 2, "pass@1_plus": p1 / 4, "n_problems": 8}},
                      "skipped": [], "benchmark": "humaneval", "n_problems": 8, "pass@1": p1}
            for name, scores in (("humaneval", {"base": {"pass@1": p1}}),  # run_suite's files: one per benchmark
                                 ("humaneval+", {"base": {"pass@1": p1 / 2}, "plus": {"pass@1": p1 / 4}})):
                write_results(build_results(name, problems_file=None, n_problems=8, n_samples=8, pass_at_k=scores,
                                            model=str(out)), out / name.replace("+", "_plus"))
        elif st.kind == "export":
            counts = export_run(run_dir, cfg, out)
        else:
            counts = {}
        key = stage_key(cfg, st, fingerprints)
        fingerprints[st.name] = hashlib.sha256(f"{key}{st.name}".encode()).hexdigest()[:16]
        stages[st.name] = {"status": "done", "key": key, "fingerprint": fingerprints[st.name], "kind": st.kind,
                           "iteration": it, "out": st.out, "started": 0.0, "finished": 1.0,
                           "seconds": round(1.5 + rng.random() * 30, 2), "counts": counts}
    manifest = {"version": 1, "name": cfg.name, "stages": stages}
    write_json_atomic(run_dir / "manifest.json", manifest)
    assert final_it in {s["iteration"] for s in stages.values()}
    return run_dir, manifest, cfg
