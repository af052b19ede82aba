"""`scoder seed --import`: Magicoder OSS-Instruct JSONL and the project's own Sample format."""

from __future__ import annotations

import gzip
import json
import re

import pytest

from scoder_jax.errors import DataError
from scoder_jax.io import read_jsonl
from scoder_jax.records import SAMPLE_FIELDS
from scoder_jax.synth.seed_import import import_seed


def magicoder(i, problem, solution, lang="python", seed="def seed():\n    pass\n"):
    return {"model": "gpt-3.5-turbo-1106", "index": i, "lang": lang, "raw_index": 1000 + i, "seed": seed,
            "openai_fingerprint": "fp_x", "problem": problem, "solution": solution}


LINES = [
    # 1: Python, code block followed by an explanation
    json.dumps(magicoder(0, "You are tasked with writing `double(x)`.",
                         "```python\ndef double(x):\n    return 2 * x\n```\n\n"
                         "The `double` function multiplies by two.")),
    # 2: Python with asserts embedded after the code
    json.dumps(magicoder(1, "Write `neg(x)`.",
                         "```python\ndef neg(x):\n    return -x\n\nassert neg(1) == -1\nassert neg(0) == 0\n```")),
    "",  # 3: blank
    # 4: C++
    json.dumps(magicoder(2, "Implement `int sq(int)`.", "```cpp\nint sq(int x) { return x * x; }\n```\nDone.", "cpp")),
    # 5: prose only
    json.dumps(magicoder(3, "Explain recursion.", "Recursion is when a function calls itself.")),
    # 6: no solution
    json.dumps({"problem": "Write f.", "lang": "python"}),
    # 7: malformed JSON
    '{"problem": "Write g.", "solution": ',
    # 8: the project's own format
    json.dumps({"id": "seed-own-1", "snippet_id": "sn-1", "snippet": "x = 1", "lang": "python",
                "problem": "Write inc.", "solution": "def inc(x):\n    return x + 1", "tests": "assert inc(1) == 2",
                "origin": "teacher", "meta": {"teacher_model": "gpt"}}),
    # 9: Python whose code does not parse
    json.dumps(magicoder(4, "Write h.", "```python\ndef h(:\n    pass\n```")),
    # 10: not an object
    "[1, 2]",
]


def write(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def test_import_magicoder_and_own_format(tmp_path):
    src = write(tmp_path / "oss.jsonl", LINES)
    out = tmp_path / "seed"
    s = import_seed(src, out)
    assert s["imported"] == 4 and s["skipped"] == 5 and s["formats"] == {"magicoder": 3, "scoder": 1}
    assert s["with_tests"] == 2
    recs = {r["problem"]: r for r in read_jsonl(out / "seed.jsonl")}
    for r in recs.values():
        assert set(r) == set(SAMPLE_FIELDS) and r["origin"] == "import"
    d = recs["You are tasked with writing `double(x)`."]
    assert d["solution"] == "def double(x):\n    return 2 * x" and d["tests"] == ""
    assert d["snippet"] == "def seed():\n    pass\n" and d["meta"]["index"] == 0 and d["meta"]["raw_index"] == 1000
    assert d["snippet_id"].startswith("sn-")
    n = recs["Write `neg(x)`."]
    assert n["solution"] == "def neg(x):\n    return -x" and n["tests"] == "assert neg(1) == -1\nassert neg(0) == 0"
    assert recs["Implement `int sq(int)`."]["solution"] == "int sq(int x) { return x * x; }"
    assert recs["Implement `int sq(int)`."]["lang"] == "cpp"
    own = recs["Write inc."]
    assert own["id"] == "seed-own-1" and own["tests"] == "assert inc(1) == 2"
    assert own["meta"]["original_origin"] == "teacher" and own["meta"]["teacher_model"] == "gpt"

    errors = read_jsonl(out / "import_errors.jsonl")
    assert [(e["line"], e["reason"].split(" (")[0]) for e in errors] == [
        (5, "field 'solution' has no usable Python code"),
        (6, "missing or empty field 'solution'"),
        (7, "malformed JSON"),
        (9, "field 'solution' has no usable Python code"),
        (10, "expected a JSON object, got list"),
    ]
    assert s["first_errors"][0] == f"{src}:5: field 'solution' has no usable Python code (not code)"
    assert "syntax error" in errors[3]["reason"]

    # Importing again adds nothing; a second file merges in.
    s = import_seed(src, out)
    assert s["imported"] == 0 and s["duplicates"] == 4 and s["total"] == 4
    more = tmp_path / "more.jsonl.gz"
    with gzip.open(more, "wt") as f:
        f.write(json.dumps(magicoder(9, "Write `half(x)`.", "```python\ndef half(x):\n    return x / 2\n```")) + "\n")
    s = import_seed(more, out)
    assert s["imported"] == 1 and s["total"] == 5 and len(read_jsonl(out / "seed.jsonl")) == 5


def test_import_strict_names_file_and_line(tmp_path):
    src = write(tmp_path / "oss.jsonl", LINES)
    with pytest.raises(DataError, match=re.escape(f"{src}:5: field 'solution'")):
        import_seed(src, tmp_path / "seed", strict=True)
    assert not (tmp_path / "seed" / "seed.jsonl").exists()
    with pytest.raises(DataError, match="no such file"):
        import_seed(tmp_path / "missing.jsonl", tmp_path / "seed")


def test_import_cli(tmp_path, capsys):
    from scoder_jax.cli import main

    src = write(tmp_path / "oss.jsonl", LINES)
    out = tmp_path / "seed"
    main(["seed", "--import", str(src), "--out", str(out), "--format", "problem_solution"])
    cap = capsys.readouterr()
    assert json.loads(cap.out.strip().splitlines()[-1])["imported"] == 4
    assert f"{src}:5:" in cap.err and "skipped 5" in cap.err and "dropped" not in cap.err

    # the default format is the loop's (problem_solution_tests): the samples without tests are dropped, as
    # `scoder iterate`'s seed stage drops them
    main(["seed", "--import", str(src), "--out", str(tmp_path / "pst")])
    cap = capsys.readouterr()
    s = json.loads(cap.out.strip().splitlines()[-1])
    assert (s["imported"], s["dropped_no_tests"], s["with_tests"]) == (2, 2, 2)
    assert "dropped 2 samples without tests (--format problem_solution_tests needs them" in cap.err
    assert f"first: {src}:1, {src}:4" in cap.err
    assert {r["problem"] for r in read_jsonl(tmp_path / "pst" / "seed.jsonl")} == {"Write `neg(x)`.", "Write inc."}
    with pytest.raises(SystemExit) as e:
        main(["seed", "--import", str(src), "--out", str(tmp_path / "x"), "--format", "tests_only"])
    assert e.value.code == 2 and "Invalid value for '--format'" in capsys.readouterr().err
    only = write(tmp_path / "only.jsonl", [LINES[0], LINES[3]])
    with pytest.raises(SystemExit) as e:
        main(["seed", "--import", str(only), "--out", str(tmp_path / "none")])
    assert e.value.code == 2 and "scoder seed --format problem_solution" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()

    bad = write(tmp_path / "bad.jsonl", LINES[4:7])
    with pytest.raises(SystemExit) as e:
        main(["seed", "--import", str(bad), "--out", str(tmp_path / "empty")])
    assert e.value.code == 2 and "no usable sample" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["seed", "--import", str(src), "--out", str(tmp_path / "s2"), "--strict", "--format", "problem_solution"])
    assert e.value.code == 2 and f"{src}:5:" in capsys.readouterr().err
