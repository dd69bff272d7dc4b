"""Statistics over trials: per-config summaries, paired comparisons by seed, a ranking.

Conventions (scipy's, named here once):

- :func:`summarize`: mean, sample standard deviation (``ddof=1``) and the t-based
  interval ``mean +- t_{(1+c)/2, n-1} * std / sqrt(n)``;
- :func:`paired`: the differences ``d_s = a_s - b_s`` over the seeds both have; their mean
  with a t-based interval, the paired t-test (``scipy.stats.ttest_rel``, two-sided), the
  Wilcoxon signed-rank test (``scipy.stats.wilcoxon``, two-sided, zero differences
  dropped as in its default ``zero_method="wilcox"``) and Cohen's ``d_z = mean(d) / sd(d)``.
  Degenerate inputs have defined answers: all ``d_s`` equal (to 1e-12 relative, so
  rounding noise does not count as spread) -> t-test p is 1 when they are 0 and 0
  otherwise, ``d_z`` is 0 or +-inf; no non-zero difference -> Wilcoxon p is 1;
  fewer than 2 pairs -> NaN;
- :func:`rank`: by mean (best first; ties keep the given order), configs without values last.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

__all__ = ["Paired", "Summary", "paired", "rank", "summarize"]

NAN = float("nan")


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
    """A paired comparison ``a - b`` over ``n`` shared seeds."""

    n: int
    mean_diff: float
    std_diff: float
    ci_low: float
    ci_high: float
    p_ttest: float
    p_wilcoxon: float
    cohen_dz: float
    confidence: float = 0.95


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


def paired(a: Mapping[int, float], b: Mapping[int, float], confidence: float = 0.95) -> Paired:
    """Compare ``a`` with ``b`` (both keyed by seed) over the seeds they share.

    >>> p = paired({0: 0.95, 1: 0.97, 2: 0.96, 3: 0.99}, {0: 0.94, 1: 0.95, 2: 0.96, 3: 0.96})
    >>> p.n, round(p.mean_diff, 4), round(p.p_ttest, 4), p.p_wilcoxon
    (4, 0.015, 0.1027, 0.25)
    """
    from scipy import stats

    seeds = sorted(set(a) & set(b))
    xa = np.array([a[s] for s in seeds], dtype=np.float64)
    xb = np.array([b[s] for s in seeds], dtype=np.float64)
    d = xa - xb
    n = len(d)
    mean, std, lo, hi = _t_interval(d, confidence)
    if n < 2:
        return Paired(n, mean, std, lo, hi, NAN, NAN, NAN, confidence)
    if std <= 1e-12 * abs(mean) or std == 0.0:  # constant differences (up to rounding)
        p_t = 1.0 if mean == 0.0 else 0.0
        dz = 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
        lo = hi = mean
    else:
        p_t = float(stats.ttest_rel(xa, xb).pvalue)
        dz = mean / std
    if np.all(d == 0):
        p_w = 1.0
    else:
        p_w = float(stats.wilcoxon(d, zero_method="wilcox").pvalue)
    return Paired(n, mean, std, lo, hi, p_t, p_w, dz, confidence)


def rank(
    labels: Sequence[str], summaries: Mapping[str, Summary], *, higher_is_better: bool
) -> list[str]:
    """``labels`` ordered best first by mean; labels without values go last.

    >>> s = {"a": summarize([1, 2]), "b": summarize([3, 4]), "c": summarize([])}
    >>> rank(["a", "b", "c"], s, higher_is_better=True)
    ['b', 'a', 'c']
    """
    sign = -1.0 if higher_is_better else 1.0

    def key(item: tuple[int, str]) -> tuple[int, float, int]:
        i, label = item
        s = summaries.get(label)
        if s is None or s.n == 0:
            return (1, 0.0, i)
        return (0, sign * s.mean, i)

    return [label for _, label in sorted(enumerate(labels), key=key)]
