"""Exact and near deduplication of snippets.

- Exact: a 64-bit blake2b of the text with whitespace runs collapsed and case folded, so copies
  that differ only in indentation, blank lines or spacing collide.
- Near: MinHash signatures (`datasketch`, 256 permutations) of 5-token shingles, indexed in a
  `MinHashLSH` at Jaccard 0.7; the first snippet of a cluster (in stream order) is kept.

Shingles are taken over code tokens (a string literal is one token, line comments are dropped)
in which *local names* are canonicalised: an identifier that
is neither a keyword, nor an attribute (after `.`), nor called (before `(`) becomes `v0`, `v1`, ...
by order of first appearance. A copy with renamed variables therefore has the same shingles,
while code calling different functions or touching different attributes stays apart.

Signatures are computed in the worker processes (`MinHasher`); only the LSH index lives in the
main process (`NearDedup`), and it is the only structure that grows with the pool.
"""

from __future__ import annotations

import hashlib
import keyword
import re

import numpy as np

_WS = re.compile(r"\s+")
_STRINGS = r'"""[\s\S]*?"""|\'\'\'[\s\S]*?\'\'\'|"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|`[^`]*`'
_REST = r"|[A-Za-z_$][A-Za-z0-9_$]*|\d+(?:\.\d+)?|==|!=|<=|>=|->|=>|::|&&|\|\||\S"
# A string literal is one token; line comments (dropped) start with "#" or "//" by language.
_TOKEN_HASH = re.compile(_STRINGS + r"|#[^\n]*" + _REST)
_TOKEN_SLASH = re.compile(_STRINGS + r"|//[^\n]*" + _REST)
_HASH_COMMENT_LANGS = frozenset({"python", "shell", "ruby", "perl", "r", "makefile", "julia", "elixir", "cmake",
                                 "dockerfile", "powershell", "nim"})
# Keywords of the languages we read; they keep their spelling in shingles.
_KEYWORDS = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | frozenset("""
    abstract auto bool boolean break byte case catch char chan const constexpr continue default defer
    delete do double else enum export extends extern fallthrough final finally float fn for func function go
    goto if impl implements import in instanceof int interface let long loop match mod mut namespace new
    nil null package private protected pub public return self Self short signed sizeof static struct super
    switch template this throw throws trait try typedef typename typeof union unsigned use var void volatile
    where while yield true false True False None echo then fi esac done elif local
""".split())


def normalize_exact(text: str) -> str:
    return _WS.sub(" ", text).strip().casefold()


def exact_key(text: str) -> int:
    """64-bit key of the whitespace- and case-normalised text."""
    return int.from_bytes(hashlib.blake2b(normalize_exact(text).encode("utf-8"), digest_size=8).digest(), "big")


def canonical_tokens(text: str, lang: str | None = None) -> list[str]:
    """Code tokens with local names replaced by `v0`, `v1`, ... (see module docstring)."""
    pattern, comment = (_TOKEN_HASH, "#") if lang in _HASH_COMMENT_LANGS else (_TOKEN_SLASH, "//")
    toks = [t if t[0] not in "\"'`" else _WS.sub(" ", t) for t in pattern.findall(text) if not t.startswith(comment)]
    names: dict[str, str] = {}
    out: list[str] = []
    n = len(toks)
    for i, tok in enumerate(toks):
        c = tok[0]
        if (c.isalpha() or c in "_$") and tok not in _KEYWORDS:
            prev = toks[i - 1] if i else ""
            nxt = toks[i + 1] if i + 1 < n else ""
            if prev != "." and nxt != "(":
                tok = names.setdefault(tok, f"v{len(names)}")
        out.append(tok)
    return out


def shingles(text: str, n: int = 5, lang: str | None = None) -> list[bytes]:
    """The distinct n-token shingles of the canonical token stream (one shingle if shorter)."""
    toks = canonical_tokens(text, lang)
    if len(toks) <= n:
        return [" ".join(toks).encode("utf-8")] if toks else []
    return list(dict.fromkeys(" ".join(toks[i:i + n]).encode("utf-8") for i in range(len(toks) - n + 1)))


class MinHasher:
    """Computes MinHash signatures with fixed permutations (the same on every process)."""

    def __init__(self, num_perm: int = 256, ngram: int = 5, seed: int = 1):
        from datasketch import MinHash

        self._MinHash = MinHash
        self.num_perm, self.ngram, self.seed = num_perm, ngram, seed
        self._perms = MinHash(num_perm=num_perm, seed=seed, scheme="affine32").permutations

    def signature(self, text: str, lang: str | None = None) -> np.ndarray:
        """[num_perm] uint64 MinHash values of the text's shingles."""
        m = self._MinHash(num_perm=self.num_perm, seed=self.seed, permutations=self._perms, scheme="affine32")
        m.update_batch(shingles(text, self.ngram, lang))
        return m.hashvalues


class NearDedup:
    """A MinHash LSH index: `seen(key, signature)` says whether a near-duplicate is already in,
    and inserts the signature when not."""

    def __init__(self, threshold: float = 0.7, num_perm: int = 256):
        from datasketch import MinHash, MinHashLSH

        self._MinHash = MinHash
        self.num_perm = num_perm
        self._perms = MinHash(num_perm=num_perm, scheme="affine32").permutations  # only to skip re-deriving them
        self.lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)

    def seen(self, key: int, signature: np.ndarray) -> int | None:
        """The key of an earlier near-duplicate, or None (then this one is indexed)."""
        m = self._MinHash(num_perm=self.num_perm, hashvalues=signature, permutations=self._perms, scheme="affine32")
        hits = self.lsh.query(m)
        if hits:
            return min(hits)
        self.lsh.insert(key, m, check_duplication=False)
        return None


class ExactDedup:
    def __init__(self) -> None:
        self._seen: set[int] = set()

    def seen(self, key: int) -> bool:
        if key in self._seen:
            return True
        self._seen.add(key)
        return False

    def __len__(self) -> int:
        return len(self._seen)
