"""The final instruction dataset in the fields OSS-Instruct users expect, as JSONL and Parquet.

Columns: problem, solution, tests, snippet, lang, id, snippet_id, iteration, checkpoint,
scores (per aspect), score (total), influence. `datasets.load_dataset("json"|"parquet", ...)`
reads either file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from scoder_jax.io import atomic_path, write_json_atomic, write_jsonl_atomic

COLUMNS = ("id", "problem", "solution", "tests", "snippet", "snippet_id", "lang", "iteration", "checkpoint",
           "score", "scores", "influence")


def export_row(rec: dict, iteration: int | None = None) -> dict:
    meta = rec.get("meta", {}) or {}
    score = meta.get("score")
    scores = (score.get("scores") if isinstance(score, dict) else meta.get("scores")) or {}
    total = score.get("total") if isinstance(score, dict) else score
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
        "score": total,
        "scores": {str(k): float(v) for k, v in scores.items()} if isinstance(scores, dict) else {},
        "influence": meta.get("influence"),
    }


def export_dataset(records: Iterable[dict], out_dir: str | Path, *, iteration: int | None = None) -> dict:
    """Writes dataset.jsonl and dataset.parquet (atomically) into out_dir; returns counts."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [export_row(r, iteration) for r in records]
    out_dir = Path(out_dir)
    n = write_jsonl_atomic(out_dir / "dataset.jsonl", rows)
    schema = pa.schema([
        ("id", pa.string()), ("problem", pa.string()), ("solution", pa.string()), ("tests", pa.string()),
        ("snippet", pa.string()), ("snippet_id", pa.string()), ("lang", pa.string()), ("iteration", pa.int64()),
        ("checkpoint", pa.string()), ("score", pa.float64()), ("scores", pa.map_(pa.string(), pa.float64())),
        ("influence", pa.float64()),
    ])
    table = pa.Table.from_pylist([{**r, "scores": list(r["scores"].items())} for r in rows], schema=schema)
    with atomic_path(out_dir / "dataset.parquet") as tmp:
        pq.write_table(table, tmp)
    write_json_atomic(out_dir / "summary.json", {"rows": n, "columns": list(COLUMNS)})
    return {"rows": n}
