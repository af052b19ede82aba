"""The smoke preset's bundled tokenizer (configs/smollm2_tokenizer, written from the SmolLM2
GGUF by tests/assets/build_smoke_tokenizer.py) is the GGUF's tokenizer: same ids for the
standard library's source, same chats, same decoding, same special tokens."""

from __future__ import annotations

import sysconfig
from pathlib import Path

BUNDLED = Path(__file__).resolve().parent.parent / "configs" / "smollm2_tokenizer"


def test_bundled_tokenizer_equals_the_gguf_one(smollm2_gguf):
    from scoder_jax.assets import resolve
    from scoder_jax.runconfig import load_run_config
    from scoder_jax.tokenizer import Tokenizer

    cfg, _ = load_run_config("smoke", [])
    assert cfg.synth.tokenizer == cfg.student.tokenizer == "tokenizer:smollm2-135m-instruct"
    assert Path(resolve(cfg.synth.tokenizer)).resolve() == BUNDLED.resolve()
    assert Tokenizer.load(cfg.synth.tokenizer).vocab_size == 49152
    ours, gguf = Tokenizer.load(BUNDLED), Tokenizer.load(smollm2_gguf)
    assert (ours.family, ours.vocab_size, ours.pad_id, ours.stop_ids) == (
        gguf.family, gguf.vocab_size, gguf.pad_id, gguf.stop_ids)
    stdlib = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))
    assert len(stdlib) > 100
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in stdlib]
    texts += ["Für x ÷ y, ü ö 🙂\t\r\n  end", "<|im_start|>user\nhi<|im_end|>\n", ""]
    for path_or_text, text in zip([*stdlib, "specials", "chat-markers", "empty"], texts):
        ids = gguf.encode(text)
        assert ours.encode(text) == ids, path_or_text
        assert ours.decode(ids) == gguf.decode(ids), path_or_text
    chat = [{"role": "system", "content": "You write code."}, {"role": "user", "content": "Reverse a list."},
            {"role": "assistant", "content": "def rev(x):\n    return x[::-1]\n"}]
    assert ours.encode_chat(chat) == gguf.encode_chat(chat)
    assert ours.encode_chat(chat[1:2]) == gguf.encode_chat(chat[1:2])  # the template's default system prompt
