"""Multi-checkpoint sampling: N candidates per snippet from each of M synthesizer checkpoints.

`sample_candidates(snippets, checkpoint_paths, out_dir, cfg)` renders each snippet's prompt
(`prompts.build_messages`) with the synthesizer's chat template, samples `cfg.n` replies from
every checkpoint through one `generate.Engine` (`set_model` swaps checkpoints, nothing
recompiles), parses each reply with `reply_parser.parse_response` and streams the results to disk.
Prompt and parser follow `cfg.format`, the sample format (with or without [Tests]).

Work is cut into *units*, one per (snippet, checkpoint). A unit's records are appended and
fsynced, then its done marker; a rerun skips the units marked done and first drops any record
of a unit without a marker (a kill between the two), so a unit is redone wholly and nothing is
lost or duplicated. Sampling is deterministic: sample `s` of a unit draws from
`sample_key(cfg.seed, prompt_id, s)` where `prompt_id = unit_prompt_id(snippet_id,
checkpoint_index)`, a stable hash, so checkpoints do not share randomness and a redone unit
gives the same text.

Hosts: process `p` of `P` takes the snippets `i` with `i % P == p` (input order, after dropping
repeated ids) and writes its own shard files; `merge_shards(out_dir)` (process 0, after all
hosts finish) joins them. Each host samples on its own local devices.

`out_dir` holds:

    sample_config.json        the sampling parameters and checkpoints (a rerun must match)
    candidates.{p}.jsonl      Sample records (origin "synth") whose reply parsed
    rejects.{p}.jsonl         replies that did not parse: ids, checkpoint, reason, detail, raw text
    done.{p}.jsonl            one marker per finished unit, with its counts
    shard.{p}.json            the shard's size (units expected), for the merge to check
    candidates.jsonl, rejects.jsonl, summary.json   after `merge_shards`

A candidate's `meta`: checkpoint (path), checkpoint_step (trainer step or null),
checkpoint_index, sample_index, seed, prompt_id, raw (the generated text), parse ("ok"),
finish_reason ("stop" | "length"), n_tokens.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from scoder_jax.config import require
from scoder_jax.errors import CheckpointError, ConfigError, DataError
from scoder_jax.io import JsonlAppender, iter_jsonl, write_json_atomic, write_jsonl_atomic
from scoder_jax.records import content_id
from scoder_jax.synth.prompts import DEFAULT_FORMAT, FORMATS, REASONS, build_messages, prompt_version
from scoder_jax.synth.reply_parser import parse_response

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Decoding:
    """How each sample is drawn: the knobs the run config's `sample` and `final` sections share
    (declared here once; the sections extend this class)."""

    n: int = 4  # samples per snippet per checkpoint
    temperature: float = 0.8  # 0: greedy
    top_p: float = 0.95
    top_k: int = 0  # 0: off
    min_p: float = 0.0  # 0: off
    no_repeat_ngram: int = 0  # >= 2: a sample never repeats one of its own n-grams (small models loop); 0: off
    cut_tests: bool = False  # keep replies cut off inside [Tests], trimmed to their whole statements
    max_new_tokens: int = 1024

    def __post_init__(self):
        require(self.n >= 1, "n", f"must be >= 1, got {self.n}")
        require(self.temperature >= 0, "temperature", f"must be >= 0 (0: greedy), got {self.temperature}")
        require(0 < self.top_p <= 1, "top_p", f"must lie in (0, 1], got {self.top_p}")
        require(self.top_k >= 0, "top_k", f"must be >= 0 (0: off), got {self.top_k}")
        require(0 <= self.min_p < 1, "min_p", f"must lie in [0, 1), got {self.min_p}")
        require(self.no_repeat_ngram == 0 or self.no_repeat_ngram >= 2, "no_repeat_ngram",
                f"must be 0 (off) or >= 2, got {self.no_repeat_ngram}")
        require(self.max_new_tokens >= 1, "max_new_tokens", f"must be >= 1, got {self.max_new_tokens}")

    def decoding(self) -> dict:
        """This object's `Decoding` fields (also of a subclass), to build a SampleConfig from."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(Decoding)}


