"""The dedicated scorer: teacher annotations against a fake OpenAI-compatible server whose
ratings are a known function of the candidate (strict parsing, retries, failures counted,
cache and resume, budget), training the tiny model on them (held-out agreement above the
untrained judge), the judge's integer vs expected rating, and a scorer's aspects checked."""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from scoder_jax.errors import ConfigError
from scoder_jax.score.annotate import annotate, annotation_messages, parse_ratings, pick_sample
from scoder_jax.score.judge import DEFAULT_ASPECTS
from scoder_jax.synth.teacher_client import TeacherConfig

KEY_ENV = "SCODER_TEST_SCORER_KEY"
ASPECTS = DEFAULT_ASPECTS[:2]  # clarity, correctness
NAMES = [a.name for a in ASPECTS]

# The teacher's ratings: a known function of the candidate (the kind of task its problem sets).
KINDS = {"add": {"clarity": 8, "correctness": 7}, "mul": {"clarity": 4, "correctness": 5},
         "neg": {"clarity": 1, "correctness": 2}}


def _candidate(kind: str, i: int, marker: str = "") -> dict:
    """A candidate whose every part is written in its kind's own words, so that the kind (and
    so the teacher's rating) shows all over the prompt, up to its last lines: learnable by the
    tiny model in a few steps."""
    op, word = {"add": ("+", "sum"), "mul": ("*", "product"), "neg": ("-", "negation")}[kind]
    name = f"{kind}_{i}"
    return {"id": f"c-{kind}-{i}", "snippet_id": f"sn-{i}", "lang": "python",
            "snippet": "".join(f"{kind}{k} = a {op} b {op} {k}\n" for k in range(3)),
            "problem": f"Write `{name}(a, b)` that returns the {word} of `a` and `b`.{marker}",
            "solution": f"def {name}(a, b):\n    return a {op} b\n",
            "tests": "".join(f"assert {name}({k}, 3) == {k} {op} 3  # {word}\n" for k in range(4))}


def _candidates(n_per_kind: int) -> list[dict]:
    return [_candidate(k, i) for i in range(n_per_kind) for k in KINDS]


