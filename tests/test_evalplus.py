"""HumanEval+ / MBPP+ (EvalPlus): files in the released layout, sandboxed ground truth, base and
plus verdicts as evalplus.evaluate gives them, its results file, bad input."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest

from scoder_jax.errors import DataError, ScoderError
from scoder_jax.eval import evalplus as ep
from scoder_jax.eval.suite import Settings, run_benchmark

# HumanEvalPlus.jsonl rows (task_id, prompt, entry_point, canonical_solution, contract, base_input, plus_input, atol).
HE_PLUS = [
    {"task_id": "HumanEval/0", "prompt": "def add(a: int, b: int) -> int:\n    \"\"\"Sum of a and b.\"\"\"\n",
     "entry_point": "add", "canonical_solution": "    return a + b\n",
     "contract": "\n    assert isinstance(a, int)\n    assert isinstance(b, int)\n",
     "base_input": [[1, 2], [-3, 3]], "plus_input": [[10 ** 20, 1], [7, -9]], "atol": 0},
    {"task_id": "HumanEval/1", "prompt": "def mean(xs: list) -> float:\n", "entry_point": "mean",
     "canonical_solution": "    return sum(xs) / len(xs)\n", "contract": "",
     "base_input": [[[1.0, 2.0]], [[3.0]]], "plus_input": [[[0.1, 0.2, 0.3]]], "atol": 0},
    {"task_id": "HumanEval/2", "prompt": "def scale(xs: list, k: float) -> list:\n", "entry_point": "scale",
     "canonical_solution": "    return [x * k for x in xs]\n", "contract": "",
     "base_input": [[[1.0, 2.0], 0.5]], "plus_input": [[[3.0, 4.0], 1.5], [[float("inf")], 2.0]], "atol": 0.01},
]
# MbppPlus.jsonl rows: Mbpp/106's second argument is a tuple once EvalPlus converts it; Mbpp/2
# compares its output as a set.
MBPP_PLUS = [
    {"task_id": "Mbpp/106",
     "prompt": '"""\nAppend the list to the tuple.\nassert add_lists([5, 6], (9, 10)) == (9, 10, 5, 6)\n"""\n',
     "entry_point": "add_lists",
     "canonical_solution": "def add_lists(test_list, test_tup):\n    return test_tup + tuple(test_list)\n",
     "base_input": [[[5, 6], [9, 10]]], "plus_input": [[[], [1]], [[1, 2, 3], []]], "atol": 0, "contract": ""},
    {"task_id": "Mbpp/2", "prompt": '"""\nShared elements.\n"""\n', "entry_point": "similar_elements",
     "canonical_solution": "def similar_elements(a, b):\n    return tuple(set(a) & set(b))\n",
     "base_input": [[[3, 4, 5, 6], [5, 7, 4, 10]]], "plus_input": [[[1, 2, 3, 4], [4, 3, 2, 1]]], "atol": 0,
     "contract": ""},
]


def _write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SCODER_EVAL_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def he_file(tmp_path) -> Path:
    return _write_jsonl(tmp_path / "HumanEvalPlus.jsonl", HE_PLUS)


@pytest.fixture
def mbpp_file(tmp_path) -> Path:
    return _write_jsonl(tmp_path / "MbppPlus.jsonl", MBPP_PLUS)


def _verdicts(records):
    return [(r["task_id"], r["base_status"], r["plus_status"]) for r in records]


def test_humaneval_plus_verdicts(he_file):
    problems = ep.load_plus(he_file, "humaneval+")
    truth = ep.ground_truth(problems, he_file, "humaneval+")
    assert truth["HumanEval/0"]["plus"] == [10 ** 20 + 1, -2] and len(truth["HumanEval/0"]["base_time"]) == 2
    assert truth["HumanEval/2"]["plus"] == [[4.5, 6.0], [{"$f": "inf"}]]  # inf survives the trip
    samples = [
        {"task_id": "HumanEval/0", "completion": "    return a + b\n"},  # right
        {"task_id": "HumanEval/0", "completion": "    return a - b\n"},  # wrong
        # right on base only
        {"task_id": "HumanEval/0", "completion": "    return a + b if abs(a) < 1000 else 0\n"},
        # within 1e-6 (atol 0 + floats)
        {"task_id": "HumanEval/1", "completion": "    return sum(xs) / len(xs) + 1e-7\n"},
        {"task_id": "HumanEval/1", "completion": "    return sum(xs) / len(xs) + 1e-4\n"},  # outside
        # within atol
        {"task_id": "HumanEval/2", "solution": "def scale(xs, k):\n    return [x * k + 0.005 for x in xs]\n"},
        # outside
        {"task_id": "HumanEval/2", "solution": "def scale(xs, k):\n    return [x * k + 0.05 for x in xs]\n"},
        # wrong type
        {"task_id": "HumanEval/2", "solution": "def scale(xs, k):\n    return tuple(x * k for x in xs)\n"},
        {"task_id": "HumanEval/0", "completion": "    while True:\n        pass\n"},  # per-input limit: fail
        # C loop: killed
        {"task_id": "HumanEval/0", "completion": "    import itertools\n    return sum(itertools.count())\n"},
        {"task_id": "HumanEval/0", "completion": "    import os\n    os._exit(0)\n"},  # never reports
    ]
    start = time.monotonic()
    records = ep.check_samples(problems, samples, truth, "humaneval+", min_time_limit=0.5, workers=2)
    assert time.monotonic() - start < 60  # the loops are cut off; the run goes on
    assert _verdicts(records) == [
        ("HumanEval/0", "pass", "pass"), ("HumanEval/0", "fail", "fail"), ("HumanEval/0", "pass", "fail"),
        ("HumanEval/1", "pass", "pass"), ("HumanEval/1", "fail", "fail"),
        ("HumanEval/2", "pass", "pass"), ("HumanEval/2", "fail", "fail"), ("HumanEval/2", "fail", "fail"),
        ("HumanEval/0", "fail", "fail"), ("HumanEval/0", "timeout", "timeout"), ("HumanEval/0", "timeout", "timeout"),
    ]
    # evalplus.evaluate reports the (first) failing input; none for a pass
    assert records[2]["base_fail_tests"] == [] and records[2]["plus_fail_tests"] == [[10 ** 20, 1]]
    assert records[1]["base_fail_tests"] == [[1, 2]]
    assert records[0]["solution"] == HE_PLUS[0]["prompt"] + "    return a + b\n"


def test_mbpp_plus_inputs_converted_and_oracles(mbpp_file):
    problems = ep.load_plus(mbpp_file, "mbpp+")
    assert problems[0].inputs["plus"][0] == [[], (1,)]  # Mbpp/106: the tuple argument
    truth = ep.ground_truth(problems, mbpp_file, "mbpp+")  # the canonical solution needs the tuple
    samples = [
        {"task_id": "Mbpp/106", "solution": MBPP_PLUS[0]["canonical_solution"]},
        {"task_id": "Mbpp/106", "solution": "def add_lists(l, t):\n    return t + tuple(l) if l else ()\n"},
        {"task_id": "Mbpp/2",
         "solution": "def similar_elements(a, b):\n    return tuple(sorted(set(a) & set(b), reverse=True))\n"},
        {"task_id": "Mbpp/2", "solution": "def similar_elements(a, b):\n    return (a[0],)\n"},
    ]
    records = ep.check_samples(problems, samples, truth, "mbpp+", min_time_limit=0.5)
    assert _verdicts(records) == [("Mbpp/106", "pass", "pass"), ("Mbpp/106", "pass", "fail"),
                                  ("Mbpp/2", "pass", "pass"), ("Mbpp/2", "fail", "fail")]


def test_canonical_scores_one_and_results_file_matches_evalplus(he_file, tmp_path):
    samples = _write_jsonl(tmp_path / "samples.jsonl",
                           [{"task_id": r["task_id"], "completion": r["canonical_solution"]} for r in HE_PLUS]
                           + [{"task_id": r["task_id"], "completion": "    return None\n"} for r in HE_PLUS])
    out = tmp_path / "out"
    rec = run_benchmark("humaneval+", out, problems_file=he_file, samples_file=samples,
                        settings=Settings(min_time_limit=0.5))
    assert rec["pass_at_k"] == {"base": {"pass@1": 0.5}, "plus": {"pass@1": 0.5}}
    assert rec["problems_sha256"] == hashlib.sha256(he_file.read_bytes()).hexdigest()
    assert rec["samples"] == str(samples) and rec["model"] is None and rec["n_samples"] == 6
    assert json.loads((out / "results.json").read_text()) == rec
    er = json.loads((out / "eval_results.json").read_text())
    assert set(er) == {"date", "hash", "eval", "pass_at_k"}  # evalplus.evaluate's keys
    assert er["hash"] == hashlib.md5(he_file.read_bytes()).hexdigest()
    assert list(er["eval"]) == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    first = er["eval"]["HumanEval/0"]
    assert [set(r) for r in first] == [{"task_id", "solution", "base_status", "plus_status", "base_fail_tests",
                                        "plus_fail_tests"}] * 2
    assert [(r["base_status"], r["plus_status"]) for r in first] == [("pass", "pass"), ("fail", "fail")]
    assert er["pass_at_k"] == {"base": {"pass@1": 0.5}, "plus": {"pass@1": 0.5}}
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [(r["task_id"], r["n"], r["c_base"], r["c_plus"]) for r in rows] == [
        ("HumanEval/0", 2, 1, 1), ("HumanEval/1", 2, 1, 1), ("HumanEval/2", 2, 1, 1)]


def test_ground_truth_cached_and_verdicts_resumed(he_file, tmp_path, monkeypatch):
    problems = ep.load_plus(he_file, "humaneval+")
    truth = ep.ground_truth(problems, he_file, "humaneval+")
    samples = [{"task_id": "HumanEval/0", "completion": "    return a + b\n"},
               {"task_id": "HumanEval/1", "completion": "    return 0.0\n"}]
    stream = tmp_path / "outcomes.jsonl"
    first = ep.check_samples(problems, samples, truth, "humaneval+", stream=stream, min_time_limit=0.5)
    assert len(stream.read_text().splitlines()) == 4  # base + plus per sample

    def no_sandbox(*a, **k):
        raise AssertionError("ran a program that was cached or streamed")

    monkeypatch.setattr("scoder_jax.score.execution.run_python", no_sandbox)
    assert ep.ground_truth(problems, he_file, "humaneval+") == truth  # from the cache
    assert ep.check_samples(problems, samples, truth, "humaneval+", stream=stream, min_time_limit=0.5) == first


def test_codec_keeps_types_and_marks_the_rest():
    import numpy as np

    from scoder_jax.eval.codec import CodecError, Opaque, decode_value, encode_value

    values = [1, (2, 3.5), {4, 5}, frozenset([6]), {"a": (1,)}, {(1, 2): None}, 1j, b"x", float("-inf"), True, None,
              "s", [[]], 10 ** 40]
    back = decode_value(encode_value(values))
    assert back == values and [type(v) for v in back] == [type(v) for v in values]
    nan = decode_value(encode_value(float("nan")))
    assert nan != nan
    assert encode_value([np.int64(3), np.float64(2.5), np.bool_(True)], opaque=True) == [3, 2.5, True]
    gen = decode_value(encode_value((x for x in []), opaque=True))
    assert isinstance(gen, Opaque) and gen != gen
    with pytest.raises(CodecError, match="generator"):
        encode_value(x for x in [])
    with pytest.raises(CodecError, match="not an encoded value"):
        decode_value({"$t": 1})


def test_time_limits_follow_evalplus():
    assert ep.time_limits([0.001, 2.0], 4.0, 4.0) == [4.0, 8.0]
    assert ep.time_limits([0.5], 1.0, 4.0) == [2.0]


def test_bad_input_is_named(tmp_path, he_file, mbpp_file):
    lcb_row = {"question_title": "t", "question_content": "q", "platform": "atcoder", "question_id": "abc1",
               "contest_id": "abc", "contest_date": "2024-01-01T00:00:00", "starter_code": "", "difficulty": "easy",
               "public_test_cases": "[]", "private_test_cases": "[]", "metadata": "{}"}
    lcb = _write_jsonl(tmp_path / "test.jsonl", [lcb_row])
    with pytest.raises(DataError, match=r"test.jsonl: row 1: missing 'task_id'.*LiveCodeBench"):
        ep.load_plus(lcb, "humaneval+")
    with pytest.raises(DataError,
                       match=r"MbppPlus.jsonl: row 1: .*'Mbpp/106' is not a humaneval\+ task.*--benchmark mbpp\+"):
        ep.load_plus(mbpp_file, "humaneval+")
    he = _write_jsonl(tmp_path / "HumanEval.jsonl", [{"task_id": "HumanEval/0", "prompt": "", "entry_point": "f",
                                                      "test": "", "canonical_solution": ""}])
    with pytest.raises(DataError, match=r"HumanEval.jsonl: row 1: missing 'base_input'.*a HumanEval row"):
        ep.load_plus(he, "humaneval+")
    samples = _write_jsonl(tmp_path / "s.jsonl", [{"task_id": "HumanEval/0", "completion": "    return a + b\n"},
                                                   {"task_id": "HumanEval/99", "completion": ""}])
    with pytest.raises(DataError, match=r"s.jsonl: sample 2: task_id 'HumanEval/99' is not a task"):
        run_benchmark("humaneval+", tmp_path / "o", problems_file=he_file, samples_file=samples)
    with pytest.raises(ScoderError, match="needs --problems"):
        run_benchmark("mbpp+", tmp_path / "o", samples_file=samples)
    broken = _write_jsonl(tmp_path / "broken.jsonl", [{**HE_PLUS[0], "canonical_solution": "    return a +\n"}])
    with pytest.raises(DataError, match=r"broken.jsonl: row 1 \(HumanEval/0\): the canonical solution fails"):
        ep.ground_truth(ep.load_plus(broken, "humaneval+"), broken, "humaneval+")


def test_cli_humaneval_plus(he_file, tmp_path):
    from scoder_jax.cli import main

    samples = _write_jsonl(tmp_path / "s.jsonl", [{"task_id": r["task_id"], "completion": r["canonical_solution"]}
                                                  for r in HE_PLUS])
    out = tmp_path / "o"
    try:
        main(["eval", "-b", "humaneval+", "--problems", str(he_file), "--samples", str(samples), "--out", str(out),
              "--min-time-limit", "0.5"])
    except SystemExit as e:
        assert e.code in (0, None)
    rec = json.loads((out / "results.json").read_text())
    assert rec["benchmark"] == "humaneval+" and rec["pass_at_k"]["plus"]["pass@1"] == 1.0
