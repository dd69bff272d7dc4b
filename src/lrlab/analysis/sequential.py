"""Anytime-valid intervals and p-values for paired differences over seeds.

A fixed-n test (the paired t-test, Wilcoxon, a 95% t-interval) keeps its 5% only if the
number of seeds is fixed before looking. A user who adds seeds until a winner appears
needs *confidence sequences*: intervals ``C_1, C_2, ...`` with
``P(for all n: mean in C_n) >= 1 - alpha``, so stopping at any look, however chosen, keeps
the error rate. Each method here is an e-process ``E_n(m)`` (a nonnegative process with
``E[E_n(m)] <= 1`` when ``m`` is the true mean); Ville's inequality gives
``P(exists n: E_n(m) >= 1/alpha) <= alpha``, hence

- the interval: ``C_n = {m : max_{s <= n} E_s(m) < 1/alpha}`` (the running intersection);
- the anytime-valid p-value for "no difference": ``p_n = min(1, 1 / max_{s <= n} E_s(0))``.

Both read the same running maximum, so ``0 not in C_n  <=>  p_n <= alpha`` exactly (the
betting interval evaluates the null itself on its grid, see :func:`betting_cs`). The
seeds are taken in the given order (lrlab's seed order); the guarantee holds for that
order at every ``n``.

Two methods, by what is known about the metric:

- **bounded** (accuracy in [0, 1], any metric with a declared ``[low, high]``):
  :func:`betting_cs`, the hedged capital process with predictable plug-in bets of
  Waudby-Smith & Ramdas (2023), "Estimating means of bounded random variables by betting",
  JRSS-B 86(1), 2024 (the hedged capital process with predictable plug-in bets, as in
  their reference package confseq). No assumption beyond the range and independence
  of the seeds. A paired difference ``a - b`` of a metric in ``[low, high]`` lies in
  ``[-(high - low), high - low]``; :func:`paired_betting_cs` maps it there, so an accuracy
  difference interval never leaves ``[-1, 1]``.
- **unbounded** (a loss): :func:`paired_t_cs`, the scale-invariant normal-mixture ("t")
  confidence sequence of Lai (1976), "On confidence sequences", Ann. Statist. 4(2), as in
  Wang & Ramdas (2023), "Anytime-valid t-tests and confidence sequences for Gaussian means
  with unknown variance", and Lindon, Ham, Tingley & Bojinov (2024), "Anytime-valid linear
  models and regression adjusted causal inference in randomized experiments" (the g-prior
  e-value ``savvi`` implements). Why this one and not the sub-Gaussian normal-mixture or
  empirical-Bernstein boundaries of Howard, Ramdas, McAuliffe & Sekhon (2021): those need a
  *known* scale (a sub-Gaussian sigma, or a range ``[a, b]``) and a loss has neither;
  plugging in an estimated sigma silently breaks the guarantee. The t-mixture needs no
  scale, at the price of a **stated assumption: the paired differences are i.i.d.
  Gaussian** (the same assumption as the paired t-test lrlab already prints). Heavy tails
  or skew in the differences make it approximate; when the metric has a known range, use
  the betting interval instead (``bounds=`` in :func:`paired_sequential`). Measured over
  100 seeds at alpha 5% with no true difference (4,000 runs): Gaussian 2.8% false winners,
  Student t with 3 df 1.8%, the difference of two exponential (or two lognormal) noises
  1.5% (0.8%) -- symmetric differences, which is what two configs with the same seed noise
  give when neither is better; but *skewed* differences are not covered: centred
  exponential 12%, centred lognormal 24%.
  Scale invariance has a cost at tiny ``n``: with ``effect_sd = 1`` no amount of
  agreement between 2-4 seeds can reach ``1/alpha = 20``, so the interval is the whole
  line (``low = -inf, high = inf``; :attr:`SequentialInterval.bounded` is False) until
  about 5 seeds (:func:`t_mixture_min_seeds`). That is the honest answer for a metric of
  unknown scale, not a bug.

What the two cost (scripts/sequential_calibration.py, 2,000 simulated users who add 5 seeds
at a time up to 100 and stop at the first winner): with no true difference the paired
t-test at 5% names a false winner in 25% of runs, the t-mixture in 3.0%; with a true
shift of 1 noise sd the t-mixture names the right winner after a median 20 seeds (the
t-test: 10), of 0.5 noise sd after 75 (the t-test: 25), never the wrong one. The betting
interval pays for assuming only the range: a bet may lose at most what a difference of
``-(high - low)`` would take, so for accuracy differences of a few points (noise sd 0.01,
shift 0.05) it names no winner within 100 seeds; it decides at around 90 seeds for a
shift of 0.1. For small differences of a bounded metric, ``paired_sequential(...,
method="t-mixture")`` with the bounds is the practical choice, Gaussian assumption stated.

One seed gives no interval: every function raises :class:`OneSeedError` ("one seed: no
interval"); callers print its message. Two seeds work (never NaN; for the betting
interval always finite).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable

import numpy as np

__all__ = [
    "OneSeedError",
    "SequentialInterval",
    "betting_cs",
    "betting_log_capital",
    "paired_betting_cs",
    "paired_sequential",
    "paired_t_cs",
    "t_mixture_log_evidence",
    "t_mixture_min_seeds",
]

GRID_BREAKS = 1000
"""Candidate means per unit of the [0, 1] scale in :func:`betting_cs` (1e-3 resolution)."""

TRUNCATION = 0.5
"""Bets are capped at ``TRUNCATION / m`` (and ``/ (1 - m)``), WSR's (and confseq's) choice."""


class OneSeedError(ValueError):
    """Raised for fewer than two paired values: "one seed: no interval"."""


@dataclasses.dataclass(frozen=True)
class SequentialInterval:
    """An anytime-valid interval for a mean (or mean difference) after ``n`` seeds.

    Attributes:
        n: seeds used.
        mean: the sample mean.
        low, high: the running-intersection confidence sequence at level ``1 - alpha``;
            ``-inf``/``inf`` when the data cannot yet bound that side.
        p_value: the anytime-valid p-value for "mean equals ``null``" (0 for a
            difference): ``min(1, 1 / max_{s<=n} E_s(null))``.
        alpha: the level; ``p_value <= alpha`` exactly when ``null`` is outside
            ``[low, high]``.
        method: ``"betting"`` (Waudby-Smith & Ramdas 2023) or ``"t-mixture"`` (Lai 1976).
    """

    n: int
    mean: float
    low: float
    high: float
    p_value: float
    alpha: float
    method: str

    @property
    def bounded(self) -> bool:
        """Whether both ends are finite."""
        return math.isfinite(self.low) and math.isfinite(self.high)

    @property
    def rejects_null(self) -> bool:
        """The anytime-valid test's verdict at level ``alpha``."""
        return self.p_value <= self.alpha


