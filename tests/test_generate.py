"""Sampling engine on a tiny random model: greedy parity with the model's own forward,
continuous batching = one prompt at a time, sampling distribution (chi-square), filter sets,
bounded compilations, checkpoint swap, sharding, batch CLI (stream, resume, bad input)."""

from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from scipy import stats

from scoder_jax.errors import ScoderError
from scoder_jax.generate.engine import DecodeState, Engine, decode_weights, init_state, state_axes
from scoder_jax.generate.sampling import SamplingParams, filter_logits, sample_key, sample_tokens, step_keys
from scoder_jax.models.config import LoraConfig, ModelConfig
from scoder_jax.models import kv_cache, llama
from scoder_jax.models.kv_cache import init_cache
from scoder_jax.models.llama import Decoder, lora_specs, param_specs

CFG = ModelConfig(vocab_size=64, hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2, head_dim=8,
                  intermediate_size=48, max_position=160, bos_token_id=None, eos_token_id=None)
BUCKETS = (16, 32, 64, 128, 256)


@pytest.fixture(scope="module")
def model():
    return Decoder(CFG, rngs=nnx.Rngs(0))


def prompts(n, seed=0, lo=2, hi=40):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, CFG.vocab_size, size=int(rng.integers(lo, hi))).tolist() for _ in range(n)]


@nnx.jit
def _logits(m, ids):
    return m(ids).logits


def ref_greedy(m, p, n):
    """Greedy tokens from the model's full forward (right-padded to 64: causal, so padding does
    not change the logits of the real positions, and one shape compiles once)."""
    ids = list(p)
    for _ in range(n):
        padded = np.zeros((1, 64), np.int32)
        padded[0, :len(ids)] = ids
        ids.append(int(jnp.argmax(_logits(m, jnp.asarray(padded))[0, len(ids) - 1])))
    return ids[len(p):]


def test_decode_path_is_the_model_forward():
    """The engine's weights (LoRA merged, per layer) through the model's cached path: a prefill
    of 12 tokens, then one token per step (all slots, by blocks, one pass past half the cache),
    equal the model's own no-cache logits; so does the Decoder's cached call (adapters unmerged)
    with several tokens per call."""
    cfg = CFG.replace(qkv_bias=True, o_bias=True, lora=LoraConfig(rank=2, targets=("q", "v", "up")))
    m = Decoder(cfg, rngs=nnx.Rngs(1))
    for name in ("lora_q_b", "lora_v_b", "lora_up_b", "bq", "bo"):  # make LoRA and biases non-trivial
        v = getattr(m, name)
        v.value = 0.1 * jax.random.normal(jax.random.key(len(name)), v.value.shape)
    w = decode_weights(cfg, {n: getattr(m, n).value for n in {**param_specs(cfg), **lora_specs(cfg)}})
    assert not any(n.startswith("lora_") for n in w["layers"][0])
    toks = jnp.array(prompts(1, seed=3, lo=20, hi=21))
    full = m(toks).logits[0]  # [T, V]
    cache = init_cache(cfg, 1, 64)
    fwd = jax.jit(llama.forward_cached, static_argnums=0, static_argnames=("prefill", "block"))
    h, cache = fwd(cfg, w, toks[:, :12], None, cache, prefill=True)
    np.testing.assert_allclose(llama.logits_of(cfg, w, h[0]), full[:12], atol=1e-4, rtol=1e-4)
    for block in (None, 16, 48):  # 16: visited by blocks; 48 (> half the 64 slots): one pass
        c = cache
        for t in range(12, 20):
            h, c = fwd(cfg, w, toks[:, t:t + 1], jnp.array([[t]]), c, block=block)
            np.testing.assert_allclose(llama.logits_of(cfg, w, h[0, 0]), full[t], atol=1e-4, rtol=1e-4)
    out = m(toks[:, 12:16], positions=jnp.arange(12, 16)[None], cache=cache)
    np.testing.assert_allclose(out.logits[0], full[12:16], atol=1e-4, rtol=1e-4)


