"""Secrets and personal data in code: API keys, private keys, tokens, e-mail addresses.

`find_secrets(text)` returns the spans found; `redact(text, spans)` replaces them with
placeholders (`<API_KEY>`, `<PRIVATE_KEY>`, `<TOKEN>`, `<EMAIL>`, `<PASSWORD>`). Patterns follow
the formats the providers publish (AWS `AKIA...`, GitHub `ghp_...`, Slack `xox.-`, Google `AIza...`,
Stripe `sk_live_...`, OpenAI `sk-...`, JWTs, PEM private-key blocks); a generic
`api_key = "..."`-style assignment counts only when its value looks random (entropy), so that
`password = "secret"` in a docstring example survives.
"""

from __future__ import annotations

import bisect
import math
import re
from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class Secret:
    kind: str     # "private_key", "aws_key", "github_token", ..., "email"
    start: int
    end: int


_PLACEHOLDER = {
    "private_key": "<PRIVATE_KEY>", "email": "<EMAIL>", "password": "<PASSWORD>",
    "jwt": "<TOKEN>", "github_token": "<TOKEN>", "slack_token": "<TOKEN>", "generic_secret": "<SECRET>",
}

# (kind, pattern, group whose span is the secret)
_PATTERNS: list[tuple[str, re.Pattern, int]] = [
    ("private_key", re.compile(
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
        r"(?:.*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|.*\Z)",
        re.S), 0),
    ("aws_key", re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA)[0-9A-Z]{16}\b"), 0),
    ("aws_secret", re.compile(r"(?i)aws.{0,20}?(?:secret|key).{0,20}?['\"]([A-Za-z0-9/+]{40})['\"]"), 1),
    ("github_token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b"), 0),
    ("gitlab_token", re.compile(r"\bglpat-[A-Za-z0-9_\-]{20,}\b"), 0),
    ("slack_token", re.compile(r"\bxox[abposr]-[A-Za-z0-9\-]{10,}"), 0),
    ("google_api_key", re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b"), 0),
    ("stripe_key", re.compile(r"\b[rs]k_(?:live|test)_[0-9A-Za-z]{20,}\b"), 0),
    ("openai_key", re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_\-]{32,}\b"), 0),
    ("hf_token", re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"), 0),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"), 0),
    ("generic_secret", re.compile(
        r"(?i)\b(?:api[_\-]?key|apikey|secret[_\-]?key|client[_\-]?secret|access[_\-]?token|auth[_\-]?token|"
        r"private[_\-]?key|secret|token|password|passwd|pwd)['\"]?\s*(?:[:=]|=>)\s*"
        r"[rbuf]?(['\"])([^'\"\s]{12,200})\1"), 2),
    ("email", re.compile(r"(?<![\w.+\-@])[A-Za-z0-9][A-Za-z0-9._%+\-]{0,63}@(?:[A-Za-z0-9\-]+\.)+[A-Za-z]{2,24}\b"), 0),
]

# Not personal: documentation domains (RFC 2606) and obvious placeholders.
_EMAIL_OK = re.compile(r"@(?:[\w\-]+\.)*(?:example\.(?:com|org|net)|localhost|invalid|test|example)$", re.I)
_PLACEHOLDER_VALUE = re.compile(r"(?i)(?:your|xxx|\*\*\*|<|\$\{|\{\{|%\(|example|changeme|dummy|placeholder|fake|test)")


def _entropy(s: str) -> float:
    counts = Counter(s)
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def _looks_random(value: str) -> bool:
    if _PLACEHOLDER_VALUE.search(value):
        return False
    has_digit = any(c.isdigit() for c in value)
    has_alpha = any(c.isalpha() for c in value)
    return has_digit and has_alpha and _entropy(value) >= 3.3


def find_secrets(text: str) -> list[Secret]:
    """Secrets in `text`, sorted by position, overlaps removed (the earliest, longest wins)."""
    if not text:
        return []
    found: list[Secret] = []
    for kind, pattern, group in _PATTERNS:
        if kind == "email" and "@" not in text:
            continue
        for m in pattern.finditer(text):
            value = m.group(group)
            if kind == "email" and _EMAIL_OK.search(value):
                continue
            if kind == "openai_key" and not _looks_random(value[3:]):
                continue
            if kind == "generic_secret" and not _looks_random(value):
                continue
            found.append(Secret(kind, m.start(group), m.end(group)))
    found.sort(key=lambda s: (s.start, -s.end))
    out: list[Secret] = []
    for s in found:
        if out and s.start < out[-1].end:
            continue
        out.append(s)
    return out


def line_spans(lines: list[str], secrets: list[Secret]) -> list[tuple[str, int, int]]:
    """(kind, first line, last line) of each secret found in "".join(lines), lines 1-based: the
    document's own lines (as extraction split them: `splitlines(keepends=True)`, which also breaks
    at form feeds and lone CRs), so the numbers agree with `Extracted.span`."""
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(line))
    return [(s.kind, bisect.bisect_right(starts, s.start), bisect.bisect_right(starts, max(s.start, s.end - 1)))
            for s in secrets]


def redact(text: str, secrets: list[Secret]) -> str:
    """`text` with each secret replaced by its placeholder."""
    parts, pos = [], 0
    for s in secrets:
        parts.append(text[pos:s.start])
        parts.append(_PLACEHOLDER.get(s.kind, "<API_KEY>"))
        pos = s.end
    parts.append(text[pos:])
    return "".join(parts)
