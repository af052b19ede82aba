"""The snippet pool: a streaming build from corpora to a clean, deduplicated, decontaminated pool.

    sources --readers--> work units --workers: read, filter, extract, secrets, decontaminate, MinHash-->
    --main, in unit order: exact dedup, near dedup (LSH)--> JSONL shards or TFDS ArrayRecord + manifest

Workers run on all cores (`workers=0`); their results are consumed in submission order, so the
same seed gives the same pool byte for byte whatever the number of workers. At most
`4 * workers` units are in flight, and the only structures that grow with the corpus are the
exact-dedup key set (8 bytes a snippet plus set overhead) and the LSH index.

Counts (manifest `documents` and `snippets`): every document and every snippet is counted once,
under the first filter that dropped it, or as kept.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import multiprocessing as mp
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from scoder_jax.data import decontam as decontam_lib
from scoder_jax.data import extract as extract_lib
from scoder_jax.data import filters as filters_lib
from scoder_jax.data import readers
from scoder_jax.data import secrets as secrets_lib
from scoder_jax.data.dedup import ExactDedup, MinHasher, NearDedup, exact_key
from scoder_jax.data.writers import JsonlShardWriter, write_tfds
from scoder_jax.errors import ConfigError, DataError, ScoderError
from scoder_jax.io import atomic_path, iter_jsonl, write_json_atomic
from scoder_jax.records import content_id

log = logging.getLogger(__name__)
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class PoolConfig:
    """Every knob of the pool build; the defaults are the design's."""

    seed: int = 0
    format: str = "jsonl"                 # "jsonl" | "tfds"
    # extraction
    python_units: bool = True             # functions, classes, methods through ast
    unit_min_lines: int = 3
    unit_max_lines: int = 100
    windows_per_file: int = 1             # OSS-Instruct windows per document (every language)
    window_min_lines: int = 1
    window_max_lines: int = 15
    # filters
    min_chars: int = 40
    max_chars: int = 8000
    min_lines: int = 1
    max_lines: int = 150
    max_line_chars: int = 250
    min_alnum_fraction: float = 0.25
    max_file_bytes: int = 1_000_000
    max_mean_line_chars: int = 120
    drop_tests: bool = False
    secrets: str = "drop"                 # "drop" | "redact"
    languages: tuple[str, ...] = ()       # keep only these languages (empty: all)
    # dedup
    exact_dedup: bool = True
    near_dedup: bool = True
    minhash_perm: int = 256
    shingle: int = 5
    jaccard: float = 0.7
    # decontamination
    benchmarks: tuple[str, ...] = ("humaneval", "mbpp")
    mbpp_path: str | None = None
    ngram: int = 13
    ngram_min_matches: int = 1
    min_substring_chars: int = 30
    # reading
    lang: str | None = None               # force a language for record sources without one
    exclude: tuple[str, ...] = readers.DEFAULT_EXCLUDE
    content_field: str = "content"
    tfds_split: str = "train"
    # running
    workers: int = 0                      # 0: all cores; 1: in this process
    shard_size: int = 100_000
    preview: int = 5
    max_problems: int = 200               # problems listed in the manifest (all are counted)

    def __post_init__(self) -> None:
        if self.format not in ("jsonl", "tfds"):
            raise ConfigError(f"format: expected 'jsonl' or 'tfds', got {self.format!r}")
        if self.secrets not in ("drop", "redact"):
            raise ConfigError(f"secrets: expected 'drop' or 'redact', got {self.secrets!r}")
        if not 0 < self.jaccard <= 1:
            raise ConfigError(f"jaccard: expected a value in (0, 1], got {self.jaccard}")
        if self.window_min_lines < 1 or self.window_max_lines < self.window_min_lines:
            raise ConfigError("window_min_lines/window_max_lines: need 1 <= min <= max")
        if self.workers < 0 or self.shard_size < 1:
            raise ConfigError("workers must be >= 0 and shard_size >= 1")

    def filter_config(self) -> filters_lib.FilterConfig:
        names = {f.name for f in dataclasses.fields(filters_lib.FilterConfig)}
        return filters_lib.FilterConfig(**{k: getattr(self, k) for k in names})

    def read_options(self) -> readers.ReadOptions:
        return readers.ReadOptions(lang=self.lang, exclude=tuple(self.exclude), content_field=self.content_field,
                                   tfds_split=self.tfds_split)


