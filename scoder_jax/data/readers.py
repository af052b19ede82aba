"""Readers for code corpora: directory trees, JSONL and Parquet exports, compressed files, TFDS.

A corpus is read as a deterministic stream of *work units*, each small enough to ship to a
worker process:

- `FilesUnit`: a batch of source files of a tree; the worker reads and decodes them itself, so
  disk reads and decoding run on all cores.
- `RecordsUnit`: a batch of `(source, lang, content)` records read here from a JSONL, Parquet or
  TFDS file (the layout of The Stack and starcoderdata exports: one `content` field per row).

Problems the user should hear about but that must not stop a long build (a malformed JSONL
line, a record without `content`) are passed to `report(counter_key, "file:line: message")`.
"""

from __future__ import annotations

import fnmatch
import gzip
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from scoder_jax.errors import DataError

# Languages by file extension (lower-case, without the dot).
EXT_LANG: dict[str, str] = {
    "py": "python", "pyw": "python", "pyi": "python",
    "js": "javascript", "mjs": "javascript", "cjs": "javascript", "jsx": "javascript",
    "ts": "typescript", "tsx": "typescript", "mts": "typescript", "cts": "typescript",
    "java": "java",
    "c": "c", "h": "c",
    "cc": "cpp", "cpp": "cpp", "cxx": "cpp", "c++": "cpp", "hpp": "cpp", "hh": "cpp", "hxx": "cpp", "ipp": "cpp",
    "go": "go",
    "rs": "rust",
    "sh": "shell", "bash": "shell", "zsh": "shell", "ksh": "shell",
    "rb": "ruby", "php": "php", "cs": "csharp", "kt": "kotlin", "kts": "kotlin", "swift": "swift",
    "scala": "scala", "lua": "lua", "r": "r", "pl": "perl", "pm": "perl", "hs": "haskell",
    "jl": "julia", "dart": "dart", "sql": "sql", "m": "objective-c", "mm": "objective-c",
    "ex": "elixir", "exs": "elixir", "erl": "erlang", "clj": "clojure", "fs": "fsharp", "ml": "ocaml",
    "zig": "zig", "nim": "nim", "v": "verilog", "sv": "verilog", "vhd": "vhdl", "f90": "fortran",
    "ps1": "powershell", "groovy": "groovy", "elm": "elm", "cmake": "cmake",
}
# Whole file names that carry a language.
NAME_LANG: dict[str, str] = {"makefile": "makefile", "dockerfile": "dockerfile", "cmakelists.txt": "cmake"}
# Language names as corpora spell them (The Stack's `lang`, starcoderdata folders) -> ours.
LANG_ALIASES: dict[str, str] = {
    "c++": "cpp", "c#": "csharp", "cs": "csharp", "js": "javascript", "ts": "typescript", "py": "python",
    "python3": "python", "bash": "shell", "sh": "shell", "shell": "shell", "golang": "go", "rs": "rust",
    "objective-c++": "objective-c", "f#": "fsharp", "jupyter-scripts-python": "python",
}
RECORD_SUFFIXES = (".jsonl", ".ndjson", ".parquet")
COMPRESSED = (".gz", ".zst")
DEFAULT_EXCLUDE = (".git", ".hg", ".svn", "__pycache__", "node_modules", "site-packages", "dist-packages",
                   ".venv", ".tox", ".mypy_cache", ".pytest_cache")
# Fields that name a record's path or language in common exports.
PATH_FIELDS = ("path", "max_stars_repo_path", "file_path", "filepath", "filename", "repo_path")
LANG_FIELDS = ("lang", "language", "programming_language")

Reporter = Callable[[str, str], None]


def normalize_lang(name: str | None) -> str | None:
    """A corpus' language name in our spelling ("C++" -> "cpp"); None stays None."""
    if not name:
        return None
    key = str(name).strip().lower()
    return LANG_ALIASES.get(key, EXT_LANG.get(key, key.replace(" ", "-")))


def strip_compression(name: str) -> tuple[str, str | None]:
    """("x.jsonl.gz") -> ("x.jsonl", "gz")."""
    for suf in COMPRESSED:
        if name.endswith(suf):
            return name[: -len(suf)], suf[1:]
    return name, None


def language_for_path(path: str) -> str | None:
    """The language of a file from its name or extension (compression suffixes ignored)."""
    name, _ = strip_compression(os.path.basename(path).lower())
    if name in NAME_LANG:
        return NAME_LANG[name]
    if "." not in name:
        return None
    return EXT_LANG.get(name.rsplit(".", 1)[1])


def is_record_file(path: str) -> bool:
    name, _ = strip_compression(os.path.basename(path).lower())
    return name.endswith(RECORD_SUFFIXES)


