"""LiveCodeBench: code_generation_lite rows in the released layout (private tests compressed),
lcb_runner's grading of stdin and functional problems, prompts, samples, windows, bad input."""

from __future__ import annotations

import base64
import json
import pickle
import time
import zlib
from pathlib import Path

import pytest

from scoder_jax.errors import DataError, ScoderError
from scoder_jax.eval import livecodebench as lcb
from scoder_jax.eval.suite import Settings, run_benchmark

STARTER = "class Solution:\n    def appendIt(self, nums: List[int], x: int) -> List[int]:\n        "


def _row(qid, *, date, difficulty, public, private, func=None, starter="", platform="atcoder", compress=True):
    return {"question_title": f"title {qid}", "question_content": f"Problem {qid}.", "platform": platform,
            "question_id": qid, "contest_id": f"c{qid}", "contest_date": date, "starter_code": starter,
            "difficulty": difficulty, "public_test_cases": json.dumps(public),
            "private_test_cases": lcb.encode_private_tests(private) if compress else json.dumps(private),
            "metadata": json.dumps({"func_name": func} if func else {})}


def _stdin(i, o):
    return {"input": i, "output": o, "testtype": "stdin"}


def _fn(i, o):
    return {"input": i, "output": o, "testtype": "functional"}


ROWS = [
    _row("abc300_a", date="2024-08-10T00:00:00", difficulty="easy",
         public=[_stdin("1 2\n", "3\n")], private=[_stdin("5 7\n", "12\n"), _stdin("0 0\n", "0")]),
    _row("3100", date="2024-09-15T00:00:00", difficulty="medium", platform="leetcode", func="appendIt", starter=STARTER,
         public=[_fn("[1, 2]\n3", "[1, 2, 3]")], private=[_fn("[]\n0", "[0]")]),
    _row("abc310_b", date="2024-10-20T12:00:00", difficulty="hard",
         public=[_stdin("3\n", "1.5\n")], private=[_stdin("1\n", "0.5\n")], compress=False),
]
REFERENCE = {
    "abc300_a": "a, b = map(int, input().split())\nprint(a + b)\n",
    "3100": "class Solution:\n    def appendIt(self, nums, x):\n        return nums + [x]\n",
    "abc310_b": "import sys\nn = int(sys.stdin.read())\nprint(n / 2)\n",
}


def _write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def lcb_file(tmp_path) -> Path:
    return _write_jsonl(tmp_path / "test6.jsonl", ROWS)


def test_private_tests_decode_as_released_and_pickles_cannot_run_code(tmp_path):
    tests = [_stdin("1\n", "2\n")]
    released = base64.b64encode(zlib.compress(pickle.dumps(json.dumps(tests)))).decode()
    assert lcb.decode_private_tests(released) == tests
    assert lcb.decode_private_tests(json.dumps(tests)) == tests  # older rows: plain JSON

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    evil = base64.b64encode(zlib.compress(pickle.dumps(Evil()))).decode()
    with pytest.raises(ValueError, match="refused global"):
        lcb.decode_private_tests(evil)
    assert not marker.exists()
    with pytest.raises(ValueError, match="neither JSON nor base64"):
        lcb.decode_private_tests("{not json")
    with pytest.raises(ValueError, match="not zlib"):
        lcb.decode_private_tests(base64.b64encode(b"plain bytes").decode())


def test_prompts_as_livecodebench_builds_them(lcb_file):
    problems, _ = lcb.load_lcb(lcb_file)
    by = {p.question_id: p for p in problems}
    assert lcb.user_prompt(by["abc300_a"]) == (
        "### Question:\nProblem abc300_a.\n\n"
        "### Format: Read the inputs from stdin solve the problem and write the answer to stdout (do not directly test "
        "on the sample inputs). Enclose your code within delimiters as follows. Ensure that when the python program "
        "runs, it reads the inputs, runs the algorithm and writes output to STDOUT.\n"
        "```python\n# YOUR CODE HERE\n```\n\n### Answer: (use the provided format with backticks)\n\n")
    assert lcb.user_prompt(by["3100"]) == (
        "### Question:\nProblem 3100.\n\n"
        "### Format: You will use the following starter code to write the solution to the problem and enclose your "
        f"code within delimiters.\n```python\n{STARTER}\n```\n\n"
        "### Answer: (use the provided format with backticks)\n\n")
    assert lcb.SYSTEM_MESSAGE.startswith("You are an expert Python programmer.")
    assert lcb.extract_code("Sure:\n```python\nx = 1\n```\nor\n```python\ny = 2\n```\n") == "y = 2"
    assert lcb.extract_code("no code") == ""


