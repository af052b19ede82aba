"""Builds `demo_seed.jsonl`: the bundled seed set for the demo.

These examples are hand-written stand-ins for a teacher's output (what a strong proprietary
model produces from a snippet in OSS-Instruct style): each pairs a short excerpt of a function
from the CPython standard library with a self-contained problem it inspired, a typed solution
with a docstring, and asserts that test it. The problems, solutions and tests are literals
below; only the snippet text is cut out of the running interpreter's standard-library source
(the module's source from the line holding `anchor` inside the named function, `n` lines),
so it is a faithful excerpt. Run from the repository root:

    python tests/assets/build_demo_seed.py

It lives outside the package (a wheel carries only the data it writes).

The set is kept clear of HumanEval and MBPP (tests/test_seed_set.py checks it).
"""

from __future__ import annotations

import importlib
import inspect
import sys
import textwrap
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scoder_jax.io import write_jsonl_atomic  # noqa: E402
from scoder_jax.records import content_id  # noqa: E402

OUT = Path(__file__).resolve().parents[2] / "scoder_jax" / "data" / "seed" / "demo_seed.jsonl"
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

example(
    "html.unescape", "if '&' not in s:", 3,
    problem='''
    Write `html_to_text(markup: str) -> str` that extracts the visible text from a small HTML
    fragment: remove every tag (`<...>`; a `>` inside a quoted attribute value need not be
    handled), drop the contents of `<script>` and `<style>` elements entirely
    (case-insensitive), decode the entities `&amp;`, `&lt;`, `&gt;`, `&quot;`, `&#39;` and numeric
    references such as `&#65;` and `&#x41;`, and finally collapse runs of whitespace to one space
    and strip the ends. Unknown entities are left as they are. Do not use `html.parser`.
    ''',
    solution='''
    import re

    _NAMED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "#39": "'"}


    def _entity(match: "re.Match[str]") -> str:
        name = match.group(1)
        if name in _NAMED:
            return _NAMED[name]
        if name[:2].lower() == "#x":
            return chr(int(name[2:], 16))
        if name[:1] == "#" and name[1:].isdigit():
            return chr(int(name[1:]))
        return match.group(0)


    def html_to_text(markup: str) -> str:
        """Visible text of an HTML fragment: no tags, no script/style, entities decoded."""
        text = re.sub(r"(?is)<(script|style)\\b.*?</\\1\\s*>", " ", markup)
        text = re.sub(r"<[^>]*>", " ", text)
        text = re.sub(r"&(#[xX][0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+|#39);", _entity, text)
        return " ".join(text.split())
    ''',
    tests='''
    assert html_to_text("<p>Hello <b>world</b></p>") == "Hello world"
    assert html_to_text("a &amp; b &lt;tag&gt;") == "a & b <tag>"
    assert html_to_text("&#65;&#x42;&#X43;") == "ABC"
    assert html_to_text("<SCRIPT>var x = '<b>';</script>kept") == "kept"
    assert html_to_text("<style type='text/css'>p {}</style><div>  x \\n y </div>") == "x y"
    assert html_to_text("&copy; &bogus;") == "&copy; &bogus;"
    assert html_to_text("") == ""
    assert html_to_text("say &quot;hi&quot; &#39;you&#39;") == 'say "hi" \\'you\\''
    ''',
)

example(
    "urllib.parse.parse_qsl", "r = []", 12,
    problem='''
    Implement `parse_query(query: str) -> dict[str, list[str]]` for URL query strings such as
    `"a=1&b=x+y&a=2"`. Pairs are separated by `&`; each pair is split at its first `=`; a pair
    without `=` has the empty string as value; empty pairs (from `&&` or a trailing `&`) are
    skipped. In names and values, `+` means a space and `%XX` is a percent-encoded UTF-8 byte
    (decode the bytes of a whole name or value together, so multi-byte characters work). A
    leading `?` is ignored. Values of repeated names are collected in order. Malformed escapes
    (`%` not followed by two hex digits) are kept literally. Do not use `urllib`.
    ''',
    solution='''
    _HEX = "0123456789abcdefABCDEF"


    def _unquote_plus(text: str) -> str:
        raw = bytearray()
        i = 0
        while i < len(text):
            ch = text[i]
            if ch == "+":
                raw += b" "
            elif ch == "%" and len(text[i + 1 : i + 3]) == 2 and all(c in _HEX for c in text[i + 1 : i + 3]):
                raw.append(int(text[i + 1 : i + 3], 16))
                i += 2
            else:
                raw += ch.encode("utf-8")
            i += 1
        return raw.decode("utf-8", errors="replace")


    def parse_query(query: str) -> dict[str, list[str]]:
        """Parses a URL query string into {name: [values...]} (plus and percent decoding)."""
        if query.startswith("?"):
            query = query[1:]
        result: dict[str, list[str]] = {}
        for pair in query.split("&"):
            if not pair:
                continue
            name, _, value = pair.partition("=")
            result.setdefault(_unquote_plus(name), []).append(_unquote_plus(value))
        return result
    ''',
    tests='''
    assert parse_query("a=1&b=x+y&a=2") == {"a": ["1", "2"], "b": ["x y"]}
    assert parse_query("?q=caf%C3%A9") == {"q": ["café"]}
    assert parse_query("flag&x=") == {"flag": [""], "x": [""]}
    assert parse_query("&&a=b&") == {"a": ["b"]}
    assert parse_query("") == {}
    assert parse_query("eq=a=b") == {"eq": ["a=b"]}
    assert parse_query("p=100%&r=%2") == {"p": ["100%"], "r": ["%2"]}
    assert parse_query("k%20ey=%2B1") == {"k ey": ["+1"]}
    ''',
)

example(
    "urllib.parse.quote_from_bytes", "if not bs:", 10,
    problem='''
    Write `percent_encode(text: str, safe: str = "/") -> str` that percent-encodes a string for
    use in a URL path: encode it as UTF-8, keep the unreserved bytes `A-Z a-z 0-9 - . _ ~` and
    any ASCII characters listed in `safe` unchanged, and replace every other byte with `%XX`
    using upper-case hex digits. Non-ASCII characters in `safe` are ignored (they are still
    encoded). The result is always pure ASCII. Do not use `urllib`.
    ''',
    solution='''
    _UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


    def percent_encode(text: str, safe: str = "/") -> str:
        """Percent-encodes the UTF-8 bytes of `text`, keeping unreserved and `safe` ASCII."""
        keep = _UNRESERVED | {ord(c) for c in safe if ord(c) < 128}
        return "".join(chr(b) if b in keep else f"%{b:02X}" for b in text.encode("utf-8"))
    ''',
    tests='''
    assert percent_encode("abc def?") == "abc%20def%3F"
    assert percent_encode("/a b/c") == "/a%20b/c"
    assert percent_encode("/a b/c", safe="") == "%2Fa%20b%2Fc"
    assert percent_encode("café") == "caf%C3%A9"
    assert percent_encode("~user_1.2-x") == "~user_1.2-x"
    assert percent_encode("a+b=c", safe="+=") == "a+b=c"
    assert percent_encode("é", safe="é") == "%C3%A9"
    assert percent_encode("") == ""
    import urllib.parse
    assert percent_encode("100% sure & ready/now") == urllib.parse.quote("100% sure & ready/now")
    ''',
)

example(
    "json.encoder.py_encode_basestring", "def replace(match):", 3,
    problem='''
    Write `json_quote(s: str, ascii_only: bool = False) -> str` that returns the JSON string
    literal for `s`, including the surrounding double quotes, without using the `json` module.
    Escape `"` and `\\\\` with a backslash; use the short escapes `\\\\n`, `\\\\r`, `\\\\t`, `\\\\b`,
    `\\\\f`; escape every other character below U+0020 as `\\\\u00XX` (lower-case hex). When
    `ascii_only` is true, also escape every non-ASCII character as `\\\\uXXXX`, writing characters
    outside the Basic Multilingual Plane as a UTF-16 surrogate pair. The result must parse back
    to `s` with `json.loads`.
    ''',
    solution='''
    _SHORT = {'"': '\\\\"', "\\\\": "\\\\\\\\", "\\n": "\\\\n", "\\r": "\\\\r", "\\t": "\\\\t", "\\b": "\\\\b", "\\f": "\\\\f"}


    def json_quote(s: str, ascii_only: bool = False) -> str:
        """The JSON string literal of `s` (with quotes); optionally pure ASCII."""
        out = ['"']
        for ch in s:
            code = ord(ch)
            if ch in _SHORT:
                out.append(_SHORT[ch])
            elif code < 0x20:
                out.append(f"\\\\u{code:04x}")
            elif ascii_only and code > 0x7E:
                if code > 0xFFFF:
                    code -= 0x10000
                    out.append(f"\\\\u{0xD800 | (code >> 10):04x}\\\\u{0xDC00 | (code & 0x3FF):04x}")
                else:
                    out.append(f"\\\\u{code:04x}")
            else:
                out.append(ch)
        out.append('"')
        return "".join(out)
    ''',
    tests='''
    import json
    assert json_quote("plain") == '"plain"'
    assert json_quote('say "hi"\\n') == '"say \\\\"hi\\\\"\\\\n"'
    assert json_quote("a\\\\b") == '"a\\\\\\\\b"'
    assert json_quote("\\x01\\x1f") == '"\\\\u0001\\\\u001f"'
    assert json_quote("é") == '"é"'
    assert json_quote("é", ascii_only=True) == '"\\\\u00e9"'
    assert json_quote("😀", ascii_only=True) == '"\\\\ud83d\\\\ude00"'
    for s in ["", "tab\\there", "mixed é😀\\x00\\u2028", "\\x7f"]:
        assert json.loads(json_quote(s)) == s and json.loads(json_quote(s, True)) == s
        assert json_quote(s, True) == json.dumps(s)
    ''',
)

example(
    "string.Template.substitute", "def convert(mo):", 11,
    problem='''
    Write `render(template: str, values: dict[str, object]) -> str` implementing a tiny template
    language: `{{ name }}` (spaces inside the braces optional) is replaced by `str(values[name])`;
    names may contain dots to reach into nested dicts (`{{ user.name }}` looks up
    `values["user"]["name"]`); `{{{{` produces a literal `{{`. A missing name raises
    `KeyError` with the full dotted name as its argument; a placeholder whose name is not made of
    identifier parts separated by dots (e.g. `{{ 1x }}` or `{{ }}`) raises `ValueError`.
    Replacement text is not re-scanned for placeholders.
    ''',
    solution='''
    import re

    _TOKEN = re.compile(r"\\{\\{\\{\\{|\\{\\{(.*?)\\}\\}")


    def render(template: str, values: dict[str, object]) -> str:
        """Fills `{{ dotted.name }}` placeholders from `values`; `{{{{` escapes `{{`."""

        def fill(match: "re.Match[str]") -> str:
            if match.group(0) == "{{{{":
                return "{{"
            name = match.group(1).strip()
            parts = name.split(".")
            if not name or not all(p.isidentifier() for p in parts):
                raise ValueError(f"bad placeholder {match.group(0)!r}")
            value: object = values
            for part in parts:
                if not isinstance(value, dict) or part not in value:
                    raise KeyError(name)
                value = value[part]
            return str(value)

        return _TOKEN.sub(fill, template)
    ''',
    tests='''
    assert render("Hello, {{name}}!", {"name": "Ada"}) == "Hello, Ada!"
    assert render("{{ a }}+{{b}}={{ c }}", {"a": 1, "b": 2, "c": 3}) == "1+2=3"
    assert render("{{ user.name }} ({{user.age}})", {"user": {"name": "Bo", "age": 7}}) == "Bo (7)"
    assert render("literal {{{{x}}", {}) == "literal {{x}}"
    assert render("{{x}}", {"x": "{{y}}"}) == "{{y}}"
    assert render("no placeholders", {}) == "no placeholders"
    try:
        render("{{ user.email }}", {"user": {"name": "Bo"}})
    except KeyError as e:
        assert e.args[0] == "user.email"
    else:
        raise AssertionError("missing name")
    for bad in ["{{ 1x }}", "{{ }}", "{{a..b}}"]:
        try:
            render(bad, {"a": {"b": 1}})
        except ValueError:
            pass
        else:
            raise AssertionError(bad)
    ''',
)

