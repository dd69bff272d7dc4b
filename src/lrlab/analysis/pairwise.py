"""Pieces of a comparison of two configs measured on the same seeds, as pure functions.

* the mean paired difference with a **BCa** bootstrap interval (:func:`bootstrap_mean_diff`);
* ``P(A better than B)`` over paired seeds with a **Wilson** interval (:func:`prob_better`);
* the paired test by seed, Wilcoxon or t (:func:`paired_test`, computed by
  :func:`lrlab.analysis.stats.paired_aligned`, the one paired-statistics implementation);
* the seeds needed to separate two configs (:func:`seeds_needed`);
* Holm's adjustment for a family of comparisons (:func:`holm`).

:mod:`lrlab.analysis.comparisons` turns them into a verdict.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

from lrlab.analysis.stats import paired_aligned

Test = Literal["wilcoxon", "t"]

ALPHA = 0.05
POWER = 0.8
LEVEL = 0.95
N_RESAMPLES = 10_000
#: Asymptotic relative efficiency of the Wilcoxon signed-rank test to the t-test under normal
#: errors (3/pi, Lehmann). Seeds needed for Wilcoxon = seeds needed for the t-test / ARE.
WILCOXON_ARE = 3 / math.pi
#: The smallest number of non-zero paired differences for which the exact two-sided Wilcoxon
#: test can reach p < 0.05 (2 / 2**6 = 0.031; with 5 seeds the smallest p is 0.0625).
WILCOXON_MIN_SEEDS = 6
MAX_SEEDS = 10_000
TEST_NAMES = {"wilcoxon": "Wilcoxon", "t": "paired t-test"}


@dataclass(frozen=True)
class Interval:
    """A two-sided interval ``[low, high]`` at ``level`` computed by ``method``."""

    low: float
    high: float
    level: float = LEVEL
    method: str = ""

    def contains(self, value: float) -> bool:
        """True when ``low <= value <= high``."""
        return self.low <= value <= self.high

    def flipped(self, center: float = 0.0) -> Interval:
        """The interval of ``2*center - x``: ``(-high, -low)`` for differences, ``(1-high, 1-low)``
        for probabilities (``center=0.5``)."""
        return Interval(2 * center - self.high, 2 * center - self.low, self.level, self.method)


def paired_arrays(a: Sequence[float], b: Sequence[float]) -> tuple[np.ndarray, np.ndarray, int]:
    """Pair ``a`` and ``b`` by position (seed) and drop pairs where either value is not finite.

    Returns ``(a, b, n_dropped)``. A diverged run (NaN/inf) has no value to compare; callers that
    want a diverged run to count as a loss should pass the worst value instead of NaN.

    >>> paired_arrays([1.0, float("nan"), 3.0], [0.5, 1.0, 2.0])
    (array([1., 3.]), array([0.5, 2. ]), 1)
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(
            f"paired scores need two 1-D arrays of the same length (one value per seed), "
            f"got shapes {a.shape} and {b.shape}"
        )
    keep = np.isfinite(a) & np.isfinite(b)
    return a[keep], b[keep], int((~keep).sum())


def bootstrap_mean_diff(
    a: Sequence[float],
    b: Sequence[float],
    *,
    level: float = LEVEL,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
) -> tuple[float, Interval]:
    """Mean paired difference ``mean(a - b)`` and its bootstrap interval.

    The seeds are resampled with replacement (``n_resamples`` times, generator seeded with
    ``seed``) and the interval is the **BCa** (bias-corrected and accelerated) one of
    ``scipy.stats.bootstrap``; it corrects the percentile interval for skew, which matters with
    10-20 seeds. When every paired difference is the same the interval is that single value.

    >>> d, ci = bootstrap_mean_diff([3.0, 4.0, 5.0, 6.0], [1.0, 1.5, 2.0, 3.5])
    >>> d, ci.method
    (2.5, 'BCa bootstrap')
    >>> bool(ci.low < 2.5 < ci.high)
    True
    """
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if d.size == 0:
        raise ValueError("no paired seeds to compare")
    mean = float(d.mean())
    if d.size < 2 or np.ptp(d) == 0:
        return mean, Interval(mean, mean, level, "BCa bootstrap")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # BCa on tiny samples; handled below
        res = stats.bootstrap(
            (d,),
            np.mean,
            n_resamples=n_resamples,
            confidence_level=level,
            method="BCa",
            vectorized=True,
            rng=np.random.default_rng(seed),
        )
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    method = "BCa bootstrap"
    if not (np.isfinite(low) and np.isfinite(high)):  # degenerate jackknife (n = 2): percentile
        q = (1 - level) / 2
        low, high = (float(x) for x in np.quantile(res.bootstrap_distribution, [q, 1 - q]))
        method = "percentile bootstrap"
    return mean, Interval(low, high, level, method)


