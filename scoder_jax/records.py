"""The record shapes that flow between stages (one JSON object per JSONL line).

Snippet (the pool, `pool/*.jsonl`):
    id          str   stable content hash ("sn-" + 16 hex), the same for the same text
    lang        str   "python", "javascript", ...
    content     str   the code
    source      str   where it came from (file path, dataset name)
    kind        str   "function" | "class" | "method" | "window" | "file"
    n_lines     int

Sample (seed set, candidates, selected data, the final set):
    id          str   unique per sample
    snippet_id  str   the snippet it was made from
    snippet     str
    lang        str
    problem     str   self-contained problem statement
    solution    str   code
    tests       str   code with asserts that exercise `solution`
    origin      str   "teacher" | "import" | "bundled" | "synth"
    meta        dict  stage-specific extras (checkpoint, sample_index, seed, scores, influence, ...)
"""

from __future__ import annotations

import hashlib

SNIPPET_FIELDS = ("id", "lang", "content", "source", "kind", "n_lines")
SAMPLE_FIELDS = ("id", "snippet_id", "snippet", "lang", "problem", "solution", "tests", "origin", "meta")


def content_id(text: str, prefix: str = "sn") -> str:
    """A stable id for a piece of text: prefix + the first 16 hex digits of its sha256."""
    return f"{prefix}-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:16]}"
