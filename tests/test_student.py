"""`scoder student` (the baseline: the student fine-tuned and evaluated on any instruction set),
the baseline_oss_instruct preset, and `scoder compare` of a student folder against a run."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fake_run import fake_run

REPO = Path(__file__).resolve().parent.parent


def magicoder(i: int, problem: str, solution: str, lang: str = "python") -> dict:
    """A row as Magicoder's OSS-Instruct-75K publishes it."""
    return {"lang": lang, "raw_index": 100 + i, "index": i, "seed": f"def seed_{i}():\n    return {i}\n",
            "openai_fingerprint": "fp_test", "problem": problem, "solution": solution}


ROWS = [
    magicoder(0, "Write a function `add(a, b)` returning the sum of a and b.",
              "```python\ndef add(a, b):\n    return a + b\n```\n\nThe function adds its arguments."),
    magicoder(1, "Implement `is_even(n)`: True when n is even.",
              "Here is the solution:\n```python\ndef is_even(n):\n    return n % 2 == 0\n\nassert is_even(2)\n```"),
    magicoder(2, "Write `square(x)`.", "```python\ndef square(x):\n    return x * x\n```"),
    magicoder(3, "Explain what a closure is.", "A closure is a function that captures variables."),  # no code
    magicoder(4, "Implement `int twice(int)` in C++.", "```cpp\nint twice(int x) { return 2 * x; }\n```", "cpp"),
]


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def _env() -> dict:
    env = dict(os.environ)
    env.update(XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO))
    return env


def scoder(*args: str, timeout: float = 1500) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scoder_jax.cli", *args], cwd=REPO, env=_env(),
                          capture_output=True, text=True, timeout=timeout)


def _cli(args, capsys) -> tuple[int, str, str]:
    from scoder_jax.cli import main

    try:
        main(args)
        code = 0
    except SystemExit as e:
        code = e.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


# ----------------------------------------------------------------------------- data and bad input


def test_load_samples_reads_magicoder_skips_rows_without_code(tmp_path):
    from scoder_jax.pipeline import student_training_records
    from scoder_jax.student import load_samples

    samples, counts, skipped = load_samples(write_jsonl(tmp_path / "oss.jsonl", ROWS + [ROWS[0]]))
    assert counts["read"] == 5 and counts["imported"] == 4 and counts["duplicates"] == 1 and counts["skipped"] == 1
    assert counts["formats"] == {"magicoder": 5}
    assert [s["lang"] for s in samples] == ["python", "python", "python", "cpp"]
    assert skipped == [{"file": str(tmp_path / "oss.jsonl"), "line": 4,
                        "reason": "field 'solution' has no usable Python code (not code)"}]
    records = student_training_records(samples)
    # the student learns the solution's code, without the prose around it or the asserts after it
    assert records[1]["messages"][1]["content"] == "```python\ndef is_even(n):\n    return n % 2 == 0\n```"
    assert records[3]["messages"][1]["content"].startswith("```cpp\nint twice")


def test_load_samples_reads_a_runs_final_dataset(tmp_path):
    from scoder_jax.io import read_jsonl
    from scoder_jax.student import load_samples

    run_dir, _, _ = fake_run(tmp_path)
    dataset = read_jsonl(run_dir / "final" / "dataset" / "dataset.jsonl")
    samples, counts, skipped = load_samples(run_dir / "final" / "dataset" / "dataset.jsonl")
    assert counts["formats"] == {"scoder": len(dataset)} and not skipped and len(dataset) > 0
    assert [(s["id"], s["problem"], s["solution"]) for s in samples] == \
        [(r["id"], r["problem"], r["solution"].strip("\n")) for r in dataset]