@dataclasses.dataclass(frozen=True)
class SampleConfig(Decoding):
    seed: int = 0
    stop_strings: tuple[str, ...] = ()
    max_batch: int = 64  # decode slots of the engine
    prompts_per_call: int = 256  # units handed to one engine.generate call
    process_index: int | None = None  # None: jax.process_index()
    process_count: int | None = None  # None: jax.process_count()
    skip_missing: bool = False  # skip (and count) missing checkpoints instead of failing
    tokenizer: str | None = None  # tokenizer path; None: the first checkpoint's own
    format: str = DEFAULT_FORMAT  # the sample format asked for and parsed (prompts.FORMATS)

    def __post_init__(self):
        super().__post_init__()
        require(self.format in FORMATS, "format", f"must be one of {', '.join(FORMATS)}, got {self.format!r}")
        require(self.max_batch >= 1, "max_batch", f"must be >= 1, got {self.max_batch}")
        require(self.prompts_per_call >= 1, "prompts_per_call", f"must be >= 1, got {self.prompts_per_call}")

    def fingerprint(self) -> dict:
        """What determines the samples: a rerun into the same directory must match it."""
        fp = {"n": self.n, "temperature": self.temperature, "top_p": self.top_p, "top_k": self.top_k,
              "min_p": self.min_p, "max_new_tokens": self.max_new_tokens, "seed": self.seed,
              "stop_strings": list(self.stop_strings), "prompt_version": prompt_version(self.format)}
        if self.format != DEFAULT_FORMAT:  # (the default is left out: directories sampled before it existed match)
            fp["format"] = self.format
        if self.no_repeat_ngram:
            fp["no_repeat_ngram"] = self.no_repeat_ngram
        if self.cut_tests:
            fp["cut_tests"] = True
        return fp


@dataclasses.dataclass(frozen=True)
class CheckpointRef:
    index: int
    path: str
    step: int | None = None  # the trainer step, when it came from a training run's checkpoint list


def unit_prompt_id(snippet_id: str, checkpoint_index: int) -> int:
    """The engine's prompt id of a (snippet, checkpoint) unit: a stable 31-bit hash."""
    h = hashlib.sha256(f"{snippet_id}\0{checkpoint_index}".encode("utf-8")).digest()
    return int.from_bytes(h[:4], "big") & 0x7FFFFFFF


def candidate_id(snippet_id: str, checkpoint: str, checkpoint_index: int, sample_index: int, seed: int) -> str:
    """Stable across moves of the run directory: only the checkpoint path's last three parts count."""
    where = "/".join(Path(checkpoint).parts[-3:])
    return content_id(f"{snippet_id}\0{where}\0{checkpoint_index}\0{sample_index}\0{seed}", prefix="cand")


# ----------------------------------------------------------------------------------------------
# Checkpoints


def resolve_checkpoints(paths: Sequence[str | Path], *, skip_missing: bool = False
                        ) -> tuple[list[CheckpointRef], list[str]]:
    """Expands `paths` into checkpoints: a model checkpoint (GGUF, HF directory, scoder-jax
    checkpoint or trainer step directory) is taken as is; a training run's output directory
    (with `checkpoints/`) gives every checkpoint the trainer kept, oldest first.

    Returns (checkpoints, missing paths). A missing path raises `CheckpointError` unless
    `skip_missing`; a path that exists but holds no checkpoint always raises.
    """
    from scoder_jax.models.checkpoint import checkpoint_kind
    from scoder_jax.train.checkpoints import list_checkpoints

    if not paths:
        raise ConfigError("no checkpoints given (--checkpoints expects one or more paths)")
    refs: list[CheckpointRef] = []
    missing: list[str] = []
    for p in map(Path, paths):
        if not p.exists():
            missing.append(str(p))
            continue
        infos = list_checkpoints(p) if p.is_dir() and not (p / "scoder_model.json").exists() \
            and not (p / "config.json").exists() else []
        if infos:
            base = len(refs)
            refs.extend(CheckpointRef(base + k, str(i.path), i.step) for k, i in enumerate(infos))
            continue
        try:
            checkpoint_kind(p)
        except CheckpointError as e:
            raise CheckpointError(f"{e} (nor a training run with kept checkpoints under {p}/checkpoints)") from None
        step = int(p.name) if p.name.isdigit() and p.parent.name == "checkpoints" else None
        refs.append(CheckpointRef(len(refs), str(p), step))
    if missing and not skip_missing:
        raise CheckpointError(
            f"{len(missing)} of {len(paths)} checkpoints missing: {', '.join(missing)} "
            "(check the paths; --skip-missing samples from the others and counts these)")
    if not refs:
        raise CheckpointError(f"none of the {len(paths)} checkpoints exists: {', '.join(missing)}")
    return refs, missing


