"""Token sampling: temperature, top-k, top-p, min-p, and per-sample keys.

Each sample's randomness comes from its own key, derived from the run seed, the prompt id and
the sample index, then folded with the decoding step. So a sample's tokens do not depend on
the batch it was decoded in, its row, or the device count.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    top_k: int = 0  # 0 = off
    min_p: float = 0.0
    no_repeat_ngram: int = 0  # >= 2: never generate an n-gram this sample already generated (0 = off)
    max_new_tokens: int = 256
    n: int = 1
    seed: int = 0
    stop_ids: tuple[int, ...] = ()
    stop_strings: tuple[str, ...] = field(default=())

    def __post_init__(self):
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0 or self.min_p < 0 or self.min_p >= 1:
            raise ValueError("top_k must be >= 0 and min_p in [0, 1)")
        if self.no_repeat_ngram < 0 or self.no_repeat_ngram == 1:
            raise ValueError(f"no_repeat_ngram must be 0 (off) or >= 2, got {self.no_repeat_ngram}")
        if self.max_new_tokens < 1 or self.n < 1:
            raise ValueError("max_new_tokens and n must be >= 1")


def sample_key(seed: int, prompt_id: int, sample_index: int) -> jax.Array:
    """The base key of one sample (fold the decoding step into it for each token)."""
    key = jax.random.fold_in(jax.random.key(seed), prompt_id)
    return jax.random.fold_in(key, sample_index)


TOP_CAP = 512  # filters are computed from the top TOP_CAP logits when that is exact (see filter_logits)


def _filter_from_sorted(logits, desc, lse, top_k, top_p, min_p):
    """The filter given `desc` [B, n], the n largest logits of each row in descending order (n <= V),
    and each row's logsumexp over all V logits. Exact when every row's top-k and nucleus end
    within the first n (filter_logits checks that)."""
    n = desc.shape[-1]
    keep = jnp.ones(logits.shape, bool)
    # top-k: threshold at the k-th largest
    kth = jnp.take_along_axis(desc, (jnp.clip(top_k, 1, n) - 1)[:, None], axis=-1)
    keep &= (top_k[:, None] <= 0) | (logits >= kth)
    # top-p: smallest prefix of the sorted distribution whose mass reaches p
    probs = jnp.exp(desc - lse[:, None])
    cum_before = jnp.cumsum(probs, axis=-1) - probs
    n_keep = jnp.maximum(jnp.sum(cum_before < top_p[:, None], axis=-1), 1)
    pth = jnp.take_along_axis(desc, (n_keep - 1)[:, None], axis=-1)
    keep &= (top_p[:, None] >= 1) | (logits >= pth)
    # min-p: drop tokens whose probability is below min_p * p(max)
    keep &= (min_p[:, None] <= 0) | (logits >= desc[:, :1] + jnp.log(jnp.maximum(min_p, 1e-30))[:, None])
    return jnp.where(keep, logits, -jnp.inf)


def filter_logits(logits: jax.Array, top_k: jax.Array, top_p: jax.Array, min_p: jax.Array) -> jax.Array:
    """logits [B, V] (already divided by temperature) -> logits with excluded tokens at -inf.

    top_k [B] int (0 = off), top_p [B] float (1 = off), min_p [B] float (0 = off). The most
    likely token always survives.

    A full sort of V logits per row costs more than the whole decode step of a small model on a
    CPU, so the thresholds come from `lax.top_k` of the TOP_CAP largest logits whenever that is
    exact: every row's k <= TOP_CAP and its nucleus closes within them (their probability mass,
    against the logsumexp of all V logits, reaches top_p). Otherwise (a flat distribution at a
    high temperature) the whole row set is sorted.
    """
    V = logits.shape[-1]
    lse = jax.nn.logsumexp(logits, axis=-1)
    cap = min(TOP_CAP, V)

    def full(x):
        return _filter_from_sorted(x, jnp.sort(x, axis=-1)[:, ::-1], lse, top_k, top_p, min_p)

    if cap == V:
        return full(logits)
    desc = jax.lax.top_k(logits, cap)[0]
    mass = jnp.sum(jnp.exp(desc - lse[:, None]), axis=-1)
    exact = jnp.all((top_k <= cap) & ((top_p >= 1) | (mass >= top_p)))
    return jax.lax.cond(exact, lambda x: _filter_from_sorted(x, desc, lse, top_k, top_p, min_p), full, logits)


def step_keys(keys: jax.Array, steps: jax.Array) -> jax.Array:
    """keys [B] (from `sample_key`), steps [B] int: each sample's key for its own step."""
    return jax.vmap(jax.random.fold_in)(keys, steps)


