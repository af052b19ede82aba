"""Rendering chats through jinja chat templates, and finding the assistant turns in the result.

`render_template(template, messages, ...)` renders a chat the way `transformers` does (sandboxed
jinja with `raise_exception`, `tojson`, `strftime_now` and the `{% generation %}` tag), turning a
template error into a one-line ScoderError. `assistant_spans` finds, in a rendered chat, the
characters of each assistant message and of the end-of-turn token that closes it (what SFT trains
on); `span_mask` turns them into a per-token mask. `tokenizer.Tokenizer` uses these for
`render_chat`, `encode_chat` and `encode_chat_with_loss_mask`.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from typing import Any, Callable, Mapping, Sequence

from scoder_jax.errors import ScoderError

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
def compile_template(source: str):
    """The compiled jinja template of `source` (cached: the same text compiles once)."""
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


def render_template(
    template: str,
    messages: list[dict],
    *,
    add_generation_prompt: bool,
    special_tokens: Mapping[str, str],
    error_prefix: str,
) -> str:
    """`messages` rendered through the jinja `template`, with `special_tokens` (bos_token=..., ...) set;
    a template error becomes ScoderError(f"{error_prefix} failed: ...")."""
    import jinja2

    try:
        return compile_template(template).render(
            messages=messages, add_generation_prompt=add_generation_prompt, **special_tokens)
    except jinja2.exceptions.TemplateError as e:
        raise ScoderError(f"{error_prefix} failed: {e}") from None


# ---------------------------------------------------------------------------------------------
# Messages and assistant spans.


def check_messages(messages: Any, source: str) -> None:
    """ScoderError unless `messages` is a non-empty list of {'role': ..., 'content': str} dicts."""
    if not isinstance(messages, (list, tuple)) or not messages:
        raise ScoderError(f"{source}: a chat must be a non-empty list of messages")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise ScoderError(f"{source}: message {i} must be a dict with 'role' and 'content'")
        if not isinstance(m["content"], str):
            raise ScoderError(f"{source}: message {i} has non-string content ({type(m['content']).__name__})")


def assistant_spans(
    messages: list[dict],
    full: str,
    render: Callable[..., str],
    stop_texts: Sequence[str],
    source: str,
) -> list[tuple[int, int]]:
    """[(start, end)) character spans in `full` (the whole chat rendered without a generation prompt)
    of each assistant message's content and of the end-of-turn token that closes it.

    `render(messages[:k], add_generation_prompt=...)` renders a prefix of the chat; the template must
    render conversations incrementally (each prefix is a prefix of `full`). A span ends right after
    the last of `stop_texts` inside the turn, or without one, before the turn's trailing blanks.
    """
    spans = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        prefix = render(messages[:i], add_generation_prompt=True) if i else ""
        upto = render(messages[: i + 1], add_generation_prompt=False)
        if not full.startswith(prefix) or not full.startswith(upto) or len(upto) < len(prefix):
            raise ScoderError(
                f"{source}: chat template does not render conversations incrementally "
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
    return spans


def span_mask(offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]) -> list[bool]:
    """Per token (character `offsets` [a, b)): True if it is non-empty and overlaps one of `spans`."""
    return [b > a and any(a < e and b > s for s, e in spans) for a, b in offsets]