class RatingServer:
    """POST /v1/chat/completions: rates the candidate in the prompt by KINDS; markers in the
    problem pick a fault: MALFORMED_ONCE (a fraction first, then a good answer once corrected),
    MALFORMED_ALWAYS (never a digit), JSON_REPLY (a JSON object)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests: Counter = Counter()  # candidate name -> requests
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                server._handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handle(self, h):
        req = json.loads(h.rfile.read(int(h.headers["Content-Length"])))
        msgs = req["messages"]
        prompt = msgs[1]["content"]
        name = re.search(r"`((add|mul|neg)_\d+)\(a, b\)`", prompt)
        kind = name.group(2)
        with self.lock:
            self.requests[name.group(1)] += 1
        r = KINDS[kind]
        good = "\n".join(f"{a}: {r[a]}" for a in NAMES)
        corrected = len(msgs) > 2
        if "MALFORMED_ONCE" in prompt and not corrected:
            content = f"clarity: {r['clarity']}.5\ncorrectness: {r['correctness']}"
        elif "MALFORMED_ALWAYS" in prompt:
            content = "clarity: 10\ncorrectness: seven"
        elif "JSON_REPLY" in prompt:
            content = json.dumps(r)
        else:
            content = good
        body = json.dumps({"id": "x", "object": "chat.completion", "model": req["model"],
                           "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                        "finish_reason": "stop"}],
                           "usage": {"prompt_tokens": 300, "completion_tokens": 8}}).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Connection", "close")
        h.end_headers()
        h.wfile.write(body)
        h.close_connection = True


@pytest.fixture()
def server(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-test-scorer")
    s = RatingServer()
    yield s
    s.close()


def _cfg(url: str, **kw) -> TeacherConfig:
    return TeacherConfig(**{"url": url, "model": "rater", "api_key_env": KEY_ENV, "concurrency": 4, "max_retries": 1,
                            "backoff_base_s": 0.01, "backoff_max_s": 0.02, "timeout_s": 5.0, "max_tokens": 32, **kw})


# ------------------------------------------------------------------------------------------ parsing


@pytest.mark.parametrize("text, want", [
    ("clarity: 7\ncorrectness: 3", {"clarity": 7, "correctness": 3}),
    ("Correctness : 0\n\nclarity:9 ", {"clarity": 9, "correctness": 0}),
    ('{"clarity": 4, "correctness": 5}', {"clarity": 4, "correctness": 5}),
])
def test_parse_ratings_reads_one_digit_per_aspect(text, want):
    assert parse_ratings(text, NAMES) == (want, "")


@pytest.mark.parametrize("text, why", [
    ("clarity: 7.5\ncorrectness: 3", "not a single digit"),
    ("clarity: 10\ncorrectness: 3", "not a single digit"),
    ("clarity: 07\ncorrectness: 3", "not a single digit"),
    ("clarity: seven\ncorrectness: 3", "not a single digit"),
    ("clarity: 7/9\ncorrectness: 3", "not a single digit"),
    ("clarity: -1\ncorrectness: 3", "not a single digit"),
    ("clarity: 7", "no rating for correctness"),
    ("clarity: 7\nclarity: 8\ncorrectness: 1", "rated twice"),
    ("clarity: 7\ncorrectness: 3\nrelevance: 2", "unknown criterion"),
    ("Sure! clarity: 7\ncorrectness: 3", "is not 'name: digit'"),
    ("Sure clarity: 7\ncorrectness: 3", "unknown criterion"),
    ("clarity: 7\ncorrectness: 3\nThat is all.", "is not 'name: digit'"),
    ('{"clarity": 7.0, "correctness": 3}', "not an integer"),
    ('{"clarity": true, "correctness": 3}', "not an integer"),
    ('{"clarity": "7", "correctness": 3}', None),  # a digit string in JSON reads as the digit
    ("", "empty"),
])
def test_parse_ratings_never_reads_a_number_that_is_not_there(text, why):
    got, detail = parse_ratings(text, NAMES)
    if why is None:
        assert got == {"clarity": 7, "correctness": 3}
        return
    assert got is None and why in detail


def test_annotation_prompt_lists_every_aspect_once():
    c = _candidate("add", 0)
    msgs = annotation_messages(c, ASPECTS)
    text = msgs[1]["content"]
    assert all(a.rubric in text for a in ASPECTS) and "clarity: D\ncorrectness: D" in text
    assert c["problem"] in text and c["tests"].strip() in text
    no_tests = annotation_messages({**c, "tests": ""}, ASPECTS)[1]["content"]
    assert "Tests:" not in no_tests


# ------------------------------------------------------------------------------------------ annotate


def test_annotate_retries_malformed_then_counts_it_caches_and_resumes(server, tmp_path):
    cands = _candidates(2)
    cands.append(_candidate("mul", 7, " MALFORMED_ONCE"))
    cands.append(_candidate("neg", 8, " MALFORMED_ALWAYS"))
    cands.append(_candidate("add", 9, " JSON_REPLY"))
    out = tmp_path / "ann"
    s = annotate(cands, out, _cfg(server.url), ASPECTS, parse_retries=2)
    assert s["annotations"] == len(cands) - 1 and s["failures"] == 1 and s["malformed"] == 1, s
    rows = {r["id"]: r for r in map(json.loads, (out / "annotations.jsonl").read_text().splitlines())}
    for c in cands[:-2]:
        kind = c["id"].split("-")[1]
        assert rows[c["id"]]["ratings"] == {a: KINDS[kind][a] for a in NAMES}
        assert rows[c["id"]]["problem"] == c["problem"]
    assert rows["c-mul-7"]["ratings"] == {"clarity": 4, "correctness": 5} and rows["c-mul-7"]["replies"] == 2
    assert "c-neg-8" not in rows
    (fail,) = map(json.loads, (out / "failures.jsonl").read_text().splitlines())
    assert fail["id"] == "c-neg-8" and fail["reason"] == "malformed" and "not a single digit" in fail["detail"]
    assert server.requests["neg_8"] == 3 and server.requests["mul_7"] == 2  # 1 + parse_retries; 1 + one correction
    n = sum(server.requests.values())
    # a rerun asks nothing: done candidates are skipped; with a fresh folder, every reply comes from a copied cache
    again = annotate(cands, out, _cfg(server.url), ASPECTS, parse_retries=2)
    assert again["already_done"] == len(cands) and again["requests"] == 0
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    import shutil

    shutil.copytree(out / "cache", fresh / "cache")
    shutil.copy(out / "annotate.json", fresh / "annotate.json")
    third = annotate(cands, fresh, _cfg(server.url), ASPECTS, parse_retries=2)
    assert third["requests"] == 0 and third["annotations"] == len(cands) - 1 and sum(server.requests.values()) == n
    # another aspect set in the same folder is refused
    with pytest.raises(ConfigError, match="use a fresh --out"):
        annotate(cands, out, _cfg(server.url), DEFAULT_ASPECTS[:3])


def test_annotate_budget_cap_leaves_the_rest_pending(server, tmp_path):
    cands = _candidates(3)
    cfg = _cfg(server.url, concurrency=1, price_per_1k_prompt=1.0, budget_usd=1.0)
    s = annotate(cands, tmp_path / "ann", cfg, ASPECTS)
    assert s["budget_stopped"] and s["pending"] > 0 and s["annotations"] + s["pending"] == len(cands)
    more = annotate(cands, tmp_path / "ann", _cfg(server.url), ASPECTS)
    assert more["annotations"] == s["pending"] and more["already_done"] == s["annotations"]


def test_pick_sample_is_seeded_and_skips_unjudgeable():
    cands = _candidates(4) + [{**_candidate("add", 99), "solution": ""}]
    a, b = pick_sample(cands, 5, 3), pick_sample(cands, 5, 3)
    assert [c["id"] for c in a] == [c["id"] for c in b] and len(a) == 5 and "c-add-99" not in {c["id"] for c in a}
    assert len(pick_sample(cands, None, 0)) == len(cands) - 1


# ------------------------------------------------------------------------------------------ train


@pytest.mark.slow
def test_annotate_then_train_beats_the_untrained_judge(server, tmp_path):
    """The CLI end to end: annotate 48 candidates, train the tiny model on 36 (120 steps, about
    a minute on 2 cores), agreement with the teacher on the other 12."""
    from scoder_jax.cli import cli

    cand_file = tmp_path / "candidates.jsonl"
    cand_file.write_text("".join(json.dumps(c) + "\n" for c in _candidates(16)))
    runner = CliRunner()
    r = runner.invoke(cli, ["scorer", "annotate", "--candidates", str(cand_file), "--out", str(tmp_path / "ann"),
                            "--teacher-url", server.url, "--teacher-model", "rater", "--api-key-env", KEY_ENV,
                            "--aspects", ",".join(NAMES), "--no-progress"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    out = tmp_path / "scorer"
    r = runner.invoke(cli, ["scorer", "train", "--annotations", str(tmp_path / "ann"), "--base", "tiny-smollm2-vocab",
                            "--tokenizer", "gguf:smollm2-135m-instruct", "--out", str(out), "--holdout", "0.25",
                            "seq_len=512", "batch_size=4", "max_steps=120", "epochs=1000", "optim.lr=1e-2",
                            "optim.warmup_steps=4", "mesh.num_devices=1", "progress=false"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    report = json.loads((out / "report.json").read_text())
    assert report["heldout_candidates"] == 12 and report["train_candidates"] == 36
    s, b = report["scorer"]["mean"], report["baseline"]["mean"]
    print(json.dumps({"scorer": report["scorer"], "baseline": report["baseline"]}))
    assert s["exact"] >= b["exact"] + 0.3 and s["within1"] >= b["within1"] + 0.2, report
    assert s["spearman"] is not None and s["spearman"] > 0.5
    assert "untrained: exact" in r.output  # the table
    info = json.loads((out / "scorer.json").read_text())
    assert [a["name"] for a in info["aspects"]] == NAMES and (out / info["checkpoint"]).is_dir()
    held = [json.loads(x) for x in (out / "heldout.jsonl").read_text().splitlines()]
    assert len(held) == 12 and set(held[0]) == {"id", "teacher", "baseline", "scorer"}

    # the scorer folder is a judge: ratings by integer (argmax digit) and expected digit
    from scoder_jax.score.judge import load_judge

    cands = [c for c in _candidates(16) if c["id"] in {h["id"] for h in held}]
    integer = load_judge(str(out), ASPECTS, rating="integer").score(cands).scores
    expected = load_judge(str(out), ASPECTS, rating="expected").score(cands).scores
    assert np.all(integer == np.round(integer)) and set(np.unique(integer)) <= set(range(10))
    assert not np.all(expected == np.round(expected))
    assert np.abs(integer - expected).max() <= 9
    want = np.asarray([[KINDS[c["id"].split("-")[1]][a] for a in NAMES] for c in cands])
    assert np.mean(integer == want) == pytest.approx(s["exact"])
    # asked about other aspects than it was trained on: refused before any work
    with pytest.raises(ConfigError, match="trained on the aspects clarity, correctness"):
        load_judge(str(out), DEFAULT_ASPECTS[:3])


# ------------------------------------------------------------------------------------------ rating


@pytest.fixture(scope="module")
def smol_judge_parts(smollm2_gguf):
    """A random 2-layer decoder over SmolLM2's vocabulary (numpy init: fast) and its tokenizer."""
    import jax.numpy as jnp
    from flax import nnx

    from scoder_jax.models.config import ModelConfig
    from scoder_jax.models.llama import Decoder, param_specs
    from scoder_jax.tokenizer import Tokenizer

    cfg = ModelConfig(name="tiny-judge", vocab_size=49152, hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2,
                      head_dim=8, intermediate_size=64, max_position=2048, tie_embeddings=True)
    model = nnx.eval_shape(lambda: Decoder(cfg, rngs=nnx.Rngs(0)))
    rng = np.random.default_rng(0)
    for name, (shape, _) in param_specs(cfg).items():
        v = np.ones(shape, np.float32) if "norm" in name else rng.normal(0, 0.3, shape).astype(np.float32)
        getattr(model, name).set_value(jnp.asarray(v))
    return model, Tokenizer.load(smollm2_gguf)


