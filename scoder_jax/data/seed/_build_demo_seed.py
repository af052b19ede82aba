"""Builds `demo_seed.jsonl`: the bundled seed set for the demo.

These examples are hand-written stand-ins for a teacher's output (what a strong proprietary
model produces from a snippet in OSS-Instruct style): each pairs a short excerpt of a function
from the CPython standard library with a self-contained problem it inspired, a typed solution
with a docstring, and asserts that test it. The problems, solutions and tests are literals
below; only the snippet text is cut out of the running interpreter's standard-library source
(the module's source from the line holding `anchor` inside the named function, `n` lines),
so it is a faithful excerpt. Run from the repository root:

    python scoder_jax/data/seed/_build_demo_seed.py

The set is kept clear of HumanEval and MBPP (tests/test_seed_set.py checks it).
"""

from __future__ import annotations

import importlib
import inspect
import sys
import textwrap
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from scoder_jax.io import write_jsonl_atomic  # noqa: E402
from scoder_jax.records import content_id  # noqa: E402

OUT = Path(__file__).with_name("demo_seed.jsonl")
NOTE = "hand-written stand-in for a teacher's output"

EXAMPLES: list[dict] = []


def module_of(qualname: str):
    """The longest importable module prefix of a dotted name, and the remaining attribute path."""
    parts = qualname.split(".")
    for i in range(len(parts), 0, -1):
        try:
            return importlib.import_module(".".join(parts[:i])), parts[i:]
        except ImportError:
            continue
    raise ImportError(qualname)


def snip(qualname: str, anchor: str, n: int) -> str:
    """`n` lines of the module source of `qualname`, from the first line holding `anchor` after
    the line that defines the function or class (`def name` / `class name`), dedented."""
    module, attrs = module_of(qualname)
    lines = inspect.getsource(module).splitlines()
    start = 0
    for attr in attrs:  # walk down: class, then method
        heads = (f"def {attr}(", f"class {attr}(", f"class {attr}:")
        start = next(i for i in range(start, len(lines)) if lines[i].lstrip().startswith(heads))
    i = next((j for j in range(start, len(lines)) if anchor in lines[j]), None)
    if i is None:
        raise ValueError(f"{qualname}: anchor {anchor!r} not found")
    text = textwrap.dedent("\n".join(lines[i : i + n]))
    return text.rstrip() + "\n"


def example(snippet_from: str, anchor: str, n: int, *, problem: str, solution: str, tests: str) -> None:
    EXAMPLES.append(
        {
            "snippet_from": snippet_from,
            "snippet": snip(snippet_from, anchor, n),
            "problem": textwrap.dedent(problem).strip() + "\n",
            "solution": textwrap.dedent(solution).strip() + "\n",
            "tests": textwrap.dedent(tests).strip() + "\n",
        }
    )


def records() -> list[dict]:
    out = []
    for i, ex in enumerate(EXAMPLES, 1):
        out.append(
            {
                "id": f"seed-{i:03d}",
                "snippet_id": content_id(ex["snippet"]),
                "snippet": ex["snippet"],
                "lang": "python",
                "problem": ex["problem"],
                "solution": ex["solution"],
                "tests": ex["tests"],
                "origin": "bundled",
                "meta": {"note": NOTE, "snippet_from": ex["snippet_from"]},
            }
        )
    return out


# =============================================================================== examples

example(
    "textwrap.dedent", "margin = None", 14,
    problem='''
    Write a function `reindent(text: str, new_unit: int) -> str` that changes the indentation
    unit of a block of code. The input uses spaces only and its indentation is a multiple of a
    unit width: the smallest non-zero leading-space count among non-blank lines. Every non-blank
    line with `k` units of indentation must be re-indented with `k * new_unit` spaces; the rest of
    the line is unchanged. Blank (or whitespace-only) lines become empty. If no line is indented,
    return the text with whitespace-only lines emptied. Raise `ValueError` if some line's
    indentation is not a multiple of the detected unit, or if `new_unit` is negative. Keep the
    line structure: the output has the same number of lines, and a trailing newline is kept if
    the input had one.
    ''',
    solution='''
    def reindent(text: str, new_unit: int) -> str:
        """Re-indents `text` so that each indentation level is `new_unit` spaces wide."""
        if new_unit < 0:
            raise ValueError("new_unit must be >= 0")
        lines = text.split("\\n")
        widths = [len(l) - len(l.lstrip(" ")) for l in lines if l.strip()]
        unit = min((w for w in widths if w > 0), default=0)
        out = []
        for line in lines:
            if not line.strip():
                out.append("")
                continue
            width = len(line) - len(line.lstrip(" "))
            if unit == 0:
                out.append(line)
                continue
            if width % unit:
                raise ValueError(f"indentation {width} is not a multiple of {unit}: {line!r}")
            out.append(" " * (width // unit * new_unit) + line.lstrip(" "))
        return "\\n".join(out)
    ''',
    tests='''
    src = "def f():\\n    if x:\\n        return 1\\n    return 2\\n"
    assert reindent(src, 2) == "def f():\\n  if x:\\n    return 1\\n  return 2\\n"
    assert reindent(src, 4) == src
    assert reindent("a:\\n  b:\\n    c\\n", 3) == "a:\\n   b:\\n      c\\n"
    assert reindent("x\\n   \\ny", 2) == "x\\n\\ny"
    assert reindent("", 4) == ""
    assert reindent("  a\\n  b", 8) == "        a\\n        b"
    try:
        reindent("a\\n  b\\n   c", 4)
    except ValueError:
        pass
    else:
        raise AssertionError("misaligned indentation must raise")
    try:
        reindent("a", -1)
    except ValueError:
        pass
    else:
        raise AssertionError("negative unit must raise")
    ''',
)

