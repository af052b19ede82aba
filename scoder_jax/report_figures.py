"""The report's figures (matplotlib, Agg): pure functions from the collected numbers to a Figure.

Every figure passes through `declutter` before it is rendered: values are written whole
(no "1e-5 + 5.65e-1" offset beside an axis, which lands on its label) and an axis whose tick
labels overlap gets fewer ticks until they do not (failing that, slanted labels).
`tick_label_overlaps(fig)` lists the texts of an axes that still overlap (the tests require none).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

COLORS = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _iteration_axis(ax, xs: Sequence[int], labels: Sequence[str]) -> None:
    """One tick per iteration, labelled by name ("1", "2", "final"): never a fractional tick."""
    ax.set_xticks(list(xs), list(labels))
    ax.set_xlim(min(xs) - 0.5, max(xs) + 0.5)
    ax.set_xlabel("iteration")


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", "-.", ":")


def _lines(ax, xs: Sequence[int], series: Mapping[str, Sequence[float | None]]) -> None:
    """One line per series, each with its own colour, marker and dash (equal series stay
    visible on top of each other); None values are left out."""
    for i, (name, values) in enumerate(series.items()):
        pts = [(x, v) for x, v in zip(xs, values) if v is not None]
        if pts:
            ax.plot([x for x, _ in pts], [v for _, v in pts], label=name, color=COLORS[i % len(COLORS)],
                    marker=MARKERS[i % len(MARKERS)], markersize=8 - i, linestyle=LINESTYLES[i % len(LINESTYLES)],
                    linewidth=1.6)


def counts_figure(xs: Sequence[int], labels: Sequence[str], series: Mapping[str, Sequence[float | None]]):
    """Samples per iteration: one line per count (drawn, parsed, ...); None is left out."""
    from matplotlib.ticker import MaxNLocator

    fig, ax = _plt().subplots(figsize=(7, 3.5))
    _lines(ax, xs, series)
    _iteration_axis(ax, xs, labels)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("samples")
    ax.set_ylim(bottom=0)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    ax.grid(alpha=0.3)
    return fig


def rates_figure(xs: Sequence[int], labels: Sequence[str], series: Mapping[str, Sequence[float | None]]):
    """Rates in [0, 1] per iteration (pass@1, kept samples whose own tests pass, ...)."""
    fig, ax = _plt().subplots(figsize=(7, 3.2))
    _lines(ax, xs, series)
    _iteration_axis(ax, xs, labels)
    ax.set_ylim(-0.05, 1.05)
    ax.set_ylabel("rate")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    ax.grid(alpha=0.3)
    return fig


def _bins(values: Sequence[float], n: int = 20) -> np.ndarray:
    lo, hi = (min(values), max(values)) if len(values) else (0.0, 1.0)
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, n + 1)


def totals_figure(totals: Mapping[str, Sequence[float]]):
    """One panel per iteration: its total scores (filled) against the previous iteration's
    (outline), on shared bins. `totals`: iteration label -> totals, in iteration order."""
    from matplotlib.ticker import MaxNLocator

    names = list(totals)
    bins = _bins([v for vals in totals.values() for v in vals])
    fig, axes = _plt().subplots(1, len(names), figsize=(max(3.2 * len(names), 5), 2.9), squeeze=False,
                                sharey=True)
    for k, (ax, name) in enumerate(zip(axes[0], names)):
        ax.hist(totals[name], bins=bins, color=COLORS[0], alpha=0.75)
        if k > 0:
            ax.hist(totals[names[k - 1]], bins=bins, histtype="step", color=COLORS[1], linewidth=1.8)
            ax.set_title(f"{name} (filled) vs {names[k - 1]} (outline)", fontsize=9)
        else:
            ax.set_title(f"iteration {name}", fontsize=9)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("total score")
    axes[0][0].set_ylabel("candidates")
    return fig


def aspects_figure(aspects: Mapping[str, Sequence[float]]):
    """One histogram per judge aspect, ratings 0..9."""
    from matplotlib.ticker import MaxNLocator

    names = sorted(aspects)
    fig, axes = _plt().subplots(1, len(names), figsize=(max(2.6 * len(names), 4), 2.6), squeeze=False, sharey=True)
    for ax, a in zip(axes[0], names):
        ax.hist(aspects[a], bins=np.arange(-0.25, 9.5, 0.5), color=COLORS[0])
        ax.set_xticks([0, 3, 6, 9])
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(a, fontsize=10)
    axes[0][0].set_ylabel("candidates")
    return fig


def influence_figure(per_iteration: Mapping[str, Sequence[float]]):
    """Influence scores of the candidates scoring kept, stacked by iteration."""
    from matplotlib.ticker import MaxNLocator

    names = [n for n, v in per_iteration.items() if len(v)]
    fig, ax = _plt().subplots(figsize=(6, 3))
    values = [list(per_iteration[n]) for n in names]
    ax.hist(values, bins=_bins([v for vals in values for v in vals], 24), stacked=True,
            color=[COLORS[i % len(COLORS)] for i in range(len(names))], label=[f"iteration {n}" for n in names])
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("influence (weighted mean cosine to the seed set)")
    ax.set_ylabel("candidates")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return fig


# ----------------------------------------------------------------------------- legibility


def _texts(ax) -> list:
    """Every text drawn on an axes and around it: tick labels, offset texts, axis labels, title."""
    texts = [*ax.get_xticklabels(), *ax.get_yticklabels(), ax.xaxis.get_offset_text(), ax.yaxis.get_offset_text(),
             ax.xaxis.label, ax.yaxis.label, ax.title]
    return [t for t in texts if t.get_visible() and t.get_text()]


def _pairs(texts, renderer, gap: float = 4.0) -> list[tuple[str, str]]:
    """Pairs of texts closer than `gap` pixels (touching labels read as one number)."""
    boxes = [t.get_window_extent(renderer).padded(gap / 2) for t in texts]
    return [(texts[i].get_text(), texts[j].get_text()) for i in range(len(boxes)) for j in range(i + 1, len(boxes))
            if boxes[i].overlaps(boxes[j])]


def tick_label_overlaps(fig) -> list[tuple[str, str]]:
    """Pairs of texts of one axes (tick labels, offset texts, axis labels, title) whose drawn boxes
    overlap or come within 4 pixels."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    return [pair for ax in fig.axes for pair in _pairs(_texts(ax), renderer)]


def declutter(fig) -> None:
    """Makes every axis legible: values written whole (no offset or scientific notation beside
    the axis, which collides with its label), then fewer x ticks while their labels overlap,
    then slanted labels."""
    from matplotlib.ticker import FixedLocator, MaxNLocator, ScalarFormatter

    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            if isinstance(axis.get_major_formatter(), ScalarFormatter):
                axis.get_major_formatter().set_useOffset(False)
                axis.get_major_formatter().set_scientific(False)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        fixed = isinstance(ax.xaxis.get_major_locator(), FixedLocator)
        nbins = 4
        while _pairs(_texts(ax), renderer) and not fixed and nbins >= 2:
            ax.xaxis.set_major_locator(MaxNLocator(nbins=nbins))
            fig.canvas.draw()
            nbins -= 1
        if _pairs(_texts(ax), renderer):
            for t in ax.get_xticklabels():
                t.set_rotation(30)
                t.set_horizontalalignment("right")
            fig.canvas.draw()
