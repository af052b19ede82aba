"""Incremental stop-string checks (scoder_jax/generate/stop_strings.py) against the full decode
they replace: random token streams through real tokenizers (SmolLM2's and DeepSeek-Coder's
byte-level BPE, a SentencePiece BPE with byte fallback), characters split across tokens, stop
strings spanning tokens or at the first token; the engine's completions with and without it."""

from __future__ import annotations

import inspect
import io
import os

import numpy as np
import pytest
from flax import nnx

from scoder_jax.generate.engine import Engine
from scoder_jax.generate.sampling import SamplingParams
from scoder_jax.generate.stop_strings import StopStringWatch, has_stop_string, split_rule
from scoder_jax.models.config import ModelConfig
from scoder_jax.models.llama import Decoder
from scoder_jax.tokenizer import Tokenizer

TEXTS = ["def f(x):\n    return x + 1\n", "héllo wörld, naïve café", "price: 100€ — ok", "日本語のテキスト",
         "emoji 😀🎉 done", "  two  spaces\t\ttabs\n\n", "</code>\n```\nEND", "Ünïcödé ñ ß Ω ж"]


@pytest.fixture(scope="module")
def spm_tok(tmp_path_factory) -> Tokenizer:
    """A Llama-2-style SentencePiece BPE with byte fallback (most non-ASCII text as <0xNN> pieces)."""
    import sentencepiece as spm

    from tests.test_tokenizer import write_gguf

    corpus = [line for line in inspect.getsource(os).splitlines() if line.strip()] + TEXTS[:3] * 5
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus), model_writer=model, vocab_size=400, model_type="bpe", byte_fallback=True,
        character_coverage=1.0, normalization_rule_name="identity", remove_extra_whitespaces=False,
        allow_whitespace_only_pieces=True, minloglevel=2)
    sp = spm.SentencePieceProcessor(model_proto=model.getvalue())
    n = sp.vocab_size()
    types = [2 if sp.is_unknown(i) else 3 if sp.is_control(i) else 6 if sp.is_byte(i) else 1 for i in range(n)]
    path = write_gguf(tmp_path_factory.mktemp("spm") / "spm.gguf", model="llama",
                      tokens=[sp.id_to_piece(i) for i in range(n)], types=types,
                      scores=[sp.get_score(i) for i in range(n)], bos=sp.bos_id(), eos=sp.eos_id(), unk=sp.unk_id())
    return Tokenizer.load(path)


def byte_tokens(tok: Tokenizer, text: str) -> list[int]:
    """`text` as one token per UTF-8 byte (byte-level symbols, or <0xNN> byte-fallback pieces)."""
    from tokenizers import pre_tokenizers

    if split_rule(tok.decode).glue_ids:
        return [tok.token_to_id(f"<0x{b:02X}>") for b in text.encode()]
    symbols = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False).pre_tokenize_str(text)[0][0]
    return [tok.token_to_id(c) for c in symbols]


def random_stream(tok: Tokenizer, rng: np.random.Generator, broken: list[int]) -> list[int]:
    """Segments of: encoded text, text one byte per token, either with special tokens (which decode
    drops) put in between, uniformly random ids, tokens that decode alone to U+FFFD (pieces of
    characters)."""
    specials = [i for i in (tok.bos_id, tok.eos_id, *tok.stop_ids) if i is not None]
    out: list[int] = []
    for _ in range(int(rng.integers(2, 9))):
        kind, text = int(rng.integers(6)), TEXTS[int(rng.integers(len(TEXTS)))]
        if kind in (0, 4):
            seg = tok.encode(text)
        elif kind in (1, 5):
            seg = byte_tokens(tok, text)
        elif kind == 2:
            seg = rng.integers(0, tok.vocab_size, size=int(rng.integers(1, 12))).tolist()
        else:
            seg = rng.choice(broken, size=int(rng.integers(1, 6))).tolist()
        if kind >= 4:
            for _ in range(int(rng.integers(1, 4))):
                seg.insert(int(rng.integers(len(seg) + 1)), int(rng.choice(specials)))
        out += seg
    return [int(i) for i in out]


