"""Scoring: AUC, weight fitting, corruptions, execution signals, selection, and the scoring run
(judge + sandbox + selection, resumable) through the Python API and `scoder score`."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from scoder_jax.errors import ConfigError, DataError
from scoder_jax.score.select import REASONS, SelectConfig, reselect, score_candidates, select_best
from scoder_jax.score.signals import execution_signals
from scoder_jax.score.weights import (CORRUPTIONS, Weights, auc, break_code, corrupt, features, fit_weights,
                                      stratified_folds, youden_threshold)

SEED = Path(__file__).resolve().parents[1] / "scoder_jax" / "data" / "seed" / "demo_seed.jsonl"


def _seed(n: int) -> list[dict]:
    return [json.loads(line) for line in SEED.read_text().splitlines()[:n]]


# ----------------------------------------------------------------------------------------------
# metrics and fitting


def test_auc_is_the_fraction_of_correctly_ordered_pairs():
    rng = np.random.default_rng(0)
    s = rng.integers(0, 5, 60).astype(float)  # many ties
    y = rng.integers(0, 2, 60)
    pairs = [(a, b) for a in s[y == 1] for b in s[y == 0]]
    want = np.mean([1.0 if a > b else 0.5 if a == b else 0.0 for a, b in pairs])
    assert auc(s, y) == pytest.approx(want)
    assert auc([1, 2, 3], [0, 1, 1]) == 1.0 and auc([3, 2, 1], [0, 1, 1]) == 0.0
    assert np.isnan(auc([1, 2], [1, 1]))


def test_folds_are_stratified_and_deterministic():
    y = np.array([1] * 10 + [0] * 7)
    f = stratified_folds(y, 3, seed=1)
    assert (f == stratified_folds(y, 3, seed=1)).all()
    for k in range(3):
        assert 3 <= (y[f == k] == 1).sum() <= 4 and 2 <= (y[f == k] == 0).sum() <= 3


def _synthetic(n=60, seed=0):
    """Aspect 0 and 'passes' carry the label; aspect 1 is noise."""
    rng = np.random.default_rng(seed)
    y = np.array([1] * n + [0] * n)
    a0 = np.clip(4 + 3 * y + rng.normal(0, 1.2, 2 * n), 0, 9)
    a1 = rng.uniform(0, 9, 2 * n)
    passes = (rng.uniform(size=2 * n) < np.where(y == 1, 0.9, 0.3))
    sigs = [{"parses": True, "runs": True, "passes": bool(p)} for p in passes]
    return np.stack([a0, a1], 1), sigs, y


@pytest.mark.parametrize("method", ["nnls", "logistic"])
def test_fit_weights_finds_the_informative_features(method):
    A, sigs, y = _synthetic()
    w = fit_weights(A, sigs, y, ["good", "noise"], method=method, folds=5, seed=0)
    assert all(v >= 0 for v in [*w.aspect_weights, *w.exec_weights])
    assert w.aspect_weights[0] > 5 * w.aspect_weights[1] and w.exec_weights[2] > 0
    r = w.report
    assert r["cv_auc"] > 0.9 and r["auc"] >= r["cv_auc"] - 0.05 and len(r["fold_aucs"]) == 5
    assert r["feature_aucs"]["good"] > 0.9 and 0.3 < r["feature_aucs"]["noise"] < 0.7
    totals = w.total(A, sigs)
    assert auc(totals, y) == pytest.approx(r["auc"])
    kept = totals >= w.threshold
    assert kept[y == 1].mean() > 0.8 and kept[y == 0].mean() < 0.3
    again = fit_weights(A, sigs, y, ["good", "noise"], method=method, folds=5, seed=0)
    assert again == w and again.report == w.report
    no_exec = fit_weights(A, sigs, y, ["good", "noise"], method=method, use_exec=False)
    assert no_exec.exec_weights == (0.0, 0.0, 0.0)


def test_fit_weights_refuses_unusable_data():
    A, sigs, y = _synthetic(5)
    with pytest.raises(DataError, match="at least 2 positives and 2 negatives"):
        fit_weights(A[:6], sigs[:6], [1] * 6, ["a", "b"])
    with pytest.raises(ConfigError, match="choose one of nnls, logistic"):
        fit_weights(A, sigs, y, ["a", "b"], method="svm")
    A[0, 0] = np.nan
    with pytest.raises(DataError, match="not judged"):
        fit_weights(A, sigs, y, ["a", "b"])


def test_youden_threshold_separates():
    assert youden_threshold([1, 2, 3, 10, 11, 12], [0, 0, 0, 1, 1, 1]) == pytest.approx(6.5)


def test_weights_files_and_defaults(tmp_path):
    w = Weights(("a", "b"), (0.5, 2.0), (0.0, 1.0, 3.0), -1.0, 4.5, "nnls", {"cv_auc": 0.8})
    w.save(tmp_path / "w.json")
    back = Weights.load(tmp_path / "w.json")
    assert back == w and back.report == {"cv_auc": 0.8}
    assert back.aligned(["b", "a"]).aspect_weights == (2.0, 0.5)
    with pytest.raises(ConfigError, match="no weight for aspect.*c"):
        back.aligned(["a", "c"])
    (tmp_path / "bad.json").write_text('{"aspect_weights": {"a": "x"}}')
    with pytest.raises(ConfigError, match="bad.json: weights must be numbers"):
        Weights.load(tmp_path / "bad.json")
    (tmp_path / "bad2.json").write_text('{"aspect_weights": {"a": 1}, "exec_weights": {"compiles": 1}}')
    with pytest.raises(ConfigError, match="unknown execution signal"):
        Weights.load(tmp_path / "bad2.json")
    with pytest.raises(ConfigError, match="no such weights file"):
        Weights.load(tmp_path / "none.json")
    d = Weights.default(["x", "y", "z"])
    A = np.array([[3.0, 6.0, 9.0], [np.nan, 1, 1]])
    t = d.total(A, [{"parses": True, "runs": False, "passes": True}, None])
    assert t[0] == pytest.approx(6.0 + 1 + 2) and np.isnan(t[1])
    assert features(A[:1], [None]).tolist() == [[3.0, 6.0, 9.0, 0.0, 0.0, 0.0]]


# ----------------------------------------------------------------------------------------------
# corruptions and signals


def test_corruptions_are_deterministic_and_of_every_kind():
    P = _seed(8)
    N = corrupt(P, seed=3)
    assert corrupt(P, seed=3) == N and len(N) == 8
    assert [n["meta"]["corruption"] for n in N] == [CORRUPTIONS[k % 4] for k in range(8)]
    by_id = {p["id"]: p for p in P}
    for n in N:
        a, b = by_id[n["meta"]["source"]], by_id[n["meta"]["partner"]]
        kind = n["meta"]["corruption"]
        assert n["origin"] == "corrupt" and n["snippet_id"] == a["snippet_id"] and n["id"] not in by_id
        if kind == "swap_solution":
            assert n["solution"] == b["solution"] != a["solution"] and n["problem"] == a["problem"]
            assert n["tests"] == a["tests"]
        elif kind == "wrong_problem":
            assert n["problem"] == b["problem"] != a["problem"] and n["solution"] == a["solution"]
        elif kind == "off_topic":
            assert (n["problem"], n["solution"], n["tests"]) == (b["problem"], b["solution"], b["tests"])
            assert n["snippet"] == a["snippet"] != b["snippet"]
        else:
            with pytest.raises(SyntaxError):
                ast.parse(n["solution"])
            assert a["solution"].startswith(n["solution"][:20])
    assert len(corrupt(P, 20, kinds=["broken_code"])) == 20
    with pytest.raises(DataError, match="at least 2 positives"):
        corrupt(P[:1])
    with pytest.raises(ConfigError, match="corruption 'typo'"):
        corrupt(P, kinds=["typo"])


def test_break_code_never_parses():
    for code in ("x = 1", "def f():\n    return [1, 2]\n", "print('(')", "a"):
        with pytest.raises(SyntaxError):
            ast.parse(break_code(code))


def test_execution_signals_in_the_sandbox():
    ok = {"lang": "python", "solution": "def f(x):\n    return x + 1\n", "tests": "assert f(1) == 2\n"}
    cands = [
        ok,
        {**ok, "tests": "assert f(1) == 3\n"},  # wrong tests
        {**ok, "solution": "def f(x) return x"},  # does not parse
        {**ok, "solution": "def f(x):\n    return x + 1\nraise SystemExit(3)\n"},  # crashes when run
        {**ok, "tests": "assert f(1) ==\n"},  # tests do not parse
        {**ok, "tests": ""},
        {"lang": "javascript", "solution": "function f(x) { return x + 1 }", "tests": "console.assert(f(1) === 2)"},
    ]
    sigs = execution_signals(cands, workers=2)
    triples = [None if s is None else (s["parses"], s["runs"], s["passes"]) for s in sigs]
    assert triples == [(True, True, True), (True, True, False), (False, False, False), (True, False, False),
                       (True, True, False), (True, True, False), None]
    assert sigs[1]["test_status"] == "failed" and sigs[1]["detail"] == "the tests: exit code 1: AssertionError"
    assert sigs[3]["run_status"] == "failed" and sigs[3]["detail"] == "the solution alone: exit code 3"
    assert sigs[2]["run_status"] == "not_run" and "does not parse" in sigs[2]["detail"]
    assert sigs[4]["detail"] == "the tests do not parse" and sigs[5]["detail"] == "no tests"


# ----------------------------------------------------------------------------------------------
# selection


def test_select_best_gives_every_candidate_one_reason():
    sig = lambda p, t: {"parses": p, "runs": p, "passes": t}  # noqa: E731
    rows = [
        {"id": "a1", "snippet_id": "A", "total": 5.0, "signals": sig(True, True), "unscored": ""},
        {"id": "a2", "snippet_id": "A", "total": 7.0, "signals": sig(True, False), "unscored": ""},
        {"id": "a0", "snippet_id": "A", "total": 7.0, "signals": sig(True, True), "unscored": ""},
        {"id": "b1", "snippet_id": "B", "total": 9.0, "signals": sig(False, False), "unscored": ""},
        {"id": "b2", "snippet_id": "B", "total": 2.0, "signals": None, "unscored": ""},
        {"id": "c1", "snippet_id": "C", "total": None, "signals": None, "unscored": "no_solution"},
    ]
    chosen, why = select_best(rows, SelectConfig(threshold=3.0))
    assert chosen == ["a0"]  # tie with a2 at 7.0: the smaller id
    assert why == {"a1": "not_best", "a2": "not_best", "a0": "selected", "b1": "parse_error",
                   "b2": "below_threshold", "c1": "no_solution"}
    chosen, why = select_best(rows, SelectConfig(require_tests_pass=True, require_parse=False), threshold=1.0)
    assert chosen == ["a0", "b2"] and why["a2"] == "failed_tests" and why["b1"] == "failed_tests"
    assert set(why.values()) <= set(REASONS)


# ----------------------------------------------------------------------------------------------
# the scoring run


@pytest.fixture(scope="module")
def tiny_judge_ckpt(tmp_path_factory, smollm2_gguf) -> Path:
    """A random 2-layer decoder over SmolLM2's vocabulary, saved with SmolLM2's tokenizer."""
    import jax.numpy as jnp
    from flax import nnx

    from scoder_jax.models.checkpoint import save_hf
    from scoder_jax.models.config import ModelConfig
    from scoder_jax.models.llama import Decoder, param_specs
    from scoder_jax.tokenizer import Tokenizer

    cfg = ModelConfig(name="tiny-judge", vocab_size=49152, hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2,
                      head_dim=8, intermediate_size=64, max_position=2048, tie_embeddings=True)
    model = nnx.eval_shape(lambda: Decoder(cfg, rngs=nnx.Rngs(0)))
    rng = np.random.default_rng(1)
    for name, (shape, _) in param_specs(cfg).items():
        v = np.ones(shape, np.float32) if "norm" in name else rng.normal(0, 0.3, shape).astype(np.float32)
        getattr(model, name).set_value(jnp.asarray(v))
    out = tmp_path_factory.mktemp("judge") / "tiny"
    save_hf(model, out, tokenizer=Tokenizer.load(smollm2_gguf))
    return out


def _candidates() -> list[dict]:
    P = _seed(3)
    cands = [dict(p, id=f"c-{k}", origin="synth") for k, p in enumerate(P)]
    cands.append(dict(P[0], id="c-broken", solution=break_code(P[0]["solution"])))  # same snippet as c-0
    cands.append(dict(P[1], id="c-empty", solution=""))  # same snippet as c-1
    cands.append(dict(P[2], id="c-swap", solution=P[0]["solution"]))  # same snippet as c-2
    return cands


@pytest.mark.slow
def test_score_candidates_resumes_and_selects(tiny_judge_ckpt, tmp_path):
    from scoder_jax.score.judge import DEFAULT_ASPECTS, load_judge

    judge = load_judge(str(tiny_judge_ckpt), DEFAULT_ASPECTS[:2], max_prompt_tokens=512)
    cands = _candidates()
    out = tmp_path / "scores"
    first = score_candidates(cands[:4], judge, out, judge_name="tiny", chunk=2)
    assert first["judged_now"] == 4 and first["candidates"] == 4
    with open(out / "judged.jsonl", "a") as f:
        f.write('{"id": "c-4", "snipp')  # a torn line from a kill
    summary = score_candidates(cands, judge, out, judge_name="tiny", chunk=4)
    assert summary["judged_before"] == 4 and summary["judged_now"] == 2
    rows = [json.loads(x) for x in (out / "scores.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == [c["id"] for c in cands]
    by = {r["id"]: r for r in rows}
    assert by["c-empty"]["reason"] == "no_solution" and by["c-empty"]["scores"] is None
    assert by["c-broken"]["reason"] == "parse_error" and by["c-broken"]["signals"]["parses"] is False
    assert by["c-swap"]["signals"]["passes"] is False and by["c-0"]["signals"]["passes"] is True
    for r in rows:
        if r["scores"]:
            assert set(r["scores"]) == {"clarity", "correctness"}
            assert all(0 <= v <= 9 for v in r["scores"].values())
    # default weights: mean rating + 1 parses + 1 runs + 2 passes
    r0 = by["c-0"]
    assert r0["total"] == pytest.approx(np.mean(list(r0["scores"].values())) + 4)
    assert sum(summary["reasons"].values()) == 6 and summary["selected"] == 3  # one per snippet
    assert by["c-2"]["reason"] == "selected" and by["c-swap"]["reason"] == "not_best"
    sel = [json.loads(x) for x in (out / "selected.jsonl").read_text().splitlines()]
    assert {s["id"] for s in sel} == {"c-0", "c-1", "c-2"}
    assert all(s["meta"]["score"]["total"] == by[s["id"]]["total"] for s in sel)
    # reselect with a threshold above every total
    again = reselect(cands, out, select=SelectConfig(threshold=100.0))
    assert again["selected"] == 0 and again["reasons"]["below_threshold"] == 4
    # another judge into the same directory is refused
    other = load_judge(str(tiny_judge_ckpt), DEFAULT_ASPECTS[:1], max_prompt_tokens=512)
    refused = r"another judge, aspects, rating or test setting .*aspects \[.clarity., .correctness.\], now \[.clar"
    with pytest.raises(ConfigError, match=refused):
        score_candidates(cands, other, out, judge_name="tiny")


@pytest.mark.slow
def test_score_commands(tiny_judge_ckpt, tmp_path):
    from scoder_jax.score.score_commands import score

    cands = tmp_path / "candidates.jsonl"
    cands.write_text("".join(json.dumps(c) + "\n" for c in _candidates()[:4]))
    aspects = tmp_path / "aspects.yaml"
    aspects.write_text("- {name: correctness, title: Solution correctness, rubric: '0 wrong, 9 right'}\n")
    weights = tmp_path / "w.json"
    Weights(("correctness",), (1.0,), (0.0, 0.0, 5.0), 0.0, 6.0, "test").save(weights)
    out = tmp_path / "out"
    base = ["--candidates", str(cands), "--out", str(out)]
    res = CliRunner().invoke(score, ["run", *base, "--judge", str(tiny_judge_ckpt), "--aspects", str(aspects),
                                     "--weights", str(weights), "--no-progress", "--max-prompt-tokens", "512"])
    assert res.exit_code == 0, (res.output, res.exception)
    summary = json.loads(res.stdout.splitlines()[0])
    assert summary["threshold"] == 6.0 and summary["reasons"]["parse_error"] == 1
    # totals: rating + 5 when the tests pass; threshold 6 keeps only passing candidates
    rows = [json.loads(x) for x in (out / "scores.jsonl").read_text().splitlines()]
    for r in rows:
        if r["signals"]["parses"]:
            want = r["scores"]["correctness"] + 5 * r["signals"]["passes"]
            assert r["total"] == pytest.approx(want)
    assert "candidates selected" in res.stderr
    res = CliRunner().invoke(score, ["select", *base, "--threshold", "-1", "--no-require-parse"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout.splitlines()[0])["selected"] == 3
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(_candidates()[0]) + "\n{not json\n")
    res = CliRunner().invoke(score, ["run", "--candidates", str(bad), "--out", str(out), "--judge",
                                     str(tiny_judge_ckpt)])
    assert isinstance(res.exception, DataError) and "bad.jsonl:2: malformed JSON" in str(res.exception)


@pytest.mark.slow
def test_score_commands_follow_rating_and_format(tiny_judge_ckpt, tmp_path):
    """`score run --rating/--format` and `score fit-weights --rating` do what score.rating and
    synth.format do in `scoder iterate`: integer ratings (the argmax digit), no test runs."""
    from scoder_jax.score.score_commands import score

    cands = tmp_path / "candidates.jsonl"
    cands.write_text("".join(json.dumps(c) + "\n" for c in _candidates()[:3]))
    aspects = tmp_path / "aspects.yaml"
    aspects.write_text("- {name: correctness, title: Solution correctness, rubric: '0 wrong, 9 right'}\n")
    judge = ["--judge", str(tiny_judge_ckpt), "--aspects", str(aspects), "--no-progress", "--max-prompt-tokens", "512"]

    def rows(out):
        return [json.loads(x) for x in (out / "scores.jsonl").read_text().splitlines()]

    def run(out, *extra):
        res = CliRunner().invoke(score, ["run", "--candidates", str(cands), "--out", str(out), *judge, *extra])
        assert res.exit_code == 0, (res.output, res.exception)
        return rows(out)

    expected = run(tmp_path / "expected")  # the defaults: expected digit, tests run
    assert any(r["scores"]["correctness"] != int(r["scores"]["correctness"]) for r in expected)
    assert all(r["signals"]["passes"] is True for r in expected)
    integer = run(tmp_path / "integer", "--rating", "integer", "--format", "problem_solution")
    assert all(r["scores"]["correctness"] == int(r["scores"]["correctness"]) for r in integer)
    assert all(r["signals"]["parses"] and r["signals"]["passes"] is None for r in integer)
    # resuming into a folder rated the other way would mix the two kinds of rating: refused
    before = (tmp_path / "expected" / "scores.jsonl").read_bytes()
    res = CliRunner().invoke(score, ["run", "--candidates", str(cands), "--out", str(tmp_path / "expected"), *judge,
                                     "--rating", "integer"])
    assert "rating 'expected', now 'integer'" in str(res.exception), (res.output, res.exception)  # exit 2 in `scoder`
    assert (tmp_path / "expected" / "scores.jsonl").read_bytes() == before

    seed = tmp_path / "seed.jsonl"
    seed.write_text("".join(json.dumps(s) + "\n" for s in _seed(4)))
    out = tmp_path / "w.json"
    res = CliRunner().invoke(score, ["fit-weights", "--positives", str(seed), "--out", str(out), "--folds", "2",
                                     "--no-exec", "--rating", "integer", *judge])
    assert res.exit_code == 0, (res.output, res.exception)
    assert json.loads(out.read_text())["report"]["rating"] == "integer"
    calib = [json.loads(x) for x in out.with_name("w.calibration.jsonl").read_text().splitlines()]
    assert len(calib) == 8 and all(r["scores"]["correctness"] == int(r["scores"]["correctness"]) for r in calib)
    # --format problem_solution: the positives and negatives run, but no tests do (as in the loop's fit)
    res = CliRunner().invoke(score, ["fit-weights", "--positives", str(seed), "--out", str(out), "--folds", "2",
                                     "--format", "problem_solution", *judge])
    assert res.exit_code == 0, (res.output, res.exception)
    assert json.loads(out.read_text())["report"]["format"] == "problem_solution"
    calib = [json.loads(x) for x in out.with_name("w.calibration.jsonl").read_text().splitlines()]
    assert all(r["signals"]["passes"] is None and r["signals"]["parses"] is not None for r in calib), calib

    for argv in (["run", "--candidates", str(cands), "--out", str(tmp_path / "bad"), "--rating", "mode"],
                 ["run", "--candidates", str(cands), "--out", str(tmp_path / "bad"), "--format", "tests"],
                 ["fit-weights", "--positives", str(seed), "--out", str(tmp_path / "bad.json"), "--rating", "mean"]):
        res = CliRunner().invoke(score, [*argv, "--judge", str(tiny_judge_ckpt)])
        assert res.exit_code == 2 and "Invalid value for '--" in res.output, res.output
    assert not (tmp_path / "bad").exists() and not (tmp_path / "bad.json").exists()


def test_stage_command_defaults_are_the_loops():
    """A user running the stages one by one gets what `scoder iterate` does by default."""
    from scoder_jax.runconfig import ScoreSection, SynthSection
    from scoder_jax.score.judge import RATINGS
    from scoder_jax.score.score_commands import score
    from scoder_jax.synth.commands import seed
    from scoder_jax.synth.prompts import FORMATS

    def option(cmd, name):
        [p] = [p for p in cmd.params if p.name == name]
        return p.default, tuple(p.type.choices)

    assert option(seed, "fmt") == option(score.commands["run"], "fmt") == (SynthSection().format, FORMATS)
    assert option(score.commands["run"], "rating") == option(score.commands["fit-weights"], "rating") \
        == (ScoreSection().rating, RATINGS)