def test_rating_integer_is_the_argmax_digit_and_expected_the_mean(smol_judge_parts, monkeypatch):
    """The reduction from the ten digit probabilities: p(2) = .1, p(7) = .5, p(9) = .4 (and the
    second aspect p(0) = .6, p(1) = .4) rate 7 (integer) or 7.3 (expected); 0 or 0.4."""
    from scoder_jax.errors import ConfigError as CE
    from scoder_jax.score.judge import Judge

    model, tok = smol_judge_parts
    p = np.full((2, 10), 1e-12)
    p[0, [2, 7, 9]] = [0.1, 0.5, 0.4]
    p[1, [0, 1]] = [0.6, 0.4]
    logp = np.log(p)[:, None, :]  # [Z, 1, 10]
    out = {}
    for rating in ("integer", "expected"):
        judge = Judge(model, tok, ASPECTS, rating=rating)
        monkeypatch.setattr(judge, "_run", lambda group: np.repeat(logp, len(group), axis=1))
        out[rating] = judge.score([_candidate("add", 0), _candidate("mul", 1)]).scores
    np.testing.assert_allclose(out["integer"], [[7, 0], [7, 0]])
    np.testing.assert_allclose(out["expected"], [[7.3, 0.4], [7.3, 0.4]], atol=1e-9)
    with pytest.raises(CE, match="judge rating 'mode'"):
        Judge(model, tok, ASPECTS, rating="mode")


