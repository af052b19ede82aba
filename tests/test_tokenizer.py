"""Tokenizer: GGUF and HF loading, llama.cpp test vectors, chat templates vs transformers,
no double BOS, stop tokens, loss masks, save -> AutoTokenizer, one-line errors."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import gguf
import pytest

from scoder_jax.errors import ScoderError
from scoder_jax.tokenizer import (
    DEEPSEEK_CODER_SYSTEM_PROMPT,
    LLAMA3_TEMPLATE,
    Tokenizer,
)
from scoder_jax.tokenizer_gguf import read_gguf_tokenizer_metadata

SAMPLES = [
    "Hello world's THE'S",
    "def f(x):\n    return x+1\n\n\n",
    "  spaces\t\ttabs\n \n\nnewlines  ",
    "Äpfel über naïve café 日本語 🦙",
    "12345 3.14159 1234567",
    "for i in range(10):\r\n\tprint(i)  # comment",
]

CHAT = [
    {"role": "user", "content": "Write add."},
    {"role": "assistant", "content": "def add(a, b):\n    return a + b"},
    {"role": "user", "content": "Now sub."},
    {"role": "assistant", "content": "def sub(a, b):\n    return a - b"},
]


def read_vocab_tests(gguf_path: Path) -> list[tuple[str, list[int]]]:
    """llama.cpp's test-tokenizer-0 format: inputs separated by `\\n__ggml_vocab_test__\\n`, one line
    of space-separated ids per input in the .out file."""
    inp = Path(str(gguf_path) + ".inp").read_text(encoding="utf-8")
    out = Path(str(gguf_path) + ".out").read_text(encoding="utf-8").split("\n")
    sep = "\n__ggml_vocab_test__\n"
    texts, pos = [], 0
    while (nxt := inp.find(sep, pos)) != -1:
        texts.append(inp[pos:nxt])
        pos = nxt + len(sep)
    assert len(out) >= len(texts) > 40
    return [(t, [int(x) for x in line.split()]) for t, line in zip(texts, out)]


def write_gguf(path: Path, *, model: str | None, tokens=(), pre: str | None = None, merges=None, types=None,
               scores=None, bos=None, eos=None, unk=None, template=None) -> Path:
    w = gguf.GGUFWriter(str(path), "llama")
    if model is not None:
        w.add_tokenizer_model(model)
    if pre is not None:
        w.add_tokenizer_pre(pre)
    if tokens:
        w.add_token_list(list(tokens))
    if types is not None:
        w.add_token_types(list(types))
    if scores is not None:
        w.add_token_scores(list(scores))
    if merges is not None:
        w.add_token_merges(list(merges))
    for fn, v in ((w.add_bos_token_id, bos), (w.add_eos_token_id, eos), (w.add_unk_token_id, unk)):
        if v is not None:
            fn(v)
    if template is not None:
        w.add_chat_template(template)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.close()
    return path


@pytest.fixture(scope="module")
def smol_meta(smollm2_gguf) -> dict:
    return read_gguf_tokenizer_metadata(smollm2_gguf)


# -- DeepSeek-Coder ------------------------------------------------------------------------------


def test_deepseek_reproduces_llama_cpp_vectors(deepseek, deepseek_vocab_gguf):
    cases = read_vocab_tests(deepseek_vocab_gguf)
    mismatches = [(t, deepseek.encode(t), ids) for t, ids in cases if deepseek.encode(t) != ids]
    assert not mismatches, mismatches[:3]
    # batch encoding agrees, and byte-level decoding gives the text back
    assert deepseek.encode_batch([t for t, _ in cases]) == [ids for _, ids in cases]
    for t, ids in cases:
        assert deepseek.decode(ids) == t


# DeepSeek-Coder's user-defined single-character tokens 32000-32012: symbols of the bytes UTF-8
# never uses (C0, C1, F5-FF), which a byte-level decoder would turn into U+FFFD.
DEEPSEEK_CHARS = "õ÷ÁýÀÿøúþüùöû"


def test_deepseek_user_defined_characters_decode_as_themselves(deepseek, tmp_path):
    assert [deepseek.token_to_id(c) for c in DEEPSEEK_CHARS] == list(range(32000, 32013))
    for i, c in zip(range(32000, 32013), DEEPSEEK_CHARS):
        assert deepseek.decode([i]) == c
    texts = ["Für", "Föö bär", f"x{DEEPSEEK_CHARS}y", "日本ü語 🦙ö", " ÷ 2\n", "Ã¼ and ü", DEEPSEEK_CHARS * 2]
    for t in texts:
        ids = deepseek.encode(t)
        assert any(32000 <= i <= 32012 for i in ids), t
        assert deepseek.decode(ids) == t and deepseek.decode(ids, skip_special=False) == t
    assert deepseek.encode("Für") == [37, 32009, 81]  # the ids llama.cpp gives
    # batches of ids and the family variant decode them too
    assert deepseek.with_family("deepseek-coder").decode(deepseek.encode("Für")) == "Für"
    # saved: transformers decodes them as well, and a reload keeps the fast decoder
    from tokenizers import decoders
    from transformers import AutoTokenizer

    deepseek.save(tmp_path / "tok")
    hf = AutoTokenizer.from_pretrained(str(tmp_path / "tok"))
    again = Tokenizer.load(tmp_path / "tok")
    assert isinstance(again.backend.decoder, decoders.ByteLevel)
    for t in texts:
        ids = deepseek.encode(t)
        assert hf.decode(ids) == t and again.decode(ids) == t
        assert hf.encode(t, add_special_tokens=False) == ids
    # a tokenizer.json whose whole-token Replace steps mean something else is decoded as it says
    tj = tmp_path / "tok" / "tokenizer.json"
    spec = json.loads(tj.read_text(encoding="utf-8"))
    assert spec["decoder"]["decoders"][0]["pattern"] == {"Regex": r"\Aõ\z"}
    spec["decoder"]["decoders"][0]["content"] = "Ã¶"  # õ -> ö
    tj.write_text(json.dumps(spec), encoding="utf-8")
    odd = Tokenizer.load(tmp_path / "tok")
    assert odd.decode([32000, 32009]) == "öü" and not isinstance(odd.backend.decoder, decoders.ByteLevel)


def _stdlib_sample(every: int = 40, max_bytes: int = 40_000, with_chars: int = 12) -> list[tuple[str, str]]:
    """(name, text) of every `every`-th stdlib module under `max_bytes`, and the `with_chars`
    smallest ones holding DeepSeek's user-defined characters (shlex.py, punycode.py, ...)."""
    import sysconfig

    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.rglob("*.py") if "site-packages" not in p.parts and p.stat().st_size <= max_bytes)
    texts = {}
    for p in files:
        try:
            texts[str(p.relative_to(root))] = p.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
    names = sorted(texts)
    chosen = set(names[::every])
    special = sorted((n for n in names if set(DEEPSEEK_CHARS) & set(texts[n])), key=lambda n: len(texts[n]))
    chosen.update(special[:with_chars])
    assert len(special) >= 3, special  # the sample exercises the fix
    return [(n, texts[n]) for n in sorted(chosen)]