example(
    "reprlib.Repr.repr_str", "s = builtins.repr(x[:self.maxstring])", 7,
    problem='''
    Write `ellipsize_middle(text: str, max_len: int, filler: str = "...") -> str` that shortens
    a string to at most `max_len` characters by cutting out its middle and inserting `filler`,
    keeping as much of both ends as possible; when the characters kept cannot be split evenly,
    keep one more at the start. Strings that already fit are returned unchanged. If `max_len` is
    smaller than the filler, return the filler truncated to `max_len`. Raise `ValueError` for a
    negative `max_len`.
    ''',
    solution='''
    def ellipsize_middle(text: str, max_len: int, filler: str = "...") -> str:
        """`text` shortened to `max_len` characters by replacing its middle with `filler`."""
        if max_len < 0:
            raise ValueError("max_len must be >= 0")
        if len(text) <= max_len:
            return text
        if max_len <= len(filler):
            return filler[:max_len]
        keep = max_len - len(filler)
        head = (keep + 1) // 2
        tail = keep - head
        return text[:head] + filler + (text[len(text) - tail:] if tail else "")
    ''',
    tests='''
    assert ellipsize_middle("abcdefghij", 10) == "abcdefghij"
    assert ellipsize_middle("abcdefghij", 9) == "abc...hij"
    assert ellipsize_middle("abcdefghij", 8) == "abc...ij"
    assert ellipsize_middle("abcdefghij", 4) == "a..."
    assert ellipsize_middle("abcdefghij", 3) == "..."
    assert ellipsize_middle("abcdefghij", 2) == ".."
    assert ellipsize_middle("abcdefghij", 7, filler="~") == "abc~hij"
    assert ellipsize_middle("", 0) == ""
    try:
        ellipsize_middle("x", -1)
    except ValueError:
        pass
    else:
        raise AssertionError("negative max_len")
    ''',
)

example(
    "random.Random.choices", "bisect = _bisect", 4,
    problem='''
    Write `weighted_pick(items: list[str], weights: list[float], draws: list[float]) ->
    list[str]` that maps each number `u` in `draws` (each in `[0, 1)`, as produced by
    `random.random()`) to an item, where item `i` owns the sub-interval of `[0, total)`
    proportional to `weights[i]`: build cumulative weights once and use binary search
    (`bisect`), so each draw costs O(log n). Zero weights are allowed and such items are never
    chosen. Raise `ValueError` if the lists differ in length, if any weight is negative, or if
    the total weight is not positive.
    ''',
    solution='''
    from bisect import bisect_right
    from itertools import accumulate


    def weighted_pick(items: list[str], weights: list[float], draws: list[float]) -> list[str]:
        """Deterministic weighted selection: each u in [0, 1) picks the item owning u * total."""
        if len(items) != len(weights):
            raise ValueError("items and weights differ in length")
        if any(w < 0 for w in weights):
            raise ValueError("negative weight")
        cumulative = list(accumulate(weights))
        total = cumulative[-1] if cumulative else 0.0
        if total <= 0:
            raise ValueError("total weight must be positive")
        last = len(items) - 1
        return [items[min(bisect_right(cumulative, u * total), last)] for u in draws]
    ''',
    tests='''
    items = ["a", "b", "c"]
    assert weighted_pick(items, [1, 1, 2], [0.0, 0.24, 0.25, 0.49, 0.5, 0.99]) == ["a", "a", "b", "b", "c", "c"]
    assert weighted_pick(items, [0, 5, 0], [0.0, 0.5, 0.999]) == ["b", "b", "b"]
    assert weighted_pick(items, [1, 0, 1], [0.4999, 0.5]) == ["a", "c"]
    assert weighted_pick(["x"], [3.5], [0.0, 0.7]) == ["x", "x"]
    assert weighted_pick(items, [1, 2, 3], []) == []
    import random
    rng = random.Random(11)
    draws = [rng.random() for _ in range(20000)]
    picked = weighted_pick(items, [1, 2, 7], draws)
    assert abs(picked.count("c") / 20000 - 0.7) < 0.02
    for args in [(items, [1, 2], [0.1]), (items, [1, -1, 1], [0.1]), (items, [0, 0, 0], [0.1]), ([], [], [0.1])]:
        try:
            weighted_pick(*args)
        except ValueError:
            pass
        else:
            raise AssertionError(args)
    ''',
)

example(
    "colorsys.rgb_to_hls", "maxc = max(r, g, b)", 11,
    problem='''
    Write `hex_to_hsl(color: str) -> tuple[int, int, int]` that converts a CSS hex color
    (`"#rrggbb"` or the short form `"#rgb"`, case-insensitive, `#` required) to HSL with hue in
    degrees 0..359 and saturation and lightness in percent 0..100, each rounded to the nearest
    integer (a hue that rounds to 360 becomes 0). Grays have hue 0 and saturation 0. Raise
    `ValueError` for anything else. Implement the conversion yourself (no `colorsys`).
    ''',
    solution='''
    def hex_to_hsl(color: str) -> tuple[int, int, int]:
        """CSS hex color -> (hue degrees, saturation %, lightness %), rounded."""
        if not color.startswith("#") or len(color) not in (4, 7):
            raise ValueError(f"bad color {color!r}")
        digits = color[1:]
        if any(c not in "0123456789abcdefABCDEF" for c in digits):
            raise ValueError(f"bad color {color!r}")
        if len(digits) == 3:
            digits = "".join(c * 2 for c in digits)
        r, g, b = (int(digits[i : i + 2], 16) / 255 for i in (0, 2, 4))
        hi, lo = max(r, g, b), min(r, g, b)
        light = (hi + lo) / 2
        if hi == lo:
            return 0, 0, round(light * 100)
        delta = hi - lo
        sat = delta / (1 - abs(2 * light - 1))
        if hi == r:
            hue = ((g - b) / delta) % 6
        elif hi == g:
            hue = (b - r) / delta + 2
        else:
            hue = (r - g) / delta + 4
        return round(hue * 60) % 360, round(sat * 100), round(light * 100)
    ''',
    tests='''
    assert hex_to_hsl("#ff0000") == (0, 100, 50)
    assert hex_to_hsl("#00FF00") == (120, 100, 50)
    assert hex_to_hsl("#00f") == (240, 100, 50)
    assert hex_to_hsl("#ffffff") == (0, 0, 100)
    assert hex_to_hsl("#000") == (0, 0, 0)
    assert hex_to_hsl("#808080") == (0, 0, 50)
    assert hex_to_hsl("#ff00ff") == (300, 100, 50)
    assert hex_to_hsl("#336699") == (210, 50, 40)
    for bad in ["ff0000", "#ff00", "#gg0000", "#ff00000", ""]:
        try:
            hex_to_hsl(bad)
        except ValueError:
            pass
        else:
            raise AssertionError(bad)
    ''',
)

example(
    "base64._b32encode", "leftover = len(s) % 5", 14,
    problem='''
    Crockford's Base32 encodes integers with the alphabet `0123456789ABCDEFGHJKMNPQRSTVWXYZ`
    (no I, L, O, U). Write `crockford_encode(n: int) -> str` (most significant digit first,
    `0` encodes as `"0"`, negative numbers raise `ValueError`) and `crockford_decode(s: str) ->
    int`, which is case-insensitive, ignores hyphens, reads `O`/`o` as 0 and `I`, `i`, `L`, `l`
    as 1, and raises `ValueError` for an empty string or any other character (including `U`).
    ''',
    solution='''
    _ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    _DECODE = {c: i for i, c in enumerate(_ALPHABET)}
    _DECODE.update({"O": 0, "I": 1, "L": 1})


    def crockford_encode(n: int) -> str:
        """Crockford Base32 digits of a non-negative integer."""
        if n < 0:
            raise ValueError("negative numbers are not encodable")
        digits = []
        while True:
            n, r = divmod(n, 32)
            digits.append(_ALPHABET[r])
            if n == 0:
                return "".join(reversed(digits))


    def crockford_decode(s: str) -> int:
        """Integer value of Crockford Base32 text (lenient about case, hyphens, O/I/L)."""
        cleaned = s.replace("-", "").upper()
        if not cleaned:
            raise ValueError("empty input")
        value = 0
        for ch in cleaned:
            if ch not in _DECODE:
                raise ValueError(f"invalid character {ch!r}")
            value = value * 32 + _DECODE[ch]
        return value
    ''',
    tests='''
    assert crockford_encode(0) == "0"
    assert crockford_encode(31) == "Z"
    assert crockford_encode(32) == "10"
    assert crockford_encode(1234567890) == "14SC0PJ"
    assert crockford_decode("14sc0pj") == 1234567890
    assert crockford_decode("14S-C0P-J") == 1234567890
    assert crockford_decode("oIl") == crockford_decode("011") == 33
    for n in [1, 7, 999, 2**64 + 5]:
        assert crockford_decode(crockford_encode(n)) == n
    for bad in ["", "U", "12*3", "--"]:
        try:
            crockford_decode(bad)
        except ValueError:
            pass
        else:
            raise AssertionError(bad)
    try:
        crockford_encode(-1)
    except ValueError:
        pass
    else:
        raise AssertionError("negative")
    ''',
)

example(
    "uuid.UUID.__init__", "hex = hex.replace('urn:', '').replace('uuid:', '')", 5,
    problem='''
    Write `canonical_uuid(text: str) -> str` that accepts a UUID in any of the usual spellings
    (`"{12345678-1234-5678-1234-567812345678}"`, `"12345678123456781234567812345678"`,
    `"urn:uuid:12345678-1234-5678-1234-567812345678"`, any letter case, surrounding whitespace)
    and returns the canonical lower-case 8-4-4-4-12 hyphenated form. Hyphens, when present,
    must be exactly in the canonical positions; braces must come as a pair. Raise `ValueError`
    for anything that is not 32 hex digits after removing the allowed decorations. Do not use
    the `uuid` module.
    ''',
    solution='''
    import re

    _HEX32 = re.compile(r"[0-9a-f]{32}")
    _HYPHENATED = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


    def canonical_uuid(text: str) -> str:
        """The canonical 8-4-4-4-12 lower-case form of a UUID string."""
        s = text.strip().lower()
        if s.startswith("urn:uuid:"):
            s = s[len("urn:uuid:"):]
        elif s.startswith("{") and s.endswith("}"):
            s = s[1:-1]
        if _HYPHENATED.fullmatch(s):
            s = s.replace("-", "")
        elif not _HEX32.fullmatch(s):
            raise ValueError(f"not a UUID: {text!r}")
        return f"{s[:8]}-{s[8:12]}-{s[12:16]}-{s[16:20]}-{s[20:]}"
    ''',
    tests='''
    canon = "12345678-1234-5678-1234-567812345678"
    assert canonical_uuid("{12345678-1234-5678-1234-567812345678}") == canon
    assert canonical_uuid("12345678123456781234567812345678") == canon
    assert canonical_uuid("urn:uuid:12345678-1234-5678-1234-567812345678") == canon
    assert canonical_uuid("  URN:UUID:ABCDEF01-2345-6789-ABCD-EF0123456789 ") == "abcdef01-2345-6789-abcd-ef0123456789"
    assert canonical_uuid("{ABCDEF0123456789ABCDEF0123456789}") == "abcdef01-2345-6789-abcd-ef0123456789"
    import uuid
    u = uuid.UUID(int=0x0123456789ABCDEF0123456789ABCDEF)
    assert canonical_uuid(u.hex.upper()) == str(u)
    for bad in ["1234567-81234-5678-1234-567812345678", "{12345678123456781234567812345678", "g" * 32, "1234", ""]:
        try:
            canonical_uuid(bad)
        except ValueError:
            pass
        else:
            raise AssertionError(bad)
    ''',
)

