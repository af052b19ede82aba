"""`scoder`: the command-line entry point. One sub-command per stage.

Sub-commands live beside the code they drive (`scoder_jax/<package>/commands.py`) and are
imported only when invoked, so `scoder --help` stays fast and a broken optional stage never
breaks the others. A `ScoderError` becomes `error: <one line>` and exit status 2.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys

import click

from scoder_jax.errors import ScoderError

# name -> "module:attribute" of a click command or group.
COMMANDS: dict[str, str] = {
    "convert": "scoder_jax.models.commands:convert",
    "verify": "scoder_jax.models.commands:verify",
    "generate": "scoder_jax.generate.commands:generate",
    "snippets": "scoder_jax.data.commands:snippets",
    "sandbox": "scoder_jax.score.commands:sandbox",
    "seed": "scoder_jax.synth.commands:seed",
    "eval": "scoder_jax.eval.commands:eval_command",
    "compare": "scoder_jax.eval.compare:compare",
    "train": "scoder_jax.train.commands:train",
    "influence": "scoder_jax.influence.commands:influence",
    "iterate": "scoder_jax.run_commands:iterate",
    "plan": "scoder_jax.plan:plan",
    "sample": "scoder_jax.synth.sample_commands:sample",
    "score": "scoder_jax.score.score_commands:score",
    "scorer": "scoder_jax.score.scorer_commands:scorer",
    "export": "scoder_jax.run_commands:export",
    "student": "scoder_jax.student:student",
}


def _module_exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        present = {name for name, target in COMMANDS.items() if _module_exists(target.split(":")[0])}
        return sorted(set(super().list_commands(ctx)) | present)

    def get_command(self, ctx, name):
        if name in COMMANDS:
            module, attr = COMMANDS[name].split(":")
            try:
                return getattr(importlib.import_module(module), attr)
            except ModuleNotFoundError as e:
                if e.name and e.name.startswith("scoder_jax"):
                    raise click.ClickException(
                        f"command '{name}' is not available in this build ({e.name} missing)") from e
                raise
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="scoder-jax")
def cli() -> None:
    """scoder-jax: SCoder's iterative self-distillation of code-data synthesizers, in JAX.

    Compiled XLA programs are cached on disk (JAX's persistent compilation cache) in
    $SCODER_COMPILE_CACHE, default ~/.cache/scoder-jax/xla, so the loop's repeated fine-tunes,
    sampling and influence stages compile once per machine; SCODER_COMPILE_CACHE=off disables it,
    and JAX_COMPILATION_CACHE_DIR, when set, wins. Every program is cached, however quickly it
    compiled (JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS, when set, wins).
    """
    enable_compile_cache()


def enable_compile_cache() -> None:
    """Points JAX's persistent compilation cache at the scoder cache (set before JAX is imported)."""
    where = os.environ.get("SCODER_COMPILE_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "scoder-jax", "xla"))
    if where.lower() not in ("off", "0", "none", ""):
        os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", where)
        # JAX caches only programs that took >= 1 s to compile; the many sub-second ones (sampling's
        # helpers, the optimizer's init, the scorer's and influence's small programs) add up: the
        # smoke preset run again takes 10% less CPU with them cached, in-process tiny-model tests 20%
        os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")


def _exit_distributed(code: int) -> None:
    if "scoder_jax.parallel" in sys.modules:  # only a command that used JAX can be multi-process
        sys.modules["scoder_jax.parallel"].exit_distributed(code)


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, standalone_mode=False)
    except ScoderError as e:
        click.echo(f"error: {e}", err=True)
        _exit_distributed(2)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)


if __name__ == "__main__":
    main()
