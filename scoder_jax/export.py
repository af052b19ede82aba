"""The final instruction dataset in the fields OSS-Instruct users expect, as JSONL and Parquet.

Columns (one row per sample):

    id, problem, solution, tests, snippet, snippet_id, lang      the sample (OSS-Instruct fields)
    iteration, checkpoint                                        where it came from
    score                                                        the weighted total it was kept on
    scores                                                       {aspect: judge rating 0..9}: a struct
                                                                 in Parquet (one field per aspect, null
                                                                 where not rated), an object in JSONL
    influence                                                    its influence score (null: none)
    tests_pass                                                   whether its own tests passed in the
                                                                 sandbox (null: not executed, or the
                                                                 run's format has no tests)
    run, config_hash, seed, temperature                          provenance: the run's name, the hash of
                                                                 every config value the dataset depends
                                                                 on (`dataset_config_hash`), the sampling
                                                                 seed and temperature of the sample

`datasets.load_dataset("json"|"parquet", ...)`, pandas and pyarrow read either file (a test
loads both with each). `summary.json` holds the row count, the columns and the provenance.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Iterable, Sequence

from scoder_jax.errors import ScoderError
from scoder_jax.io import atomic_path, write_json_atomic, write_jsonl_atomic

COLUMNS = ("id", "problem", "solution", "tests", "snippet", "snippet_id", "lang", "iteration", "checkpoint",
           "score", "scores", "influence", "tests_pass", "run", "config_hash", "seed", "temperature")


@dataclasses.dataclass(frozen=True)
class Provenance:
    """What every exported row carries about the run that made it."""
    run: str | None = None  # the run config's name
    config_hash: str | None = None  # `dataset_config_hash(cfg)`
    temperature: float | None = None  # the final set's sampling temperature
    seed: int | None = None  # the final set's sampling seed (a row's own meta.seed wins)
    aspects: tuple[str, ...] = ()  # the judge's aspects, in config order: the fields of `scores`


def upstream_stages(cfg, last: str = "export") -> list:
    """The pipeline's stages `last` depends on, `last` included, in run order."""
    from scoder_jax.stage_plan import build_stages

    stages = build_stages(cfg)
    by_name = {s.name: s for s in stages}
    todo, seen = [last], set()
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(by_name[name].deps)
    return [s for s in stages if s.name in seen]