@dataclass
class Candidate:
    content: str
    lang: str
    kind: str
    source: str
    span: tuple[int, int]
    key: int
    signature: object  # numpy uint64 [minhash_perm] or None


@dataclass
class UnitResult:
    candidates: list[Candidate] = field(default_factory=list)
    counts: collections.Counter = field(default_factory=collections.Counter)
    removed: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class Worker:
    """Everything a worker process needs: built once per process from the config and benchmarks."""

    def __init__(self, config: PoolConfig, items: list[decontam_lib.BenchmarkItem]):
        self.config = config
        self.fcfg = config.filter_config()
        self.decontam = decontam_lib.Decontaminator(items, ngram=config.ngram,
                                                    ngram_min_matches=config.ngram_min_matches,
                                                    min_substring_chars=config.min_substring_chars)
        self.minhasher = MinHasher(config.minhash_perm, config.shingle) if config.near_dedup else None
        self.languages = {readers.normalize_lang(x) for x in config.languages}

    # -- documents -------------------------------------------------------------------------
    def process(self, unit: readers.Unit) -> UnitResult:
        res = UnitResult()
        if isinstance(unit, readers.FilesUnit):
            for ref in unit.files:
                self._file(ref, res)
        else:
            for rec in unit.records:
                self._record(rec, res)
        return res

    def _file(self, ref: readers.FileRef, res: UnitResult) -> None:
        res.counts["doc.seen"] += 1
        limit = self.config.max_file_bytes
        try:
            if os.path.getsize(ref.path) > limit and readers.strip_compression(ref.path)[1] is None:
                res.counts["doc.too_large"] += 1
                return
            with readers.open_binary(Path(ref.path)) as f:
                data = f.read(limit + 1)
        except (OSError, EOFError) as e:
            res.counts["doc.unreadable"] += 1
            res.problems.append(f"{ref.source}: cannot read ({getattr(e, 'strerror', None) or e})")
            return
        if len(data) > limit:
            res.counts["doc.too_large"] += 1
            return
        text = _decode_document(data, res)
        if text is None:
            return
        self._document(text, ref.lang, ref.source, ref.source, res)

    def _record(self, rec: readers.Record, res: UnitResult) -> None:
        res.counts["doc.seen"] += 1
        content = rec.content
        if isinstance(content, bytes):
            content = _decode_document(content, res)
            if content is None:
                return
        if len(content) > self.config.max_file_bytes:
            res.counts["doc.too_large"] += 1
            return
        if "\x00" in content[:8192]:
            res.counts["doc.binary"] += 1
            return
        if rec.lang is None:
            res.counts["doc.unknown_language"] += 1
            if len(res.problems) < 20:
                res.problems.append(f"{rec.source}: no language (no lang field or known path extension; pass --lang)")
            return
        self._document(content, rec.lang, rec.source, rec.path or rec.source, res)

    def _document(self, text: str, lang: str, source: str, path: str, res: UnitResult) -> None:
        cfg = self.config
        if self.languages and lang not in self.languages:
            res.counts["doc.language_excluded"] += 1
            return
        reason = filters_lib.file_reason(text, path, self.fcfg)
        if reason:
            res.counts[f"doc.{reason}"] += 1
            return
        lines = text.splitlines(keepends=True)
        extracted: list[extract_lib.Extracted] = []
        if lang == "python":
            tree = extract_lib.parse_python(text)
            if tree is None:
                res.counts["doc.python_parse_error"] += 1
                res.problems.append(f"{source}: Python that does not parse (skipped)")
                return
            if cfg.python_units:
                extracted += extract_lib.python_units(tree, lines, min_lines=cfg.unit_min_lines,
                                                      max_lines=cfg.unit_max_lines)
        rng = extract_lib.document_rng(cfg.seed, source)
        extracted += extract_lib.windows(lines, rng, count=cfg.windows_per_file, min_lines=cfg.window_min_lines,
                                         max_lines=cfg.window_max_lines)
        res.counts["doc.used"] += 1
        res.counts[f"lang.{lang}.documents"] += 1
        test_file = cfg.drop_tests and filters_lib.is_test_path(path)
        # Secrets are found in the whole document too: a window may hold a fragment of one (a
        # private key's body without its BEGIN line) that no pattern recognizes on its own.
        secret_lines = secrets_lib.line_spans(lines, secrets_lib.find_secrets(text))
        for ex in extracted:
            self._snippet(ex, lang, source, test_file, secret_lines, res)

    # -- snippets --------------------------------------------------------------------------
    def _snippet(self, ex: extract_lib.Extracted, lang: str, source: str, test_file: bool,
                 secret_lines: list[tuple[str, int, int]], res: UnitResult) -> None:
        counts = res.counts
        counts["snip.extracted"] += 1
        counts[f"lang.{lang}.extracted"] += 1
        content = ex.content
        reason = filters_lib.snippet_reason(content, self.fcfg)
        if reason:
            counts[f"snip.{reason}"] += 1
            return
        if self.config.drop_tests and (test_file or ex.name.startswith(("test", "Test"))
                                       or filters_lib.is_test_code(content)):
            counts["snip.test_code"] += 1
            return
        first, last = ex.span
        touched = [(kind, a, b) for kind, a, b in secret_lines if a <= last and b >= first]
        if touched and (self.config.secrets == "drop" or any(a < first or b > last for _, a, b in touched)):
            # dropped, or only part of a secret inside (which no redaction could find): drop it
            for kind in sorted({kind for kind, _, _ in touched}):
                counts[f"secret.{kind}"] += 1
            counts["snip.secret"] += 1
            return
        found = secrets_lib.find_secrets(content)
        if found:
            for kind in sorted({s.kind for s in found}):
                counts[f"secret.{kind}"] += 1
            if self.config.secrets == "drop":
                counts["snip.secret"] += 1
                return
            content = secrets_lib.redact(content, found)
            counts["snip.redacted"] += 1
        match = self.decontam.check(content)
        if match is not None:
            counts["snip.decontaminated"] += 1
            counts[f"bench.{match.benchmark}"] += 1
            res.removed.append({"id": content_id(content), "lang": lang, "source": source, "kind": ex.kind,
                                "span": list(ex.span), **match.as_dict(), "content": content})
            return
        sig = self.minhasher.signature(content, lang) if self.minhasher is not None else None
        res.candidates.append(Candidate(content, lang, ex.kind, source, ex.span, exact_key(content), sig))


