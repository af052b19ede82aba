"""Rebuilding a tokenizer from a GGUF file's llama.cpp metadata (`tokenizer.ggml.*`).

`read_gguf_tokenizer_metadata(path)` reads the `tokenizer.*` fields of the header (with
`gguf_meta`); `build_gguf_backend(meta, path)` turns them into a `tokenizers.Tokenizer`
equivalent to the one llama.cpp builds. For byte-level BPE vocabularies
(`tokenizer.ggml.model = "gpt2"`) the pre-tokenizer is chosen from `tokenizer.ggml.pre`, with the
split regexes of the original Hugging Face tokenizers (which llama.cpp's own regexes reproduce);
SentencePiece-style BPE (`"llama"`) is rebuilt from the token scores. `gguf_tokenizer_parts(path,
family)` adds the special tokens, the family and the chat template: the arguments with which
`tokenizer.Tokenizer.load` wraps the backend.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scoder_jax.errors import ScoderError
from scoder_jax.tokenizer_added_tokens import mark_special
from scoder_jax.tokenizer_templates import FAMILY_STOP_TOKENS, detect_family

# ---------------------------------------------------------------------------------------------
# Pre-tokenizers of byte-level BPE vocabularies, keyed by llama.cpp's `tokenizer.ggml.pre`.
# Each is the split sequence of the model's original tokenizer.json (llama.cpp's
# `llm_tokenizer_bpe` regexes are adaptations of these that split text the same way).

_GPT2_SPLIT = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
_LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_DEEPSEEK_CODER_SPLITS = (
    "[\r\n]",
    r"\s?\p{L}+",
    r"\s?\p{P}+",
    "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+",
    r"\p{N}",
)


@dataclass(frozen=True)
class _PreTok:
    splits: tuple[str, ...]  # regexes applied in turn, each isolating its matches
    normalizer: str | None = None  # "nfc" or None
    ignore_merges: bool = False  # whole-word vocabulary lookup before BPE (Llama 3)


_PRE_TOKENIZERS: dict[str, _PreTok] = {}
for _names, _spec in (
    (("default", "gpt-2", "gpt2", "jais", "phi-2", "olmo", "mpt", "stablelm2", "poro-chat"), _PreTok((_GPT2_SPLIT,))),
    (("deepseek-coder",), _PreTok(_DEEPSEEK_CODER_SPLITS)),
    (("smollm", "starcoder", "refact", "codeshell", "command-r"), _PreTok((r"\p{N}", _GPT2_SPLIT))),
    (("llama3", "llama-v3", "llama-bpe", "falcon3", "pixtral"), _PreTok((_LLAMA3_SPLIT,), ignore_merges=True)),
    (("dbrx", "smaug-bpe"), _PreTok((_LLAMA3_SPLIT,))),
    (("qwen2", "deepseek-r1-qwen"), _PreTok((_QWEN2_SPLIT,), normalizer="nfc")),
):
    for _n in _names:
        _PRE_TOKENIZERS[_n] = _spec

# GGUF token types (llama.cpp's llama_token_type).
_TT_NORMAL, _TT_UNKNOWN, _TT_CONTROL, _TT_USER_DEFINED, _TT_UNUSED, _TT_BYTE = 1, 2, 3, 4, 5, 6
_PLACEHOLDER = re.compile(r"^\[PAD\d+\]$")


# ---------------------------------------------------------------------------------------------
# Reading the metadata and building the backend.


def read_gguf_tokenizer_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The `tokenizer.*` fields of a GGUF file as Python values; ScoderError if it has none."""
    from scoder_jax import gguf_meta

    path = Path(path)
    if not path.is_file():
        raise ScoderError(f"{path}: no such file")
    meta = gguf_meta.read_kv(path, lambda key: key.startswith("tokenizer.") or key == "general.architecture")
    for key in ("tokenizer.ggml.model", "tokenizer.ggml.tokens"):
        if key not in meta:
            raise ScoderError(f"{path}: no tokenizer metadata (field {key} is missing)")
    return meta


