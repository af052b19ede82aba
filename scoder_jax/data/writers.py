"""Pool writers and readers: JSONL shards (default) and a TFDS dataset in ArrayRecord format.

JSONL: `snippets-00000.jsonl`, `snippets-00001.jsonl`, ... of `shard_size` records each.

TFDS: `tfds/snippet_pool/1.0.0/` holding `snippet_pool-train.array_record-0000N-of-0000M`,
`dataset_info.json` and `features.json`, written by tensorflow-datasets' own builder machinery
with `file_format="array_record"` (no TensorFlow needed to write or read it). Read it back with
`tfds.data_source("snippet_pool", data_dir=OUT/"tfds", split="train")`,
`tfds.builder_from_directory(OUT/"tfds/snippet_pool/1.0.0").as_data_source("train")`, or through
grain (`grain.MapDataset.source(...)` / `grain.DataLoader(data_source=...)`); strings come back as
UTF-8 bytes.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Iterable, Iterator

from scoder_jax.errors import DataError

TFDS_NAME = "snippet_pool"
TFDS_VERSION = "1.0.0"
TEXT_FIELDS = ("id", "lang", "content", "source", "kind")


class JsonlShardWriter:
    """Writes records to numbered JSONL shards in `folder` (which the caller makes atomic)."""

    def __init__(self, folder: Path, shard_size: int = 100_000, prefix: str = "snippets"):
        self.folder, self.shard_size, self.prefix = Path(folder), shard_size, prefix
        self.files: list[str] = []
        self.count = 0
        self._f = None
        self._in_shard = 0

    def write(self, rec: dict) -> None:
        if self._f is None or self._in_shard >= self.shard_size:
            self._open_next()
        self._f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        self._in_shard += 1
        self.count += 1

    def _open_next(self) -> None:
        self._close_current()
        name = f"{self.prefix}-{len(self.files):05d}.jsonl"
        self.files.append(name)
        self._f = open(self.folder / name, "w", encoding="utf-8")
        self._in_shard = 0

    def _close_current(self) -> None:
        if self._f is not None:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()
            self._f = None

    def close(self) -> list[str]:
        if not self.files:  # an empty pool is still a pool: one empty shard
            self._open_next()
        self._close_current()
        return self.files


def _tfds_builder_class():
    import numpy as np
    import tensorflow_datasets as tfds

    class SnippetPool(tfds.core.GeneratorBasedBuilder, skip_registration=True):
        """SCoder snippet pool: code snippets with language, kind and provenance."""

        name = TFDS_NAME
        VERSION = tfds.core.Version(TFDS_VERSION)
        RELEASE_NOTES = {TFDS_VERSION: "Snippet pool written by scoder-jax."}

        def __init__(self, *, examples: Iterable[dict], **kwargs):
            self._examples = examples
            super().__init__(**kwargs)

        def _info(self):
            feats = {k: tfds.features.Text() for k in TEXT_FIELDS}
            feats["n_lines"] = tfds.features.Scalar(dtype=np.int32)
            feats["span"] = tfds.features.Tensor(shape=(2,), dtype=np.int32)
            return tfds.core.DatasetInfo(
                builder=self, description="SCoder snippet pool (scoder-jax `scoder snippets build`).",
                features=tfds.features.FeaturesDict(feats), disable_shuffling=True)

        def _split_generators(self, dl_manager):
            del dl_manager
            return {"train": self._generate_examples()}

        def _generate_examples(self):
            for i, rec in enumerate(self._examples):
                yield i, {**{k: rec[k] for k in TEXT_FIELDS}, "n_lines": rec["n_lines"],
                          "span": np.asarray(rec.get("span", (0, 0)), dtype=np.int32)}

    return SnippetPool


def write_tfds(records: Iterable[dict], data_dir: Path) -> Path:
    """Writes records as a TFDS ArrayRecord dataset under `data_dir`; returns its version folder."""
    try:
        import tensorflow_datasets as tfds
        import array_record  # noqa: F401  (the file format's writer)
    except ImportError as e:
        raise DataError(f"--format tfds needs tensorflow-datasets and array_record ({e.name} missing): "
                        "pip install tensorflow-datasets array_record") from None
    import logging

    logging.getLogger("absl").setLevel(logging.ERROR)
    data_dir = Path(data_dir)
    builder = _tfds_builder_class()(examples=records, data_dir=str(data_dir), file_format="array_record")
    downloads = data_dir / ".downloads"
    import contextlib
    import sys

    with contextlib.redirect_stdout(sys.stderr):  # tfds prints its own status lines
        builder.download_and_prepare(
            download_dir=str(downloads),
            download_config=tfds.download.DownloadConfig(try_download_gcs=False, verify_ssl=False))
    shutil.rmtree(downloads, ignore_errors=True)
    return Path(builder.data_dir)


def tfds_data_source(out_dir: Path, split: str = "train"):
    """The random-access data source of a pool written with --format tfds."""
    import tensorflow_datasets as tfds

    return tfds.builder_from_directory(
        str(Path(out_dir) / "tfds" / TFDS_NAME / TFDS_VERSION)).as_data_source(split=split)


def _decode(ex: dict) -> dict:
    rec = {k: (v.decode("utf-8") if isinstance(v, bytes) else v) for k, v in ex.items()}
    rec["n_lines"] = int(rec["n_lines"])
    if "span" in rec:
        rec["span"] = [int(x) for x in rec["span"]]
    return rec


def iter_pool(out_dir: str | os.PathLike) -> Iterator[dict]:
    """The snippets of a built pool (JSONL or TFDS), in pool order."""
    out = Path(out_dir)
    manifest = out / "manifest.json"
    if not manifest.exists():
        raise DataError(f"{out}: not a snippet pool (no manifest.json); build one with `scoder snippets build`")
    meta = json.loads(manifest.read_text(encoding="utf-8"))
    fmt = meta.get("output", {}).get("format", "jsonl")
    if fmt == "tfds":
        src = tfds_data_source(out)
        for i in range(len(src)):
            yield _decode(src[i])
        return
    from scoder_jax.io import iter_jsonl

    for name in meta["output"]["files"]:
        yield from iter_jsonl(out / name)
