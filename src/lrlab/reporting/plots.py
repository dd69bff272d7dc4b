"""Schedule figures with matplotlib (no screen needed): ``lrlab plot`` and ``make demo``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from lrlab.reporting.style import (
    WIDTH,
    legend_label,
    lr_drawstyle,
    place_legend,
    plain_text,
    save_png,
    series_styles,
)
from lrlab.schedules import Schedule

__all__ = ["plot_schedules", "schedules_figure"]


@plain_text
def schedules_figure(
    schedules: Mapping[str, Schedule],
    steps: int,
    *,
    log: bool = False,
    title: str | None = None,
    xlabel: str = "step",
) -> Figure:
    """``lr`` vs step of every schedule on one labelled figure.

    Every curve gets its own colour and dash pattern (up to 12 curves; past 12 they pair
    anew and add a marker, see :func:`~lrlab.reporting.style.series_styles`). A curve
    with jumps (multistep, staircase, restarts) is drawn as steps, the lr of step ``t``
    held on ``[t, t+1)`` so each jump is a vertical edge; smooth curves are lines. Up to 6
    short labels the legend sits inside the axes; more, or long specs, go below the plot
    in columns, wrapped, and the figure grows to hold them. ``log`` draws the lr axis on a
    log scale (non-positive lrs are left out of it).
    """
    fig = Figure(figsize=(WIDTH * 0.9, 5.0), layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(steps)
    styles = series_styles(len(schedules))
    for (label, schedule), style in zip(schedules.items(), styles, strict=True):
        lr = schedule.curve(steps)
        (line,) = ax.plot(
            x, lr, label=legend_label(label), lw=1.6, drawstyle=lr_drawstyle(lr), **style
        )
        line.set_gid(f"curve:{label}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("learning rate" + (" (log scale)" if log else ""))
    if log:
        ax.set_yscale("log", nonpositive="mask")
    ax.set_title(legend_label(title, 90) if title else "learning-rate schedules")
    ax.grid(True, alpha=0.3)
    place_legend(fig, ax)
    return fig


def plot_schedules(
    schedules: Mapping[str, Schedule],
    steps: int,
    output: Path,
    *,
    log: bool = False,
    title: str | None = None,
    xlabel: str = "step",
) -> Path:
    """Plot ``lr`` vs step for every schedule (see :func:`schedules_figure`) and save it as
    PNG (written to a temporary name, then renamed)."""
    fig = schedules_figure(schedules, steps, log=log, title=title, xlabel=xlabel)
    return save_png(fig, output)