def build_gguf_backend(meta: dict[str, Any], path: str | os.PathLike = "<gguf>"):
    """A `tokenizers.Tokenizer` equivalent to the one llama.cpp builds from this metadata."""
    model = meta["tokenizer.ggml.model"]
    if model == "gpt2":
        return _build_byte_level_bpe(meta, Path(path))
    if model == "llama":
        return _build_sentencepiece_bpe(meta, Path(path))
    raise ScoderError(
        f"{path}: field tokenizer.ggml.model = {model!r} is not supported (supported: 'gpt2' byte-level BPE, "
        "'llama' SentencePiece BPE)"
    )


def gguf_tokenizer_parts(path: Path, family: str | None) -> dict[str, Any]:
    """The `tokenizer.Tokenizer(...)` arguments (backend=..., family=..., ...) of the GGUF file `path`;
    `family` None: detected from the chat template or the vocabulary. The family's stop tokens
    present in the vocabulary are marked special in the backend."""
    meta = read_gguf_tokenizer_metadata(path)
    backend = build_gguf_backend(meta, path)
    tokens = meta["tokenizer.ggml.tokens"]

    def tok(key: str) -> str | None:
        i = meta.get(key)
        if i is None:
            return None
        if not 0 <= int(i) < len(tokens):
            raise ScoderError(f"{path}: field {key} = {i} is outside the vocabulary of {len(tokens)} tokens")
        return tokens[int(i)]

    template = meta.get("tokenizer.chat_template")
    fam = family or detect_family(template, backend)
    # Tokens that end turns are special in the model's own tokenizer (skipped by decode); older
    # GGUFs mark some of them (DeepSeek-Coder's <|EOT|>) only as user-defined.
    mark_special(backend, [t for t in FAMILY_STOP_TOKENS[fam] if backend.token_to_id(t) is not None])
    model = meta["tokenizer.ggml.model"]
    add_bos = meta.get("tokenizer.ggml.add_bos_token")
    if add_bos is None:
        add_bos = model == "llama"  # llama.cpp's default for SentencePiece vocabularies
    return dict(
        backend=backend,
        family=fam,
        bos_token=tok("tokenizer.ggml.bos_token_id"),
        eos_token=tok("tokenizer.ggml.eos_token_id"),
        pad_token=tok("tokenizer.ggml.padding_token_id"),
        unk_token=tok("tokenizer.ggml.unknown_token_id"),
        add_bos=bool(add_bos),
        chat_template=template,
        source=str(path),
    )


def _token_types(meta: dict[str, Any], n: int, path: Path) -> list[int]:
    types = meta.get("tokenizer.ggml.token_type")
    if types is None:
        return [_TT_NORMAL] * n
    if len(types) != n:
        raise ScoderError(
            f"{path}: field tokenizer.ggml.token_type has {len(types)} entries for {n} tokens"
        )
    return [int(t) for t in types]


def _added_tokens(tokens: list[str], types: list[int], meta: dict[str, Any]):
    """(special, plain) AddedTokens: control tokens, bos/eos/pad/unk and `[PAD...]` placeholders are
    special; other user-defined tokens are matched whole but decoded as text."""
    from tokenizers import AddedToken

    special_ids = {
        int(meta[k])
        for k in (
            "tokenizer.ggml.bos_token_id",
            "tokenizer.ggml.eos_token_id",
            "tokenizer.ggml.padding_token_id",
        )
        if meta.get(k) is not None and 0 <= int(meta[k]) < len(tokens)
    }
    special, plain = [], []
    for i, (t, ty) in enumerate(zip(tokens, types)):
        if ty == _TT_CONTROL or i in special_ids or (ty == _TT_USER_DEFINED and _PLACEHOLDER.match(t)):
            special.append(AddedToken(t, special=True, normalized=False))
        elif ty == _TT_USER_DEFINED:
            plain.append(AddedToken(t, special=False, normalized=False))
    return special, plain


def _vocab_dict(tokens: list[str], path: Path) -> dict[str, int]:
    vocab: dict[str, int] = {}
    for i, t in enumerate(tokens):
        vocab.setdefault(t, i)
    if len(vocab) != len(tokens):
        dup = next(t for i, t in enumerate(tokens) if vocab[t] != i)
        raise ScoderError(f"{path}: field tokenizer.ggml.tokens has duplicate token {dup!r}")
    return vocab