def stop_sets(tok: Tokenizer, tokens: list[int], rng: np.random.Generator) -> list[tuple[str, ...]]:
    """Stop strings cut from the text at random prefixes (transient U+FFFD included), the first
    token's text, and ones that never occur."""
    sets = [(tok.decode(tokens[:1]),), ("\x00never",)]
    for _ in range(6):
        text = tok.decode(tokens[:int(rng.integers(1, len(tokens) + 1))])
        if not text:
            continue
        i = int(rng.integers(len(text)))
        sets.append((text[i:i + int(rng.integers(1, 7))], "\x00never" * int(rng.integers(2))))
    return [s for s in sets if any(s)]


def chunks(n: int, rng: np.random.Generator) -> list[int]:
    """Token counts at which the engine would check: after the first token, then every 1-8."""
    ends, k = [1], 1
    while k < n:
        k = min(n, k + int(rng.integers(1, 9)))
        ends.append(k)
    return ends


@pytest.mark.parametrize("which", ["smol", "deepseek", "spm_tok"])
def test_incremental_check_equals_full_decode(which, request):
    tok = request.getfixturevalue(which)
    rule = split_rule(tok.decode)
    assert rule is not None and bool(rule.context) == (which == "spm_tok")  # the incremental path runs
    broken = [i for i in range(tok.vocab_size) if "\ufffd" in tok.decode([i])][:2000]
    assert broken
    rng = np.random.default_rng(sum(map(ord, which)))
    hits = checks = 0
    for _ in range(120):
        tokens = random_stream(tok, rng, broken)
        ends = chunks(len(tokens), rng)
        for stops in stop_sets(tok, tokens, rng):
            watch = StopStringWatch(tok.decode, stops, rule)
            for n in ends:
                want = has_stop_string(tok.decode(tokens[:n]), stops)  # the engine's old check
                got = watch.hit(tokens[:n])
                checks += 1
                assert got == want, (tokens[:n], stops, n)
                if want:
                    hits += 1
                    break
            assert watch.rule is rule  # never fell back to full decodes
    assert hits > 500 and checks > 3000


@pytest.mark.parametrize("which", ["smol", "deepseek", "spm_tok"])
def test_text_at_every_check_is_the_full_decode(which, request):
    """The identity the check rests on: text(n) == text(boundary) + window(n) past its context,
    at every check; the kept overlap is the boundary text's tail; boundaries do advance."""
    tok = request.getfixturevalue(which)
    broken = [i for i in range(tok.vocab_size) if "\ufffd" in tok.decode([i])][:2000]
    rng = np.random.default_rng(7)
    boundaries = 0
    for _ in range(60):
        tokens = random_stream(tok, rng, broken)
        watch = StopStringWatch(tok.decode, ("\x00never", "\x01x"), split_rule(tok.decode))
        for n in chunks(len(tokens), rng):
            assert not watch.hit(tokens[:n])
            c, start = watch.boundary, watch.start
            assert watch.head == tok.decode(tokens[start:c])
            assert watch.kept == tok.decode(tokens[:c])[-watch.overlap:]
            window = tok.decode(tokens[start:n])
            assert tok.decode(tokens[:n]) == tok.decode(tokens[:c]) + window[len(watch.head):]
        boundaries += watch.boundary
    assert boundaries > 0


def test_stop_at_the_first_token_and_across_a_split_character(smol, spm_tok):
    for tok in (smol, spm_tok):
        rule = split_rule(tok.decode)
        ids = tok.encode("import os")
        first = tok.decode(ids[:1])
        assert first.strip() and StopStringWatch(tok.decode, (first,), rule).hit(ids[:1])
        # "é€" one byte per token: no check sees a stop string until the last byte arrives
        pieces = tok.encode("a ") + byte_tokens(tok, "é€")
        watch = StopStringWatch(tok.decode, ("é€",), rule)
        answers = [watch.hit(pieces[:n]) for n in range(1, len(pieces) + 1)]
        assert answers == [False] * (len(pieces) - 1) + [True]


def test_a_window_that_disagrees_falls_back_to_full_decodes(caplog):
    """A decode the rule does not describe (here: text reversed, so later tokens change its
    start): the watch notices, says so and answers by full decodes from then on."""
    from scoder_jax.generate.stop_strings import SplitRule

    def reversed_text(ids):
        return "".join(chr(97 + i) for i in ids)[::-1]

    tokens = [0, 1, 2, 3, 4, 5]  # text "fedcba" at the end
    watch = StopStringWatch(reversed_text, ("cb",), SplitRule(context=1, glue_ids=frozenset()))
    answers = [watch.hit(tokens[:n]) for n in range(1, 7)]
    assert answers == [has_stop_string(reversed_text(tokens[:n]), ("cb",)) for n in range(1, 7)]
    assert answers == [False, False, True, True, True, True]
    assert watch.rule is None and "checking by full decodes" in caplog.text


