"""The sandbox's vocabulary: what a program may use (`Limits`), what happened to it (`Outcome`),
how it is isolated (`Isolation`), and the error for isolation this machine lacks.

Plain values with no process handling; `execution` (the runner) and `sandbox_process` (the fork
server and the watch over one run) build on them.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from scoder_jax.errors import ConfigError, ScoderError

MODES = ("namespaces", "userns", "uid", "none")
STATUSES = ("passed", "failed", "timeout", "memory", "output_limit", "killed", "error")


class SandboxError(ScoderError):
    """The requested isolation is not available on this machine."""


@dataclass(frozen=True)
class Limits:
    """What a sandboxed program may use. `cpu_s=None` means `timeout_s + 1`.

    `site=True` lets the program import third-party packages (the interpreter's
    site-packages); the default keeps start-up lean (stdlib only). `isolation` picks a mode
    from `MODES` or "auto" (the strongest available).
    """

    timeout_s: float = 10.0
    cpu_s: float | None = None
    memory_mb: int = 1024
    max_processes: int = 64
    max_file_mb: int = 16
    max_open_files: int = 64
    max_output_bytes: int = 1 << 20
    network: bool = False
    site: bool = False
    isolation: str = "auto"

    def __post_init__(self):
        if not self.timeout_s > 0:
            raise ConfigError(f"sandbox timeout_s must be positive, got {self.timeout_s}")
        if self.cpu_s is not None and not self.cpu_s > 0:
            raise ConfigError(f"sandbox cpu_s must be positive or None, got {self.cpu_s}")
        if self.memory_mb < 64:
            raise ConfigError(f"sandbox memory_mb must be at least 64 (the interpreter needs it), got {self.memory_mb}")
        for name in ("max_processes", "max_file_mb", "max_open_files"):
            if getattr(self, name) < 1:
                raise ConfigError(f"sandbox {name} must be at least 1, got {getattr(self, name)}")
        if self.max_open_files < 16:
            raise ConfigError(f"sandbox max_open_files must be at least 16, got {self.max_open_files}")
        if self.max_output_bytes < 0:
            raise ConfigError(f"sandbox max_output_bytes must be >= 0, got {self.max_output_bytes}")
        if self.isolation not in ("auto", *MODES):
            raise ConfigError(f"sandbox isolation must be 'auto' or one of {', '.join(MODES)}, got {self.isolation!r}")

    @property
    def cpu_limit_s(self) -> int:
        return max(1, math.ceil(self.cpu_s if self.cpu_s is not None else self.timeout_s + 1))


@dataclass(frozen=True)
class Outcome:
    status: str  # one of STATUSES
    exit_code: int | None  # negative: killed by that signal; None: killed by the sandbox
    stdout: str
    stderr: str
    wall_s: float
    reason: str = ""  # short human reason for anything but "passed"

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "passed": self.passed}


@dataclass(frozen=True)
class Isolation:
    mode: str
    network_isolated: bool  # a private network namespace
    uid_separated: bool  # the program cannot signal the caller or write its files
    detail: str
    unavailable: tuple[str, ...] = ()  # "auto": why each stronger mode failed its probe here


_ISOLATION_DETAIL = {
    "namespaces": "pid+mount+net+ipc+uts namespaces, per-worker uid, read-only mounts, private /tmp",
    "userns": "user+pid+mount+net+ipc+uts namespaces, no capabilities, read-only mounts, private /tmp",
    "uid": "per-worker uid, no network isolation",
    "none": "same uid as the caller, no network isolation",
}