def test_deepseek_decode_round_trips_the_standard_library(deepseek):
    """decode(encode(x)) == x over a sample of the standard library's modules (all 1786 of
    Python 3.11's round-trip too: 10.2M tokens, see the notes)."""
    sample = _stdlib_sample()
    ids = deepseek.encode_batch([t for _, t in sample])
    bad = [n for (n, t), i in zip(sample, ids) if deepseek.decode(i) != t]
    assert not bad, bad[:5]
    assert sum(map(len, ids)) > 50_000


def test_deepseek_special_tokens_and_family(deepseek):
    assert deepseek.family == "deepseek-coder-instruct"  # detected from <|EOT|> in the vocabulary
    assert deepseek.vocab_size == 32256
    assert (deepseek.bos_id, deepseek.eos_id, deepseek.pad_id) == (32013, 32014, 32014)
    assert deepseek.token_to_id("<|EOT|>") == 32021 and deepseek.id_to_token(32021) == "<|EOT|>"
    assert 32021 in deepseek.stop_ids and deepseek.eos_id in deepseek.stop_ids
    assert deepseek.add_bos
    # <|EOT|> is parsed whole and skipped by decode like BOS/EOS; plain text survives
    ids = deepseek.encode("x = 1<|EOT|>", add_bos=True)
    assert ids[0] == 32013 and ids[-1] == 32021
    assert deepseek.decode(ids) == "x = 1"
    assert deepseek.decode(ids, skip_special=False) == "<｜begin▁of▁sentence｜>x = 1<|EOT|>"
    base = deepseek.with_family("deepseek-coder")
    assert base.family == "deepseek-coder" and 32021 in base.stop_ids
    assert base.render_chat(CHAT) == deepseek.render_chat(CHAT)  # the base model is tuned into the instruct format
    plain = deepseek.with_family("plain")
    assert plain.stop_ids == (32014,) and plain.chat_template != deepseek.chat_template


