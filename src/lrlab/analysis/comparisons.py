"""Honest comparisons between configs measured over several seeds.

The statistics that studies of benchmark variance recommend (Bouthillier et al., "Accounting for
Variance in Machine Learning Benchmarks", MLSys 2021; Dror et al., ACL 2019; Demšar, JMLR 2006),
as pure functions over arrays of final metrics, one value per seed. Nothing here reads the store.

Two configs, paired by seed (``a[i]`` and ``b[i]`` come from the same seed):

* mean difference ``mean(a - b)`` with a 95% **BCa** bootstrap interval
  (:func:`bootstrap_mean_diff`);
* ``P(A better than B)`` over paired seeds, ties counting half, with a **Wilson** score interval
  (:func:`prob_better`);
* a paired test by seed: **Wilcoxon signed-rank** (default) or the paired **t-test**
  (:func:`paired_test`);
* the almost-stochastic-order score ``eps_min`` of Dror et al. / del Barrio et al., equal to
  ``deepsig.aso`` (:func:`aso_eps_min`);
* "seeds needed" to separate the two at alpha 0.05 with 80% power (:func:`seeds_needed`);
* a verdict that names a winner only when the test *and* the interval agree, and a sentence
  (:func:`compare_pair`).

Many configs at once (:func:`compare_configs`, :func:`rank_comparison`): the Friedman test with
seeds as blocks and the Nemenyi critical difference (as ``autorank``), drawn by
:func:`critical_difference_plot`.

Example:
    >>> a = [0.912, 0.905, 0.931, 0.899, 0.921, 0.917, 0.908, 0.925, 0.902, 0.915]
    >>> b = [0.901, 0.907, 0.915, 0.893, 0.910, 0.904, 0.911, 0.909, 0.897, 0.906]
    >>> c = compare_pair(a, b, name_a="time_decay", name_b="constant")
    >>> c.verdict, c.winner, c.n
    ('a_better', 'time_decay', 10)
    >>> for part in c.sentence.split("; "):
    ...     print(part)
    time_decay beats constant in 80% of paired seeds (95% CI 49–94%)
    mean difference +0.0082 (95% CI +0.0038 to +0.0117), Wilcoxon p=0.0098, 10 seeds.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from scipy import stats

from lrlab.analysis.stats import paired_aligned, rank_by_mean

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Test = Literal["wilcoxon", "t"]
Verdict = Literal["a_better", "b_better", "inconclusive"]

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


# ---------------------------------------------------------------------------- pieces, two configs


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


def _quantiles(scores: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Empirical quantile function ``F^-1(t) = sorted[ceil(n t) - 1]`` (deepsig's), on the last
    axis of ``scores`` (each row its own sample)."""
    n = scores.shape[-1]
    idx = np.clip(np.ceil(n * t).astype(int) - 1, 0, n - 1)
    return np.take(np.sort(scores, axis=-1), idx, axis=-1)


def _violation_ratio(fa: np.ndarray, fb: np.ndarray, dt: float) -> np.ndarray:
    """``eps_W2 = ∫_{F^-1 < G^-1} (F^-1 - G^-1)² dt / W2²`` on the grid, last axis (Dror et al.,
    eq. 4-5). Like deepsig, the violation integral skips the first grid point, and a zero
    Wasserstein distance gives 0.5."""
    diff2 = (fb - fa) ** 2
    w2 = diff2.sum(axis=-1) * dt
    violation = np.where(fa < fb, diff2, 0.0)[..., 1:].sum(axis=-1) * dt
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(w2 == 0, 0.5, violation / np.where(w2 == 0, 1.0, w2))


def _eps_min_from_uniforms(
    a: np.ndarray, b: np.ndarray, ua: np.ndarray, ub: np.ndarray, dt: float, confidence: float
) -> float:
    """``eps_min`` given the bootstrap's uniform draws ``ua`` (B x len(a)), ``ub`` (B x len(b))."""
    t = np.arange(dt, 1, dt)
    vr = float(_violation_ratio(_quantiles(a, t), _quantiles(b, t), dt))
    # A bootstrap sample is F^-1(U) for uniform U: resampling the scores with replacement.
    boot_a = _quantiles(_quantiles(a, ua), t)
    boot_b = _quantiles(_quantiles(b, ub), t)
    samples = _violation_ratio(boot_a, boot_b, dt)
    const = math.sqrt(len(a) * len(b) / (len(a) + len(b)))
    sigma = float(np.std(const * (samples - vr)))
    return float(np.clip(vr - sigma / const * stats.norm.ppf(1 - confidence), 0.0, 1.0))