example(
    "textwrap.shorten", "def shorten", 14,
    problem='''
    Implement `truncate_words(text: str, width: int, placeholder: str = " [...]") -> str`.
    First collapse every run of whitespace in `text` to a single space and strip both ends. If
    the result fits in `width` characters, return it. Otherwise return as many whole leading
    words as fit together with `placeholder` appended, so that the total length is at most
    `width`; words are never cut. If not even the first word fits with the placeholder, return
    the placeholder with its leading whitespace stripped if that fits, and raise `ValueError`
    if even that does not fit in `width`.
    ''',
    solution='''
    def truncate_words(text: str, width: int, placeholder: str = " [...]") -> str:
        """Collapses whitespace and shortens `text` to at most `width` characters at word boundaries."""
        words = text.split()
        collapsed = " ".join(words)
        if len(collapsed) <= width:
            return collapsed
        kept: list[str] = []
        length = 0
        for word in words:
            extra = len(word) + (1 if kept else 0)
            if length + extra + len(placeholder) > width:
                break
            kept.append(word)
            length += extra
        if kept:
            return " ".join(kept) + placeholder
        bare = placeholder.lstrip()
        if len(bare) > width:
            raise ValueError("placeholder too large for width")
        return bare
    ''',
    tests='''
    assert truncate_words("Hello  world!", 12) == "Hello world!"
    assert truncate_words("Hello world!", 11) == "Hello [...]"
    assert truncate_words("The quick brown fox jumps", 20) == "The quick [...]"
    assert truncate_words("  spaced\\tout\\ntext  ", 100) == "spaced out text"
    assert truncate_words("abc def", 5, placeholder="..") == "abc.."
    assert truncate_words("Supercalifragilistic", 6) == "[...]"
    assert truncate_words("", 0) == ""
    try:
        truncate_words("long words here", 3)
    except ValueError:
        pass
    else:
        raise AssertionError("placeholder does not fit: must raise")
    ''',
)

example(
    "fnmatch.translate", "while i < n:", 14,
    problem='''
    Write `wildcard_match(pattern: str, name: str) -> bool` that decides whether the whole string
    `name` matches a shell-style `pattern` without using the `re` or `fnmatch` modules. In the
    pattern, `*` matches any sequence of characters (including the empty one), `?` matches
    exactly one character, and every other character matches itself (case-sensitive). Character
    classes are not supported: `[` is literal. The function must run in O(len(pattern) *
    len(name)) time even for patterns such as `"a*a*a*a*b"`.
    ''',
    solution='''
    def wildcard_match(pattern: str, name: str) -> bool:
        """True if all of `name` matches the glob `pattern` (`*` and `?` only)."""
        # match[j]: does pattern[:i] match name[:j]; rolled over i.
        match = [True] + [False] * len(name)
        for ch in pattern:
            if ch == "*":
                for j in range(1, len(name) + 1):
                    match[j] = match[j] or match[j - 1]
            else:
                for j in range(len(name), 0, -1):
                    match[j] = match[j - 1] and (ch == "?" or ch == name[j - 1])
                match[0] = False
        return match[len(name)]
    ''',
    tests='''
    assert wildcard_match("*.py", "setup.py")
    assert not wildcard_match("*.py", "setup.pyc")
    assert wildcard_match("a?c", "abc") and not wildcard_match("a?c", "ac")
    assert wildcard_match("*", "") and wildcard_match("", "") and not wildcard_match("", "a")
    assert wildcard_match("a*b*c", "aXXbYYc") and not wildcard_match("a*b*c", "aXXcYYb")
    assert wildcard_match("[ab]", "[ab]") and not wildcard_match("[ab]", "a")
    assert wildcard_match("A*", "Abc") and not wildcard_match("A*", "abc")
    assert not wildcard_match("a*a*a*a*a*a*a*b", "a" * 200)
    assert wildcard_match("**?", "x")
    ''',
)