# ----------------------------------------------------------------------------------------------
# Records


def snippet_fields(rec: Any, where: str = "") -> tuple[dict | None, str]:
    """(snippet {id, lang, content}, "") or (None, why) for one pool record."""
    if not isinstance(rec, dict):
        return None, f"{where}: expected a snippet object, got {type(rec).__name__}"
    content = rec.get("content")
    if not isinstance(content, str) or not content.strip():
        return None, f"{where}: missing or empty field 'content'"
    sid = rec.get("id") if isinstance(rec.get("id"), str) and rec.get("id") else content_id(content)
    lang = rec.get("lang") if isinstance(rec.get("lang"), str) and rec.get("lang") else "python"
    return {"id": sid, "lang": lang, "content": content}, ""


def unit_records(snippet: dict, ckpt: CheckpointRef, seed: int, outputs: Iterable[tuple[int, str, str, int]],
                 cut_tests: bool = False, fmt: str = DEFAULT_FORMAT) -> tuple[list[dict], list[dict]]:
    """The records of one unit from its replies `(sample_index, text, finish_reason, n_tokens)`:
    (candidates, rejects). Candidates are Sample records; rejects keep the raw text and reason.
    `cut_tests`: keep replies cut off inside [Tests] (`reply_parser.parse_response`), tagged meta.tests_cut.
    `fmt`: the sample format the replies are parsed in ("problem_solution": tests are "")."""
    pid = unit_prompt_id(snippet["id"], ckpt.index)
    cands, rejects = [], []
    for s, text, finish, n_tokens in sorted(outputs, key=lambda o: o[0]):
        cid = candidate_id(snippet["id"], ckpt.path, ckpt.index, s, seed)
        tags = {"checkpoint": ckpt.path, "checkpoint_step": ckpt.step, "checkpoint_index": ckpt.index,
                "sample_index": s, "seed": seed, "prompt_id": pid}
        pr = parse_response(text, snippet["lang"], cut_tests=cut_tests and finish == "length", fmt=fmt)
        if pr.ok:
            cands.append({
                "id": cid, "snippet_id": snippet["id"], "snippet": snippet["content"], "lang": snippet["lang"],
                "problem": pr.problem, "solution": pr.solution, "tests": pr.tests, "origin": "synth",
                "meta": {**tags, "raw": text, "parse": "ok", "finish_reason": finish, "n_tokens": n_tokens,
                         **({"tests_cut": True} if pr.tests_cut else {})},
            })
        else:
            rejects.append({"id": cid, "snippet_id": snippet["id"], "lang": snippet["lang"], **tags,
                            "reason": pr.reason, "detail": pr.detail, "finish_reason": finish,
                            "n_tokens": n_tokens, "raw": text})
    return cands, rejects


# ----------------------------------------------------------------------------------------------
# Shard files


def _shard_paths(out_dir: Path, p: int) -> dict[str, Path]:
    return {k: out_dir / f"{k}.{p}.jsonl" for k in ("candidates", "rejects", "done")} | \
        {"shard": out_dir / f"shard.{p}.json"}


def _unit_key(rec: dict) -> tuple[str, int]:
    if "checkpoint_index" in rec:
        return rec["snippet_id"], int(rec["checkpoint_index"])
    return rec["snippet_id"], int(rec["meta"]["checkpoint_index"])


def _load_done(paths: dict[str, Path]) -> dict[tuple[str, int], dict]:
    """Done markers of a shard; drops records of units without one (a kill mid-unit)."""
    done: dict[tuple[str, int], dict] = {}
    if paths["done"].exists():
        JsonlAppender(paths["done"]).close()  # cuts a torn last line
        for m in iter_jsonl(paths["done"]):
            done[_unit_key(m)] = m
    for kind in ("candidates", "rejects"):
        path = paths[kind]
        if not path.exists():
            continue
        JsonlAppender(path).close()
        recs = list(iter_jsonl(path))
        keep = [r for r in recs if _unit_key(r) in done]
        if len(keep) != len(recs):
            log.info("%s: dropping %d records of %d unfinished units", path, len(recs) - len(keep),
                     len({_unit_key(r) for r in recs} - set(done)))
            write_jsonl_atomic(path, keep)
    return done


