"""The sample format (`synth.format`): problem_solution (the paper's (q, s) pairs) or
problem_solution_tests (this project's addition). Prompt, parser, training target, seed import,
sampling key, execution signals, selection, judge prompt and export follow it; a Magicoder seed
set without asserts gives a working loop (problem_solution: kept; problem_solution_tests:
dropped with a count)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scoder_jax.errors import ConfigError, DataError, ScoderError
from scoder_jax.io import read_jsonl
from scoder_jax.synth import prompts
from scoder_jax.synth.prompts import build_messages, build_prompt_text, format_response
from scoder_jax.synth.reply_parser import parse_response

REPO = Path(__file__).resolve().parent.parent
PROBLEM = "Write `count_words(s)` that returns the number of whitespace-separated words in `s`."
SOL = "def count_words(s):\n    return len(s.split())"
TST = "assert count_words('a b  c') == 3\nassert count_words('') == 0"
PS, PST = "problem_solution", "problem_solution_tests"


# ----------------------------------------------------------------------------------------------
# prompt and parser


def test_prompt_asks_for_tests_only_in_the_tests_format():
    snippet = "def split_words(text):\n    return text.split()\n"
    with_tests = build_messages(snippet, "python", PST)
    without = build_messages(snippet, "python", PS)
    assert with_tests == build_messages(snippet, "python")  # the default format is unchanged
    assert "[Tests]" in with_tests[1]["content"] and "assert" in with_tests[1]["content"]
    for m in without:
        assert "test" not in m["content"].lower() and "assert" not in m["content"]
    user = without[1]["content"]
    assert "\n[Problem]\n" in user and "\n[Solution]\n" in user and "exactly two sections" in user
    assert "```python\n" + snippet.rstrip() + "\n```" in user
    assert build_prompt_text(snippet, "python", PS).endswith("[Problem]\n")
    assert "test" not in build_prompt_text(snippet, "python", PS).lower()
    assert prompts.prompt_version(PS) != prompts.prompt_version(PST) == prompts.PROMPT_VERSION
    with pytest.raises(ValueError, match="unknown sample format 'qa'"):
        build_messages(snippet, "python", "qa")


@pytest.mark.parametrize("lang", ["python", "javascript"])
def test_round_trip_in_each_format(lang):
    sol = SOL if lang == "python" else "function countWords(s) {\n  return s.split(/\\s+/).filter(Boolean).length;\n}"
    tst = TST if lang == "python" else "console.assert(countWords('a b') === 2);"
    reply = format_response(PROBLEM, sol, tst, lang, PST)
    r = parse_response(reply, lang, fmt=PST)
    assert r.ok and (r.problem, r.solution, r.tests) == (PROBLEM, sol, tst)

    reply = format_response(PROBLEM, sol, tst, lang, PS)  # the tests are left out of the reply
    assert "[Tests]" not in reply and "assert" not in reply
    r = parse_response(reply, lang, fmt=PS)
    assert r.ok and (r.problem, r.solution, r.tests) == (PROBLEM, sol, "")
    assert parse_response(reply, lang, fmt=PST).reason == "no_tests"  # what the tests format says of it


def test_tests_format_refuses_to_write_an_empty_tests_block():
    """The old bug: a seed without tests taught the synthesizer an empty [Tests] block, which
    the parser then rejects."""
    with pytest.raises(ValueError, match="needs tests"):
        format_response(PROBLEM, SOL, "", "python", PST)
    assert parse_response(format_response(PROBLEM, SOL, "", "python", PS), fmt=PS).ok


def test_problem_solution_parser_ignores_tests_but_checks_the_solution():
    both = format_response(PROBLEM, SOL, TST, "python", PST)
    r = parse_response(both, fmt=PS)  # a [Tests] section written anyway ends the solution, nothing more
    assert r.ok and r.solution == SOL and r.tests == ""
    embedded = f"[Problem]\n{PROBLEM}\n[Solution]\n```python\n{SOL}\n\n{TST}\n```\n"
    r = parse_response(embedded, fmt=PS)  # asserts inside the solution stay part of it
    assert r.ok and r.solution == f"{SOL}\n\n{TST}" and r.tests == ""
    assert parse_response(f"[Problem]\n{PROBLEM}\n[Solution]\n```python\ndef f(:\n```\n",
                          fmt=PS).reason == "solution_syntax_error"
    assert parse_response(f"[Problem]\n{PROBLEM}\n[Solution]\n```python\n\"just a docstring\"\n```\n",
                          fmt=PS).reason == "solution_not_code"
    assert parse_response(f"[Problem]\n{PROBLEM}\n", fmt=PS).reason == "no_solution"
    assert parse_response(f"[Problem]\n{PROBLEM}\n[Solution]\n```python\n{SOL}\n", fmt=PS).reason == "truncated"


# ----------------------------------------------------------------------------------------------
# seed import


def magicoder_rows(snippets: list[str], asserts: bool = True) -> list[dict]:
    """Magicoder OSS-Instruct rows that share one reply, as the smoke preset's seed samples do (so
    the tiny synthesizer memorises one parseable reply): one per snippet without asserts, then
    (`asserts`) one per snippet with asserts embedded in its code (the same sample once split off)."""
    plain = f"```python\n{SOL}\n```\n\nThe function splits on whitespace and counts the parts."
    tested = f"```python\n{SOL}\n\n{TST}\n```\n"
    return [{"model": "gpt-3.5-turbo-1106", "index": i, "lang": "python", "raw_index": 100 + i, "seed": s,
             "openai_fingerprint": "fp_x", "problem": PROBLEM, "solution": sol}
            for i, (sol, s) in enumerate((sol, s) for sol in (plain, tested)[:1 + asserts] for s in snippets)]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# the smoke preset's snippets: its pool and its seed samples' snippets
SNIPPETS = [r["snippet"] for r in read_jsonl(REPO / "configs" / "smoke_seed.jsonl")]


def test_magicoder_seed_without_asserts_in_each_format(tmp_path):
    from scoder_jax.pipeline import synth_training_records
    from scoder_jax.synth.seed_import import import_seed

    src = write_jsonl(tmp_path / "oss.jsonl", magicoder_rows(SNIPPETS))
    s = import_seed(src, tmp_path / "ps", fmt=PS)  # kept, tests empty; the asserted rows are the same samples
    assert (s["imported"], s["duplicates"], s["dropped_no_tests"], s["with_tests"]) == (2, 2, 0, 0)
    recs = read_jsonl(tmp_path / "ps" / "seed.jsonl")
    assert [r["snippet"] for r in recs] == SNIPPETS  # one reply from two snippets: two samples
    assert all(r["tests"] == "" and r["solution"] == SOL for r in recs)
    rec = recs[0]
    [train] = synth_training_records([rec], PS)
    reply = train["messages"][-1]["content"]
    assert parse_response(reply, fmt=PS).ok and "[Tests]" not in reply
    assert "test" not in train["messages"][1]["content"].lower()

    s = import_seed(src, tmp_path / "pst", fmt=PST)  # dropped with a count; the asserted rows stay
    assert (s["imported"], s["dropped_no_tests"], s["with_tests"]) == (2, 2, 2)
    assert s["first_dropped_no_tests"] == [f"{src}:1", f"{src}:2"]
    recs = read_jsonl(tmp_path / "pst" / "seed.jsonl")
    assert all(r["tests"] == TST and r["solution"] == SOL for r in recs)
    rec = recs[0]
    [train] = synth_training_records([rec], PST)
    assert parse_response(train["messages"][-1]["content"], fmt=PST).tests == TST

    s = import_seed(src, tmp_path / "any")  # no format (the Python default): everything kept
    assert (s["imported"], s["dropped_no_tests"]) == (2, 0)

    only = write_jsonl(tmp_path / "only.jsonl", magicoder_rows(SNIPPETS, asserts=False))
    with pytest.raises(DataError, match=r"none of its 2 usable sample\(s\) has tests .*synth.format=problem_solution"):
        import_seed(only, tmp_path / "none", strict=True, fmt=PST)
    assert not (tmp_path / "none" / "seed.jsonl").exists()
    with pytest.raises(ScoderError, match="has no tests"):
        synth_training_records([{**rec, "tests": ""}], PST)


def test_seed_stage_reports_the_drop_and_reruns_on_a_format_change(tmp_path):
    import dataclasses

    from scoder_jax.pipeline import Context, Manifest, build_stages, stage_key
    from scoder_jax.stages import run_seed
    from scoder_jax.runconfig import load_run_config

    src = write_jsonl(tmp_path / "oss.jsonl", magicoder_rows(SNIPPETS))
    cfg, _ = load_run_config("smoke", [f"seed_set.source={src}"])
    stages = {s.name: s for s in build_stages(cfg)}
    ctx = Context(cfg, tmp_path / "run", Manifest(tmp_path), stages, progress=False)
    counts = run_seed(ctx, stages["seed"], tmp_path / "run" / "seed")
    assert counts == {"samples": 2, "dropped_no_tests": 2}
    ps = dataclasses.replace(cfg, synth=dataclasses.replace(cfg.synth, format=PS))
    for name in ("seed", "sample_01", "score_01", "final_sample", "final_score"):
        assert stage_key(cfg, stages[name], {}) != stage_key(ps, stages[name], {}), name
    for name in ("pool", "export"):
        assert stage_key(cfg, stages[name], {}) == stage_key(ps, stages[name], {}), name


def test_unknown_format_is_one_line_before_any_work(tmp_path):
    from scoder_jax.runconfig import load_run_config

    with pytest.raises(ConfigError, match=r"'synth.format' = 'qa' is not one of 'problem_solution', "
                                          r"'problem_solution_tests'"):
        load_run_config("smoke", ["synth.format=qa"])
    r = subprocess.run([sys.executable, "-m", "scoder_jax.cli", "iterate", "--config", "smoke", "--run-dir",
                        str(tmp_path / "run"), "synth.format=qa"], cwd=tmp_path, capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "synth.format" in r.stderr
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------------------------
# sampling


def test_sampling_parses_and_keys_by_the_format(tmp_path):
    from scoder_jax.synth.sampler import CheckpointRef, SampleConfig, _check_config, unit_records

    snip = {"id": "sn-x", "lang": "python", "content": SNIPPETS[0]}
    ref = CheckpointRef(0, "/ck/0", 10)
    reply = format_response(PROBLEM, SOL, "", "python", PS)
    cands, rejects = unit_records(snip, ref, 0, [(0, reply, "stop", 30)], fmt=PS)
    assert not rejects and cands[0]["tests"] == "" and cands[0]["solution"] == SOL
    cands, rejects = unit_records(snip, ref, 0, [(0, reply, "stop", 30)])  # the default asks for tests
    assert not cands and rejects[0]["reason"] == "no_tests"

    assert SampleConfig().fingerprint() == SampleConfig(format=PST).fingerprint()
    fp = SampleConfig(format=PS).fingerprint()
    assert fp["format"] == PS and fp["prompt_version"] == prompts.prompt_version(PS)
    _check_config(tmp_path, SampleConfig(format=PS), [ref])
    with pytest.raises(ConfigError, match="sampled with other sampling parameters"):
        _check_config(tmp_path, SampleConfig(format=PST), [ref])
    with pytest.raises(ConfigError, match="format"):
        SampleConfig(format="qa")


# ----------------------------------------------------------------------------------------------
# scoring


def test_signals_without_tests_are_parses_and_runs():
    from scoder_jax.score.signals import execution_signals

    ok = {"lang": "python", "solution": SOL, "tests": ""}
    cands = [ok, {**ok, "solution": "def f(:\n"}, {**ok, "solution": f"{SOL}\nraise SystemExit(3)\n"},
             {**ok, "tests": "assert False"}, {"lang": "cpp", "solution": "int f() { return 1; }", "tests": ""}]
    sigs = execution_signals(cands, workers=2, tests=False)
    triples = [None if s is None else (s["parses"], s["runs"], s["passes"]) for s in sigs]
    # tests are never run in this format, not even a candidate's own (the fourth would fail them)
    assert triples == [(True, True, None), (False, False, None), (True, False, None), (True, True, None), None]
    assert sigs[0]["detail"] == "" and sigs[0]["test_status"] == "not_run"
    with_tests = execution_signals(cands[:1], workers=2)  # the tests format: no tests is a failure
    assert with_tests[0]["passes"] is False and with_tests[0]["detail"] == "no tests"


def test_require_tests_pass_keeps_untested_candidates_and_totals_skip_passes(tmp_path):
    import numpy as np

    from scoder_jax.score.select import SelectConfig, reselect, select_best
    from scoder_jax.score.weights import Weights

    sig = lambda runs, passes: {"parses": True, "runs": runs, "passes": passes}  # noqa: E731
    rows = [{"id": "a", "snippet_id": "A", "total": 5.0, "signals": sig(True, None), "unscored": ""},
            {"id": "b", "snippet_id": "B", "total": 5.0, "signals": sig(True, False), "unscored": ""}]
    chosen, why = select_best(rows, SelectConfig(threshold=0.0, require_tests_pass=True))
    assert chosen == ["a"] and why["b"] == "failed_tests"

    # the scoring run's totals and summary from judged rows without a passes signal
    (tmp_path / "judge.json").write_text(json.dumps({"judge": "j", "aspects": [{"name": "clarity"}]}))
    cands = [{"id": "a", "snippet_id": "A"}, {"id": "b", "snippet_id": "B"}]
    judged = [{"id": "a", "snippet_id": "A", "lang": "python", "scores": {"clarity": 6.0}, "truncated": False,
               "signals": sig(True, None), "unscored": ""},
              {"id": "b", "snippet_id": "B", "lang": "python", "scores": {"clarity": 8.0}, "truncated": False,
               "signals": sig(False, None), "unscored": ""}]
    write_jsonl(tmp_path / "judged.jsonl", judged)
    summary = reselect(cands, tmp_path, weights=Weights.default(["clarity"]),
                       select=SelectConfig(threshold=0.0, require_tests_pass=True))
    assert summary["selected"] == 2 and summary["reasons"] == {"selected": 2}
    assert summary["signal_rates"] == {"parses": 1.0, "runs": 0.5}  # passes was never checked: no rate
    totals = {r["id"]: r["total"] for r in read_jsonl(tmp_path / "scores.jsonl")}
    assert totals == {"a": pytest.approx(6.0 + 2), "b": pytest.approx(8.0 + 1)}
    assert not np.isnan(list(totals.values())).any()


def test_judge_prompt_does_not_mention_tests_when_there_are_none():
    from scoder_jax.score.judge import DEFAULT_ASPECTS, judge_messages

    cand = {"snippet": SNIPPETS[0], "lang": "python", "problem": PROBLEM, "solution": SOL, "tests": ""}
    for a in DEFAULT_ASPECTS:
        text = "\n".join(m["content"] for m in judge_messages(cand, a, DEFAULT_ASPECTS))
        assert "test" not in text.lower(), (a.name, text)
    text = judge_messages({**cand, "tests": TST}, DEFAULT_ASPECTS[2], DEFAULT_ASPECTS)[1]["content"]
    assert "Tests:\n```python\n" + TST in text and "solution and tests match" in text


def test_export_rows_without_tests_have_null_tests_pass(tmp_path):
    from scoder_jax.export import export_dataset

    rec = {"id": "c", "snippet_id": "s", "lang": "python", "problem": PROBLEM, "solution": SOL, "tests": "",
           "meta": {"score": {"total": 7.0, "scores": {"clarity": 6.0},
                              "signals": {"parses": True, "runs": True, "passes": None}}}}
    counts = export_dataset([rec], tmp_path)
    [row] = read_jsonl(tmp_path / "dataset.jsonl")
    assert row["tests_pass"] is None and row["tests"] == "" and counts["tests_pass"] is None


# ----------------------------------------------------------------------------------------------
# end to end


@pytest.mark.slow
@pytest.mark.parametrize("fmt", [PS, PST])
def test_smoke_in_each_format_from_a_magicoder_seed(fmt, tmp_path):
    """The smoke preset in each format from a Magicoder OSS-Instruct seed file: problem_solution
    with no asserts anywhere (a dataset without tests or test verdicts); problem_solution_tests
    with half its rows asserting (the others dropped with a count; a dataset whose tests pass).
    With iterations=0 the final set is S_0's (the format is handled by the same sample and score
    stages in every iteration; tests/test_loop_options.py runs the iterations)."""
    src = write_jsonl(tmp_path / "oss.jsonl", magicoder_rows(SNIPPETS, asserts=fmt == PST))
    run = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-m", "scoder_jax.cli", "iterate", "--config", "smoke", "--run-dir", str(run),
                        "--no-progress", "--until", "export", "iterations=0", f"synth.format={fmt}",
                        f"seed_set.source={src}"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1500)
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads((run / "manifest.json").read_text())["stages"]
    assert m["seed"]["counts"] == {"samples": 2, "dropped_no_tests": 2 if fmt == PST else 0}
    seeds = read_jsonl(run / "seed" / "seed.jsonl")
    assert all(s["tests"] == ("" if fmt == PS else TST) and s["meta"]["import_format"] == "magicoder" for s in seeds)
    train = read_jsonl(run / "iter_00" / "ckpt.train.jsonl")
    assert all(parse_response(t["messages"][-1]["content"], fmt=fmt).ok for t in train)
    assert all(("[Tests]" in t["messages"][-1]["content"]) == (fmt == PST) for t in train)
    assert "sample_01" not in m
    # parsed replies, certainly (the seed's shared reply); a tiny model may still garble a few
    assert m["final_sample"]["counts"]["candidates"] > 0, m["final_sample"]
    cands = read_jsonl(run / "final" / "samples" / "candidates.jsonl")
    assert all((c["tests"] == "") == (fmt == PS) for c in cands)
    scored = read_jsonl(run / "final" / "scores" / "scores.jsonl")
    assert all(s["signals"]["parses"] and s["signals"]["passes"] is (None if fmt == PS else True) for s in scored)
    assert not any(s["reason"] == "failed_tests" for s in scored)  # smoke requires passing tests
    rows = read_jsonl(run / "final" / "dataset" / "dataset.jsonl")
    assert rows and m["export"]["counts"] == {"rows": len(rows), "tests_pass": None if fmt == PS else len(rows)}
    assert all((r["tests"] == "") == (fmt == PS) and r["tests_pass"] is (None if fmt == PS else True) for r in rows)