example(
    "heapq.merge", "_heapify(h)", 13,
    problem='''
    Write `merge_sorted(lists: list[list[int]]) -> list[int]` that merges any number of
    individually sorted (ascending) integer lists into one sorted list in O(N log k) time, where
    N is the total number of elements and k the number of lists. Do not concatenate and sort.
    Empty input lists are allowed, and so is an empty outer list. Equal elements from earlier
    lists must come before equal elements from later lists (a stable merge); the tests check
    this with lists of tuples too, so compare elements only with `<`/`==`, never subtract them.
    ''',
    solution='''
    import heapq


    def merge_sorted(lists: list[list]) -> list:
        """Stable k-way merge of sorted lists using a heap keyed by (value, list index)."""
        heap = [(lst[0], i, 0) for i, lst in enumerate(lists) if lst]
        heapq.heapify(heap)
        out = []
        while heap:
            value, i, j = heapq.heappop(heap)
            out.append(value)
            if j + 1 < len(lists[i]):
                heapq.heappush(heap, (lists[i][j + 1], i, j + 1))
        return out
    ''',
    tests='''
    assert merge_sorted([[1, 4, 7], [2, 5, 8], [3, 6, 9]]) == list(range(1, 10))
    assert merge_sorted([]) == []
    assert merge_sorted([[], [], []]) == []
    assert merge_sorted([[5], [], [1, 2, 10]]) == [1, 2, 5, 10]
    assert merge_sorted([[-3, -1], [-2, 0, 0]]) == [-3, -2, -1, 0, 0]
    a, b = [(1, "a"), (2, "a")], [(1, "b"), (3, "b")]
    assert merge_sorted([a, b]) == [(1, "a"), (1, "b"), (2, "a"), (3, "b")]
    import random
    rng = random.Random(7)
    parts = [sorted(rng.randint(0, 50) for _ in range(rng.randint(0, 20))) for _ in range(6)]
    assert merge_sorted(parts) == sorted(x for p in parts for x in p)
    ''',
)

example(
    "heapq.nlargest", "if key is None:", 12,
    problem='''
    Given a list of words, return the `k` most frequent ones:
    `top_k_words(words: list[str], k: int) -> list[str]`. Words are compared case-insensitively
    and reported in lower case. Order the result by descending frequency; words with equal
    frequency are ordered alphabetically. If fewer than `k` distinct words exist, return all of
    them. `k <= 0` returns an empty list. Use a heap so that the work is O(n log k) after
    counting.
    ''',
    solution='''
    import heapq
    from collections import Counter


    def top_k_words(words: list[str], k: int) -> list[str]:
        """The k most frequent words (lower-cased), ties broken alphabetically."""
        if k <= 0:
            return []
        counts = Counter(w.lower() for w in words)
        best = heapq.nsmallest(k, counts.items(), key=lambda item: (-item[1], item[0]))
        return [word for word, _ in best]
    ''',
    tests='''
    words = "the cat and the hat and the bat".split()
    assert top_k_words(words, 1) == ["the"]
    assert top_k_words(words, 2) == ["the", "and"]
    assert top_k_words(words, 3) == ["the", "and", "bat"]
    assert top_k_words(["B", "a", "b", "A", "c"], 2) == ["a", "b"]
    assert top_k_words(["x"], 5) == ["x"]
    assert top_k_words([], 3) == []
    assert top_k_words(["a", "b"], 0) == []
    assert top_k_words(["z", "y", "x"], 3) == ["x", "y", "z"]
    ''',
)

example(
    "bisect.bisect_left", "while lo < hi:", 6,
    problem='''
    Implement `count_in_range(values: list[int], lo: int, hi: int) -> int` which, given a list
    sorted in non-decreasing order, returns how many elements `x` satisfy `lo <= x <= hi`. Use
    two binary searches (write them yourself; do not import `bisect`) so the function is
    O(log n). If `lo > hi` the answer is 0. Duplicates count once per occurrence.
    ''',
    solution='''
    def count_in_range(values: list[int], lo: int, hi: int) -> int:
        """Number of items of the sorted list `values` inside the closed interval [lo, hi]."""
        if lo > hi:
            return 0

        def first_at_least(target: int, strict: bool) -> int:
            # First index whose value is >= target (or > target when strict).
            left, right = 0, len(values)
            while left < right:
                mid = (left + right) // 2
                if values[mid] < target or (strict and values[mid] == target):
                    left = mid + 1
                else:
                    right = mid
            return left

        return first_at_least(hi, strict=True) - first_at_least(lo, strict=False)
    ''',
    tests='''
    data = [1, 2, 2, 2, 5, 7, 9]
    assert count_in_range(data, 2, 2) == 3
    assert count_in_range(data, 0, 100) == 7
    assert count_in_range(data, 3, 4) == 0
    assert count_in_range(data, 2, 7) == 5
    assert count_in_range(data, 9, 1) == 0
    assert count_in_range([], 0, 10) == 0
    assert count_in_range([-5, -5, 0], -5, -1) == 2
    assert count_in_range(data, 10, 20) == 0
    ''',
)

