"""The synthesis prompt and its parser: format variants, every rejection reason, round trips."""

from __future__ import annotations

import random

import pytest

from scoder_jax.synth.prompts import PROMPT_VERSION, REASONS, build_messages, build_prompt_text, format_response
from scoder_jax.synth.reply_parser import ParseResult, extract_code, parse_response, split_embedded_tests, tally

SOL = "def add(a, b):\n    return a + b"
TST = "assert add(1, 2) == 3\nassert add(-1, 1) == 0"
PROBLEM = "Write a function `add(a, b)` that returns the sum of two integers."


def test_messages_ask_for_three_sections_in_the_snippets_language():
    snippet = "def area(r):\n    return 3.14159 * r * r\n"
    msgs = build_messages(snippet, "python")
    assert [m["role"] for m in msgs] == ["system", "user"]
    user = msgs[1]["content"]
    for header in ("[Problem]", "[Solution]", "[Tests]"):
        assert f"\n{header}\n" in user
    assert "```python\n" + snippet.rstrip() + "\n```" in user
    assert "assert" in user and "self-contained" in user
    assert extract_code(user, "python") == (snippet.rstrip(), "")

    js = build_messages("function f(x) { return x * 2; }", "javascript")[1]["content"]
    assert "JavaScript" in js and "```javascript\nfunction f" in js and "Python" not in js
    assert "console.assert" in js
    rust = build_messages("fn main() {}", "rs")[1]["content"]
    assert "Rust" in rust and "```rust\n" in rust
    assert isinstance(PROMPT_VERSION, str) and PROMPT_VERSION


def test_snippet_with_backticks_gets_a_longer_fence():
    snippet = 'doc = """\n```python\nx = 1\n```\n"""'
    user = build_messages(snippet, "python")[1]["content"]
    assert "````python\n" + snippet + "\n````" in user
    assert extract_code(user, "python") == (snippet, "")


def test_prompt_text_for_raw_completion_models():
    text = build_prompt_text("x = 1", "python")
    assert text.startswith(build_messages("x = 1", "python")[0]["content"])
    assert text.endswith("[Problem]\n")
    continuation = f"{PROBLEM}\n\n[Solution]\n```python\n{SOL}\n```\n\n[Tests]\n```python\n{TST}\n```\n"
    r = parse_response("[Problem]\n" + continuation)
    assert r.ok and r.problem == PROBLEM and r.solution == SOL and r.tests == TST


@pytest.mark.parametrize("lang", ["python", "javascript", "cpp", "fortran"])
def test_format_parse_round_trip(lang):
    sol = {"python": SOL, "javascript": "function add(a, b) {\n  return a + b;\n}",
           "cpp": "int add(int a, int b) { return a + b; }",
           "fortran": "integer function add(a, b)\n  add = a + b\nend"}[lang]
    tst = {"python": TST, "javascript": "console.assert(add(1, 2) === 3);", "cpp": "assert(add(1, 2) == 3);",
           "fortran": "if (add(1, 2) /= 3) call assert_fail()"}[lang]
    text = format_response(PROBLEM + "\n\nExample:\n```\nadd(1, 2) -> 3\n```", sol, tst, lang)
    r = parse_response(text, lang)
    assert r.ok, r
    assert (r.problem, r.solution, r.tests) == (PROBLEM + "\n\nExample:\n```\nadd(1, 2) -> 3\n```", sol, tst)


def test_round_trip_with_backticks_in_code():
    sol = 'FENCE = "```"\n\ndef fence(s):\n    return FENCE + s + FENCE'
    tst = 'assert fence("x") == "```x```"'
    r = parse_response(format_response(PROBLEM, sol, tst, "python"))
    assert r.ok and r.solution == sol and r.tests == tst