def test_deepseek_chat_template_matches_official_rendering(deepseek):
    # the official template's rendering as llama.cpp's test-chat-template expects it, plus the BOS
    msgs = [
        {"role": "system", "content": "You are a helpful assistant"},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi there"},
        {"role": "user", "content": "Who are you"},
        {"role": "assistant", "content": "   I am an assistant   "},
        {"role": "user", "content": "Another question"},
    ]
    expected = (
        "You are a helpful assistant### Instruction:\nHello\n### Response:\nHi there\n<|EOT|>\n"
        "### Instruction:\nWho are you\n### Response:\n   I am an assistant   \n<|EOT|>\n"
        "### Instruction:\nAnother question\n### Response:\n"
    )
    assert deepseek.render_chat(msgs) == "<｜begin▁of▁sentence｜>" + expected
    text = deepseek.render_chat([{"role": "user", "content": "hi"}])
    assert text == f"<｜begin▁of▁sentence｜>{DEEPSEEK_CODER_SYSTEM_PROMPT}\n### Instruction:\nhi\n### Response:\n"


def test_no_double_bos(deepseek):
    text = deepseek.render_chat(CHAT[:1])
    assert text.startswith(deepseek.bos_token)
    ids = deepseek.encode_chat(CHAT[:1])
    assert ids[0] == deepseek.bos_id and ids.count(deepseek.bos_id) == 1
    assert ids == deepseek.encode(text)  # the template's BOS is the only one
    assert deepseek.encode(text, add_bos=True).count(deepseek.bos_id) == 1
    assert deepseek.encode("abc", add_bos=True)[0] == deepseek.bos_id
    assert deepseek.bos_id not in deepseek.encode("abc")
    # a template that writes no BOS, on a vocabulary that wants one: added exactly once
    chatml = deepseek.with_family("chatml")
    assert not chatml.render_chat(CHAT[:1]).startswith(chatml.bos_token)
    ids = chatml.encode_chat(CHAT[:1])
    assert ids[0] == chatml.bos_id and ids.count(chatml.bos_id) == 1
    assert ids[1:] == chatml.encode(chatml.render_chat(CHAT[:1]))


def _masked_pieces(tok: Tokenizer, ids, mask) -> list[str]:
    """The decoded runs of consecutive masked tokens."""
    runs, cur = [], []
    for i, m in zip(ids, mask):
        if m:
            cur.append(i)
        elif cur:
            runs.append(tok.decode(cur, skip_special=False))
            cur = []
    if cur:
        runs.append(tok.decode(cur, skip_special=False))
    return runs


def test_deepseek_loss_mask(deepseek):
    ids, mask = deepseek.encode_chat_with_loss_mask(CHAT)
    assert ids == deepseek.encode_chat(CHAT, add_generation_prompt=False)
    assert len(mask) == len(ids) and ids.count(deepseek.bos_id) == 1
    assert _masked_pieces(deepseek, ids, mask) == [
        "def add(a, b):\n    return a + b\n<|EOT|>",
        "def sub(a, b):\n    return a - b\n<|EOT|>",
    ]
    assert not mask[0]  # BOS
    # a conversation ending on a user turn has nothing to learn
    ids, mask = deepseek.encode_chat_with_loss_mask(CHAT[:1])
    assert not any(mask)


# llama.cpp's llm_tokenizer_bpe regexes (src/llama-vocab.cpp), copied here as the reference for
# the split; each regex in turn isolates its matches and keeps the text between them.
LLAMA_CPP_SPLITS = {
    "deepseek-coder": ["[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[一-龥ࠀ-一가-퟿]+", "\\p{N}"],
    "smollm": ["\\p{N}", "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"],
}
GPT2_SPLIT = ["'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"]
SPLIT_TEXTS = [
    "x = 3 + 42", "foo.bar(baz) -> None:", "a\n\nb\r\n", "abc123def", "  return\t-1  ",
    "我想在apple工作1314151天～", "한국어 текст", "''' docstring '''", "a,b;;c...d", "if x:\n        y += 1\n",
]