def _check_config(out_dir: Path, cfg: SampleConfig, refs: list[CheckpointRef]) -> None:
    path = out_dir / "sample_config.json"
    want = {"sampling": cfg.fingerprint(), "checkpoints": [dataclasses.asdict(r) for r in refs]}
    if path.exists():
        try:
            have = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise DataError(f"{path}: malformed JSON ({e.msg}); remove it only if {out_dir} holds no samples") from None
        for key, what in (("sampling", "sampling parameters"), ("checkpoints", "checkpoints")):
            if have.get(key) != want[key]:
                raise ConfigError(
                    f"{out_dir} was sampled with other {what} ({path}: {json.dumps(have.get(key))}, now "
                    f"{json.dumps(want[key])}); use a fresh --out directory, or the same settings to resume")
    else:
        write_json_atomic(path, want)


# ----------------------------------------------------------------------------------------------
# Sampling


def _host() -> tuple[int, int]:
    import jax

    return jax.process_index(), jax.process_count()


def sample_candidates(snippets: Iterable[dict], checkpoint_paths: Sequence[str | Path], out_dir: str | Path,
                      cfg: SampleConfig = SampleConfig(), *, progress: bool = False,
                      on_unit: Callable[[dict], None] | None = None, engine=None) -> dict:
    """Samples `cfg.n` candidates per snippet from each checkpoint into `out_dir` (this host's
    shard; see the module docstring), resuming what an earlier run left. Returns this run's
    summary; with one process the shard is merged (`merge_shards`) and the summary has the
    merged totals under "merged".

    `on_unit(marker)` is called after each unit is committed (for progress reporting).
    `engine`: a `generate.Engine` of the checkpoints' architecture to reuse (its compiled
    functions carry over between calls, e.g. across iterations); by default one is built.
    """
    from scoder_jax.generate.engine import Engine, completion_text, resolve_stops
    from scoder_jax.generate.sampling import SamplingParams
    from scoder_jax.models.checkpoint import load_model, load_tokenizer
    from scoder_jax.tokenizer import Tokenizer

    out_dir = Path(out_dir)
    t_start = time.perf_counter()
    p, P = cfg.process_index, cfg.process_count
    if p is None or P is None:
        hp, hP = _host()
        p = hp if p is None else p
        P = hP if P is None else P
    if not 0 <= p < P:
        raise ConfigError(f"process_index {p} is outside 0..{P - 1}")
    refs, missing = resolve_checkpoints(checkpoint_paths, skip_missing=cfg.skip_missing)

    # This host's snippets: valid, first occurrence of each id, every P-th from p.
    counts: Counter = Counter()
    bad: list[str] = []
    mine: list[dict] = []
    seen: set[str] = set()
    i = 0
    for k, rec in enumerate(snippets):
        snip, why = snippet_fields(rec, rec.get("_where", f"snippet {k}") if isinstance(rec, dict) else f"snippet {k}")
        if snip is None:
            counts["bad_snippets"] += 1
            bad.append(why)
            continue
        if snip["id"] in seen:
            counts["duplicate_snippets"] += 1
            continue
        seen.add(snip["id"])
        if i % P == p:
            mine.append(snip)
        i += 1
    if bad:
        log.warning("skipped %d unusable snippets; first: %s", len(bad), bad[0])

    out_dir.mkdir(parents=True, exist_ok=True)
    _check_config(out_dir, cfg, refs)
    paths = _shard_paths(out_dir, p)
    done = _load_done(paths)
    write_json_atomic(paths["shard"], {"process_index": p, "process_count": P, "snippets": len(mine),
                                       "checkpoints": len(refs), "units_expected": len(mine) * len(refs)})
    todo = {r.index: [s for s in mine if (s["id"], r.index) not in done] for r in refs}
    n_todo = sum(len(v) for v in todo.values())
    already = len(mine) * len(refs) - n_todo

    params = SamplingParams(temperature=cfg.temperature, top_p=cfg.top_p, top_k=cfg.top_k, min_p=cfg.min_p,
                            no_repeat_ngram=cfg.no_repeat_ngram, max_new_tokens=cfg.max_new_tokens, n=cfg.n,
                            seed=cfg.seed, stop_strings=tuple(cfg.stop_strings))
    reasons: Counter = Counter()
    per_ckpt: dict[int, Counter] = {r.index: Counter() for r in refs}
    bar = _progress(n_todo, progress)
    tok = None
    mesh = None
    try:
        with JsonlAppender(paths["candidates"], flush_every=1 << 30) as cand_out, \
                JsonlAppender(paths["rejects"], flush_every=1 << 30) as rej_out, \
                JsonlAppender(paths["done"]) as done_out:
            for ref in refs:
                units = todo[ref.index]
                if not units:
                    continue
                if P > 1 and mesh is None:
                    from scoder_jax.parallel import single_device_mesh

                    mesh = single_device_mesh()  # this process's first device
                try:
                    model = load_model(ref.path, mesh=mesh)
                except CheckpointError:
                    raise
                except Exception as e:  # noqa: BLE001 - a checkpoint that exists but cannot be read
                    raise CheckpointError(f"{ref.path}: cannot load the checkpoint ({type(e).__name__}: {e})") from None
                if tok is None:
                    tok = Tokenizer.load(cfg.tokenizer) if cfg.tokenizer else load_tokenizer(ref.path)
                    params = resolve_stops(tok, params)
                if engine is None:
                    engine = Engine(model, pad_id=tok.pad_id, max_batch=cfg.max_batch)
                else:
                    engine.set_model(model)
                del model
                ctx = engine.cfg.max_position
                for c0 in range(0, len(units), cfg.prompts_per_call):
                    chunk = units[c0:c0 + cfg.prompts_per_call]
                    ids, keep = [], []
                    for s in chunk:
                        toks = tok.encode_chat(build_messages(s["content"], s["lang"], cfg.format))
                        if len(toks) + cfg.max_new_tokens > ctx:
                            marker = {"snippet_id": s["id"], "checkpoint_index": ref.index, "candidates": 0,
                                      "rejects": 0, "skipped": "prompt_too_long", "prompt_tokens": len(toks)}
                            done_out.write(marker)
                            counts["prompt_too_long"] += 1
                            per_ckpt[ref.index]["prompt_too_long"] += 1
                            _tick(bar, on_unit, marker)
                            continue
                        ids.append(toks)
                        keep.append(s)
                    if not keep:
                        continue
                    got: dict[int, list] = {}

                    def on_complete(c, keep=keep, got=got, ref=ref, tok=tok, params=params):
                        got.setdefault(c.prompt_index, []).append(
                            (c.sample_index, completion_text(tok, c, params.stop_strings), c.finish_reason,
                             len(c.tokens)))
                        if len(got[c.prompt_index]) < cfg.n:
                            return
                        snip = keep[c.prompt_index]
                        cands, rejects = unit_records(snip, ref, cfg.seed, got.pop(c.prompt_index), cfg.cut_tests,
                                                      cfg.format)
                        for r in cands:
                            cand_out.write(r)
                        for r in rejects:
                            rej_out.write(r)
                            reasons[r["reason"]] += 1
                        cand_out.flush()
                        rej_out.flush()
                        marker = {"snippet_id": snip["id"], "checkpoint_index": ref.index,
                                  "candidates": len(cands), "rejects": len(rejects)}
                        done_out.write(marker)
                        counts["units"] += 1
                        counts["candidates"] += len(cands)
                        counts["rejects"] += len(rejects)
                        per_ckpt[ref.index]["candidates"] += len(cands)
                        per_ckpt[ref.index]["rejects"] += len(rejects)
                        _tick(bar, on_unit, marker)

                    engine.generate(ids, params, [unit_prompt_id(s["id"], ref.index) for s in keep],
                                    on_complete=on_complete, decode=tok.decode)
    finally:
        if bar is not None:
            bar.close()

    summary = {
        "process_index": p, "process_count": P,
        "snippets": len(mine), "checkpoints": len(refs), "missing_checkpoints": missing,
        "units_expected": len(mine) * len(refs), "units_already_done": already,
        "units_done": counts["units"], "prompt_too_long": counts["prompt_too_long"],
        "samples": counts["units"] * cfg.n, "candidates": counts["candidates"], "rejects": counts["rejects"],
        "reasons": {k: reasons[k] for k in REASONS if reasons[k]},
        "per_checkpoint": {str(r.index): {"path": r.path, "step": r.step, **per_ckpt[r.index]} for r in refs},
        "bad_snippets": counts["bad_snippets"], "duplicate_snippets": counts["duplicate_snippets"],
        "first_bad_snippets": bad[:5],
        "wall_s": round(time.perf_counter() - t_start, 3),
    }
    if engine is not None:
        summary["engine"] = {"compilations": engine.compilations,
                             **{k: round(float(v), 3) for k, v in engine.stats.items()}}
    if P == 1:
        summary["merged"] = merge_shards(out_dir)
    return summary


