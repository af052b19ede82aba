"""What each stage does: one `run_<kind>(ctx, stage, out) -> counts` per stage kind.

Each reads earlier stages' outputs (`ctx.path(name)`) and writes its own folder `out`; the
counts it returns go into the manifest. Resumable kinds keep partial work across kills
(training from its checkpoints, sampling and scoring from their streams); the others write
atomically.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from scoder_jax import parallel
from scoder_jax.errors import ConfigError, ScoderError
from scoder_jax.io import atomic_path, read_jsonl, write_json_atomic, write_jsonl_atomic
from scoder_jax.runconfig import RunConfig
from scoder_jax.stage_plan import Stage

log = logging.getLogger("scoder_jax.pipeline")
BUNDLED_SEED = Path(__file__).resolve().parent / "data" / "seed" / "demo_seed.jsonl"


# ----------------------------------------------------------------------------- context


@dataclass
class Context:
    cfg: RunConfig
    run_dir: Path
    manifest: Any  # pipeline.Manifest
    stages: dict[str, Stage]
    progress: bool = True

    def path(self, stage_name: str) -> Path:
        return self.run_dir / self.stages[stage_name].out

    def synth_base(self) -> str:
        from scoder_jax.assets import resolve

        return resolve(self.cfg.synth.model)


# ----------------------------------------------------------------------------- stage bodies


def _stdlib_dir() -> str:
    return sysconfig.get_paths()["stdlib"]


def resolve_source(spec: str) -> str:
    """`stdlib` (this interpreter's standard library), `stdlib/PART` (a module or package of
    it), or a path / tfds: source as `scoder snippets build` takes them."""
    if spec == "stdlib":
        return _stdlib_dir()
    if spec.startswith("stdlib/"):
        return str(Path(_stdlib_dir()) / spec[len("stdlib/"):])
    return spec


def run_pool(ctx: Context, stage: Stage, out: Path) -> dict:
    from scoder_jax.data.pool import build_pool
    from scoder_jax.data.writers import iter_pool

    sources = [resolve_source(s) for s in ctx.cfg.pool.sources]
    build_cfg = dataclasses.replace(ctx.cfg.pool.build, seed=ctx.cfg.seed)
    manifest = build_pool(sources, out / "build", build_cfg, progress=ctx.progress)
    snippets = list(iter_pool(out / "build"))
    random.Random(ctx.cfg.seed).shuffle(snippets)
    if ctx.cfg.pool.max_snippets:
        snippets = snippets[:ctx.cfg.pool.max_snippets]
    n = write_jsonl_atomic(out / "pool.jsonl", snippets)
    return {"snippets": n, "built": manifest.get("counts", {}).get("kept", len(snippets))}


def run_seed(ctx: Context, stage: Stage, out: Path) -> dict:
    from scoder_jax.synth.seed_import import import_seed

    src = ctx.cfg.seed_set.source
    path = BUNDLED_SEED if src == "bundled" else Path(src)
    if not path.exists():
        raise ConfigError(f"seed_set.source: {path}: no such file")
    with atomic_path(out / "import", is_dir=True) as tmp:
        imported = import_seed(path, tmp, strict=True, fmt=ctx.cfg.synth.format)
    records = read_jsonl(out / "import" / "seed.jsonl")
    limit = ctx.cfg.seed_set.limit
    if limit and ctx.cfg.seed_set.shortest:
        size = [len(r["problem"]) + len(r["solution"]) + len(r.get("tests") or "") for r in records]
        keep = set(sorted(range(len(records)), key=lambda i: (size[i], i))[:limit])
        records = [r for i, r in enumerate(records) if i in keep]
    elif limit:
        records = records[:limit]
    if not records:
        raise ScoderError(f"{path}: the seed set is empty")
    n = write_jsonl_atomic(out / "seed.jsonl", records)
    if imported["dropped_no_tests"]:
        log.warning("seed: dropped %d samples without tests (synth.format is problem_solution_tests); first: %s",
                    imported["dropped_no_tests"], ", ".join(imported["first_dropped_no_tests"]))
    return {"samples": n, "dropped_no_tests": imported["dropped_no_tests"]}


def synth_training_records(samples: list[dict], fmt: str = "problem_solution_tests") -> list[dict]:
    """Samples -> chat records that teach the synthesizer: snippet prompt in, sample out, both in
    the sample format `fmt` (synth.format)."""
    from scoder_jax.synth.prompts import build_messages, format_response, has_tests

    out = []
    for s in samples:
        if has_tests(fmt) and not (s.get("tests") or "").strip():
            raise ScoderError(f"sample {s['id']!r} has no tests, and synth.format problem_solution_tests teaches the "
                              "synthesizer to write them; use synth.format=problem_solution")
        msgs = build_messages(s["snippet"], s.get("lang", "python"), fmt)
        reply = format_response(s["problem"], s["solution"], s.get("tests", ""), s.get("lang", "python"), fmt)
        out.append({"id": s["id"], "messages": msgs + [{"role": "assistant", "content": reply}]})
    return out


def student_training_records(samples: list[dict]) -> list[dict]:
    """Samples -> (problem -> solution) chat records, the SCoder model's training data."""
    from scoder_jax.synth.prompts import language

    out = []
    for s in samples:
        lang = language(s.get("lang", "python"))
        answer = f"```{lang.tag}\n{s['solution'].rstrip()}\n```"
        out.append({"id": s["id"], "messages": [{"role": "user", "content": s["problem"]},
                                                {"role": "assistant", "content": answer}]})
    return out


