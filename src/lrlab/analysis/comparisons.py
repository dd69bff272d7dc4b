"""Honest comparisons between configs measured over several seeds.

The statistics that studies of benchmark variance recommend (Bouthillier et al., "Accounting for
Variance in Machine Learning Benchmarks", MLSys 2021; Dror et al., ACL 2019; Demšar, JMLR 2006),
as pure functions over arrays of final metrics, one value per seed. Nothing here reads the store.

Two configs, paired by seed (``a[i]`` and ``b[i]`` come from the same seed): :func:`compare_pair`
gathers the pieces of :mod:`lrlab.analysis.pairwise` (the mean difference with a 95% **BCa**
bootstrap interval, ``P(A better than B)`` with a **Wilson** interval, the **Wilcoxon** or paired
**t** test, the seeds needed), the almost-stochastic-order score of :mod:`lrlab.analysis.aso`, and
names a winner only when the test *and* the interval agree, in a sentence.

Looked at more than once (``looks >= 2``: the store counts the printed verdicts), the fixed-n
rule no longer holds its 5%: a user who adds seeds until a winner appears finds one in 25% of
runs with no true difference (scripts/sequential_calibration.py). Then the verdict is the
anytime-valid test's (:mod:`lrlab.analysis.sequential`, :func:`anytime_interval`), and the
sentence quotes its interval and p-value; at one look it quotes the bootstrap interval. Either
way the sentence's interval is the one the table prints for the same difference.

Many configs at once (:func:`compare_configs`): the best against the runner-up, every config
against the baseline (Holm-adjusted), and the Friedman/Nemenyi rank comparison of
:mod:`lrlab.analysis.ranks` (its diagram: :mod:`lrlab.reporting.cd_plot`).

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from lrlab.analysis.aso import aso_eps_min
from lrlab.analysis.pairwise import (
    ALPHA,
    N_RESAMPLES,
    POWER,
    TEST_NAMES,
    Interval,
    Test,
    bootstrap_mean_diff,
    format_p,
    holm,
    paired_arrays,
    prob_better,
    seeds_needed,
)
from lrlab.analysis.ranks import RankComparison, rank_comparison
from lrlab.analysis.sequential import OneSeedError, SequentialInterval, paired_sequential
from lrlab.analysis.stats import paired_aligned, rank_by_mean

Verdict = Literal["a_better", "b_better", "inconclusive"]

# ---------------------------------------------------------------------------- verdict, two configs


def _signed_triple(x: float, ci: Interval) -> tuple[str, str, str]:
    """``x`` and its interval with the same decimals: two significant digits of the interval's
    width (of ``x`` when the interval is a point), e.g. ``+0.0082``, ``+0.0038``, ``+0.0117``."""
    scale = ci.high - ci.low or abs(x) or 1.0
    decimals = max(0, 1 - math.floor(math.log10(scale)))
    return tuple(f"{v:+.{decimals}f}" for v in (x, ci.low, ci.high))


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
            side; otherwise ``"inconclusive"``. From the second look (``looks >= 2``) only
            when the anytime-valid test rejects (its p-value Holm-adjusted in a family).
        anytime: the anytime-valid interval and p-value of ``mean(a - b)``
            (:func:`anytime_interval`); None with one seed.
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
    anytime: SequentialInterval | None = None  # None: one seed, no interval
    looks: int = 0
    anytime_p_adjusted: float | None = None  # Holm over the family, when one of several

    @property
    def anytime_rule(self) -> bool:
        """True when the anytime-valid test decides: the results were looked at twice or more."""
        return self.looks >= 2

    @property
    def winner(self) -> str | None:
        """The better config's name, or None when the comparison is not conclusive."""
        return {"a_better": self.name_a, "b_better": self.name_b}.get(self.verdict)


def _decide(diff_ci: Interval, p: float, alpha: float, higher_is_better: bool, n: int) -> Verdict:
    if n < 2 or p >= alpha or diff_ci.contains(0.0):
        return "inconclusive"
    a_larger = diff_ci.low > 0
    return "a_better" if a_larger == higher_is_better else "b_better"


def anytime_interval(
    a: np.ndarray, b: np.ndarray, bounds: tuple[float, float] | None, alpha: float = ALPHA
) -> SequentialInterval | None:
    """The anytime-valid interval of ``mean(a - b)``; None for one seed ("one seed: no interval").

    The t-mixture (Lai 1976) for every metric; for a metric with a finite range (accuracy:
    ``bounds=(0, 1)``) intersected with the difference's range, so it never leaves it. Why not
    the betting interval for accuracy: it names no winner within 100 seeds for shifts of one
    and five noise sds where the t-mixture needs a median 20 and 10 seeds, at the same false
    winner rate (scripts/sequential_calibration.py; the README's Statistics section).

    >>> r = anytime_interval(np.array([0.9, 0.8]), np.array([0.7, 0.6]), (0.0, 1.0))
    >>> r.method, r.low, r.high
    ('t-mixture', -1.0, 1.0)
    >>> anytime_interval(np.array([0.9]), np.array([0.8]), (0.0, 1.0)) is None
    True
    """
    finite = bounds if bounds is not None and all(map(math.isfinite, bounds)) else None
    try:
        return paired_sequential(a, b, alpha=alpha, bounds=finite, method="t-mixture")
    except OneSeedError:
        return None


