"""The tolerant parser of synthesis replies: `parse_response` reads [Problem] / [Solution] /
[Tests] back from a teacher's or a candidate's reply in a sample format, `extract_code` and
`split_embedded_tests` pull code out of a section, `tally` counts the rejection reasons
(`prompts.REASONS`). The prompt it parses, the formats and the language table are in
`scoder_jax.synth.prompts` (its docstring lists the variants tolerated).
"""

from __future__ import annotations

import ast
import dataclasses
import re
import warnings
from collections import Counter
from typing import Iterable

from scoder_jax.synth.prompts import _NEUTRAL_TAGS, DEFAULT_FORMAT, REASONS, Language, has_tests, is_python, language


@dataclasses.dataclass(frozen=True)
class ParseResult:
    ok: bool
    problem: str = ""
    solution: str = ""
    tests: str = ""
    reason: str = ""  # "" when ok, else one of REASONS
    detail: str = ""  # a short human-readable note on the rejection
    tests_cut: bool = False  # the reply was cut off inside [Tests]; its whole statements were kept

    @classmethod
    def reject(cls, reason: str, detail: str = "") -> "ParseResult":
        assert reason in REASONS, reason
        return cls(ok=False, reason=reason, detail=detail)


def tally(results: Iterable[ParseResult]) -> Counter:
    """Counts results by outcome: "ok" or the rejection reason."""
    return Counter("ok" if r.ok else r.reason for r in results)


_SECTION_NAMES = {
    "problem": ("problem description", "problem statement", "problem", "task description", "task",
                "question", "instruction"),
    "solution": ("reference solution", "solution code", "solution", "answer", "implementation"),
    "tests": ("unit tests", "unit test", "test cases", "test case", "test code", "tests", "test", "testing"),
}
_NAME_TO_SECTION = {n: s for s, names in _SECTION_NAMES.items() for n in names}
_NAMES_RE = "|".join(sorted((re.escape(n).replace(r"\ ", r"\s+") for n in _NAME_TO_SECTION), key=len, reverse=True))
_HEADER_RE = re.compile(
    r"^[ \t]{0,3}(?:(?P<hash>\#{1,6})[ \t]*)?(?:\d{1,2}[.)][ \t]*)?(?P<pre>\*\*|__|\*)?[ \t]*(?P<lb>\[)?[ \t]*"
    rf"(?P<name>{_NAMES_RE})(?![\w-])[ \t]*(?P<rb>\])?[ \t]*(?P<c1>:)?[ \t]*(?P<post>\*\*|__|\*)?"
    r"[ \t]*(?P<c2>:)?[ \t]*(?P<rest>.*?)[ \t]*$",
    re.IGNORECASE,
)
_FENCE_RE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*?)[ \t]*$")
_RULE_RE = re.compile(r"^[ \t]*(?:-{3,}|\*{3,}|_{3,}|={3,})[ \t]*$")
_STYLE_BRACKET, _STYLE_MARKDOWN, _STYLE_PLAIN = 3, 2, 1


@dataclasses.dataclass
class _Header:
    line: int
    section: str
    style: int
    rest: str


def _match_header(line: str) -> _Header | None:
    m = _HEADER_RE.match(line)
    if not m:
        return None
    if bool(m["lb"]) != bool(m["rb"]) or bool(m["pre"]) != bool(m["post"]):
        return None
    colon = bool(m["c1"] or m["c2"])
    if m["lb"]:
        style = _STYLE_BRACKET
    elif m["hash"] or m["pre"]:
        style = _STYLE_MARKDOWN
    else:
        style = _STYLE_PLAIN
    rest = m["rest"]
    if rest and style == _STYLE_PLAIN and not colon:
        return None  # "Problem solving is ..." is a sentence, not a header
    name = " ".join(m["name"].lower().split())
    return _Header(line=-1, section=_NAME_TO_SECTION[name], style=style, rest=rest)


@dataclasses.dataclass
class _Block:
    tag: str
    code: str
    closed: bool