example(
    "graphlib.TopologicalSorter.static_order", "self.prepare()", 5,
    problem='''
    A build tool stores, for every target, the list of targets it depends on. Write
    `build_order(deps: dict[str, list[str]]) -> list[str]` returning an order in which every
    target comes after all of its dependencies. Targets that appear only as dependencies are
    included too. Among all valid orders return the lexicographically smallest one (always
    pick the alphabetically first target that is ready). If the dependencies contain a cycle,
    raise `ValueError` whose message names one target on the cycle. Self-dependencies are
    cycles. Do not use `graphlib`.
    ''',
    solution='''
    import heapq


    def build_order(deps: dict[str, list[str]]) -> list[str]:
        """Lexicographically smallest topological order of the dependency graph (Kahn + heap)."""
        nodes = set(deps) | {d for ds in deps.values() for d in ds}
        pending = {n: 0 for n in nodes}
        users: dict[str, list[str]] = {n: [] for n in nodes}
        for target, ds in deps.items():
            for d in set(ds):
                pending[target] += 1
                users[d].append(target)
        ready = [n for n in nodes if pending[n] == 0]
        heapq.heapify(ready)
        order = []
        while ready:
            node = heapq.heappop(ready)
            order.append(node)
            for user in users[node]:
                pending[user] -= 1
                if pending[user] == 0:
                    heapq.heappush(ready, user)
        if len(order) != len(nodes):
            stuck = sorted(n for n in nodes if pending[n] > 0)
            raise ValueError(f"dependency cycle involving {stuck[0]!r}")
        return order
    ''',
    tests='''
    assert build_order({}) == []
    assert build_order({"app": ["lib", "util"], "lib": ["util"]}) == ["util", "lib", "app"]
    assert build_order({"b": [], "a": [], "c": []}) == ["a", "b", "c"]
    assert build_order({"z": ["y"], "b": ["y"], "y": []}) == ["y", "b", "z"]
    assert build_order({"x": ["m", "m"]}) == ["m", "x"]
    order = build_order({"d": ["b", "c"], "b": ["a"], "c": ["a"], "e": []})
    assert order == ["a", "b", "c", "d", "e"]
    for cyclic in [{"a": ["b"], "b": ["a"]}, {"a": ["a"]}, {"a": ["b"], "b": ["c"], "c": ["a"], "d": []}]:
        try:
            build_order(cyclic)
        except ValueError as e:
            assert "'a'" in str(e)
        else:
            raise AssertionError(cyclic)
    ''',
)

example(
    "hmac.HMAC._init_old", "if len(key) > blocksize:", 11,
    problem='''
    Implement HMAC-SHA256 (RFC 2104) from its definition, using only `hashlib.sha256`:
    `hmac_sha256(key: bytes, message: bytes) -> str` returns the lower-case hex digest. The
    block size is 64 bytes: keys longer than that are first hashed, then the key is padded with
    zero bytes to 64 bytes; the result is `H((K ^ opad) || H((K ^ ipad) || message))` with
    `ipad` = 0x36 and `opad` = 0x5C repeated. Also write `verify(key: bytes, message: bytes,
    signature: str) -> bool` that compares in constant time (`hmac.compare_digest` is allowed
    for the comparison only) and is case-insensitive about the hex signature.
    ''',
    solution='''
    import hashlib
    import hmac as _hmac

    _BLOCK = 64


    def hmac_sha256(key: bytes, message: bytes) -> str:
        """Hex HMAC-SHA256 of `message` under `key`, computed from the RFC 2104 definition."""
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b"\\0")
        inner = hashlib.sha256(bytes(b ^ 0x36 for b in key) + message).digest()
        return hashlib.sha256(bytes(b ^ 0x5C for b in key) + inner).hexdigest()


    def verify(key: bytes, message: bytes, signature: str) -> bool:
        """Constant-time check of a hex HMAC-SHA256 signature."""
        return _hmac.compare_digest(hmac_sha256(key, message), signature.lower())
    ''',
    tests='''
    import hmac, hashlib
    assert hmac_sha256(b"Jefe", b"what do ya want for nothing?") == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert hmac_sha256(b"", b"") == hmac.new(b"", b"", hashlib.sha256).hexdigest()
    long_key = b"k" * 131
    assert hmac_sha256(long_key, b"msg") == hmac.new(long_key, b"msg", hashlib.sha256).hexdigest()
    key64 = bytes(range(64))
    assert hmac_sha256(key64, b"x" * 1000) == hmac.new(key64, b"x" * 1000, hashlib.sha256).hexdigest()
    sig = hmac_sha256(b"secret", b"payload")
    assert verify(b"secret", b"payload", sig) and verify(b"secret", b"payload", sig.upper())
    assert not verify(b"secret", b"payload!", sig)
    assert not verify(b"Secret", b"payload", sig)
    ''',
)

example(
    "copy.deepcopy", "d = id(x)", 8,
    problem='''
    Configuration layers must be combined. Write `deep_merge(base: dict, override: dict) ->
    dict` returning a new dict where keys of `override` win, except that when both values are
    dicts they are merged recursively. A value of `None` in `override` deletes the key from the
    result. Lists and other values are replaced, not merged. Neither input may be modified, and
    the result must not share any dict or list object with the inputs (mutating the result must
    never affect them).
    ''',
    solution='''
    import copy


    def deep_merge(base: dict, override: dict) -> dict:
        """Recursive merge of two config dicts; `None` in `override` deletes a key."""
        result = copy.deepcopy(base)
        for key, value in override.items():
            if value is None:
                result.pop(key, None)
            elif isinstance(value, dict) and isinstance(result.get(key), dict):
                result[key] = deep_merge(result[key], value)
            else:
                result[key] = copy.deepcopy(value)
        return result
    ''',
    tests='''
    base = {"db": {"host": "localhost", "port": 5432, "opts": {"ssl": False}}, "debug": True, "tags": ["a"]}
    over = {"db": {"port": 6543, "opts": {"ssl": True}}, "debug": None, "tags": ["b"]}
    merged = deep_merge(base, over)
    assert merged == {"db": {"host": "localhost", "port": 6543, "opts": {"ssl": True}}, "tags": ["b"]}
    assert base["db"]["port"] == 5432 and base["debug"] is True and over["tags"] == ["b"]
    merged["db"]["opts"]["ssl"] = "changed"
    merged["tags"].append("c")
    assert over["db"]["opts"]["ssl"] is True and over["tags"] == ["b"]
    assert deep_merge({}, {}) == {}
    assert deep_merge({"a": {"b": 1}}, {"a": 5}) == {"a": 5}
    assert deep_merge({"a": 5}, {"a": {"b": 1}}) == {"a": {"b": 1}}
    assert deep_merge({"a": 1}, {"zzz": None}) == {"a": 1}
    only_base = deep_merge({"x": {"y": [1]}}, {})
    only_base["x"]["y"].append(2)
    assert only_base == {"x": {"y": [1, 2]}}
    ''',
)

example(
    "operator.attrgetter.__init__", "names = attr.split('.')", 6,
    problem='''
    Write `get_path(obj: object, path: str, default: object = None) -> object` that follows a
    dotted path through nested data: at each step, if the current value is a dict the part is a
    key; if it is a list or tuple the part must be an integer index (negative allowed); otherwise
    the part is an attribute name. If any step is missing (absent key, index out of range,
    non-integer index for a sequence, missing attribute) return `default`. An empty path returns
    `obj` itself.
    ''',
    solution='''
    def get_path(obj: object, path: str, default: object = None) -> object:
        """Value at a dotted path through dicts (keys), sequences (indices) and attributes."""
        if path == "":
            return obj
        current = obj
        for part in path.split("."):
            if isinstance(current, dict):
                if part not in current:
                    return default
                current = current[part]
            elif isinstance(current, (list, tuple)):
                try:
                    current = current[int(part)]
                except (ValueError, IndexError):
                    return default
            else:
                try:
                    current = getattr(current, part)
                except AttributeError:
                    return default
        return current
    ''',
    tests='''
    data = {"users": [{"name": "ann", "tags": ("x", "y")}, {"name": "bob"}], "n": 2}
    assert get_path(data, "users.0.name") == "ann"
    assert get_path(data, "users.-1.name") == "bob"
    assert get_path(data, "users.0.tags.1") == "y"
    assert get_path(data, "users.5.name", "?") == "?"
    assert get_path(data, "users.first", "?") == "?"
    assert get_path(data, "missing.key") is None
    assert get_path(data, "") is data
    from types import SimpleNamespace
    ns = SimpleNamespace(cfg={"level": SimpleNamespace(value=3)})
    assert get_path(ns, "cfg.level.value") == 3
    assert get_path(ns, "cfg.level.nothing", 0) == 0
    ''',
)

example(
    "functools._make_key", "key = args", 12,
    problem='''
    Implement an LRU cache as a class `LRUCache` with `__init__(self, capacity: int)`,
    `get(self, key: str) -> int | None` and `put(self, key: str, value: int) -> None`. `get`
    returns the stored value (or `None`) and marks the key as most recently used; `put` inserts
    or updates a key (an update also marks it most recently used) and, when the cache would
    exceed `capacity`, evicts the least recently used key. Both operations must be O(1).
    `capacity` must be positive (`ValueError` otherwise). Also provide `keys(self) -> list[str]`
    returning the keys from least to most recently used.
    ''',
    solution='''
    from collections import OrderedDict


    class LRUCache:
        """Fixed-capacity mapping that evicts the least recently used key."""

        def __init__(self, capacity: int) -> None:
            """An empty cache holding at most `capacity` keys."""
            if capacity <= 0:
                raise ValueError("capacity must be positive")
            self.capacity = capacity
            self._data: OrderedDict[str, int] = OrderedDict()

        def get(self, key: str) -> int | None:
            """The value for `key` (marking it recently used), or None."""
            if key not in self._data:
                return None
            self._data.move_to_end(key)
            return self._data[key]

        def put(self, key: str, value: int) -> None:
            """Stores `key`; evicts the least recently used key when over capacity."""
            self._data[key] = value
            self._data.move_to_end(key)
            if len(self._data) > self.capacity:
                self._data.popitem(last=False)

        def keys(self) -> list[str]:
            """Keys from least to most recently used."""
            return list(self._data)
    ''',
    tests='''
    c = LRUCache(2)
    assert c.get("a") is None and c.keys() == []
    c.put("a", 1)
    c.put("b", 2)
    assert c.keys() == ["a", "b"]
    assert c.get("a") == 1
    c.put("c", 3)
    assert c.get("b") is None and c.keys() == ["a", "c"]
    c.put("a", 10)
    c.put("d", 4)
    assert c.keys() == ["a", "d"] and c.get("a") == 10 and c.get("c") is None
    one = LRUCache(1)
    one.put("x", 1)
    one.put("y", 2)
    assert one.keys() == ["y"] and one.get("x") is None
    try:
        LRUCache(0)
    except ValueError:
        pass
    else:
        raise AssertionError("capacity 0")
    ''',
)