def aso_eps_min(
    a: Sequence[float],
    b: Sequence[float],
    *,
    higher_is_better: bool = True,
    confidence: float = LEVEL,
    n_bootstrap: int = 1000,
    dt: float = 0.005,
    seed: int = 0,
) -> float:
    """Almost stochastic order: ``eps_min`` for "A is better than B" (Dror et al., 2019, after
    del Barrio et al., 2018); the same algorithm and numbers as ``deepsig.aso``.

    The violation ratio ``eps_W2`` is the share of the squared Wasserstein distance between the
    two score distributions that lies where A's quantile function is *below* B's (where A is
    worse). ``eps_min`` is its upper confidence bound at ``confidence``:
    ``eps_W2 + sigma / sqrt(nm/(n+m)) * z_confidence``, with ``sigma`` from ``n_bootstrap``
    bootstrap resamples of both score sets (seeded with ``seed``), clipped to [0, 1].

    Reading: 0 means A is better everywhere (stochastic dominance); below 0.5 A is better than B
    "almost" everywhere; Dror et al. suggest a conservative threshold of 0.2; 1 means B dominates.
    The scores need not be paired or of equal length.

    >>> aso_eps_min([5, 6, 7, 8], [1, 2, 3, 4])
    0.0
    >>> round(aso_eps_min([1, 2, 3, 4], [5, 6, 7, 8]), 3)  # deepsig skips the first grid point
    0.998
    """
    sign = 1.0 if higher_is_better else -1.0
    a = sign * np.asarray(a, dtype=float)
    b = sign * np.asarray(b, dtype=float)
    if a.size == 0 or b.size == 0:
        raise ValueError("almost stochastic order needs at least one score on each side")
    rng = np.random.default_rng(seed)
    ua = rng.uniform(size=(n_bootstrap, a.size))
    ub = rng.uniform(size=(n_bootstrap, b.size))
    return _eps_min_from_uniforms(a, b, ua, ub, dt, confidence)


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


# ---------------------------------------------------------------------------- verdict, two configs


def _signed_triple(x: float, ci: Interval) -> tuple[str, str, str]:
    """``x`` and its interval with the same decimals: two significant digits of the interval's
    width (of ``x`` when the interval is a point), e.g. ``+0.0082``, ``+0.0038``, ``+0.0117``."""
    scale = ci.high - ci.low or abs(x) or 1.0
    decimals = max(0, 1 - math.floor(math.log10(scale)))
    return tuple(f"{v:+.{decimals}f}" for v in (x, ci.low, ci.high))


def _pval(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.2g}" if p < 0.01 else f"p={p:.2f}"


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


@dataclass(frozen=True)
class PairedComparison:
    """Everything :func:`compare_pair` measured for config A against config B.

    Attributes:
        name_a, name_b: config names. ``mean_diff`` and ``mean_diff_ci`` are in metric units,
            ``mean(a - b)`` over paired seeds (positive means A's metric is larger).
        n: paired seeds used; ``n_dropped``: seeds dropped because a value was NaN/inf.
        p_a_better, p_a_better_ci, counts: ``P(A better than B)`` with ties half, its Wilson
            interval and ``(wins, ties, losses)`` of A.
        test, statistic, p_value: the paired test; ``p_value_adjusted`` is the adjusted p-value
            when the comparison is one of a family (``adjustment="Holm"`` for several configs vs
            the baseline), else ``p_value``.
        effect_size: Cohen's d_z = mean(a - b) / sd(a - b) (sign in metric units; NaN when the
            differences have no spread, see :func:`lrlab.analysis.stats.paired_aligned`).
        eps_min: almost-stochastic-order score for "A better than B" (None when not computed).
        seeds_needed: seeds that would separate A and B at ``alpha`` with ``power`` if the observed
            difference and spread are the truth (None: no number of seeds would).
        verdict: ``"a_better"``/``"b_better"`` only when the (adjusted) paired test rejects at
            ``alpha`` AND the bootstrap interval of the mean difference excludes 0 on the same
            side; otherwise ``"inconclusive"``.
        sentence: the verdict in plain language.
    """

    name_a: str
    name_b: str
    higher_is_better: bool
    n: int
    n_dropped: int
    mean_a: float
    mean_b: float
    mean_diff: float
    mean_diff_ci: Interval
    p_a_better: float
    p_a_better_ci: Interval
    counts: tuple[int, int, int]
    test: str
    statistic: float
    p_value: float
    p_value_adjusted: float
    effect_size: float
    eps_min: float | None
    seeds_needed: int | None
    alpha: float
    power: float
    verdict: Verdict
    sentence: str
    adjustment: str = ""

    @property
    def winner(self) -> str | None:
        """The better config's name, or None when the comparison is not conclusive."""
        return {"a_better": self.name_a, "b_better": self.name_b}.get(self.verdict)


