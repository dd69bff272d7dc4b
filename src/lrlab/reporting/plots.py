"""Figures with matplotlib (Agg backend: no screen needed)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from lrlab.schedules import Schedule  # noqa: E402


def plot_schedules(
    schedules: Mapping[str, Schedule],
    steps: int,
    output: Path,
    *,
    log: bool = False,
    title: str | None = None,
    xlabel: str = "step",
) -> Path:
    """Plot ``lr`` vs step for every schedule on one labelled figure and save it as PNG.

    The legend moves outside the axes when there are many curves.
    """
    output = Path(output)
    fig, ax = plt.subplots(figsize=(9, 5), dpi=110)
    x = np.arange(steps)
    for label, schedule in schedules.items():
        ax.plot(x, schedule.curve(steps), label=label, linewidth=1.6)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("learning rate")
    if log:
        ax.set_yscale("log")
    ax.set_title(title or "learning-rate schedules")
    ax.grid(True, alpha=0.3)
    if len(schedules) > 6:
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        ax.legend(fontsize="small")
    fig.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    fig.savefig(tmp, format="png")
    plt.close(fig)
    tmp.replace(output)
    return output