def test_engine_prefill_runs_the_model_attention(model, monkeypatch):
    """The engine's prefill is the model's no-cache attention: with `attention: flash` (its
    Pallas kernel in the interpreter here) the kernel runs there, with the same tokens."""
    from scoder_jax.models import flash

    monkeypatch.setattr(flash, "INTERPRET", True)
    calls = []
    kernel = flash.flash_attention
    monkeypatch.setattr(flash, "flash_attention", lambda *a: calls.append(a[0].shape) or kernel(*a))
    fast = Decoder(CFG.replace(attention="flash"), rngs=nnx.Rngs(0))
    ps = prompts(3, seed=2, lo=14)
    params = SamplingParams(max_new_tokens=6)
    out = Engine(fast, max_batch=4, buckets=BUCKETS).generate(ps, params)
    assert calls and all(shape[1] in BUCKETS for shape in calls)  # the prompt buckets: the prefill
    assert [r[0].tokens for r in out] == [r[0].tokens for r in Engine(model, max_batch=4, buckets=BUCKETS)
                                          .generate(ps, params)]


def test_decode_state_is_one_pytree_with_one_sharding_tree():
    """The engine's state: one typed pytree (cache included); its shardings map from one tree
    of logical axes, leaf for leaf."""
    from scoder_jax import parallel

    mesh = parallel.make_mesh(data=2, fsdp=2, tensor=2)
    st = jax.eval_shape(lambda: init_state(CFG, 8, 64))
    assert isinstance(st, DecodeState) and len(st.cache.k) == CFG.num_layers
    shardings = jax.tree.map(lambda a, axes: parallel.sharding_for(axes, a.shape, mesh), st, state_axes(CFG))
    assert jax.tree.structure(shardings) == jax.tree.structure(st)
    assert shardings.cache.k[0].spec == parallel.spec_for(kv_cache.K_AXES, st.cache.k[0].shape, mesh)
    assert shardings.hist.spec[0] == ("data", "fsdp") and shardings.tok.spec[0] == ("data", "fsdp")


def test_greedy_matches_model_and_continuous_batching_matches_one_at_a_time(model):
    ps = prompts(5, seed=1, lo=14)  # one cache bucket (64) for every call
    params = SamplingParams(max_new_tokens=16)
    eng = Engine(model, max_batch=4, buckets=BUCKETS, chunk=4)  # fewer slots than prompts: refills
    out = eng.generate(ps, params)
    for p, row in zip(ps[:2], out[:2]):
        assert row[0].tokens == ref_greedy(model, p, 16)
    # sampled, n=3, with a stop id: a batch of 4 slots (refills mid-run) == each prompt alone
    params = SamplingParams(temperature=1.0, top_p=0.9, max_new_tokens=16, n=3, seed=5, stop_ids=(7, 11, 13))
    batched = eng.generate(ps, params, prompt_ids=list(range(100, 105)))
    alone = Engine(model, max_batch=1, buckets=BUCKETS, chunk=3)
    for i, p in enumerate(ps):
        single = alone.generate([p], params, prompt_ids=[100 + i])[0]
        assert [c.tokens for c in single] == [c.tokens for c in batched[i]]
        assert [c.finish_reason for c in single] == [c.finish_reason for c in batched[i]]
    reasons = {c.finish_reason for row in batched for c in row}
    for row in batched:
        for c in row:
            assert (c.finish_reason == "stop") == (c.tokens[-1] in (7, 11, 13))
            assert c.finish_reason == "stop" or len(c.tokens) == 16
            assert not set(c.tokens[:-1]) & {7, 11, 13}
    assert reasons == {"stop", "length"}
    # the same seed gives the same samples; another seed others
    again = eng.generate(ps, params, prompt_ids=list(range(100, 105)))
    assert [[c.tokens for c in r] for r in again] == [[c.tokens for c in r] for r in batched]
    other = eng.generate(ps, SamplingParams(**{**params.__dict__, "seed": 6}), prompt_ids=list(range(100, 105)))
    assert [[c.tokens for c in r] for r in other] != [[c.tokens for c in r] for r in batched]