example(
    "sched.scheduler.enterabs", "event = Event(time", 4,
    problem='''
    Given meetings as half-open intervals `[start, end)` of minutes, write
    `rooms_needed(meetings: list[tuple[int, int]]) -> int` returning the minimum number of
    rooms so that no two meetings in the same room overlap. A meeting ending at minute `t`
    frees its room for one starting at `t`. Zero-length meetings (`start == end`) need no room.
    Raise `ValueError` if some meeting has `end < start`. Aim for O(n log n) using a heap of end
    times.
    ''',
    solution='''
    import heapq


    def rooms_needed(meetings: list[tuple[int, int]]) -> int:
        """Peak number of simultaneously running half-open intervals."""
        ends: list[int] = []
        best = 0
        for start, end in sorted(meetings):
            if end < start:
                raise ValueError(f"meeting ({start}, {end}) ends before it starts")
            if end == start:
                continue
            while ends and ends[0] <= start:
                heapq.heappop(ends)
            heapq.heappush(ends, end)
            best = max(best, len(ends))
        return best
    ''',
    tests='''
    assert rooms_needed([]) == 0
    assert rooms_needed([(0, 30), (5, 10), (15, 20)]) == 2
    assert rooms_needed([(9, 10), (10, 11), (11, 12)]) == 1
    assert rooms_needed([(1, 5), (2, 6), (3, 7), (4, 8)]) == 4
    assert rooms_needed([(5, 5), (5, 5)]) == 0
    assert rooms_needed([(0, 10), (10, 20), (5, 15)]) == 2
    assert rooms_needed([(0, 100)] + [(i, i + 1) for i in range(100)]) == 2
    try:
        rooms_needed([(3, 1)])
    except ValueError:
        pass
    else:
        raise AssertionError("end < start")
    ''',
)

example(
    "email.utils.parseaddr", "addrs = _AddressList(addr).addresslist", 4,
    problem='''
    Write `parse_mailbox(text: str) -> tuple[str, str]` that splits an e-mail mailbox string
    into `(display_name, address)`. Accept `Name <addr>`, `"Quoted, Name" <addr>` (quotes
    removed, `\\\\"` inside quotes unescaped), a bare `addr`, and `addr (Comment)` (the comment
    becomes the display name). Surrounding whitespace is ignored and the address is returned
    as written. An address is valid if it has exactly one `@` with non-empty parts on both sides
    and no spaces. For anything invalid return `("", "")`.
    ''',
    solution='''
    import re

    _ADDR = re.compile(r"[^@\\s<>]+@[^@\\s<>]+")


    def parse_mailbox(text: str) -> tuple[str, str]:
        """(display name, address) of a mailbox string, or ("", "") if it is malformed."""
        s = text.strip()
        m = re.fullmatch(r'(?:"((?:[^"\\\\]|\\\\.)*)"|([^"<>]*?))\\s*<([^<>]*)>', s)
        if m:
            quoted, plain, addr = m.groups()
            name = re.sub(r"\\\\(.)", r"\\1", quoted) if quoted is not None else plain.strip()
        else:
            m = re.fullmatch(r"(\\S+)(?:\\s+\\(([^()]*)\\))?", s)
            if not m:
                return "", ""
            addr, name = m.group(1), (m.group(2) or "").strip()
        addr = addr.strip()
        if not _ADDR.fullmatch(addr):
            return "", ""
        return name, addr
    ''',
    tests='''
    assert parse_mailbox("Ada Lovelace <ada@example.org>") == ("Ada Lovelace", "ada@example.org")
    assert parse_mailbox('"Lovelace, Ada" <ada@example.org>') == ("Lovelace, Ada", "ada@example.org")
    assert parse_mailbox('"Say \\\\"hi\\\\"" <x@y.z>') == ('Say "hi"', "x@y.z")
    assert parse_mailbox("  bob@example.com ") == ("", "bob@example.com")
    assert parse_mailbox("bob@example.com (Bob Smith)") == ("Bob Smith", "bob@example.com")
    assert parse_mailbox("<only@addr.io>") == ("", "only@addr.io")
    for bad in ["no-at-sign", "a@b@c", "Name <broken", "@example.com", "Name <a b@c.d>", ""]:
        assert parse_mailbox(bad) == ("", ""), bad
    ''',
)

example(
    "string.capwords", "def capwords", 10,
    problem='''
    Write `headline_case(title: str) -> str` that converts a title to headline style: words are
    separated by single spaces (collapse other whitespace); every word is capitalized (first
    letter upper-case, rest lower-case) except the minor words `a an and as at but by for in nor
    of on or the to up`, which stay lower-case unless they are the first or the last word.
    Hyphenated words capitalize each part (`"state-of-the-art"` -> `"State-of-the-Art"`: minor
    words inside a hyphenated compound stay lower-case unless first in it). Words that contain
    an upper-case letter after their first character (`"iPhone"`, `"NASA"`) are kept as written.
    ''',
    solution='''
    MINOR = frozenset("a an and as at but by for in nor of on or the to up".split())


    def _cap(word: str, force: bool) -> str:
        if any(c.isupper() for c in word[1:]):
            return word
        if not force and word.lower() in MINOR:
            return word.lower()
        return word[:1].upper() + word[1:].lower()


    def headline_case(title: str) -> str:
        """Title in headline style: minor words lower-case except at the ends."""
        words = title.split()
        out = []
        for i, word in enumerate(words):
            edge = i == 0 or i == len(words) - 1
            parts = word.split("-")
            # The first part of a word at either end, or of any compound, is always capitalized.
            out.append("-".join(_cap(p, j == 0 and (edge or len(parts) > 1)) for j, p in enumerate(parts)))
        return " ".join(out)
    ''',
    tests='''
    assert headline_case("the lord of the rings") == "The Lord of the Rings"
    assert headline_case("a tale  of two\\tcities") == "A Tale of Two Cities"
    assert headline_case("what are you up to") == "What Are You up To"
    assert headline_case("living up-to-date") == "Living Up-to-Date"
    assert headline_case("STATE-OF-THE-ART design") == "STATE-OF-THE-ART Design"
    assert headline_case("state-of-the-art design") == "State-of-the-Art Design"
    assert headline_case("my new iPhone and NASA") == "My New iPhone and NASA"
    assert headline_case("") == ""
    assert headline_case("of") == "Of"
    ''',
)

example(
    "difflib.SequenceMatcher.find_longest_match", "for i in range(alo, ahi):", 12,
    problem='''
    Write `longest_common_block(a: str, b: str) -> tuple[int, int, int]` returning `(i, j, k)`
    such that `a[i:i+k] == b[j:j+k]` and `k` is as large as possible. Among all longest blocks
    return the one that starts earliest in `a`, and among those the one that starts earliest in
    `b`. If there is no common character, return `(0, 0, 0)`. Use dynamic programming in
    O(len(a) * len(b)) time and O(len(b)) memory.
    ''',
    solution='''
    def longest_common_block(a: str, b: str) -> tuple[int, int, int]:
        """Longest common substring as (start in a, start in b, length), earliest on ties."""
        best = (0, 0, 0)
        prev = [0] * (len(b) + 1)  # prev[j + 1]: length of the common suffix of a[:i] and b[:j + 1]
        for i, ca in enumerate(a):
            cur = [0] * (len(b) + 1)
            for j, cb in enumerate(b):
                if ca == cb:
                    k = prev[j] + 1
                    cur[j + 1] = k
                    start = (i - k + 1, j - k + 1, k)
                    if k > best[2] or (k == best[2] and k > 0 and start[:2] < best[:2]):
                        best = start
            prev = cur
        return best
    ''',
    tests='''
    assert longest_common_block(" abcd", "abcd abcd") == (0, 4, 5)
    assert longest_common_block("abcdef", "zcdez") == (2, 1, 3)
    assert longest_common_block("abc", "xyz") == (0, 0, 0)
    assert longest_common_block("", "abc") == (0, 0, 0)
    assert longest_common_block("abab", "ab") == (0, 0, 2)
    assert longest_common_block("xaxb", "bxa") == (0, 1, 2)
    import difflib, random
    rng = random.Random(5)
    for _ in range(50):
        a = "".join(rng.choice("abc") for _ in range(rng.randint(0, 12)))
        b = "".join(rng.choice("abc") for _ in range(rng.randint(0, 12)))
        m = difflib.SequenceMatcher(None, a, b, autojunk=False).find_longest_match(0, len(a), 0, len(b))
        assert longest_common_block(a, b)[2] == m.size
        got = longest_common_block(a, b)
        assert a[got[0] : got[0] + got[2]] == b[got[1] : got[1] + got[2]]
    ''',
)

example(
    "shlex.split", "lex = shlex(s, posix=posix)", 5,
    problem='''
    Write `parse_csv_line(line: str, delimiter: str = ",") -> list[str]` that splits one line
    of CSV into fields following RFC 4180: fields are separated by `delimiter`; a field may be
    enclosed in double quotes, in which case it may contain the delimiter, and a doubled quote
    `""` stands for one `"`; whitespace is significant. An empty line gives `[""]`. Raise
    `ValueError` for an unterminated quoted field or for a quote followed by anything other
    than a delimiter or the end of the line. Do not use the `csv` module.
    ''',
    solution='''
    def parse_csv_line(line: str, delimiter: str = ",") -> list[str]:
        """Fields of one RFC 4180 CSV line."""
        fields: list[str] = []
        i, n = 0, len(line)
        while True:
            if i < n and line[i] == '"':
                i += 1
                buf = []
                while True:
                    if i >= n:
                        raise ValueError("unterminated quoted field")
                    if line[i] == '"':
                        if i + 1 < n and line[i + 1] == '"':
                            buf.append('"')
                            i += 2
                            continue
                        i += 1
                        break
                    buf.append(line[i])
                    i += 1
                if i < n and line[i] != delimiter:
                    raise ValueError(f"unexpected {line[i]!r} after a quoted field at {i}")
                fields.append("".join(buf))
            else:
                j = line.find(delimiter, i)
                j = n if j == -1 else j
                fields.append(line[i:j])
                i = j
            if i >= n:
                return fields
            i += 1  # skip the delimiter
            if i == n:
                fields.append("")
                return fields
    ''',
    tests='''
    assert parse_csv_line("a,b,c") == ["a", "b", "c"]
    assert parse_csv_line('"x, y",z') == ["x, y", "z"]
    assert parse_csv_line('"say ""hi""",2') == ['say "hi"', "2"]
    assert parse_csv_line("") == [""]
    assert parse_csv_line("a,,") == ["a", "", ""]
    assert parse_csv_line(" a ; b ", delimiter=";") == [" a ", " b "]
    import csv
    for line in ['1,"two",""', '"",x', '"a""b",c,"d,e"']:
        assert parse_csv_line(line) == next(csv.reader([line]))
    for bad in ['"open', '"a"b,c']:
        try:
            parse_csv_line(bad)
        except ValueError:
            pass
        else:
            raise AssertionError(bad)
    ''',
)

