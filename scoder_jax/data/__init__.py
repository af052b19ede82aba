"""Data for the stages: the snippet pool (`build_pool`), its readers, filters, dedup,
decontamination and writers (JSONL, TFDS ArrayRecord).

Import the pieces from their modules (`scoder_jax.data.pool`, ...); this package imports
nothing heavy on its own so that `scoder --help` stays fast.
"""

from __future__ import annotations

__all__ = ["build_pool", "PoolConfig"]


def __getattr__(name: str):
    if name in __all__:
        from scoder_jax.data import pool

        return getattr(pool, name)
    raise AttributeError(name)
