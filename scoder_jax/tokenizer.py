"""Tokenizers and chat formats for the model families SCoder uses.

`Tokenizer.load(path)` takes a Hugging Face tokenizer directory (`tokenizer.json`, optionally
`tokenizer_config.json`, `special_tokens_map.json`, `chat_template.jinja`,
`generation_config.json`) or a `.gguf` file, and wraps a `tokenizers.Tokenizer` with what the
rest of the project needs: BOS/EOS/PAD ids, the family's stop tokens, chat rendering with the
model's own jinja template (or the family's built-in one), chat encoding that never doubles the
BOS, loss masks for SFT, and `save()` to a directory that `transformers.AutoTokenizer` loads.

From a GGUF the tokenizer is rebuilt from llama.cpp's metadata (`tokenizer.ggml.*`) by
`scoder_jax.tokenizer_gguf`.

Families: "deepseek-coder" (base) and "deepseek-coder-instruct" share DeepSeek-Coder's instruct
format (`### Instruction:` / `### Response:`, turns closed by `<|EOT|>`, id 32021); "chatml"
(Qwen, SmolLM2), "llama3", "llama2", and "plain" (no known format: the model's own template if
it has one, else a minimal `### Instruction` / `### Response` format closed by EOS).
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Sequence

from scoder_jax.errors import ScoderError
from scoder_jax.tokenizer_gguf import build_gguf_backend, read_gguf_tokenizer_metadata

FAMILIES = ("deepseek-coder", "deepseek-coder-instruct", "chatml", "llama3", "llama2", "plain")

# ---------------------------------------------------------------------------------------------
# Built-in chat templates (used only when the model brings none).

DEEPSEEK_CODER_SYSTEM_PROMPT = (
    "You are an AI programming assistant, utilizing the Deepseek Coder model, developed by Deepseek "
    "Company, and you only answer questions related to computer science. For politically sensitive "
    "questions, security and privacy issues, and other non-computer science questions, you will "
    "refuse to answer"
)

# deepseek-ai/deepseek-coder-{1.3b,6.7b,33b}-instruct, tokenizer_config.json, verbatim.
DEEPSEEK_CODER_TEMPLATE = (
    "{% if not add_generation_prompt is defined %}\n{% set add_generation_prompt = false %}\n{% endif %}\n"
    "{%- set ns = namespace(found=false) -%}\n{%- for message in messages -%}\n"
    "    {%- if message['role'] == 'system' -%}\n        {%- set ns.found = true -%}\n"
    "    {%- endif -%}\n{%- endfor -%}\n{{bos_token}}{%- if not ns.found -%}\n"
    "{{'" + DEEPSEEK_CODER_SYSTEM_PROMPT + "\\n'}}\n"
    "{%- endif %}\n{%- for message in messages %}\n    {%- if message['role'] == 'system' %}\n"
    "{{ message['content'] }}\n    {%- else %}\n        {%- if message['role'] == 'user' %}\n"
    "{{'### Instruction:\\n' + message['content'] + '\\n'}}\n        {%- else %}\n"
    "{{'### Response:\\n' + message['content'] + '\\n<|EOT|>\\n'}}\n        {%- endif %}\n"
    "    {%- endif %}\n{%- endfor %}\n{% if add_generation_prompt %}\n{{'### Response:'}}\n{% endif %}"
)

# ChatML as Qwen and SmolLM2 write it, without a default system prompt.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# meta-llama/Meta-Llama-3-8B-Instruct, tokenizer_config.json, verbatim.
LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)

# meta-llama/Llama-2-7b-chat-hf, tokenizer_config.json, verbatim.
LLAMA2_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
    "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}"
    "{% endfor %}"
)

# For vocabularies with no known chat format: plain instruction/response text closed by EOS.
PLAIN_TEMPLATE = (
    "{% if bos_token is defined %}{{ bos_token }}{% endif %}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] + '\\n\\n' }}"
    "{% elif message['role'] == 'user' %}{{ '### Instruction:\\n' + message['content'] + '\\n\\n' }}"
    "{% else %}{{ '### Response:\\n' + message['content'] + eos_token + '\\n\\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '### Response:\\n' }}{% endif %}"
)

BUILTIN_TEMPLATES = {
    "deepseek-coder": DEEPSEEK_CODER_TEMPLATE,
    "deepseek-coder-instruct": DEEPSEEK_CODER_TEMPLATE,
    "chatml": CHATML_TEMPLATE,
    "llama3": LLAMA3_TEMPLATE,
    "llama2": LLAMA2_TEMPLATE,
    "plain": PLAIN_TEMPLATE,
}

# Tokens that end an assistant turn, per family (those present in the vocabulary are used).
FAMILY_STOP_TOKENS = {
    "deepseek-coder": ("<|EOT|>",),
    "deepseek-coder-instruct": ("<|EOT|>",),
    "chatml": ("<|im_end|>", "<|endoftext|>"),
    "llama3": ("<|eot_id|>", "<|eom_id|>", "<|end_of_text|>"),
    "llama2": (),
    "plain": (),
}

# ---------------------------------------------------------------------------------------------
# Jinja rendering, set up the way transformers does it.


def _raise_exception(message):
    import jinja2

    raise jinja2.exceptions.TemplateError(message)


def _tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _strftime_now(fmt):
    return datetime.now().strftime(fmt)


@lru_cache(maxsize=32)
def _compile_template(source: str):
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class _Generation(jinja2.ext.Extension):
        """`{% generation %}...{% endgeneration %}` (used by some templates): renders its body."""

        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
            return jinja2.nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

        def _render(self, caller):
            return caller()

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[_Generation, jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env.from_string(source)


# ---------------------------------------------------------------------------------------------


def _token_content(value: Any) -> str | None:
    """A special token as tokenizer_config.json spells it: a string or an AddedToken dict."""
    if value is None:
        return None
    if isinstance(value, dict):
        return value.get("content")
    return str(value)


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
        self._literal_ids = _literal_substitutes(self._tok)

    def with_family(self, family: str) -> "Tokenizer":
        """The same vocabulary with another family's stop tokens (and built-in template, if the model
        brings none)."""
        from tokenizers import Tokenizer as HFTokenizer

        if family not in FAMILIES:
            raise ScoderError(
                f"{self.source}: unknown tokenizer family {family!r}; choose one of {', '.join(FAMILIES)}")
        backend = HFTokenizer.from_str(self._tok.to_str())
        if self._from_gguf_file:
            _mark_special(backend, [t for t in FAMILY_STOP_TOKENS[family] if backend.token_to_id(t) is not None])
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
        """From a Hugging Face tokenizer directory (or its tokenizer.json) or a .gguf file."""
        path = Path(path)
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
        from tokenizers import Tokenizer as HFTokenizer

        tj = d / "tokenizer.json"
        try:
            backend = HFTokenizer.from_file(str(tj))
        except Exception as e:  # tokenizers raises a bare Exception on malformed files
            raise ScoderError(
                f"{tj}: cannot parse ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
        config = _read_json(d / "tokenizer_config.json")
        special_map = _read_json(d / "special_tokens_map.json")

        def special(name: str) -> str | None:
            return _token_content(config.get(name)) or _token_content(special_map.get(name))

        template = config.get("chat_template")
        if isinstance(template, list):  # [{"name": ..., "template": ...}]
            named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
            template = named.get("default") or next(iter(named.values()), None)
        if template is None and (d / "chat_template.jinja").is_file():
            template = (d / "chat_template.jinja").read_text(encoding="utf-8")
        if template is None and (d / "chat_template.json").is_file():
            template = _read_json(d / "chat_template.json").get("chat_template")
        if template is not None and not isinstance(template, str):
            raise ScoderError(f"{d / 'tokenizer_config.json'}: field chat_template is not a string")

        bos, eos = special("bos_token"), special("eos_token")
        add_bos = config.get("add_bos_token")
        if add_bos is None:  # what the file's post-processor does
            bos_id = backend.token_to_id(bos) if bos else None
            probe = backend.encode("a", add_special_tokens=True).ids
            add_bos = bos_id is not None and bool(probe) and probe[0] == bos_id
        gen = _read_json(d / "generation_config.json")
        gen_eos = gen.get("eos_token_id")
        extra = gen_eos if isinstance(gen_eos, list) else ([gen_eos] if isinstance(gen_eos, int) else [])
        fam = family or config.get("scoder_family") or _detect_family(template, backend)
        return cls(
            backend,
            family=fam,
            bos_token=bos,
            eos_token=eos,
            pad_token=special("pad_token"),
            unk_token=special("unk_token"),
            add_bos=bool(add_bos),
            chat_template=template,
            extra_stop_ids=[int(i) for i in extra if isinstance(i, int) and i < backend.get_vocab_size(True)],
            source=str(d),
        )

    @classmethod
    def _from_gguf(cls, path: Path, family: str | None) -> "Tokenizer":
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
        fam = family or _detect_family(template, backend)
        # Tokens that end turns are special in the model's own tokenizer (skipped by decode); older
        # GGUFs mark some of them (DeepSeek-Coder's <|EOT|>) only as user-defined.
        _mark_special(backend, [t for t in FAMILY_STOP_TOKENS[fam] if backend.token_to_id(t) is not None])
        model = meta["tokenizer.ggml.model"]
        add_bos = meta.get("tokenizer.ggml.add_bos_token")
        if add_bos is None:
            add_bos = model == "llama"  # llama.cpp's default for SentencePiece vocabularies
        out = cls(
            backend,
            family=fam,
            bos_token=tok("tokenizer.ggml.bos_token_id"),
            eos_token=tok("tokenizer.ggml.eos_token_id"),
            pad_token=tok("tokenizer.ggml.padding_token_id"),
            unk_token=tok("tokenizer.ggml.unknown_token_id"),
            add_bos=bool(add_bos),
            chat_template=template,
            source=str(path),
        )
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
        """The text of `ids`; added tokens come back as their own text (see `_literal_substitutes`)."""
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
        import jinja2

        _check_messages(messages, self.source)
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
        try:
            template = _compile_template(self.chat_template)
            return template.render(messages=messages, add_generation_prompt=add_generation_prompt, **specials)
        except jinja2.exceptions.TemplateError as e:
            which = "the model's chat template" if self.model_chat_template else f"the built-in {self.family} template"
            raise ScoderError(f"{self.source}: {which} failed: {e}") from None

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
        _check_messages(messages, self.source)
        full = self.render_chat(messages, add_generation_prompt=False)
        spans = []
        stop_texts = [t for t in (self.id_to_token(i) for i in self.stop_ids) if t]
        for i, m in enumerate(messages):
            if m["role"] != "assistant":
                continue
            prefix = self.render_chat(messages[:i], add_generation_prompt=True) if i else ""
            upto = self.render_chat(messages[: i + 1], add_generation_prompt=False)
            if not full.startswith(prefix) or not full.startswith(upto) or len(upto) < len(prefix):
                raise ScoderError(
                    f"{self.source}: chat template does not render conversations incrementally "
                    f"(message {i}); cannot find the assistant span for the loss mask"
                )
            start, end = len(prefix), len(upto)
            # End right after the last end-of-turn token of this turn; without one, drop trailing blanks.
            found = [(full.rfind(t, start, end), t) for t in stop_texts]
            stop_end = max((k + len(t) for k, t in found if k >= 0), default=-1)
            if stop_end > start:
                end = stop_end
            else:
                while end > start and full[end - 1].isspace():
                    end -= 1
            spans.append((start, end))
        ids, offsets = self._encode_rendered(full)
        mask = [b > a and any(a < e and b > s for s, e in spans) for a, b in offsets]
        return ids, mask

    # -- saving ------------------------------------------------------------------------------

    def save(self, out_dir: str | os.PathLike) -> None:
        """Writes tokenizer.json, tokenizer_config.json and special_tokens_map.json into `out_dir`
        (other files there are left alone), loadable by `transformers.AutoTokenizer` and by `load`."""
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import processors

        from scoder_jax.io import write_json_atomic, write_text_atomic

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        backend = HFTokenizer.from_str(self._tok.to_str())
        if self.add_bos:
            backend.post_processor = processors.TemplateProcessing(
                single=f"{self.bos_token} $A",
                pair=f"{self.bos_token} $A {self.bos_token} $B",
                special_tokens=[(self.bos_token, self.bos_id)],
            )
        elif isinstance(backend.post_processor, processors.TemplateProcessing):
            backend.post_processor = processors.TemplateProcessing(single="$A", pair="$A $B")
        if self._literal_ids:
            backend.decoder = _literal_decoder(backend, self._literal_ids)
        write_text_atomic(out / "tokenizer.json", backend.to_str(pretty=True))
        specials = {
            k: v
            for k, v in (
                ("bos_token", self.bos_token),
                ("eos_token", self.eos_token),
                ("pad_token", self.pad_token if self.pad_token is not None else self.id_to_token(self.pad_id)),
                ("unk_token", self.unk_token),
            )
            if v is not None
        }
        config = {
            "tokenizer_class": "PreTrainedTokenizerFast",
            **specials,
            "add_bos_token": self.add_bos,
            "add_eos_token": False,
            "clean_up_tokenization_spaces": False,
            "model_max_length": 1 << 30,
            "chat_template": self.chat_template,
            "scoder_family": self.family,
        }
        write_json_atomic(out / "tokenizer_config.json", config)
        write_json_atomic(out / "special_tokens_map.json", specials)


def _check_messages(messages: Any, source: str) -> None:
    if not isinstance(messages, (list, tuple)) or not messages:
        raise ScoderError(f"{source}: a chat must be a non-empty list of messages")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise ScoderError(f"{source}: message {i} must be a dict with 'role' and 'content'")
        if not isinstance(m["content"], str):
            raise ScoderError(f"{source}: message {i} has non-string content ({type(m['content']).__name__})")


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ScoderError(f"{path}:{e.lineno}: malformed JSON ({e.msg})") from None
    if not isinstance(obj, dict):
        raise ScoderError(f"{path}: expected a JSON object")
    return obj


def _detect_family(template: str | None, backend) -> str:
    """From the chat template's text, else from the special tokens in the vocabulary."""
    if template:
        if "<|EOT|>" in template or "### Instruction" in template and "### Response" in template:
            return "deepseek-coder-instruct"
        if "<|im_start|>" in template:
            return "chatml"
        if "<|start_header_id|>" in template:
            return "llama3"
        if "[INST]" in template:
            return "llama2"
        return "plain"
    if backend.token_to_id("<|EOT|>") is not None:
        return "deepseek-coder-instruct"
    if backend.token_to_id("<|start_header_id|>") is not None:
        return "llama3"
    if backend.token_to_id("<|im_start|>") is not None:
        return "chatml"
    if backend.token_to_id("<｜begin▁of▁sentence｜>") is not None:
        return "deepseek-coder"
    return "plain"


