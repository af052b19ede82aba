"""CLI for the score stage: `scoder sandbox ...` (run one program in the sandbox)."""

from __future__ import annotations

import json
import sys

import click

from scoder_jax.errors import DataError


@click.group("sandbox")
def sandbox() -> None:
    """Run untrusted Python programs in the execution sandbox."""


@sandbox.command("run")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--timeout", "timeout", type=float, default=10.0, show_default=True, help="Wall-clock seconds.")
@click.option("--memory", "memory", type=int, default=1024, show_default=True, help="Address-space limit in MB.")
@click.option("--cpu", "cpu", type=float, default=None, help="CPU seconds (default: timeout + 1).")
@click.option("--max-processes", type=int, default=64, show_default=True)
@click.option("--max-file-mb", type=int, default=16, show_default=True)
@click.option("--max-open-files", type=int, default=64, show_default=True)
@click.option("--max-output-bytes", type=int, default=1 << 20, show_default=True)
@click.option("--network/--no-network", default=False, show_default=True, help="Allow network access.")
@click.option("--site/--no-site", default=False, show_default=True, help="Allow third-party packages.")
@click.option("--isolation", type=click.Choice(["auto", "namespaces", "userns", "uid", "none"]), default="auto",
              show_default=True)
@click.option("--stdin", "stdin_file", type=click.Path(dir_okay=False, exists=True), default=None,
              help="File fed to the program's stdin.")
def run(file, timeout, memory, cpu, max_processes, max_file_mb, max_open_files, max_output_bytes, network, site,
        isolation, stdin_file) -> None:
    """Run the Python program FILE ('-' for stdin) and print its outcome as one JSON object.

    Exit status 0 when the program passed (exit code 0 within the limits), 1 otherwise.
    """
    from scoder_jax.score import execution
    from scoder_jax.score.sandbox_types import Limits

    code = _read(file)
    stdin = _read(stdin_file) if stdin_file else ""
    limits = Limits(
        timeout_s=timeout, cpu_s=cpu, memory_mb=memory, max_processes=max_processes, max_file_mb=max_file_mb,
        max_open_files=max_open_files, max_output_bytes=max_output_bytes, network=network, site=site,
        isolation=isolation,
    )
    iso = execution.isolation(limits.isolation)
    out = execution.run_python(code, limits=limits, stdin=stdin)
    record = {**out.to_dict(), "isolation": iso.mode}
    click.echo(json.dumps(record, ensure_ascii=False))
    sys.exit(0 if out.passed else 1)


@sandbox.command("info")
def info() -> None:
    """Print which isolation the sandbox uses on this machine, as JSON.

    `unavailable` says why each stronger mode failed its self-test here; with
    SCODER_REQUIRE_ISOLATION set, a weaker mode is an error (exit status 2).
    """
    from scoder_jax.score import execution

    iso = execution.isolation("auto")
    click.echo(json.dumps({"mode": iso.mode, "network_isolated": iso.network_isolated,
                           "uid_separated": iso.uid_separated, "detail": iso.detail,
                           "unavailable": list(iso.unavailable), "required": execution.required_isolation()}))


def _read(path: str) -> str:
    try:
        if path == "-":
            return sys.stdin.read()
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read the program ({e})") from None
