"""The synthesis prompt (OSS-Instruct style), its sample formats and the language table; the
tolerant parser for its replies is `scoder_jax.synth.reply_parser`.

Input: a code snippet and its language. Output asked of the model, in the sections of the
sample format (`FORMATS`, the run config's `synth.format`):

    [Problem]   a completely self-contained problem statement
    [Solution]  one fenced code block in the snippet's language
    [Tests]     one fenced code block with assertions in the same language
                (format "problem_solution_tests" only: this project's addition, so that
                execution can check a sample; "problem_solution" is the paper's (q, s) pair)

Language policy. As OSS-Instruct does, the problem and solution keep the snippet's
language, so the synthesizer learns every language of the pool. Tests are asked for in that
language too; the project only executes Python, so samples in other languages carry no
execution signal (their tests are kept as data and judged like the rest of the text).

The same format is what the synthesizer (a small LLM) is trained to produce: `format_response`
writes it, `parse_response` reads it back from the teacher or from a candidate. The parser
tolerates the variants models produce: `[Problem]` / `[Problem Description]` / `**Problem:**`
/ `### Problem` / `Problem:` headers in any case, code with or without a fence, a fence with or
without a language tag, ``` or ~~~ fences, chatter before the first header, an explanation
after the code, tests embedded in the solution (after a `# Tests` comment line, or as trailing
top-level `assert`s in Python). Anything it cannot use is rejected with one reason from
`REASONS`; `tally` counts them.

`PROMPT_VERSION` names this prompt and parser contract (`prompt_version(fmt)` per format): the
teacher cache is keyed by it, so a change to the wording must bump it.

In the "problem_solution" format no tests are asked for, parsed or required: `parse_response`
reads the [Problem] and [Solution] sections and returns `tests == ""` (a [Tests] section the
model writes anyway only ends the solution; asserts inside the solution stay part of it), and
`format_response` writes no [Tests] section.
"""

from __future__ import annotations

import dataclasses
import re

PROMPT_VERSION = "oss-instruct-tests-v1"  # the "problem_solution_tests" format (the default)
FORMATS: tuple[str, ...] = ("problem_solution", "problem_solution_tests")
DEFAULT_FORMAT = "problem_solution_tests"
_PROMPT_VERSIONS = {"problem_solution": "oss-instruct-v1", "problem_solution_tests": PROMPT_VERSION}