def test_grading_as_lcb_runner(lcb_file):
    problems, _ = lcb.load_lcb(lcb_file)
    samples = [{"task_id": q, "code": c} for q, c in REFERENCE.items()] + [
        # trailing space/lines
        {"task_id": "abc300_a", "code": "a, b = map(int, input().split())\nprint(a + b, '   ')\nprint()\n"},
        {"task_id": "abc300_a", "code": "print(3)\n"},  # right on the public test only
        # lcb_runner's stdin mock is not iterable
        {"task_id": "abc300_a", "code": "import sys\nfor line in sys.stdin:\n    print(1)\n"},
        {"task_id": "abc300_a", "code": "while True:\n    pass\n"},  # time limit
        {"task_id": "abc310_b", "code": "print(int(input()) / 2 + 0.0000)\nprint()\n"},
        {"task_id": "abc310_b", "code": "print('1.50')\n"},  # equal as Decimals on the first test, wrong on the second
        {"task_id": "3100", "code": "class Solution:\n    def append_it(self, nums, x):\n        return nums + [x]\n"},
        {"task_id": "3100",
         "code": "class Solution:\n    def appendIt(self, nums, x):\n        return tuple(nums + [x])\n"},
    ]
    start = time.monotonic()
    graded = lcb.grade(problems, samples, timeout_s=1, workers=2)
    assert time.monotonic() - start < 60
    verdicts = [g["graded"] for g in graded]
    assert verdicts == [True, True, True, True, False, False, False, True, False, False, True]
    assert graded[4]["results"] == [True, -2] and graded[4]["metadata"]["error_message"].startswith("Wrong answer")
    assert graded[5]["results"] == [-4] and "not iterable" in graded[5]["metadata"]["error"]
    assert graded[6]["results"] == [-3] and graded[6]["metadata"]["error_message"] == "Time Limit Exceeded"
    assert graded[8]["results"] == [True, -2]
    wrong_name = graded[9]
    assert wrong_name["results"] == [-4] and "no method 'appendIt'" in wrong_name["metadata"]["error_message"]


def test_cli_scores_per_difficulty_and_writes_lcb_files(lcb_file, tmp_path):
    samples = tmp_path / "custom.json"  # LiveCodeBench's own sample format
    samples.write_text(json.dumps([{"question_id": q, "code_list": [c, "print(0)"]} for q, c in REFERENCE.items()]))
    out = tmp_path / "o"
    rec = run_benchmark("livecodebench", out, problems_file=lcb_file, samples_file=samples,
                        settings=Settings(timeout_s=2))
    assert rec["pass_at_k"] == {"base": {"pass@1": 0.5}}
    assert rec["by_difficulty"] == {"easy": {"pass@1": 0.5, "n_problems": 1},
                                    "medium": {"pass@1": 0.5, "n_problems": 1},
                                    "hard": {"pass@1": 0.5, "n_problems": 1}}
    eval_all = json.loads((out / "eval_all.json").read_text())
    assert [e["question_id"] for e in eval_all] == ["3100", "abc300_a", "abc310_b"]  # sorted as lcb_runner sorts
    assert eval_all[0]["graded_list"] == [True, False] and eval_all[0]["pass@1"] == 0.5
    assert set(eval_all[0]) >= {"question_title", "platform", "contest_date", "difficulty", "code_list", "graded_list",
                                "pass@1", "metadata"}
    back = json.loads((out / "samples.json").read_text())
    assert {b["question_id"] for b in back} == set(REFERENCE)

    jsonl = _write_jsonl(tmp_path / "s.jsonl", [{"task_id": q, "completion": f"Here:\n```python\n{c}```\n"}
                                                for q, c in REFERENCE.items()])
    rec = run_benchmark("livecodebench", tmp_path / "o2", problems_file=lcb_file, samples_file=jsonl,
                        settings=Settings(timeout_s=2))
    assert rec["pass_at_k"]["base"]["pass@1"] == 1.0


