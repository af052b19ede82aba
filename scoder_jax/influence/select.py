"""LESS-style selection: features per checkpoint, scores, the kept top fraction.

    inf(c) = max_g  sum_i w_i * mean_{z in targets of group g} cos(P g_sgd(z; th_i), P Gamma_adam(c; th_i))
    w_i    = mean_lr_i / sum_j mean_lr_j          (the checkpoint's mean learning rate, normalized)

Without target groups there is one group (the formula of DESIGN.md §1); with `group_field` the
max over groups is taken, as LESS does over a benchmark's subtasks.

`run_influence(candidates, targets, checkpoints, out_dir, cfg)` writes into OUT:
  features/ckpt-<i>/{candidates,targets}/shard-<k>.npy   L2-normalized features, fp16, memory-mapped
  features/ckpt-<i>/info.json                           checkpoint, step, mean_lr, weight, projection
  scores.jsonl     one line per candidate, in input order: id, index, score, per_checkpoint, rank, selected
  selected.jsonl   the kept candidates (best first), each with meta.influence = {score, rank}
  summary.json     counts, weights, timings
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import sys
import time
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import jax
import numpy as np

from scoder_jax import parallel
from scoder_jax.config import require
from scoder_jax.errors import CheckpointError, ConfigError, DataError
from scoder_jax.influence.grads import (Examples, FeatureFn, GradConfig, Moments, call_arrays, encode_examples,
                                        plan_calls)
from scoder_jax.influence.projection import ProjectionConfig
from scoder_jax.io import atomic_path, read_jsonl, write_json_atomic

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InfluenceMethod:
    """How influence is estimated: the knobs the run config's `influence` section shares with
    `scoder influence` (declared here once; the section extends this class)."""

    dim: int = 8192  # projection dimensions
    projection: Literal["rademacher", "gaussian"] = "rademacher"
    two_stage: bool = False  # per-block Kronecker projection, then dense (much cheaper on a CPU)
    kron_dim: int = 32
    mode: Literal["lora", "full"] = "lora"  # LoRA gradients (LESS), or every linear layer by Kronecker factors
    sgd: bool = False  # plain gradients for candidates too (no Adam moments needed)
    microbatch: int = 8  # examples per vmap, over all devices
    microbatches: int = 4  # microbatches per compiled call
    seq_len: int = 2048  # examples are truncated to this many tokens for their gradients
    full_rank: int = 32  # full mode: Kronecker factor size per linear layer
    min_len: int = 32  # shortest padded row (rows are powers of two from here to seq_len: fewer shapes to compile)
    group_field: str | None = None  # a targets' field naming its group: max over groups of the group mean

    def __post_init__(self):
        require(self.dim >= 1, "dim", f"must be >= 1, got {self.dim}")
        require(self.microbatch >= 1, "microbatch", f"must be >= 1, got {self.microbatch}")
        require(self.microbatches >= 1, "microbatches", f"must be >= 1, got {self.microbatches}")
        require(self.seq_len >= 0, "seq_len", f"must be >= 0, got {self.seq_len}")

    def method(self) -> dict:
        """This object's `InfluenceMethod` fields (also of a subclass)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(InfluenceMethod)}


@dataclass(frozen=True)
class InfluenceConfig(InfluenceMethod):
    """One `run_influence` call: the method and where, how many, and how to keep them."""

    keep: float | None = 0.05  # fraction of candidates kept (ignored when top_k is set)
    top_k: int | None = None
    seed: int = 0  # projection seed
    tokenizer: str | None = None  # None: the checkpoints'; "chars"; a tokenizer path
    mesh_data: int = -1
    mesh_fsdp: int = 1
    mesh_devices: int | None = None  # use only the first N devices (one process); None: all
    shard_rows: int = 16384  # feature rows per .npy shard
    cache_mb: int = 1024  # projection matrices kept on the device below this size
    progress: bool = True

    def __post_init__(self):
        super().__post_init__()
        require(self.seq_len >= 1, "seq_len", f"must be >= 1, got {self.seq_len}")
        require(self.top_k is not None or (self.keep is not None and 0 < self.keep <= 1), "keep",
                f"must be a fraction in (0, 1], got {self.keep}")
        require(self.top_k is None or self.top_k >= 1, "top_k", f"must be positive, got {self.top_k}")

    def grad_config(self) -> GradConfig:
        return GradConfig(mode=self.mode, micro_batch=self.microbatch, microbatches=self.microbatches,
                          seq_len=self.seq_len, full_rank=self.full_rank, min_len=self.min_len)

    def projection_config(self) -> ProjectionConfig:
        return ProjectionConfig(d=self.dim, seed=self.seed, kind=self.projection, two_stage=self.two_stage,
                                kron_dim=self.kron_dim, cache_bytes=self.cache_mb << 20)