def test_unrolled_decode_loop_gives_the_same_samples(model):
    """Three decode steps per loop iteration (as on GPU): rows that stop mid-iteration, refills,
    the n-gram ban and the batch shrink leave every sample as it is one step at a time."""
    ps = prompts(5, seed=1, lo=14)
    params = SamplingParams(temperature=1.0, max_new_tokens=16, n=3, seed=5, stop_ids=(7, 11, 13), no_repeat_ngram=2)
    ref = Engine(model, max_batch=4, buckets=BUCKETS, chunk=4, unroll=1).generate(ps, params)
    eng = Engine(model, max_batch=4, buckets=BUCKETS, chunk=6, unroll=3)
    got = eng.generate(ps, params)
    def pairs(rows):
        return [[(c.tokens, c.finish_reason) for c in r] for r in rows]

    assert pairs(got) == pairs(ref)
    assert {c.finish_reason for r in got for c in r} == {"stop", "length"}
    assert eng.stats["decode_steps"] % 3 == 0
    with pytest.raises(ValueError, match="unroll 4 must be at least 1 and divide chunk 6"):
        Engine(model, chunk=6, unroll=4)


def ref_greedy_no_repeat(logits_fn, m, p, n_new, ngram):
    """Greedy decoding with the ban computed by brute force over the generated tokens (the
    model's full forward on the right-padded sequence; causal, so padding does not matter)."""
    ids, gen = list(p), []
    for _ in range(n_new):
        padded = np.zeros((1, 64), np.int32)
        padded[0, :len(ids)] = ids
        logits = np.asarray(logits_fn(m, jnp.asarray(padded))[0, len(ids) - 1]).copy()
        if len(gen) >= ngram - 1:
            tail = tuple(gen[len(gen) - ngram + 1:])
            for j in range(len(gen) - ngram + 1):
                if tuple(gen[j:j + ngram - 1]) == tail:
                    logits[gen[j + ngram - 1]] = -np.inf
        gen.append(int(np.argmax(logits)))
        ids.append(gen[-1])
    return gen


def test_no_repeat_ngram_matches_brute_force_and_batching(model):
    ps = prompts(3, seed=4, lo=6, hi=12)
    eng = Engine(model, max_batch=2, buckets=BUCKETS, chunk=5)
    plain = eng.generate(ps, SamplingParams(max_new_tokens=28))
    loops = [c.tokens for row in plain for c in row]

    def repeats(t, n):
        grams = [tuple(t[j:j + n]) for j in range(len(t) - n + 1)]
        return len(grams) - len(set(grams))

    assert any(repeats(t, 3) for t in loops), "the tiny random model should loop without the ban"
    params = SamplingParams(max_new_tokens=28, no_repeat_ngram=3)
    out = eng.generate(ps, params)
    for row in out:
        assert repeats(row[0].tokens, 3) == 0
    assert out[0][0].tokens == ref_greedy_no_repeat(_logits, model, ps[0], 28, 3)
    sampled = SamplingParams(temperature=1.0, max_new_tokens=28, no_repeat_ngram=2, n=2, seed=1)
    batched = eng.generate(ps, sampled)
    alone = Engine(model, max_batch=1, buckets=BUCKETS, chunk=3)
    for i, p in enumerate(ps):
        assert [c.tokens for c in alone.generate([p], sampled, prompt_ids=[i])[0]] == [c.tokens for c in batched[i]]
        assert all(repeats(c.tokens, 2) == 0 for c in batched[i])
    with pytest.raises(ValueError, match="no_repeat_ngram"):
        SamplingParams(no_repeat_ngram=1)


def test_compilations_bounded_and_checkpoint_swap(model):
    eng = Engine(model, max_batch=8, buckets=BUCKETS)
    params = SamplingParams(temperature=0.7, max_new_tokens=12, n=2)
    eng.generate(prompts(10, seed=2, lo=2, hi=60), params)
    shapes = [k for k in eng.compiled_shapes if k[0] in ("decode", "insert")]
    decode = [k for k in shapes if k[0] == "decode"]
    insert = [k for k in shapes if k[0] == "insert"]
    assert len(decode) == 1
    n_len_buckets = len({b for b in BUCKETS if b <= 64})
    n_count_buckets = 3  # prefill batches of 1, 2 or 4 prompts (8 slots, 2 samples each)
    assert len(insert) <= n_len_buckets * n_count_buckets
    assert eng.compilations == len(eng.compiled_shapes)
    n = eng.compilations
    before = eng.generate(prompts(10, seed=2, lo=2, hi=60), params)
    assert eng.compilations == n  # same shapes: nothing new
    other = Decoder(CFG, rngs=nnx.Rngs(9))
    eng.set_model(other)
    after = eng.generate(prompts(10, seed=2, lo=2, hi=60), params)
    assert eng.compilations == n  # parameters swapped, nothing recompiled
    assert [[c.tokens for c in r] for r in after] != [[c.tokens for c in r] for r in before]
    with pytest.raises(ScoderError, match="another architecture"):
        eng.set_model(Decoder(CFG.replace(intermediate_size=40), rngs=nnx.Rngs(0)))