example(
    "collections.Counter.most_common", "if n is None:", 6,
    problem='''
    Write `most_common_with_ties(items: list[str], n: int) -> list[tuple[str, int]]` returning
    the `n` most common items with their counts, like `Counter.most_common(n)`, except that items
    tied with the n-th item's count are also included (so the result can be longer than `n`).
    Order by descending count, then by first appearance in `items`. `n <= 0` or an empty list
    gives `[]`.
    ''',
    solution='''
    def most_common_with_ties(items: list[str], n: int) -> list[tuple[str, int]]:
        """Top-n items by count, extended with every item tied with the n-th one."""
        if n <= 0 or not items:
            return []
        counts: dict[str, int] = {}
        for item in items:  # dicts keep first-appearance order
            counts[item] = counts.get(item, 0) + 1
        ranked = sorted(counts.items(), key=lambda kv: -kv[1])  # stable: ties keep first appearance
        if n >= len(ranked):
            return ranked
        cutoff = ranked[n - 1][1]
        return [kv for kv in ranked if kv[1] >= cutoff]
    ''',
    tests='''
    assert most_common_with_ties(list("aabbbcc"), 1) == [("b", 3)]
    assert most_common_with_ties(list("aabbbcc"), 2) == [("b", 3), ("a", 2), ("c", 2)]
    assert most_common_with_ties(list("abc"), 1) == [("a", 1), ("b", 1), ("c", 1)]
    assert most_common_with_ties(list("xyzzy"), 10) == [("y", 2), ("z", 2), ("x", 1)]
    assert most_common_with_ties([], 3) == []
    assert most_common_with_ties(["a"], 0) == []
    assert most_common_with_ties(list("ccab"), 1) == [("c", 2)]
    ''',
)

example(
    "functools.cmp_to_key", "class K(object):", 12,
    problem='''
    Software versions such as `"1.10.0"`, `"1.2"`, `"2.0.0-rc1"` must be sorted. Write
    `sort_versions(versions: list[str]) -> list[str]` returning a new list in ascending order
    using a comparison function and `functools.cmp_to_key`. Rules: split the numeric part on
    dots and compare component-wise as integers, padding the shorter one with zeros (so
    `"1.2" == "1.2.0"`, and then the original order is kept). An optional pre-release suffix
    after a hyphen (e.g. `-rc1`, `-alpha`) makes a version sort before the same version without
    a suffix; two suffixes compare as plain strings.
    ''',
    solution='''
    from functools import cmp_to_key


    def _parse(version: str) -> tuple[list[int], str | None]:
        core, _, pre = version.partition("-")
        return [int(p) for p in core.split(".")], (pre or None)


    def _compare(a: str, b: str) -> int:
        (na, pa), (nb, pb) = _parse(a), _parse(b)
        width = max(len(na), len(nb))
        na += [0] * (width - len(na))
        nb += [0] * (width - len(nb))
        if na != nb:
            return -1 if na < nb else 1
        if pa == pb:
            return 0
        if pa is None:
            return 1
        if pb is None:
            return -1
        return -1 if pa < pb else 1


    def sort_versions(versions: list[str]) -> list[str]:
        """Versions in ascending order; pre-releases before their release."""
        return sorted(versions, key=cmp_to_key(_compare))
    ''',
    tests='''
    assert sort_versions(["1.10.0", "1.2.0", "1.9"]) == ["1.2.0", "1.9", "1.10.0"]
    assert sort_versions(["2.0.0", "2.0.0-rc1", "1.99"]) == ["1.99", "2.0.0-rc1", "2.0.0"]
    assert sort_versions(["1.2", "1.2.0", "1.1.9"]) == ["1.1.9", "1.2", "1.2.0"]
    assert sort_versions(["1.2.0", "1.2"]) == ["1.2.0", "1.2"]
    assert sort_versions(["3.0-beta", "3.0-alpha", "3.0"]) == ["3.0-alpha", "3.0-beta", "3.0"]
    assert sort_versions([]) == []
    assert sort_versions(["10", "9", "100"]) == ["9", "10", "100"]
    ''',
)

