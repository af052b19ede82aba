"""Added tokens of a `tokenizers.Tokenizer`: marking some special, and decoding those the byte-level
decoder garbles.

`mark_special(backend, tokens)` makes tokens special (skipped by `decode(skip_special=True)`).
`literal_substitutes(backend)` maps the added tokens that the ByteLevel decoder turns into U+FFFD
(DeepSeek-Coder's ids 32000-32012) to base-vocabulary ids that decode to their text;
`literal_decoder` is the decoder `Tokenizer.save` writes so that `transformers` decodes them the
same way, and `is_literal_decoder` recognises it when such a folder is loaded again.
"""

from __future__ import annotations

import json
import re
from typing import Sequence


def literal_substitutes(backend) -> dict[int, tuple[int, ...]]:
    """Added tokens a byte-level decoder garbles -> base-vocabulary ids that decode to their text.

    `tokenizers` hands an added token to the decoder as its text, and the ByteLevel decoder reads
    that text as byte symbols: DeepSeek-Coder's single-character tokens 32000-32012 ("õ", "÷", "ü",
    ..., symbols of the bytes C0, C1, F5-FF that UTF-8 never uses) become U+FFFD. llama.cpp and
    the model's own tokenizer give their text; so does `Tokenizer.decode`, by decoding in their place
    the byte-level tokens of their UTF-8 bytes ("ü" -> "Ã¼"), in context (ids [37, 32009, 81] -> "Für").
    A decoder `literal_decoder` wrote (a saved tokenizer) is turned back into the plain, faster one.
    """
    from tokenizers import decoders, pre_tokenizers

    wrapped = backend.decoder
    unwrapped = is_literal_decoder(wrapped)
    if unwrapped:
        backend.decoder = decoders.ByteLevel()
    if not isinstance(backend.decoder, decoders.ByteLevel):
        return {}
    to_symbols = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    added = backend.get_added_tokens_decoder()
    out = {}
    for i, token in added.items():
        text = token.content
        if backend.decode([i], skip_special_tokens=False) == text:
            continue
        symbols = "".join(piece for piece, _ in to_symbols.pre_tokenize_str(text))
        try:
            sub = tuple(t.id for t in backend.model.tokenize(symbols))
        except Exception:  # a symbol missing from the vocabulary: leave the token as it decodes
            continue
        if backend.decode(list(sub), skip_special_tokens=False) == text:
            out[i] = sub
    if unwrapped:
        for i, token in added.items():  # the substitutes must decode as the Replace steps did
            if wrapped.decode([token.content]) != backend.decode(list(out.get(i, (i,))), skip_special_tokens=False):
                backend.decoder = wrapped  # they do something else: keep them
                return {}
    return out


def literal_decoder(backend, literal_ids: dict[int, tuple[int, ...]]):
    """The decoder `Tokenizer.save` writes: each garbled added token replaced by its byte-level symbols
    before the ByteLevel decoder, so that `transformers` (which has no `literal_substitutes`) decodes it
    too."""
    from tokenizers import Regex, decoders

    added = backend.get_added_tokens_decoder()
    steps = [decoders.Replace(Regex(r"\A" + re.escape(added[i].content) + r"\z"),
                              "".join(backend.id_to_token(j) for j in sub)) for i, sub in sorted(literal_ids.items())]
    return decoders.Sequence([*steps, backend.decoder])


def is_literal_decoder(decoder) -> bool:
    """Whether `decoder` has the form `literal_decoder` writes: whole-token Replace steps, then ByteLevel."""
    from tokenizers import decoders

    if not isinstance(decoder, decoders.Sequence):
        return False
    steps = json.loads(decoder.__getstate__())["decoders"]
    return len(steps) > 1 and steps[-1]["type"] == "ByteLevel" and all(
        d["type"] == "Replace" and re.fullmatch(r"\\A.+\\z", d["pattern"].get("Regex", ""), re.S) for d in steps[:-1])


def mark_special(backend, tokens: Sequence[str]) -> None:
    """Adds `tokens` to `backend` as special added tokens (in place); those already special stay as they are."""
    from tokenizers import AddedToken

    current = {t.content: t for t in backend.get_added_tokens_decoder().values()}
    todo = [t for t in tokens if not (t in current and current[t].special)]
    if todo:
        backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in todo])