def train_stage(train_cfg, records: list[dict], out: Path, model: str | None = None, progress: bool = True) -> dict:
    """Trains on `records` into `out`; `progress=False` (`scoder iterate --no-progress`) silences the
    trainer's bar whatever the preset's `progress` says."""
    from scoder_jax.train.trainer import train

    if not progress:
        train_cfg = dataclasses.replace(train_cfg, progress=False)
    data_path = out.parent / f"{out.name}.train.jsonl"
    if parallel.is_primary():
        write_jsonl_atomic(data_path, records)
    parallel.barrier(f"{out.name}/data")
    summary = train(train_cfg, data_path, out, model=model, resume=True)
    return {"samples": len(records), **{k: v for k, v in summary.items() if isinstance(v, (int, float, str))}}


def run_sft(ctx: Context, stage: Stage, out: Path) -> dict:
    """S_0 on D_p; S_t on D_t, from the base model or (synth.init: previous) from S_{t-1}."""
    t = stage.iteration
    samples = read_jsonl(ctx.path("seed") / "seed.jsonl") if t == 0 else \
        read_jsonl(ctx.path(f"select_{t:02d}") / "train.jsonl")
    start = checkpoint_set(ctx, f"sft_{t - 1:02d}", 1)[-1] if t > 0 and ctx.cfg.synth.init == "previous" else None
    records = synth_training_records(samples, ctx.cfg.synth.format)
    return train_stage(ctx.cfg.synth.train_config(), records, out, model=start, progress=ctx.progress)


def checkpoint_set(ctx: Context, sft_stage: str, m: int, sub: str = "") -> list[str]:
    """The last `m` checkpoints a training stage kept (in its folder, or its `sub` folder)."""
    from scoder_jax.train.checkpoints import list_checkpoints

    where = ctx.path(sft_stage) / sub if sub else ctx.path(sft_stage)
    ckpts = list_checkpoints(where)
    if not ckpts:
        raise ScoderError(f"{where}: no checkpoints (did the fine-tune finish?)")
    return [str(c.path) for c in ckpts[-m:]]