def test_work_is_linear_in_the_completion(smol):
    """Checking a 2000-token completion every token decodes O(n) ids in all (the full decode
    would decode n^2 / 2)."""
    seen = []

    def counting(ids):
        seen.append(len(ids))
        return smol.decode(ids)

    text = (inspect.getsource(os) + "日本語 😀 café ") * 2
    tokens = smol.encode(text)[:2000]
    watch = StopStringWatch(counting, ("\x00never",), split_rule(smol.decode))
    for n in range(1, len(tokens) + 1):
        assert not watch.hit(tokens[:n])
    assert sum(seen) < 4 * len(tokens)
    assert split_rule(counting) is None and split_rule(lambda ids: smol.decode(ids)) is None  # unknown: full decode


# -- the engine: same completions as with full decodes -------------------------------------------

CFG = ModelConfig(vocab_size=64, hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2, head_dim=8,
                  intermediate_size=48, max_position=128, bos_token_id=None, eos_token_id=None)


def tiny_tokenizer(kind: str) -> Tokenizer:
    """64 pieces, most of them parts of "é" (C3 A9) and "ñ" (C3 B1): byte-level symbols of 1-3 of
    those bytes, or <0xNN> byte pieces beside SentencePiece pieces; and a special end token."""
    import itertools

    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import decoders, models, pre_tokenizers

    if kind == "byte_level":
        sym = lambda t: pre_tokenizers.ByteLevel(  # noqa: E731
            add_prefix_space=False, use_regex=False).pre_tokenize_str(t)[0][0]
        pieces = [sym(c) for c in "ab \né€ñ"]
        pieces += ["".join(p) for n in (1, 2, 3) for p in itertools.product([sym("é")[0], sym("é")[1], sym("ñ")[1]],
                                                                           repeat=n)]
        decoder = decoders.ByteLevel()
    else:
        pieces = ["a", "b", "\n", "▁", "▁a", "▁▁", "é", "ñ", "▁é", "éñ", "<0xC3>", "<0xA9>", "<0xB1>", "<0x61>",
                  "<0x0A>", "<0xE2>", "<0x82>", "<0xAC>"]
        decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    pieces = list(dict.fromkeys(pieces))
    pieces += [f"x{i}" for i in range(CFG.vocab_size - 1 - len(pieces))] + ["</s>"]
    backend = HFTokenizer(models.WordLevel({p: i for i, p in enumerate(pieces)}, unk_token="</s>"))
    backend.decoder = decoder
    backend.add_special_tokens(["</s>"])
    assert backend.get_vocab_size(True) == CFG.vocab_size
    return Tokenizer(backend, family="plain", bos_token=None, eos_token="</s>")


def test_engine_completions_equal_full_decode_checks():
    eng = Engine(Decoder(CFG, rngs=nnx.Rngs(3)), buckets=(16, 32, 64, 128), max_batch=8, chunk=4)
    rng = np.random.default_rng(0)
    prompts = [rng.integers(0, CFG.vocab_size - 1, size=int(rng.integers(2, 12))).tolist() for _ in range(6)]
    for kind, stops in (("byte_level", ("éé", "ñ", "ab")), ("sentencepiece", ("éé", " a", "\ufffd" * 3))):
        tok = tiny_tokenizer(kind)
        assert split_rule(tok.decode) is not None
        params = SamplingParams(temperature=1.0, max_new_tokens=40, n=4, seed=1, stop_strings=stops,
                                stop_ids=(CFG.vocab_size - 1,))
        got = eng.generate(prompts, params, decode=tok.decode)
        want = eng.generate(prompts, params, decode=lambda ids, tok=tok: tok.decode(ids))  # full decodes
        assert [[(c.tokens, c.finish_reason) for c in r] for r in got] == \
            [[(c.tokens, c.finish_reason) for c in r] for r in want]
        by_string = [c for r in got for c in r if c.finish_reason == "stop" and c.tokens[-1] != CFG.vocab_size - 1]
        assert len(by_string) >= 3, kind  # stop strings did end samples
        assert all(has_stop_string(tok.decode(c.tokens), stops) for c in by_string)
