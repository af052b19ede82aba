"""Tokenizers and chat formats for the model families SCoder uses.

`Tokenizer.load(path)` takes a Hugging Face tokenizer directory (`tokenizer.json`, optionally
`tokenizer_config.json`, `special_tokens_map.json`, `chat_template.jinja`,
`generation_config.json`) or a `.gguf` file, and wraps a `tokenizers.Tokenizer` with what the
rest of the project needs: BOS/EOS/PAD ids, the family's stop tokens, chat rendering with the
model's own jinja template (or the family's built-in one), chat encoding that never doubles the
BOS, loss masks for SFT, and `save()` to a directory that `transformers.AutoTokenizer` loads.

The parts live next to it: `tokenizer_hf` reads and writes Hugging Face tokenizer folders,
`tokenizer_gguf` rebuilds a tokenizer from llama.cpp's GGUF metadata (`tokenizer.ggml.*`),
`tokenizer_templates` holds the families' built-in templates and stop tokens (re-exported here),
`tokenizer_chat` renders chats and finds the assistant spans of loss masks, and
`tokenizer_added_tokens` handles added tokens (marking them special, decoding those the
byte-level decoder garbles).

Families: "deepseek-coder" (base) and "deepseek-coder-instruct" share DeepSeek-Coder's instruct
format (`### Instruction:` / `### Response:`, turns closed by `<|EOT|>`, id 32021); "chatml"
(Qwen, SmolLM2), "llama3", "llama2", and "plain" (no known format: the model's own template if
it has one, else a minimal `### Instruction` / `### Response` format closed by EOS).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

from scoder_jax.errors import ScoderError
from scoder_jax.tokenizer_added_tokens import literal_substitutes, mark_special
from scoder_jax.tokenizer_chat import assistant_spans, check_messages, render_template, span_mask
from scoder_jax.tokenizer_gguf import gguf_tokenizer_parts
from scoder_jax.tokenizer_hf import hf_tokenizer_parts, write_hf_dir
from scoder_jax.tokenizer_templates import (
    BUILTIN_TEMPLATES,
    CHATML_TEMPLATE,
    DEEPSEEK_CODER_SYSTEM_PROMPT,
    DEEPSEEK_CODER_TEMPLATE,
    FAMILIES,
    FAMILY_STOP_TOKENS,
    LLAMA2_TEMPLATE,
    LLAMA3_TEMPLATE,
    PLAIN_TEMPLATE,
)


def _unique(ids: Iterable[int | None]) -> tuple[int, ...]:
    out: list[int] = []
    for i in ids:
        if i is not None and i not in out:
            out.append(int(i))
    return tuple(out)


class Tokenizer:
    """A `tokenizers.Tokenizer` with special tokens, stop tokens and a chat format.

    Build it with `Tokenizer.load(path)`; the constructor takes already-resolved parts.
    """

    def __init__(
        self,
        backend,
        *,
        family: str,
        bos_token: str | None,
        eos_token: str | None,
        pad_token: str | None = None,
        unk_token: str | None = None,
        add_bos: bool = False,
        chat_template: str | None = None,
        extra_stop_ids: Sequence[int] = (),
        source: str = "<memory>",
    ):
        if family not in FAMILIES:
            raise ScoderError(f"{source}: unknown tokenizer family {family!r}; choose one of {', '.join(FAMILIES)}")
        self._tok = backend
        self.family = family
        self.source = source
        self.bos_token, self.eos_token, self.pad_token, self.unk_token = bos_token, eos_token, pad_token, unk_token
        self.bos_id = self._required_id(bos_token, "bos_token")
        self.eos_id = self._required_id(eos_token, "eos_token")
        pad_id = self._required_id(pad_token, "pad_token")
        self.pad_id: int = pad_id if pad_id is not None else (self.eos_id if self.eos_id is not None else 0)
        self.unk_id = self._required_id(unk_token, "unk_token")
        self.add_bos = bool(add_bos and self.bos_id is not None)
        self.model_chat_template = chat_template  # the model's own, or None
        self.chat_template = chat_template or BUILTIN_TEMPLATES[family]
        self._extra_stop_ids = tuple(int(i) for i in extra_stop_ids)
        self._from_gguf_file = False
        family_stops = [self._tok.token_to_id(t) for t in FAMILY_STOP_TOKENS[family]]
        self.stop_ids: tuple[int, ...] = _unique([self.eos_id, *family_stops, *extra_stop_ids])
        self.vocab_size: int = self._tok.get_vocab_size(with_added_tokens=True)
        added_special = {i for i, t in self._tok.get_added_tokens_decoder().items() if t.special}
        self._special_ids = frozenset(added_special | {*_unique([self.bos_id, self.eos_id, pad_id, *self.stop_ids])})
        self._literal_ids = literal_substitutes(self._tok)

    def with_family(self, family: str) -> "Tokenizer":
        """The same vocabulary with another family's stop tokens (and built-in template, if the model
        brings none)."""
        from tokenizers import Tokenizer as HFTokenizer

        if family not in FAMILIES:
            raise ScoderError(
                f"{self.source}: unknown tokenizer family {family!r}; choose one of {', '.join(FAMILIES)}")
        backend = HFTokenizer.from_str(self._tok.to_str())
        if self._from_gguf_file:
            mark_special(backend, [t for t in FAMILY_STOP_TOKENS[family] if backend.token_to_id(t) is not None])
        out = type(self)(
            backend,
            family=family,
            bos_token=self.bos_token,
            eos_token=self.eos_token,
            pad_token=self.pad_token,
            unk_token=self.unk_token,
            add_bos=self.add_bos,
            chat_template=self.model_chat_template,
            extra_stop_ids=self._extra_stop_ids,
            source=self.source,
        )
        out._from_gguf_file = self._from_gguf_file
        return out

    def _required_id(self, token: str | None, name: str) -> int | None:
        if token is None:
            return None
        i = self._tok.token_to_id(token)
        if i is None:
            raise ScoderError(f"{self.source}: {name} {token!r} is not in the vocabulary")
        return i

    def __repr__(self) -> str:
        return (
            f"Tokenizer(family={self.family!r}, vocab_size={self.vocab_size}, bos_id={self.bos_id}, "
            f"eos_id={self.eos_id}, pad_id={self.pad_id}, stop_ids={self.stop_ids}, source={self.source!r})"
        )

    # -- loading -----------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | os.PathLike, *, family: str | None = None) -> "Tokenizer":
        """From a Hugging Face tokenizer directory (or its tokenizer.json), a .gguf file or a named
        asset (`scoder_jax.assets`, e.g. `tokenizer:smollm2-135m-instruct`)."""
        from scoder_jax.assets import resolve

        path = Path(resolve(str(path)))
        if family is not None and family not in FAMILIES:
            raise ScoderError(f"{path}: unknown tokenizer family {family!r}; choose one of {', '.join(FAMILIES)}")
        if not path.exists():
            raise ScoderError(f"{path}: no such file or directory (expected a tokenizer directory or a .gguf file)")
        if path.is_dir():
            if (path / "tokenizer.json").is_file():
                return cls._from_hf_dir(path, family)
            ggufs = sorted(path.glob("*.gguf"))
            if len(ggufs) == 1:
                return cls._from_gguf(ggufs[0], family)
            raise ScoderError(f"{path}: no tokenizer.json in this directory (nor a single .gguf file)")
        if path.name == "tokenizer.json":
            return cls._from_hf_dir(path.parent, family)
        with open(path, "rb") as f:
            magic = f.read(4)
        if magic == b"GGUF":
            return cls._from_gguf(path, family)
        raise ScoderError(f"{path}: not a GGUF file (bad magic {magic!r}) nor a tokenizer directory")

    @classmethod
    def _from_hf_dir(cls, d: Path, family: str | None) -> "Tokenizer":
        return cls(**hf_tokenizer_parts(d, family))

    @classmethod
    def _from_gguf(cls, path: Path, family: str | None) -> "Tokenizer":
        out = cls(**gguf_tokenizer_parts(path, family))
        out._from_gguf_file = True
        return out

    # -- basic ops ---------------------------------------------------------------------------

    @property
    def backend(self):
        """The underlying `tokenizers.Tokenizer`."""
        return self._tok

    def encode(self, text: str, *, add_bos: bool = False) -> list[int]:
        """Token ids of `text` (special-token text in it becomes special tokens).

        With `add_bos`, BOS is prepended unless the text already starts with the BOS token.
        """
        ids = self._tok.encode(text, add_special_tokens=False).ids
        if add_bos and self.bos_id is not None and not (ids and ids[0] == self.bos_id):
            ids = [self.bos_id, *ids]
        return ids

    def encode_batch(self, texts: Sequence[str], *, add_bos: bool = False) -> list[list[int]]:
        encs = self._tok.encode_batch(list(texts), add_special_tokens=False)
        out = []
        for e in encs:
            ids = e.ids
            if add_bos and self.bos_id is not None and not (ids and ids[0] == self.bos_id):
                ids = [self.bos_id, *ids]
            out.append(ids)
        return out

    def decode(self, ids: Iterable[int], *, skip_special: bool = True) -> str:
        """The text of `ids`; added tokens come back as their own text (see
        `tokenizer_added_tokens.literal_substitutes`)."""
        ids = [int(i) for i in ids]
        if skip_special:
            ids = [i for i in ids if i not in self._special_ids]
        if self._literal_ids and not self._literal_ids.keys().isdisjoint(ids):
            ids = [j for i in ids for j in self._literal_ids.get(i, (i,))]
        return self._tok.decode(ids, skip_special_tokens=skip_special)

    def token_to_id(self, token: str) -> int | None:
        return self._tok.token_to_id(token)

    def id_to_token(self, i: int) -> str | None:
        return self._tok.id_to_token(int(i))

    def is_special(self, i: int) -> bool:
        return int(i) in self._special_ids

    # -- chat --------------------------------------------------------------------------------

    def render_chat(self, messages: list[dict], *, add_generation_prompt: bool = True) -> str:
        """The chat as text, through the model's template (or the family's built-in one)."""
        check_messages(messages, self.source)
        specials = {
            k: v
            for k, v in (
                ("bos_token", self.bos_token),
                ("eos_token", self.eos_token),
                ("pad_token", self.pad_token),
                ("unk_token", self.unk_token),
            )
            if v is not None
        }
        which = "the model's chat template" if self.model_chat_template else f"the built-in {self.family} template"
        return render_template(self.chat_template, messages, add_generation_prompt=add_generation_prompt,
                               special_tokens=specials, error_prefix=f"{self.source}: {which}")

    def encode_chat(self, messages: list[dict], *, add_generation_prompt: bool = True) -> list[int]:
        """Token ids of the rendered chat; BOS is added only if the template did not write it."""
        return self._encode_rendered(self.render_chat(messages, add_generation_prompt=add_generation_prompt))[0]

    def _encode_rendered(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """ids and character offsets of rendered chat text; BOS in front if the tokenizer adds one
        and the template did not write it (offsets stay relative to `text`)."""
        enc = self._tok.encode(text, add_special_tokens=False)
        ids, offsets = list(enc.ids), list(enc.offsets)
        if self.add_bos and not (ids and ids[0] == self.bos_id):
            ids, offsets = [self.bos_id, *ids], [(0, 0), *offsets]
        return ids, offsets

    def encode_chat_with_loss_mask(self, messages: list[dict]) -> tuple[list[int], list[bool]]:
        """Ids of the whole chat (as `encode_chat(..., add_generation_prompt=False)`) and a mask that
        is True on the tokens of each assistant message's content and of the end-of-turn token that
        closes it, False on everything else (system prompt, user turns, role headers).
        """
        check_messages(messages, self.source)
        full = self.render_chat(messages, add_generation_prompt=False)
        stop_texts = [t for t in (self.id_to_token(i) for i in self.stop_ids) if t]
        spans = assistant_spans(messages, full, self.render_chat, stop_texts, self.source)
        ids, offsets = self._encode_rendered(full)
        return ids, span_mask(offsets, spans)

    # -- saving ------------------------------------------------------------------------------

    def save(self, out_dir: str | os.PathLike) -> None:
        """Writes tokenizer.json, tokenizer_config.json and special_tokens_map.json into `out_dir`
        (other files there are left alone), loadable by `transformers.AutoTokenizer` and by `load`."""
        write_hf_dir(self, out_dir, literal_ids=self._literal_ids)


# The family constants keep their import path (`from scoder_jax.tokenizer import LLAMA3_TEMPLATE`).
__all__ = ["Tokenizer", "FAMILIES", "BUILTIN_TEMPLATES", "FAMILY_STOP_TOKENS", "DEEPSEEK_CODER_SYSTEM_PROMPT",
           "DEEPSEEK_CODER_TEMPLATE", "CHATML_TEMPLATE", "LLAMA3_TEMPLATE", "LLAMA2_TEMPLATE", "PLAIN_TEMPLATE"]
