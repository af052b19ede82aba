"""Snippet extraction: Python units through `ast`, and OSS-Instruct windows for every language.

- `python_units`: module-level functions, classes and the methods of module-level classes, each
  with its decorators, dedented, within the line bounds (a class too long to keep whole still
  yields its methods).
- `windows`: OSS-Instruct's seed snippets, a run of 1 to 15 consecutive lines at a random place
  of the document; the generator is seeded per document so the same seed gives the same windows
  whatever process extracts them.
"""

from __future__ import annotations

import ast
import random
import textwrap
import warnings
from dataclasses import dataclass


@dataclass(frozen=True)
class Extracted:
    content: str
    kind: str          # "function" | "class" | "method" | "window"
    span: tuple[int, int]  # first and last line in the document, 1-based
    name: str = ""     # qualified name for ast units ("Class.method")


def parse_python(text: str) -> ast.Module | None:
    """The module's tree, or None when it does not parse (Python 2, templates, fragments)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarning for invalid escapes in old code
            return ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _node_lines(node: ast.AST) -> tuple[int, int]:
    start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    return start, node.end_lineno or node.lineno


def python_units(tree: ast.Module, lines: list[str], *, min_lines: int, max_lines: int) -> list[Extracted]:
    """Functions, classes and methods of a parsed module, in source order."""
    out: list[Extracted] = []

    def take(node: ast.AST, kind: str, name: str) -> bool:
        start, end = _node_lines(node)
        n = end - start + 1
        if n < min_lines or n > max_lines:
            return False
        text = textwrap.dedent("".join(lines[start - 1:end])).rstrip() + "\n"
        out.append(Extracted(text, kind, (start, end), name))
        return True

    funcs = (ast.FunctionDef, ast.AsyncFunctionDef)
    for node in tree.body:
        if isinstance(node, funcs):
            take(node, "function", node.name)
        elif isinstance(node, ast.ClassDef):
            take(node, "class", node.name)
            for child in node.body:
                if isinstance(child, funcs):
                    take(child, "method", f"{node.name}.{child.name}")
    return out


def windows(lines: list[str], rng: random.Random, *, count: int, min_lines: int = 1,
            max_lines: int = 15) -> list[Extracted]:
    """`count` windows of `min_lines`..`max_lines` consecutive lines, drawn with `rng`.

    Windows start on a non-blank line; duplicate spans in one document are drawn once.
    """
    n = len(lines)
    if n == 0 or count <= 0:
        return []
    starts = [i for i, line in enumerate(lines) if line.strip()]
    if not starts:
        return []
    out: list[Extracted] = []
    seen: set[tuple[int, int]] = set()
    for _ in range(count):
        size = rng.randint(min_lines, max_lines)
        start = rng.choice(starts)
        end = min(n, start + size)
        if (start, end) in seen:
            continue
        seen.add((start, end))
        text = textwrap.dedent("".join(lines[start:end])).strip("\n") + "\n"
        out.append(Extracted(text, "window", (start + 1, end)))
    return out


def document_rng(seed: int, source: str) -> random.Random:
    """A generator for one document: the same (seed, source) always gives the same draws."""
    return random.Random(f"{seed}\x00{source}")