@pytest.mark.parametrize("rows, where, says", [
    ([{"id": "sn-1", "lang": "python", "content": "def f():\n    pass\n", "source": "x.py"}], 1,
     "missing or empty field 'problem'"),  # a snippet pool: another format
    ([ROWS[0], ROWS[1], "{not json"], 3, "malformed JSON"),
    ([ROWS[0], ["a", "list"]], 2, "expected a JSON object"),
])
def test_bad_data_one_line_error_nothing_written(tmp_path, capsys, rows, where, says):
    data = write_jsonl(tmp_path / "data.jsonl", rows)
    out = tmp_path / "out"
    code, _, err = _cli(["student", "--data", str(data), "--config", "smoke", "--out", str(out)], capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith(f"error: {data}") and f"{data}:{where}: {says}" in err, err
    assert "--data expects Magicoder OSS-Instruct JSONL" in err and "nothing written" in err
    assert not out.exists()


def test_out_dir_must_be_empty_or_a_student_run(tmp_path, capsys):
    data = write_jsonl(tmp_path / "oss.jsonl", ROWS)
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    code, _, err = _cli(["student", "--data", str(data), "--config", "smoke", "--out", str(out)], capsys)
    assert code == 2 and "is not empty and is not a `scoder student` run" in err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    code, _, err = _cli(["student", "--data", str(tmp_path / "none.jsonl"), "--config", "smoke", "--out",
                         str(tmp_path / "o2")], capsys)
    assert code == 2 and "none.jsonl: no such file" in err and not (tmp_path / "o2").exists()


def test_bad_config_override_before_any_work(tmp_path, capsys):
    data = write_jsonl(tmp_path / "oss.jsonl", ROWS)
    code, _, err = _cli(["student", "--data", str(data), "--config", "smoke", "--out", str(tmp_path / "o"),
                         "student.epochs=many"], capsys)
    assert code == 2 and "student.epochs" in err and not (tmp_path / "o").exists()


# ----------------------------------------------------------------------------- the preset


def test_baseline_preset_has_the_demo_runs_student_and_eval():
    from scoder_jax.runconfig import load_run_config

    base, _ = load_run_config("baseline_oss_instruct", check_inputs=False)
    demo, _ = load_run_config("demo", check_inputs=False)
    assert base.student == demo.student
    # per_iteration is the loop's (each iteration's synthesizer), not the student's
    assert dataclasses.replace(base.eval, per_iteration=demo.eval.per_iteration) == demo.eval


# ----------------------------------------------------------------------------- compare's labels


def test_compare_labels_a_student_folder_by_its_name(tmp_path, capsys):
    from scoder_jax.eval.results import build_results, write_results
    from scoder_jax.student import COMMAND, SUMMARY

    run_dir, _, _ = fake_run(tmp_path)
    base = tmp_path / "baseline"
    (base / "eval").mkdir(parents=True)
    (base / SUMMARY).write_text(json.dumps({"command": COMMAND}))
    (base / "eval" / "summary.json").write_text("{}")  # humaneval's own summary beside its results.json
    write_results(build_results("humaneval", problems_file=None, n_problems=2, n_samples=2,
                                pass_at_k={"base": {"pass@1": 0.5}}, model=str(base / "student" / "1")), base / "eval")
    html = tmp_path / "t.html"
    code, out, err = _cli(["compare", str(run_dir), str(base), "--html", str(html)], capsys)
    assert code == 0, err
    rows = {line.split("|")[1].strip(): line for line in out.splitlines()[2:]}
    assert set(rows) == {"run/iter_01", "run/iter_02", "run/final", "baseline"}
    assert " 50.0 |" in rows["baseline"] and rows["run/final"].split("|")[3].strip() == "12.5"  # HumanEval+
    assert "<td>baseline</td><td align=right>50.0</td>" in html.read_text()


# ----------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_student_on_magicoder_data_then_compare_with_a_run(tmp_path):
    data = write_jsonl(tmp_path / "oss.jsonl", ROWS)
    out = tmp_path / "baseline"
    r = scoder("student", "--data", str(data), "--config", "smoke", "--out", str(out), "student.epochs=1")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "1 row(s) without usable code skipped" in r.stderr and f"{data}:4" in r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["command"] == "scoder student" and summary["status"] == "done"
    assert summary["data"]["sha256"] == __import__("hashlib").sha256(data.read_bytes()).hexdigest()
    assert summary["data"]["rows"] == 4 and summary["data"]["skipped"] == 1
    assert summary["train"]["samples"] == 4 and summary["train"]["steps"] >= 1
    assert len(summary["config"]["student_hash"]) == 16
    assert [json.loads(x)["line"] for x in (out / "skipped.jsonl").read_text().splitlines()] == [4]
    results = json.loads((out / "eval" / "results.json").read_text())
    assert results["benchmark"] == "humaneval" and results["n_problems"] == 2
    assert results["model"].startswith(str(out / "student"))
    assert summary["eval"]["pass@1"] == results["pass_at_k"]["base"]["pass@1"]
    assert f"student pass@1 (humaneval, 2 problems): {summary['eval']['pass@1']}" in r.stdout

    # the same command again: already trained and evaluated, nothing redone
    r = scoder("student", "--data", str(data), "--config", "smoke", "--out", str(out), "student.epochs=1")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resuming" in r.stderr and "already trained" in r.stderr and "evaluating" not in r.stderr
    # other data or other student settings into the same folder: refused, nothing touched
    other = write_jsonl(tmp_path / "other.jsonl", ROWS[:2])
    before = (out / "summary.json").read_text()
    r = scoder("student", "--data", str(other), "--config", "smoke", "--out", str(out), "student.epochs=1")
    assert r.returncode == 2 and "holds a `scoder student` run of other data" in r.stderr
    r = scoder("student", "--data", str(data), "--config", "smoke", "--out", str(out), "student.epochs=2")
    assert r.returncode == 2 and "other student settings" in r.stderr
    assert (out / "summary.json").read_text() == before
    # other eval settings: the trained student is evaluated again, its earlier results replaced
    r = scoder("student", "--data", str(data), "--config", "smoke", "--out", str(out), "student.epochs=1",
               "eval.limit=1")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "already trained" in r.stderr and "evaluating" in r.stderr
    results = json.loads((out / "eval" / "results.json").read_text())
    assert results["n_problems"] == 1 and json.loads((out / "summary.json").read_text())["eval"]["n_problems"] == 1

    run_dir, _, _ = fake_run(tmp_path / "scoder")
    html = tmp_path / "compare.html"
    r = scoder("compare", str(run_dir), str(out), "--html", str(html), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    labels = [line.split("|")[1].strip() for line in r.stdout.splitlines()[2:]]
    assert labels == ["run/final", "run/iter_01", "run/iter_02", "baseline"]
    expected = f"{100 * results['pass_at_k']['base']['pass@1']:.1f}"
    assert r.stdout.splitlines()[-1].split("|")[2].strip() == expected  # its HumanEval cell
    assert "<td>baseline</td>" in html.read_text() and "<td>run/final</td>" in html.read_text()