example(
    "statistics.median", "data = sorted(data)", 9,
    problem='''
    Write `running_median(stream: list[float]) -> list[float]` that returns, for every prefix
    of `stream`, the median of the values seen so far: the middle value for an odd count and
    the mean of the two middle values (as a float) for an even count. Use two heaps so that
    each step costs O(log n); sorting each prefix is too slow for 10^5 values. An empty stream
    gives an empty list.
    ''',
    solution='''
    import heapq


    def running_median(stream: list[float]) -> list[float]:
        """Median of every prefix of `stream`, maintained with a max-heap and a min-heap."""
        low: list[float] = []   # max-heap (negated) holding the smaller half
        high: list[float] = []  # min-heap holding the larger half
        out: list[float] = []
        for x in stream:
            if low and x > -low[0]:
                heapq.heappush(high, x)
            else:
                heapq.heappush(low, -x)
            if len(low) > len(high) + 1:
                heapq.heappush(high, -heapq.heappop(low))
            elif len(high) > len(low):
                heapq.heappush(low, -heapq.heappop(high))
            if len(low) > len(high):
                out.append(-low[0])
            else:
                out.append((-low[0] + high[0]) / 2)
        return out
    ''',
    tests='''
    assert running_median([]) == []
    assert running_median([5]) == [5]
    assert running_median([2, 1, 5, 7, 2, 0, 5]) == [2, 1.5, 2, 3.5, 2, 2, 2]
    assert running_median([1, 2, 3, 4]) == [1, 1.5, 2, 2.5]
    assert running_median([-1, -1, -1]) == [-1, -1.0, -1]
    assert running_median([10, 0]) == [10, 5.0]
    import random, statistics
    rng = random.Random(3)
    data = [rng.randint(-100, 100) for _ in range(300)]
    assert running_median(data) == [statistics.median(data[: i + 1]) for i in range(len(data))]
    ''',
)

example(
    "calendar.leapdays", "y1 -= 1", 4,
    problem='''
    Write `count_leap_years(start: int, end: int) -> int` returning how many leap years of the
    proleptic Gregorian calendar lie in the half-open range `[start, end)`. A year is a leap year
    if it is divisible by 4, except years divisible by 100 that are not divisible by 400. The
    function must run in O(1) (no loop over the years) and must work for years <= 0 too
    (astronomical numbering: year 0 is a leap year). If `end <= start`, return 0.
    ''',
    solution='''
    def count_leap_years(start: int, end: int) -> int:
        """Number of Gregorian leap years y with start <= y < end, in constant time."""
        if end <= start:
            return 0

        def leaps_before(year: int) -> int:
            # Leap years in [0, year) for year >= 0, extended to negatives by floor division.
            y = year - 1
            return y // 4 - y // 100 + y // 400

        return leaps_before(end) - leaps_before(start)
    ''',
    tests='''
    assert count_leap_years(2000, 2001) == 1
    assert count_leap_years(1900, 1901) == 0
    assert count_leap_years(1996, 2005) == 3
    assert count_leap_years(2024, 2024) == 0
    assert count_leap_years(2030, 2020) == 0
    assert count_leap_years(0, 1) == 1
    assert count_leap_years(-4, 0) == 1
    def is_leap(y):
        return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    assert count_leap_years(-450, 2500) == sum(is_leap(y) for y in range(-450, 2500))
    ''',
)

example(
    "calendar.Calendar.itermonthdays", "day1, ndays = monthrange", 6,
    problem='''
    Write `nth_weekday(year: int, month: int, weekday: int, n: int) -> int` returning the day of
    the month of the n-th given weekday (Monday = 0 ... Sunday = 6) in that month, e.g. the 4th
    Thursday of November. A negative `n` counts from the end: `-1` is the last such weekday.
    Raise `ValueError` if `n == 0`, if the month has no such occurrence (e.g. a 5th Monday that
    does not exist), or if `weekday` is outside 0..6. You may use `calendar.monthrange` or
    `datetime.date`.
    ''',
    solution='''
    import calendar


    def nth_weekday(year: int, month: int, weekday: int, n: int) -> int:
        """Day of month of the n-th (or, for n < 0, n-th from last) `weekday` in year/month."""
        if not 0 <= weekday <= 6:
            raise ValueError("weekday must be in 0..6")
        if n == 0:
            raise ValueError("n must be non-zero")
        first_weekday, ndays = calendar.monthrange(year, month)
        first = 1 + (weekday - first_weekday) % 7
        days = list(range(first, ndays + 1, 7))
        index = n - 1 if n > 0 else n
        if not -len(days) <= index < len(days):
            raise ValueError(f"no occurrence {n} of weekday {weekday} in {year}-{month:02d}")
        return days[index]
    ''',
    tests='''
    assert nth_weekday(2023, 11, 3, 4) == 23   # US Thanksgiving 2023
    assert nth_weekday(2024, 5, 0, -1) == 27   # last Monday of May 2024
    assert nth_weekday(2024, 2, 3, 5) == 29    # leap-day Thursday
    assert nth_weekday(2024, 9, 6, 1) == 1     # September 2024 starts on a Sunday
    assert nth_weekday(2024, 9, 0, 1) == 2
    assert nth_weekday(2021, 1, 4, -5) == 1
    for bad in [(2024, 2, 0, 5), (2024, 1, 7, 1), (2024, 1, 0, 0)]:
        try:
            nth_weekday(*bad)
        except ValueError:
            pass
        else:
            raise AssertionError(bad)
    ''',
)

