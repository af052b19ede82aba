"""Side-by-side: the engine's stop-string check by full decode (before) against the incremental
`StopStringWatch` (scoder_jax/generate/stop_strings.py), on the same token streams.

8 slots x 2048 tokens of Python source with non-ASCII text mixed in (so characters split across
tokens), through SmolLM2's tokenizer (configs/smollm2_tokenizer) and, when its vocab-only GGUF is
fetched, DeepSeek-Coder's; checked the way the engine checks: after the first token, then after
every chunk of `--chunk` tokens, with stop strings that never occur (every slot runs to the
end, the worst case for the full decode). Both checks must give the same answers. Host time
only; prints a readable line and one JSON line per tokenizer:
{"benchmark": "stop_strings", "tokenizer": ..., "full_s": ..., "incremental_s": ..., "ratio": ...}.

    python tests/benchmarks/stop_strings.py [--slots 8] [--tokens 2048] [--chunk 8]
"""

from __future__ import annotations

import argparse
import inspect
import json
import platform
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STOPS = ("\n```\n\n", "</code>", "\nif __name__ == '__never__':")
EXTRA = "# naïve café — 日本語のテキスト 😀, ñ ß Ω\n"


def streams(tok, slots: int, tokens: int) -> list[list[int]]:
    import collections
    import json as json_mod
    import os
    import pathlib
    import re

    text = "".join(EXTRA + inspect.getsource(m) for m in (os, re, collections, json_mod, pathlib, argparse))
    ids = tok.encode(text)
    step = max(1, (len(ids) - tokens) // slots)
    out = [ids[i * step:i * step + tokens] for i in range(slots)]
    assert all(len(s) == tokens for s in out), "source text too short for --tokens"
    return out


def run(check, slots: list[list[int]], chunk: int) -> tuple[float, list[list[bool]]]:
    """Seconds for all checks of all slots (round-robin, as the engine does between chunks)."""
    answers: list[list[bool]] = [[] for _ in slots]
    ends = [1, *range(1 + chunk, len(slots[0]), chunk), len(slots[0])]
    states = [check.new() for _ in slots]
    grown: list[list[int]] = [[] for _ in slots]  # each slot's token list, extended as the engine does
    t0 = time.perf_counter()
    for n in ends:
        for b, toks in enumerate(slots):
            grown[b].extend(toks[len(grown[b]):n])
            answers[b].append(check.hit(states[b], grown[b]))
    return time.perf_counter() - t0, answers


class Full:
    """The engine's check before: decode the slot's whole token list, search every stop string."""

    def __init__(self, decode):
        self.decode = decode

    def new(self):
        return None

    def hit(self, _state, tokens) -> bool:
        text = self.decode(tokens)
        return any(s and s in text for s in STOPS)


class Incremental:
    def __init__(self, decode):
        from scoder_jax.generate.stop_strings import split_rule

        self.decode, self.rule = decode, split_rule(decode)
        assert self.rule is not None

    def new(self):
        from scoder_jax.generate.stop_strings import StopStringWatch

        return StopStringWatch(self.decode, STOPS, self.rule)

    def hit(self, state, tokens) -> bool:
        return state.hit(tokens)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--slots", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=2048)
    ap.add_argument("--chunk", type=int, default=8, help="tokens per check (the engine's decode chunk)")
    args = ap.parse_args()

    from scoder_jax.tokenizer import Tokenizer

    paths = {"smollm2": ROOT / "configs" / "smollm2_tokenizer",
             "deepseek-coder": ROOT / "tests" / "assets" / "vendor" / "ggml-vocab-deepseek-coder.gguf"}
    for name, path in paths.items():
        if not path.exists():
            print(f"{name}: {path} missing, skipped")
            continue
        tok = Tokenizer.load(path)
        slots = streams(tok, args.slots, args.tokens)
        full_s, full_answers = run(Full(tok.decode), slots, args.chunk)
        inc_s, inc_answers = run(Incremental(tok.decode), slots, args.chunk)
        assert inc_answers == full_answers, "the two checks disagree"
        checks = sum(len(a) for a in full_answers)
        print(f"{name}: {args.slots} slots x {args.tokens} tokens, a check every {args.chunk} tokens "
              f"({checks} checks): full decode {full_s:.3f} s, incremental {inc_s:.3f} s, "
              f"ratio {full_s / inc_s:.1f}x")
        print(json.dumps({"benchmark": "stop_strings", "tokenizer": name, "slots": args.slots,
                          "tokens": args.tokens, "chunk": args.chunk, "checks": checks,
                          "full_s": round(full_s, 4), "incremental_s": round(inc_s, 4),
                          "ratio": round(full_s / inc_s, 2), "machine": platform.machine()}))


if __name__ == "__main__":
    main()