_WORKER: Worker | None = None


def _decode_document(data: bytes, res: "UnitResult") -> str | None:
    """UTF-8 text of a document, or None (counted as binary or invalid UTF-8)."""
    if filters_lib.is_binary(data):
        res.counts["doc.binary"] += 1
        return None
    text = filters_lib.decode_utf8(data)
    if text is None:
        res.counts["doc.invalid_utf8"] += 1
    return text


def _init_worker(config: PoolConfig, items: list) -> None:
    global _WORKER
    _WORKER = Worker(config, items)


def _work(unit: readers.Unit) -> UnitResult:
    assert _WORKER is not None
    return _WORKER.process(unit)


def n_workers(config: PoolConfig) -> int:
    if config.workers:
        return config.workers
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return os.cpu_count() or 1


def run_units(units: Iterable[readers.Unit], config: PoolConfig, items: list) -> Iterator[UnitResult]:
    """Unit results in the order of `units`, computed on `n_workers(config)` processes."""
    workers = n_workers(config)
    if workers == 1:
        worker = Worker(config, items)
        for unit in units:
            yield worker.process(unit)
        return
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    # spawn, not fork: safe when the parent holds threads (JAX, tokenizers). A dead worker
    # raises BrokenProcessPool here instead of hanging the build.
    if getattr(mp.current_process(), "_inheriting", False):
        # We are a worker being started and the caller's script runs build_pool at import
        # time: fail fast so the parent sees a dead worker instead of waiting forever.
        raise ScoderError("build_pool called while a worker process starts: guard the calling script "
                          "with `if __name__ == '__main__':`")
    ctx = mp.get_context("spawn")
    try:
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                 initargs=(config, items)) as pool:
            pending: collections.deque = collections.deque()
            for unit in units:
                pending.append(pool.submit(_work, unit))
                if len(pending) >= 4 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
    except BrokenProcessPool:
        raise ScoderError("a snippet worker process died (killed for memory, or the calling script runs "
                          "build_pool at import time: guard it with `if __name__ == '__main__':`); "
                          "rerun, or use workers=1 (--workers 1)") from None