def _values(values: Iterable[float], what: str) -> np.ndarray:
    x = np.asarray(list(values), dtype=np.float64)
    if x.ndim != 1 or not np.all(np.isfinite(x)):
        raise ValueError(f"{what}: expected a flat list of finite numbers")
    if len(x) < 2:
        raise OneSeedError("one seed: no interval")
    return x


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")


def _pairs(a: Iterable[float], b: Iterable[float]) -> np.ndarray:
    a_arr = np.asarray(list(a), dtype=np.float64)
    b_arr = np.asarray(list(b), dtype=np.float64)
    if a_arr.shape != b_arr.shape:
        raise ValueError(
            f"paired values need the same seeds: got {a_arr.size} and {b_arr.size} values"
        )
    return _values(a_arr - b_arr, "paired differences")


def _excluding_rejected_null(
    low: float, high: float, null: float, rejected: bool
) -> tuple[float, float]:
    """Keep "null outside ``[low, high]``" and "p <= alpha" the same statement.

    A rejected null can sit on the reported ends: the betting grid's one-step widening, or
    an end equal to it (the sets are open). Then the end next to it moves one float past it.
    """
    if not (rejected and low <= null <= high):
        return low, high
    if (low + high) / 2 >= null:
        return float(np.nextafter(null, math.inf)), high
    return low, float(np.nextafter(null, -math.inf))


# --- bounded metrics: betting (Waudby-Smith & Ramdas 2023) ------------------------------