def wilson_interval(successes: float, n: int, level: float = LEVEL) -> Interval:
    """Wilson score interval for a proportion ``successes / n`` (same numbers as statsmodels'
    ``proportion_confint(method="wilson")``; ``successes`` may be fractional when ties count half).

    ``center = (p + z²/2n) / (1 + z²/n)``, ``half = z / (1 + z²/n) * sqrt(p(1-p)/n + z²/4n²)``.

    >>> ci = wilson_interval(8, 10)
    >>> round(ci.low, 4), round(ci.high, 4)
    (0.4902, 0.9433)
    """
    if n <= 0:
        raise ValueError("a proportion needs at least one observation")
    z = float(stats.norm.ppf(1 - (1 - level) / 2))
    p = successes / n
    denom = 1 + z**2 / n
    center = (p + z**2 / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    return Interval(max(0.0, center - half), min(1.0, center + half), level, "Wilson")


def prob_better(
    a: Sequence[float],
    b: Sequence[float],
    *,
    higher_is_better: bool = True,
    level: float = LEVEL,
) -> tuple[float, Interval, tuple[int, int, int]]:
    """``P(A better than B)`` over paired seeds, with a Wilson interval.

    ``P = (wins + ties / 2) / n`` where a *win* is a seed on which A's metric is better than B's
    (greater, or smaller when ``higher_is_better=False``); a tie counts half a win, so
    ``P(A>B) + P(B>A) = 1``. This is the "probability of outperforming" of Bouthillier et al.
    (2021), computed on pairs that share a seed. Returns ``(P, interval, (wins, ties, losses))``.

    >>> p, ci, counts = prob_better([3, 2, 5, 1], [1, 2, 4, 2])
    >>> p, counts
    (0.625, (2, 1, 1))
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    sign = 1.0 if higher_is_better else -1.0
    d = sign * (a - b)
    wins, ties, losses = int((d > 0).sum()), int((d == 0).sum()), int((d < 0).sum())
    n = d.size
    successes = wins + 0.5 * ties
    return successes / n, wilson_interval(successes, n, level), (wins, ties, losses)


def paired_test(
    a: Sequence[float], b: Sequence[float], test: Test = "wilcoxon"
) -> tuple[float, float]:
    """Two-sided paired test by seed; returns ``(statistic, p_value)``.

    ``"wilcoxon"``: ``scipy.stats.wilcoxon(a - b)`` (signed-rank, zero differences dropped,
    exact distribution for small samples without ties). ``"t"``: ``scipy.stats.ttest_rel(a, b)``.
    Both come from :func:`lrlab.analysis.stats.paired_aligned`, whose degenerate cases hold:
    when all differences are zero there is no evidence of a difference, ``p = 1``.

    >>> s, p = paired_test([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    >>> p
    1.0
    """
    if test not in TEST_NAMES:
        raise ValueError(f"unknown paired test {test!r}; use 'wilcoxon' or 't'")
    p = paired_aligned(a, b)
    return (p.t_statistic, p.p_ttest) if test == "t" else (p.w_statistic, p.p_wilcoxon)


def _power_paired_t(n: int, dz: float, alpha: float) -> float:
    """Power of the two-sided paired t-test with ``n`` pairs at standardized effect ``dz``
    (noncentral t with ``n - 1`` degrees of freedom and noncentrality ``dz * sqrt(n)``)."""
    df = n - 1
    crit = stats.t.ppf(1 - alpha / 2, df)
    nc = dz * math.sqrt(n)
    power = float(stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc))
    if not math.isfinite(power):  # scipy's nct fails far in the tail (large nc): normal limit
        power = float(stats.norm.sf(crit - nc) + stats.norm.cdf(-crit - nc))
    return min(power, 1.0)


def seeds_needed(
    mean_diff: float,
    sd_diff: float,
    *,
    alpha: float = ALPHA,
    power: float = POWER,
    test: Test = "wilcoxon",
    max_seeds: int = MAX_SEEDS,
) -> int | None:
    """How many paired seeds would detect a true mean difference ``mean_diff`` when the paired
    differences spread with standard deviation ``sd_diff`` (two-sided, level ``alpha``, ``power``).

    Exact power of the paired t-test from the noncentral t distribution (the smallest ``n`` with
    power >= ``power``; the same as ``ceil`` of statsmodels' ``TTestPower().solve_power``). For the
    Wilcoxon test the count is divided by its asymptotic relative efficiency 3/pi (the usual
    A.R.E. method) and is at least 6, the fewest seeds with which it can reach p < 0.05.

    Fed with the *observed* difference and spread this is a planning estimate, not a promise: the
    observed difference is itself noisy. Returns None when no number of seeds up to ``max_seeds``
    would do (zero or tiny difference).

    >>> seeds_needed(0.5, 1.0, test="t")
    34
    >>> seeds_needed(0.5, 1.0)
    36
    >>> seeds_needed(0.0, 1.0) is None
    True
    """
    if test not in TEST_NAMES:
        raise ValueError(f"unknown paired test {test!r}; use 'wilcoxon' or 't'")
    if not (math.isfinite(mean_diff) and math.isfinite(sd_diff)) or mean_diff == 0:
        return None
    floor = WILCOXON_MIN_SEEDS if test == "wilcoxon" else 2
    if sd_diff == 0:
        return floor
    dz = abs(mean_diff) / sd_diff
    if _power_paired_t(max_seeds, dz, alpha) < power:
        return None
    hi = 2  # power grows with n: double, then bisect for the smallest n reaching it
    while _power_paired_t(hi, dz, alpha) < power:
        hi *= 2
    lo = hi // 2 + 1 if hi > 2 else 2
    while lo < hi:
        mid = (lo + hi) // 2
        if _power_paired_t(mid, dz, alpha) >= power:
            hi = mid
        else:
            lo = mid + 1
    n = lo if test == "t" else math.ceil(lo / WILCOXON_ARE)
    n = max(n, floor)
    return n if n <= max_seeds else None


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1).

    >>> holm([0.01, 0.04, 0.03])
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(p_values, dtype=float)
    m = p.size
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return [float(x) for x in adjusted]


def format_p(p: float) -> str:
    """A p-value as the sentences print it.

    >>> format_p(0.0004), format_p(0.0098), format_p(0.25)
    ('p<0.001', 'p=0.0098', 'p=0.25')
    """
    return "p<0.001" if p < 0.001 else f"p={p:.2g}" if p < 0.01 else f"p={p:.2f}"