def decompress(data: bytes, compression: str | None) -> bytes:
    if compression == "gz":
        return gzip.decompress(data)
    if compression == "zst":
        import zstandard

        with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)) as r:
            return r.read()
    return data


def open_binary(path: Path):
    """A binary stream of the file, decompressed on the fly for .gz and .zst."""
    _, comp = strip_compression(path.name)
    if comp == "gz":
        return gzip.open(path, "rb")
    if comp == "zst":
        import zstandard

        return io.BufferedReader(zstandard.open(path, "rb"))  # buffered: line iteration
    return open(path, "rb")


@dataclass(frozen=True)
class FileRef:
    path: str      # where to read it
    source: str    # how records name it (the path as the user gave the root, joined)
    lang: str


@dataclass(frozen=True)
class FilesUnit:
    files: tuple[FileRef, ...]


@dataclass(frozen=True)
class Record:
    source: str           # "file:line" or "dataset[index]"
    lang: str | None
    content: str | bytes  # bytes when the reader could not decode it (checked by the worker)
    path: str | None = None


@dataclass(frozen=True)
class RecordsUnit:
    records: tuple[Record, ...]


Unit = FilesUnit | RecordsUnit


@dataclass(frozen=True)
class ReadOptions:
    lang: str | None = None                 # force a language for record sources without one
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE  # names or globs of files/folders to skip in trees
    files_per_unit: int = 16
    records_per_unit: int = 256
    content_field: str = "content"
    tfds_split: str = "train"


def iter_units(sources: list[str], opts: ReadOptions, report: Reporter) -> Iterator[Unit]:
    """Work units of all sources, in a deterministic order (sources as given, trees sorted)."""
    for src in sources:
        yield from _source_units(str(src), opts, report)


def _source_units(src: str, opts: ReadOptions, report: Reporter) -> Iterator[Unit]:
    if src.startswith("tfds:"):
        yield from _batched_records(_tfds_records(src[5:], None, opts), opts.records_per_unit)
        return
    path = Path(src)
    if not path.exists():
        raise DataError(f"{src}: no such file or directory (a source is a folder, a .jsonl/.parquet file, "
                        "a code file, a TFDS dataset folder, or tfds:NAME[:SPLIT])")
    if path.is_dir() and (path / "dataset_info.json").exists():
        yield from _batched_records(_tfds_records(None, path, opts), opts.records_per_unit)
    elif path.is_dir():
        yield from _tree_units(path, src, opts, report)
    elif is_record_file(src):
        yield from _batched_records(_record_file(path, src, opts, report), opts.records_per_unit)
    else:
        lang = opts.lang or language_for_path(src)
        if lang is None:
            report("unknown_language", f"{src}: no language for this file name (pass --lang)")
            return
        yield FilesUnit((FileRef(str(path), src, lang),))


def _excluded(name: str, patterns: tuple[str, ...]) -> bool:
    return any(name == p or fnmatch.fnmatchcase(name, p) for p in patterns)


def _tree_units(root: Path, shown: str, opts: ReadOptions, report: Reporter) -> Iterator[Unit]:
    batch: list[FileRef] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=lambda e: report(
            "unreadable", f"{e.filename}: cannot list folder ({e.strerror})")):
        dirnames[:] = sorted(d for d in dirnames if not _excluded(d, opts.exclude))
        rel_dir = os.path.relpath(dirpath, root)
        for name in sorted(filenames):
            if _excluded(name, opts.exclude):
                continue
            full = os.path.join(dirpath, name)
            rel = name if rel_dir == "." else os.path.join(rel_dir, name)
            source = os.path.join(shown, rel)
            if is_record_file(name):
                if batch:
                    yield FilesUnit(tuple(batch))
                    batch = []
                yield from _batched_records(_record_file(Path(full), source, opts, report), opts.records_per_unit)
                continue
            lang = language_for_path(name)
            if lang is None:
                continue  # not code (README, images, data): not counted as a problem
            batch.append(FileRef(full, source, lang))
            if len(batch) >= opts.files_per_unit:
                yield FilesUnit(tuple(batch))
                batch = []
    if batch:
        yield FilesUnit(tuple(batch))


def _batched_records(records: Iterator[Record], size: int) -> Iterator[RecordsUnit]:
    batch: list[Record] = []
    for rec in records:
        batch.append(rec)
        if len(batch) >= size:
            yield RecordsUnit(tuple(batch))
            batch = []
    if batch:
        yield RecordsUnit(tuple(batch))


def _record_lang(rec: dict, opts: ReadOptions, path_value: str | None) -> str | None:
    if opts.lang:
        return normalize_lang(opts.lang)
    for key in LANG_FIELDS:
        value = rec.get(key)
        if isinstance(value, str) and value:
            return normalize_lang(value)
    if path_value:
        return language_for_path(path_value)
    return None


