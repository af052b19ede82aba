"""`scoder compare RESULTS_OR_RUN_DIRS...`: the table a paper prints, from results.json files.

Each argument is a results.json, a directory holding one, or a directory searched for them
(a run directory: every eval stage's results; a `scoder student` folder: its student's). Rows
are models (or samples files), columns benchmarks, cells pass@k x 100 with one decimal:

    | model        | HumanEval | HumanEval+ | MBPP | MBPP+ | LCB (2024-08-01..) |
    | demo/final   |      62.2 |       56.1 | 70.9 |  60.3 |               15.4 |

HumanEval+/MBPP+ results fill both their base column (EvalPlus's base tests, which the papers
report as HumanEval/MBPP) and their plus column; a humaneval/mbpp result (original tests)
fills the base column when the row has no EvalPlus result for it. LiveCodeBench columns are
per date window (the window is part of the number). `--html FILE` writes the same table.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Iterable

import click

from scoder_jax.errors import DataError, ScoderError
from scoder_jax.eval.results import RESULTS_NAME, read_results
from scoder_jax.io import write_text_atomic

BASE_LABEL = {"humaneval": "HumanEval", "humaneval+": "HumanEval", "mbpp": "MBPP", "mbpp+": "MBPP"}
PLUS_LABEL = {"humaneval+": "HumanEval+", "mbpp+": "MBPP+"}
ORDER = ["HumanEval", "HumanEval+", "MBPP", "MBPP+"]


def find_results(paths: Iterable[str | Path]) -> list[Path]:
    """results.json files named by `paths` (files, or directories searched recursively), in order."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_file():
            found.append(p)
        elif p.is_dir():
            hits = sorted(p.rglob(RESULTS_NAME))
            if not hits:
                raise DataError(f"{p}: no {RESULTS_NAME} in it (run `scoder eval` or `scoder iterate` first)")
            found.extend(hits)
        else:
            raise DataError(f"{p}: no such file or directory")
    return found


def _is_student_dir(folder: Path) -> bool:
    """Whether `folder` is a `scoder student` output folder (its summary.json says so)."""
    try:
        return json.loads((folder / "summary.json").read_text(encoding="utf-8")).get("command") == "scoder student"
    except (OSError, ValueError, AttributeError):
        return False


def row_label(path: Path, rec: dict) -> str:
    """The row a result belongs to: <run>/<stage dir> inside a run directory, <out dir> inside a
    `scoder student` folder, else its model or samples."""
    for parent in path.parents:
        if _is_student_dir(parent):
            return parent.resolve().name
        if (parent / "manifest.json").is_file():
            rel = path.parent.relative_to(parent).parts
            stage = rel[0] if rel else "."
            return f"{parent.name}/{stage}"
    return str(rec.get("model") or rec.get("samples") or path.parent)


def lcb_label(rec: dict) -> str:
    w = rec.get("window") or {}
    since, until = w.get("since"), w.get("until")
    return f"LCB ({since or ''}..{until or ''})" if (since or until) else "LCB"


def build_table(paths: Iterable[str | Path], k: int = 1) -> tuple[list[str], list[tuple[str, dict[str, float]]]]:
    """(columns, [(row label, {column: pass@k x 100})]) from the results files."""
    key = f"pass@{k}"
    rows: dict[str, dict[str, float]] = {}
    from_plus: dict[str, set[str]] = {}
    columns: list[str] = []
    for path in find_results(paths):
        rec = read_results(path)
        row = rows.setdefault(row_label(path, rec), {})
        plus_cols = from_plus.setdefault(row_label(path, rec), set())
        bench = rec["benchmark"]
        scores = rec["pass_at_k"]
        cells: dict[str, float | None] = {}
        if bench == "livecodebench":
            cells[lcb_label(rec)] = (scores.get("base") or {}).get(key)
        elif bench in PLUS_LABEL:
            cells[BASE_LABEL[bench]] = (scores.get("base") or {}).get(key)
            cells[PLUS_LABEL[bench]] = (scores.get("plus") or {}).get(key)
        else:
            label = BASE_LABEL.get(bench, bench)
            if label in plus_cols:
                continue  # EvalPlus's base tests already fill it
            cells[label] = (scores.get("base") or {}).get(key)
        for col, v in cells.items():
            if v is None:
                continue
            row[col] = 100.0 * float(v)
            if bench in PLUS_LABEL:
                plus_cols.add(col)
            if col not in columns:
                columns.append(col)
    if not any(rows.values()):
        raise ScoderError(f"no {key} in the results given (pass --k with a k every result has)")
    columns.sort(key=lambda c: (ORDER.index(c) if c in ORDER else len(ORDER), c))
    return columns, list(rows.items())


def format_text(columns: list[str], rows: list[tuple[str, dict[str, float]]]) -> str:
    head = ["model", *columns]
    body = [[label, *(f"{r[c]:.1f}" if c in r else "-" for c in columns)] for label, r in rows]
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]

    def line(cells):
        return "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(head), sep, *(line(b) for b in body)])


def format_html(columns: list[str], rows: list[tuple[str, dict[str, float]]], k: int) -> str:
    th = "".join(f"<th>{html.escape(c)}</th>" for c in ["model", *columns])
    trs = "".join("<tr><td>" + html.escape(label) + "</td>"
                  + "".join(f"<td align=right>{r[c]:.1f}</td>" if c in r else "<td align=right>-</td>" for c in columns)
                  + "</tr>" for label, r in rows)
    return (f"<!doctype html><meta charset=utf-8><title>pass@{k}</title><table border=1 cellpadding=4>"
            f"<caption>pass@{k} (%)</caption><tr>{th}</tr>{trs}</table>\n")


@click.command("compare")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--k", "k", type=click.IntRange(min=1), default=1, show_default=True, help="Which pass@k to tabulate.")
@click.option("--html", "html_file", type=click.Path(dir_okay=False), default=None,
              help="Also write the table as HTML.")
def compare(paths, k, html_file):
    """Print pass@k of several evaluations (results.json files, eval dirs or run dirs) as one table."""
    columns, rows = build_table(paths, k)
    click.echo(format_text(columns, rows))
    if html_file:
        write_text_atomic(html_file, format_html(columns, rows, k))
