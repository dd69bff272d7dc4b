"""Many configs at once, by rank (Demšar, JMLR 2006, as ``autorank`` does for non-normal
data): the Friedman test with seeds as blocks and the Nemenyi critical difference
(:func:`rank_comparison`). The diagram is drawn by :mod:`lrlab.reporting.cd_plot`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import stats

from lrlab.analysis.pairwise import ALPHA, format_p


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
            f"{head}: the {k} configs' ranks do not differ ({format_p(r.p_value)}); "
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
        f"{head}: the {k} configs' ranks differ ({format_p(r.p_value)}); best {best}, {rest} "
        f"(Nemenyi critical difference {r.critical_difference:.2f} ranks)."
    )
