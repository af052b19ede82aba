"""Hugging Face tokenizer folders: reading one into `Tokenizer` arguments, and writing one.

`hf_tokenizer_parts(d, family)` reads `tokenizer.json` and, where present, `tokenizer_config.json`,
`special_tokens_map.json`, `chat_template.jinja` / `chat_template.json` and `generation_config.json`
into the arguments of `tokenizer.Tokenizer` (special tokens, whether BOS is added, the chat
template, the extra stop ids). `write_hf_dir(tok, out_dir, literal_ids=...)` writes
`tokenizer.json`, `tokenizer_config.json` and `special_tokens_map.json` that
`transformers.AutoTokenizer` and `Tokenizer.load` read back.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from scoder_jax.errors import ScoderError
from scoder_jax.tokenizer_added_tokens import literal_decoder
from scoder_jax.tokenizer_templates import detect_family


def hf_tokenizer_parts(d: Path, family: str | None) -> dict[str, Any]:
    """The `Tokenizer(...)` arguments (backend=..., family=..., ...) of the Hugging Face tokenizer
    folder `d`; `family` None: from `scoder_family` in tokenizer_config.json, else detected."""
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
    fam = family or config.get("scoder_family") or detect_family(template, backend)
    return dict(
        backend=backend,
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


def write_hf_dir(tok, out_dir: str | os.PathLike, *, literal_ids: dict[int, tuple[int, ...]]) -> None:
    """Writes tokenizer.json, tokenizer_config.json and special_tokens_map.json of `tok` (a
    `tokenizer.Tokenizer`) into `out_dir` (other files there are left alone); `literal_ids`: its
    added tokens the byte-level decoder garbles (see `tokenizer_added_tokens.literal_substitutes`)."""
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import processors

    from scoder_jax.io import write_json_atomic, write_text_atomic

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    backend = HFTokenizer.from_str(tok.backend.to_str())
    if tok.add_bos:
        backend.post_processor = processors.TemplateProcessing(
            single=f"{tok.bos_token} $A",
            pair=f"{tok.bos_token} $A {tok.bos_token} $B",
            special_tokens=[(tok.bos_token, tok.bos_id)],
        )
    elif isinstance(backend.post_processor, processors.TemplateProcessing):
        backend.post_processor = processors.TemplateProcessing(single="$A", pair="$A $B")
    if literal_ids:
        backend.decoder = literal_decoder(backend, literal_ids)
    write_text_atomic(out / "tokenizer.json", backend.to_str(pretty=True))
    specials = {
        k: v
        for k, v in (
            ("bos_token", tok.bos_token),
            ("eos_token", tok.eos_token),
            ("pad_token", tok.pad_token if tok.pad_token is not None else tok.id_to_token(tok.pad_id)),
            ("unk_token", tok.unk_token),
        )
        if v is not None
    }
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        **specials,
        "add_bos_token": tok.add_bos,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": 1 << 30,
        "chat_template": tok.chat_template,
        "scoder_family": tok.family,
    }
    write_json_atomic(out / "tokenizer_config.json", config)
    write_json_atomic(out / "special_tokens_map.json", specials)


def _token_content(value: Any) -> str | None:
    """A special token as tokenizer_config.json spells it: a string or an AddedToken dict."""
    if value is None:
        return None
    if isinstance(value, dict):
        return value.get("content")
    return str(value)


def _read_json(path: Path) -> dict:
    """The JSON object in `path`; {} if there is no such file."""
    if not path.is_file():
        return {}
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ScoderError(f"{path}:{e.lineno}: malformed JSON ({e.msg})") from None
    if not isinstance(obj, dict):
        raise ScoderError(f"{path}: expected a JSON object")
    return obj