def _decide(diff_ci: Interval, p: float, alpha: float, higher_is_better: bool, n: int) -> Verdict:
    if n < 2 or p >= alpha or diff_ci.contains(0.0):
        return "inconclusive"
    a_larger = diff_ci.low > 0
    return "a_better" if a_larger == higher_is_better else "b_better"


def _sentence(c: PairedComparison) -> str:
    test = TEST_NAMES[c.test]
    p_txt = _pval(c.p_value_adjusted) + (f" ({c.adjustment})" if c.adjustment else "")
    dropped = f", {c.n_dropped} dropped (not finite)" if c.n_dropped else ""
    if c.verdict != "inconclusive":
        a_wins = c.verdict == "a_better"
        win, lose = (c.name_a, c.name_b) if a_wins else (c.name_b, c.name_a)
        p, ci, diff, diff_ci = (
            (c.p_a_better, c.p_a_better_ci, c.mean_diff, c.mean_diff_ci)
            if a_wins
            else (
                1 - c.p_a_better,
                c.p_a_better_ci.flipped(0.5),
                -c.mean_diff,
                c.mean_diff_ci.flipped(),
            )
        )
        d, lo, hi = _signed_triple(diff, diff_ci)
        return (
            f"{win} beats {lose} in {_pct(p)} of paired seeds "
            f"(95% CI {100 * ci.low:.0f}–{_pct(ci.high)}); mean difference {d} "
            f"(95% CI {lo} to {hi}), {test} {p_txt}, {c.n} seeds{dropped}."
        )
    d, lo, hi = _signed_triple(c.mean_diff, c.mean_diff_ci)
    if c.n < 2:
        needed = "at least 2 needed"
    elif c.seeds_needed is None:
        needed = "more seeds are unlikely to separate them"
    else:
        needed = f"about {max(c.seeds_needed, c.n + 1)} needed"
    return (
        f"{c.name_a} and {c.name_b} are not distinguishable with {c.n} seeds; {needed} "
        f"({c.name_a} ahead in {_pct(c.p_a_better)} of paired seeds, 95% CI "
        f"{100 * c.p_a_better_ci.low:.0f}–{_pct(c.p_a_better_ci.high)}; "
        f"{c.name_a} − {c.name_b} = {d}, 95% CI {lo} to {hi}; {test} {p_txt}"
        f"{dropped})."
    )


def compare_pair(
    a: Sequence[float],
    b: Sequence[float],
    *,
    name_a: str = "A",
    name_b: str = "B",
    higher_is_better: bool = True,
    test: Test = "wilcoxon",
    alpha: float = ALPHA,
    power: float = POWER,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    aso: bool = True,
    p_value_adjusted: float | None = None,
) -> PairedComparison:
    """Compare config A with config B over seeds, paired by position (``a[i]``, ``b[i]`` share
    seed ``i``), and say whether one is better.

    Computes :func:`bootstrap_mean_diff` (BCa, ``n_resamples``, ``seed``), :func:`prob_better`
    (Wilson), :func:`paired_test` (``test``), :func:`aso_eps_min` (when ``aso``) and
    :func:`seeds_needed`; see :class:`PairedComparison` for the verdict rule. Pass
    ``p_value_adjusted`` (e.g. Holm) when this comparison is one of several.

    >>> c = compare_pair([0.9, 0.8, 0.85], [0.9, 0.8, 0.85], name_a="x", name_b="y")
    >>> c.verdict, c.winner
    ('inconclusive', None)
    """
    a, b, dropped = paired_arrays(a, b)
    n = a.size
    if n == 0:
        raise ValueError(f"{name_a} and {name_b} share no seed with finite values")
    diff, diff_ci = bootstrap_mean_diff(a, b, n_resamples=n_resamples, seed=seed)
    p_better, p_ci, counts = prob_better(a, b, higher_is_better=higher_is_better)
    stats_ab = paired_aligned(a, b)
    statistic, p = (
        (stats_ab.t_statistic, stats_ab.p_ttest)
        if test == "t"
        else (stats_ab.w_statistic, stats_ab.p_wilcoxon)
    )
    p_adj = p if p_value_adjusted is None else p_value_adjusted
    sd = stats_ab.std_diff
    eps = aso_eps_min(a, b, higher_is_better=higher_is_better, seed=seed) if aso and n > 0 else None
    needed = seeds_needed(diff, sd, alpha=alpha, power=power, test=test) if n > 1 else None
    verdict = _decide(diff_ci, p_adj, alpha, higher_is_better, n)
    partial = PairedComparison(
        name_a=name_a,
        name_b=name_b,
        higher_is_better=higher_is_better,
        n=n,
        n_dropped=dropped,
        mean_a=float(a.mean()),
        mean_b=float(b.mean()),
        mean_diff=diff,
        mean_diff_ci=diff_ci,
        p_a_better=p_better,
        p_a_better_ci=p_ci,
        counts=counts,
        test=test,
        statistic=statistic,
        p_value=p,
        p_value_adjusted=p_adj,
        effect_size=stats_ab.cohen_dz,
        eps_min=eps,
        seeds_needed=needed,
        alpha=alpha,
        power=power,
        verdict=verdict,
        sentence="",
    )
    return _replace_sentence(partial)