VARIANTS = {
    "canonical": f"[Problem]\n{PROBLEM}\n\n[Solution]\n```python\n{SOL}\n```\n\n[Tests]\n```python\n{TST}\n```",
    "magicoder_headers": f"[Problem Description]\n{PROBLEM}\n\n[Solution]\n```python\n{SOL}\n```\n"
                         f"Explanation: the function adds.\n\n[Test Cases]\n```python\n{TST}\n```\n",
    "bold_colon_inside": f"Sure! Here it is.\n\n**Problem:**\n{PROBLEM}\n\n**Solution:**\n```py\n{SOL}\n```\n\n"
                         f"**Tests:**\n```py\n{TST}\n```\nLet me know if you need more.",
    "bold_colon_outside": f"**Problem**: {PROBLEM}\n\n**Solution**:\n```python3\n{SOL}\n```\n"
                          f"**Tests**:\n```\n{TST}\n```",
    "markdown_hash": f"### Problem Statement\n{PROBLEM}\n\n### Solution\n```Python\n{SOL}\n```\n\n"
                     f"### Unit Tests\n```python\n{TST}\n```",
    "numbered": f"## 1. Problem\n{PROBLEM}\n## 2. Solution\n```python\n{SOL}\n```\n## 3. Tests\n```python\n{TST}\n```",
    "plain_colon": f"Problem: {PROBLEM}\nSolution:\n```\n{SOL}\n```\nTests:\n```\n{TST}\n```",
    "lowercase_brackets": f"[problem]\n{PROBLEM}\n[solution]\n```python\n{SOL}\n```\n[tests]\n```python\n{TST}\n```",
    "upper_case": f"PROBLEM:\n{PROBLEM}\nSOLUTION:\n```python\n{SOL}\n```\nTESTS:\n```python\n{TST}\n```",
    "tilde_fences": f"[Problem]\n{PROBLEM}\n[Solution]\n~~~python\n{SOL}\n~~~\n[Tests]\n~~~python\n{TST}\n~~~",
    "unfenced_with_prose": f"[Problem]\n{PROBLEM}\n\n[Solution]\nHere is the solution.\n\n{SOL}\n\n"
                           f"It runs in O(1).\n\n[Tests]\n{TST}\n",
    "tests_after_comment": f"[Problem]\n{PROBLEM}\n\n[Solution]\n```python\n{SOL}\n\n# Tests\n{TST}\n```\n",
    "tests_after_comment_no_fence_tag": f"### Problem\n{PROBLEM}\n### Solution\n```\n{SOL}\n\n"
                                        f"# Test cases:\n{TST}\n```",
    "trailing_asserts": f"[Problem]\n{PROBLEM}\n[Solution]\n```python\n{SOL}\n\n{TST}\n```\n",
    "empty_tests_section_but_embedded": f"[Problem]\n{PROBLEM}\n[Solution]\n```python\n{SOL}\n{TST}\n```\n[Tests]\n\n",
    "crlf": (f"[Problem]\r\n{PROBLEM}\r\n\r\n[Solution]\r\n```python\r\n{SOL}\r\n```\r\n"
             f"[Tests]\r\n```python\r\n{TST}\r\n```\r\n").replace("\n    ", "\r\n    "),
    "indented_fences": f"[Problem]\n{PROBLEM}\n[Solution]\n"
                       f"  ```python\n  {SOL.replace(chr(10), chr(10) + '  ')}\n  ```\n"
                       f"[Tests]\n  ```python\n  {TST.replace(chr(10), chr(10) + '  ')}\n  ```",
    "horizontal_rules": f"[Problem]\n{PROBLEM}\n\n---\n\n[Solution]\n```python\n{SOL}\n```\n---\n"
                        f"[Tests]\n```python\n{TST}\n```\n---",
    "header_rest_same_line": f"[Problem] {PROBLEM}\n[Solution]\n```python\n{SOL}\n```\n[Tests]\n```python\n{TST}\n```",
    "mixed_styles": f"[Problem]\n{PROBLEM}\n\n[Solution]\n```python\n{SOL}\n```\n\n### Tests\n```python\n{TST}\n```",
    "output_block_after_code": f"[Problem]\n{PROBLEM}\n[Solution]\n```python\n{SOL}\n```\n"
                                "Output:\n```\n>>> add(1, 2)\n3\n```\n"
                                f"[Tests]\n```python\n{TST}\n```",
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_format_variants_parse(name):
    r = parse_response(VARIANTS[name], "python")
    assert r.ok, (name, r)
    assert r.problem == PROBLEM
    assert r.solution == SOL
    assert r.tests == TST


def test_headers_inside_code_or_prose_are_not_headers():
    text = (f"[Problem]\n{PROBLEM}\nProblem solving is fun. The tests below matter.\n"
            "```python\n# Solution sketch\n[Tests]\n```\n\n"
            f"[Solution]\n```python\n{SOL}\n```\n[Tests]\n```python\n{TST}\n```")
    r = parse_response(text)
    assert r.ok, r
    assert "Problem solving is fun" in r.problem and "[Tests]" in r.problem
    assert r.solution == SOL


def test_unittest_style_and_pytest_raises_count_as_asserting():
    tests = ("import unittest\nclass T(unittest.TestCase):\n    def test(self):\n"
             "        self.assertEqual(add(1, 2), 3)\n")
    assert parse_response(format_response(PROBLEM, SOL, tests, "python")).ok
    tests = "import pytest\nwith pytest.raises(TypeError):\n    add(1, None)\n"
    assert parse_response(format_response(PROBLEM, SOL, tests, "python")).ok


def _resp(problem=PROBLEM, solution=f"```python\n{SOL}\n```", tests=f"```python\n{TST}\n```"):
    parts = []
    if problem is not None:
        parts.append(f"[Problem]\n{problem}")
    if solution is not None:
        parts.append(f"[Solution]\n{solution}")
    if tests is not None:
        parts.append(f"[Tests]\n{tests}")
    return "\n\n".join(parts)


REJECTIONS = [
    ("empty", "", "python"),
    ("empty", "  \n\t\n", "python"),
    ("truncated", _resp(tests=f"```python\n{TST}"), "python"),
    ("truncated", f"[Problem]\n{PROBLEM}\n[Solution]\n```python\ndef add(a, b):\n    return a +", "python"),
    ("no_problem", f"Here you go:\n```python\n{SOL}\n```", "python"),
    ("no_problem", _resp(problem=None), "python"),
    ("empty_problem", _resp(problem="\n\n"), "python"),
    ("no_solution", _resp(solution=None), "python"),
    ("no_solution", f"[Problem]\n{PROBLEM}\n```python\n{SOL}\n```", "python"),
    ("empty_solution", _resp(solution=""), "python"),
    ("empty_solution", _resp(solution="```python\n```"), "python"),
    ("wrong_language", _resp(solution="```javascript\nfunction add(a, b) { return a + b; }\n```"), "python"),
    ("wrong_language", _resp(solution="```cpp\nint f();\n```", tests="```cpp\nassert(f());\n```"), "java"),
    ("solution_not_code", _resp(solution="Just add the two numbers together and return the result."), "python"),
    ("solution_not_code", _resp(solution="```python\n\"\"\"A docstring only.\"\"\"\n```"), "python"),
    ("solution_not_code", _resp(solution="Use a loop over the list, then return it.",
                                tests="```js\nconsole.assert(f());\n```"), "javascript"),
    ("solution_syntax_error", _resp(solution="```python\ndef add(a, b)\n    return a + b\n```"), "python"),
    ("no_tests", _resp(tests=None), "python"),
    ("no_tests", _resp(tests=""), "python"),
    ("tests_syntax_error", _resp(tests="```python\nassert add(1, 2) ==\n```"), "python"),
    ("tests_without_assert", _resp(tests="```python\nprint(add(1, 2))\n```"), "python"),
    ("tests_without_assert", _resp(tests="Call add with a few numbers and check the result."), "python"),
    ("tests_without_assert", _resp(solution="```js\nfunction f() { return 1; }\n```",
                                   tests="```js\nconsole.log(f());\n```"), "javascript"),
]


@pytest.mark.parametrize("reason,text,lang", REJECTIONS)
def test_rejections_have_their_reason(reason, text, lang):
    r = parse_response(text, lang)
    assert not r.ok and r.reason == reason, r
    assert r.detail or reason == "empty"
    assert (r.problem, r.solution, r.tests) == ("", "", "")


def test_every_reason_is_reachable_and_tallied():
    results = [parse_response(text, lang) for _, text, lang in REJECTIONS] + [parse_response(VARIANTS["canonical"])]
    counts = tally(results)
    assert set(counts) == set(REASONS) | {"ok"}
    assert counts["ok"] == 1 and counts["empty"] == 2 and sum(counts.values()) == len(results)
    with pytest.raises(AssertionError):
        ParseResult.reject("not_a_reason")


def test_split_embedded_tests():
    assert split_embedded_tests(f"{SOL}\n\n# Tests\n{TST}", "python") == (SOL, TST)
    assert split_embedded_tests(f"{SOL}\n{TST}", "python") == (SOL, TST)
    assert split_embedded_tests(SOL, "python") == (SOL, "")
    # An indented "# test" comment inside the function is not a split point; asserts in a body are not tests.
    code = "def f(x):\n    # test the sign\n    assert x >= 0\n    return x"
    assert split_embedded_tests(code, "python") == (code, "")
    assert split_embedded_tests("function f() {}\n// Tests\nconsole.assert(f() === undefined);", "javascript") == \
        ("function f() {}", "console.assert(f() === undefined);")
    # Only asserts: nothing left to be a solution, so no split.
    assert split_embedded_tests(TST, "python") == (TST, "")


def test_parser_never_raises_on_noise():
    rng = random.Random(0)
    pieces = ["[Problem]", "[Solution]", "[Tests]", "**Problem:**", "### Tests", "Solution:", "```", "```python",
              "~~~", "````", SOL, TST, PROBLEM, "def", "(", ")", "assert", "\n", "\r\n", "    ", "# Tests", "\x00",
              "é中文", "[", "]", "*", "#", ":", "\t", "`"]
    seen = []
    for _ in range(1500):
        text = "".join(rng.choice(pieces) + rng.choice(["", "\n", " "]) for _ in range(rng.randint(0, 25)))
        r = parse_response(text, rng.choice(["python", "javascript", "", "cobol"]))
        assert r.ok or r.reason in REASONS
        seen.append(r)
    assert len(tally(seen)) >= 5  # the noise reaches many different outcomes


def test_mixed_header_styles_fill_missing_sections_only():
    text = ("[Problem]\nWrite `twice(x)`.\n### Task\nstill the problem\n\n"
            "[Solution]\n```js\nfunction twice(x) { return 2 * x; }\n```\n\n"
            "**Tests:**\n```js\nconsole.assert(twice(2) === 4);\n```\n")
    r = parse_response(text, "javascript")
    assert r.ok, r
    assert r.problem == "Write `twice(x)`.\n### Task\nstill the problem"  # "Task" is named by a bracket header
    assert r.solution == "function twice(x) { return 2 * x; }" and r.tests == "console.assert(twice(2) === 4);"


def test_cut_tests_keeps_the_whole_statements_of_a_reply_cut_inside_its_tests():
    head = ("[Problem]\nWrite `double(x)` that returns twice x.\n\n[Solution]\n```python\ndef double(x):\n"
            "    return 2 * x\n```\n\n[Tests]\n```python\n")
    cut_in_tests = head + "assert double(1) == 2\nassert double(2) == 4\nassert double(3) =="
    assert parse_response(cut_in_tests).reason == "truncated"  # off by default
    pr = parse_response(cut_in_tests, cut_tests=True)
    assert pr.ok and pr.tests_cut and pr.tests == "assert double(1) == 2\nassert double(2) == 4"
    # a statement spanning lines is kept only whole
    multi = head + "assert double(1) == 2\nassert double(\n    5) == 10\nassert double(\n    6"
    assert parse_response(multi, cut_tests=True).tests == "assert double(1) == 2\nassert double(\n    5) == 10"
    # cut inside the solution, or before any whole assert: still rejected
    cut_in_solution = "[Problem]\nWrite `double(x)`.\n\n[Solution]\n```python\ndef double(x):\n    return 2 *"
    assert parse_response(cut_in_solution, cut_tests=True).reason == "truncated"
    assert parse_response(head + "assert dou", cut_tests=True).reason == "truncated"
    # a complete reply is untouched
    whole = parse_response(head + "assert double(1) == 2\n```\n", cut_tests=True)
    assert whole.ok and not whole.tests_cut
