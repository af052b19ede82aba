"""results.json across benchmarks, `scoder compare`'s table, and the run config's eval.benchmarks
(a model evaluated on several benchmarks, as `scoder iterate`'s eval stages do)."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from scoder_jax.errors import ConfigError, DataError
from scoder_jax.eval.compare import build_table, format_text
from scoder_jax.eval.results import build_results, write_results
from scoder_jax.eval.suite import run_suite

from test_evalplus import HE_PLUS
from test_livecodebench import REFERENCE, ROWS


def _cli(args, capsys):
    from scoder_jax.cli import main

    try:
        main(args)
        code = 0
    except SystemExit as e:
        code = e.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


def _result(out: Path, benchmark: str, model: str, base: float, plus: float | None = None, **extra) -> Path:
    scores = {"base": {"pass@1": base}} | ({"plus": {"pass@1": plus}} if plus is not None else {})
    write_results(build_results(benchmark, problems_file=None, n_problems=10, n_samples=10, pass_at_k=scores,
                                model=model, **extra), out)
    return out / "results.json"


def test_compare_prints_the_paper_table(tmp_path, capsys):
    _result(tmp_path / "a" / "he", "humaneval+", "ckpt-a", 0.622, 0.561)
    _result(tmp_path / "a" / "mbpp", "mbpp+", "ckpt-a", 0.709, 0.603)
    _result(tmp_path / "a" / "lcb", "livecodebench", "ckpt-a", 0.154, window={"since": "2024-08-01", "until": None})
    _result(tmp_path / "b" / "he", "humaneval", "ckpt-b", 0.5)
    run = tmp_path / "run"
    (run / "final" / "eval").mkdir(parents=True)
    (run / "manifest.json").write_text("{}")
    _result(run / "final" / "eval", "humaneval", "run/final/student/ckpt", 0.25)
    columns, rows = build_table([tmp_path / "a", tmp_path / "b" / "he" / "results.json", run])
    assert columns == ["HumanEval", "HumanEval+", "MBPP", "MBPP+", "LCB (2024-08-01..)"]
    assert dict(rows)["ckpt-a"] == pytest.approx({"HumanEval": 62.2, "HumanEval+": 56.1, "MBPP": 70.9, "MBPP+": 60.3,
                                                  "LCB (2024-08-01..)": 15.4})
    assert dict(rows)["run/final"] == {"HumanEval": 25.0}
    text = format_text(columns, rows)
    assert "| ckpt-b " in text and " 50.0 |" in text and text.count("\n") == 4

    html = tmp_path / "t.html"
    code, out, err = _cli(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--html", str(html)], capsys)
    assert code == 0, err
    assert "56.1" in out and "<td align=right>56.1</td>" in html.read_text()
    code, _, err = _cli(["compare", str(tmp_path / "nope")], capsys)
    assert code == 2 and "nope: no such file or directory" in err
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(DataError, match="bad.json: not a scoder results.json"):
        build_table([tmp_path / "bad.json"])


def test_eval_section_benchmarks_validated():
    from scoder_jax.runconfig import EvalSection

    assert EvalSection(benchmarks=("humaneval+", "livecodebench")).benchmarks == ("humaneval+", "livecodebench")
    with pytest.raises(ConfigError, match=r"unknown benchmark 'mbpp\+\+'"):
        EvalSection(benchmarks=("mbpp++",))


def test_run_suite_evaluates_every_benchmark_with_a_file(tmp_path, monkeypatch):
    """The run config's eval.benchmarks: each benchmark with its file, through a (fake) model's replies."""
    monkeypatch.setenv("SCODER_EVAL_CACHE", str(tmp_path / "cache"))
    he = tmp_path / "HumanEvalPlus.jsonl"
    he.write_text("".join(json.dumps(r) + "\n" for r in HE_PLUS))
    lcb_file = tmp_path / "test6.jsonl"
    lcb_file.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    seen = []

    def generate_completions(model_path, prompts, *, n, temperature, max_new_tokens, stop=(), chat=False):
        seen.append((len(prompts), chat, isinstance(prompts[0], list)))
        replies = []
        for p in prompts:
            if isinstance(p, list):  # LiveCodeBench: system + user messages
                qid = next(q for q in REFERENCE if f"Problem {q}." in p[1]["content"])
                replies.append([f"```python\n{REFERENCE[qid]}```"] * n)
            else:  # EvalPlus's instruction: the right function for every task
                row = next(r for r in HE_PLUS if r["prompt"].strip() in p)
                replies.append([f"```python\n{row['prompt']}{row['canonical_solution']}```"] * n)
        return replies

    fake = types.ModuleType("scoder_jax.generate.engine")
    fake.generate_completions = generate_completions
    monkeypatch.setitem(sys.modules, "scoder_jax.generate.engine", fake)
    from scoder_jax.runconfig import EvalSection

    cfg = EvalSection(benchmarks=("humaneval+", "mbpp+", "livecodebench"),
                      files={"humaneval+": str(he), "livecodebench": str(lcb_file)}, since="2024-09-01")
    counts = run_suite("ckpt", cfg, tmp_path / "eval")
    assert counts["skipped"] == ["mbpp+"]
    assert counts["benchmark"] == "humaneval+" and counts["pass@1"] == 1.0 and counts["pass@1_plus"] == 1.0
    assert counts["benchmarks"]["livecodebench"] == {"pass@1": 1.0, "n_problems": 2}
    assert seen == [(3, True, False), (2, True, True)]
    rec = json.loads((tmp_path / "eval" / "livecodebench" / "results.json").read_text())
    assert rec["model"] == "ckpt" and rec["decoding"]["n"] == 1 and rec["window"]["since"] == "2024-09-01"
    columns, rows = build_table([tmp_path / "eval"])
    assert rows == [("ckpt", {"HumanEval": 100.0, "HumanEval+": 100.0, "LCB (2024-09-01..)": 100.0})]
