"""A trained scorer's folder (`scoder scorer train --out DIR`) as a judge: DIR/scorer.json names
its checkpoint and the aspects it was trained on, which must be the aspects it is asked about.

    scorer.json  {"format": "scoder-scorer/1", "aspects": [{name, title, rubric}, ...],
                  "checkpoint": path relative to DIR, "base", "annotations", "report", ...}

The judge's prompt for one aspect lists every aspect's rubric in order, so a scorer answers
the prompts it was trained on only for the same aspects in the same order; anything else is
refused before any work. Light on imports: the run config checks a scorer at load.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from scoder_jax.errors import ConfigError

SCORER_FILE = "scorer.json"
SCORER_FORMAT = "scoder-scorer/1"


def read_scorer(path: str | Path) -> dict | None:
    """The scorer.json of a scorer folder; None when `path` is not one (a plain checkpoint)."""
    f = Path(path) / SCORER_FILE
    if not f.is_file():
        return None
    try:
        info = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"{f}: unreadable scorer description ({type(e).__name__})") from None
    ok = isinstance(info, dict) and info.get("format") == SCORER_FORMAT and isinstance(info.get("checkpoint"), str) \
        and isinstance(info.get("aspects"), list) and info["aspects"] and all(
            isinstance(a, dict) and all(isinstance(a.get(k), str) for k in ("name", "title", "rubric"))
            for a in info["aspects"])
    if not ok:
        raise ConfigError(f"{f}: not a scorer description ({SCORER_FORMAT}: checkpoint and aspects "
                          "[{name, title, rubric}]); retrain with `scoder scorer train`")
    return info


def check_scorer_aspects(path: str | Path, info: dict, aspects: Sequence) -> None:
    """ConfigError unless the scorer was trained on exactly `aspects` (Aspect objects or
    {name, title, rubric} mappings), in that order."""
    def triple(a):
        return (a["name"], a["title"], a["rubric"]) if isinstance(a, dict) else (a.name, a.title, a.rubric)

    have, want = [triple(a) for a in info["aspects"]], [triple(a) for a in aspects]
    if have == want:
        return
    hn, wn = [a[0] for a in have], [a[0] for a in want]
    if hn != wn:
        raise ConfigError(f"{path}: this scorer was trained on the aspects {', '.join(hn)}, but it is asked about "
                          f"{', '.join(wn)} (score.aspects): set score.aspects to [{', '.join(hn)}] or train a "
                          "scorer on these aspects")
    diff = next(h[0] for h, w in zip(have, want) if h != w)
    raise ConfigError(f"{path}: this scorer was trained with another title or rubric for aspect {diff!r} than the "
                      "judge now uses: retrain it (`scoder scorer annotate` and `scoder scorer train`)")


def scorer_checkpoint(path: str | Path, aspects: Sequence) -> str:
    """A scorer folder's checkpoint (after checking its aspects); any other path unchanged."""
    info = read_scorer(path)
    if info is None:
        return str(path)
    check_scorer_aspects(path, info, aspects)
    ckpt = Path(path) / info["checkpoint"]
    if not ckpt.exists():
        raise ConfigError(f"{Path(path) / SCORER_FILE}: its checkpoint {ckpt} is missing")
    return str(ckpt)


__all__ = ["SCORER_FILE", "SCORER_FORMAT", "read_scorer", "check_scorer_aspects", "scorer_checkpoint"]