def _tick(bar, on_unit, marker: dict) -> None:
    if bar is not None:
        bar.update(1)
    if on_unit is not None:
        on_unit(marker)


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="unit", desc="sample", dynamic_ncols=True)


# ----------------------------------------------------------------------------------------------
# Merging


def merge_shards(out_dir: str | Path) -> dict:
    """Joins every host's shard into `candidates.jsonl` and `rejects.jsonl` (sorted by snippet,
    checkpoint, sample; records of unfinished units left out) and writes `summary.json` with the
    totals over all finished units. `complete` says whether every expected unit is done."""
    out_dir = Path(out_dir)
    shards = sorted(out_dir.glob("shard.*.json"), key=lambda q: int(q.name.split(".")[1]))
    if not shards:
        raise DataError(f"{out_dir}: no shard.*.json (not a sampling directory, or nothing sampled yet)")
    metas = [json.loads(s.read_text(encoding="utf-8")) for s in shards]
    P = {m["process_count"] for m in metas}
    if len(P) != 1:
        raise DataError(f"{out_dir}: shards from runs with different process counts {sorted(P)}; "
                        "resample into a fresh directory")
    P = P.pop()
    cands, rejects = [], []
    units: dict[tuple[str, int], dict] = {}
    for m in metas:
        paths = _shard_paths(out_dir, m["process_index"])
        done = _load_done(paths)
        units.update(done)
        for kind, acc in (("candidates", cands), ("rejects", rejects)):
            if paths[kind].exists():
                acc.extend(iter_jsonl(paths[kind]))

    def order(r):
        meta = r.get("meta", r)
        return r["snippet_id"], int(meta["checkpoint_index"]), int(meta["sample_index"])

    cands.sort(key=order)
    rejects.sort(key=order)
    ids = Counter(r["id"] for r in [*cands, *rejects])
    dup = [k for k, v in ids.items() if v > 1]
    if dup:
        raise DataError(f"{out_dir}: candidate id {dup[0]} appears {ids[dup[0]]} times across shards "
                        "(shards of different runs mixed?)")
    write_jsonl_atomic(out_dir / "candidates.jsonl", cands)
    write_jsonl_atomic(out_dir / "rejects.jsonl", rejects)
    reasons = Counter(r["reason"] for r in rejects)
    per_ckpt: dict[str, Counter] = {}
    for r in cands:
        per_ckpt.setdefault(str(r["meta"]["checkpoint_index"]), Counter())["candidates"] += 1
    for r in rejects:
        per_ckpt.setdefault(str(r["checkpoint_index"]), Counter())["rejects"] += 1
    expected = sum(m["units_expected"] for m in metas)
    summary = {
        "shards": len(metas), "process_count": P,
        "complete": len(metas) == P and len(units) >= expected,
        "units_expected": expected, "units_done": len(units),
        "prompt_too_long": sum(1 for u in units.values() if u.get("skipped") == "prompt_too_long"),
        "candidates": len(cands), "rejects": len(rejects),
        "reasons": {k: reasons[k] for k in REASONS if reasons[k]},
        "per_checkpoint": {k: dict(v) for k, v in sorted(per_ckpt.items(), key=lambda kv: int(kv[0]))},
    }
    write_json_atomic(out_dir / "summary.json", summary)
    return summary


def read_snippets(path: str | Path, limit: int | None = None) -> list[dict]:
    """Snippet records from a pool JSONL file or directory (first `limit`)."""
    import itertools

    from scoder_jax.synth.commands import _iter_snippets

    return list(itertools.islice(_iter_snippets(Path(path)), limit))


__all__ = ["SampleConfig", "CheckpointRef", "sample_candidates", "merge_shards", "resolve_checkpoints",
           "unit_prompt_id", "unit_records", "candidate_id", "read_snippets"]
