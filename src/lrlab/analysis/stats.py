"""Statistics over trials: per-config summaries, paired comparisons by seed, a ranking.

The one place lrlab computes these; the results table, the verdicts of
:mod:`lrlab.analysis.comparisons`, the figures and the rank diagram all use it.
Conventions (scipy's, named here once):

- :func:`summarize`: mean, sample standard deviation (``ddof=1``) and the t-based
  interval ``mean +- t_{(1+c)/2, n-1} * std / sqrt(n)``;
- :func:`paired_aligned` (values paired by position) and :func:`paired` (by seed): the
  differences ``d_i = a_i - b_i``; their mean with a t-based interval, the paired t-test
  (``scipy.stats.ttest_rel``, two-sided), the Wilcoxon signed-rank test
  (``scipy.stats.wilcoxon``, two-sided, zero differences dropped as in its default
  ``zero_method="wilcox"``) and Cohen's ``d_z = mean(d) / sd(d)``;
- :func:`rank`: by mean (best first; ties keep the given order), configs without values last.

Degenerate inputs have one defined answer each (:func:`paired_aligned` lists them).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

__all__ = ["Paired", "Summary", "paired", "paired_aligned", "rank", "rank_by_mean", "summarize"]

NAN = float("nan")
#: Differences whose spread is below this share of their mean count as constant: the
#: rounding noise of ``0.6 - 0.5`` vs ``0.8 - 0.7`` is not spread.
CONSTANT_RTOL = 1e-12


@dataclasses.dataclass(frozen=True)
class Summary:
    """``n`` values: mean, sample std, and the ``confidence`` t-interval of the mean."""

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float
    confidence: float = 0.95


@dataclasses.dataclass(frozen=True)
class Paired:
    """A paired comparison ``a - b`` over ``n`` pairs (see :func:`paired_aligned`).

    ``t_statistic``/``p_ttest`` are the paired t-test's, ``w_statistic``/``p_wilcoxon``
    the Wilcoxon signed-rank test's (``w_statistic`` is scipy's: the smaller rank sum).
    """

    n: int
    mean_diff: float
    std_diff: float
    ci_low: float
    ci_high: float
    p_ttest: float
    p_wilcoxon: float
    cohen_dz: float
    confidence: float = 0.95
    t_statistic: float = NAN
    w_statistic: float = NAN


def _t_interval(x: np.ndarray, confidence: float) -> tuple[float, float, float, float]:
    from scipy import stats

    n = len(x)
    if n == 0:
        return NAN, NAN, NAN, NAN
    mean = float(np.mean(x))
    if n == 1:
        return mean, NAN, NAN, NAN
    std = float(np.std(x, ddof=1))
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * std / math.sqrt(n)
    return mean, std, mean - half, mean + half


def summarize(values: Iterable[float], confidence: float = 0.95) -> Summary:
    """Mean, std and t-interval of ``values`` (non-finite values are an error).

    >>> s = summarize([0.90, 0.92, 0.94])
    >>> round(s.mean, 4), round(s.std, 4), round(s.ci_low, 4), round(s.ci_high, 4)
    (0.92, 0.02, 0.8703, 0.9697)
    """
    x = np.asarray(list(values), dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError("summarize() needs finite values")
    mean, std, lo, hi = _t_interval(x, confidence)
    return Summary(len(x), mean, std, lo, hi, confidence)


def paired_aligned(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> Paired:
    """Compare ``a`` with ``b`` paired by position (``a[i]`` and ``b[i]`` share seed ``i``).

    Every degenerate input has one answer:

    - no pair: every number NaN;
    - all differences 0 (any ``n``): no evidence of a difference, both p-values 1, both
      statistics 0, ``d_z = 0``;
    - one pair, not 0: the t-test needs two (``t``, its p, the interval and ``d_z`` NaN);
      the exact Wilcoxon test of one pair gives ``p = 1``;
    - all differences equal and not 0 (up to :data:`CONSTANT_RTOL`): the t-test's limit,
      ``t = +-inf`` and ``p = 0``; the interval is the point ``[mean, mean]``; ``d_z`` is NaN,
      not +-inf: with no spread there is no standardized effect size (two seeds of an
      accuracy on a small validation set often differ by the same step).

    Swapping ``a`` and ``b`` flips the signs of the difference, the interval, ``t`` and
    ``d_z`` and keeps both p-values.

    >>> p = paired_aligned([0.95, 0.97, 0.96, 0.99], [0.94, 0.95, 0.96, 0.96])
    >>> p.n, round(p.mean_diff, 4), round(p.p_ttest, 4), p.p_wilcoxon
    (4, 0.015, 0.1027, 0.25)
    >>> same = paired_aligned([1.0, 2.0], [1.0, 2.0])
    >>> same.p_ttest, same.p_wilcoxon, same.cohen_dz
    (1.0, 1.0, 0.0)
    """
    from scipy import stats

    xa = np.asarray(a, dtype=np.float64)
    xb = np.asarray(b, dtype=np.float64)
    if xa.ndim != 1 or xa.shape != xb.shape:
        raise ValueError(
            f"paired values need two 1-D arrays of the same length (one value per seed), "
            f"got shapes {xa.shape} and {xb.shape}"
        )
    if not (np.all(np.isfinite(xa)) and np.all(np.isfinite(xb))):
        raise ValueError("paired comparisons need finite values; drop the non-finite pairs")
    d = xa - xb
    n = len(d)
    mean, std, lo, hi = _t_interval(d, confidence)
    result = Paired(n, mean, std, lo, hi, NAN, NAN, NAN, confidence)
    if n == 0:
        return result
    if np.all(d == 0):
        return dataclasses.replace(
            result, p_ttest=1.0, p_wilcoxon=1.0, cohen_dz=0.0, t_statistic=0.0, w_statistic=0.0
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # small samples: exact p, no warning
        w = stats.wilcoxon(d, zero_method="wilcox")
    result = dataclasses.replace(result, p_wilcoxon=float(w.pvalue), w_statistic=float(w.statistic))
    if n == 1:
        return result
    if std == 0.0 or std <= CONSTANT_RTOL * abs(mean):  # constant differences (up to rounding)
        t_limit = math.copysign(math.inf, mean)
        return dataclasses.replace(
            result, ci_low=mean, ci_high=mean, p_ttest=0.0, t_statistic=t_limit
        )
    t = stats.ttest_rel(xa, xb)
    return dataclasses.replace(
        result, p_ttest=float(t.pvalue), t_statistic=float(t.statistic), cohen_dz=mean / std
    )


def paired(a: Mapping[int, float], b: Mapping[int, float], confidence: float = 0.95) -> Paired:
    """:func:`paired_aligned` of ``a`` and ``b`` (both keyed by seed) over the seeds they share.

    >>> a = {0: 0.95, 1: 0.97, 2: 0.96, 3: 0.99, 9: 0.5}  # seed 9: b has none, left out
    >>> p = paired(a, {0: 0.94, 1: 0.95, 2: 0.96, 3: 0.96})
    >>> p.n, round(p.mean_diff, 4), round(p.p_ttest, 4), p.p_wilcoxon
    (4, 0.015, 0.1027, 0.25)
    """
    seeds = sorted(set(a) & set(b))
    return paired_aligned([a[s] for s in seeds], [b[s] for s in seeds], confidence)


def rank_by_mean(means: Mapping[str, float], *, higher_is_better: bool) -> list[str]:
    """The keys of ``means`` best mean first; ties keep the given order, NaN means go last.

    >>> rank_by_mean({"a": 1.5, "b": 3.5, "c": float("nan"), "d": 3.5}, higher_is_better=True)
    ['b', 'd', 'a', 'c']
    """
    sign = -1.0 if higher_is_better else 1.0

    def key(item: tuple[int, str]) -> tuple[int, float, int]:
        i, label = item
        mean = means[label]
        return (1, 0.0, i) if math.isnan(mean) else (0, sign * mean, i)

    return [label for _, label in sorted(enumerate(means), key=key)]


def rank(
    labels: Sequence[str], summaries: Mapping[str, Summary], *, higher_is_better: bool
) -> list[str]:
    """``labels`` ordered best first by mean (:func:`rank_by_mean`); labels without values last.

    >>> s = {"a": summarize([1, 2]), "b": summarize([3, 4]), "c": summarize([])}
    >>> rank(["a", "b", "c"], s, higher_is_better=True)
    ['b', 'a', 'c']
    """
    means = {}
    for label in labels:
        s = summaries.get(label)
        means[label] = s.mean if s is not None and s.n > 0 else NAN
    return rank_by_mean(means, higher_is_better=higher_is_better)
