"""SFT data: records -> token ids with a loss mask -> packed rows -> sharded global batches.

A record (one JSONL line) is one of
  * a Sample: `problem` and `solution` (user = problem, assistant = solution), with an optional
    system prompt from the config;
  * a chat: `{"messages": [{"role": ..., "content": ...}, ...]}`;
  * pre-tokenized: `{"input_ids": [...], "loss_mask": [...]}` (`loss_mask` optional: all ones).
Chats go through the model's chat template (`Tokenizer.encode_chat_with_loss_mask`); the loss
covers the assistant turns (and the end-of-turn token closing each), or every token with
`loss_on: all`.

A sample of n tokens contributes n - 1 positions: inputs ids[:-1], targets ids[1:], weights
mask[1:]. Packing places whole samples into rows of `seq_len` positions, first-fit over the
shuffled order, each with its own segment id (0 = padding), so attention and loss never
cross samples. The order of epoch e is a permutation drawn from (seed, e) alone, and so is
the packing; the data position of global step s is therefore (epoch, batch in epoch), a pure
function of s, and resuming needs only the step.

A step's global batch is `batch_size` rows, laid out [grad_accum, batch_size / grad_accum, seq_len]
and sharded over (data, fsdp) on the row axis. With `data.compact_loss`, `targets` and `weights`
hold only a row's loss positions ([..., loss_slots], listed in `loss_index`), so the model
computes logits there alone: the same loss, without the prompt's and the padding's share of
the output projection (a large part of the step for small models with large vocabularies).
Each host builds only the rows its devices hold (`jax.make_array_from_callback` asks for
addressable shards only).
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from scoder_jax.errors import DataError, ScoderError
from scoder_jax.io import iter_jsonl
from scoder_jax.train.config import DataConfig, TrainConfig

log = logging.getLogger(__name__)

BATCH_KEYS = ("tokens", "segment_ids", "targets", "weights")
# loss slots per row are rounded up to this: a multiple of TPU sublanes (8) and GPU tiles (16, 32);
# any coarser only pads (128 gave the smoke preset's rows of 89 loss tokens 128 slots; 32 gives 96:
# the same loss and samples, a fine-tune step 12% shorter)
LOSS_SLOT_MULTIPLE = 32


# ----------------------------------------------------------------------------- tokenizers


CHAR_SPECIALS = ("<pad>", "<s>", "</s>", "<unk>")
CHAR_ALPHABET = "\t\n" + "".join(chr(c) for c in range(0x20, 0x7F))


def char_tokenizer():
    """A character-level tokenizer (pad 0, bos 1, eos 2, unk 3, then tab, newline and printable
    ASCII: 101 ids) with the plain chat format: for smoke runs of tiny presets, no files needed."""
    from tokenizers import Regex, Tokenizer as HFTokenizer, decoders, models, pre_tokenizers

    from scoder_jax.tokenizer import Tokenizer

    vocab = {t: i for i, t in enumerate(CHAR_SPECIALS)}
    for ch in CHAR_ALPHABET:
        vocab[ch] = len(vocab)
    backend = HFTokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    backend.decoder = decoders.Fuse()
    backend.add_special_tokens(list(CHAR_SPECIALS))
    return Tokenizer(backend, family="plain", bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                     unk_token="<unk>", add_bos=False, source="<chars>")


def resolve_tokenizer(spec: str | None, model_path: str | None):
    """The tokenizer named by the config (`chars`, a path) or the one beside the checkpoint."""
    from scoder_jax.models.checkpoint import load_tokenizer
    from scoder_jax.tokenizer import Tokenizer

    from scoder_jax.assets import resolve

    if spec == "chars":
        return char_tokenizer()
    spec = resolve(spec)
    if spec is not None:
        return Tokenizer.load(spec)
    if model_path is None or not Path(model_path).exists():
        return None
    return load_tokenizer(model_path, required=False)


# ----------------------------------------------------------------------------- records


def record_messages(rec: dict, where: str, system_prompt: str | None = None) -> list[dict]:
    if "messages" in rec:
        msgs = rec["messages"]
        if not isinstance(msgs, list) or not msgs:
            raise DataError(f"{where}: field 'messages' must be a non-empty list")
        return msgs
    if "problem" in rec and "solution" in rec:
        for k in ("problem", "solution"):
            if not isinstance(rec[k], str):
                raise DataError(f"{where}: field '{k}' must be a string")
        msgs = [{"role": "system", "content": system_prompt}] if system_prompt else []
        return msgs + [{"role": "user", "content": rec["problem"]}, {"role": "assistant", "content": rec["solution"]}]
    raise DataError(f"{where}: a record needs 'problem' and 'solution', 'messages', or 'input_ids'")


def encode_record(rec: dict, tokenizer, cfg: DataConfig, where: str = "<record>") -> tuple[np.ndarray, np.ndarray]:
    """(ids [n] int32, loss mask [n] bool) of one record."""
    if "input_ids" in rec:
        ids = np.asarray(rec["input_ids"], dtype=np.int64)
        mask = np.asarray(rec.get("loss_mask", np.ones(len(ids))), dtype=bool)
        if ids.ndim != 1 or mask.shape != ids.shape:
            raise DataError(f"{where}: 'input_ids' and 'loss_mask' must be flat lists of equal length")
    else:
        if tokenizer is None:
            raise DataError(f"{where}: text records need a tokenizer (set `tokenizer:` in the train config)")
        msgs = record_messages(rec, where, cfg.system_prompt)
        try:
            ids_l, mask_l = tokenizer.encode_chat_with_loss_mask(msgs)
        except ScoderError as e:
            raise DataError(f"{where}: {e}") from None
        ids, mask = np.asarray(ids_l, np.int64), np.asarray(mask_l, bool)
    if cfg.loss_on == "all":
        mask = np.ones_like(mask)
    return ids.astype(np.int32), mask


@dataclass
class Dataset:
    """Tokenized samples and what was done to them on the way in."""

    ids: list[np.ndarray]
    masks: list[np.ndarray]
    source: str
    stats: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def lengths(self) -> np.ndarray:
        """Positions each sample takes in a row (tokens - 1)."""
        return np.asarray([len(x) - 1 for x in self.ids], np.int64)

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for ids, m in zip(self.ids, self.masks):
            h.update(np.int64(len(ids)).tobytes())
            h.update(ids.tobytes())
            h.update(np.packbits(m).tobytes())
        return h.hexdigest()[:16]

    @property
    def loss_tokens(self) -> int:
        return int(sum(int(m[1:].sum()) for m in self.masks))


def build_dataset(records: Sequence[dict], tokenizer, cfg: TrainConfig, *, source: str = "<records>",
                  vocab_size: int | None = None) -> Dataset:
    """Tokenizes records; over-long samples are truncated or dropped (counted in `stats`)."""
    dc = cfg.data
    ids_out, masks_out = [], []
    stats = {"records": 0, "truncated": 0, "dropped_too_long": 0, "dropped_no_loss": 0, "dropped_short": 0}
    limit = cfg.seq_len + 1
    for i, rec in enumerate(records):
        where = f"{source}: record {i + 1}"
        if not isinstance(rec, dict):
            raise DataError(f"{where}: expected a JSON object")
        stats["records"] += 1
        ids, mask = encode_record(rec, tokenizer, dc, where)
        if vocab_size is not None and len(ids) and (ids.max() >= vocab_size or ids.min() < 0):
            raise DataError(f"{where}: token id {int(ids.max())} is outside the model's vocabulary of {vocab_size}")
        if len(ids) > limit:
            if dc.too_long == "drop":
                stats["dropped_too_long"] += 1
                continue
            ids, mask = ids[:limit], mask[:limit]
            stats["truncated"] += 1
        if len(ids) < 2:
            stats["dropped_short"] += 1
            continue
        if not mask[1:].any():
            stats["dropped_no_loss"] += 1
            continue
        ids_out.append(ids)
        masks_out.append(mask)
    if stats["truncated"]:
        log.warning("%s: %d of %d samples are longer than seq_len + 1 = %d tokens and were truncated "
                    "(data.too_long=drop drops them instead)", source, stats["truncated"], stats["records"], limit)
    if stats["dropped_too_long"]:
        log.warning("%s: %d of %d samples are longer than seq_len + 1 = %d tokens and were dropped",
                    source, stats["dropped_too_long"], stats["records"], limit)
    if stats["dropped_no_loss"]:
        log.warning("%s: %d samples have no loss tokens within seq_len and were dropped", source,
                    stats["dropped_no_loss"])
    if not ids_out:
        if stats["records"] == 0:
            raise DataError(f"{source}: the dataset is empty (no records)")
        raise DataError(f"{source}: no trainable samples among {stats['records']} records ({_fmt_stats(stats)})")
    return Dataset(ids_out, masks_out, source, stats)


def _fmt_stats(stats: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in stats.items() if v)


def load_dataset(path: str | Path, tokenizer, cfg: TrainConfig, *, vocab_size: int | None = None) -> Dataset:
    path = Path(path)
    recs = list(iter_jsonl(path))
    return build_dataset(recs, tokenizer, cfg, source=str(path), vocab_size=vocab_size)


# ----------------------------------------------------------------------------- packing


def pack(lengths: Sequence[int], order: Sequence[int], seq_len: int, window: int = 64,
         pack_rows: bool = True) -> list[list[int]]:
    """Rows of sample indices: first-fit over `order` among the last `window` open rows.

    Every length must be <= seq_len. Without `pack_rows`, one sample per row.
    """
    if not pack_rows:
        return [[int(i)] for i in order]
    rows: list[list[int]] = []
    free: list[int] = []
    for i in order:
        n = int(lengths[i])
        placed = False
        for r in range(max(0, len(rows) - window), len(rows)):
            if free[r] >= n:
                rows[r].append(int(i))
                free[r] -= n
                placed = True
                break
        if not placed:
            rows.append([int(i)])
            free.append(seq_len - n)
    return rows


class DataPlan:
    """The deterministic schedule of rows: epoch e's order and packing come from (seed, e)."""

    def __init__(self, dataset: Dataset, cfg: TrainConfig):
        self.ds, self.cfg = dataset, cfg
        self.lengths = dataset.lengths
        # this plan's own cache: one on the method would be shared by every plan and keep them (and
        # their datasets) alive until evicted
        self.rows = lru_cache(maxsize=4)(self._pack_epoch)
        self.steps_per_epoch = [math.ceil(len(self.rows(e)) / cfg.batch_size) for e in range(cfg.epochs)]
        self.total_steps = sum(self.steps_per_epoch)
        if cfg.max_steps is not None:
            self.total_steps = min(self.total_steps, cfg.max_steps)
        self.loss_slots = self._loss_slots() if cfg.data.compact_loss else cfg.seq_len

    def _loss_slots(self) -> int:
        """Loss positions per row: the most any row of the plan holds, rounded up (to a multiple of
        LOSS_SLOT_MULTIPLE and of loss_chunk), at most seq_len (which turns compaction off)."""
        cfg = self.cfg
        counts = np.array([int(np.count_nonzero(m[1:])) for m in self.ds.masks], np.int64)
        most = 1
        for e in range(cfg.epochs):
            if sum(self.steps_per_epoch[:e]) >= self.total_steps:
                break
            most = max([most] + [int(counts[r].sum()) for r in self.rows(e)])
        slots = -(-most // LOSS_SLOT_MULTIPLE) * LOSS_SLOT_MULTIPLE
        if cfg.loss_chunk:
            slots = -(-slots // cfg.loss_chunk) * cfg.loss_chunk
        return min(slots, cfg.seq_len)

    @property
    def batch_keys(self) -> tuple[str, ...]:
        return BATCH_KEYS + (("loss_index",) if self.loss_slots < self.cfg.seq_len else ())

    def key_length(self, key: str) -> int:
        """The last dimension of batch array `key`."""
        return self.loss_slots if key in ("targets", "weights", "loss_index") else self.cfg.seq_len

    def _pack_epoch(self, epoch: int) -> list[list[int]]:
        """Epoch `epoch`'s rows (lists of sample indices), in order; read through `self.rows`."""
        n = len(self.ds)
        if self.cfg.data.shuffle:
            order = np.random.default_rng([self.cfg.seed, epoch]).permutation(n)
        else:
            order = np.arange(n)
        return pack(self.lengths, order, self.cfg.seq_len, self.cfg.data.pack_window, self.cfg.data.pack)

    def position(self, step: int) -> tuple[int, int]:
        """Global step (0-based) -> (epoch, batch index within the epoch)."""
        for e, n in enumerate(self.steps_per_epoch):
            if step < n:
                return e, step
            step -= n
        raise IndexError("step beyond the last epoch")

    def is_epoch_end(self, step: int) -> bool:
        e, b = self.position(step)
        return b == self.steps_per_epoch[e] - 1

    def step_rows(self, step: int) -> list[list[int]]:
        """The batch_size rows (lists of sample indices; [] = an empty padding row) of a step."""
        e, b = self.position(step)
        rows = self.rows(e)[b * self.cfg.batch_size:(b + 1) * self.cfg.batch_size]
        return rows + [[] for _ in range(self.cfg.batch_size - len(rows))]

    def row_arrays(self, samples: Sequence[int]) -> dict[str, np.ndarray]:
        row = make_row([self.ds.ids[i] for i in samples], [self.ds.masks[i] for i in samples], self.cfg.seq_len)
        return compact_row(row, self.loss_slots) if self.loss_slots < self.cfg.seq_len else row

    def host_batch(self, step: int) -> dict[str, np.ndarray]:
        """The whole global batch of a step on this host: [grad_accum, micro_rows, length] arrays."""
        rows = [self.row_arrays(r) for r in self.step_rows(step)]
        return {k: np.stack([r[k] for r in rows]).reshape(self.cfg.grad_accum, self.cfg.micro_rows, -1)
                for k in self.batch_keys}

    def device_batch(self, step: int, sharding) -> dict[str, Any]:
        """The global batch as jax Arrays on `sharding`, each host building only its own rows."""
        import jax

        cfg = self.cfg
        rows = self.step_rows(step)
        cache: dict[int, dict[str, np.ndarray]] = {}

        def row(r: int) -> dict[str, np.ndarray]:
            if r not in cache:
                cache[r] = self.row_arrays(rows[r])
            return cache[r]

        out = {}
        for key in self.batch_keys:
            shape = (cfg.grad_accum, cfg.micro_rows, self.key_length(key))

            def cb(idx, key=key):
                a_idx = range(cfg.grad_accum)[idx[0]]
                r_idx = range(cfg.micro_rows)[idx[1]]
                block = np.stack([np.stack([row(a * cfg.micro_rows + r)[key] for r in r_idx]) for a in a_idx])
                return block[:, :, idx[2]]

            out[key] = jax.make_array_from_callback(shape, sharding, cb)
        return out

    def position_dict(self, step: int) -> dict[str, int]:
        """Where the data stands after `step` steps (what the checkpoint records)."""
        if step >= sum(self.steps_per_epoch):
            return {"epoch": self.cfg.epochs, "batch_in_epoch": 0, "steps_done": step}
        e, b = self.position(step)
        return {"epoch": e, "batch_in_epoch": b, "steps_done": step}


def make_row(ids: Sequence[np.ndarray], masks: Sequence[np.ndarray], seq_len: int) -> dict[str, np.ndarray]:
    """One packed row of `seq_len` positions from whole samples (ids, masks as tokenized)."""
    tokens = np.zeros(seq_len, np.int32)
    seg = np.zeros(seq_len, np.int32)
    targets = np.zeros(seq_len, np.int32)
    weights = np.zeros(seq_len, np.float32)
    pos = 0
    for k, (x, m) in enumerate(zip(ids, masks), 1):
        n = len(x) - 1
        if pos + n > seq_len:
            raise ValueError(f"samples of {pos + n} positions do not fit a row of {seq_len}")
        tokens[pos:pos + n] = x[:-1]
        targets[pos:pos + n] = x[1:]
        weights[pos:pos + n] = m[1:]
        seg[pos:pos + n] = k
        pos += n
    return {"tokens": tokens, "segment_ids": seg, "targets": targets, "weights": weights}


def compact_row(row: dict[str, np.ndarray], slots: int) -> dict[str, np.ndarray]:
    """`row` with targets and weights kept at its loss positions only (listed in `loss_index`,
    padded with position 0 at weight 0) in `slots` entries."""
    idx = np.flatnonzero(row["weights"])
    if len(idx) > slots:
        raise ValueError(f"a row with {len(idx)} loss positions does not fit {slots} loss slots")
    index = np.zeros(slots, np.int32)
    index[:len(idx)] = idx
    weights = np.zeros(slots, np.float32)
    weights[:len(idx)] = row["weights"][idx]
    return {"tokens": row["tokens"], "segment_ids": row["segment_ids"], "targets": row["targets"][index],
            "weights": weights, "loss_index": index}