def _progress(enabled: bool | None):
    from tqdm import tqdm

    disable = (not sys.stderr.isatty()) if enabled is None else not enabled
    return tqdm(desc="snippets", unit=" docs", disable=disable, file=sys.stderr, dynamic_ncols=True)


def build_pool(sources: list[str] | tuple[str, ...], out_dir: str | os.PathLike, config: PoolConfig = PoolConfig(),
               *, progress: bool | None = None) -> dict:
    """Builds the snippet pool of `sources` into `out_dir` (replaced atomically); returns the manifest.

    `progress`: a progress bar on stderr (None: when stderr is a terminal).
    """
    if not sources:
        raise ConfigError("no sources given: pass folders, .jsonl/.parquet files, or TFDS datasets")
    for src in sources:  # fail on a typo before the benchmarks are loaded
        if not str(src).startswith("tfds:") and not Path(src).exists():
            raise DataError(f"{src}: no such file or directory (a source is a folder, a .jsonl/.parquet file, "
                            "a code file, a TFDS dataset folder, or tfds:NAME[:SPLIT])")
    t0 = time.perf_counter()
    items = decontam_lib.load_benchmarks(config.benchmarks, config.mbpp_path)
    counts: collections.Counter = collections.Counter()
    problems: list[str] = []

    def note_problem(msg: str) -> None:
        if len(problems) < config.max_problems:
            problems.append(msg)
        log.warning(msg)

    # Problems the reader meets are noted after the unit they precede, so that their order in
    # the manifest does not depend on how far reading runs ahead of the workers.
    reader_msgs: list[str] = []
    msgs_before_unit: collections.deque = collections.deque()

    def report(key: str, msg: str) -> None:
        counts["doc.seen"] += 1
        counts[f"doc.{key}"] += 1
        reader_msgs.append(msg)

    def units() -> Iterator[readers.Unit]:
        for unit in readers.iter_units([str(s) for s in sources], config.read_options(), report):
            msgs_before_unit.append(reader_msgs[:])
            reader_msgs.clear()
            yield unit

    exact = ExactDedup() if config.exact_dedup else None
    near = NearDedup(config.jaccard, config.minhash_perm) if config.near_dedup else None
    preview: list[dict] = []
    out_dir = Path(out_dir)
    with atomic_path(out_dir, is_dir=True) as tmp:
        staging = tmp if config.format == "jsonl" else tmp / ".staging"
        staging.mkdir(exist_ok=True)
        (tmp / "removed").mkdir()
        writer = JsonlShardWriter(staging, config.shard_size)
        with open(tmp / "removed" / "decontaminated.jsonl", "w", encoding="utf-8") as removed_f, \
                _progress(progress) as bar:
            for res in run_units(units(), config, items):
                counts.update(res.counts)
                for msg in msgs_before_unit.popleft() + res.problems:
                    note_problem(msg)
                for rec in res.removed:
                    removed_f.write(json.dumps(rec, ensure_ascii=False) + "\n")
                for cand in res.candidates:
                    if exact is not None and exact.seen(cand.key):
                        counts["snip.exact_duplicate"] += 1
                        continue
                    if near is not None and near.seen(writer.count, cand.signature) is not None:
                        counts["snip.near_duplicate"] += 1
                        continue
                    rec = {"id": content_id(cand.content), "lang": cand.lang, "content": cand.content,
                           "source": cand.source, "kind": cand.kind, "n_lines": len(cand.content.splitlines()),
                           "span": list(cand.span)}
                    writer.write(rec)
                    counts["snip.kept"] += 1
                    counts[f"lang.{cand.lang}.kept"] += 1
                    counts[f"kind.{cand.kind}"] += 1
                    if len(preview) < config.preview:
                        preview.append({**rec, "content": rec["content"][:400]})
                bar.update(res.counts["doc.seen"])
                bar.set_postfix(kept=counts["snip.kept"], refresh=False)
            for msg in reader_msgs:
                note_problem(msg)
        files = writer.close()
        if writer.count == 0:  # raised inside the block: nothing is written, an old out_dir stays
            raise empty_pool_error(sources, counts, problems)
        output: dict = {"format": config.format, "snippets": writer.count}
        if config.format == "jsonl":
            output["files"] = files
        else:
            def staged() -> Iterator[dict]:
                for name in files:
                    yield from iter_jsonl(staging / name)

            version_dir = write_tfds(staged(), tmp / "tfds")
            shutil.rmtree(staging)
            output["tfds"] = {"data_dir": "tfds", "name": "snippet_pool", "split": "train",
                              "path": str(version_dir.relative_to(tmp))}
        manifest = _manifest(sources, config, counts, items, preview, problems, output)
        write_json_atomic(tmp / "manifest.json", manifest)
    log.info("snippet pool: %d snippets in %.1fs -> %s", writer.count, time.perf_counter() - t0, out_dir)
    return manifest