def snippets_for(ctx: Context, stage: Stage, final_round: int = 1) -> list[dict]:
    """P_t: disjoint slices of the shuffled pool, iteration by iteration, then the final set's
    rounds (final.snippets each)."""
    pool = read_jsonl(ctx.path("pool") / "pool.jsonl")
    k = ctx.cfg.sample.snippets_per_iteration
    T = ctx.cfg.iterations
    if stage.iteration is not None and stage.iteration <= T:
        lo, hi = (stage.iteration - 1) * k, stage.iteration * k
    else:
        lo = T * k + (final_round - 1) * ctx.cfg.final.snippets
        hi = lo + ctx.cfg.final.snippets
    chosen = pool[lo:hi]
    if len(chosen) < hi - lo:  # a pool smaller than the plan: wrap around, with a warning
        log.warning("pool holds %d snippets, fewer than the %d this stage plans: reusing from the start",
                    len(pool), hi)
        chosen += [pool[i % len(pool)] for i in range(lo + len(chosen), hi)] if pool else []
    return chosen


def run_sample(ctx: Context, stage: Stage, out: Path) -> dict:
    """N samples per snippet from each of S_{t-1}'s last M checkpoints (the final set: S_T's last)."""
    final = stage.name == "final_sample"
    prev = f"sft_{ctx.cfg.iterations:02d}" if final else f"sft_{stage.iteration - 1:02d}"
    checkpoints = checkpoint_set(ctx, prev, 1 if final else ctx.cfg.sample.checkpoints)
    return sample_into(ctx, snippets_for(ctx, stage), checkpoints, ctx.cfg.final if final else ctx.cfg.sample,
                       ctx.cfg.seed + 1000 * (stage.iteration or 0), out, stage.name)


def sample_into(ctx: Context, snippets: list[dict], checkpoints: list[str], decoding, seed: int, out: Path,
                tag: str, *, alone: bool = False) -> dict:
    """Samples the snippets from the checkpoints into `out` (resumable) and returns its counts.
    Every process samples a share and the primary joins them, or (`alone`) this process all."""
    from scoder_jax.synth.sampler import SampleConfig, merge_shards, sample_candidates

    scfg = SampleConfig(**decoding.decoding(), seed=seed, max_batch=ctx.cfg.sample.batch, format=ctx.cfg.synth.format,
                        **({"process_index": 0, "process_count": 1} if alone else {}))
    summary = sample_candidates(snippets, checkpoints, out, scfg, progress=ctx.progress)
    if "merged" not in summary:  # several processes sampled a share each: the primary joins them
        parallel.barrier(f"{tag}/sampled")
        summary = {"merged": merge_shards(out)} if parallel.is_primary() else {}
    merged = summary.get("merged", summary)
    return {k: v for k, v in merged.items() if isinstance(v, (int, float, str, bool))}


def judge_path(ctx: Context) -> str:
    from scoder_jax.models.presets import PRESETS

    from scoder_jax.assets import resolve

    j = ctx.cfg.score.judge
    if j != "base":
        return resolve(j)
    base = ctx.synth_base()
    if base in PRESETS:  # a random-init preset has no checkpoint: judge with S_0
        return checkpoint_set(ctx, "sft_00", 1)[-1]
    return base


def run_score(ctx: Context, stage: Stage, out: Path) -> dict:
    """Multi-aspect judge + execution signals, weighted total, best candidate per snippet (the
    final set with final.size: more rounds of sampling and scoring until it holds that many)."""
    src = "final_sample" if stage.name == "final_score" else f"sample_{stage.iteration:02d}"
    path = ctx.path(src) / "candidates.jsonl"
    candidates = read_jsonl(path) if path.exists() else []
    if stage.name == "final_score" and ctx.cfg.final.size:
        from scoder_jax.final_rounds import score_to_size

        return score_to_size(ctx, candidates, out)
    return score_into(ctx, candidates, out)