def _replace_sentence(c: PairedComparison) -> PairedComparison:
    return replace(c, sentence=_sentence(c))


# ---------------------------------------------------------------------------- many configs


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


@dataclass(frozen=True)
class RankComparison:
    """Friedman test over seeds (blocks) and the Nemenyi post-hoc comparison of mean ranks.

    Attributes:
        names: configs, best mean rank first; ``mean_ranks`` in the same order (1 = best).
        n_blocks: seeds with a finite value for every config (the others are left out).
        statistic, p_value: Friedman chi-square (``scipy.stats.friedmanchisquare``).
        critical_difference: Nemenyi CD = q_alpha / sqrt(2) * sqrt(k (k + 1) / (6 n)), q_alpha the
            studentized range quantile with infinite degrees of freedom (autorank's ``cd``).
        nemenyi_p: k x k matrix of Nemenyi p-values in ``names`` order (scikit-posthocs'
            ``posthoc_nemenyi_friedman``).
        groups: index ranges ``(i, j)`` (into ``names``) of configs whose mean ranks are within
            the CD of each other: the bars of the critical-difference diagram.
        sentence: the result in plain language.
    """

    names: tuple[str, ...]
    mean_ranks: tuple[float, ...]
    n_blocks: int
    statistic: float
    p_value: float
    critical_difference: float
    nemenyi_p: np.ndarray = field(repr=False)
    groups: tuple[tuple[int, int], ...]
    alpha: float
    sentence: str


def rank_comparison(
    scores: Mapping[str, Sequence[float]],
    *,
    higher_is_better: bool = True,
    alpha: float = ALPHA,
) -> RankComparison:
    """Rank-based comparison of three or more configs (Demšar 2006, as ``autorank`` does for
    non-normal data): on every seed the configs are ranked (1 = best, ties share the average
    rank), the Friedman test asks whether mean ranks differ, and the Nemenyi critical difference
    tells which pairs of mean ranks are farther apart than chance allows.

    ``scores`` maps config name to one value per seed, aligned by position; seeds where any
    config is not finite are left out (Friedman needs complete blocks).

    >>> r = rank_comparison({"a": [3, 3, 3, 3], "b": [2, 2, 2, 2], "c": [1, 1, 1, 1]})
    >>> r.names, r.mean_ranks
    (('a', 'b', 'c'), (1.0, 2.0, 3.0))
    """
    names = list(scores)
    k = len(names)
    if k < 3:
        raise ValueError(
            "a rank comparison needs at least 3 configs; compare two with compare_pair"
        )
    x = np.array([np.asarray(scores[nm], dtype=float) for nm in names]).T  # seeds x configs
    x = x[np.all(np.isfinite(x), axis=1)]
    n = x.shape[0]
    if n < 2:
        raise ValueError("a rank comparison needs at least 2 seeds with a value for every config")
    ranks = stats.rankdata(-x if higher_is_better else x, axis=1)
    mean_ranks = ranks.mean(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        fr = stats.friedmanchisquare(*x.T)
    statistic = float(fr.statistic) if np.isfinite(fr.statistic) else 0.0
    p_value = float(fr.pvalue) if np.isfinite(fr.pvalue) else 1.0
    scale = math.sqrt(k * (k + 1) / (6 * n))
    cd = float(stats.studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2) * scale)
    order = np.argsort(mean_ranks, kind="stable")
    r = mean_ranks[order]
    q = np.abs(r[:, None] - r[None, :]) / scale * math.sqrt(2)
    nemenyi = np.where(q == 0, 1.0, stats.studentized_range.sf(np.maximum(q, 1e-12), k, np.inf))
    groups: list[tuple[int, int]] = []
    reach = -1
    for i in range(k):  # maximal runs of mean ranks within the CD (autorank's grouping)
        j = max(j for j in range(i, k) if r[j] - r[i] <= cd)
        if j > i and j > reach:
            groups.append((i, j))
            reach = j
    ordered = tuple(names[i] for i in order)
    result = RankComparison(
        names=ordered,
        mean_ranks=tuple(float(v) for v in r),
        n_blocks=n,
        statistic=statistic,
        p_value=p_value,
        critical_difference=cd,
        nemenyi_p=nemenyi,
        groups=tuple(groups),
        alpha=alpha,
        sentence="",
    )
    return replace(result, sentence=_rank_sentence(result))