def _record_path(rec: dict) -> str | None:
    for key in PATH_FIELDS:
        value = rec.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _record_file(path: Path, shown: str, opts: ReadOptions, report: Reporter) -> Iterator[Record]:
    name, _ = strip_compression(path.name.lower())
    try:
        if name.endswith(".parquet"):
            yield from _parquet_records(path, shown, opts, report)
        else:
            yield from _jsonl_records(path, shown, opts, report)
    except OSError as e:
        report("unreadable", f"{shown}: cannot read ({e.strerror or e})")
    except EOFError as e:  # truncated gzip
        report("unreadable", f"{shown}: truncated compressed file ({e})")


def _jsonl_records(path: Path, shown: str, opts: ReadOptions, report: Reporter) -> Iterator[Record]:
    field = opts.content_field
    with open_binary(path) as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            where = f"{shown}:{lineno}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                report("invalid_utf8", f"{where}: not UTF-8 ({e.reason} at byte {e.start})")
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                report("malformed", f"{where}: malformed JSON ({e.msg} at column {e.colno})")
                continue
            if not isinstance(rec, dict):
                report("malformed", f"{where}: expected a JSON object, got {type(rec).__name__}")
                continue
            content = rec.get(field)
            if not isinstance(content, str):
                report("malformed", f"{where}: missing or non-string field '{field}'")
                continue
            rpath = _record_path(rec)
            yield Record(where, _record_lang(rec, opts, rpath), content, rpath)


def _parquet_records(path: Path, shown: str, opts: ReadOptions, report: Reporter) -> Iterator[Record]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as e:
        report("unreadable", f"{shown}: not a readable Parquet file ({e})")
        return
    names = set(pf.schema_arrow.names)
    field = opts.content_field
    if field not in names:
        report("malformed", f"{shown}: Parquet file has no '{field}' column (columns: {sorted(names)[:8]})")
        return
    columns = [field] + [c for c in LANG_FIELDS + PATH_FIELDS if c in names]
    row = 0
    try:
        for batch in pf.iter_batches(batch_size=max(64, opts.records_per_unit), columns=columns):
            cols = {name: batch.column(i).to_pylist() for i, name in enumerate(batch.schema.names)}
            for i in range(batch.num_rows):
                rec = {k: v[i] for k, v in cols.items()}
                where = f"{shown}[{row}]"
                row += 1
                content = rec.get(field)
                if isinstance(content, bytes):
                    pass  # a binary column: the worker decodes and counts invalid UTF-8
                elif not isinstance(content, str):
                    report("malformed", f"{where}: null or non-string '{field}'")
                    continue
                rpath = _record_path(rec)
                yield Record(where, _record_lang(rec, opts, rpath), content, rpath)
    except (pa.ArrowException, OSError) as e:
        report("unreadable", f"{shown}: Parquet read failed at row {row} ({e})")


def _tfds_records(spec: str | None, folder: Path | None, opts: ReadOptions) -> Iterator[Record]:
    """Records of a TFDS dataset stored as ArrayRecord, read without TensorFlow.

    `spec` is "NAME[/CONFIG][:SPLIT]" (looked up under $TFDS_DATA_DIR or ~/tensorflow_datasets),
    `folder` a prepared dataset's version folder (the one holding dataset_info.json).
    """
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise DataError("reading TFDS datasets needs tensorflow-datasets and array_record: "
                        "pip install tensorflow-datasets array_record") from None
    split = opts.tfds_split
    try:
        if folder is not None:
            shown = str(folder)
            builder = tfds.builder_from_directory(str(folder))
        else:
            name = spec or ""
            if ":" in name:
                name, split = name.rsplit(":", 1)
            shown = f"tfds:{name}"
            builder = tfds.builder(name, data_dir=os.environ.get("TFDS_DATA_DIR"))
        source = builder.as_data_source(split=split)
    except Exception as e:  # tfds raises many kinds; the user needs the one line
        raise DataError(f"{shown}: cannot open as a TFDS data source (split '{split}'): {e}. "
                        "Only datasets prepared with file_format='array_record' can be read "
                        "without TensorFlow") from None
    field = opts.content_field
    features = set(builder.info.features.keys()) if builder.info.features else set()
    if field not in features:
        raise DataError(f"{shown}: TFDS dataset has no '{field}' feature (features: {sorted(features)})")
    for i in range(len(source)):
        ex = source[i]
        content = ex[field]
        rpath = ex.get("source") if isinstance(ex.get("source"), (str, bytes)) else None
        if isinstance(rpath, bytes):
            rpath = rpath.decode("utf-8", "replace")
        lang = opts.lang
        if not lang and "lang" in ex:
            raw = ex["lang"]
            lang = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        if not lang and rpath:
            lang = language_for_path(rpath)
        yield Record(f"{shown}[{split}][{i}]", normalize_lang(lang), content, rpath)