example(
    "ipaddress._BaseV4._ip_int_from_string", "octets = ip_str.split('.')", 8,
    problem='''
    Implement `ipv4_to_int(address: str) -> int` converting a dotted-quad IPv4 address to its
    32-bit integer value, and `cidr_contains(network: str, address: str) -> bool` telling whether
    an address lies in a CIDR block such as `"10.0.0.0/8"`. Validation is strict: exactly four
    decimal octets 0..255, no signs, no whitespace, no empty parts, and no leading zeros (`"01"`
    is rejected to avoid octal ambiguity, `"0"` is fine). The prefix length must be 0..32. Raise
    `ValueError` on any invalid input. Do not use the `ipaddress` or `socket` modules.
    ''',
    solution='''
    def ipv4_to_int(address: str) -> int:
        """The 32-bit integer of a strict dotted-quad IPv4 address."""
        parts = address.split(".")
        if len(parts) != 4:
            raise ValueError(f"expected 4 octets in {address!r}")
        value = 0
        for part in parts:
            if not part or not part.isascii() or not part.isdigit() or len(part) > 3:
                raise ValueError(f"bad octet {part!r} in {address!r}")
            if len(part) > 1 and part[0] == "0":
                raise ValueError(f"leading zero in octet {part!r}")
            octet = int(part)
            if octet > 255:
                raise ValueError(f"octet {octet} > 255 in {address!r}")
            value = (value << 8) | octet
        return value


    def cidr_contains(network: str, address: str) -> bool:
        """True if `address` is inside the CIDR block `network` ("a.b.c.d/len")."""
        base, sep, length = network.partition("/")
        if not sep or not length.isdigit() or not 0 <= int(length) <= 32:
            raise ValueError(f"bad prefix in {network!r}")
        mask = (0xFFFFFFFF << (32 - int(length))) & 0xFFFFFFFF
        return ipv4_to_int(base) & mask == ipv4_to_int(address) & mask
    ''',
    tests='''
    assert ipv4_to_int("0.0.0.0") == 0
    assert ipv4_to_int("255.255.255.255") == 2**32 - 1
    assert ipv4_to_int("192.168.1.10") == 3232235786
    assert cidr_contains("10.0.0.0/8", "10.255.3.4")
    assert not cidr_contains("10.0.0.0/8", "11.0.0.1")
    assert cidr_contains("0.0.0.0/0", "8.8.8.8")
    assert cidr_contains("192.168.1.7/32", "192.168.1.7") and not cidr_contains("192.168.1.7/32", "192.168.1.8")
    assert cidr_contains("172.16.0.0/12", "172.31.255.255") and not cidr_contains("172.16.0.0/12", "172.32.0.0")
    for bad in ["1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1..3.4", " 1.2.3.4", "+1.2.3.4", "a.b.c.d"]:
        try:
            ipv4_to_int(bad)
        except ValueError:
            pass
        else:
            raise AssertionError(bad)
    try:
        cidr_contains("10.0.0.0/33", "10.0.0.1")
    except ValueError:
        pass
    else:
        raise AssertionError("prefix 33")
    ''',
)

example(
    "ipaddress.collapse_addresses", "# sort and dedup", 8,
    problem='''
    Write `merge_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]` that collapses
    closed integer ranges `(start, end)` (with `start <= end`) into the minimal sorted list of
    disjoint ranges covering exactly the same integers. Because the ranges are of integers,
    adjacent ranges merge too: `(1, 3)` and `(4, 6)` become `(1, 6)`. Raise `ValueError` for a
    range with `start > end`. The input may be unsorted and contain duplicates.
    ''',
    solution='''
    def merge_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """Minimal sorted disjoint cover of the integer ranges (adjacent ranges merge)."""
        for start, end in ranges:
            if start > end:
                raise ValueError(f"bad range ({start}, {end})")
        merged: list[tuple[int, int]] = []
        for start, end in sorted(ranges):
            if merged and start <= merged[-1][1] + 1:
                last_start, last_end = merged[-1]
                merged[-1] = (last_start, max(last_end, end))
            else:
                merged.append((start, end))
        return merged
    ''',
    tests='''
    assert merge_ranges([]) == []
    assert merge_ranges([(1, 3), (4, 6)]) == [(1, 6)]
    assert merge_ranges([(1, 3), (5, 6)]) == [(1, 3), (5, 6)]
    assert merge_ranges([(10, 20), (1, 5), (3, 12)]) == [(1, 20)]
    assert merge_ranges([(5, 5), (5, 5), (7, 7)]) == [(5, 5), (7, 7)]
    assert merge_ranges([(1, 10), (2, 3)]) == [(1, 10)]
    assert merge_ranges([(-5, -1), (0, 0)]) == [(-5, 0)]
    try:
        merge_ranges([(3, 1)])
    except ValueError:
        pass
    else:
        raise AssertionError("start > end must raise")
    ''',
)

