"""Which stages a run has and what each one's key depends on.

    pool, seed, sft_00, [sample_t, score_t, influence_t, select_t, sft_t, eval_t] for t = 1..T,
    final_sample, final_score, export, student, eval, report

A stage's key is a hash of the config values it reads (its `config_keys`), of its inputs'
fingerprints (its `deps`) and of the files those config values name (their content for small
files, size and time for large ones): a changed value or file reruns exactly the stages it
feeds. A stage's fingerprint is its key plus a digest of what it wrote.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scoder_jax.config import to_dict
from scoder_jax.runconfig import RunConfig


@dataclass(frozen=True)
class Stage:
    name: str
    kind: str
    deps: tuple[str, ...]
    config_keys: tuple[str, ...]  # dotted RunConfig fields whose values enter the key
    out: str  # output folder, relative to the run directory
    iteration: int | None = None
    # dotted fields inside `config_keys` whose value does not reach this stage, held in its key
    # at this value (their default: a run made before the pin keeps its key)
    pins: tuple[tuple[str, Any], ...] = ()


def build_stages(cfg: RunConfig) -> list[Stage]:
    T = cfg.iterations
    st = [
        Stage("pool", "pool", (), ("seed", "pool"), "pool"),
        Stage("seed", "seed", (), ("seed_set", "synth.format"), "seed"),
        # S_0 is fine-tuned from the base model whatever synth.init says of S_1 .. S_T
        Stage("sft_00", "sft", ("seed",), ("seed", "synth"), "iter_00/ckpt", 0, pins=(("synth.init", "base"),)),
    ]
    for t in range(1, T + 1):
        it = f"iter_{t:02d}"
        prev = f"sft_{t - 1:02d}"
        st += [
            Stage(f"sample_{t:02d}", "sample", ("pool", prev), ("seed", "sample", "synth.format"), f"{it}/samples", t),
            Stage(f"score_{t:02d}", "score", (f"sample_{t:02d}",), ("score", "synth.model", "synth.format"),
                  f"{it}/scores", t),
            *student_eval_stage(cfg, t - 1, f"score_{t:02d}"),  # S_{t-1} judged by its student
            Stage(f"influence_{t:02d}", "influence", (f"score_{t:02d}", prev, "seed"), ("influence",),
                  f"{it}/influence", t),
            Stage(f"select_{t:02d}", "select",
                  (f"influence_{t:02d}", "seed", *([f"select_{t - 1:02d}"] if cfg.select.accumulate and t > 1 else [])),
                  ("seed", "influence.keep", "influence.enabled", "select"), f"{it}/selected", t),
            Stage(f"sft_{t:02d}", "sft", (f"select_{t:02d}", *((prev,) if cfg.synth.init == "previous" else ())),
                  ("seed", "synth"), f"{it}/ckpt", t),
        ]
        if cfg.eval.enabled and cfg.eval.per_iteration == "synthesizer":
            st.append(Stage(f"eval_{t:02d}", "eval", (f"sft_{t:02d}",), ("eval",), f"{it}/eval", t))
    last = f"sft_{T:02d}"
    st += [
        Stage("final_sample", "sample", ("pool", last), ("seed", "final", "sample.snippets_per_iteration",
                                                         "sample.checkpoints", "sample.batch", "synth.format"),
              "final/samples", T + 1),
        # with final.size, more rounds are sampled (from the pool, by S_T) and scored here
        Stage("final_score", "score", ("final_sample", "pool", last),
              ("score", "synth.model", "synth.format", "seed", "final", "sample.snippets_per_iteration",
               "sample.batch"), "final/scores", T + 1),
        *student_eval_stage(cfg, T, "final_score"),
        Stage("export", "export", ("final_score",), (), "final/dataset"),
        Stage("student", "student", ("export",), ("seed", "student"), "final/student"),
    ]
    if cfg.eval.enabled:
        st.append(Stage("eval", "eval", ("student",), ("eval",), "final/eval"))
    st.append(Stage("report", "report", tuple(s.name for s in st), (), "report"))
    return st


def student_eval_stage(cfg: RunConfig, t: int, data_stage: str) -> list[Stage]:
    """With eval.per_iteration: student, S_t's measure: the student fine-tuned on a fixed-size
    sample of what S_t synthesized and the scorer kept (`data_stage`: score_{t+1}, or final_score)."""
    if not (cfg.eval.enabled and cfg.eval.per_iteration == "student"):
        return []
    return [Stage(f"eval_{t:02d}", "student_eval", (data_stage,), ("seed", "student", "eval"),
                  f"iter_{t:02d}/student_eval", t)]


# ----------------------------------------------------------------------------- keys & manifest


def config_value(cfg: RunConfig, dotted: str) -> Any:
    obj: Any = cfg
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return to_dict(obj) if dataclasses.is_dataclass(obj) else obj


def stage_config(cfg: RunConfig, stage: Stage) -> dict:
    """The config values a stage's key holds: its `config_keys`' values, its pins applied."""
    config = {k: config_value(cfg, k) for k in stage.config_keys}
    for dotted, value in stage.pins:
        key = max((k for k in config if dotted.startswith(k + ".")), key=len)
        node = config[key]
        *path, name = dotted[len(key) + 1:].split(".")
        for part in path:
            node = node[part]
        node[name] = value
    return config


def short_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


# Config values that name input files, by the config key a stage lists (a section or the value).
INPUT_FILES = {
    "seed_set": lambda c: [c.seed_set.source],
    "pool": lambda c: list(c.pool.sources),
    "score": lambda c: [*([c.score.weights] if isinstance(c.score.weights, str) else []),
                        *([c.score.judge] if c.score.judge != "base" else [])],
    "eval": lambda c: [c.eval.problems, *c.eval.files.values()],
}


def file_fingerprint(path: str, *, small: int = 50 << 20) -> str | None:
    """A file's content hash (small files) or size and modification time (large ones); a
    folder's (a scorer retrained in place) from each file's path, size and modification time;
    None for what is not a path (a preset name, `stdlib`, `fit`, `base`, ...)."""
    p = Path(path)
    if not path or not p.exists():
        return None
    st = p.stat()
    if p.is_dir():
        entries = sorted((f.relative_to(p).as_posix(), f.stat().st_size, f.stat().st_mtime_ns)
                         for f in p.rglob("*") if f.is_file())
        return short_hash(entries)
    if st.st_size <= small:
        return hashlib.sha256(p.read_bytes()).hexdigest()[:16]
    return f"{st.st_size}:{st.st_mtime_ns}"


def stage_key(cfg: RunConfig, stage: Stage, fingerprints: dict[str, str]) -> str:
    """The stage's config values, its inputs' fingerprints and the files its config names: a
    weights file or seed set edited in place reruns what it feeds."""
    files = {k: [file_fingerprint(f) for f in INPUT_FILES[k](cfg) if f] for k in stage.config_keys if k in INPUT_FILES}
    body = {"stage": stage.name, "config": stage_config(cfg, stage),
            "inputs": {d: fingerprints.get(d) for d in stage.deps}}
    if any(any(v) for v in files.values()):
        body["files"] = files
    return short_hash(body)


def output_digest(folder: Path, *, small: int = 50 << 20) -> str:
    """Digest of a stage's output folder: every file's path and size, and the content of small ones."""
    h = hashlib.sha256()
    if folder.exists():
        for p in sorted(folder.rglob("*")):
            if p.is_file() and not p.name.startswith("."):
                rel = p.relative_to(folder).as_posix()
                h.update(f"{rel}:{p.stat().st_size}\n".encode())
                if p.stat().st_size <= small and p.suffix in (".jsonl", ".json", ".yaml", ".txt"):
                    h.update(p.read_bytes())
    return h.hexdigest()[:16]