example(
    "configparser.RawConfigParser._read", "for lineno, line in enumerate(fp, start=1):", 10,
    problem='''
    Write `parse_ini(text: str) -> dict[str, dict[str, str]]` for a small INI dialect. Section
    headers look like `[name]` (surrounding whitespace ignored). Inside a section, lines are
    `key = value` or `key: value` (split at the first `=` or `:`, whichever comes first; keys are
    lower-cased and both sides stripped). Lines whose first non-blank character is `#` or `;`
    are comments; blank lines are ignored. A repeated key in the same section overrides the
    earlier value; a repeated section header continues that section. Raise `ValueError` naming
    the 1-based line number for a key outside any section or for a line that is neither a
    header, a comment nor a key/value pair.
    ''',
    solution='''
    def parse_ini(text: str) -> dict[str, dict[str, str]]:
        """Sections of an INI document as {section: {key: value}}."""
        result: dict[str, dict[str, str]] = {}
        section: dict[str, str] | None = None
        for lineno, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("[") and line.endswith("]"):
                section = result.setdefault(line[1:-1].strip(), {})
                continue
            cut = min((i for i in (line.find("="), line.find(":")) if i != -1), default=-1)
            if cut <= 0:
                raise ValueError(f"line {lineno}: expected 'key = value', got {raw!r}")
            if section is None:
                raise ValueError(f"line {lineno}: key outside any section")
            section[line[:cut].strip().lower()] = line[cut + 1 :].strip()
        return result
    ''',
    tests='''
    doc = """
    ; global comment
    [server]
    Host = example.org
    port: 8080
    url = http://x:1/a=b

    [client]
    # comment
    retries=3
    [server]
    port = 9090
    """
    assert parse_ini(doc) == {
        "server": {"host": "example.org", "port": "9090", "url": "http://x:1/a=b"},
        "client": {"retries": "3"},
    }
    assert parse_ini("") == {}
    assert parse_ini("[empty]") == {"empty": {}}
    assert parse_ini("[ s ]\\nk =") == {"s": {"k": ""}}
    for bad, line in [("k = v", 1), ("[s]\\njust text", 2), ("[s]\\n= v", 2)]:
        try:
            parse_ini(bad)
        except ValueError as e:
            assert f"line {line}" in str(e)
        else:
            raise AssertionError(bad)
    ''',
)

example(
    "textwrap.TextWrapper._wrap_chunks", "while chunks:", 14,
    problem='''
    Write `justify(text: str, width: int) -> list[str]` that formats the words of `text`
    (split on whitespace) into lines of exactly `width` characters, fully justified: put as many
    words on each line as fit (with at least one space between words), then distribute the extra
    spaces between the words as evenly as possible, giving the leftmost gaps one more space when
    they do not divide evenly. A line with a single word is padded on the right. The last line
    is left-justified (single spaces) and padded on the right. Raise `ValueError` if a word is
    longer than `width`. Empty text gives `[]`.
    ''',
    solution='''
    def justify(text: str, width: int) -> list[str]:
        """Fully justified lines of exactly `width` characters (last line left-aligned)."""
        words = text.split()
        if any(len(w) > width for w in words):
            raise ValueError("a word is longer than the line width")
        lines: list[str] = []
        i = 0
        while i < len(words):
            j, length = i + 1, len(words[i])
            while j < len(words) and length + 1 + len(words[j]) <= width:
                length += 1 + len(words[j])
                j += 1
            line_words = words[i:j]
            if j == len(words) or len(line_words) == 1:
                lines.append(" ".join(line_words).ljust(width))
            else:
                gaps = len(line_words) - 1
                spaces = width - sum(len(w) for w in line_words)
                base, extra = divmod(spaces, gaps)
                parts = []
                for g, word in enumerate(line_words[:-1]):
                    parts.append(word + " " * (base + (1 if g < extra else 0)))
                lines.append("".join(parts) + line_words[-1])
            i = j
        return lines
    ''',
    tests='''
    assert justify("This is an example of text justification.", 16) == [
        "This    is    an",
        "example  of text",
        "justification.  ",
    ]
    assert justify("What must be acknowledgment shall be", 16) == [
        "What   must   be",
        "acknowledgment  ",
        "shall be        ",
    ]
    assert justify("", 10) == []
    assert justify("one", 5) == ["one  "]
    assert justify("a b c d", 3) == ["a b", "c d"]
    assert all(len(line) == 20 for line in justify("lorem ipsum dolor sit amet consectetur adipiscing elit", 20))
    try:
        justify("tiny enormousword", 5)
    except ValueError:
        pass
    else:
        raise AssertionError("long word")
    ''',
)

example(
    "quopri.quote", "def quote", 5,
    problem='''
    Write `qp_encode(data: bytes) -> str` producing quoted-printable text (RFC 2045) for a
    single line of data with no line breaks in it: printable ASCII bytes 33..126 other than `=`
    are written as is; `=` and every other byte become `=XX` with upper-case hex; spaces and
    tabs are kept literally, except at the very end of the data, where they must be encoded.
    Output lines may be at most 76 characters: insert a soft line break (`=` followed by `\\\\n`,
    the `=` counting toward the 76) as needed, never splitting an `=XX` escape. Also write
    `qp_decode(text: str) -> bytes` that inverts it (removing soft line breaks).
    ''',
    solution='''
    def qp_encode(data: bytes) -> str:
        """Quoted-printable encoding of one line of bytes, with soft breaks at 76 columns."""
        tokens = []
        for index, byte in enumerate(data):
            last = index == len(data) - 1
            if (33 <= byte <= 126 and byte != ord("=")) or (byte in (9, 32) and not last):
                tokens.append(chr(byte))
            else:
                tokens.append(f"={byte:02X}")
        lines, current = [], ""
        for i, token in enumerate(tokens):
            room = 76 if i == len(tokens) - 1 else 75  # leave a column for a soft break "="
            if len(current) + len(token) > room:
                lines.append(current + "=")
                current = ""
            current += token
        lines.append(current)
        return "\\n".join(lines)


    def qp_decode(text: str) -> bytes:
        """Inverse of qp_encode."""
        text = text.replace("=\\n", "")
        out = bytearray()
        i = 0
        while i < len(text):
            if text[i] == "=":
                out.append(int(text[i + 1 : i + 3], 16))
                i += 3
            else:
                out += text[i].encode("ascii")
                i += 1
        return bytes(out)
    ''',
    tests='''
    assert qp_encode(b"hello world") == "hello world"
    assert qp_encode(b"a=b") == "a=3Db"
    assert qp_encode(b"caf\\xc3\\xa9") == "caf=C3=A9"
    assert qp_encode(b"trailing ") == "trailing=20"
    assert qp_encode(b"tab\\tin") == "tab\\tin"
    long = qp_encode(b"x" * 200)
    assert all(len(line) <= 76 for line in long.split("\\n")) and long.count("=\\n") == 2
    escapes = qp_encode(b"\\xff" * 40)
    assert all(len(line) <= 76 and line.rstrip("=").count("=") * 3 == len(line.rstrip("=")) for line in escapes.split("\\n"))
    for data in [b"", b"x" * 200, b"\\xff" * 40, bytes(range(256)), b"end\\t"]:
        assert qp_decode(qp_encode(data)) == data
    ''',
)

example(
    "http.cookies.BaseCookie.__parse_string", "while 0 <= i < n:", 9,
    problem='''
    Write `parse_cookie_header(header: str) -> dict[str, str]` for an HTTP `Cookie` request
    header such as `"session=abc123; theme=dark; lang=\\\\"en-GB\\\\""`. Pairs are separated by `;`
    and optional whitespace; each pair is `name=value` split at the first `=`; names and values
    are stripped; a value wrapped in double quotes has the quotes removed. Pairs without `=` or
    with an empty name are ignored. If a name repeats, the first occurrence wins (browsers send
    the most specific cookie first).
    ''',
    solution='''
    def parse_cookie_header(header: str) -> dict[str, str]:
        """Cookies of a Cookie header; first occurrence of a name wins."""
        cookies: dict[str, str] = {}
        for pair in header.split(";"):
            name, sep, value = pair.partition("=")
            name, value = name.strip(), value.strip()
            if not sep or not name:
                continue
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            cookies.setdefault(name, value)
        return cookies
    ''',
    tests='''
    assert parse_cookie_header('session=abc123; theme=dark; lang="en-GB"') == {"session": "abc123", "theme": "dark", "lang": "en-GB"}
    assert parse_cookie_header("") == {}
    assert parse_cookie_header("a=1;a=2") == {"a": "1"}
    assert parse_cookie_header("token=x=y==") == {"token": "x=y=="}
    assert parse_cookie_header("flag; =nope; ok=1") == {"ok": "1"}
    assert parse_cookie_header("  spaced  =  v  ;") == {"spaced": "v"}
    assert parse_cookie_header('q=""') == {"q": ""}
    ''',
)

example(
    "statistics.variance", "T, ss, c, n = _ss(data, xbar)", 4,
    problem='''
    Write a class `RunningStats` that summarizes a stream of numbers in O(1) memory using
    Welford's algorithm: `add(self, x: float) -> None`, and the properties `count -> int`,
    `mean -> float`, `variance -> float` (the sample variance, dividing by n - 1) and
    `stdev -> float`. `mean` of an empty stream and `variance`/`stdev` of fewer than two values
    raise `ValueError`. The results must be numerically stable: adding 10^9 + 4, 10^9 + 7,
    10^9 + 13, 10^9 + 16 must give variance 30 (to 1e-6), where the naive sum-of-squares formula
    loses all precision.
    ''',
    solution='''
    import math


    class RunningStats:
        """Streaming count, mean and sample variance (Welford's algorithm)."""

        def __init__(self) -> None:
            """An empty summary."""
            self._n = 0
            self._mean = 0.0
            self._m2 = 0.0

        def add(self, x: float) -> None:
            """Adds one observation."""
            self._n += 1
            delta = x - self._mean
            self._mean += delta / self._n
            self._m2 += delta * (x - self._mean)

        @property
        def count(self) -> int:
            """Number of observations."""
            return self._n

        @property
        def mean(self) -> float:
            """Arithmetic mean."""
            if self._n == 0:
                raise ValueError("mean of no data")
            return self._mean

        @property
        def variance(self) -> float:
            """Sample variance (n - 1 in the denominator)."""
            if self._n < 2:
                raise ValueError("variance needs at least two values")
            return self._m2 / (self._n - 1)

        @property
        def stdev(self) -> float:
            """Sample standard deviation."""
            return math.sqrt(self.variance)
    ''',
    tests='''
    import statistics
    s = RunningStats()
    assert s.count == 0
    for x in [2, 4, 4, 4, 5, 5, 7, 9]:
        s.add(x)
    assert s.count == 8 and s.mean == 5.0
    assert abs(s.variance - statistics.variance([2, 4, 4, 4, 5, 5, 7, 9])) < 1e-12
    assert abs(s.stdev - statistics.stdev([2, 4, 4, 4, 5, 5, 7, 9])) < 1e-12
    big = RunningStats()
    for x in [1e9 + 4, 1e9 + 7, 1e9 + 13, 1e9 + 16]:
        big.add(x)
    assert abs(big.variance - 30.0) < 1e-6
    one = RunningStats()
    one.add(3.5)
    assert one.mean == 3.5
    for attr, stats in [("variance", one), ("mean", RunningStats())]:
        try:
            getattr(stats, attr)
        except ValueError:
            pass
        else:
            raise AssertionError(attr)
    ''',
)

