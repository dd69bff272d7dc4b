"""The figures of an experiment report, drawn from its store alone (matplotlib, no screen).

Each function takes a :class:`~lrlab.reporting.data.ReportData` and returns a
``matplotlib.figure.Figure`` (no pyplot state, so figures can be built anywhere):

- :func:`lr_figure`: the lr of every distinct schedule against the update step (epochs on
  the top axis), with the lr the engine recorded at each epoch's last update as dots
  (they sit on the line unless a plateau controller lowered the lr);
- :func:`curves_figure`: training and validation loss and metrics per epoch, one line
  per config (the mean over seeds) with a band over the seeds (min to max: every seed's
  curve lies inside);
- :func:`final_figure`: the final metric per config, every seed a dot, the mean with its
  95% t-interval (the results table's), best config on top;
- :func:`sweep_figure`: for an lr sweep, the metric against the peak lr (log axis),
  training dashed and validation solid, and the train/validation gap;
- :func:`ranks_figure`: the critical-difference diagram of the configs' mean ranks
  (:func:`lrlab.reporting.cd_plot.critical_difference_plot`) when there is one.

The look is :mod:`lrlab.reporting.style`'s: every config keeps one colour and dash pattern
in every figure (:func:`~lrlab.reporting.style.config_styles`, distinct in colour and in
grayscale for up to 12 configs), an lr curve with jumps is drawn as steps with vertical
edges, legends with many or long entries go below the axes and are never cut off.
Labels are drawn as plain text: ``$`` is not mathtext and a leading ``_`` is shown.
Lines carry a ``gid`` (``mean:<config>``, ``curve:<label>``...) so tests can count them.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from lrlab.analysis.stats import summarize
from lrlab.reporting.style import (
    RC,
    WIDTH,
    config_styles,
    figure_png,
    legend_label,
    lr_drawstyle,
    place_legend,
    plain_text,
    save_png,
    series_styles,
)

if TYPE_CHECKING:
    from lrlab.reporting.data import ReportData

__all__ = [
    "FigureSpec",
    "curves_figure",
    "experiment_figures",
    "final_figure",
    "lr_figure",
    "ranks_figure",
    "sweep_figure",
    # drawn with lrlab.reporting.style; these four are also importable from here
    "RC",
    "figure_png",
    "legend_label",
    "save_png",
]

RECORDED = "lr recorded at each epoch's last update"


def _empty(fig: Figure, ax: Any, message: str) -> Figure:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])
    return fig


def _positive_span(values: np.ndarray) -> float:
    v = values[np.isfinite(values) & (values > 0)]
    return float(v.max() / v.min()) if v.size else 1.0


# --------------------------------------------------------------------------- lr curves
@plain_text
def lr_figure(data: ReportData) -> Figure:
    """The lr of every schedule against the step (see the module docstring)."""
    curves = data.curves
    styles = config_styles(data.labels)
    labels = [c.label + (" (+ plateau)" if c.plateau else "") for c in curves]
    fig = Figure(figsize=(WIDTH, 4.2), layout="constrained")
    ax = fig.add_subplot()
    spe, epochs = data.steps_per_epoch, data.n_epochs
    if not curves or epochs == 0:
        return _empty(fig, ax, "no trials stored yet")
    steps = np.arange(epochs * spe)
    everything = []
    for curve, label in zip(curves, labels, strict=True):
        style = styles[curve.configs[0]]
        lr = data.curve_lr(curve)
        if lr is not None:
            everything.append(lr)
            (line,) = ax.plot(
                steps, lr, label=legend_label(label), lw=1.8, drawstyle=lr_drawstyle(lr), **style
            )
            line.set_gid(f"curve:{curve.label}")
        recorded = data.recorded_lr(curve.configs)
        ends = np.arange(1, epochs + 1) * spe - 1
        ok = np.isfinite(recorded)
        if ok.any():
            dots = ax.plot(
                ends[ok], recorded[ok], "o", ms=3.5, color=style["color"], alpha=0.9, label=None
            )
            dots[0].set_gid(f"recorded:{curve.label}")
            everything.append(recorded[ok])
    ax.plot([], [], "o", ms=3.5, color="0.3", label=RECORDED)
    if everything and _positive_span(np.concatenate(everything)) > 50:
        ax.set_yscale("log")
    ax.set_xlabel("optimizer update (step)")
    ax.set_ylabel("learning rate" + (" (log)" if ax.get_yscale() == "log" else ""))
    ax.set_xlim(0, len(steps))
    top = ax.secondary_xaxis("top", functions=(lambda s: s / spe, lambda e: e * spe))
    top.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    top.set_xlabel("epochs completed")
    ax.grid(True, alpha=0.3)
    ax.set_title(f"learning rate of every schedule ({spe} updates per epoch)")
    place_legend(fig, ax, inside_max=0)
    return fig


# --------------------------------------------------------------------------- training curves
def _pretty(key: str) -> str:
    return ("validation " + key[4:]) if key.startswith("val_") else ("training " + key)


@plain_text
def curves_figure(data: ReportData) -> Figure:
    """Training and validation metrics per epoch; mean line and min-max band over seeds."""
    keys = data.epoch_keys
    bases = list(dict.fromkeys(k.removeprefix("val_") for k in keys))
    labels = data.labels
    styles = config_styles(labels)
    rows = max(len(bases), 1)
    fig = Figure(figsize=(WIDTH, 2.9 * rows + 0.5), layout="constrained")
    if not keys:
        return _empty(fig, fig.add_subplot(), "no epochs stored yet")
    axes = fig.subplots(rows, 2, squeeze=False, sharex=True)
    x = np.arange(1, data.n_epochs + 1)
    for r, base in enumerate(bases):
        for c, key in enumerate((base, f"val_{base}")):
            ax = axes[r][c]
            ax.set_title(_pretty(key))
            ax.set_ylabel(base)
            ax.grid(True, alpha=0.3)
            if r == rows - 1:
                ax.set_xlabel("epoch")
                ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
            if key not in keys:
                ax.text(0.5, 0.5, "not logged", ha="center", transform=ax.transAxes)
                continue
            for label in labels:
                m = data.epoch_matrix(label, key)
                if not np.isfinite(m).any():
                    continue
                with warnings.catch_warnings():  # an epoch every seed of a config missed
                    warnings.simplefilter("ignore", RuntimeWarning)
                    mean, lo, hi = np.nanmean(m, 0), np.nanmin(m, 0), np.nanmax(m, 0)
                (line,) = ax.plot(x, mean, lw=1.6, label=legend_label(label), **styles[label])
                line.set_gid(f"mean:{label}")
                if m.shape[0] > 1:
                    ax.fill_between(x, lo, hi, color=styles[label]["color"], alpha=0.15, lw=0)
        _share_ylim(axes[r][0], axes[r][1])
    n_seeds = len(data.seeds)
    fig.suptitle(
        f"mean over seeds (line) and the range of the {n_seeds} seeds (band); "
        "diverged and failed trials left out"
    )
    place_legend(fig, axes[0][1], inside_max=0)
    return fig


def _share_ylim(a: Any, b: Any) -> None:
    lo = min(a.get_ylim()[0], b.get_ylim()[0])
    hi = max(a.get_ylim()[1], b.get_ylim()[1])
    a.set_ylim(lo, hi)
    b.set_ylim(lo, hi)


# --------------------------------------------------------------------------- final metric
@plain_text
def final_figure(data: ReportData) -> Figure:
    """The final metric of every seed per config, with the mean and its 95% t-interval."""
    table = data.table
    order = [row.config for row in table]
    styles = config_styles(data.labels)
    height = 1.2 + 0.42 * max(len(order), 1)
    fig = Figure(figsize=(WIDTH, height), layout="constrained")
    ax = fig.add_subplot()
    if not order:
        return _empty(fig, ax, "no trials stored yet")
    base_row = next((row for row in table if row.is_baseline), None)
    if base_row is not None and math.isfinite(base_row.mean):
        ax.axvline(base_row.mean, color="0.5", ls=":", lw=1.2, label="baseline mean")
    for i, row in enumerate(table):
        y = -i
        values = data.final_values(data.metric, row.config)
        if values:
            v = np.array(list(values.values()))
            dy = np.linspace(-0.18, 0.18, len(v)) if len(v) > 1 else np.zeros(1)
            pts = ax.scatter(
                v, y + dy, s=22, color=styles[row.config]["color"], alpha=0.85, zorder=3
            )
            pts.set_gid(f"seeds:{row.config}")
        if math.isfinite(row.mean):
            lo, hi = row.ci_low, row.ci_high
            if math.isfinite(lo) and math.isfinite(hi):
                (bar,) = ax.plot([lo, hi], [y, y], color="black", lw=2.2, zorder=4)
                bar.set_gid(f"interval:{row.config}")
            ax.plot(row.mean, y, "D", color="black", ms=6, zorder=5)
        notes = [f"n={row.n}"]
        if row.diverged:
            notes.append(f"{row.diverged} diverged")
        if row.failed:
            notes.append(f"{row.failed} failed")
        ax.annotate(
            ", ".join(notes),
            xy=(1.0, y),
            xycoords=("axes fraction", "data"),
            xytext=(6, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
            color="firebrick" if row.diverged or row.failed else "0.35",
        )
    ax.scatter([], [], s=22, color="0.4", label="one seed")
    ax.plot([], [], color="black", lw=2.2, marker="D", ms=6, label="mean, 95% t-interval")
    ax.set_yticks([-i for i in range(len(order))])
    ax.set_yticklabels(
        [legend_label(c + (" (baseline)" if c == data.baseline else ""), 36) for c in order]
    )
    ax.set_ylim(-len(order) + 0.5, 0.5)
    better = "higher" if data.higher_is_better else "lower"
    ax.set_xlabel(f"final {data.metric} ({better} is better)")
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_title(f"final {data.metric} per config, best first")
    place_legend(fig, ax, inside_max=0)
    return fig


# --------------------------------------------------------------------------- lr sweep
@dataclasses.dataclass(frozen=True)
class _SweepPoint:
    lr: float
    val: dict[int, float]
    train: dict[int, float]
    diverged: int
    failed: int


def _sweep_points(data: ReportData, train_key: str | None, val_key: str | None):
    groups: dict[str, dict[float, list]] = {}
    for t in data.trials:
        if t.lr is None:
            continue
        groups.setdefault(data.group_of(t), {}).setdefault(float(t.lr), []).append(t)
    out: dict[str, list[_SweepPoint]] = {}
    for group, by_lr in groups.items():
        points = []
        for lr in sorted(by_lr):
            ok = [t for t in by_lr[lr] if t.status == "ok"]

            def values(key: str | None, ok: list = ok) -> dict[int, float]:
                if key is None:
                    return {}
                pairs = ((t.seed, t.final.get(key)) for t in ok)
                return {s: float(v) for s, v in pairs if v is not None and math.isfinite(v)}

            points.append(
                _SweepPoint(
                    lr,
                    values(val_key),
                    values(train_key),
                    sum(t.status == "diverged" for t in by_lr[lr]),
                    sum(t.status == "failed" for t in by_lr[lr]),
                )
            )
        out[group] = points
    return out


def _mean_ci(values: Mapping[int, float]) -> tuple[float, float, float]:
    if not values:
        return math.nan, math.nan, math.nan
    s = summarize(values.values())
    return s.mean, s.ci_low, s.ci_high


@plain_text
def sweep_figure(data: ReportData) -> Figure | None:
    """Metric vs peak lr (log x) per schedule, and the train/validation gap; None if no sweep."""
    if not data.is_sweep:
        return None
    train_key, val_key, higher = data.sweep_metric
    points = _sweep_points(data, train_key, val_key)
    groups = list(points)
    styles = dict(zip(groups, series_styles(len(groups)), strict=True))
    fig = Figure(figsize=(WIDTH, 4.4), layout="constrained")
    ax, gap_ax = fig.subplots(1, 2)
    base = (val_key or train_key or data.metric).removeprefix("val_")
    for group in groups:
        pts = points[group]
        lrs = np.array([p.lr for p in pts])
        color = styles[group]["color"]
        val = np.array([_mean_ci(p.val) for p in pts])
        train = np.array([_mean_ci(p.train) for p in pts])
        if val_key is not None:
            (line,) = ax.plot(lrs, val[:, 0], "o-", color=color, lw=1.8, label=legend_label(group))
            line.set_gid(f"val:{group}")
            ok = np.isfinite(val[:, 1])
            ax.fill_between(lrs[ok], val[ok, 1], val[ok, 2], color=color, alpha=0.15, lw=0)
            for p in pts:
                ax.scatter([p.lr] * len(p.val), list(p.val.values()), s=9, color=color, alpha=0.5)
        if train_key is not None:
            (line,) = ax.plot(lrs, train[:, 0], "s--", color=color, lw=1.2, ms=4, alpha=0.8)
            line.set_gid(f"train:{group}")
        if train_key is not None and val_key is not None:
            gaps, seeds_x, seeds_y = [], [], []
            for p in pts:
                g = [_gap(p.train[s], p.val[s], higher) for s in p.val if s in p.train]
                gaps.append(float(np.mean(g)) if g else math.nan)
                seeds_x += [p.lr] * len(g)
                seeds_y += g
            (line,) = gap_ax.plot(lrs, gaps, "o-", color=color, lw=1.8)
            line.set_gid(f"gap:{group}")
            gap_ax.scatter(seeds_x, seeds_y, s=9, color=color, alpha=0.5)
        for p in pts:
            if p.diverged or p.failed:
                text = f"{p.diverged + p.failed}×"
                ax.annotate(
                    text,
                    xy=(p.lr, 0.02),
                    xycoords=("data", "axes fraction"),
                    ha="center",
                    color="firebrick",
                    fontsize=9,
                )
    ax.plot([], [], "k-o", label=f"validation {base} (mean, 95% interval)")
    ax.plot([], [], "k--s", ms=4, label=f"training {base} (mean)")
    if any(p.diverged or p.failed for pts in points.values() for p in pts):
        ax.plot(
            [], [], ls="none", marker="x", color="firebrick", label="n× = trials diverged/failed"
        )
    swept = sorted({p.lr for pts in points.values() for p in pts})
    for a in (ax, gap_ax):
        a.set_xscale("log")
        a.set_xticks(swept, [f"{lr:g}" for lr in swept])
        a.minorticks_off()
        a.set_xlabel("peak learning rate (log axis)")
        a.grid(True, alpha=0.3)
    ax.set_ylabel(f"final {base}")
    ax.set_title(f"final {base} vs learning rate")
    gap_ax.axhline(0.0, color="0.5", lw=1)
    sign = "training − validation" if higher else "validation − training"
    gap_ax.set_ylabel(f"gap: {sign} {base}")
    gap_ax.set_title("train/validation gap (positive: overfit)")
    place_legend(fig, ax, inside_max=0)
    return fig


def _gap(train: float, val: float, higher: bool) -> float:
    return train - val if higher else val - train


# --------------------------------------------------------------------------- ranks
def ranks_figure(data: ReportData) -> Figure | None:
    """The critical-difference diagram of the table's comparison (None without one)."""
    comparison = getattr(data.table, "comparison", None)
    ranks = getattr(comparison, "ranks", None) if comparison is not None else None
    if ranks is None:
        return None
    from lrlab.reporting.cd_plot import critical_difference_plot

    with matplotlib.rc_context(RC):
        return critical_difference_plot(ranks)