def _scan(lines: list[str]) -> tuple[list[bool], list[_Block]]:
    """Marks which lines are inside (or are) code fences, and returns the fenced blocks."""
    inside = [False] * len(lines)
    blocks: list[_Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE_RE.match(lines[i])
        if not m:
            i += 1
            continue
        fence = m["fence"]
        info = m["info"].strip()
        if fence[0] == "`" and "`" in info:
            i += 1
            continue
        tag = info.split()[0].lower().strip("{}.") if info else ""
        indent = len(m["indent"].expandtabs(4))
        body: list[str] = []
        inside[i] = True
        j = i + 1
        closed = False
        while j < len(lines):
            inside[j] = True
            c = _FENCE_RE.match(lines[j])
            if c and c["fence"][0] == fence[0] and len(c["fence"]) >= len(fence) and not c["info"].strip():
                closed = True
                break
            body.append(lines[j])
            j += 1
        if indent:
            body = [ln[indent:] if ln[:indent].strip() == "" else ln.lstrip() for ln in body]
        blocks.append(_Block(tag=tag, code="\n".join(body).strip("\n"), closed=closed))
        i = j + 1
    return inside, blocks


def _sections(text: str) -> tuple[dict[str, str], bool]:
    """Splits a reply into its sections; returns ({section: raw text}, truncated)."""
    lines = text.splitlines()
    inside, blocks = _scan(lines)
    truncated = any(not b.closed for b in blocks)
    headers: list[_Header] = []
    for i, line in enumerate(lines):
        if inside[i]:
            continue
        h = _match_header(line)
        if h is not None:
            h.line = i
            headers.append(h)
    # Prefer the strongest header style that names at least two sections (the format asks
    # for brackets), completed by weaker headers only for the sections it does not name;
    # otherwise use every header found.
    chosen = headers
    for style in (_STYLE_BRACKET, _STYLE_MARKDOWN):
        strong = [h for h in headers if h.style >= style]
        named = {h.section for h in strong}
        if len(named) >= 2:
            chosen = [h for h in headers if h.style >= style or h.section not in named]
            break
    sections: dict[str, str] = {}
    current: _Header | None = None
    starts: list[_Header] = []
    for h in chosen:
        if current is not None and h.section == current.section:
            continue  # a repeated header inside its own section is content
        if h.section in sections or any(s.section == h.section for s in starts):
            continue  # the first occurrence of a section wins
        starts.append(h)
        current = h
    for k, h in enumerate(starts):
        end = starts[k + 1].line if k + 1 < len(starts) else len(lines)
        body = lines[h.line + 1 : end]
        if h.rest:
            body = [h.rest, *body]
        sections[h.section] = "\n".join(body)
    return sections, truncated


def _clean_prose(text: str) -> str:
    lines = text.strip("\n").splitlines()
    while lines and (not lines[-1].strip() or _RULE_RE.match(lines[-1])):
        lines.pop()
    while lines and (not lines[0].strip() or _RULE_RE.match(lines[0])):
        lines.pop(0)
    return "\n".join(lines).strip()


def _tag_matches(tag: str, lang: Language) -> bool:
    if tag in _NEUTRAL_TAGS or not lang.aliases:
        return True
    return tag in lang.aliases


def _py_tree(code: str) -> ast.Module | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarning on odd escapes
            return ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _py_is_code(tree: ast.Module) -> bool:
    """True if the module does something: not only bare names, constants or docstrings."""
    for stmt in tree.body:
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, (ast.Constant, ast.Name, ast.Attribute)):
            continue
        return True
    return False


_CODEY_RE = re.compile(r"[;{}()\[\]=<>]|^\s*(?:#|//|--)")


def _looks_like_code(text: str) -> bool:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return False
    codey = sum(1 for ln in lines if _CODEY_RE.search(ln))
    return codey * 2 >= len(lines)


def _unfenced_python(text: str) -> str | None:
    """The longest run of whole paragraphs of `text` that parses as Python code, if any."""
    lines = text.splitlines()
    starts = [0] + [i + 1 for i, ln in enumerate(lines) if not ln.strip() and i + 1 < len(lines)]
    ends = [i for i, ln in enumerate(lines) if not ln.strip()] + [len(lines)]
    spans = sorted(((s, e) for s in starts for e in ends if e > s), key=lambda se: se[0] - se[1])
    for s, e in spans[:200]:
        chunk = "\n".join(lines[s:e]).strip("\n")
        if not chunk.strip():
            continue
        tree = _py_tree(chunk)
        if tree is not None and _py_is_code(tree):
            return chunk
    return None