example(
    "pprint._safe_key.__lt__", "try:", 5,
    problem='''
    Write `sort_mixed(values: list) -> list` that sorts a list which may mix types that Python
    cannot compare with each other (ints, floats, strings, None, bools, tuples...). Order first
    by a type rank: `None` first, then numbers (`bool`, `int` and `float` together, compared by
    value, with `bool` treated as a number), then strings, then everything else grouped by type
    name; within a group use the natural order, and fall back to `repr` order for values of the
    same group that still cannot be compared. The sort must be stable and never raise
    `TypeError`.
    ''',
    solution='''
    from functools import cmp_to_key


    def _rank(v: object) -> tuple[int, str]:
        if v is None:
            return (0, "")
        if isinstance(v, (bool, int, float)):
            return (1, "")
        if isinstance(v, str):
            return (2, "")
        return (3, type(v).__name__)


    def _compare(a: object, b: object) -> int:
        ra, rb = _rank(a), _rank(b)
        if ra != rb:
            return -1 if ra < rb else 1
        try:
            if a < b:
                return -1
            if b < a:
                return 1
            return 0
        except TypeError:
            sa, sb = repr(a), repr(b)
            return (sa > sb) - (sa < sb)


    def sort_mixed(values: list) -> list:
        """Stable sort of heterogeneous values: None, numbers, strings, then others by type name."""
        return sorted(values, key=cmp_to_key(_compare))
    ''',
    tests='''
    assert sort_mixed([3, "b", None, 1.5, "a", True]) == [None, True, 1.5, 3, "a", "b"]
    assert sort_mixed([]) == []
    assert sort_mixed([(2,), (1, "x"), (1, 2)]) == [(1, "x"), (1, 2), (2,)]  # repr order breaks the tie
    assert sort_mixed([(1,), b"x", 0]) == [0, b"x", (1,)]  # "bytes" < "tuple"
    assert sort_mixed([1, 1.0, True]) == [1, 1.0, True]
    out = sort_mixed([{"b": 1}, {"a": 2}, "s", None])
    assert out[:2] == [None, "s"] and out[2:] == [{"a": 2}, {"b": 1}]
    assert sort_mixed([0.5, -2, False]) == [-2, False, 0.5]
    ''',
)

example(
    "locale._group", "left_spaces = ''", 12,
    problem='''
    Write `format_amount(value: float, decimals: int = 2, sep: str = ",", point: str = ".") ->
    str` that formats a number with a fixed number of decimals (round half to even, as Python's
    `format` does) and groups the integer digits in threes from the right with `sep`, e.g.
    `-1234567.891` -> `"-1,234,567.89"`. With `decimals == 0` no decimal point is written.
    Negative zero after rounding is written without a sign (`-0.001` -> `"0.00"`). Raise
    `ValueError` for negative `decimals` or a non-finite value.
    ''',
    solution='''
    import math


    def format_amount(value: float, decimals: int = 2, sep: str = ",", point: str = ".") -> str:
        """Fixed-point text of `value` with grouped thousands."""
        if decimals < 0:
            raise ValueError("decimals must be >= 0")
        if not math.isfinite(value):
            raise ValueError("value must be finite")
        text = f"{abs(value):.{decimals}f}"
        whole, _, frac = text.partition(".")
        groups = []
        while len(whole) > 3:
            groups.append(whole[-3:])
            whole = whole[:-3]
        groups.append(whole)
        body = sep.join(reversed(groups)) + (point + frac if decimals else "")
        negative = value < 0 and any(ch not in "0" for ch in text.replace(".", ""))
        return ("-" if negative else "") + body
    ''',
    tests='''
    assert format_amount(-1234567.891) == "-1,234,567.89"
    assert format_amount(999.999) == "1,000.00"
    assert format_amount(0) == "0.00"
    assert format_amount(-0.001) == "0.00"
    assert format_amount(1234567, decimals=0) == "1,234,567"
    assert format_amount(1234.5, decimals=1, sep=".", point=",") == "1.234,5"
    assert format_amount(123, decimals=3) == "123.000"
    assert format_amount(2.5, decimals=0) == "2"
    for bad in [(1.0, -1), (float("inf"), 2), (float("nan"), 2)]:
        try:
            format_amount(*bad)
        except ValueError:
            pass
        else:
            raise AssertionError(bad)
    ''',
)

example(
    "dataclasses._asdict_inner", "elif isinstance(obj, (list, tuple)):", 6,
    problem='''
    Write `flatten(data: object, sep: str = ".") -> dict[str, object]` that flattens nested
    dicts and lists into a single-level dict whose keys are paths: dict keys are joined with
    `sep` and list items contribute their index, e.g. `{"a": {"b": [10, 20]}}` ->
    `{"a.b.0": 10, "a.b.1": 20}`. Scalars (anything that is not a dict or list) are leaves.
    Empty dicts and empty lists are kept as leaves so that no information is lost. A scalar at
    the top level is stored under the empty key `""`. Dict keys are converted with `str`.
    ''',
    solution='''
    def flatten(data: object, sep: str = ".") -> dict[str, object]:
        """{path: leaf} for nested dicts and lists; empty containers are leaves."""
        out: dict[str, object] = {}

        def walk(node: object, prefix: str) -> None:
            if isinstance(node, dict) and node:
                items = ((str(k), v) for k, v in node.items())
            elif isinstance(node, list) and node:
                items = ((str(i), v) for i, v in enumerate(node))
            else:
                out[prefix] = node
                return
            for key, value in items:
                walk(value, f"{prefix}{sep}{key}" if prefix else key)

        walk(data, "")
        return out
    ''',
    tests='''
    assert flatten({"a": {"b": [10, 20]}}) == {"a.b.0": 10, "a.b.1": 20}
    assert flatten({"x": 1, "y": {"z": None}}) == {"x": 1, "y.z": None}
    assert flatten({"e": {}, "l": []}) == {"e": {}, "l": []}
    assert flatten([{"k": "v"}, 3]) == {"0.k": "v", "1": 3}
    assert flatten(42) == {"": 42}
    assert flatten({}) == {"": {}}
    assert flatten({"a": {"b": 1}}, sep="/") == {"a/b": 1}
    assert flatten({1: {2: "x"}}) == {"1.2": "x"}
    assert flatten({"t": (1, 2)}) == {"t": (1, 2)}
    ''',
)

example(
    "json.decoder.JSONObject", "pairs_append((key, value))", 6,
    problem='''
    JSON allows duplicate keys in an object but most parsers silently keep the last one. Write
    `find_duplicate_keys(text: str) -> list[str]` that parses a JSON document and reports every
    duplicated key as a path: `$` for the root, `.key` for object members and `[i]` for array
    items, e.g. `'{"a": 1, "b": [{"c": 1, "c": 2}], "a": 3}'` -> `["$.b[0].c", "$.a"]`. Each
    duplicated key is reported once per object, in document order of its first repetition. Invalid JSON
    raises `ValueError` (as `json.JSONDecodeError` does). You may use `json` with
    `object_pairs_hook`.
    ''',
    solution='''
    import json


    class _Pairs(list):
        """An object's (key, value) pairs, kept in order with duplicates."""


    def find_duplicate_keys(text: str) -> list[str]:
        """Paths ("$.a.b[0].c") of keys duplicated inside some JSON object."""
        root = json.loads(text, object_pairs_hook=_Pairs)
        found: list[str] = []

        def walk(node: object, path: str) -> None:
            if isinstance(node, _Pairs):
                seen: set[str] = set()
                reported: set[str] = set()
                for key, value in node:
                    if key in seen and key not in reported:
                        found.append(f"{path}.{key}")
                        reported.add(key)
                    seen.add(key)
                    walk(value, f"{path}.{key}")
            elif isinstance(node, list):
                for i, item in enumerate(node):
                    walk(item, f"{path}[{i}]")

        walk(root, "$")
        return found
    ''',
    tests='''
    assert find_duplicate_keys('{"a": 1, "b": [{"c": 1, "c": 2}], "a": 3}') == ["$.b[0].c", "$.a"]
    assert find_duplicate_keys('{"a": 1, "b": 2}') == []
    assert find_duplicate_keys('[1, {"x": 0, "x": 1, "x": 2}]') == ["$[1].x"]
    assert find_duplicate_keys('"just a string"') == []
    assert find_duplicate_keys('{"o": {"p": {"q": 1, "q": 1}}}') == ["$.o.p.q"]
    assert find_duplicate_keys('[[], [{"k": 1}, {"k": 2}]]') == []
    try:
        find_duplicate_keys('{"a": }')
    except ValueError:
        pass
    else:
        raise AssertionError("invalid JSON")
    ''',
)

example(
    "calendar.weekday", "if not datetime.MINYEAR", 3,
    problem='''
    Write `iso_week(year: int, month: int, day: int) -> tuple[int, int, int]` that returns the
    ISO 8601 `(iso_year, week, weekday)` of a Gregorian date (weekday 1 = Monday ... 7 = Sunday)
    without using `datetime` or `calendar`. Week 1 is the week containing the year's first
    Thursday, so early January dates can belong to the previous ISO year and late December
    dates to the next. Raise `ValueError` for an invalid date. Compute the weekday with a
    day-count formula (e.g. days since a fixed Monday).
    ''',
    solution='''
    def _is_leap(y: int) -> bool:
        return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


    def _ordinal(y: int, m: int, d: int) -> int:
        """Days since 0001-01-01 (which is day 0, a Monday)."""
        days_before_month = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334]
        py = y - 1
        n = py * 365 + py // 4 - py // 100 + py // 400
        return n + days_before_month[m - 1] + (m > 2 and _is_leap(y)) + d - 1


    def _week1_monday(y: int) -> int:
        jan4 = _ordinal(y, 1, 4)
        return jan4 - jan4 % 7


    def iso_week(year: int, month: int, day: int) -> tuple[int, int, int]:
        """ISO (year, week, weekday) of a Gregorian date."""
        lengths = [31, 29 if _is_leap(year) else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        if year < 1 or not 1 <= month <= 12 or not 1 <= day <= lengths[month - 1]:
            raise ValueError(f"invalid date {year}-{month}-{day}")
        n = _ordinal(year, month, day)
        iso_year = year
        if n < _week1_monday(year):
            iso_year = year - 1
        elif n >= _week1_monday(year + 1):
            iso_year = year + 1
        return iso_year, (n - _week1_monday(iso_year)) // 7 + 1, n % 7 + 1
    ''',
    tests='''
    assert iso_week(2024, 1, 1) == (2024, 1, 1)
    assert iso_week(2021, 1, 3) == (2020, 53, 7)
    assert iso_week(2019, 12, 30) == (2020, 1, 1)
    assert iso_week(2000, 2, 29) == (2000, 9, 2)
    import datetime
    d = datetime.date(1995, 1, 1)
    while d.year < 2031:
        assert iso_week(d.year, d.month, d.day) == tuple(d.isocalendar()), d
        d += datetime.timedelta(days=13)
    assert iso_week(1, 1, 1) == tuple(datetime.date(1, 1, 1).isocalendar())
    for bad in [(2023, 2, 29), (2024, 13, 1), (2024, 4, 31), (0, 1, 1)]:
        try:
            iso_week(*bad)
        except ValueError:
            pass
        else:
            raise AssertionError(bad)
    ''',
)