def _decide_anytime(anytime: SequentialInterval | None, higher_is_better: bool) -> Verdict:
    if anytime is None or not anytime.rejects_null:
        return "inconclusive"
    return "a_better" if (anytime.low > 0) == higher_is_better else "b_better"


def _anytime_sentence(c: PairedComparison) -> str:
    """The sentence when the anytime-valid test decides (see :func:`_sentence`)."""
    av = c.anytime
    looks = f"{c.n} seeds, {c.looks} looks"
    if av is None:
        return f"{c.name_a} and {c.name_b}: one seed: no interval ({c.looks} looks)."
    a_wins = c.verdict == "a_better"
    sign = -1.0 if c.verdict == "b_better" else 1.0
    win, lose = (c.name_b, c.name_a) if sign < 0 else (c.name_a, c.name_b)
    low, high = sorted((sign * av.low, sign * av.high))
    if av.bounded:
        d, lo, hi = _signed_triple(sign * av.mean, Interval(low, high))
    else:  # the t-mixture with fewer than t_mixture_min_seeds() seeds: the whole line
        d, lo, hi = _signed_triple(sign * av.mean, Interval(0.0, 0.0))[0], "-inf", "+inf"
    p = av.p_value if c.anytime_p_adjusted is None else c.anytime_p_adjusted
    holm_note = f" ({c.adjustment})" if c.anytime_p_adjusted is not None else ""
    evidence = (
        f"mean difference {d} (anytime-valid 95% CI {lo} to {hi}, {av.method}), "
        f"anytime-valid {format_p(p)}{holm_note}, {looks}"
    )
    if c.verdict != "inconclusive":
        p = c.p_a_better if a_wins else 1 - c.p_a_better
        return f"{win} beats {lose} in {_pct(p)} of paired seeds; {evidence}."
    needed = (
        f"about {max(c.seeds_needed, c.n + 1)} needed"
        if c.seeds_needed
        else "more seeds are unlikely to separate them"
    )
    return (
        f"{c.name_a} and {c.name_b} are not distinguishable with {c.n} seeds by a test that "
        f"stays valid however often you look; {needed} ({c.name_a} − {c.name_b}: {evidence})."
    )


def _sentence(c: PairedComparison) -> str:
    if c.anytime_rule:
        return _anytime_sentence(c)
    test = TEST_NAMES[c.test]
    p_txt = format_p(c.p_value_adjusted) + (f" ({c.adjustment})" if c.adjustment else "")
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
    bounds: tuple[float, float] | None = None,
    looks: int = 0,
) -> PairedComparison:
    """Compare config A with config B over seeds, paired by position (``a[i]``, ``b[i]`` share
    seed ``i``), and say whether one is better.

    Computes :func:`bootstrap_mean_diff` (BCa, ``n_resamples``, ``seed``), :func:`prob_better`
    (Wilson), :func:`paired_test` (``test``), :func:`aso_eps_min` (when ``aso``) and
    :func:`seeds_needed`; see :class:`PairedComparison` for the verdict rule. Pass
    ``p_value_adjusted`` (e.g. Holm) when this comparison is one of several. ``bounds``: the
    metric's range (accuracy ``(0, 1)``) for :func:`anytime_interval`; ``looks``: how often the
    results have been looked at (2 or more: the anytime-valid test decides).

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
    anytime = anytime_interval(a, b, bounds, alpha)
    if looks >= 2:
        verdict = _decide_anytime(anytime, higher_is_better)
    else:
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
        anytime=anytime,
        looks=looks,
    )
    return _replace_sentence(partial)


def _replace_sentence(c: PairedComparison) -> PairedComparison:
    return replace(c, sentence=_sentence(c))


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
    bounds: tuple[float, float] | None = None,
    looks: int = 0,
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

    ``bounds`` and ``looks`` go to :func:`compare_pair` (the anytime-valid rule).

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
        bounds=bounds,
        looks=looks,
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
            # anytime-valid p-values are valid at any stopping time, so Holm applies to them too
            anytime_p = [c.anytime.p_value if c.anytime is not None else 1.0 for c in raw]
            adjusted = zip(raw, holm([c.p_value for c in raw]), holm(anytime_p), strict=True)
            for c, p_adj, p_any in adjusted:
                if c.anytime_rule:
                    verdict = c.verdict if p_any <= alpha else "inconclusive"
                else:
                    verdict = _decide(c.mean_diff_ci, p_adj, alpha, higher_is_better, c.n)
                c = replace(
                    c,
                    p_value_adjusted=p_adj,
                    verdict=verdict,
                    adjustment="Holm",
                    anytime_p_adjusted=p_any,
                )
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