def _extract_code(section: str, lang: Language) -> tuple[str, str]:
    """The code of a section: (code, "") or ("", reason-suffix) with suffix in
    {"empty", "wrong_language", "not_code", "syntax_error"}."""
    lines = section.splitlines()
    _, fenced = _scan(lines)
    blocks = [b for b in fenced if b.code.strip()]
    if fenced and not blocks:
        return "", "empty"
    python = lang.tag == "python"
    if blocks:
        matching = [b for b in blocks if _tag_matches(b.tag, lang)]
        if not matching:
            return "", "wrong_language"
        code = "\n\n".join(b.code for b in matching).strip("\n")
        if python and _py_tree(code) is None:
            # A later block may be output or a shell session; keep the first block if it parses.
            first = matching[0].code
            if len(matching) > 1 and _py_tree(first) is not None:
                return first, ""
            return "", "syntax_error"
        return code, ""
    text = _clean_prose(section)
    if not text:
        return "", "empty"
    if python:
        code = _unfenced_python(text)
        if code is None:
            return "", ("not_code" if not _looks_like_code(text) else "syntax_error")
        return code, ""
    if not _looks_like_code(text):
        return "", "not_code"
    return text, ""


def extract_code(text: str, lang: str) -> tuple[str, str]:
    """The code in a piece of markdown (fenced blocks in `lang`, or unfenced code among prose).

    Returns (code, "") or ("", why) with why in {"empty", "wrong_language", "not_code",
    "syntax_error"} (the last for Python only).
    """
    return _extract_code(text, language(lang))


_TESTS_COMMENT_RE = re.compile(
    r"^(?:#+|//+|--)[ \t]*(?:unit[ \t]+|example[ \t]+|simple[ \t]+|some[ \t]+)?"
    r"test(?:s|ing|[ \t]+cases?|[ \t]+code)?\b[^\n]*$",
    re.IGNORECASE | re.MULTILINE,
)


def split_embedded_tests(code: str, lang: str) -> tuple[str, str]:
    """Splits tests out of a solution: after a column-0 `# Tests` (`// Tests`) comment line, or
    (Python) a trailing run of top-level `assert` statements. Returns (solution, tests); tests
    is "" when none are found."""
    m = _TESTS_COMMENT_RE.search(code)
    if m and code[: m.start()].strip():
        return code[: m.start()].rstrip(), code[m.end() :].strip("\n")
    if is_python(lang):
        tree = _py_tree(code)
        if tree is not None and len(tree.body) >= 2:
            k = len(tree.body)
            while k > 0 and isinstance(tree.body[k - 1], ast.Assert):
                k -= 1
            if 0 < k < len(tree.body):
                lines = code.splitlines()
                cut = tree.body[k].lineno - 1
                return "\n".join(lines[:cut]).rstrip(), "\n".join(lines[cut:]).strip("\n")
    return code, ""


_ASSERT_LIKE_RE = re.compile(r"assert|expect|\bcheck|\bshould|\bt\.(?:error|fatal)|\bverify|\bpanic", re.IGNORECASE)


def _py_has_assert(tree: ast.Module) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert):
            return True
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            if name.lower().startswith("assert") or name in ("raises", "fail"):
                return True
    return False


def _cut_tests(text: str, L, max_lines: int = 64) -> str | None:
    """A reply cut off inside its [Tests] code block, trimmed back to the last line after which
    that block's code parses and asserts, with the block closed; None when the cut lies anywhere
    else (problem or solution unfinished) or nothing usable is left."""
    lines = text.rstrip("\n").split("\n")[:-1]  # the last line may stop mid-token
    for _ in range(max_lines):
        if not lines:
            return None
        cand = "\n".join(lines + ["```"])
        sections, truncated = _sections(cand)
        if truncated or "tests" not in sections or not sections["tests"].rstrip().endswith("```"):
            return None  # the fence we closed is not the [Tests] block
        tests, why = _extract_code(sections["tests"], L)
        if not why:
            tree = _py_tree(tests) if L.tag == "python" else None
            if L.tag != "python" or (tree is not None and _py_has_assert(tree)):
                return cand
        lines.pop()
    return None