# ------------------------------------------------------------------------------------------ bad input


def _scorer_dir(root: Path, names) -> Path:
    from scoder_jax.score.scorer_info import SCORER_FILE, SCORER_FORMAT

    by = {a.name: a for a in DEFAULT_ASPECTS}
    d = root / "scorer"
    (d / "ckpt").mkdir(parents=True)
    (d / SCORER_FILE).write_text(json.dumps({"format": SCORER_FORMAT, "checkpoint": "ckpt", "aspects": [
        {"name": n, "title": by[n].title, "rubric": by[n].rubric} for n in names]}))
    return d


def _weights_file(root: Path, names) -> Path:
    from scoder_jax.score.weights import Weights

    path = root / "weights.json"
    Weights(tuple(names), tuple(1.0 for _ in names), (0.5, 0.5, 1.0), -1.0, 2.0, "nnls").save(path)
    return path


def test_config_accepts_fit_a_weights_file_and_a_scorer_of_its_aspects(tmp_path):
    from scoder_jax.runconfig import load_run_config

    cfg, _ = load_run_config("smoke", ["score.weights=fit", "score.fit=logistic", "score.rating=integer"])
    assert (cfg.score.weights, cfg.score.fit, cfg.score.rating) == ("fit", "logistic", "integer")
    w = _weights_file(tmp_path, NAMES)
    s = _scorer_dir(tmp_path, NAMES)
    cfg, _ = load_run_config("smoke", [f"score.weights={w}", f"score.judge={s}", f"score.aspects=[{','.join(NAMES)}]"])
    assert cfg.score.weights == str(w) and cfg.score.judge == str(s)


