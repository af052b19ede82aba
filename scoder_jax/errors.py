"""User-facing errors.

`ScoderError` carries a one-line message that names the file, line or field at fault and,
where possible, the fix. The CLI prints it as `error: <message>` and exits with status 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class ScoderError(Exception):
    """A problem with the user's input (file, config, checkpoint), reported in one line."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class ConfigError(ScoderError):
    """A config file or override is wrong: the message names the key and the file."""


class CheckpointError(ScoderError):
    """A checkpoint is missing, truncated, or does not match the model it is loaded into."""


class DataError(ScoderError):
    """A data file is malformed: the message names the file and the line."""