example(
    "calendar.monthrange", "day1 = weekday", 3,
    problem='''
    Write `add_months(year: int, month: int, day: int, months: int) -> tuple[int, int, int]`
    that moves a date by a whole number of months (negative to go back), clamping the day to
    the last day of the target month: January 31 plus one month is February 28 (or 29 in a leap
    year). Return the new `(year, month, day)`. Raise `ValueError` if the input date is invalid
    or if the result would fall before year 1.
    ''',
    solution='''
    import calendar


    def add_months(year: int, month: int, day: int, months: int) -> tuple[int, int, int]:
        """Date moved by `months` calendar months, day clamped to the month's length."""
        if not 1 <= month <= 12 or year < 1 or not 1 <= day <= calendar.monthrange(year, month)[1]:
            raise ValueError(f"invalid date {year}-{month}-{day}")
        total = year * 12 + (month - 1) + months
        new_year, new_month0 = divmod(total, 12)
        if new_year < 1:
            raise ValueError("result before year 1")
        last = calendar.monthrange(new_year, new_month0 + 1)[1]
        return new_year, new_month0 + 1, min(day, last)
    ''',
    tests='''
    assert add_months(2023, 1, 31, 1) == (2023, 2, 28)
    assert add_months(2024, 1, 31, 1) == (2024, 2, 29)
    assert add_months(2024, 3, 15, -3) == (2023, 12, 15)
    assert add_months(2024, 12, 31, 2) == (2025, 2, 28)
    assert add_months(2024, 5, 31, 0) == (2024, 5, 31)
    assert add_months(2020, 2, 29, 12) == (2021, 2, 28)
    assert add_months(2024, 8, 31, -18) == (2023, 2, 28)
    for bad in [(2023, 2, 29, 1), (2023, 0, 1, 1), (1, 1, 1, -1)]:
        try:
            add_months(*bad)
        except ValueError:
            pass
        else:
            raise AssertionError(bad)
    ''',
)

example(
    "statistics.quantiles", "if method == 'inclusive':", 8,
    problem='''
    Write `percentile(values: list[float], p: float) -> float` using linear interpolation
    between closest ranks (the default method of NumPy and of spreadsheets' PERCENTILE.INC):
    sort the data, compute the rank `r = (n - 1) * p / 100`, and interpolate between the
    elements at `floor(r)` and `ceil(r)`. `p` must be in `[0, 100]`; the data must be non-empty
    (`ValueError` otherwise). A single value is every percentile of itself. The input list must
    not be modified.
    ''',
    solution='''
    import math


    def percentile(values: list[float], p: float) -> float:
        """The p-th percentile (0..100) by linear interpolation between closest ranks."""
        if not values:
            raise ValueError("no data")
        if not 0 <= p <= 100:
            raise ValueError("p must be within [0, 100]")
        data = sorted(values)
        rank = (len(data) - 1) * p / 100
        lo, hi = math.floor(rank), math.ceil(rank)
        return data[lo] + (data[hi] - data[lo]) * (rank - lo)
    ''',
    tests='''
    data = [15, 20, 35, 40, 50]
    assert percentile(data, 0) == 15 and percentile(data, 100) == 50
    assert percentile(data, 50) == 35
    assert percentile(data, 40) == 29.0
    assert abs(percentile([1, 2, 3, 4], 25) - 1.75) < 1e-12
    assert percentile([7], 33) == 7
    shuffled = [3, 1, 2]
    assert percentile(shuffled, 50) == 2 and shuffled == [3, 1, 2]
    import statistics
    sample = [2.5, 9.1, 4.4, 7.0, 1.2, 8.8, 3.3]
    assert all(abs(percentile(sample, q) - c) < 1e-9 for q, c in zip([25, 50, 75], statistics.quantiles(sample, n=4, method="inclusive")))
    for bad in [([], 50), ([1, 2], -1), ([1, 2], 100.5)]:
        try:
            percentile(*bad)
        except ValueError:
            pass
        else:
            raise AssertionError(bad)
    ''',
)

example(
    "email.utils.formatdate", "if timeval is None:", 8,
    problem='''
    Write `http_date(timestamp: int) -> str` that formats a Unix timestamp (seconds since
    1970-01-01 UTC, possibly negative) as an HTTP date in IMF-fixdate form, e.g.
    `"Sun, 06 Nov 1994 08:49:37 GMT"`: English weekday and month abbreviations, two-digit day,
    four-digit year, 24-hour time, always GMT. Do not use `time.strftime` or locale-dependent
    formatting (the output must not change with the locale); `datetime` arithmetic is allowed.
    Also write `parse_http_date(text: str) -> int`, the inverse for this exact format, raising
    `ValueError` for anything else.
    ''',
    solution='''
    import datetime

    _DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    _MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    _EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


    def http_date(timestamp: int) -> str:
        """IMF-fixdate text of a Unix timestamp."""
        t = _EPOCH + datetime.timedelta(seconds=timestamp)
        return (f"{_DAYS[t.weekday()]}, {t.day:02d} {_MONTHS[t.month - 1]} {t.year:04d} "
                f"{t.hour:02d}:{t.minute:02d}:{t.second:02d} GMT")


    def parse_http_date(text: str) -> int:
        """Unix timestamp of an IMF-fixdate string."""
        parts = text.split(" ")
        if len(parts) != 6 or parts[5] != "GMT" or parts[0][:-1] not in _DAYS or not parts[0].endswith(","):
            raise ValueError(f"not an IMF-fixdate: {text!r}")
        if parts[2] not in _MONTHS or len(parts[1]) != 2 or len(parts[3]) != 4:
            raise ValueError(f"not an IMF-fixdate: {text!r}")
        hh, mm, ss = (int(x) for x in parts[4].split(":"))
        t = datetime.datetime(int(parts[3]), _MONTHS.index(parts[2]) + 1, int(parts[1]), hh, mm, ss,
                              tzinfo=datetime.timezone.utc)
        if _DAYS[t.weekday()] != parts[0][:-1]:
            raise ValueError(f"wrong weekday in {text!r}")
        return int((t - _EPOCH).total_seconds())
    ''',
    tests='''
    assert http_date(784111777) == "Sun, 06 Nov 1994 08:49:37 GMT"
    assert http_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT"
    assert http_date(-1) == "Wed, 31 Dec 1969 23:59:59 GMT"
    assert http_date(951782400) == "Tue, 29 Feb 2000 00:00:00 GMT"
    assert parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT") == 784111777
    import email.utils
    for ts in [1, 86399, 1700000000, 2**31]:
        assert http_date(ts) == email.utils.formatdate(ts, usegmt=True)
        assert parse_http_date(http_date(ts)) == ts
    for bad in ["Mon, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun, 6 Nov 1994 08:49:37 GMT"]:
        try:
            parse_http_date(bad)
        except ValueError:
            pass
        else:
            raise AssertionError(bad)
    ''',
)

example(
    "urllib.parse.urljoin", "resolved_path = []", 14,
    problem='''
    Implement RFC 3986's `remove_dot_segments` as `normalize_path(path: str) -> str` for URL
    paths: `.` segments are dropped, `..` removes the previous segment (but never goes above the
    root: `/../a` becomes `/a`), and a path ending in `/.` or `/..` keeps a trailing slash.
    Empty segments (`//`) are preserved, a leading `/` is preserved, and relative paths stay
    relative (leading `..` segments of a relative path are dropped, as the RFC specifies).
    ''',
    solution='''
    def normalize_path(path: str) -> str:
        """RFC 3986 section 5.2.4 remove_dot_segments."""
        absolute = path.startswith("/")
        segments = path.split("/")
        if absolute:
            segments = segments[1:]
        out: list[str] = []
        for i, seg in enumerate(segments):
            last = i == len(segments) - 1
            if seg == ".":
                if last:
                    out.append("")
            elif seg == "..":
                if out:
                    out.pop()
                if last:
                    out.append("")
            else:
                out.append(seg)
        return ("/" if absolute else "") + "/".join(out)
    ''',
    tests='''
    assert normalize_path("/a/b/c/./../../g") == "/a/g"
    assert normalize_path("mid/content=5/../6") == "mid/6"
    assert normalize_path("/../a") == "/a"
    assert normalize_path("/a/b/..") == "/a/"
    assert normalize_path("/a/b/.") == "/a/b/"
    assert normalize_path("/a//b/../c") == "/a//c"
    assert normalize_path("../x/y") == "x/y"
    assert normalize_path("/") == "/"
    assert normalize_path("") == ""
    import urllib.parse
    assert "http://h" + normalize_path("/p/q/../r/./s") == urllib.parse.urljoin("http://h/", "/p/q/../r/./s")
    ''',
)

example(
    "typing._deduplicate", "all_params = set(params)", 10,
    problem='''
    Write `dedupe_records(records: list[dict], keys: list[str], keep: str = "first") ->
    list[dict]` that removes records which agree on all the given key fields, keeping either
    the first or the last record of each group (`keep` is `"first"` or `"last"`, anything else
    raises `ValueError`). The kept records stay in their original relative order. Values may be
    unhashable (lists, dicts); two values are equal when `==` says so. A record missing a key
    field is treated as having `None` there. Strings are compared case-sensitively.
    ''',
    solution='''
    import json


    def _fingerprint(record: dict, keys: list[str]) -> str:
        # JSON gives unhashable values a canonical, hashable spelling (sorted dict keys).
        return json.dumps([record.get(k) for k in keys], sort_keys=True, default=repr)


    def dedupe_records(records: list[dict], keys: list[str], keep: str = "first") -> list[dict]:
        """Records made unique on `keys`, keeping the first or last of each group, in order."""
        if keep not in ("first", "last"):
            raise ValueError("keep must be 'first' or 'last'")
        order = range(len(records)) if keep == "first" else range(len(records) - 1, -1, -1)
        seen: set[str] = set()
        kept: list[int] = []
        for i in order:
            fp = _fingerprint(records[i], keys)
            if fp not in seen:
                seen.add(fp)
                kept.append(i)
        return [records[i] for i in sorted(kept)]
    ''',
    tests='''
    rows = [
        {"id": 1, "email": "a@x", "tags": ["t"]},
        {"id": 2, "email": "b@x", "tags": []},
        {"id": 3, "email": "a@x", "tags": ["t"]},
        {"id": 4, "email": "A@x", "tags": ["t"]},
    ]
    assert [r["id"] for r in dedupe_records(rows, ["email"])] == [1, 2, 4]
    assert [r["id"] for r in dedupe_records(rows, ["email"], keep="last")] == [2, 3, 4]
    assert [r["id"] for r in dedupe_records(rows, ["email", "tags"])] == [1, 2, 4]
    assert [r["id"] for r in dedupe_records(rows, ["tags"])] == [1, 2]
    assert dedupe_records([], ["k"]) == []
    assert dedupe_records([{"a": 1}, {"b": 2}, {"a": None}], ["a"]) == [{"a": 1}, {"b": 2}]
    assert dedupe_records([{"m": {"x": 1, "y": 2}}, {"m": {"y": 2, "x": 1}}], ["m"]) == [{"m": {"x": 1, "y": 2}}]
    try:
        dedupe_records(rows, ["id"], keep="middle")
    except ValueError:
        pass
    else:
        raise AssertionError("bad keep")
    ''',
)

