"""The multi-aspect judge: digit tokens, the shared-prefix forward against a plain forward,
truncation, unjudgeable candidates; and the acceptance run with SmolLM2-135M-Instruct as judge
on 20 seed samples and 20 corruptions (ratings, fitted weights, AUC)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from scoder_jax.errors import ScoderError
from scoder_jax.score.judge import (DEFAULT_ASPECTS, Aspect, Judge, aspects_from, digit_token_ids, judge_messages,
                                    judge_scores)

SEED = Path(__file__).resolve().parents[1] / "scoder_jax" / "data" / "seed" / "demo_seed.jsonl"


def _seed(n: int) -> list[dict]:
    return [json.loads(line) for line in SEED.read_text().splitlines()[:n]]


@pytest.fixture(scope="module")
def tiny_model():
    """A random 2-layer decoder over SmolLM2's vocabulary (numpy init: fast)."""
    import jax.numpy as jnp
    from flax import nnx

    from scoder_jax.models.config import ModelConfig
    from scoder_jax.models.llama import Decoder, param_specs

    cfg = ModelConfig(name="tiny-judge", vocab_size=49152, hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2,
                      head_dim=8, intermediate_size=64, max_position=2048, tie_embeddings=True)
    model = nnx.eval_shape(lambda: Decoder(cfg, rngs=nnx.Rngs(0)))
    rng = np.random.default_rng(0)
    for name, (shape, _) in param_specs(cfg).items():
        v = np.ones(shape, np.float32) if "norm" in name else rng.normal(0, 0.3, shape).astype(np.float32)
        getattr(model, name).set_value(jnp.asarray(v))
    return model


def test_digit_tokens(smol):
    ids = digit_token_ids(smol)
    assert [smol.decode([i]) for i in ids] == [str(d) for d in range(10)]


def test_judge_without_digit_tokens_is_refused():
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    from scoder_jax.tokenizer import Tokenizer

    backend = HFTokenizer(WordLevel({"<unk>": 0, "</s>": 1, "a": 2, "b": 3, "7": 4}, unk_token="<unk>"))
    backend.pre_tokenizer = Whitespace()
    tok = Tokenizer(backend, family="plain", bos_token=None, eos_token="</s>", unk_token="<unk>", source="letters.json")
    with pytest.raises(ScoderError,
                       match=r"letters.json: the judge's vocabulary has no single token for the digit '0'"):
        digit_token_ids(tok)


def test_aspects_from_config():
    assert aspects_from(None) == DEFAULT_ASPECTS
    got = aspects_from([{"name": "tests", "title": "Test quality", "rubric": "0 bad, 9 good"}])
    assert got == (Aspect("tests", "Test quality", "0 bad, 9 good"),)
    from scoder_jax.errors import ConfigError

    with pytest.raises(ConfigError, match="distinct names"):
        aspects_from([{"name": "a", "title": "A", "rubric": "r"}] * 2)
    with pytest.raises(ConfigError, match="aspect 0"):
        aspects_from([{"name": "a"}])


def test_prompts_share_everything_but_the_aspect(smol):
    c = _seed(1)[0]
    msgs = [judge_messages(c, a, DEFAULT_ASPECTS) for a in DEFAULT_ASPECTS]
    texts = [m[1]["content"] for m in msgs]
    head = texts[0][: texts[0].index("Criterion:")]
    assert all(t.startswith(head) and t.endswith("Rating (0-9):") for t in texts)
    assert all(a.rubric in head for a in DEFAULT_ASPECTS)
    other = judge_messages(_seed(2)[1], DEFAULT_ASPECTS[0], DEFAULT_ASPECTS)[1]["content"]
    assert other.startswith(head[: head.index("Code snippet:")])
    assert c["problem"].strip() in head and c["solution"].strip() in head and c["tests"].strip() in head


def _direct(model, tok, cand, aspects, digit_ids):
    """Reference: a plain forward of each whole prompt (right-padded to one length, so one
    compile), softmax at its last position."""
    import jax
    from flax import nnx

    graphdef, state = nnx.split(model)

    @jax.jit
    def last_logprobs(state, tokens, n):
        logits = nnx.merge(graphdef, state)(tokens).logits[0]
        return jax.nn.log_softmax(logits[n - 1])

    ev, mass = [], []
    for a in aspects:
        ids = tok.encode_chat(judge_messages(cand, a, aspects))
        tokens = np.zeros((1, 1024), np.int32)
        tokens[0, :len(ids)] = ids
        p = np.exp(np.asarray(last_logprobs(state, tokens, len(ids)), np.float64)[digit_ids])
        ev.append((p * np.arange(10)).sum() / p.sum())
        mass.append(p.sum())
    return np.array(ev), np.array(mass)


