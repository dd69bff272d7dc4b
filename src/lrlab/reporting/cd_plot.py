"""The critical-difference diagram (Demšar 2006) of a Friedman/Nemenyi rank comparison
(:class:`lrlab.analysis.ranks.RankComparison`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from lrlab.analysis.pairwise import format_p
from lrlab.analysis.ranks import RankComparison
from lrlab.reporting.style import save_png

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def critical_difference_plot(
    result: RankComparison, path: str | Path | None = None, *, title: str | None = None
) -> Figure:
    """Critical-difference diagram (Demšar 2006): the configs on an axis of mean rank (1 = best,
    at the left), the CD as a scale bar, and a thick bar under each group of configs whose mean
    ranks are within the CD of each other (not distinguishable). Returns the matplotlib Figure;
    writes a PNG when ``path`` is given.
    """
    from matplotlib.figure import Figure

    k = len(result.names)
    half = math.ceil(k / 2)
    n_groups = len(result.groups)
    row, unit = 0.45, 0.38  # label row spacing (data units) and inches per data unit
    bottom = -(0.6 + 0.3 * n_groups + row * (half - 1)) - 0.4
    top = 1.9
    chars = max(len(f"{n} ({r:.2f})") for n, r in zip(result.names, result.mean_ranks, strict=True))
    width = 8.0
    margin = min(0.4, (0.075 * chars + 0.15) / width)  # room for the labels, figure fraction
    fig = Figure(figsize=(width, (top - bottom) * unit + 0.2))
    fig.subplots_adjust(left=margin, right=1 - margin, top=0.98, bottom=0.02)
    ax = fig.add_subplot()
    x0, x1 = 0.9, k + 0.1
    ax.set_xlim(x0, x1)
    ax.set_ylim(bottom, top)
    ax.axis("off")
    ax.plot([1, k], [0, 0], color="black", lw=1)  # the rank axis, 1 = best at the left
    for tick in range(1, k + 1):
        ax.plot([tick, tick], [0, 0.15], color="black", lw=1)
        ax.text(tick, 0.22, str(tick), ha="center", va="bottom", fontsize=9)
    cd = result.critical_difference
    ax.plot([1, 1 + cd], [1.0, 1.0], color="black", lw=1.5, label="critical difference")
    ax.text(1 + cd / 2, 1.07, f"CD = {cd:.2f}", ha="center", va="bottom", fontsize=9)
    friedman = format_p(result.p_value)
    ax.text(
        (1 + k) / 2,
        top,
        title
        or f"mean rank over {result.n_blocks} seeds (1 = best); Friedman {friedman}; "
        "red bars join configs not distinguishable (Nemenyi)",
        ha="center",
        va="top",
        fontsize=9,
    )
    for i, (name, rank) in enumerate(zip(result.names, result.mean_ranks, strict=True)):
        left = i < half
        y = -(0.6 + 0.3 * n_groups) - row * (i if left else k - 1 - i)
        edge = x0 if left else x1
        ax.plot([rank, rank, edge], [0, y, y], color="0.35", lw=0.8)
        ax.text(
            edge + (-0.03 if left else 0.03) * (x1 - x0) / k,
            y,
            f"{name} ({rank:.2f})",
            ha="right" if left else "left",
            va="center",
            fontsize=9,
            clip_on=False,
        )
    for g, (i, j) in enumerate(result.groups):
        y = -0.35 - 0.3 * g
        ax.plot(
            [result.mean_ranks[i] - 0.05, result.mean_ranks[j] + 0.05],
            [y, y],
            color="tab:red",
            lw=3,
            solid_capstyle="round",
        )
    if path is not None:
        save_png(fig, path, dpi=120)  # the one safe writer: no links followed, no half file
    return fig