def _plugin_bets(x: np.ndarray, alpha: float) -> np.ndarray:
    """WSR's predictable plug-in bets, before truncation, along the last axis.

    ``mu_t = (1/2 + sum_{i<=t} x_i) / (t + 1)``,
    ``sigma2_t = (1/4 + sum_{i<=t} (x_i - mu_i)^2) / (t + 1)``,
    ``lambda_t = sqrt(2 log(1/alpha') / (t log(t + 1) sigma2_{t-1}))`` with
    ``sigma2_0 = 1/4`` (confseq's ``lambda_predmix_eb`` with its defaults: prior mean 1/2,
    prior variance 1/4, one fake observation). ``lambda_t`` uses only ``x_1 .. x_{t-1}``.
    Each side of the hedge tunes its bets for ``alpha' = alpha / 2``, as confseq does.
    """
    t = np.arange(1, x.shape[-1] + 1, dtype=np.float64)
    mu = (0.5 + np.cumsum(x, axis=-1)) / (t + 1)
    sigma2 = (0.25 + np.cumsum((x - mu) ** 2, axis=-1)) / (t + 1)
    sigma2_before = np.concatenate([np.full(x.shape[:-1] + (1,), 0.25), sigma2[..., :-1]], axis=-1)
    return np.sqrt(2 * math.log(2 / alpha) / (t * np.log(t + 1) * sigma2_before))