def test_first_token_distribution_matches_softmax(model):
    p = prompts(1, seed=4)[0]
    T = 1.3
    logits = model(jnp.array([p])).logits[0, -1]
    probs = np.asarray(jax.nn.softmax(logits / T), np.float64)
    n = 4000
    eng = Engine(model, max_batch=512, buckets=BUCKETS)
    out = eng.generate([p], SamplingParams(temperature=T, max_new_tokens=1, n=n, seed=1))[0]
    counts = np.bincount([c.tokens[0] for c in out], minlength=CFG.vocab_size)
    # pool rare tokens so every expected count is >= 5
    order = np.argsort(probs)[::-1]
    exp = probs[order] * n
    keep = exp >= 5
    obs = np.concatenate([counts[order][keep], [counts[order][~keep].sum()]])
    ex = np.concatenate([exp[keep], [exp[~keep].sum()]])
    ok = ex > 0
    chi2, pval = stats.chisquare(obs[ok], ex[ok] * obs[ok].sum() / ex[ok].sum())
    assert pval > 1e-3, (chi2, pval)


def test_filters_never_emit_outside_their_set():
    rng = np.random.default_rng(0)
    B, V = 64, 50
    logits = jnp.asarray(rng.standard_normal((B, V)) * 3, jnp.float32)
    probs = np.asarray(jax.nn.softmax(logits))
    keys = jax.vmap(lambda i: sample_key(0, 0, i))(jnp.arange(B))
    ones = jnp.ones((B,), jnp.float32)
    order = np.argsort(-probs, axis=1)
    draw = jax.jit(sample_tokens, static_argnames="mode")
    for top_k, top_p, min_p in ((5, 1.0, 0.0), (0, 0.6, 0.0), (0, 1.0, 0.2), (3, 0.5, 0.1)):
        allowed = np.ones((B, V), bool)
        if top_k:
            allowed &= np.isin(np.arange(V)[None], order[:, :top_k]) if False else \
                np.array([np.isin(np.arange(V), order[b, :top_k]) for b in range(B)])
        if top_p < 1:
            sp = np.take_along_axis(probs, order, 1)
            n_keep = np.maximum(((np.cumsum(sp, 1) - sp) < top_p).sum(1), 1)
            allowed &= np.array([np.isin(np.arange(V), order[b, :n_keep[b]]) for b in range(B)])
        if min_p:
            allowed &= probs >= min_p * probs.max(1, keepdims=True)
        kn = (jnp.full((B,), top_k, jnp.int32), jnp.full((B,), top_p, jnp.float32), jnp.full((B,), min_p, jnp.float32))
        assert np.array_equal(np.isfinite(np.asarray(filter_logits(logits, *kn))), allowed)
        for step in range(10):
            for mode in ("filtered", "any"):
                toks = np.asarray(draw(logits, step_keys(keys, jnp.full((B,), step)), ones, *kn, mode=mode))
                assert allowed[np.arange(B), toks].all(), (top_k, top_p, min_p, mode)