example(
    "ast.literal_eval", "def _convert(node):", 9,
    problem='''
    Write a safe calculator `evaluate(expr: str) -> int | float` without `eval`, `exec` or
    `ast`: a recursive-descent parser for integers and decimal numbers, the binary operators
    `+ - * / // % **`, unary `+`/`-`, and parentheses, with Python's precedence and
    associativity (`**` binds tighter than unary minus on its left and is right-associative:
    `-2 ** 2 == -4`, `2 ** 3 ** 2 == 512`). Whitespace is ignored. Division by zero raises
    `ZeroDivisionError`; any syntax error (unknown character, unbalanced parenthesis, dangling
    operator, empty input) raises `ValueError`.
    ''',
    solution='''
    import re

    _TOKEN = re.compile(r"\\s*(?:(\\d+\\.\\d*|\\.\\d+|\\d+)|(\\*\\*|//|[-+*/%()]))")


    def _tokenize(expr: str) -> list[str]:
        tokens, pos = [], 0
        expr = expr.rstrip()
        while pos < len(expr):
            m = _TOKEN.match(expr, pos)
            if not m:
                raise ValueError(f"unexpected character at {pos}: {expr[pos:]!r}")
            tokens.append(m.group(1) or m.group(2))
            pos = m.end()
        return tokens


    def evaluate(expr: str) -> int | float:
        """Value of an arithmetic expression with Python's operators and precedence."""
        tokens = _tokenize(expr)
        pos = 0

        def peek() -> str | None:
            return tokens[pos] if pos < len(tokens) else None

        def take() -> str:
            nonlocal pos
            if pos >= len(tokens):
                raise ValueError("unexpected end of expression")
            pos += 1
            return tokens[pos - 1]

        def expression() -> int | float:  # sum := term (('+'|'-') term)*
            value = term()
            while peek() in ("+", "-"):
                value = value + term() if take() == "+" else value - term()
            return value

        def term() -> int | float:  # term := unary (('*'|'/'|'//'|'%') unary)*
            value = unary()
            while peek() in ("*", "/", "//", "%"):
                op, rhs = take(), unary()
                value = {"*": lambda: value * rhs, "/": lambda: value / rhs,
                         "//": lambda: value // rhs, "%": lambda: value % rhs}[op]()
            return value

        def unary() -> int | float:  # unary := ('+'|'-') unary | power
            if peek() in ("+", "-"):
                return -unary() if take() == "-" else +unary()
            return power()

        def power() -> int | float:  # power := atom ('**' unary)?
            base = atom()
            if peek() == "**":
                take()
                return base ** unary()
            return base

        def atom() -> int | float:
            tok = take()
            if tok == "(":
                value = expression()
                if take() != ")":
                    raise ValueError("expected ')'")
                return value
            if tok[0].isdigit() or tok[0] == ".":
                return float(tok) if "." in tok else int(tok)
            raise ValueError(f"unexpected token {tok!r}")

        result = expression()
        if pos != len(tokens):
            raise ValueError(f"unexpected token {tokens[pos]!r}")
        return result
    ''',
    tests='''
    assert evaluate("1 + 2 * 3") == 7
    assert evaluate("(1 + 2) * 3") == 9
    assert evaluate("-2 ** 2") == -4 and evaluate("2 ** -1") == 0.5
    assert evaluate("2 ** 3 ** 2") == 512
    assert evaluate("7 // 2 + 7 % 3 - 10 / 4") == 1.5
    assert evaluate(" .5 + 1. ") == 1.5
    assert evaluate("--3") == 3 and evaluate("10 - 4 - 3") == 3
    for expr in ["2*(3+4)**2 - -1", "100 // 7 % 4", "1.5 * (2 - 8) / 3"]:
        assert evaluate(expr) == eval(expr)
    try:
        evaluate("1 / (2 - 2)")
    except ZeroDivisionError:
        pass
    else:
        raise AssertionError("division by zero")
    for bad in ["", "1 +", "(1 + 2", "1 + 2)", "2 $ 3", "3 4", "()"]:
        try:
            evaluate(bad)
        except ValueError:
            pass
        else:
            raise AssertionError(bad)
    ''',
)

example(
    "heapq._siftdown", "while pos > startpos:", 8,
    problem='''
    Write `shortest_route(graph: dict[str, dict[str, float]], start: str, goal: str) ->
    tuple[float, list[str]]` using Dijkstra's algorithm with a binary heap. `graph[u][v]` is
    the non-negative length of the directed edge u -> v; nodes may appear only as edge targets.
    Return the total length and the node path from `start` to `goal` (inclusive). If `start ==
    goal` return `(0, [start])`. If the goal is unreachable return `(math.inf, [])`. Raise
    `ValueError` on a negative edge length. When several shortest paths exist, any one may be
    returned.
    ''',
    solution='''
    import heapq
    import math


    def shortest_route(graph: dict[str, dict[str, float]], start: str, goal: str) -> tuple[float, list[str]]:
        """(length, path) of a shortest start -> goal path; (inf, []) if there is none."""
        for u, edges in graph.items():
            for v, w in edges.items():
                if w < 0:
                    raise ValueError(f"negative edge {u}->{v}")
        dist = {start: 0.0}
        prev: dict[str, str] = {}
        heap = [(0.0, start)]
        done: set[str] = set()
        while heap:
            d, u = heapq.heappop(heap)
            if u in done:
                continue
            done.add(u)
            if u == goal:
                break
            for v, w in graph.get(u, {}).items():
                nd = d + w
                if nd < dist.get(v, math.inf):
                    dist[v] = nd
                    prev[v] = u
                    heapq.heappush(heap, (nd, v))
        if goal not in done:
            return math.inf, []
        path = [goal]
        while path[-1] != start:
            path.append(prev[path[-1]])
        return dist[goal], path[::-1]
    ''',
    tests='''
    import math
    g = {"A": {"B": 4, "C": 1}, "C": {"B": 2, "D": 7}, "B": {"D": 1}}
    assert shortest_route(g, "A", "D") == (4, ["A", "C", "B", "D"])
    assert shortest_route(g, "A", "B") == (3, ["A", "C", "B"])
    assert shortest_route(g, "A", "A") == (0, ["A"])
    assert shortest_route(g, "D", "A") == (math.inf, [])
    assert shortest_route(g, "A", "Z") == (math.inf, [])
    assert shortest_route({"s": {"t": 0}}, "s", "t") == (0, ["s", "t"])
    line = {str(i): {str(i + 1): 1} for i in range(200)}
    assert shortest_route(line, "0", "200")[0] == 200
    try:
        shortest_route({"a": {"b": -1}}, "a", "b")
    except ValueError:
        pass
    else:
        raise AssertionError("negative edge")
    ''',
)

example(
    "random.Random.sample", "if n <= setsize:", 8,
    problem='''
    Write `reservoir_sample(stream: Iterable[T], k: int, rng: random.Random) -> list[T]` that
    draws a uniform random sample of `k` items (without replacement) from an iterable of unknown
    length in a single pass using O(k) memory (Algorithm R): keep the first `k` items, then
    replace a random slot with the i-th item (0-based) with probability `k / (i + 1)`, choosing
    the slot with `rng.randrange(i + 1)`. If the stream has fewer than `k` items return them all
    in order. `k < 0` raises `ValueError`; `k == 0` returns `[]` without consuming the stream.
    ''',
    solution='''
    import random
    from typing import Iterable, TypeVar

    T = TypeVar("T")


    def reservoir_sample(stream: Iterable[T], k: int, rng: random.Random) -> list[T]:
        """Uniform sample of k items from a stream of unknown length (Algorithm R)."""
        if k < 0:
            raise ValueError("k must be >= 0")
        if k == 0:
            return []
        reservoir: list[T] = []
        for i, item in enumerate(stream):
            if i < k:
                reservoir.append(item)
            else:
                j = rng.randrange(i + 1)
                if j < k:
                    reservoir[j] = item
        return reservoir
    ''',
    tests='''
    import random
    assert reservoir_sample(range(3), 5, random.Random(0)) == [0, 1, 2]
    assert reservoir_sample([], 2, random.Random(0)) == []
    s = reservoir_sample(range(1000), 10, random.Random(42))
    assert len(s) == 10 and len(set(s)) == 10 and all(0 <= x < 1000 for x in s)
    assert s == reservoir_sample(iter(range(1000)), 10, random.Random(42))
    counts = [0] * 10
    rng = random.Random(1)
    for _ in range(4000):
        for x in reservoir_sample(range(10), 3, rng):
            counts[x] += 1
    assert all(abs(c / 4000 - 0.3) < 0.04 for c in counts)
    def boom():
        raise AssertionError("consumed")
        yield
    assert reservoir_sample(boom(), 0, random.Random(0)) == []
    try:
        reservoir_sample([1], -1, random.Random(0))
    except ValueError:
        pass
    else:
        raise AssertionError("k < 0")
    ''',
)

example(
    "difflib.get_close_matches", "result = []", 12,
    problem='''
    A CLI wants "did you mean ...?" hints. Write `suggest(word: str, vocabulary: list[str],
    max_distance: int = 2, n: int = 3) -> list[str]` returning up to `n` vocabulary entries whose
    Levenshtein distance (insertions, deletions, substitutions, each cost 1) to `word` is at
    most `max_distance`, ordered by distance and then alphabetically. Comparison is
    case-insensitive but entries are returned as written. An exact (case-insensitive) match is
    distance 0. Implement the distance with an O(len(a) * len(b)) dynamic program that keeps only
    two rows.
    ''',
    solution='''
    def levenshtein(a: str, b: str) -> int:
        """Edit distance between a and b (unit costs), with two DP rows."""
        prev = list(range(len(b) + 1))
        for i, ca in enumerate(a, 1):
            cur = [i]
            for j, cb in enumerate(b, 1):
                cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
            prev = cur
        return prev[-1]


    def suggest(word: str, vocabulary: list[str], max_distance: int = 2, n: int = 3) -> list[str]:
        """Closest vocabulary entries within `max_distance` edits, best first."""
        scored = []
        for entry in vocabulary:
            d = levenshtein(word.lower(), entry.lower())
            if d <= max_distance:
                scored.append((d, entry))
        scored.sort()
        return [entry for _, entry in scored[:n]]
    ''',
    tests='''
    commands = ["commit", "checkout", "cherry-pick", "clone", "config", "status"]
    assert suggest("comit", commands) == ["commit"]
    assert suggest("statsu", commands) == ["status"]
    assert suggest("xyzzy", commands) == []
    assert suggest("CLONE", commands) == ["clone"]
    assert suggest("cone", commands, max_distance=3) == ["clone", "config"]
    assert suggest("cone", commands, max_distance=4) == ["clone", "config", "commit"]
    assert suggest("cone", commands, max_distance=3, n=1) == ["clone"]
    assert levenshtein("kitten", "sitting") == 3 and levenshtein("", "abc") == 3 and levenshtein("abc", "abc") == 0
    assert suggest("ab", ["Ab", "ac", "abc"], max_distance=1) == ["Ab", "abc", "ac"]
    ''',
)


if __name__ == "__main__":
    n = write_jsonl_atomic(OUT, records())
    print(f"wrote {n} examples to {OUT}")