def betting_log_capital(
    x: np.ndarray, m: np.ndarray | float, alpha: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """Log of WSR's hedged capital for candidate means ``m``, over time.

    For ``x_i`` in [0, 1] and a candidate mean ``m``::

        K+_t(m) = prod_{i<=t} (1 + min(lambda_i, c/m) (x_i - m))
        K-_t(m) = prod_{i<=t} (1 - min(lambda_i, c/(1-m)) (x_i - m))
        K_t(m)  = max(K+_t(m) / 2, K-_t(m) / 2)

    with ``c =`` :data:`TRUNCATION` and ``lambda_i`` from :func:`_plugin_bets`
    (WSR 2023, "hedged capital"; confseq ``betting_mart`` with ``theta=1/2``,
    ``trunc_scale=1/2``, ``m_trunc=True``, ``convex_comb=False``). ``K_t(m)`` is a
    nonnegative supermartingale-dominated e-process when ``m`` is the mean.

    Args:
        x: values in [0, 1]; the last axis is time (leading axes: independent sequences).
        m: candidate means in [0, 1]; broadcast against ``x[..., :1]`` (e.g. shape
            ``(G, 1)`` for a grid against one sequence).
        alpha: the level the bets are tuned for.

    Returns:
        ``(log K_t(m), log K+_t(m) - log K-_t(m))``: the hedged log capital and which side
        is winning (positive: the mean looks larger than ``m``), both shaped like the
        broadcast of ``x`` and ``m``.
    """
    bets = _plugin_bets(x, alpha)
    m = np.asarray(m, dtype=np.float64)
    with np.errstate(divide="ignore"):
        up = np.minimum(bets, TRUNCATION / m)
        down = np.minimum(bets, TRUNCATION / (1 - m))
    log_up = np.cumsum(np.log1p(up * (x - m)), axis=-1)
    log_down = np.cumsum(np.log1p(-down * (x - m)), axis=-1)
    return np.maximum(log_up, log_down) - math.log(2), log_up - log_down


def betting_cs(
    values: Iterable[float],
    alpha: float = 0.05,
    low: float = 0.0,
    high: float = 1.0,
    null: float | None = None,
) -> SequentialInterval:
    """Betting confidence sequence for the mean of values in ``[low, high]``.

    The values are rescaled to ``x = (v - low) / (high - low)`` in [0, 1];
    :func:`betting_log_capital` is evaluated on a grid of :data:`GRID_BREAKS` + 1
    candidate means (plus ``null``), and the interval runs from the grid point below the
    smallest never-rejected candidate to the one above the largest (one grid step of
    slack each side, so the grid can only widen it), clipped to ``[low, high]``.

    Args:
        values: one value per seed, in seed order; each in ``[low, high]``.
        alpha: level; the interval covers the mean at every ``n`` simultaneously with
            probability ``>= 1 - alpha``.
        low, high: the metric's known range.
        null: the mean the p-value tests (default: the middle of the range).

    Raises:
        OneSeedError: fewer than two values.
        ValueError: a value outside ``[low, high]``, or a bad ``alpha``/range.

    >>> r = betting_cs([0.91, 0.93, 0.90, 0.92, 0.94, 0.91, 0.92, 0.93])
    >>> r.low, r.high, round(r.p_value, 3)
    (0.423, 1.0, 0.121)
    >>> r = betting_cs([0.91, 0.93, 0.90, 0.92, 0.94, 0.91, 0.92, 0.93] * 3)
    >>> round(r.low, 3), round(r.high, 3), r.p_value < 0.001
    (0.69, 0.973, True)
    """
    _check_alpha(alpha)
    if not high > low:
        raise ValueError(f"the range needs low < high, got [{low}, {high}]")
    v = _values(values, "betting_cs")
    if v.min() < low or v.max() > high:
        raise ValueError(
            f"betting_cs: values must lie in [{low}, {high}], got [{v.min()}, {v.max()}]"
        )
    width = high - low
    null = (low + high) / 2 if null is None else null
    if not low <= null <= high:
        raise ValueError(f"null {null} is outside the range [{low}, {high}]")
    x = (v - low) / width
    null_x = (null - low) / width
    grid = np.union1d(np.linspace(0.0, 1.0, GRID_BREAKS + 1), [null_x])
    log_capital, _ = betting_log_capital(x, grid[:, None], alpha)
    worst = log_capital.max(axis=1)  # running maximum up to n, per candidate
    kept = np.flatnonzero(worst < math.log(1 / alpha))
    if kept.size:
        lo_x = grid[max(kept[0] - 1, 0)]
        hi_x = grid[min(kept[-1] + 1, grid.size - 1)]
    else:  # the running intersection is empty (probability <= alpha): the latest set
        latest = np.flatnonzero(log_capital[:, -1] < math.log(1 / alpha))
        lo_x, hi_x = (grid[latest[0]], grid[latest[-1]]) if latest.size else (x.mean(),) * 2
    null_index = int(np.searchsorted(grid, null_x))
    p_value = min(1.0, math.exp(-worst[null_index]))
    interval = _excluding_rejected_null(
        float(low + lo_x * width), float(low + hi_x * width), null, p_value <= alpha
    )
    return SequentialInterval(
        n=len(v),
        mean=float(v.mean()),
        low=interval[0],
        high=interval[1],
        p_value=p_value,
        alpha=alpha,
        method="betting",
    )


def paired_betting_cs(
    a: Iterable[float],
    b: Iterable[float],
    alpha: float = 0.05,
    low: float = 0.0,
    high: float = 1.0,
) -> SequentialInterval:
    """Betting confidence sequence for ``mean(a - b)``, ``a`` and ``b`` in ``[low, high]``.

    The differences lie in ``[-(high - low), high - low]``; :func:`betting_cs` runs on that
    range with ``null = 0``, so the p-value tests "no difference".

    >>> r = paired_betting_cs([0.90, 0.93, 0.91, 0.92], [0.90, 0.92, 0.91, 0.93])
    >>> -1.0 <= r.low <= 0.0 <= r.high <= 1.0, r.p_value
    (True, 1.0)
    """
    width = high - low
    return betting_cs(_pairs(a, b), alpha=alpha, low=-width, high=width, null=0.0)


# --- unbounded metrics: the t-mixture (Lai 1976) -----------------------------------------


def t_mixture_log_evidence(d: np.ndarray, null: float = 0.0, effect_sd: float = 1.0) -> np.ndarray:
    """Log of the scale-invariant normal-mixture e-process for "mean of ``d`` is ``null``".

    With ``y_i = d_i - null``, ``S_t = sum_{i<=t} y_i``, ``Q_t = sum (d_i - dbar_t)^2`` and
    a ``N(0, effect_sd^2)`` mixture over the effect size ``mu / sigma`` (``sigma`` unknown,
    scale-invariant prior ``dsigma / sigma``)::

        E_t = (1 + t tau^2)^(-1/2) * ((Q_t + S_t^2 / t) / (Q_t + S_t^2 / (t (1 + t tau^2))))^(t/2)

    ``tau = effect_sd``. In t-statistic form (``T^2 = (S_t^2/t) / (Q_t/(t-1))``,
    ``nu = t - 1``) this is Lindon et al.'s g-prior e-value with ``g = tau^2``:
    ``(1 + t g)^(-1/2) ((1 + T^2/nu) / (1 + T^2/(nu (1 + t g))))^((nu+1)/2)``. ``E_1 = 1``;
    for i.i.d. Gaussian ``d`` with mean ``null`` it is a test martingale (Lai 1976), so
    ``P(exists t: E_t >= 1/alpha) <= alpha`` whatever the variance. All-equal ``d``
    (``Q_t = 0``) equal to ``null`` gives ``E_t = 1``.

    Args:
        d: differences; the last axis is time (leading axes: independent sequences).
        null: the hypothesised mean.
        effect_sd: ``tau``, the spread of effect sizes the mixture is tuned for.

    Returns:
        ``log E_t``, shaped like ``d``.
    """
    d = np.asarray(d, dtype=np.float64)
    t = np.arange(1, d.shape[-1] + 1, dtype=np.float64)
    shifted = d - d[..., :1]  # Q_t is shift-invariant; the shift keeps cumsums accurate
    q = np.maximum(np.cumsum(shifted**2, axis=-1) - np.cumsum(shifted, axis=-1) ** 2 / t, 0.0)
    s2_over_t = np.cumsum(d - null, axis=-1) ** 2 / t
    growth = 1 + t * effect_sd**2
    total = q + s2_over_t
    rest = q + s2_over_t / growth
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(total > 0, np.log(total) - np.log(rest), 0.0)
    return -0.5 * np.log(growth) + 0.5 * t * ratio


def t_mixture_min_seeds(alpha: float = 0.05, effect_sd: float = 1.0) -> int:
    """The fewest seeds with which :func:`paired_t_cs` can name a winner at all.

    The e-process is largest when all differences agree: ``E_n = (1 + n tau^2)^((n-1)/2)``;
    this is the smallest ``n`` where that reaches ``1/alpha``. Below it the interval is the
    whole line whatever the data.

    >>> t_mixture_min_seeds(), t_mixture_min_seeds(0.01), t_mixture_min_seeds(0.05, 0.5)
    (5, 6, 7)
    """
    _check_alpha(alpha)
    n = 2
    while 0.5 * (n - 1) * math.log1p(n * effect_sd**2) < math.log(1 / alpha):
        n += 1
    return n


def _t_radius(n: np.ndarray, q: np.ndarray, alpha: float, effect_sd: float) -> np.ndarray:
    """Half-width of Lai's interval at each ``n``: ``E_n(m) < 1/alpha`` solved for ``m``.

    With ``K = ((1 + n tau^2)^(1/2) / alpha)^(2/n)``: ``E_n(m) >= 1/alpha`` iff
    ``(dbar - m)^2 >= (K - 1) Q_n (1 + n tau^2) / (n (n tau^2 - (K - 1)))``, and never when
    ``n tau^2 <= K - 1`` (then the half-width is ``inf``).
    """
    tau2 = effect_sd**2
    k_minus_1 = np.expm1((2 / n) * (0.5 * np.log1p(n * tau2) + math.log(1 / alpha)))
    room = n * tau2 - k_minus_1
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = k_minus_1 * q * (1 + n * tau2) / (n * room)
    return np.where(room > 0, np.sqrt(np.maximum(r2, 0.0)), np.inf)


def paired_t_cs(
    a: Iterable[float],
    b: Iterable[float],
    alpha: float = 0.05,
    effect_sd: float = 1.0,
) -> SequentialInterval:
    """Lai's t confidence sequence for ``mean(a - b)`` of an unbounded metric (a loss).

    Assumes the paired differences are i.i.d. Gaussian with unknown variance (see the
    module docstring for why and what breaks it). The interval at ``n`` is the running
    intersection of ``dbar_s +- r_s`` (:func:`_t_radius`) over ``s <= n``; the p-value is
    ``1 / max_{s<=n} E_s(0)`` (:func:`t_mixture_log_evidence`).

    Args:
        a, b: the metric of the two configs, one value per shared seed, in seed order.
        alpha: level.
        effect_sd: the mixture's spread of standardized effects ``mu / sigma``; 1 favours
            effects of about one standard deviation of the differences.

    >>> r = paired_t_cs([1.0, 1.2, 0.9], [1.1, 1.0, 1.0])
    >>> r.low, r.high, r.p_value
    (-inf, inf, 1.0)
    >>> a = [2.0, 2.3, 1.9, 2.2, 2.1, 2.4, 2.0, 2.2]
    >>> r = paired_t_cs(a, [v - 1.0 for v in a[::-1]])
    >>> 0 < r.low < r.mean < r.high, r.p_value < 0.05
    (True, True)
    """
    _check_alpha(alpha)
    if not effect_sd > 0:
        raise ValueError(f"effect_sd must be > 0, got {effect_sd}")
    d = _pairs(a, b)
    n = np.arange(1, len(d) + 1, dtype=np.float64)
    means = np.cumsum(d) / n
    shifted = d - d[0]
    q = np.maximum(np.cumsum(shifted**2) - np.cumsum(shifted) ** 2 / n, 0.0)
    radius = _t_radius(n, q, alpha, effect_sd)
    with np.errstate(invalid="ignore"):
        lows, highs = means - radius, means + radius
    low, high = float(np.max(lows)), float(np.min(highs))
    if low > high:  # empty running intersection (probability <= alpha): the latest one
        low, high = float(lows[-1]), float(highs[-1])
    p_value = min(1.0, math.exp(-float(np.max(t_mixture_log_evidence(d, 0.0, effect_sd)))))
    low, high = _excluding_rejected_null(low, high, 0.0, p_value <= alpha)
    return SequentialInterval(
        n=len(d),
        mean=float(means[-1]),
        low=low,
        high=high,
        p_value=p_value,
        alpha=alpha,
        method="t-mixture",
    )


def paired_sequential(
    a: Iterable[float],
    b: Iterable[float],
    alpha: float = 0.05,
    bounds: tuple[float, float] | None = None,
    method: str | None = None,
) -> SequentialInterval:
    """The anytime-valid comparison of ``a - b``, by what is known about the metric.

    - ``bounds=(low, high)`` (accuracy: ``(0, 1)``), ``method`` ``None`` or ``"betting"``:
      :func:`paired_betting_cs`; assumes only the range.
    - ``bounds=None`` (a loss), ``method`` ``None`` or ``"t-mixture"``: :func:`paired_t_cs`
      and its Gaussian assumption.
    - ``bounds`` and ``method="t-mixture"``: :func:`paired_t_cs`, its interval intersected
      with the difference's range ``[-(high - low), high - low]`` (a set sure to hold the
      mean, so coverage is kept). Much shorter than the betting interval when the
      differences are small against the range (a few accuracy points), at the price of the
      Gaussian assumption.

    >>> paired_sequential([0.9, 0.8], [0.9, 0.8], bounds=(0.0, 1.0)).method
    'betting'
    >>> r = paired_sequential([0.9, 0.8], [0.7, 0.6], bounds=(0.0, 1.0), method="t-mixture")
    >>> r.low, r.high
    (-1.0, 1.0)
    >>> paired_sequential([0.9], [0.8])
    Traceback (most recent call last):
    ...
    lrlab.analysis.sequential.OneSeedError: one seed: no interval
    """
    method = method or ("t-mixture" if bounds is None else "betting")
    if method not in ("betting", "t-mixture"):
        raise ValueError(f"method must be 'betting' or 't-mixture', got {method!r}")
    if method == "betting":
        if bounds is None:
            raise ValueError("the betting interval needs the metric's bounds=(low, high)")
        return paired_betting_cs(a, b, alpha=alpha, low=bounds[0], high=bounds[1])
    result = paired_t_cs(a, b, alpha=alpha)
    if bounds is None:
        return result
    width = bounds[1] - bounds[0]
    low = min(max(result.low, -width), width)
    high = max(min(result.high, width), -width)
    return dataclasses.replace(result, low=low, high=high)
