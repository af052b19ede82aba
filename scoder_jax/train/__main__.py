"""`python -m scoder_jax.train ...`: the `scoder train` command without the CLI group."""

import sys

from scoder_jax.cli import main

if __name__ == "__main__":
    from scoder_jax import cli

    cli.COMMANDS.setdefault("train", "scoder_jax.train.commands:train")
    main(["train", *sys.argv[1:]])
