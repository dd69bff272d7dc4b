"""Schedule figures with matplotlib (no screen needed): ``lrlab plot`` and ``make demo``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from lrlab.reporting.figures import (
    WIDTH,
    legend_label,
    legend_layout,
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

    Every curve gets its own colour and line style (colours repeat with a new dash pattern
    past 10, or 20, curves). Up to 6 short labels the legend sits inside the axes; more,
    or long specs, go below the plot in columns, wrapped, and the figure grows to hold them.
    ``log`` draws the lr axis on a log scale (non-positive lrs are left out of it).
    """
    labels = list(schedules)
    legend = legend_layout(labels)
    fig = Figure(figsize=(WIDTH * 0.9, 5.0 + legend.extra_height), layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(steps)
    for (label, schedule), style in zip(schedules.items(), series_styles(len(labels)), strict=True):
        (line,) = ax.plot(x, schedule.curve(steps), label=legend_label(label), lw=1.6, **style)
        line.set_gid(f"curve:{label}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("learning rate" + (" (log scale)" if log else ""))
    if log:
        ax.set_yscale("log", nonpositive="mask")
    ax.set_title(legend_label(title, 90) if title else "learning-rate schedules")
    ax.grid(True, alpha=0.3)
    place_legend(fig, ax, legend)
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
