"""Stop strings, checked incrementally: each check decodes only the tokens since the last safe
boundary, not the whole completion.

The engine asks, after every chunk of new tokens, whether a stop string occurs in
`decode(tokens)` (the slot's whole completion). Decoding it all each time is O(n^2) host work
over a completion of n tokens. `StopStringWatch` answers the same question from a decode of the
tokens since a *boundary* c (a token count at which an earlier check said no):

    decode(tokens[:n]) == text_c + decode(tokens[c-k:n])[len(decode(tokens[c-k:c])):]

where text_c = decode(tokens[:c]) and k (0 or 1) context tokens. Since text_c held no stop string,
every occurrence in the text at n ends in the new part, so only the new part plus the last
(longest stop - 1) characters of text_c are searched; text_c itself is never kept whole.

When the identity holds (`split_rule` recognises the decoder; anything else is checked by the
full decode, as before): the decoders of `tokenizers` that `Tokenizer.decode` drives are chains of

- per-token maps (Replace; Metaspace, which also drops the leading space of the first piece; Strip
  without a trailing part), which only look at one token, or the first one;
- Fuse, a join; ByteFallback, which joins a run of consecutive `<0xNN>` byte pieces into text
  (one U+FFFD per piece when the run is not valid UTF-8 as a whole, so a later byte piece can
  change text decoded before it);
- ByteLevel, a lossy UTF-8 decode of all the pieces' bytes (a character may span tokens).

A boundary c is taken (after a check that found no stop string) only when decode(tokens[:c])
does not end in U+FFFD: the UTF-8 decoder is then between characters, so later bytes cannot
change earlier text, and a window decode that starts inside a character resynchronises before c
(UTF-8 is self-synchronising: stray continuation bytes each become one U+FFFD). With
ByteFallback, Strip or Metaspace in the chain, the window keeps one context token, and the
boundary also needs tokens[c-1] to be no byte piece (no byte run crosses c; special tokens that
decode drops do not end a run, hence the next condition) and to decode alone to non-empty text
(so it is kept by decode, and a leading strip of the window stops inside it). A window decode
that still disagrees (`decode(window)` not starting with `decode(context)`) makes the watch fall
back to full decodes for that slot.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Callable, Sequence

log = logging.getLogger(__name__)

Decode = Callable[[list[int]], str]

_BYTE_PIECE = re.compile(r"<0x[0-9A-Fa-f]{2}>")
_LOCAL_STEPS = {"Replace", "Fuse", "ByteLevel"}


@dataclass(frozen=True)
class SplitRule:
    """Where a slot's text may be split: `context` tokens decoded before a boundary (0 or 1);
    `glue_ids`: tokens a boundary may not follow (byte pieces that join their neighbours)."""

    context: int
    glue_ids: frozenset[int]


def _decoder_steps(decoder) -> list[dict] | None:
    if decoder is None:
        return None
    state = json.loads(decoder.__getstate__())
    return state["decoders"] if state.get("type") == "Sequence" else [state]


def split_rule(decode: Decode | None) -> SplitRule | None:
    """The split rule of `decode` when it is `scoder_jax.tokenizer.Tokenizer.decode` (bound) over a
    decoder chain whose steps are all understood (see the module docstring); else None (check
    with the full decode)."""
    from scoder_jax.tokenizer import Tokenizer

    tok = getattr(decode, "__self__", None)
    if not isinstance(tok, Tokenizer) or getattr(decode, "__func__", None) is not Tokenizer.decode:
        return None
    backend = tok.backend
    steps = _decoder_steps(backend.decoder)
    if not steps:
        return None
    context, byte_fallback = 0, False
    for i, step in enumerate(steps):
        kind = step.get("type")
        if kind == "ByteFallback":
            # the pieces it sees must be the vocabulary's: only a "▁" -> " " Replace may come first
            if any(s != {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "} for s in steps[:i]):
                return None
            byte_fallback, context = True, 1
        elif kind == "Strip":
            if step.get("stop", 0) != 0:
                return None
            context = 1 if step.get("start", 0) else context
        elif kind == "Metaspace":
            context = 1
        elif kind not in _LOCAL_STEPS:
            return None
    glue: frozenset[int] = frozenset()
    if byte_fallback:
        vocab = backend.get_vocab(with_added_tokens=True)
        glue = frozenset(i for piece, i in vocab.items() if _BYTE_PIECE.fullmatch(piece))
    return SplitRule(context=context, glue_ids=glue)


def has_stop_string(text: str, stop_strings: Sequence[str]) -> bool:
    """Whether a (non-empty) stop string occurs in `text`."""
    return any(s and s in text for s in stop_strings)


class StopStringWatch:
    """One slot's stop-string check. `hit(tokens)` (the slot's whole token list, grown since the last
    call) says whether a stop string occurs in `decode(tokens)`, exactly as the full decode would;
    with a `rule` it decodes only the tokens since the last boundary."""

    def __init__(self, decode: Decode, stop_strings: Sequence[str], rule: SplitRule | None):
        self.decode, self.rule = decode, rule
        self.stops = tuple(s for s in stop_strings if s)
        self.overlap = max((len(s) for s in self.stops), default=1) - 1
        self.start = 0  # the window's first token: boundary - rule.context
        self.boundary = 0  # token count c of the last boundary
        self.head = ""  # decode(tokens[start:boundary])
        self.kept = ""  # the last `overlap` characters of decode(tokens[:boundary])

    def hit(self, tokens: Sequence[int]) -> bool:
        if not self.stops:
            return False
        if self.rule is None:
            return has_stop_string(self.decode(list(tokens)), self.stops)
        window = self.decode(list(tokens[self.start:]))
        if not window.startswith(self.head):  # not expected for a recognised decoder: stay exact
            log.warning("stop strings: a window decode disagrees with its context; checking by full decodes")
            self.rule = None
            return self.hit(tokens)
        new = window[len(self.head):]
        if has_stop_string(self.kept + new, self.stops):
            return True
        self._advance(tokens, new)
        return False

    def _advance(self, tokens: Sequence[int], new: str) -> None:
        """Makes len(tokens) the boundary when the text cannot change before it (module docstring)."""
        n, rule = len(tokens), self.rule
        if n == self.boundary or new.endswith("\ufffd"):  # text at a boundary never ends in U+FFFD
            return
        head = ""
        if rule.context:
            last = int(tokens[n - 1])
            if last in rule.glue_ids:
                return
            head = self.decode([last])
            if not head:
                return
        if self.overlap:
            self.kept = (self.kept + new)[-self.overlap:]
        self.start, self.boundary, self.head = n - rule.context, n, head