def check_format(fmt: str) -> str:
    """`fmt` if it names a sample format, else ValueError naming the known ones."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown sample format {fmt!r} (one of {', '.join(FORMATS)})")
    return fmt


def has_tests(fmt: str) -> bool:
    """Whether samples of format `fmt` carry tests."""
    return check_format(fmt) == "problem_solution_tests"


def prompt_version(fmt: str = DEFAULT_FORMAT) -> str:
    """The name of the prompt and parser contract of format `fmt` (teacher cache and sampling key)."""
    return _PROMPT_VERSIONS[check_format(fmt)]


# Rejection reasons, in the order the parser checks them.
REASONS: tuple[str, ...] = (
    "empty",  # the reply is empty or whitespace
    "truncated",  # a code fence is left open: the reply was cut off
    "no_problem",  # no [Problem] section
    "empty_problem",  # a [Problem] header with nothing under it
    "no_solution",  # no [Solution] section
    "empty_solution",  # a [Solution] header with no code under it
    "wrong_language",  # the solution's code blocks are all tagged with another language
    "solution_not_code",  # the solution is prose, not code
    "solution_syntax_error",  # (Python) the solution does not parse
    "no_tests",  # no [Tests] section, and none embedded in the solution
    "tests_syntax_error",  # (Python) the tests do not parse
    "tests_without_assert",  # the tests assert nothing
)

SYSTEM_PROMPT = (
    "You are an expert programmer and teacher. You write high-quality, self-contained "
    "programming problems together with correct reference solutions and tests that check them."
)
SYSTEM_PROMPT_NO_TESTS = (
    "You are an expert programmer and teacher. You write high-quality, self-contained "
    "programming problems together with correct reference solutions."
)


def system_prompt(fmt: str = DEFAULT_FORMAT) -> str:
    return SYSTEM_PROMPT if has_tests(fmt) else SYSTEM_PROMPT_NO_TESTS


@dataclasses.dataclass(frozen=True)
class Language:
    name: str  # display name used in the prompt
    tag: str  # fence tag used in the prompt
    aliases: frozenset[str]  # fence tags accepted for this language


def _lang(name: str, tag: str, *aliases: str) -> Language:
    return Language(name, tag, frozenset({tag, *aliases}))


LANGUAGES: dict[str, Language] = {
    "python": _lang("Python", "python", "py", "python3", "py3"),
    "javascript": _lang("JavaScript", "javascript", "js", "node", "nodejs", "jsx", "mjs"),
    "typescript": _lang("TypeScript", "typescript", "ts", "tsx"),
    "java": _lang("Java", "java"),
    "c": _lang("C", "c", "h"),
    "cpp": _lang("C++", "cpp", "c++", "cc", "cxx", "hpp", "h"),
    "csharp": _lang("C#", "csharp", "cs", "c#"),
    "go": _lang("Go", "go", "golang"),
    "rust": _lang("Rust", "rust", "rs"),
    "ruby": _lang("Ruby", "ruby", "rb"),
    "php": _lang("PHP", "php"),
    "swift": _lang("Swift", "swift"),
    "kotlin": _lang("Kotlin", "kotlin", "kt"),
    "scala": _lang("Scala", "scala"),
    "shell": _lang("Shell", "bash", "sh", "shell", "zsh"),
    "sql": _lang("SQL", "sql"),
    "lua": _lang("Lua", "lua"),
    "r": _lang("R", "r"),
    "julia": _lang("Julia", "julia", "jl"),
    "haskell": _lang("Haskell", "haskell", "hs"),
}
_LANG_ALIASES = {"py": "python", "js": "javascript", "ts": "typescript", "c++": "cpp", "c#": "csharp",
                 "cs": "csharp", "golang": "go", "rs": "rust", "rb": "ruby", "bash": "shell", "sh": "shell",
                 "kt": "kotlin"}
# Fence tags that say nothing about the language.
_NEUTRAL_TAGS = frozenset({"", "text", "plaintext", "plain", "code", "none", "txt"})


def language(lang: str) -> Language:
    """The `Language` for a pool language name; unknown names get a neutral entry that accepts any tag."""
    key = (lang or "").strip().lower()
    key = _LANG_ALIASES.get(key, key)
    if key in LANGUAGES:
        return LANGUAGES[key]
    if not key:
        return LANGUAGES["python"]
    return Language(lang.strip(), key, frozenset())


def is_python(lang: str) -> bool:
    return language(lang).tag == "python"


def _fence_for(code: str) -> str:
    """A backtick fence longer than any backtick run inside `code`."""
    longest = max((len(m.group(0)) for m in re.finditer(r"`{3,}", code)), default=0)
    return "`" * max(3, longest + 1)


def _fenced(code: str, tag: str) -> str:
    fence = _fence_for(code)
    return f"{fence}{tag}\n{code.rstrip()}\n{fence}"


def build_user_prompt(snippet: str, lang: str, fmt: str = DEFAULT_FORMAT) -> str:
    """The instruction for one snippet (the user turn), asking for the sections of format `fmt`."""
    L = language(lang)
    tests = has_tests(fmt)
    if L.tag == "python":
        tests_rule = (
            "at least three plain `assert` statements (no test framework, no printing, no "
            "`if __name__ == \"__main__\"` guard). They are executed right after the solution, in "
            "the same module, so they call the solution directly and must not redefine it or import it."
        )
        run_rule = (
            "Use only the Python standard library. The code must run as is: no placeholders or "
            "`...`, no reading input, no network or file access, no example usage."
        )
    else:
        tests_rule = (
            f"at least three checks written with {L.name}'s own assertion facility (for example "
            "`assert`, `console.assert`, `assert_eq!`, `static_assert` or an `assert` helper), "
            "runnable after the solution. They call the solution directly and must not redefine it."
        )
        run_rule = (
            f"Use only {L.name}'s standard library. The code must compile or run as is: no "
            "placeholders, no reading input, no network or file access."
        )
    what = ", a correct reference solution and tests for it" if tests else " and a correct reference solution"
    return (
        f"Draw inspiration from the {L.name} code snippet below to write one high-quality "
        f"programming problem{what}.\n\n"
        "Code snippet for inspiration:\n"
        f"{_fenced(snippet, L.tag)}\n\n"
        f"Reply with exactly {'three' if tests else 'two'} sections, each introduced by its header on a line "
        "of its own, in this order:\n\n"
        "[Problem]\n"
        "A completely self-contained problem statement. Do not mention the snippet: state every "
        "definition, input and output format, constraint and edge case the reader needs, and name "
        "the function or class to implement with its exact signature.\n\n"
        "[Solution]\n"
        f"A complete and correct solution in {L.name}, in a single ```{L.tag} code block. {run_rule}\n"
        + (f"\n[Tests]\nA single ```{L.tag} code block with {tests_rule}\n" if tests else "")
    )


def build_messages(snippet: str, lang: str, fmt: str = DEFAULT_FORMAT) -> list[dict]:
    """Chat messages (system + user) for an OpenAI-compatible chat endpoint or a chat template."""
    return [
        {"role": "system", "content": system_prompt(fmt)},
        {"role": "user", "content": build_user_prompt(snippet, lang, fmt)},
    ]


def build_prompt_text(snippet: str, lang: str, fmt: str = DEFAULT_FORMAT) -> str:
    """The same prompt as plain text, for a raw completion model (no chat template).

    Ends with the `[Problem]` header, so the model's continuation is parsed with
    `parse_response("[Problem]\\n" + continuation, lang, fmt=fmt)`.
    """
    return f"{system_prompt(fmt)}\n\n{build_user_prompt(snippet, lang, fmt)}\n[Problem]\n"


def format_response(problem: str, solution: str, tests: str, lang: str, fmt: str = DEFAULT_FORMAT) -> str:
    """The canonical reply in format `fmt`: what the synthesizer is trained to write;
    `parse_response(..., fmt=fmt)` reads it back. "problem_solution" leaves `tests` out;
    "problem_solution_tests" needs them (ValueError for empty tests: the parser would reject
    the reply, so a synthesizer must never be taught to write it)."""
    tag = language(lang).tag
    reply = f"[Problem]\n{problem.strip()}\n\n[Solution]\n{_fenced(solution, tag)}\n"
    if not has_tests(fmt):
        return reply
    if not (tests or "").strip():
        raise ValueError("format problem_solution_tests needs tests, got none")
    return f"{reply}\n[Tests]\n{_fenced(tests, tag)}\n"