def score_into(ctx: Context, candidates: list[dict], out: Path, weights_file: Path | None = None) -> dict:
    """Scores the candidates into `out` (scores.jsonl, selected.jsonl; resumable) and returns its
    counts; with `weights_file`, totals with those weights (and their threshold) whatever
    score.weights says (the final set's later rounds: the first round's fitted weights)."""
    from scoder_jax.score.judge import DEFAULT_ASPECTS, load_judge
    from scoder_jax.score.sandbox_types import Limits
    from scoder_jax.score.select import NoJudge, score_candidates
    from scoder_jax.score.signals import SIGNALS
    from scoder_jax.score.weights import Weights

    sc = ctx.cfg.score
    by_name = {a.name: a for a in DEFAULT_ASPECTS}
    aspects = tuple(by_name[a] for a in sc.aspects)  # names checked when the config was built
    select = sc.selection()
    source = sc.weights if weights_file is None else str(weights_file)  # a dict, "fit" or a weights file
    if isinstance(source, dict):
        w = dict(source)
        default = Weights.default([a.name for a in aspects])
        weights = Weights(tuple(a.name for a in aspects),
                          tuple(float(w.get(a.name, aw)) for a, aw in zip(aspects, default.aspect_weights)),
                          tuple(float(w.get(k, d)) for k, d in zip(SIGNALS, default.exec_weights)),
                          0.0, sc.threshold, "config")
    else:  # fitted here (after judging) or in a file: their own threshold
        select = dataclasses.replace(select, threshold=None)
        weights = None if source == "fit" else Weights.load(source).aligned([a.name for a in aspects])
    if not candidates:
        for name in ("scores.jsonl", "selected.jsonl"):
            write_jsonl_atomic(out / name, [])
        return {"candidates": 0, "selected": 0}
    path = judge_path(ctx) if aspects else "none"
    judge = load_judge(path, aspects, rating=sc.rating) if aspects else NoJudge()
    tests = ctx.cfg.synth.format == "problem_solution_tests"
    summary = score_candidates(candidates, judge, out, judge_name=str(path), weights=weights, select=select,
                               use_exec=sc.execution, limits=Limits(timeout_s=sc.timeout_s), progress=ctx.progress,
                               tests=tests)
    if weights is None:
        summary = _fit_and_reselect(ctx, candidates, judge, out, select, summary, tests)
    else:
        weights.save(out / "weights.json")  # what the totals used, for the report
    return {k: v for k, v in summary.items() if isinstance(v, (int, float, str, bool)) or k == "reasons"}


def _fit_and_reselect(ctx: Context, candidates: list[dict], judge, out: Path, select, summary: dict,
                      tests: bool) -> dict:
    """score.weights: fit: w fitted on the seed set against its corruptions and this stage's
    candidates that failed execution (weights.json, fit_report.json in `out`), then the totals
    and selection redone with it."""
    from scoder_jax.io import iter_jsonl
    from scoder_jax.score.sandbox_types import Limits
    from scoder_jax.score.select import reselect
    from scoder_jax.score.stage_weights import fit_stage_weights

    sc = ctx.cfg.score
    weights = fit_stage_weights(read_jsonl(ctx.path("seed") / "seed.jsonl"), list(iter_jsonl(out / "judged.jsonl")),
                                judge, out, method=sc.fit, max_positives=sc.fit_positives, use_exec=sc.execution,
                                tests=tests, limits=Limits(timeout_s=sc.timeout_s), rng_seed=ctx.cfg.seed,
                                progress=ctx.progress)
    r = weights.report
    log.info("score: weights fitted (%s) on %d seed samples against %d corruptions and %d failed candidates: "
             "cross-validated AUC %.3f, threshold %.4g", sc.fit, r["positives"], r["corrupted"], r["failed_execution"],
             r["cv_auc"], weights.threshold)
    merged = {**summary, **reselect(candidates, out, weights=weights, select=select), "fit_cv_auc": r["cv_auc"]}
    write_json_atomic(out / "summary.json", merged)
    return merged