example(
    "fractions.Fraction.limit_denominator", "p0, q0, p1, q1 = 0, 1, 1, 0", 12,
    problem='''
    Write `best_rational(num: int, den: int, max_den: int) -> tuple[int, int]` that returns the
    fraction `p/q` closest to `num/den` among all fractions with `1 <= q <= max_den`, in lowest
    terms with a positive denominator. Use continued fractions (convergents and semiconvergents)
    rather than trying every denominator. On a tie between two candidates, return the one with
    the smaller denominator, and if the denominators are equal too (possible only for
    `max_den == 1`), the smaller of the two. Raise `ValueError` if `den == 0` or `max_den < 1`.
    Negative inputs must work.
    ''',
    solution='''
    from fractions import Fraction
    from math import gcd


    def best_rational(num: int, den: int, max_den: int) -> tuple[int, int]:
        """Closest p/q to num/den with q <= max_den (lowest terms, q > 0)."""
        if den == 0:
            raise ValueError("zero denominator")
        if max_den < 1:
            raise ValueError("max_den must be >= 1")
        if den < 0:
            num, den = -num, -den
        g = gcd(num, den)
        num, den = num // g, den // g
        if den <= max_den:
            return num, den
        p0, q0, p1, q1 = 0, 1, 1, 0
        n, d = num, den
        while True:
            a = n // d
            q2 = q0 + a * q1
            if q2 > max_den:
                break
            p0, q0, p1, q1 = p1, q1, p0 + a * p1, q2
            n, d = d, n - a * d
        k = (max_den - q0) // q1
        # The best approximations from either side: a semiconvergent and the last convergent.
        candidates = [(p0 + k * p1, q0 + k * q1), (p1, q1)]
        target = Fraction(num, den)
        return min(candidates, key=lambda pq: (abs(Fraction(*pq) - target), pq[1], Fraction(*pq)))
    ''',
    tests='''
    assert best_rational(314159265, 100000000, 10) == (22, 7)
    assert best_rational(314159265, 100000000, 100) == (311, 99)
    assert best_rational(314159265, 100000000, 1000) == (355, 113)
    assert best_rational(4321, 8765, 10000) == (4321, 8765)
    assert best_rational(-1, 3, 2) == (-1, 2)
    assert best_rational(6, -4, 1) == (-2, 1)
    assert best_rational(5, 2, 1) == (2, 1)
    assert best_rational(10, 4, 2) == (5, 2)
    from fractions import Fraction
    for n, d, m in [(1, 7, 5), (123, 457, 20), (-99, 70, 11), (2718281828, 1000000000, 50)]:
        f = Fraction(n, d).limit_denominator(m)
        assert best_rational(n, d, m) == (f.numerator, f.denominator)
    for bad in [(1, 0, 5), (1, 2, 0)]:
        try:
            best_rational(*bad)
        except ValueError:
            pass
        else:
            raise AssertionError(bad)
    ''',
)

example(
    "tarfile.nti", "if s[0] in (0o200, 0o377):", 14,
    problem='''
    Tar headers store numbers in fixed-width fields. Write `parse_number_field(field: bytes) ->
    int` that decodes one such field. Two encodings exist: (1) ASCII octal digits, optionally
    surrounded by spaces and terminated by a NUL byte (everything from the first NUL on is
    ignored; an all-blank field is 0); (2) base-256 (GNU extension): if the first byte is 0x80
    the remaining bytes are a big-endian unsigned number, and if it is 0xFF the remaining bytes
    are a big-endian two's-complement negative number. Raise `ValueError` for invalid octal
    text or an empty field.
    ''',
    solution='''
    def parse_number_field(field: bytes) -> int:
        """Decodes a tar header number field (octal ASCII or GNU base-256)."""
        if not field:
            raise ValueError("empty field")
        if field[0] in (0x80, 0xFF):
            value = int.from_bytes(field[1:], "big")
            if field[0] == 0xFF:
                value -= 256 ** (len(field) - 1)
            return value
        text = field.split(b"\\0", 1)[0].decode("ascii").strip()
        if not text:
            return 0
        if any(ch not in "01234567" for ch in text):
            raise ValueError(f"invalid octal field {field!r}")
        return int(text, 8)
    ''',
    tests='''
    assert parse_number_field(b"0000644\\0") == 0o644
    assert parse_number_field(b"00000001750\\0") == 1000
    assert parse_number_field(b"   17 \\0garbage") == 15
    assert parse_number_field(b"\\0\\0\\0\\0") == 0
    assert parse_number_field(b"        ") == 0
    assert parse_number_field(b"\\x80\\x00\\x00\\x01\\x00") == 256
    assert parse_number_field(b"\\xff\\xff\\xff\\xff") == -1
    assert parse_number_field(b"\\xff\\xff\\xfe\\x00") == -512
    for bad in [b"", b"0009\\0", b"12x\\0"]:
        try:
            parse_number_field(bad)
        except ValueError:
            pass
        else:
            raise AssertionError(bad)
    ''',
)