@pytest.mark.parametrize("overrides, message", [
    (["score.rating=mode"], "'score.rating' = 'mode' is not one of 'integer', 'expected'"),
    (["score.fit=svm"], "'score.fit' = 'svm' is not one of 'nnls', 'logistic'"),
    (["score.weights="], "'score.weights' must be a mapping {aspect or signal: weight}, 'fit'"),
    (["score.weights=fit", "score.aspects=[]", "score.per_snippet=all"], "= fit needs aspects to weigh"),
    (["score.weights=nowhere.json"], "'score.weights' = nowhere.json: no such file"),
])
def test_config_refuses_bad_score_values(overrides, message):
    from scoder_jax.runconfig import load_run_config

    with pytest.raises(ConfigError) as e:
        load_run_config("smoke", overrides)
    assert message in str(e.value) and "\n" not in str(e.value)


def _iterate_error(capsys, *args) -> str:
    """`scoder iterate` that must stop with exit status 2 and one `error:` line; returns it."""
    from scoder_jax.cli import main

    with pytest.raises(SystemExit) as e:
        main(["iterate", "--config", "smoke", "--no-progress", *args])
    err = capsys.readouterr().err
    assert e.value.code == 2, err
    (line,) = [x for x in err.splitlines() if x.startswith("error:")]
    return line


def test_weights_file_with_other_aspects_is_refused_before_any_work(tmp_path, capsys):
    w = _weights_file(tmp_path, ["clarity", "relevance"])
    run = tmp_path / "run"
    line = _iterate_error(capsys, "--run-dir", str(run), f"score.weights={w}", "score.aspects=[clarity,correctness]")
    assert f"'score.weights' = {w}: its weights are for the aspects clarity, relevance, but score.aspects is " \
           "clarity, correctness" in line
    assert not (run / "manifest.json").exists()


def test_scorer_with_other_aspects_is_refused_before_any_work(tmp_path, capsys):
    s = _scorer_dir(tmp_path, NAMES)
    run = tmp_path / "run"
    line = _iterate_error(capsys, "--run-dir", str(run), f"score.judge={s}")
    assert "'score.judge' = " in line and "trained on the aspects clarity, correctness, but it is asked about " \
                                         "clarity, correctness, consistency, relevance, difficulty" in line
    assert not (run / "manifest.json").exists()
    # the same order matters: the judge's prompt lists the rubrics in order
    from scoder_jax.score.scorer_info import scorer_checkpoint

    with pytest.raises(ConfigError, match="trained on the aspects clarity, correctness, but it is asked about "
                                          "correctness, clarity"):
        scorer_checkpoint(s, ASPECTS[::-1])
    assert scorer_checkpoint(s, ASPECTS) == str(s / "ckpt")


def test_annotations_with_a_rating_that_is_not_a_digit_are_refused(tmp_path):
    from scoder_jax.errors import DataError
    from scoder_jax.score.annotate import identity, load_annotations

    d = tmp_path / "ann"
    d.mkdir()
    (d / "annotate.json").write_text(json.dumps(identity(ASPECTS, "rater")))
    (d / "annotations.jsonl").write_text(
        json.dumps({"id": "a", "ratings": {"clarity": 3, "correctness": 4}}) + "\n"
        + json.dumps({"id": "b", "ratings": {"clarity": 3.5, "correctness": 4}}) + "\n")
    with pytest.raises(DataError, match=r"annotations.jsonl:2: 'ratings' must give each of clarity, correctness"):
        load_annotations(d)


# ------------------------------------------------------------------------------------------ agreement