def run_influence(ctx: Context, stage: Stage, out: Path) -> dict:
    """LESS-style influence of each initially kept candidate on the seed set, over S_{t-1}'s checkpoints."""
    kept = read_jsonl(ctx.path(f"score_{stage.iteration:02d}") / "selected.jsonl")
    ic = ctx.cfg.influence
    if not ic.enabled or not kept:
        write_jsonl_atomic(out / "scores.jsonl", [{"id": r["id"], "score": None} for r in kept])
        return {"candidates": len(kept), "skipped": True}
    from scoder_jax.influence.select import InfluenceConfig, run_influence as influence

    targets = read_jsonl(ctx.path("seed") / "seed.jsonl")
    if ic.targets:
        targets = targets[:ic.targets]
    checkpoints = checkpoint_set(ctx, f"sft_{stage.iteration - 1:02d}", ctx.cfg.sample.checkpoints)
    mode = ic.mode if ic.mode != "auto" else ("lora" if ctx.cfg.synth.lora is not None else "full")
    icfg = InfluenceConfig(**{**ic.method(), "mode": mode, "sgd": ic.sgd or mode == "full",
                              "seq_len": ic.seq_len or ctx.cfg.synth.seq_len},
                           keep=1.0, seed=ctx.cfg.seed, progress=ctx.progress)  # select_t keeps influence.keep
    fmt = ctx.cfg.synth.format
    summary = influence(synth_training_records(kept, fmt), synth_training_records(targets, fmt), checkpoints, out, icfg)
    return {"candidates": len(kept), "targets": len(targets), "checkpoints": len(checkpoints), "mode": mode,
            **{k: v for k, v in summary.items() if isinstance(v, (int, float, str))}}


def run_select(ctx: Context, stage: Stage, out: Path) -> dict:
    """D_t = D_p + the top `influence.keep` fraction of the initially selected candidates (a random
    fraction as large without influence), or + every selection so far (select.accumulate)."""
    t = stage.iteration
    kept = read_jsonl(ctx.path(f"score_{t:02d}") / "selected.jsonl")
    inf = {r["id"]: r.get("score") for r in read_jsonl(ctx.path(f"influence_{t:02d}") / "scores.jsonl")}
    for r in kept:
        r.setdefault("meta", {})["influence"] = inf.get(r["id"])
        r["meta"]["iteration"] = t
    # rounded up: a small iteration keeps its best candidate rather than nothing
    n_keep = math.ceil(len(kept) * ctx.cfg.influence.keep - 1e-9)
    if ctx.cfg.influence.enabled:
        ranked = sorted(kept, key=lambda r: (-(r["meta"]["influence"] if r["meta"]["influence"] is not None else 0.0),
                                             r["id"]))
        chosen = ranked[:n_keep]
    else:  # the ablation without influence: a random selection of the same size
        chosen = random.Random(ctx.cfg.seed * 1000 + t).sample(sorted(kept, key=lambda r: r["id"]), n_keep)
    earlier = []
    if ctx.cfg.select.accumulate and t > 1:  # D_t = D_p + every selection so far
        earlier = read_jsonl(ctx.path(f"select_{t - 1:02d}") / "accumulated.jsonl")
    have = {r["id"] for r in earlier}
    accumulated = earlier + [r for r in chosen if r["id"] not in have]
    seed = read_jsonl(ctx.path("seed") / "seed.jsonl")
    write_jsonl_atomic(out / "synthesized.jsonl", chosen)
    write_jsonl_atomic(out / "accumulated.jsonl", accumulated)
    n = write_jsonl_atomic(out / "train.jsonl", seed + (accumulated if ctx.cfg.select.accumulate else chosen))
    return {"candidates": len(kept), "selected": len(chosen), "accumulated": len(accumulated), "train": n,
            "by": "influence" if ctx.cfg.influence.enabled else "random"}


def run_export(ctx: Context, stage: Stage, out: Path) -> dict:
    from scoder_jax.export import export_run  # final/scores/selected.jsonl, rows stamped with the run's provenance

    return export_run(ctx.run_dir, ctx.cfg, out)


def run_student(ctx: Context, stage: Stage, out: Path) -> dict:
    rows = read_jsonl(ctx.path("export") / "dataset.jsonl")
    if not rows:
        raise ScoderError(f"{ctx.path('export') / 'dataset.jsonl'}: the final dataset is empty, nothing to train the "
                          f"student on: {why_empty(ctx)}")
    return train_stage(ctx.cfg.student, student_training_records(rows), out, progress=ctx.progress)