def llama_cpp_split(text: str, exprs: list[str]) -> list[str]:
    import regex

    frags = [text]
    for expr in exprs:
        r, out = regex.compile(expr), []
        for f in frags:
            pos = 0
            for m in r.finditer(f):
                if m.start() > pos:
                    out.append(f[pos : m.start()])
                if m.end() > m.start():
                    out.append(m.group())
                pos = m.end()
            if pos < len(f):
                out.append(f[pos:])
        frags = out
    return frags


@pytest.mark.parametrize("which", ["deepseek-coder", "smollm"])
def test_pretokenizer_splits_like_llama_cpp(which, request):
    """The test vectors hardly depend on the split (a GPT-2 split misses only one of them), so the
    split itself is checked against llama.cpp's regexes, on text where the GPT-2 split differs."""
    tok = request.getfixturevalue("deepseek" if which == "deepseek-coder" else "smol")
    differs = 0
    for t in SPLIT_TEXTS:
        ours = [t[a:b] for _, (a, b) in tok.backend.pre_tokenizer.pre_tokenize_str(t)]
        assert ours == llama_cpp_split(t, LLAMA_CPP_SPLITS[which]), t
        differs += ours != llama_cpp_split(t, GPT2_SPLIT)
    assert differs >= 2


# -- SmolLM2 (ChatML, chat template from the GGUF) -----------------------------------------------


@pytest.fixture(scope="module")
def smol_reference(smollm2_gguf):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(smollm2_gguf.parent), gguf_file=smollm2_gguf.name)


def test_smollm2_matches_transformers_gguf_tokenizer(smol, smol_reference):
    assert smol.family == "chatml"
    assert smol.model_chat_template is not None and "SmolLM" in smol.model_chat_template
    assert (smol.bos_id, smol.eos_id, smol.pad_id) == (1, 2, 2) and not smol.add_bos
    assert smol.token_to_id("<|im_end|>") == 2 and 2 in smol.stop_ids
    texts = SAMPLES + ["<|im_start|>user\nhi<|im_end|>\n"]
    for t in texts:
        assert smol.encode(t) == smol_reference.encode(t, add_special_tokens=False), t
        assert smol.decode(smol.encode(t), skip_special=False) == t
    assert smol.encode("2024") == [smol.token_to_id(c) for c in "2024"]  # digits split one by one
    for msgs in (CHAT, CHAT[:3], [{"role": "system", "content": "Be terse."}, *CHAT[:1]]):
        for gen in (True, False):
            assert smol.render_chat(msgs, add_generation_prompt=gen) == smol_reference.apply_chat_template(
                msgs, tokenize=False, add_generation_prompt=gen
            )


def test_smollm2_loss_mask(smol):
    ids, mask = smol.encode_chat_with_loss_mask(CHAT)
    assert ids == smol.encode_chat(CHAT, add_generation_prompt=False)
    assert _masked_pieces(smol, ids, mask) == [
        "def add(a, b):\n    return a + b<|im_end|>",
        "def sub(a, b):\n    return a - b<|im_end|>",
    ]


def test_save_loads_in_transformers(smol, deepseek, tmp_path):
    from transformers import AutoTokenizer

    for tok in (smol, deepseek):
        out = tmp_path / tok.family
        tok.save(out)
        assert {p.name for p in out.iterdir()} >= {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"}
        hf = AutoTokenizer.from_pretrained(str(out))
        assert (hf.bos_token_id, hf.eos_token_id, hf.pad_token_id) == (tok.bos_id, tok.eos_id, tok.pad_id)
        for t in SAMPLES:
            ids = tok.encode(t, add_bos=tok.add_bos)
            assert hf.encode(t) == ids, t
            assert hf.decode(ids, skip_special_tokens=True) == tok.decode(ids)
        for gen in (True, False):
            assert hf.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=gen) == tok.render_chat(
                CHAT, add_generation_prompt=gen
            )
        again = Tokenizer.load(out)
        assert (again.family, again.bos_id, again.eos_id, again.pad_id, again.stop_ids, again.add_bos) == (
            tok.family, tok.bos_id, tok.eos_id, tok.pad_id, tok.stop_ids, tok.add_bos
        )
        assert again.vocab_size == tok.vocab_size
        assert again.encode_chat(CHAT) == tok.encode_chat(CHAT)
        assert again.encode(SAMPLES[3]) == tok.encode(SAMPLES[3])