def test_agreement_figures():
    from scoder_jax.score.scorer import agreement, split_holdout

    teacher = np.array([[1, 5], [4, 5], [8, 6], [9, 6]])
    pred = np.array([[1.0, 5.0], [5.0, 5.0], [6.0, 5.0], [9.4, 5.0]])
    a = agreement(pred, teacher, ["x", "y"])
    assert a["x"] == {"exact": 0.5, "within1": 0.75, "spearman": pytest.approx(1.0), "n": 4}
    assert a["y"]["spearman"] is None and a["y"]["exact"] == 0.5  # a constant judge has no rank correlation
    assert a["mean"]["exact"] == 0.5 and a["mean"]["spearman"] == pytest.approx(1.0)
    rows = [{"id": f"r{i}"} for i in range(20)]
    tr, ho = split_holdout(rows, 0.25, seed=1)
    assert len(ho) == 5 and len(tr) == 15 and split_holdout(rows, 0.25, seed=1)[1] == ho
    # adding annotations does not move the old ones across the split
    tr2, ho2 = split_holdout(rows + [{"id": "new"}], 0.25, seed=1)
    assert {r["id"] for r in ho} - {r["id"] for r in ho2} <= {r["id"] for r in ho}


# ------------------------------------------------------------------------------------------ fitted weights


class _ContentJudge:
    """A judge without a model: correctness 8 when the solution defines the function its
    problem names, else 1; clarity 6 throughout."""

    aspects = ASPECTS
    rating = "expected"

    def score(self, samples, progress=False):
        import types

        def correct(s):
            m = re.search(r"`(\w+)\(", s.get("problem") or "")
            return 8.0 if m and f"def {m.group(1)}(" in (s.get("solution") or "") else 1.0

        scores = np.array([[6.0, correct(s)] for s in samples]).reshape(len(samples), 2)
        return types.SimpleNamespace(scores=scores, skipped={}, digit_mass=np.ones_like(scores),
                                     truncated=np.zeros(len(samples), bool))


def test_fit_stage_weights_from_seed_corruptions_and_failed_candidates(tmp_path):
    from scoder_jax.score.stage_weights import fit_stage_weights
    from scoder_jax.score.weights import Weights

    seed = [{**_candidate(k, i), "tests": f"assert {k}_{i}(1, 1) is not None\n"} for i in range(3) for k in KINDS]
    failed = {"id": "bad", "snippet_id": "s", "scores": {"clarity": 6.0, "correctness": 8.0}, "unscored": "",
              "signals": {"parses": True, "runs": True, "passes": False}}
    ok = {**failed, "id": "good", "signals": {"parses": True, "runs": True, "passes": True}}
    w = fit_stage_weights(seed, [failed, ok], _ContentJudge(), tmp_path, method="nnls", max_positives=8,
                          rng_seed=1)
    r = json.loads((tmp_path / "fit_report.json").read_text())
    assert (r["positives"], r["corrupted"], r["failed_execution"]) == (8, 8, 1)
    assert r["n_pos"] == 8 and r["n_neg"] == 9 and r["cv_auc"] > 0.6  # off-topic copies stay consistent
    # the corruptions that swap in another function's solution rate low on correctness: it carries weight
    assert dict(zip(w.aspects, w.aspect_weights))["correctness"] > 0 and w.threshold is not None
    assert Weights.load(tmp_path / "weights.json").aspects == tuple(NAMES)
    rows = [json.loads(x) for x in (tmp_path / "calibration.jsonl").read_text().splitlines()]
    assert {x["kind"] for x in rows} >= {"seed", "failed_execution", "broken_code"} and len(rows) == 17
    assert r["mean_by_kind"]["seed"]["total"] > r["mean_by_kind"]["broken_code"]["total"]


def test_report_shows_the_weights_per_iteration(tmp_path):
    from tests.fake_run import fake_run

    from scoder_jax.report import collect, render
    from scoder_jax.score.weights import Weights

    run_dir, manifest, cfg = fake_run(tmp_path)
    names = list(cfg.score.aspects)
    for it, bias in ((1, -0.25), (2, -0.5)):
        Weights(tuple(names), tuple(0.1 * it for _ in names), (0.0, 0.5, 1.5), bias, 0.3, "nnls",
                {"cv_auc": 0.9}).save(run_dir / f"iter_{it:02d}/scores/weights.json")
    data = collect(run_dir, manifest, cfg.iterations + 1)
    page = render(data, manifest, cfg)
    table = page[page.index("<table id='weights'>"):]
    table = table[:table.index("</table>")]
    assert table.count("<tr>") == 3 and "<th>passes</th>" in table and "<th>bias</th>" in table
    assert "<td>-0.25</td>" in table and "<td>-0.5</td>" in table and "<td>0.9</td>" in table
    assert "<td>nnls</td>" in table and "<td>0.2</td>" in table
