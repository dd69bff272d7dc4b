"""The LR range test's maths, free of any framework (Smith 2017; fastai's and
Lightning's ``lr_find``): the exponential ramp, the bias-corrected loss average, when to
stop, and the suggested lrs. :func:`lrlab.keras.find_lr` drives a Keras model with it.

>>> watch = LossWatch(smoothing=0.5, diverge=4.0)
>>> [watch.observe(loss) for loss in (1.0, 0.5, 0.25, 8.0)]
[False, False, False, True]
"""

from __future__ import annotations

import dataclasses
import io
import math
from collections.abc import Callable

import numpy as np

from lrlab.errors import LrlabError
from lrlab.fileio import write_atomic
from lrlab.schedules import LrRange

__all__ = [
    "LossWatch",
    "RangeTest",
    "batch_sampler",
    "check_settings",
    "smooth_losses",
    "suggest_lrs",
]


@dataclasses.dataclass(frozen=True)
class RangeTest:
    """The result of a range test (:func:`lrlab.keras.find_lr`).

    Attributes:
        lrs: the lr of each update (float32 values read back from the optimizer).
        losses: the training loss of each update's batch.
        smoothed: bias-corrected exponential average of ``losses`` (weight ``smoothing``).
        steepest: lr where ``smoothed`` falls fastest against ``log(lr)`` (None if < 3 points).
        min_over_10: the lr of the lowest ``smoothed`` loss, divided by 10.
        stopped_early: True when the loss diverged (``smoothed > diverge * best``) or was
            not finite before ``steps`` updates.
    """

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    steepest: float | None
    min_over_10: float | None
    stopped_early: bool

    @classmethod
    def from_run(
        cls, lrs: list[float], losses: list[float], smoothing: float, stopped_early: bool
    ) -> RangeTest:
        """Smooth the recorded losses and suggest lrs (:func:`suggest_lrs`)."""
        lr_arr = np.asarray(lrs, dtype=np.float64)
        smoothed = smooth_losses(np.asarray(losses), smoothing)
        steepest, min_over_10 = suggest_lrs(lr_arr, smoothed)
        return cls(lr_arr, np.asarray(losses), smoothed, steepest, min_over_10, stopped_early)

    @property
    def suggestion(self) -> float | None:
        """The suggested lr: ``steepest``, else ``min_over_10``."""
        return self.steepest if self.steepest is not None else self.min_over_10

    def plot(self, path=None, ax=None):
        """Plot smoothed loss against lr (log axis), marking both suggestions."""
        import matplotlib

        if ax is None:
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt

            fig, ax = plt.subplots(figsize=(6, 4))
        else:
            fig = ax.figure
        ax.plot(self.lrs, self.smoothed, label="smoothed loss")
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("training loss")
        for value, label, style in (
            (self.steepest, "steepest", "--"),
            (self.min_over_10, "min / 10", ":"),
        ):
            if value is not None:
                ax.axvline(value, linestyle=style, color="gray", label=f"{label}: {value:.3g}")
        ax.legend()
        if path is not None:  # the one safe writer: no links followed, no half-written file
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
            write_atomic(path, buffer.getvalue())
        return fig


#: the most updates a range test ramps over (a few hundred are the norm)
MAX_STEPS = 100_000


def check_settings(
    start: float, end: float, steps: int, batch_size: int, smoothing: float, diverge: float
) -> LrRange:
    """The ramp ``lr_range(start, end, steps)``, after checking the test's settings.

    Raises:
        ScheduleError: a bad ``start``, ``end`` or ``steps`` (named).
        LrlabError: ``start >= end``, ``steps`` over :data:`MAX_STEPS`, ``smoothing``
            outside [0, 1), ``diverge <= 1`` or ``batch_size < 1``.
    """
    ramp = LrRange(start, end, steps)
    if not start < end:
        raise LrlabError(f"find_lr: start ({start:g}) must be below end ({end:g}); the lr ramps up")
    if steps > MAX_STEPS:
        raise LrlabError(
            f"find_lr: steps must be at most {MAX_STEPS:,}, got {steps:,}; a few hundred suffice"
        )
    if not 0 <= smoothing < 1:
        raise LrlabError(f"find_lr: smoothing must be in [0, 1), got {smoothing}")
    if not diverge > 1:
        raise LrlabError(f"find_lr: diverge must be > 1, got {diverge}")
    if batch_size < 1:
        raise LrlabError(f"find_lr: batch_size must be >= 1, got {batch_size}")
    return ramp