# -- Llama 3 and Qwen2 pre-tokenizers, Llama 3 chat ----------------------------------------------


def _smol_vocab_gguf(path: Path, meta: dict, pre: str, n: int = 6000) -> Path:
    """The first `n` tokens of SmolLM2's vocabulary (specials, bytes, then merges in order) and the
    merges that stay inside them: a smaller, consistent byte-level BPE."""
    tokens = meta["tokenizer.ggml.tokens"][:n]
    kept = set(tokens)
    merges = [m for m in meta["tokenizer.ggml.merges"] if m.replace(" ", "") in kept]
    assert all(a in kept and b in kept for a, b in (m.split(" ") for m in merges))
    return write_gguf(
        path, model="gpt2", pre=pre, tokens=tokens, types=meta["tokenizer.ggml.token_type"][:n], merges=merges,
        bos=1, eos=2,
    )


@pytest.mark.parametrize("pre", ["llama-bpe", "qwen2"])
def test_llama3_and_qwen2_pretokenizers_match_transformers(smol_meta, tmp_path, pre):
    """SmolLM2's vocabulary under another pre-tokenizer name: transformers' GGUF conversion uses the
    original Llama 3 / Qwen2 split regexes for these, so it is a reference for the split."""
    from transformers import AutoTokenizer

    path = _smol_vocab_gguf(tmp_path / f"{pre}.gguf", smol_meta, pre)
    tok = Tokenizer.load(path)
    ref = AutoTokenizer.from_pretrained(str(tmp_path), gguf_file=path.name)
    for t in SAMPLES + ["Hello world's THE'S\n\n  x", "   \n\n\n  "]:
        assert tok.encode(t) == ref.encode(t, add_special_tokens=False), (pre, t)
    # the split differs from SmolLM2's own where it should: Llama 3 groups digits in threes
    words = [w for w, _ in tok.backend.pre_tokenizer.pre_tokenize_str("x = 1234567")]
    if pre == "llama-bpe":  # Llama 3 groups digits in threes, ignore_merges as in its tokenizer.json
        assert words == ["x", "Ġ=", "Ġ", "123", "456", "7"] and tok.backend.model.ignore_merges
    else:  # Qwen2 splits digits one by one
        assert words == ["x", "Ġ=", "Ġ", "1", "2", "3", "4", "5", "6", "7"]
    if pre == "qwen2":  # Qwen2's own tokenizer.json normalizes to NFC (llama.cpp and transformers' GGUF path do not)
        assert tok.encode("cafe\u0301") == tok.encode("caf\u00e9")


def test_llama3_family_builtin_template_and_stops(smol, tmp_path):
    from tokenizers import AddedToken
    from tokenizers import Tokenizer as HFTokenizer
    from transformers import AutoTokenizer

    backend = HFTokenizer.from_str(smol.backend.to_str())
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                "<|eot_id|>", "<|eom_id|>"]
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    d = tmp_path / "llama3"
    d.mkdir()
    backend.save(str(d / "tokenizer.json"))
    (d / "tokenizer_config.json").write_text(json.dumps(
        {"bos_token": "<|begin_of_text|>", "eos_token": {"content": "<|end_of_text|>"}, "add_bos_token": True}))
    (d / "generation_config.json").write_text(json.dumps({"eos_token_id": [smol.vocab_size + 1, smol.vocab_size + 4]}))
    tok = Tokenizer.load(d)
    assert tok.family == "llama3"  # from the special tokens: no template in the directory
    assert tok.chat_template == LLAMA3_TEMPLATE and tok.pad_id == tok.eos_id
    ids = {t: tok.token_to_id(t) for t in specials}
    assert set(tok.stop_ids) == {ids["<|end_of_text|>"], ids["<|eot_id|>"], ids["<|eom_id|>"]}
    text = tok.render_chat(CHAT[:3])
    assert text.startswith("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWrite add.<|eot_id|>")
    assert text.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
    enc = tok.encode_chat(CHAT[:3])
    assert enc.count(tok.bos_id) == 1 and enc[0] == tok.bos_id
    ids_, mask = tok.encode_chat_with_loss_mask(CHAT)
    assert _masked_pieces(tok, ids_, mask) == [
        "def add(a, b):\n    return a + b<|eot_id|>",
        "def sub(a, b):\n    return a - b<|eot_id|>",
    ]
    out = tmp_path / "saved"
    tok.save(out)
    hf = AutoTokenizer.from_pretrained(str(out))
    for gen in (True, False):
        assert hf.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=gen) == tok.render_chat(
            CHAT, add_generation_prompt=gen)
    assert hf.encode("hi there") == tok.encode("hi there", add_bos=True)
    # family detection from a template's text alone
    cfg = json.loads((out / "tokenizer_config.json").read_text())
    del cfg["scoder_family"]
    (out / "tokenizer_config.json").write_text(json.dumps(cfg))
    assert Tokenizer.load(out).family == "llama3"