def dataset_config_hash(cfg) -> str:
    """sha256 (16 hex digits) of every config value the final dataset depends on: the config
    keys of the export stage and of every stage upstream of it (`stage_plan.build_stages`), and
    the number of iterations. A config change that reruns a stage feeding the dataset changes
    it; one that does not (student, eval, name) leaves it, so the hash stays true of an
    exported dataset the pipeline does not redo."""
    from scoder_jax.stage_plan import config_value, stage_config

    stages = upstream_stages(cfg)
    keys = sorted({k for s in stages for k in s.config_keys})
    seen = [stage_config(cfg, s) for s in stages]  # a value pinned where it does not reach a stage

    def value(k):  # what every stage reading k holds (pinned where none is reached), else the config's
        held = [c[k] for c in seen if k in c]
        return held[0] if all(h == held[0] for h in held) else config_value(cfg, k)

    payload = {"iterations": cfg.iterations, "stages": sorted(s.name for s in stages),
               "config": {k: value(k) for k in keys}}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def provenance(cfg, run_dir: str | Path | None = None) -> Provenance:
    """The run's provenance from its config; the final set's `sample_config.json` in run_dir (when
    present) gives the temperature and seed it was actually sampled with."""
    temperature, seed = float(cfg.final.temperature), None
    sampled = Path(run_dir) / "final" / "samples" / "sample_config.json" if run_dir is not None else None
    if sampled is not None and sampled.exists():
        try:
            sampling = json.loads(sampled.read_text(encoding="utf-8"))["sampling"]
            temperature, seed = float(sampling["temperature"]), int(sampling["seed"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise ScoderError(f"{sampled}: malformed sampling record ({e}); rerun the final_sample stage") from None
    return Provenance(run=cfg.name, config_hash=dataset_config_hash(cfg), temperature=temperature, seed=seed,
                      aspects=tuple(cfg.score.aspects))


def stale_stage(cfg, manifest: dict) -> str | None:
    """The first stage feeding the final selection that is not done under `cfg` (not run, in
    flight, or run under other config values than `cfg`'s), or None when the selection is
    what `cfg` makes: `scoder export` then stamps rows with `cfg`'s provenance."""
    from scoder_jax.stage_plan import stage_key

    entries = manifest.get("stages", {})
    fingerprints = {n: e.get("fingerprint") for n, e in entries.items() if e.get("status") == "done"}
    for stage in upstream_stages(cfg, "final_score"):
        entry = entries.get(stage.name, {})
        if entry.get("status") != "done" or entry.get("key") != stage_key(cfg, stage, fingerprints):
            return stage.name
    return None


def _number(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def export_row(rec: dict, iteration: int | None = None, prov: Provenance = Provenance()) -> dict:
    """One selected sample (a Sample record with meta.score) -> one dataset row (see COLUMNS)."""
    meta = rec.get("meta", {}) or {}
    score = meta.get("score")
    scores = (score.get("scores") if isinstance(score, dict) else meta.get("scores")) or {}
    total = score.get("total") if isinstance(score, dict) else score
    signals = score.get("signals") if isinstance(score, dict) else None
    passes = signals.get("passes") if isinstance(signals, dict) else None
    seed = meta.get("seed", prov.seed)
    return {
        "id": rec["id"],
        "problem": rec["problem"],
        "solution": rec["solution"],
        "tests": rec.get("tests", ""),
        "snippet": rec.get("snippet", ""),
        "snippet_id": rec.get("snippet_id", ""),
        "lang": rec.get("lang", "python"),
        "iteration": meta.get("iteration", iteration),
        "checkpoint": None if meta.get("checkpoint") is None else str(meta.get("checkpoint")),
        "score": _number(total),
        "scores": {str(k): _number(v) for k, v in scores.items()} if isinstance(scores, dict) else {},
        "influence": _number(meta.get("influence")),
        "tests_pass": None if passes is None else bool(passes),
        "run": prov.run,
        "config_hash": prov.config_hash,
        "seed": None if seed is None else int(seed),
        "temperature": prov.temperature,
    }


def aspect_fields(rows: Sequence[dict], aspects: Sequence[str] = ()) -> list[str]:
    """The fields of the `scores` struct: the config's aspects, then any other aspect a row was
    rated on, in order of appearance; the default aspects when there is neither (an empty
    dataset still gets a readable schema)."""
    from scoder_jax.runconfig import DEFAULT_ASPECTS

    names = list(dict.fromkeys(aspects))
    for r in rows:
        names.extend(a for a in r["scores"] if a not in names)
    return names or list(DEFAULT_ASPECTS)


def arrow_table(rows: Sequence[dict], aspects: Sequence[str] = ()):
    """The rows as a pyarrow Table: `scores` a struct of float64 fields (null where a row has no
    rating for an aspect), so `datasets` reads it (it has no Arrow map type)."""
    import pyarrow as pa

    fields = aspect_fields(rows, aspects)
    schema = pa.schema([
        ("id", pa.string()), ("problem", pa.string()), ("solution", pa.string()), ("tests", pa.string()),
        ("snippet", pa.string()), ("snippet_id", pa.string()), ("lang", pa.string()), ("iteration", pa.int64()),
        ("checkpoint", pa.string()), ("score", pa.float64()),
        ("scores", pa.struct([(a, pa.float64()) for a in fields])),
        ("influence", pa.float64()), ("tests_pass", pa.bool_()), ("run", pa.string()), ("config_hash", pa.string()),
        ("seed", pa.int64()), ("temperature", pa.float64()),
    ])
    return pa.Table.from_pylist([{**r, "scores": {a: r["scores"].get(a) for a in fields}} for r in rows],
                                schema=schema)


def export_dataset(records: Iterable[dict], out_dir: str | Path, *, iteration: int | None = None,
                   provenance: Provenance = Provenance()) -> dict:
    """Writes dataset.jsonl, dataset.parquet and summary.json (each atomically) into out_dir;
    returns counts: rows, and how many of them pass their own tests (None when no row's tests
    were run: the sample format without tests, or execution off)."""
    import pyarrow.parquet as pq

    rows = [export_row(r, iteration, provenance) for r in records]
    out_dir = Path(out_dir)
    table = arrow_table(rows, provenance.aspects)
    n = write_jsonl_atomic(out_dir / "dataset.jsonl", rows)
    with atomic_path(out_dir / "dataset.parquet") as tmp:
        pq.write_table(table, tmp)
    tested = [r["tests_pass"] for r in rows if r["tests_pass"] is not None]
    counts = {"rows": n, "tests_pass": sum(tested) if tested or not rows else None}
    write_json_atomic(out_dir / "summary.json", {**counts, "columns": list(COLUMNS),
                                                 "provenance": dataclasses.asdict(provenance)})
    return counts


def export_run(run_dir: str | Path, cfg, out_dir: str | Path) -> dict:
    """A run's final selection (final/scores/selected.jsonl) -> its dataset in out_dir, each row
    stamped with the run's provenance; checkpoints inside the run directory are named relative
    to it, so the dataset does not depend on where the run ran."""
    from scoder_jax.io import read_jsonl

    run_dir = Path(run_dir).absolute()
    rows = read_jsonl(run_dir / "final" / "scores" / "selected.jsonl")
    for r in rows:
        meta = r.get("meta") or {}
        ck = meta.get("checkpoint")
        if isinstance(ck, str) and Path(ck).is_absolute() and Path(ck).is_relative_to(run_dir):
            meta["checkpoint"] = Path(ck).relative_to(run_dir).as_posix()
    return export_dataset(rows, out_dir, iteration=cfg.iterations + 1, provenance=provenance(cfg, run_dir))
