"""`scoder snippets build|stats`: the snippet pool from the command line."""

from __future__ import annotations

import collections
import json
import time
from pathlib import Path

import click

from scoder_jax.errors import DataError
from scoder_jax.output_dir import OVERWRITE_HELP, check_output_dir


@click.group()
def snippets() -> None:
    """Build and inspect the snippet pool the synthesizer draws problems from."""


@snippets.command("build")
@click.argument("sources", nargs=-1, required=True)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Output folder: new or empty, unless --overwrite.")
@click.option("--overwrite", is_flag=True, help=OVERWRITE_HELP)
@click.option("--format", "fmt", type=click.Choice(["jsonl", "tfds"]), default="jsonl", show_default=True)
@click.option("--benchmarks", multiple=True, default=("humaneval", "mbpp"), show_default=True,
              help="Decontaminate against: humaneval, mbpp, a JSONL export (FILE or NAME=FILE), or none. Repeatable; "
                   "commas allowed.")
@click.option("--mbpp", "mbpp_path", type=click.Path(dir_okay=False), default=None,
              help="MBPP sanitized JSON/JSONL (else $SCODER_MBPP, else the hub when online).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--workers", type=int, default=0, show_default=True, help="Processes (0: all cores).")
@click.option("--secrets", "secret_action", type=click.Choice(["drop", "redact"]), default="drop", show_default=True)
@click.option("--drop-tests/--keep-tests", default=False, show_default=True, help="Drop test code.")
@click.option("--lang", default=None, help="Language of record sources that carry none (python, javascript, ...).")
@click.option("--languages", default="", help="Keep only these languages (comma-separated).")
@click.option("--windows-per-file", type=int, default=1, show_default=True)
@click.option("--jaccard", type=float, default=0.7, show_default=True, help="Near-dedup threshold.")
@click.option("--no-near-dedup", is_flag=True, help="Skip MinHash LSH near dedup.")
@click.option("--ngram", type=int, default=13, show_default=True, help="Decontamination n-gram size (0: off).")
@click.option("--exclude", multiple=True, help="More file or folder names/globs to skip in trees.")
@click.option("--content-field", default="content", show_default=True)
@click.option("--shard-size", type=int, default=100_000, show_default=True)
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when stderr is a terminal).")
def build(sources, out_dir, overwrite, fmt, benchmarks, mbpp_path, seed, workers, secret_action, drop_tests, lang,
          languages, windows_per_file, jaccard, no_near_dedup, ngram, exclude, content_field, shard_size,
          progress) -> None:
    """Build the pool from SOURCES: folders, .jsonl/.parquet(.gz/.zst) files, TFDS folders, tfds:NAME[:SPLIT].

    Sources that yield no snippet at all are an error (exit status 2), and nothing is written.
    """
    from scoder_jax.data.pool import PoolConfig, build_pool
    from scoder_jax.data.readers import DEFAULT_EXCLUDE

    check_output_dir(out_dir, overwrite=overwrite)
    benches = tuple(b.strip() for spec in benchmarks for b in spec.split(",") if b.strip())
    config = PoolConfig(
        seed=seed, format=fmt, benchmarks=benches, mbpp_path=mbpp_path, workers=workers, secrets=secret_action,
        drop_tests=drop_tests, lang=lang, languages=tuple(x.strip() for x in languages.split(",") if x.strip()),
        windows_per_file=windows_per_file, jaccard=jaccard, near_dedup=not no_near_dedup, ngram=ngram,
        exclude=DEFAULT_EXCLUDE + tuple(exclude), content_field=content_field, shard_size=shard_size)
    t0 = time.perf_counter()
    manifest = build_pool(list(sources), out_dir, config, progress=progress)
    dt = time.perf_counter() - t0
    s = manifest["snippets"]
    removed = {k: v["removed"] for k, v in manifest["decontamination"]["benchmarks"].items()}
    click.echo(f"{manifest['output']['snippets']} snippets -> {out_dir} ({fmt}) in {dt:.1f}s; "
               f"{s.get('extracted', 0)} extracted, {s.get('exact_duplicate', 0)} exact and "
               f"{s.get('near_duplicate', 0)} near duplicates, decontaminated {removed}")
    if manifest["problems_total"]:
        click.echo(f"{manifest['problems_total']} problem(s) in the sources; see 'problems' in "
                   f"{Path(out_dir) / 'manifest.json'}", err=True)


@snippets.command("stats")
@click.argument("pool_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as one JSON object.")
def stats(pool_dir, as_json) -> None:
    """Counts of a built pool: per filter, per language and kind, read back from its files."""
    from scoder_jax.data.writers import iter_pool

    manifest_path = Path(pool_dir) / "manifest.json"
    if not manifest_path.exists():
        raise DataError(f"{pool_dir}: not a snippet pool (no manifest.json)")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    langs: collections.Counter = collections.Counter()
    kinds: collections.Counter = collections.Counter()
    lines: list[int] = []
    for rec in iter_pool(pool_dir):
        langs[rec["lang"]] += 1
        kinds[rec["kind"]] += 1
        lines.append(int(rec["n_lines"]))
    lines.sort()
    q = (lambda p: lines[min(len(lines) - 1, int(p * len(lines)))]) if lines else (lambda p: 0)
    result = {
        "snippets": len(lines), "manifest_snippets": manifest["output"]["snippets"],
        "format": manifest["output"]["format"], "languages": dict(langs.most_common()),
        "kinds": dict(kinds.most_common()),
        "n_lines": {"p10": q(0.1), "p50": q(0.5), "p90": q(0.9), "max": lines[-1] if lines else 0},
        "documents": manifest["documents"], "filters": manifest["snippets"], "secrets": manifest["secrets"],
        "decontamination": {k: v["removed"] for k, v in manifest["decontamination"]["benchmarks"].items()},
    }
    if result["snippets"] != result["manifest_snippets"]:
        raise DataError(f"{pool_dir}: manifest says {result['manifest_snippets']} snippets but the files hold "
                        f"{result['snippets']}: the pool is damaged; rebuild it")
    if as_json:
        click.echo(json.dumps(result, sort_keys=True))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]{pool_dir}[/]: {result['snippets']} snippets ({result['format']}); "
                  f"lines p10/p50/p90/max = {result['n_lines']['p10']}/{result['n_lines']['p50']}/"
                  f"{result['n_lines']['p90']}/{result['n_lines']['max']}")
    for title, data in (("documents", result["documents"]), ("snippets (per filter)", result["filters"]),
                        ("secrets", result["secrets"]), ("languages", result["languages"]),
                        ("kinds", result["kinds"]), ("decontaminated", result["decontamination"])):
        if not data:
            continue
        table = Table(title=title, show_header=False)
        for k, v in data.items():
            table.add_row(str(k), str(v))
        console.print(table)