def empty_pool_error(sources, counts: collections.Counter, problems: list[str]) -> DataError:
    """The one-line error for sources that gave no snippet: what was found, and where it was lost."""
    where = ", ".join(str(s) for s in sources)
    seen, used = counts["doc.seen"], counts["doc.used"]
    if seen == 0:
        return DataError(f"{where}: no code found (an empty folder, or only files of no known language such as "
                         "READMEs and data): no snippet to build a pool from")
    if used == 0:
        why = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in _section(counts, "doc.").items()
                        if k not in ("seen", "used"))
        first = f"; first: {problems[0]}" if problems else ""
        return DataError(f"{where}: none of the {seen} document(s) could be used ({why}){first}")
    lost = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in _section(counts, "snip.").items()
                     if k not in ("kept", "extracted"))
    return DataError(f"{where}: 0 snippets kept of {counts['snip.extracted']} extracted from {used} document(s)"
                     f"{f' (dropped: {lost})' if lost else ''}; loosen the filters (--languages, --jaccard, --ngram) "
                     "or add sources")


def _section(counts: collections.Counter, prefix: str) -> dict[str, int]:
    return {k[len(prefix):]: v for k, v in sorted(counts.items()) if k.startswith(prefix)}


def _manifest(sources, config: PoolConfig, counts, items, preview, problems, output) -> dict:
    languages: dict[str, dict[str, int]] = {}
    for key, v in _section(counts, "lang.").items():
        lang, what = key.rsplit(".", 1)
        languages.setdefault(lang, {"documents": 0, "extracted": 0, "kept": 0})[what] = v
    benchmarks: dict[str, dict] = {}
    for item in items:
        b = benchmarks.setdefault(item.benchmark, {"items": 0, "removed": 0})
        b["items"] += 1
    for name, v in _section(counts, "bench.").items():
        benchmarks.setdefault(name, {"items": 0, "removed": 0})["removed"] = v
    whitelisted = decontam_lib.Decontaminator(items, ngram=0,
                                              min_substring_chars=config.min_substring_chars).whitelisted
    return {
        "version": MANIFEST_VERSION,
        "sources": [str(s) for s in sources],
        "config": {k: v for k, v in dataclasses.asdict(config).items() if k != "workers"},  # output-neutral
        "output": output,
        "documents": _section(counts, "doc."),
        "snippets": _section(counts, "snip."),
        "secrets": _section(counts, "secret."),
        "languages": dict(sorted(languages.items())),
        "kinds": _section(counts, "kind."),
        "decontamination": {"benchmarks": benchmarks,
                            "whitelisted_trivial": [f"{b} {i}: {t}" for b, i, t in whitelisted],
                            "removed_file": "removed/decontaminated.jsonl"},
        "problems": problems,
        "problems_total": sum(v for k, v in counts.items() if k in
                              ("doc.unreadable", "doc.malformed", "doc.invalid_utf8", "doc.unknown_language")),
        "preview": preview,
    }