def test_date_window(lcb_file, tmp_path):
    problems, ids = lcb.load_lcb(lcb_file, since="2024-09-01")
    assert [p.question_id for p in problems] == ["3100", "abc310_b"] and len(ids) == 3
    problems, _ = lcb.load_lcb(lcb_file, until="2024-10-20")  # midnight: the 12:00 problem of that day is out
    assert [p.question_id for p in problems] == ["3100", "abc300_a"]
    with pytest.raises(DataError, match=r"test6.jsonl: no problem has a contest_date in the window \[2025-01-01, -\]"):
        lcb.load_lcb(lcb_file, since="2025-01-01")
    with pytest.raises(ScoderError, match="--since '2024/01/01': expected a date"):
        lcb.load_lcb(lcb_file, since="2024/01/01")
    # samples for problems outside the window are not scored (and not an error)
    samples = _write_jsonl(tmp_path / "s.jsonl", [{"task_id": q, "solution": c} for q, c in REFERENCE.items()])
    rec = run_benchmark("livecodebench", tmp_path / "o", problems_file=lcb_file, samples_file=samples,
                        settings=Settings(timeout_s=2, since="2024-09-01"))
    assert rec["n_problems"] == 2 and rec["window"]["since"] == "2024-09-01" and rec["window"]["first"] == "2024-09-15"


def test_bad_input_is_named(lcb_file, tmp_path):
    not_pickle = base64.b64encode(zlib.compress(b"hello world")).decode()  # zlib of text, not a pickle
    bad = dict(ROWS[0], private_test_cases=not_pickle)
    f = _write_jsonl(tmp_path / "bad.jsonl", [ROWS[1], bad])
    with pytest.raises(DataError,
                       match=r"bad.jsonl: row 2 \(abc300_a\): 'private_test_cases' is malformed: .*not a pickled"):
        lcb.load_lcb(f)
    he_plus = _write_jsonl(tmp_path / "HumanEvalPlus.jsonl",
                           [{"task_id": "HumanEval/0", "prompt": "", "entry_point": "f",
                             "base_input": [], "plus_input": [], "atol": 0}])
    with pytest.raises(DataError, match=r"HumanEvalPlus.jsonl: row 1: missing 'question_title'.*a HumanEval\+ row"):
        lcb.load_lcb(he_plus)
    unknown = tmp_path / "custom.json"
    unknown.write_text(json.dumps([{"question_id": "abc300_a", "code_list": ["print(3)"]},
                                   {"question_id": "zzz", "code_list": ["print(1)"]}]))
    with pytest.raises(DataError, match=r"custom.json: row 2: question_id 'zzz' is not a problem of"):
        run_benchmark("livecodebench", tmp_path / "o", problems_file=lcb_file, samples_file=unknown)
    bad_list = tmp_path / "bad_list.json"
    bad_list.write_text(json.dumps([{"question_id": "abc300_a", "code_list": "print(3)"}]))
    with pytest.raises(DataError, match=r"bad_list.json: row 1 \(abc300_a\): 'code_list' must be a list of strings"):
        lcb.read_lcb_samples(bad_list)
    few = _write_jsonl(tmp_path / "few.jsonl", [{"task_id": "abc300_a", "solution": "print(3)"}])
    with pytest.raises(DataError, match=r"few.jsonl: no samples for 2 of 3 problems"):
        run_benchmark("livecodebench", tmp_path / "o", problems_file=lcb_file, samples_file=few)