# -- SentencePiece BPE (Llama 2 style) -----------------------------------------------------------


def test_sentencepiece_gguf_matches_sentencepiece(tmp_path):
    import inspect

    import sentencepiece as spm

    corpus = [line for line in inspect.getsource(os).splitlines() if line.strip()]
    corpus += ["Hello world. The quick brown fox jumps over the lazy dog."] * 20
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus), model_writer=model, vocab_size=400, model_type="bpe", byte_fallback=True,
        character_coverage=1.0, split_digits=True, normalization_rule_name="identity",
        remove_extra_whitespaces=False, allow_whitespace_only_pieces=True, minloglevel=2,
    )
    sp = spm.SentencePieceProcessor(model_proto=model.getvalue())
    n = sp.vocab_size()
    types = [2 if sp.is_unknown(i) else 3 if sp.is_control(i) else 6 if sp.is_byte(i) else 1 for i in range(n)]
    path = write_gguf(
        tmp_path / "spm.gguf", model="llama", tokens=[sp.id_to_piece(i) for i in range(n)], types=types,
        scores=[sp.get_score(i) for i in range(n)], bos=sp.bos_id(), eos=sp.eos_id(), unk=sp.unk_id(),
        template="{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}",
    )
    tok = Tokenizer.load(path)
    assert tok.family == "llama2" and tok.add_bos and tok.stop_ids == (sp.eos_id(),)
    for t in SAMPLES + ["", " ", "import os\nos.path.join('a', 'b')"]:
        assert tok.encode(t) == sp.encode(t), t
        assert tok.decode(tok.encode(t)) == sp.decode(sp.encode(t)) == t
    assert tok.encode("hi", add_bos=True) == [sp.bos_id(), *sp.encode("hi")]


# -- errors ---------------------------------------------------------------------------------------


def test_errors_are_one_line_and_name_file_and_field(tmp_path, smol_meta, deepseek_vocab_gguf):
    def err(fn) -> str:
        with pytest.raises(ScoderError) as e:
            fn()
        msg = str(e.value)
        assert "\n" not in msg
        return msg

    missing = tmp_path / "nope.gguf"
    assert str(missing) in err(lambda: Tokenizer.load(missing))
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    assert "tokenizer.json" in err(lambda: Tokenizer.load(empty_dir))
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf at all")
    assert str(junk) in err(lambda: Tokenizer.load(junk))

    no_tok = write_gguf(tmp_path / "notok.gguf", model=None)
    msg = err(lambda: Tokenizer.load(no_tok))
    assert str(no_tok) in msg and "tokenizer.ggml.model" in msg

    unknown = _smol_vocab_gguf(tmp_path / "unknown.gguf", smol_meta, "brand-new-pre")
    msg = err(lambda: Tokenizer.load(unknown))
    assert str(unknown) in msg and "tokenizer.ggml.pre" in msg and "brand-new-pre" in msg

    bad_model = write_gguf(tmp_path / "bert.gguf", model="bert", tokens=["a", "b"])
    msg = err(lambda: Tokenizer.load(bad_model))
    assert "tokenizer.ggml.model" in msg and "bert" in msg

    assert "family" in err(lambda: Tokenizer.load(deepseek_vocab_gguf, family="gpt5"))

    d = tmp_path / "hf"
    d.mkdir()
    (d / "tokenizer.json").write_text("{broken")
    assert "tokenizer.json" in err(lambda: Tokenizer.load(d))

    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(deepseek_vocab_gguf, one / "ds.gguf")
    tok = Tokenizer.load(one)  # a directory holding one .gguf
    assert tok.vocab_size == 32256
    assert "role" in err(lambda: tok.render_chat([{"content": "x"}]))
    assert "template" in err(lambda: tok.with_family("llama2").render_chat([{"role": "assistant", "content": "x"}]))