class LossWatch:
    """Online bias-corrected loss average; says when the test has diverged.

    :meth:`observe` returns True (stop) when the smoothed loss is not finite or exceeds
    ``diverge`` times the best smoothed loss so far.
    """

    def __init__(self, smoothing: float, diverge: float):
        self.smoothing = smoothing
        self.diverge = diverge
        self.best = math.inf
        self.average = 0.0
        self.count = 0

    def observe(self, loss: float) -> bool:
        self.count += 1
        self.average = self.smoothing * self.average + (1.0 - self.smoothing) * loss
        smoothed = self.average / (1.0 - self.smoothing**self.count)
        if not math.isfinite(smoothed) or smoothed > self.diverge * self.best:
            return True
        self.best = min(self.best, smoothed)
        return False


def batch_sampler(n: int, batch_size: int, rng: np.random.Generator) -> Callable[[], np.ndarray]:
    """A function returning the next batch's indices; reshuffles after each pass."""
    if n == 0:
        raise LrlabError("find_lr: x is empty")
    order, pos = rng.permutation(n), 0

    def take() -> np.ndarray:
        nonlocal order, pos
        if pos + batch_size > n and pos > 0:
            order, pos = rng.permutation(n), 0
        idx = order[pos : pos + batch_size]
        pos += batch_size
        return idx

    return take


def smooth_losses(losses: np.ndarray, smoothing: float) -> np.ndarray:
    """Bias-corrected EMA: ``avg_i = b avg_{i-1} + (1-b) loss_i``, ``avg_i / (1 - b**(i+1))``.

    >>> smooth_losses(np.array([1.0, 3.0]), 0.5).round(6).tolist()
    [1.0, 2.333333]
    """
    out = np.empty(len(losses))
    avg = 0.0
    for i, loss in enumerate(losses):
        avg = smoothing * avg + (1.0 - smoothing) * float(loss)
        out[i] = avg / (1.0 - smoothing ** (i + 1))
    return out


def suggest_lrs(
    lrs: np.ndarray,
    smoothed: np.ndarray,
    skip_begin: int = 10,
    skip_end: int = 1,
    span: int | None = None,
) -> tuple[float | None, float | None]:
    """``(steepest, min_over_10)`` from a range test's lrs and smoothed losses.

    ``steepest`` is the lr where the smoothed loss falls fastest against ``log(lr)``:
    the slope at point ``i`` is ``(s[i+k] - s[i-k]) / (log lr[i+k] - log lr[i-k])`` with
    ``k = span`` (default: 5% of the points, at least 1; ``k = 1`` is the central
    difference Lightning and fastai use, which picks up batch noise). The first
    ``skip_begin`` and last ``skip_end`` points are not candidates (Lightning's
    defaults: the average is still settling at the start, the last point is often the
    divergence); None when no candidate remains or the loss falls at none of them.
    ``min_over_10`` is the lr of the lowest smoothed loss / 10 (fastai's "minimum"); None
    when that is below the ramp's first lr (the loss was lowest within its first decade:
    the test says nothing about lrs it did not try; start lower). So a suggestion always
    lies within the tested ramp. Non-finite losses are dropped first. The range test is a
    heuristic: look at the plot (:meth:`RangeTest.plot`) too.

    >>> lrs = np.logspace(-4, 0, 5)
    >>> suggest_lrs(lrs, np.array([1.0, 0.9, 0.5, 0.3, 2.0]), skip_begin=0, skip_end=0)
    (0.01, 0.01)
    >>> suggest_lrs(lrs, np.array([0.3, 0.5, 0.9, 1.0, 2.0]), skip_begin=0, skip_end=0)
    (None, None)
    """
    ok = np.isfinite(smoothed)
    lrs, smoothed = np.asarray(lrs, dtype=np.float64)[ok], np.asarray(smoothed)[ok]
    n = len(lrs)
    if n == 0:
        return None, None
    min_over_10: float | None = float(lrs[int(np.argmin(smoothed))]) / 10.0
    if min_over_10 < lrs[0]:
        min_over_10 = None
    k = span if span is not None else max(1, n // 20)
    candidates = np.arange(max(skip_begin, k), min(n - skip_end, n - k))
    if len(candidates) == 0:
        return None, min_over_10
    log_lr = np.log(lrs)
    rise = smoothed[candidates + k] - smoothed[candidates - k]
    slope = rise / (log_lr[candidates + k] - log_lr[candidates - k])
    if not slope.min() < 0:  # the loss falls nowhere: no steepest descent to suggest
        return None, min_over_10
    return float(lrs[candidates[int(np.argmin(slope))]]), min_over_10