def sample_tokens(logits: jax.Array, keys: jax.Array, temperature: jax.Array, top_k: jax.Array,
                  top_p: jax.Array, min_p: jax.Array, *, mode: str = "any") -> jax.Array:
    """logits [B, V] fp32, keys [B] (one per row, already folded with the step) -> tokens [B].

    Rows with temperature 0 are greedy. Sampling is by inverse CDF with one uniform draw per row
    (u in (0, 1], first token whose cumulative probability reaches u), so a token of
    probability 0 (filtered out) is never drawn; the sort for top-k / top-p / min-p runs only
    when some row asks for one of them. `mode` (static) specialises the computation when the
    caller knows every row's knobs: "greedy" (all temperatures 0), "plain" (every temperature
    > 0, no top-k / top-p / min-p), "filtered" (every temperature > 0), or "any" (decided on
    device, greedy rows included).
    """
    if mode == "greedy":
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    t = jnp.where(temperature > 0, temperature, 1.0)[:, None]
    scaled = logits / t
    if mode == "filtered":
        scaled = filter_logits(scaled, top_k, top_p, min_p)
    elif mode == "any":
        need_filter = jnp.any((top_k > 0) | (top_p < 1) | (min_p > 0))
        scaled = jax.lax.cond(need_filter, lambda x: filter_logits(x, top_k, top_p, min_p), lambda x: x, scaled)
    probs = jnp.exp(scaled - jnp.max(scaled, axis=-1, keepdims=True))
    cdf = jnp.cumsum(probs, axis=-1)
    u = 1.0 - jax.vmap(lambda k: jax.random.uniform(k, (), jnp.float32))(keys)  # (0, 1]
    target = u[:, None] * cdf[:, -1:]
    drawn = jnp.minimum(jnp.sum(cdf < target, axis=-1), logits.shape[-1] - 1).astype(jnp.int32)
    if mode != "any":  # no greedy rows: skip the argmax over V (7 of the 17 ms at 64 x 49k on CPU)
        return drawn
    return jnp.where(temperature > 0, drawn, jnp.argmax(logits, axis=-1).astype(jnp.int32))


def sampling_mode(params: SamplingParams) -> str:
    """The static `sample_tokens` mode for one call's parameters."""
    if params.temperature == 0:
        return "greedy"
    if params.top_k > 0 or params.top_p < 1 or params.min_p > 0:
        return "filtered"
    return "plain"


def banned_by_ngrams(hist: jax.Array, start: jax.Array, pos: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
    """No-repeat n-grams over each row's generated tokens. hist [B, S] holds the token fed at
    each slot (generated ones from slot `start` [B] on, the newest at `pos` [B]). Returns
    (tokens [B, S], banned [B, S]): banned[b, j] says token tokens[b, j] = hist[b, j + 1] would
    complete an n-gram that row b already generated (its n - 1 tokens ending at slot j equal its
    newest n - 1). The prompt does not count: copying from it is allowed."""
    S = hist.shape[1]
    j = jnp.arange(S)[None, :]
    banned = (j >= start[:, None] + n - 2) & (j < pos[:, None])
    for i in range(n - 1):
        newest = jnp.take_along_axis(hist, (pos - i)[:, None] % S, axis=1)
        banned &= jnp.roll(hist, i, axis=1) == newest
    return jnp.roll(hist, -1, axis=1), banned


def apply_ngram_ban(logits: jax.Array, hist: jax.Array, start: jax.Array, pos: jax.Array, n: int) -> jax.Array:
    """logits [B, V] with the tokens `banned_by_ngrams(hist, start, pos, n)` forbids at -inf."""
    toks, banned = banned_by_ngrams(hist, start, pos, n)
    rows = jnp.arange(logits.shape[0])[:, None]
    hit = jnp.zeros(logits.shape, bool).at[rows, toks].max(banned)
    return jnp.where(hit, -jnp.inf, logits)
