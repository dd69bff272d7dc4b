"""Almost stochastic order (Dror et al., ACL 2019, after del Barrio et al., 2018): the
``eps_min`` score of "A is better than B", with the algorithm and numbers of ``deepsig.aso``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

from lrlab.analysis.pairwise import LEVEL


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