# --------------------------------------------------------------------------- all of them
@dataclasses.dataclass(frozen=True)
class FigureSpec:
    """A named figure with its caption (the HTML report and ``--png`` use the same list)."""

    name: str
    section: str
    caption: str
    figure: Figure


def experiment_figures(data: ReportData) -> list[FigureSpec]:
    """Every figure of the report, in page order; absent ones (no sweep...) are left out."""
    metric = data.metric
    better = "higher" if data.higher_is_better else "lower"
    out = [
        FigureSpec(
            "final",
            "results",
            f"Final {metric} per config ({better} is better), best first: every seed is a "
            "dot; the black bar is the 95% t-interval of the mean (diamond), as in the table. "
            "The dotted line is the baseline's mean.",
            final_figure(data),
        ),
    ]
    ranks = ranks_figure(data)
    if ranks is not None:
        out.append(
            FigureSpec(
                "ranks",
                "results",
                "Mean rank of each config over the seeds (1 = best). Configs joined by a red "
                "bar are within the Nemenyi critical difference: not distinguishable.",
                ranks,
            )
        )
    sweep = sweep_figure(data)
    if sweep is not None:
        out.append(
            FigureSpec(
                "sweep",
                "sweep",
                "Final metric against the peak learning rate: validation solid with its 95% "
                "interval, training dashed; right: the train/validation gap per seed (dots) "
                "and its mean. n× counts trials that diverged or failed at that lr.",
                sweep,
            )
        )
    out += [
        FigureSpec(
            "schedules",
            "schedules",
            "The learning rate of every update as the schedule defines it (lines), and the lr "
            "the engine recorded at the last update of each epoch (dots, median over seeds).",
            lr_figure(data),
        ),
        FigureSpec(
            "curves",
            "curves",
            "Loss and metrics per epoch: the line is the mean over seeds, the band spans the "
            "lowest to the highest seed.",
            curves_figure(data),
        ),
    ]
    return out