def parse_response(text: str, lang: str = "python", *, cut_tests: bool = False,
                   fmt: str = DEFAULT_FORMAT) -> ParseResult:
    """Parses a reply in the `[Problem]`/`[Solution]`/`[Tests]` format (or a variant).

    Returns `ParseResult(ok=True, problem, solution, tests)` or a rejection whose `reason` is
    one of `REASONS`. For Python, solution and tests must parse and the tests must assert.
    `cut_tests`: a reply cut off (max tokens) inside its [Tests] block keeps the whole
    statements before the cut instead of being rejected as truncated (`tests_cut` says so);
    a small synthesizer tends to write asserts until it runs out of tokens.
    `fmt` "problem_solution": [Problem] and [Solution] only; tests are neither looked for nor
    required, and the result's `tests` is "" (see the module docstring).
    """
    tests_wanted = has_tests(fmt)
    if not text or not text.strip():
        return ParseResult.reject("empty")
    L = language(lang)
    python = L.tag == "python"
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    sections, truncated = _sections(text)
    cut = False
    if truncated and cut_tests and tests_wanted:
        trimmed = _cut_tests(text, L)
        if trimmed is not None:
            sections, truncated = _sections(trimmed)
            cut = True
    if truncated:
        return ParseResult.reject("truncated", "a code fence is never closed")
    if "problem" not in sections:
        return ParseResult.reject("no_problem", "no [Problem] header")
    problem = _clean_prose(sections["problem"])
    if not problem:
        return ParseResult.reject("empty_problem", "the [Problem] section is empty")
    if "solution" not in sections:
        return ParseResult.reject("no_solution", "no [Solution] header")
    solution, why = _extract_code(sections["solution"], L)
    if why:
        reason = {"empty": "empty_solution", "wrong_language": "wrong_language",
                  "not_code": "solution_not_code", "syntax_error": "solution_syntax_error"}[why]
        return ParseResult.reject(reason, f"the [Solution] section: {why.replace('_', ' ')}")
    if not tests_wanted:
        if python:
            stree = _py_tree(solution)
            if stree is None or not _py_is_code(stree):
                return ParseResult.reject("solution_not_code" if stree is not None else "solution_syntax_error",
                                          "the solution is not usable Python")
        return ParseResult(ok=True, problem=problem, solution=solution.strip("\n"))
    if "tests" in sections:
        tests, why = _extract_code(sections["tests"], L)
        if why in ("empty", "not_code"):
            # "[Tests]" followed by nothing usable: look inside the solution before giving up.
            solution2, embedded = split_embedded_tests(solution, lang)
            if embedded:
                solution, tests, why = solution2, embedded, ""
        if why == "empty":
            return ParseResult.reject("no_tests", "the [Tests] section is empty")
        if why == "not_code":
            return ParseResult.reject("tests_without_assert", "the [Tests] section is prose, not code")
        if why == "syntax_error":
            return ParseResult.reject("tests_syntax_error", "the [Tests] section does not parse")
        if why == "wrong_language":
            return ParseResult.reject("wrong_language", "the [Tests] code is in another language")
    else:
        solution, tests = split_embedded_tests(solution, lang)
        if not tests.strip():
            return ParseResult.reject("no_tests", "no [Tests] section and no tests in the solution")
    if python:
        stree = _py_tree(solution)
        if stree is None or not _py_is_code(stree):
            return ParseResult.reject("solution_not_code" if stree is not None else "solution_syntax_error",
                                      "the solution is not usable Python")
        ttree = _py_tree(tests)
        if ttree is None:
            return ParseResult.reject("tests_syntax_error", "the tests do not parse")
        if not _py_has_assert(ttree):
            return ParseResult.reject("tests_without_assert", "the tests contain no assert")
    elif not _ASSERT_LIKE_RE.search(tests):
        return ParseResult.reject("tests_without_assert", "the tests contain no assertion")
    return ParseResult(ok=True, problem=problem, solution=solution.strip("\n"), tests=tests.strip("\n"), tests_cut=cut)