def test_filter_from_top_cap_equals_full_sort():
    """Above TOP_CAP the thresholds come from lax.top_k when exact, else from a full sort: both
    must keep exactly the set a full sort keeps (peaked rows take the fast path, flat rows fall back)."""
    from scoder_jax.generate import sampling

    rng = np.random.default_rng(1)
    B, V = 8, 4 * sampling.TOP_CAP
    peaked = rng.standard_normal((B, V)) * 6  # the nucleus closes within the top TOP_CAP
    flat = rng.standard_normal((B, V)) * 0.05  # it does not: the fallback sorts
    for scale, x in (("peaked", peaked), ("flat", flat)):
        logits = jnp.asarray(x, jnp.float32)
        probs = np.asarray(jax.nn.softmax(logits))
        order = np.argsort(-probs, axis=1)
        sp = np.take_along_axis(probs, order, 1)
        for top_k, top_p, min_p in ((40, 1.0, 0.0), (0, 0.9, 0.0), (0, 1.0, 0.05), (2000, 0.95, 0.0),
                                    (sampling.TOP_CAP + 5, 1.0, 0.0)):
            n_keep = np.maximum(((np.cumsum(sp, 1) - sp) < top_p).sum(1), 1) if top_p < 1 else np.full(B, V)
            n_keep = np.minimum(n_keep, top_k or V)
            allowed = np.array([np.isin(np.arange(V), order[b, :n_keep[b]]) for b in range(B)])
            if min_p:
                allowed &= probs >= min_p * probs.max(1, keepdims=True)
            kn = (jnp.full((B,), top_k, jnp.int32), jnp.full((B,), top_p, jnp.float32),
                  jnp.full((B,), min_p, jnp.float32))
            got = np.isfinite(np.asarray(jax.jit(sampling.filter_logits)(logits, *kn)))
            assert np.array_equal(got, allowed), (scale, top_k, top_p, min_p)


def test_batch_shrinks_once_nothing_waits_and_keeps_the_samples(model):
    """32 slots, 4 prompts x 8 samples of spread lengths: once nothing waits the live rows move
    into 16 then 8 slots (also on a data x fsdp mesh), and every sample is what it is alone."""
    from scoder_jax import parallel

    ps = prompts(4, seed=1, lo=14)
    params = SamplingParams(temperature=1.0, max_new_tokens=40, n=8, seed=5, stop_ids=(7, 11, 13))
    mesh = parallel.make_mesh(data=2, fsdp=2, tensor=2)
    alone = Engine(model, max_batch=1, buckets=BUCKETS, chunk=3)
    expect = [[c.tokens for c in alone.generate([p], params, prompt_ids=[i])[0]] for i, p in enumerate(ps)]
    lengths = sorted(len(t) for row in expect for t in row)
    assert lengths[0] < 10 and lengths[-1] == 40, "the samples should end at spread lengths"
    for m in (None, mesh):
        eng = Engine(model, max_batch=32, buckets=BUCKETS, chunk=4, mesh=m)
        out = eng.generate(ps, params)
        assert [[c.tokens for c in row] for row in out] == expect
        assert [k[1] for k in eng.compiled_shapes if k[0] == "decode"] == [32, 16, 8]
        assert eng.stats["shrinks"] == 2
        assert eng.stats["decode_row_steps"] < 32 * eng.stats["decode_steps"] * 0.6


def test_sharded_engine_gives_same_greedy_tokens(model):
    from scoder_jax import parallel

    assert len(jax.devices()) == 8, "conftest sets 8 simulated CPU devices"
    mesh = parallel.make_mesh(data=2, fsdp=2, tensor=2)
    ps = prompts(6, seed=7)
    params = SamplingParams(max_new_tokens=10)
    single = Engine(model, max_batch=8, buckets=BUCKETS).generate(ps, params)
    eng = Engine(model, max_batch=8, buckets=BUCKETS, mesh=mesh)
    sharded = eng.generate(ps, params)
    assert [[c.tokens for c in r] for r in sharded] == [[c.tokens for c in r] for r in single]
    w = eng.weights["layers"][0]["w_gate"]
    assert len(w.sharding.device_set) == 8 and w.addressable_shards[0].data.size < w.size


def test_bad_input_fails_clearly(model):
    eng = Engine(model, buckets=BUCKETS)
    with pytest.raises(ScoderError, match="prompt 1: empty"):
        eng.generate([[1, 2], []], SamplingParams(max_new_tokens=8))
    with pytest.raises(ScoderError, match="exceed the model's context of 160"):
        eng.generate([[1] * 100], SamplingParams(max_new_tokens=61))
    with pytest.raises(ScoderError, match="outside the vocabulary"):
        eng.generate([[1, 64]], SamplingParams(max_new_tokens=8))
    with pytest.raises(ValueError, match="top_p"):
        SamplingParams(top_p=0.0)