def test_shared_prefix_forward_matches_plain_forward(tiny_model, smol):
    cands = _seed(3)
    cands[1] = {**cands[1], "tests": "", "snippet": ""}  # other lengths, other prefix bucket
    aspects = DEFAULT_ASPECTS[:3]
    judge = Judge(tiny_model, smol, aspects, batch_size=2)
    res = judge.score(cands)
    ids = digit_token_ids(smol)
    for i, c in enumerate(cands):
        ev, mass = _direct(tiny_model, smol, c, aspects, ids)
        np.testing.assert_allclose(res.scores[i], ev, rtol=2e-4, atol=2e-4)
        np.testing.assert_allclose(res.digit_mass[i], mass, rtol=2e-3)
    assert res.scores.shape == (3, 3) and not res.truncated.any() and res.skipped == {}
    # the exercise runs once per candidate, not once per aspect; the questions are short
    full = sum(len(x) for c in cands for x in judge.prompts(c)[0])
    run = judge.stats["shared_tokens"] + judge.stats["own_tokens"] + judge.stats["suffix_tokens"]
    assert run < 0.4 * full and judge.stats["suffix_tokens"] <= 3 * 3 * 24


def test_unjudgeable_and_truncated_candidates(tiny_model, smol):
    cands = _seed(2)
    cands.append({**cands[0], "id": "x", "solution": "  "})
    cands.append({**cands[0], "id": "y", "problem": None})
    judge = Judge(tiny_model, smol, DEFAULT_ASPECTS[:2], max_prompt_tokens=240)
    res = judge.score(cands)
    assert res.skipped == {2: "no_solution", 3: "no_problem"}
    assert np.isnan(res.scores[2:]).all() and np.isfinite(res.scores[:2]).all()
    assert res.truncated[:2].all() and (res.prompt_tokens[:2] <= 240).all() and (res.prompt_tokens[:2] > 200).all()
    assert ((res.scores[:2] >= 0) & (res.scores[:2] <= 9)).all()
    ids, cut = judge.prompts(cands[0])
    assert cut and "[truncated]" in smol.decode(ids[0])
    # the functional API gives the same ratings
    np.testing.assert_allclose(judge_scores(tiny_model, smol, cands[:2], DEFAULT_ASPECTS[:2],
                                            max_prompt_tokens=240), res.scores[:2], rtol=1e-5)


@pytest.mark.slow
def test_smollm2_judge_on_20_seeds_and_20_corruptions(smollm2_gguf, tmp_path):
    """Acceptance: per-aspect ratings, fitted weights and AUC with the real judge (prompts cut
    to 352 tokens to keep the test short; the README's AUC comes from full prompts)."""
    from click.testing import CliRunner

    from scoder_jax.score.score_commands import score

    seed = tmp_path / "seed.jsonl"
    seed.write_text("\n".join(json.dumps(r) for r in _seed(20)) + "\n")
    out = tmp_path / "weights.json"
    res = CliRunner().invoke(score, ["fit-weights", "--positives", str(seed), "--judge", str(smollm2_gguf),
                                     "--out", str(out), "--max-prompt-tokens", "352", "--batch-size", "16",
                                     "--folds", "4", "--no-progress"])
    assert res.exit_code == 0, (res.output, res.exception)
    w = json.loads(out.read_text())
    r = w["report"]
    assert r["n_pos"] == 20 and r["n_neg"] == 20 and r["folds"] == 4 and len(r["fold_aucs"]) == 4
    assert 0.0 <= r["cv_auc"] <= 1.0 and 0.0 <= r["auc"] <= 1.0
    assert set(w["aspect_weights"]) == {a.name for a in DEFAULT_ASPECTS}
    assert all(v >= 0 for v in [*w["aspect_weights"].values(), *w["exec_weights"].values()])
    assert set(r["mean_by_kind"]) == {"seed", "swap_solution", "broken_code", "off_topic", "wrong_problem"}
    # execution tells broken code apart: seeds parse, broken copies never do
    assert r["signal_rates"]["positive"]["parses"] == 1.0 and r["signal_rates"]["positive"]["passes"] == 1.0
    assert r["feature_aucs"]["passes"] > 0.6
    rows = [json.loads(x) for x in out.with_name("weights.calibration.jsonl").read_text().splitlines()]
    assert len(rows) == 40 and sum(x["label"] for x in rows) == 20
    S = np.array([[x["scores"][a.name] for a in DEFAULT_ASPECTS] for x in rows])
    assert S.shape == (40, 5) and ((S > 0) & (S < 9)).all() and S.std() > 0
    assert all(0 < m <= 1 for x in rows for m in x["digit_mass"].values())
    assert "cross-validated" in res.stderr
    print("smollm2 judge, 20 vs 20 (352-token prompts):", json.dumps({k: r[k] for k in ("auc", "cv_auc")}),
          json.dumps(r["feature_aucs"]))