def why_empty(ctx: Context) -> str:
    """Why the final set holds nothing, from what final sampling and scoring recorded, and the
    config values that would change it."""
    samples, scores = ctx.path("final_sample"), ctx.path("final_score")
    rejects = read_jsonl(samples / "rejects.jsonl") if (samples / "rejects.jsonl").exists() else []
    n_cands = ctx.manifest.stages.get("final_sample", {}).get("counts", {}).get("candidates", 0)
    if not n_cands:
        reasons: dict[str, int] = {}
        for r in rejects:
            reasons[r.get("reason", "?")] = reasons.get(r.get("reason", "?"), 0) + 1
        said = ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())) or "no replies"
        return (f"none of final sampling's {len(rejects)} replies parsed ({said}; see {samples / 'rejects.jsonl'}); "
                "the synthesizer does not write the sample format yet: train it longer (synth.max_steps, "
                "synth.epochs), sample more (final.snippets, final.n), or raise final.max_new_tokens if replies "
                "were cut off")
    sc = ctx.cfg.score
    reasons = ctx.manifest.stages.get("final_score", {}).get("counts", {}).get("reasons", {})
    said = ", ".join(f"{k} {v}" for k, v in sorted(reasons.items()))
    return (f"scoring kept none of the {n_cands} parsed candidates ({said}; see {scores / 'scores.jsonl'}); "
            f"score.threshold is {sc.threshold} and score.require_tests_pass is {str(sc.require_tests_pass).lower()}: "
            "lower the threshold, set score.require_tests_pass=false, or sample more (final.snippets, final.n)")


def run_eval(ctx: Context, stage: Stage, out: Path) -> dict:
    from scoder_jax.eval.suite import run_suite

    model_stage = "student" if stage.name == "eval" else f"sft_{stage.iteration:02d}"
    model = checkpoint_set(ctx, model_stage, 1)[-1]
    return run_suite(model, ctx.cfg.eval, out)  # eval.benchmarks, each into out/<name>/ (one: out/)


def run_student_eval(ctx: Context, stage: Stage, out: Path) -> dict:
    """S_t judged by its student: the student config fine-tuned on eval.student_samples rows
    (a seeded sample) of S_t's kept data, then evaluated as the final student is."""
    from scoder_jax.eval.suite import run_suite

    data = ctx.path(stage.deps[0]) / "selected.jsonl"
    rows = read_jsonl(data) if data.exists() else []
    if not rows:
        log.warning("stage %s: S_%02d's kept data (%s) is empty: no student to evaluate", stage.name,
                    stage.iteration, data)
        return {"trained_on": 0, "skipped": "no data"}
    size = ctx.cfg.eval.student_samples
    rows = sorted(rows, key=lambda r: r["id"])
    if len(rows) > size:
        rows = random.Random(ctx.cfg.seed * 1000 + stage.iteration).sample(rows, size)
    trained = train_stage(ctx.cfg.student, student_training_records(rows), out / "student", progress=ctx.progress)
    counts = {"trained_on": len(rows), "fixed_size": size, "final_loss": trained.get("final_loss")}
    if parallel.is_primary():
        model = checkpoint_set(ctx, stage.name, 1, sub="student")[-1]
        counts.update(run_suite(model, ctx.cfg.eval, out / "eval"))
    parallel.barrier(f"{stage.name}/evaluated")
    return counts


def run_report(ctx: Context, stage: Stage, out: Path) -> dict:
    from scoder_jax.report import write_report

    path = write_report(ctx.run_dir, ctx.manifest.data, ctx.cfg, out)
    return {"report": str(path.relative_to(ctx.run_dir))}


RUNNERS: dict[str, Callable[[Context, Stage, Path], dict]] = {
    "pool": run_pool, "seed": run_seed, "sft": run_sft, "sample": run_sample, "score": run_score,
    "influence": run_influence, "select": run_select, "export": run_export, "student": run_student,
    "eval": run_eval, "student_eval": run_student_eval, "report": run_report,
}
RESUMABLE = {"sft", "student", "sample", "score", "student_eval"}  # these keep partial work across kills
# Stages every process runs (collectives, or a share of the work each); the others run on the
# primary process alone while the rest wait at the stage's closing barrier.
ALL_PROCESSES = {"sft", "student", "sample", "influence", "student_eval"}