def _rank_sentence(r: RankComparison) -> str:
    k = len(r.names)
    head = f"Friedman test over {r.n_blocks} seeds"
    if r.p_value >= r.alpha:
        return (
            f"{head}: the {k} configs' ranks do not differ ({_pval(r.p_value)}); "
            f"no config stands out (critical difference {r.critical_difference:.2f} ranks)."
        )
    tied_with_best = max((j for i, j in r.groups if i == 0), default=0)
    best = f"{r.names[0]} (mean rank {r.mean_ranks[0]:.2f})"
    if tied_with_best == 0:
        rest = "ahead of every other config by more than the critical difference"
    else:
        peers = ", ".join(r.names[1 : tied_with_best + 1])
        rest = f"not separable from {peers}"
    return (
        f"{head}: the {k} configs' ranks differ ({_pval(r.p_value)}); best {best}, {rest} "
        f"(Nemenyi critical difference {r.critical_difference:.2f} ranks)."
    )


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
    ax.text(
        (1 + k) / 2,
        top,
        title
        or f"mean rank over {result.n_blocks} seeds (1 = best); Friedman {_pval(result.p_value)}; "
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
        fig.savefig(path, dpi=120)
    return fig


@dataclass(frozen=True)
class ConfigComparison:
    """Result of :func:`compare_configs`.

    Attributes:
        ranking: config names, best mean first (NaN ignored).
        means: mean metric per config (same order as ``ranking``).
        best_vs_runner_up: the two best by mean, compared (None with one config).
        vs_baseline: config name -> comparison of that config (A) against the baseline (B), with
            Holm-adjusted p-values across the family; empty when no baseline is given.
        ranks: the Friedman/Nemenyi rank comparison (None with fewer than 3 configs or 2 seeds).
        winner: the best config when the best-vs-runner-up comparison is conclusive, else None.
        sentence: the overall verdict in plain language.
    """

    ranking: tuple[str, ...]
    means: tuple[float, ...]
    best_vs_runner_up: PairedComparison | None
    vs_baseline: dict[str, PairedComparison]
    ranks: RankComparison | None
    winner: str | None
    sentence: str


def compare_configs(
    scores: Mapping[str, Sequence[float]],
    *,
    baseline: str | None = None,
    higher_is_better: bool = True,
    test: Test = "wilcoxon",
    alpha: float = ALPHA,
    power: float = POWER,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    aso: bool = True,
) -> ConfigComparison:
    """Compare many configs measured on the same seeds (``scores[name][i]`` is seed ``i``; NaN
    where a run is missing or diverged).

    * the best config by mean against the runner-up (:func:`compare_pair`): the report names a
      winner only when this comparison is conclusive, otherwise it says how many seeds would be
      needed;
    * every other config against ``baseline``, p-values Holm-adjusted over that family (configs
      sharing no seed with the baseline are left out);
    * the Friedman/Nemenyi rank comparison over the configs that have values (three or more),
      on the seeds where all of them have one.

    >>> r = compare_configs({"a": [1.0, 2.0, 3.0], "b": [1.1, 1.9, 3.0]}, baseline="b")
    >>> r.winner is None, r.ranking
    (True, ('a', 'b'))
    """
    names = list(scores)
    if not names:
        raise ValueError("no configs to compare")
    if baseline is not None and baseline not in scores:
        raise ValueError(f"baseline {baseline!r} is not one of the configs: {', '.join(names)}")
    arrays = {nm: np.asarray(scores[nm], dtype=float) for nm in names}
    means = {}
    for nm, v in arrays.items():
        finite = v[np.isfinite(v)]
        means[nm] = float(finite.mean()) if finite.size else math.nan
    ranking = rank_by_mean(means, higher_is_better=higher_is_better)

    def shared(x: str, y: str) -> bool:  # any seed where both have a finite value
        a, b = arrays[x], arrays[y]
        return a.shape == b.shape and bool(np.any(np.isfinite(a) & np.isfinite(b)))

    kw = dict(
        higher_is_better=higher_is_better,
        test=test,
        alpha=alpha,
        power=power,
        n_resamples=n_resamples,
        seed=seed,
        aso=aso,
    )
    top = None
    measured = [nm for nm in ranking if not math.isnan(means[nm])]
    if len(measured) >= 2 and shared(measured[0], measured[1]):
        best, second = measured[0], measured[1]
        top = compare_pair(arrays[best], arrays[second], name_a=best, name_b=second, **kw)
    vs: dict[str, PairedComparison] = {}
    if baseline is not None:
        others = [nm for nm in ranking if nm != baseline and shared(nm, baseline)]
        raw = [
            compare_pair(arrays[nm], arrays[baseline], name_a=nm, name_b=baseline, **kw)
            for nm in others
        ]
        if len(raw) > 1:  # a family of comparisons with the same baseline: Holm
            for c, p_adj in zip(raw, holm([c.p_value for c in raw]), strict=True):
                verdict = _decide(c.mean_diff_ci, p_adj, alpha, higher_is_better, c.n)
                c = replace(c, p_value_adjusted=p_adj, verdict=verdict, adjustment="Holm")
                vs[c.name_a] = _replace_sentence(c)
        else:
            vs = {c.name_a: c for c in raw}
    ranks = None
    if len(measured) >= 3:  # configs without any value cannot be ranked: left out
        try:
            ranks = rank_comparison(
                {nm: arrays[nm] for nm in names if nm in measured},
                higher_is_better=higher_is_better,
                alpha=alpha,
            )
        except ValueError:
            ranks = None
    winner = top.winner if top is not None else None
    if top is None:
        sentence = (
            f"Nothing to compare: {measured[0]} and {measured[1]} share no seed."
            if len(measured) >= 2
            else "Nothing to compare: fewer than two configs have a finite value."
        )
    elif winner is not None:
        sentence = f"Best: {winner}. {top.sentence}"
    else:
        sentence = f"No winner yet: {top.sentence}"
    return ConfigComparison(
        ranking=tuple(ranking),
        means=tuple(means[nm] for nm in ranking),
        best_vs_runner_up=top,
        vs_baseline=vs,
        ranks=ranks,
        winner=winner,
        sentence=sentence,
    )


def align_seeds(
    values: Mapping[str, Mapping[int, float]],
) -> tuple[list[int], dict[str, np.ndarray]]:
    """Align per-config ``{seed: value}`` maps on the union of their seeds (NaN where a config has
    no value for a seed), the input :func:`compare_configs` expects.

    >>> seeds, scores = align_seeds({"a": {0: 1.0, 2: 3.0}, "b": {0: 0.5, 1: 2.0}})
    >>> seeds, scores["a"].tolist(), scores["b"].tolist()
    ([0, 1, 2], [1.0, nan, 3.0], [0.5, 2.0, nan])
    """
    seeds = sorted({int(s) for m in values.values() for s in m})
    return seeds, {
        name: np.array([float(m.get(s, math.nan)) for s in seeds]) for name, m in values.items()
    }


def compare_seed_maps(
    values: Mapping[str, Mapping[int, float]], **kwargs: object
) -> ConfigComparison:
    """:func:`compare_configs` on per-config ``{seed: value}`` maps (see :func:`align_seeds`);
    keyword arguments are passed on (``baseline``, ``higher_is_better``, ``test``...)."""
    _, scores = align_seeds(values)
    return compare_configs(scores, **kwargs)
