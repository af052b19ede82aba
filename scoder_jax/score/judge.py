"""The multi-aspect judge: a language model rates each candidate on Z aspects, 0 to 9 each.

A rating is not parsed from generated text: for every (candidate, aspect) the judge reads one
prompt that ends where its answer would start, and the rating is the expected digit under its
next-token distribution restricted to the ten digit tokens "0".."9":

    x_z = sum_d d * p(d) / sum_d p(d)        d = 0..9

With `rating="integer"` (the paper's integer scores, `score.rating: integer`) the rating is the
most likely digit, argmax_d p(d), instead. `digit_mass = sum_d p(d)` (under the full softmax)
says how much the judge meant to answer with a digit at all; it is kept as a diagnostic.
A trained scorer (`scoder scorer train`) is read by the same prompts; `load_judge` on its folder
takes its checkpoint once its aspects match (`scorer_info`).

Cost. Prompts are laid out so that work is shared: instructions and rubrics first (the same
for every candidate), then the exercise (the same for every aspect of a candidate), then a
one-line aspect question. Per batch, the common prefix is run once into a KV cache, each
candidate's part once on top of it, and only the Z short questions per candidate after that:
about one forward pass over the exercise instead of Z over the whole prompt. Batches are
sorted by length and padded to buckets; one compiled function per (batch, shared bucket,
own bucket, question bucket). Parameters are arguments, so `Judge.set_model` swaps in another
checkpoint of the same architecture without recompiling.

Prompts longer than `max_prompt_tokens` are shortened by cutting the longest of snippet,
solution, tests and problem (marked "... [truncated]"); such candidates are flagged.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from functools import partial
from typing import Sequence

import numpy as np

from scoder_jax.errors import ConfigError, ScoderError
from scoder_jax.synth.prompts import language

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Aspect:
    name: str  # identifier: a key in scores.jsonl and in the weights file
    title: str  # shown to the judge
    rubric: str  # what 0 and 9 mean


DEFAULT_ASPECTS: tuple[Aspect, ...] = (
    Aspect("clarity", "Problem clarity and self-containedness",
           "Is the problem clear and complete without the snippet? 0: vague; 9: fully self-contained."),
    Aspect("correctness", "Solution correctness",
           "Does the solution solve the problem correctly, edge cases included? 0: wrong; 9: correct."),
    Aspect("consistency", "Problem-solution consistency",
           "Do the solution and tests match the problem (task, names, signatures)? 0: unrelated; 9: consistent."),
    Aspect("relevance", "Relevance to the snippet",
           "Does the problem build on the ideas of the code snippet? 0: unrelated; 9: closely related."),
    Aspect("difficulty", "Difficulty",
           "How challenging and instructive is the problem? 0: trivial; 9: hard."),
)

JUDGE_SYSTEM = "You are a strict, fair reviewer of programming exercises."
# A default rubric that mentions tests -> its wording for a candidate without tests (the sample
# format "problem_solution"): the judge is never asked about tests that are not there.
RUBRICS_WITHOUT_TESTS = {
    next(a.rubric for a in DEFAULT_ASPECTS if a.name == "consistency"):
        "Does the solution match the problem (task, names, signatures)? 0: unrelated; 9: consistent.",
}


def aspects_from(spec: Sequence[dict] | None) -> tuple[Aspect, ...]:
    """Aspects from config data (a list of {name, title, rubric}); None gives the defaults."""
    if spec is None:
        return DEFAULT_ASPECTS
    out = []
    for k, a in enumerate(spec):
        if isinstance(a, Aspect):
            out.append(a)
            continue
        if not isinstance(a, dict) or not all(isinstance(a.get(f), str) and a.get(f)
                                              for f in ("name", "title", "rubric")):
            raise ConfigError(f"judge aspect {k}: expected a mapping with non-empty name, title and rubric, got {a!r}")
        out.append(Aspect(a["name"], a["title"], a["rubric"]))
    names = [a.name for a in out]
    if not out or len(set(names)) != len(names):
        raise ConfigError(f"judge aspects: need at least one, with distinct names; got {names}")
    return tuple(out)


def _fence(code: str, tag: str) -> str:
    longest = max((len(r) for r in code.split("\n") if r.strip("`") == "" and r), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{tag}\n{code.rstrip()}\n{fence}"


def judge_messages(candidate: dict, aspect: Aspect, aspects: Sequence[Aspect] | None = None) -> list[dict]:
    """The chat asking for one aspect's rating of one candidate.

    Layout: instructions and every aspect's rubric (the same for all candidates), then the
    exercise (the same for all aspects of a candidate), then the one-line aspect question.
    `aspects` lists the rubrics shown (default: just `aspect`'s). A candidate without tests
    (format "problem_solution") gets no Tests part and rubrics that do not mention tests.
    """
    aspects = tuple(aspects) if aspects else (aspect,)
    tag = language(candidate.get("lang") or "python").tag
    snippet = (candidate.get("snippet") or "").strip("\n")
    tests = candidate.get("tests") or ""
    with_tests = bool(tests.strip())
    rubrics = "\n".join(f"- {a.title}: {a.rubric if with_tests else RUBRICS_WITHOUT_TESTS.get(a.rubric, a.rubric)}"
                         for a in aspects)
    parts = ["Rate the programming exercise below, which was written from a code snippet, on one criterion, "
             "from 0 (worst) to 9 (best). Answer with a single digit and nothing else.\n\n"
             f"Criteria:\n{rubrics}\n"]
    parts.append("Code snippet:\n" + (_fence(snippet, tag) if snippet.strip() else "(not given)") + "\n")
    parts.append("Problem:\n" + (candidate.get("problem") or "").strip() + "\n")
    parts.append("Solution:\n" + _fence(candidate.get("solution") or "", tag) + "\n")
    if with_tests:
        parts.append("Tests:\n" + _fence(tests, tag) + "\n")
    parts.append(f"Criterion: {aspect.title}. Rating (0-9):")
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": "\n".join(parts)}]


def digit_token_ids(tokenizer) -> list[int]:
    """Ids of the single tokens "0".."9"; ScoderError if the vocabulary lacks one."""
    ids = []
    for d in range(10):
        i = tokenizer.token_to_id(str(d))
        if i is None:
            enc = tokenizer.encode(str(d))
            i = enc[0] if len(enc) == 1 else None
        if i is not None and tokenizer.decode([i], skip_special=False).strip() != str(d):
            i = None  # e.g. an unknown-token id
        if i is None:
            raise ScoderError(
                f"{getattr(tokenizer, 'source', 'the judge tokenizer')}: the judge's vocabulary has no single token "
                f"for the digit '{d}'; ratings are read from the probabilities of the ten digit tokens, so use a "
                "judge whose tokenizer has them (LLaMA, Qwen, DeepSeek-Coder and SmolLM2 tokenizers all do)")
        ids.append(int(i))
    if len(set(ids)) != 10:
        raise ScoderError(f"{getattr(tokenizer, 'source', 'the judge tokenizer')}: digit tokens are not distinct: "
                          f"{ids}")
    return ids


@dataclasses.dataclass
class JudgeResult:
    scores: np.ndarray  # [n, Z] rating (expected digit, or the most likely one), NaN where not judged
    digit_mass: np.ndarray  # [n, Z] probability the judge puts on any digit
    truncated: np.ndarray  # [n] bool: the prompt was shortened to fit
    skipped: dict[int, str]  # candidate index -> reason it was not judged ("no_problem", "no_solution")
    prompt_tokens: np.ndarray  # [n] tokens of the longest of its prompts (0 when skipped)


def _bucket(n: int, buckets: Sequence[int]) -> int:
    for b in buckets:
        if n <= b:
            return b
    return 1 << max(0, (n - 1).bit_length())


def _common_prefix(seqs: list[list[int]]) -> int:
    n = min(len(s) for s in seqs)
    k = 0
    while k < n and all(s[k] == seqs[0][k] for s in seqs[1:]):
        k += 1
    return k


_CUT_FIELDS = ("snippet", "solution", "tests", "problem")
TRUNCATION_MARK = "\n... [truncated]"
RATINGS = ("expected", "integer")


class Judge:
    """Rates candidates on aspects with one model (see the module docstring).

    `tokens_per_batch` bounds batch x prefix bucket (memory of the attention scores);
    `max_prompt_tokens` bounds one prompt (default: the model's context).
    """

    PREFIX_BUCKETS = (64, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144, 8192, 12288, 16384)
    SUFFIX_BUCKETS = (8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)

    def __init__(self, model, tokenizer, aspects: Sequence[Aspect] = DEFAULT_ASPECTS, *, batch_size: int = 8,
                 tokens_per_batch: int = 8192, max_prompt_tokens: int | None = None, rating: str = "expected"):
        import jax
        from flax import nnx

        self.aspects = tuple(aspects)
        if not self.aspects:
            raise ConfigError("judge: no aspects")
        self.tokenizer = tokenizer
        self.digit_ids = np.asarray(digit_token_ids(tokenizer), np.int32)
        self.cfg = model.cfg
        if tokenizer.vocab_size > self.cfg.vocab_size or int(self.digit_ids.max()) >= self.cfg.vocab_size:
            raise ScoderError(f"judge: the tokenizer ({tokenizer.vocab_size} tokens) does not fit the model's "
                              f"vocabulary of {self.cfg.vocab_size}; give the judge checkpoint's own tokenizer")
        if rating not in RATINGS:
            raise ConfigError(f"judge rating {rating!r}: choose one of {', '.join(RATINGS)}")
        self.rating = rating  # "expected": sum_d d p(d) / sum_d p(d); "integer": argmax_d p(d) (the paper's)
        self.batch_size = max(1, batch_size)
        self.tokens_per_batch = max(tokens_per_batch, 128)
        self.max_prompt_tokens = min(max_prompt_tokens or self.cfg.max_position, self.cfg.max_position)
        self.graphdef, self.state = nnx.split(model)
        self._fn = jax.jit(partial(_judge_logprobs, self.graphdef))
        self.compiled: set[tuple] = set()
        self.stats: dict[str, float] = {"forward_s": 0.0, "shared_tokens": 0, "own_tokens": 0, "suffix_tokens": 0}

    def set_model(self, model) -> None:
        from flax import nnx

        graphdef, state = nnx.split(model)
        if graphdef != self.graphdef:
            raise ScoderError(f"judge: checkpoint {model.cfg.name!r} has another architecture than {self.cfg.name!r}")
        self.state = state

    # ------------------------------------------------------------------ prompts
    def _encode(self, cand: dict) -> list[list[int]]:
        return [self.tokenizer.encode_chat(judge_messages(cand, a, self.aspects)) for a in self.aspects]

    def prompts(self, cand: dict) -> tuple[list[list[int]], bool]:
        """Token ids of the Z prompts of one candidate, shortened to fit; (ids, truncated)."""
        ids = self._encode(cand)
        truncated = False
        c = dict(cand)
        for _ in range(64):
            if max(len(x) for x in ids) <= self.max_prompt_tokens:
                return ids, truncated
            field = max(_CUT_FIELDS, key=lambda f: len(c.get(f) or ""))
            text = c.get(field) or ""
            if len(text) <= len(TRUNCATION_MARK) + 8:
                break
            over = max(len(x) for x in ids) - self.max_prompt_tokens
            keep = max(0, min(int(len(text) * 0.75), len(text) - 3 * over))
            c[field] = text[:keep].rstrip() + TRUNCATION_MARK
            truncated = True
            ids = self._encode(c)
        if max(len(x) for x in ids) > self.max_prompt_tokens:
            raise ScoderError(f"judge: the prompt for candidate {cand.get('id')!r} does not fit "
                              f"{self.max_prompt_tokens} tokens even with its texts cut "
                              "(the aspect rubric is too long?)")
        return ids, truncated

    # ------------------------------------------------------------------ scoring
    def score(self, candidates: Sequence[dict], *, progress: bool = False) -> JudgeResult:
        n, Z = len(candidates), len(self.aspects)
        scores = np.full((n, Z), np.nan, np.float64)
        mass = np.full((n, Z), np.nan, np.float64)
        truncated = np.zeros((n,), bool)
        prompt_tokens = np.zeros((n,), np.int64)
        skipped: dict[int, str] = {}
        items = []  # (index, prompt ids per aspect, shared prefix length)
        for i, c in enumerate(candidates):
            why = unjudgeable(c)
            if why:
                skipped[i] = why
                continue
            ids, cut = self.prompts(c)
            truncated[i] = cut
            prompt_tokens[i] = max(len(x) for x in ids)
            items.append((i, ids, min(_common_prefix(ids), min(len(x) for x in ids) - 1)))
        # sort by the candidate's own part, then cut into batches of one bucket each
        glob = _common_prefix([ids[0] for _, ids, _ in items]) if items else 0
        items.sort(key=lambda it: (it[2] - glob, max(len(x) for x in it[1]) - it[2]))
        batches = []
        j = 0
        while j < len(items):
            Tc = _bucket(max(items[j][2] - glob, 1), self.PREFIX_BUCKETS)
            B = max(1, min(self.batch_size, self.tokens_per_batch // Tc))
            group = [it for it in items[j:j + B] if _bucket(max(it[2] - glob, 1), self.PREFIX_BUCKETS) == Tc]
            batches.append(group)
            j += len(group)
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(items), unit="cand", desc="judge", dynamic_ncols=True)
        try:
            for group in batches:
                logp = self._run(group)  # [Z, b, 10]
                p = np.exp(logp.astype(np.float64))
                m = p.sum(-1)  # [Z, b]
                ev = (p * np.arange(10)).sum(-1) / np.maximum(m, 1e-300) if self.rating == "expected" \
                    else p.argmax(-1).astype(np.float64)
                for r, (i, _, _) in enumerate(group):
                    scores[i] = ev[:, r]
                    mass[i] = m[:, r]
                if bar is not None:
                    bar.update(len(group))
        finally:
            if bar is not None:
                bar.close()
        return JudgeResult(scores, mass, truncated, skipped, prompt_tokens)

    def _run(self, group) -> np.ndarray:
        """One batch: the prefix shared by the whole batch once, each candidate's part once,
        then its Z aspect suffixes on top. Returns log p(digit) [Z, len(group), 10]."""
        Z = len(self.aspects)
        g = min(_common_prefix([ids[0] for _, ids, _ in group]), min(k for _, _, k in group))
        Tc = _bucket(max(max(k - g for _, _, k in group), 1), self.PREFIX_BUCKETS)
        Gb = _bucket(max(g, 1), self.PREFIX_BUCKETS)
        B = max(1, min(self.batch_size, self.tokens_per_batch // Tc))
        B = 1 << (B.bit_length() - 1)  # a power of two: fewer shapes
        while B < len(group):
            B *= 2
        Ts = _bucket(max(len(x) - k for _, ids, k in group for x in ids), self.SUFFIX_BUCKETS)
        pad = self.tokenizer.pad_id if self.tokenizer.pad_id is not None else 0
        shared = np.full((Gb,), pad, np.int32)
        shared[:g] = group[0][1][0][:g]
        own = np.full((B, Tc), pad, np.int32)
        own_len = np.zeros((B,), np.int32)
        suffix = np.full((Z, B, Ts), pad, np.int32)
        slen = np.ones((Z, B), np.int32)
        for r, (_, ids, k) in enumerate(group):
            own[r, :k - g] = ids[0][g:k]
            own_len[r] = k - g
            for z, x in enumerate(ids):
                suffix[z, r, :len(x) - k] = x[k:]
                slen[z, r] = len(x) - k
        key = (B, Gb, Tc, Ts)
        t0 = time.perf_counter()
        out = np.asarray(self._fn(self.state, shared, np.int32(g), own, own_len, suffix, slen, self.digit_ids))
        dt = time.perf_counter() - t0
        if key not in self.compiled:
            self.compiled.add(key)
            log.info("judge: compiled and ran (B=%d, shared=%d, own=%d, suffix=%d) in %.1fs", B, Gb, Tc, Ts, dt)
        self.stats["forward_s"] += dt
        self.stats["shared_tokens"] += g
        self.stats["own_tokens"] += int(own_len.sum())
        self.stats["suffix_tokens"] += int(slen[:, :len(group)].sum())
        return out[:, :len(group)]


def _judge_logprobs(graphdef, state, shared, g, own, own_len, suffix, suffix_len, digit_ids):
    """log p(digit) under the full next-token softmax at the last token of each prompt.

    Prompt b, aspect z = shared[:g] + own[b, :own_len[b]] + suffix[z, b, :suffix_len[z, b]].
    shared [Gb] (padded; g real tokens), own [B, Tc] (right-padded), suffix [Z, B, Ts]
    (right-padded, lengths >= 1), digit_ids [10]. Returns [Z, B, 10] fp32.

    The passes are the model's cached calls (`llama.forward_cached`, the sampling engine's path
    and KV cache layout): the shared prefix a prefill (the model's no-cache attention), the
    rest attending to the cache. Every token is written to the KV slot of its position; a pass's
    padding lands on slots that the next pass overwrites or that lie beyond the last real
    position (masked), so each real token attends exactly to the real tokens before it.
    """
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from scoder_jax.models.llama import init_cache

    model = nnx.merge(graphdef, state)
    B, Tc = own.shape
    Gb, Ts = shared.shape[0], suffix.shape[-1]
    S = Gb + Tc + Ts
    one_row = model(shared[None], cache=init_cache(model.cfg, 1, S), prefill=True, return_logits=False).cache
    cache = jax.tree.map(lambda c: jnp.broadcast_to(c, (B, *c.shape[1:])), one_row)
    pos = g + jnp.broadcast_to(jnp.arange(Tc, dtype=jnp.int32), (B, Tc))
    cache = model(own, positions=pos, cache=cache, return_logits=False).cache
    rows = jnp.arange(B)

    def one(args):
        suf, slen = args
        pos = g + own_len[:, None] + jnp.arange(Ts, dtype=jnp.int32)[None, :]
        h = model(suf, positions=pos, cache=cache, return_logits=False).hidden  # [B, Ts, E]
        last = h[rows, slen - 1][:, None]  # [B, 1, E]
        logits = model.logits(last)[:, 0]  # [B, V] fp32
        lse = jax.nn.logsumexp(logits, axis=-1, keepdims=True)
        return jnp.take(logits, digit_ids, axis=-1) - lse

    return jax.lax.map(one, (suffix, suffix_len))


def unjudgeable(candidate: dict) -> str:
    """Why a candidate cannot be judged ("no_problem", "no_solution"), or ""."""
    for field, reason in (("problem", "no_problem"), ("solution", "no_solution")):
        v = candidate.get(field)
        if not isinstance(v, str) or not v.strip():
            return reason
    return ""


def judge_scores(model, tokenizer, candidates: Sequence[dict], aspects: Sequence[Aspect] = DEFAULT_ASPECTS,
                 **kw) -> np.ndarray:
    """Per-aspect ratings [n, Z] (expected digit, 0..9; NaN for a candidate with no problem or
    solution). Keyword arguments go to `Judge`."""
    return Judge(model, tokenizer, aspects, **kw).score(candidates).scores


def load_judge(path: str, aspects: Sequence[Aspect] = DEFAULT_ASPECTS, *, tokenizer: str | None = None,
               **kw) -> Judge:
    """A `Judge` from a checkpoint path (its own tokenizer unless `tokenizer` names another)."""
    from scoder_jax.models.checkpoint import load_model, load_tokenizer
    from scoder_jax.tokenizer import Tokenizer

    from scoder_jax.score.scorer_info import scorer_checkpoint

    path = scorer_checkpoint(path, aspects)  # a trained scorer's folder: its checkpoint, if its aspects match
    tok = Tokenizer.load(tokenizer) if tokenizer else load_tokenizer(path)
    return Judge(load_model(path), tok, aspects, **kw)


__all__ = ["Aspect", "DEFAULT_ASPECTS", "Judge", "JudgeResult", "judge_scores", "load_judge", "judge_messages",
           "digit_token_ids", "aspects_from", "unjudgeable"]