def _build_byte_level_bpe(meta: dict[str, Any], path: Path):
    from tokenizers import Regex
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import decoders, models, normalizers, pre_tokenizers, processors

    pre = meta.get("tokenizer.ggml.pre", "default")
    spec = _PRE_TOKENIZERS.get(pre)
    if spec is None:
        raise ScoderError(
            f"{path}: field tokenizer.ggml.pre = {pre!r} names a pre-tokenizer this project does not know "
            f"(known: {', '.join(sorted(_PRE_TOKENIZERS))}); pass a Hugging Face tokenizer directory instead"
        )
    tokens = list(meta["tokenizer.ggml.tokens"])
    types = _token_types(meta, len(tokens), path)
    merges_raw = meta.get("tokenizer.ggml.merges")
    if merges_raw is None:
        raise ScoderError(f"{path}: no BPE merges (field tokenizer.ggml.merges is missing)")
    merges = []
    for k, m in enumerate(merges_raw):
        parts = m.split(" ")
        if len(parts) != 2:
            raise ScoderError(f"{path}: field tokenizer.ggml.merges entry {k} ({m!r}) is not two tokens")
        merges.append((parts[0], parts[1]))
    vocab = _vocab_dict(tokens, path)
    bpe = models.BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False, ignore_merges=spec.ignore_merges)
    tok = HFTokenizer(bpe)
    if spec.normalizer == "nfc":
        tok.normalizer = normalizers.NFC()
    splits = [pre_tokenizers.Split(Regex(r), behavior="isolated", invert=False) for r in spec.splits]
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [*splits, pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)]
    )
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    special, plain = _added_tokens(tokens, types, meta)
    if special:
        tok.add_special_tokens(special)
    if plain:
        tok.add_tokens(plain)
    return tok


def _build_sentencepiece_bpe(meta: dict[str, Any], path: Path):
    """SentencePiece BPE (Llama 2 style): merges recovered from the scores, byte fallback."""
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import decoders, models, normalizers

    tokens = list(meta["tokenizer.ggml.tokens"])
    types = _token_types(meta, len(tokens), path)
    scores = meta.get("tokenizer.ggml.scores")
    if scores is None or len(scores) != len(tokens):
        raise ScoderError(f"{path}: field tokenizer.ggml.scores is missing or does not match the {len(tokens)} tokens")
    vocab = _vocab_dict(tokens, path)
    mergeable = {t: float(s) for t, s, ty in zip(tokens, scores, types) if ty in (_TT_NORMAL, _TT_USER_DEFINED)}
    merges = []
    for piece, score in mergeable.items():
        local = [
            (piece[:k], piece[k:], score)
            for k in range(1, len(piece))
            if piece[:k] in mergeable and piece[k:] in mergeable
        ]
        local.sort(key=lambda x: (vocab[x[0]], vocab[x[1]]))
        merges.extend(local)
    merges.sort(key=lambda x: (x[2], len(x[0]), len(x[1])), reverse=True)
    unk_id = meta.get("tokenizer.ggml.unknown_token_id")
    unk = tokens[int(unk_id)] if unk_id is not None else None
    bpe = models.BPE(
        vocab=vocab, merges=[(a, b) for a, b, _ in merges], unk_token=unk, fuse_unk=True, byte_fallback=True
    )
    tok = HFTokenizer(bpe)
    norms = []
    if meta.get("tokenizer.ggml.add_space_prefix", True):
        norms.append(normalizers.Prepend("\u2581"))
    norms.append(normalizers.Replace(" ", "\u2581"))
    tok.normalizer = normalizers.Sequence(norms)
    decs = [decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()]
    if meta.get("tokenizer.ggml.add_space_prefix", True):
        decs.append(decoders.Strip(" ", 1, 0))
    tok.decoder = decoders.Sequence(decs)
    special, plain = _added_tokens(tokens, types, meta)
    unk_tokens = [t for t, ty in zip(tokens, types) if ty == _TT_UNKNOWN]
    if unk_tokens:
        from tokenizers import AddedToken

        special += [AddedToken(t, special=True, normalized=False) for t in unk_tokens]
    if special:
        tok.add_special_tokens(special)
    if plain:
        tok.add_tokens(plain)
    return tok