example(
    "zipfile._gen_crc", "for j in range(8):", 6,
    problem='''
    Implement the CRC-32 checksum used by zip, gzip and PNG in pure Python:
    `crc32(data: bytes, value: int = 0) -> int`. Use the reflected polynomial 0xEDB88320,
    an initial register of 0xFFFFFFFF and a final XOR with 0xFFFFFFFF, processing a byte at a
    time with a precomputed 256-entry table (build it once, at import time). The optional
    `value` continues a running checksum, so that `crc32(b, crc32(a)) == crc32(a + b)`. The
    result must equal `zlib.crc32` for every input.
    ''',
    solution='''
    def _make_table() -> list[int]:
        table = []
        for byte in range(256):
            crc = byte
            for _ in range(8):
                crc = (crc >> 1) ^ 0xEDB88320 if crc & 1 else crc >> 1
            table.append(crc)
        return table


    _CRC_TABLE = _make_table()


    def crc32(data: bytes, value: int = 0) -> int:
        """CRC-32 (IEEE 802.3) of `data`, continuing from the checksum `value`."""
        crc = value ^ 0xFFFFFFFF
        for byte in data:
            crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
        return crc ^ 0xFFFFFFFF
    ''',
    tests='''
    import zlib
    assert crc32(b"") == 0
    assert crc32(b"123456789") == 0xCBF43926
    assert crc32(b"The quick brown fox jumps over the lazy dog") == 0x414FA339
    assert crc32(b"\\x00") == zlib.crc32(b"\\x00")
    assert crc32(b"world", crc32(b"hello ")) == crc32(b"hello world")
    blob = bytes(range(256)) * 3
    assert crc32(blob) == zlib.crc32(blob)
    assert crc32(b"abc", 12345) == zlib.crc32(b"abc", 12345)
    ''',
)

example(
    "tarfile.calc_chksums", "unsigned_chksum = 256", 3,
    problem='''
    A tar header block is 512 bytes; bytes 148..155 hold its checksum. Write
    `tar_checksum(header: bytes) -> int` that computes the checksum as the sum of all 512 byte
    values (unsigned) with the 8 checksum bytes counted as ASCII spaces (value 32 each), and
    `verify_tar_header(header: bytes) -> bool` which parses the stored checksum (octal digits,
    possibly followed by NUL and/or space) and compares. `tar_checksum` raises `ValueError`
    unless `len(header) == 512`; `verify_tar_header` returns False for an unparsable stored
    checksum.
    ''',
    solution='''
    def tar_checksum(header: bytes) -> int:
        """Unsigned tar header checksum: the checksum field counts as eight spaces."""
        if len(header) != 512:
            raise ValueError("a tar header is 512 bytes")
        return sum(header[:148]) + 8 * 32 + sum(header[156:])


    def verify_tar_header(header: bytes) -> bool:
        """True if the header's stored octal checksum matches its contents."""
        stored = header[148:156].split(b"\\0", 1)[0].strip()
        try:
            expected = int(stored.decode("ascii"), 8)
        except ValueError:
            return False
        return expected == tar_checksum(header)
    ''',
    tests='''
    import io, tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        info = tarfile.TarInfo("hello.txt")
        info.size = 5
        tf.addfile(info, io.BytesIO(b"hello"))
    header = buf.getvalue()[:512]
    assert verify_tar_header(header)
    assert tar_checksum(header) == int(header[148:154].decode(), 8)
    assert tar_checksum(bytes(512)) == 256
    corrupted = header[:0] + b"j" + header[1:]
    assert not verify_tar_header(corrupted)
    assert tar_checksum(corrupted) == tar_checksum(header) + ord("j") - header[0]
    assert not verify_tar_header(header[:148] + b"zzzzzzz\\0" + header[156:])
    try:
        tar_checksum(b"short")
    except ValueError:
        pass
    else:
        raise AssertionError("length check")
    ''',
)