# ----------------------------------------------------------------------------- feature store


class FeatureWriter:
    """fp16 [n, d] features in `shard_rows`-row .npy shards, written by row index (process 0 only)."""

    def __init__(self, directory: Path, n: int, d: int, shard_rows: int):
        self.dir, self.n, self.d, self.shard_rows = Path(directory), n, d, shard_rows
        self.primary = jax.process_index() == 0
        self.shards = []
        if self.primary:
            self.dir.mkdir(parents=True, exist_ok=True)
            for s in range(max(1, -(-n // shard_rows))):
                rows = min(shard_rows, n - s * shard_rows)
                self.shards.append(np.lib.format.open_memmap(self.dir / f"shard-{s:05d}.npy", mode="w+",
                                                             dtype=np.float16, shape=(rows, d)))

    def put(self, idx: Sequence[int], feats: np.ndarray) -> None:
        if not self.primary:
            return
        for i, f in zip(idx, feats):
            self.shards[i // self.shard_rows][i % self.shard_rows] = f

    def close(self) -> None:
        for s in self.shards:
            s.flush()
        self.shards = []


def read_features(directory: str | Path) -> list[np.ndarray]:
    """The memory-mapped shards of a feature directory, in row order."""
    paths = sorted(Path(directory).glob("shard-*.npy"))
    if not paths:
        raise DataError(f"{directory}: no feature shards")
    return [np.load(p, mmap_mode="r") for p in paths]


# ----------------------------------------------------------------------------- scores


def group_means(target_shards: list[np.ndarray], groups: np.ndarray, n_groups: int, valid: np.ndarray) -> np.ndarray:
    """[G, d] fp32 mean of the (normalized) target features of each group (invalid rows left out)."""
    d = target_shards[0].shape[1]
    acc = np.zeros((n_groups, d), np.float64)
    cnt = np.zeros(n_groups, np.int64)
    start = 0
    for sh in target_shards:
        f = np.asarray(sh, np.float32)
        g, v = groups[start:start + len(f)], valid[start:start + len(f)]
        np.add.at(acc, g[v], f[v])
        cnt += np.bincount(g[v], minlength=n_groups)
        start += len(f)
    return (acc / np.maximum(cnt, 1)[:, None]).astype(np.float32)


def checkpoint_scores(cand_shards: list[np.ndarray], means: np.ndarray) -> np.ndarray:
    """[n, G]: each candidate's mean cosine to each target group (features are unit vectors)."""
    return np.concatenate([np.asarray(sh, np.float32) @ means.T for sh in cand_shards], axis=0)


def combine(per_ckpt: list[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """sum_i w_i S_i [n, G], then the max over groups -> [n]."""
    total = sum(w * s.astype(np.float64) for w, s in zip(weights, per_ckpt))
    return total.max(axis=1)


def checkpoint_weights(lrs: Sequence[float]) -> list[float]:
    """Mean learning rates normalized to sum 1 (equal weights if they are all zero)."""
    s = float(sum(lrs))
    if s <= 0:
        return [1.0 / len(lrs)] * len(lrs)
    return [float(x) / s for x in lrs]


def top_indices(scores: np.ndarray, cfg: InfluenceConfig) -> np.ndarray:
    """Indices of the kept candidates, best first (NaN scores never kept; ties by input order)."""
    ok = np.flatnonzero(~np.isnan(scores))
    k = cfg.top_k if cfg.top_k is not None else int(math.ceil(cfg.keep * len(scores)))
    order = ok[np.argsort(-scores[ok], kind="stable")]
    return order[:min(k, len(order))]


# ----------------------------------------------------------------------------- inputs


def resolve_checkpoints(paths: Sequence[str | Path]) -> list[Path]:
    """Step directories from step directories or run directories (all of a run's checkpoints)."""
    from scoder_jax.train.checkpoints import list_checkpoints

    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if not p.exists():
            raise CheckpointError(f"{p}: no such checkpoint directory")
        if (p / "meta" / "metadata").is_file() or (p / "scoder_model.json").is_file() or (p / "config.json").is_file():
            out.append(p)
            continue
        infos = list_checkpoints(p, repair=False)
        if not infos:
            raise CheckpointError(f"{p}: neither a checkpoint nor a training run with checkpoints")
        out.extend(i.path for i in infos)
    if not out:
        raise CheckpointError("no checkpoints given (--checkpoints DIR, a step directory or a training run)")
    return out


# Model config fields that decide what a gradient is: checkpoints compared by influence must agree
# on all of them (dtypes may differ).
SAME_MODEL_FIELDS = ("arch", "vocab_size", "hidden_size", "num_layers", "num_heads", "num_kv_heads", "head_dim",
                     "intermediate_size", "tie_embeddings", "qkv_bias", "o_bias", "rope", "lora")


def checkpoint_model_config(ckpt: Path) -> dict:
    """The model config (a ModelConfig dict) of a checkpoint, read from its metadata alone."""
    from scoder_jax.models.checkpoint import ORBAX_MARKER
    from scoder_jax.models.config import read_hf_config
    from scoder_jax.train.checkpoints import read_meta

    marker = ckpt / ORBAX_MARKER
    if marker.is_file():
        try:
            model = json.loads(marker.read_text())["model"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise CheckpointError(f"{marker}: malformed ({type(e).__name__}: {e})") from None
    elif (ckpt / "meta" / "metadata").is_file():
        model = read_meta(ckpt).get("model")
        if not isinstance(model, dict):
            raise CheckpointError(f"{ckpt / 'meta' / 'metadata'}: no 'model' config")
    else:
        model = read_hf_config(ckpt).to_dict()
    return json.loads(json.dumps(model))  # as stored: tuples become lists


def tokenizer_difference(tok, ref) -> str | None:
    """The first field in which two tokenizers differ (vocabulary, specials, chat template), or None."""
    va, vb = tok.backend.get_vocab(with_added_tokens=True), ref.backend.get_vocab(with_added_tokens=True)
    if len(va) != len(vb):
        return f"vocabulary of {len(va)} tokens, not {len(vb)}"
    if va != vb:
        t = min((t for t in va.keys() | vb.keys() if va.get(t) != vb.get(t)), key=lambda t: (vb.get(t, -1), t))
        return f"vocabulary: token {t!r} has id {va.get(t)}, not {vb.get(t)}"
    for name in ("family", "bos_token", "eos_token", "chat_template"):
        if getattr(tok, name) != getattr(ref, name):
            return f"{name} {getattr(tok, name)!r:.60}, not {getattr(ref, name)!r:.60}"
    return None


def check_same_model(ckpts: Sequence[Path]) -> None:
    """Every checkpoint has the first one's architecture and vocabulary (or, like it, no tokenizer);
    CheckpointError naming the checkpoint and the field otherwise. Reads metadata and tokenizers only."""
    from scoder_jax.models.checkpoint import load_tokenizer

    def tokenizer_of(c: Path):
        try:
            return load_tokenizer(c, required=False)
        except CheckpointError:  # a step directory not yet given its scoder_model.json: no tokenizer/ either
            return None

    first = ckpts[0]
    ref_cfg = checkpoint_model_config(first)
    ref_tok = tokenizer_of(first)
    for c in ckpts[1:]:
        cfg = checkpoint_model_config(c)
        for f in SAME_MODEL_FIELDS:
            if cfg.get(f) != ref_cfg.get(f):
                raise CheckpointError(f"{c}: a checkpoint of another model than {first}: {f} = {cfg.get(f)!r}, not "
                                      f"{ref_cfg.get(f)!r}; influence compares gradients of one model: give the "
                                      "checkpoints of one training run")
        tok = tokenizer_of(c)
        if (tok is None) != (ref_tok is None):
            has, lacks = (first, c) if tok is None else (c, first)
            raise CheckpointError(f"{lacks}: no tokenizer saved with this checkpoint, but {has} has one: their "
                                  "vocabularies cannot be compared; give checkpoints saved with their tokenizer")
        diff = None if tok is None else tokenizer_difference(tok, ref_tok)
        if diff is not None:
            raise CheckpointError(f"{c}: its tokenizer differs from that of {first} ({diff}): influence compares "
                                  "gradients of one tokenization; give checkpoints of one model and tokenizer")


def tokenizer_fingerprint(tok) -> str:
    """sha256 of what decides token ids and loss masks: the vocabulary, specials, chat template."""
    h = hashlib.sha256()
    h.update(json.dumps(sorted(tok.backend.get_vocab(with_added_tokens=True).items())).encode())
    h.update(json.dumps([tok.family, tok.bos_token, tok.eos_token, tok.chat_template]).encode())
    return h.hexdigest()[:16]


def resolve_tokenizer(ckpts: Sequence[Path], spec: str | None):
    """The tokenizer every checkpoint shares (or `spec`); different ones are an error."""
    from scoder_jax.models.checkpoint import load_tokenizer
    from scoder_jax.train.data import resolve_tokenizer as train_resolve

    found = []
    for c in ckpts:
        try:
            t = load_tokenizer(c, required=False)
        except CheckpointError:
            t = None
        if t is not None:
            found.append((c, t, tokenizer_fingerprint(t)))
    for c, _, fp in found[1:]:
        if fp != found[0][2]:
            raise CheckpointError(f"{c}: its tokenizer differs from that of {found[0][0]} (fingerprint {fp} vs "
                                  f"{found[0][2]}): influence compares gradients of one tokenization; give "
                                  "checkpoints of one model and tokenizer")
    if spec is not None:
        tok = train_resolve(spec, None)
        if found and tokenizer_fingerprint(tok) != found[0][2]:
            raise CheckpointError(f"tokenizer {spec!r} differs from the one saved with {found[0][0]}: the candidates "
                                  "would be tokenized differently from the checkpoint's training; drop --tokenizer")
        return tok
    return found[0][1] if found else None


def check_record_tokenizers(records: Sequence[dict], fingerprint: str | None, source: str) -> None:
    """Pre-tokenized records that name their tokenizer (`tokenizer` or `meta.tokenizer`) must name this one."""
    if fingerprint is None:
        return
    for i, r in enumerate(records):
        if not isinstance(r, dict) or "input_ids" not in r:
            continue
        fp = r.get("tokenizer") or (r.get("meta") or {}).get("tokenizer")
        if fp is not None and fp != fingerprint:
            raise DataError(f"{source}: record {i + 1}: tokenized with tokenizer {fp}, but the checkpoints use "
                            f"{fingerprint}: re-tokenize with the checkpoints' tokenizer or give text records")


def _records(x, name: str) -> tuple[list[dict], str]:
    if isinstance(x, (str, Path)):
        return read_jsonl(x), str(x)
    return list(x), f"<{name}>"


def _say(msg: str) -> None:
    if jax.process_index() == 0:
        print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- the stage


def microbatches_for(n: int, gc) -> int:
    """Microbatches a call of n examples carries: enough for them, rounded up to a power of two
    (at most `gc.microbatches`), so a short call does not compute empty rows and few shapes compile."""
    need, m = -(-n // gc.micro_batch), 1
    while m < need:
        m *= 2
    return min(m, gc.microbatches)


def compute_features(ff: FeatureFn, ex: Examples, writer: FeatureWriter, *, adam: bool, seq_len: int,
                     bar=None) -> None:
    gc = ff.cfg
    per_call = gc.micro_batch * gc.microbatches
    for T, idx in plan_calls(ex, seq_len, per_call, gc.min_len):
        feats = ff(call_arrays(ex, idx, T, microbatches_for(len(idx), gc), gc.micro_batch), adam)
        writer.put(idx, feats[:len(idx)])
        if bar is not None:
            bar.update(len(idx))


def run_influence(candidates, targets, checkpoints: Sequence[str | Path], out_dir: str | Path,
                  cfg: InfluenceConfig = InfluenceConfig()) -> dict:
    """Scores every candidate against the targets over the checkpoints; keeps the top; writes OUT.

    candidates/targets: JSONL paths or lists of records (Samples: problem/solution; or chats or
    pre-tokenized, as the trainer reads them). targets may carry `cfg.group_field`.
    Returns the summary (also written to OUT/summary.json).
    """
    from scoder_jax.models.checkpoint import load_model
    from scoder_jax.train.checkpoints import checkpoint_lr, load_adam_moments, read_meta
    from scoder_jax.train.config import DataConfig

    t0 = time.time()
    out_dir = Path(out_dir).absolute()
    cands, cand_src = _records(candidates, "candidates")
    tgts, tgt_src = _records(targets, "targets")
    if not tgts:
        raise DataError(f"{tgt_src}: the target set is empty (influence needs at least one target sample)")
    if not cands:
        raise DataError(f"{cand_src}: no candidates to score")
    ckpts = resolve_checkpoints(checkpoints)
    check_same_model(ckpts)  # one architecture and vocabulary, before anything is loaded

    # per-checkpoint facts, checked before any gradient is taken
    if cfg.mode == "full" and not cfg.sgd:
        raise ConfigError("the full-model mode projects gradients without forming them, so the element-wise Adam "
                          "transform cannot apply: add --sgd (plain gradients), or use the LoRA mode")
    metas = []
    for c in ckpts:
        try:
            metas.append(read_meta(c))
        except CheckpointError:
            metas.append(None)
        if not cfg.sgd:
            if metas[-1] is None or not (c / "opt_state").is_dir():
                raise CheckpointError(f"{c}: no optimizer state: the Adam transform needs the checkpoint's Adam "
                                      "moments (use a training checkpoint with opt_state/, or --sgd for plain "
                                      "gradients)")
    tok = resolve_tokenizer(ckpts, cfg.tokenizer)
    fp = tokenizer_fingerprint(tok) if tok is not None else None
    check_record_tokenizers(cands, fp, cand_src)
    check_record_tokenizers(tgts, fp, tgt_src)
    data_cfg = DataConfig()
    if metas[0] is not None and isinstance(metas[0].get("train", {}).get("data"), dict):
        data_cfg = DataConfig(**metas[0]["train"]["data"])

    devices = jax.devices()[:cfg.mesh_devices] if cfg.mesh_devices else None
    mesh = parallel.fit_mesh(cfg.microbatch, cfg.mesh_data, cfg.mesh_fsdp, devices=devices,
                             what="influence's micro_batch")
    lrs = [checkpoint_lr(c, mean=True) if m is not None and "mean_lr" in m else 1.0 for c, m in zip(ckpts, metas)]
    weights = checkpoint_weights(lrs)

    groups_raw = [str(_field(t, cfg.group_field)) for t in tgts] if cfg.group_field else ["all"] * len(tgts)
    group_names = sorted(set(groups_raw))
    groups = np.asarray([group_names.index(g) for g in groups_raw], np.int64)

    primary = jax.process_index() == 0
    per_ckpt_scores, infos, ex_c, ex_t = [], [], None, None
    timings = {"features_s": 0.0}
    bar = None
    for i, (c, meta) in enumerate(zip(ckpts, metas)):
        model = load_model(c, mesh=mesh)
        if ex_c is None:
            vocab = model.cfg.vocab_size
            ex_c = encode_examples(cands, tok, data_cfg, cfg.seq_len, source=cand_src, vocab_size=vocab)
            ex_t = encode_examples(tgts, tok, data_cfg, cfg.seq_len, source=tgt_src, vocab_size=vocab)
            valid_t = ex_t.loss_tokens() > 0
            if not valid_t.any():
                raise DataError(f"{tgt_src}: no target sample has a response token to take a loss on")
            if cfg.progress and primary:
                from tqdm import tqdm

                bar = tqdm(total=(len(ex_c) + len(ex_t)) * len(ckpts), unit="ex", desc="influence", file=sys.stderr)
        moments = None
        if not cfg.sgd:
            try:
                am = load_adam_moments(c, mesh=mesh, names=_lora_names(model) if cfg.mode == "lora" else None)
            except CheckpointError as e:
                raise CheckpointError(
                    f"{e}: the Adam transform needs the checkpoint's moments (or use --sgd)") from None
            moments = Moments(am.mu, am.nu, am.b1, am.b2, am.eps)
        ff = FeatureFn(model, cfg.grad_config(), cfg.projection_config(), mesh, moments)
        del model
        fdir = out_dir / "features" / f"ckpt-{i}"
        t1 = time.time()
        wt = FeatureWriter(fdir / "targets", len(ex_t), cfg.dim, cfg.shard_rows)
        compute_features(ff, ex_t, wt, adam=False, seq_len=cfg.seq_len, bar=bar)
        wt.close()
        wc = FeatureWriter(fdir / "candidates", len(ex_c), cfg.dim, cfg.shard_rows)
        compute_features(ff, ex_c, wc, adam=not cfg.sgd, seq_len=cfg.seq_len, bar=bar)
        wc.close()
        timings["features_s"] += time.time() - t1
        info = {"checkpoint": str(c), "step": (meta or {}).get("step"), "mean_lr": lrs[i], "weight": weights[i],
                "transform": "sgd" if cfg.sgd else "adam", "mode": cfg.mode, "d": cfg.dim, "seed": cfg.seed,
                "projection": cfg.projection, "two_stage": cfg.two_stage or cfg.mode == "full",
                "n_params": ff.n_params, "tokenizer": fp}
        infos.append(info)
        if primary:
            write_json_atomic(fdir / "info.json", info)
            means = group_means(read_features(fdir / "targets"), groups, len(group_names), valid_t)
            per_ckpt_scores.append(checkpoint_scores(read_features(fdir / "candidates"), means))
    if bar is not None:
        bar.close()

    summary = {"candidates": len(cands), "targets": len(tgts), "checkpoints": infos, "groups": group_names,
               "out_dir": str(out_dir)}
    if primary:
        scores = combine(per_ckpt_scores, weights)
        no_loss = ex_c.loss_tokens() == 0
        scores[no_loss] = np.nan
        keep = top_indices(scores, cfg)
        rank = np.full(len(cands), -1, np.int64)
        rank[keep] = np.arange(len(keep))
        # per checkpoint: the mean cosine over all (valid) targets, for inspection
        sizes = np.bincount(groups[valid_t], minlength=len(group_names)).astype(np.float64)
        overall = [s @ (sizes / sizes.sum()) for s in per_ckpt_scores]
        with atomic_path(out_dir / "scores.jsonl") as tmp, open(tmp, "w") as f:
            for j, rec in enumerate(cands):
                row = {"id": rec.get("id", j), "index": j,
                       "score": None if np.isnan(scores[j]) else float(scores[j]),
                       "per_checkpoint": [float(o[j]) for o in overall],
                       "rank": int(rank[j]) if rank[j] >= 0 else None, "selected": bool(rank[j] >= 0)}
                if len(group_names) > 1:
                    row["groups"] = {g: float(sum(w * s[j, k] for w, s in zip(weights, per_ckpt_scores)))
                                     for k, g in enumerate(group_names)}
                if no_loss[j]:
                    row["no_loss_tokens"] = True
                f.write(json.dumps(row) + "\n")
        with atomic_path(out_dir / "selected.jsonl") as tmp, open(tmp, "w") as f:
            for r, j in enumerate(keep):
                rec = dict(cands[j])
                rec["meta"] = {**(rec.get("meta") or {}), "influence": {"score": float(scores[j]), "rank": r}}
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        n_ex = (len(ex_c) + len(ex_t)) * len(ckpts)
        summary.update({"kept": int(len(keep)), "no_loss_tokens": int(no_loss.sum()),
                        "truncated": int(ex_c.truncated + ex_t.truncated), "weights": weights,
                        "elapsed_s": time.time() - t0, "features_s": timings["features_s"],
                        "examples_per_s": n_ex / max(timings["features_s"], 1e-9),
                        "scores": str(out_dir / "scores.jsonl"), "selected": str(out_dir / "selected.jsonl")})
        write_json_atomic(out_dir / "summary.json", summary)
    return summary


def _lora_names(model) -> list[str]:
    from scoder_jax.models.llama import lora_specs

    return list(lora_specs(model.cfg))


def _field(rec: dict, name: str):
    """A (dotted) field of a record, e.g. `group` or `meta.task`."""
    cur = rec
    for part in name.split("."):
        if not isinstance(cur, dict) or part not in cur:
            raise DataError(f"target record {rec.get('id', '?')!r} has no field '{name}' (group_field)")
        cur = cur[part]
    return cur