def _literal_substitutes(backend) -> dict[int, tuple[int, ...]]:
    """Added tokens a byte-level decoder garbles -> base-vocabulary ids that decode to their text.

    `tokenizers` hands an added token to the decoder as its text, and the ByteLevel decoder reads
    that text as byte symbols: DeepSeek-Coder's single-character tokens 32000-32012 ("õ", "÷", "ü",
    ..., symbols of the bytes C0, C1, F5-FF that UTF-8 never uses) become U+FFFD. llama.cpp and
    the model's own tokenizer give their text; so does `decode`, by decoding in their place the
    byte-level tokens of their UTF-8 bytes ("ü" -> "Ã¼"), in context (ids [37, 32009, 81] -> "Für").
    A decoder `_literal_decoder` wrote (a saved tokenizer) is turned back into the plain, faster one.
    """
    from tokenizers import decoders, pre_tokenizers

    wrapped = backend.decoder
    unwrapped = _is_literal_decoder(wrapped)
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


def _literal_decoder(backend, literal_ids: dict[int, tuple[int, ...]]):
    """The decoder `save` writes: each garbled added token replaced by its byte-level symbols before the
    ByteLevel decoder, so that `transformers` (which has no `_literal_substitutes`) decodes it too."""
    from tokenizers import Regex, decoders

    added = backend.get_added_tokens_decoder()
    steps = [decoders.Replace(Regex(r"\A" + re.escape(added[i].content) + r"\z"),
                              "".join(backend.id_to_token(j) for j in sub)) for i, sub in sorted(literal_ids.items())]
    return decoders.Sequence([*steps, backend.decoder])


def _is_literal_decoder(decoder) -> bool:
    """Whether `decoder` has the form `_literal_decoder` writes: whole-token Replace steps, then ByteLevel."""
    from tokenizers import decoders

    if not isinstance(decoder, decoders.Sequence):
        return False
    steps = json.loads(decoder.__getstate__())["decoders"]
    return len(steps) > 1 and steps[-1]["type"] == "ByteLevel" and all(
        d["type"] == "Replace" and re.fullmatch(r"\\A.+\\z", d["pattern"].get("Regex", ""), re.S) for d in steps[:-1])


def _mark_special(backend, tokens: Sequence[str]) -> None:
    from tokenizers import AddedToken

    current = {t.content: t for t in backend.get_added_tokens_decoder().values()}
    todo = [t for t in tokens if not (t in current and current[t].special)]
    if todo:
        backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in todo])
