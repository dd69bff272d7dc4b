"""Cosine family: Keras CosineDecay (clamped), torch CosineAnnealingLR (periodic),
Keras CosineDecayRestarts (SGDR), and warmup-stable-decay (transformers)."""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

from lrlab.schedules.base import Ops, Schedule
from lrlab.schedules.horizon import Horizon
from lrlab.schedules.registry import register


def _half_cosine(frac, ops: Ops):
    """``(1 + cos(pi * frac)) / 2``: 1 at frac = 0, 0 at frac = 1."""
    return 0.5 * (1.0 + ops.cos(math.pi * frac))


@register("cosine")
@dataclasses.dataclass(frozen=True)
class Cosine(Schedule):
    """Keras ``CosineDecay``, clamped after ``decay_steps`` (= optax ``cosine_decay_schedule``).

    Without warmup: ``lr * ((1 - alpha) * c + alpha)``, ``c = (1 + cos(pi * min(t, D) / D)) / 2``.
    With ``warmup_target`` and ``warmup_steps = W``: linear from ``lr`` to
    ``warmup_target`` over ``W`` steps, then the same decay from ``warmup_target`` on
    ``t - W``. Past the end it holds ``alpha * peak`` (torch's periodic form is
    :class:`CosineAnnealing`). ``warmup_steps`` without ``warmup_target`` is an error
    (Keras ignores it silently).

    >>> s = Cosine(0.1, decay_steps=100)
    >>> s(0), round(s(50), 12), s(100), s(150)
    (0.1, 0.05, 0.0, 0.0)
    """

    FORMULA = (
        "lr · ((1 − α) · (1 + cos(π · min(t, D) / D)) / 2 + α); with warmup_target: linear lr"
        " → warmup_target over warmup_steps, then the same decay from warmup_target"
    )
    REFERENCE = "Keras `CosineDecay` = optax `cosine_decay_schedule` (clamped)"
    EXAMPLE = "cosine(0.1, decay_steps=30, alpha=0.1)"

    lr: float
    decay_steps: int
    alpha: float = 0.0
    warmup_target: float | None = None
    warmup_steps: int = 0

    def _check(self) -> None:
        self._require("lr", self.lr >= 0, f"must be >= 0, got {self.lr}")
        self._require("decay_steps", self.decay_steps > 0, f"must be > 0, got {self.decay_steps}")
        self._require("alpha", 0 <= self.alpha <= 1, f"must be in [0, 1], got {self.alpha}")
        self._require(
            "warmup_steps", self.warmup_steps >= 0, f"must be >= 0, got {self.warmup_steps}"
        )
        if self.warmup_target is not None:
            self._require(
                "warmup_target", self.warmup_target >= 0, f"must be >= 0, got {self.warmup_target}"
            )
        else:
            # Keras silently ignores warmup_steps without warmup_target; say so instead.
            self._require(
                "warmup_steps",
                self.warmup_steps == 0,
                "needs warmup_target (the lr reached after the warmup), "
                "or write warmup(N, cosine(...))",
            )

    def _decay(self, t, peak: float, ops: Ops):
        frac = ops.minimum(t, ops.asarray(float(self.decay_steps))) / self.decay_steps
        return peak * ((1.0 - self.alpha) * _half_cosine(frac, ops) + self.alpha)

    @property
    def peak(self) -> float:
        return max(self.lr, self.warmup_target or 0.0)

    @property
    def horizon(self) -> Horizon:
        return Horizon.end(self.decay_steps + (self.warmup_steps if self.warmup_target else 0))

    def _value(self, t, ops: Ops):
        if self.warmup_target is None:
            return self._decay(t, self.lr, ops)
        w = self.warmup_steps
        decayed = self._decay(ops.maximum(t - w, ops.asarray(0.0)), self.warmup_target, ops)
        if w == 0:
            return decayed
        warm = (self.warmup_target - self.lr) * (t / w) + self.lr
        return ops.where(t < w, warm, decayed)


@register("cosine_annealing")
@dataclasses.dataclass(frozen=True)
class CosineAnnealing(Schedule):
    """torch ``CosineAnnealingLR`` in closed form (periodic, not clamped).

    ``eta_min + (lr - eta_min) * (1 + cos(pi * t / t_max)) / 2``.

    Periodic past ``t_max`` (it climbs back to ``lr`` at ``2 * t_max``), exactly as
    torch's closed form (``_get_closed_form_lr``; its chained ``step()`` agrees to ~1e-13);
    Keras' :class:`Cosine` is clamped instead.

    >>> s = CosineAnnealing(1.0, t_max=10)
    >>> s(0), round(s(10), 12), round(s(20), 12)
    (1.0, 0.0, 1.0)
    """

    FORMULA = "eta_min + (lr − eta_min) · (1 + cos(π · t / t_max)) / 2 (periodic)"
    REFERENCE = "torch `CosineAnnealingLR` (its closed form)"
    EXAMPLE = "cosine_annealing(0.1, t_max=15, eta_min=0.01)"

    lr: float
    t_max: int
    eta_min: float = 0.0

    def _check(self) -> None:
        self._require("lr", self.lr >= 0, f"must be >= 0, got {self.lr}")
        self._require("t_max", self.t_max > 0, f"must be > 0, got {self.t_max}")
        self._require("eta_min", self.eta_min >= 0, f"must be >= 0, got {self.eta_min}")

    @property
    def peak(self) -> float:
        return max(self.lr, self.eta_min)

    @property
    def horizon(self) -> Horizon:
        """Its lr turns back up at ``t_max``, then every ``2 t_max``."""
        return Horizon.cycles(self.t_max, 2 * self.t_max)

    def _value(self, t, ops: Ops):
        # reduce to one period (2 t_max) first: exact for integer steps, so float32
        # namespaces keep full accuracy far past t_max
        period = 2.0 * self.t_max
        r = t - period * ops.floor_div(t, period)
        return self.eta_min + (self.lr - self.eta_min) * _half_cosine(r / self.t_max, ops)


@register("cosine_restarts")
@dataclasses.dataclass(frozen=True)
class CosineRestarts(Schedule):
    """Keras ``CosineDecayRestarts`` (SGDR, Loshchilov & Hutter 2017).

    Period ``i`` lasts ``first_decay_steps * t_mul**i`` steps and peaks at
    ``lr * m_mul**i``; within a period with progress ``f``:
    ``lr * ((1 - alpha) * m_mul**i * (1 + cos(pi f)) / 2 + alpha)``.
    Equal to torch ``CosineAnnealingWarmRestarts(T_0=first_decay_steps, T_mult=t_mul,
    eta_min=alpha * lr)`` when ``m_mul = 1`` (torch needs an integer ``t_mul``; then every
    restart is a whole step, computed exactly). ``m_mul`` is in (0, 1]. The period index
    is corrected after the ``log``/``floor`` that finds it, which rounding can put one
    period off exactly at a restart (``t_mul=3`` at step ``121 * first_decay_steps``).

    >>> s = CosineRestarts(1.0, first_decay_steps=10, t_mul=2.0)
    >>> s(0), round(s(5), 12), s(10), round(s(20), 12)
    (1.0, 0.5, 1.0, 0.5)
    """

    FORMULA = (
        "period i lasts first_decay_steps · t_mul^i steps: lr · ((1 − α) · m_mul^i · (1 + "
        "cos(π · f)) / 2 + α), f the progress in the period"
    )
    REFERENCE = (
        "Keras `CosineDecayRestarts`; torch `CosineAnnealingWarmRestarts` when m_mul=1, "
        "eta_min=α·lr"
    )
    EXAMPLE = "cosine_restarts(0.1, first_decay_steps=8, t_mul=2.0, m_mul=0.5)"

    lr: float
    first_decay_steps: int
    t_mul: float = 2.0
    m_mul: float = 1.0
    alpha: float = 0.0

    def _check(self) -> None:
        self._require("lr", self.lr >= 0, f"must be >= 0, got {self.lr}")
        self._require(
            "first_decay_steps",
            self.first_decay_steps > 0,
            f"must be > 0, got {self.first_decay_steps}",
        )
        self._require("t_mul", self.t_mul >= 1, f"must be >= 1, got {self.t_mul}")
        self._require("m_mul", 0 < self.m_mul <= 1, f"must be in (0, 1], got {self.m_mul}")
        self._require("alpha", 0 <= self.alpha <= 1, f"must be in [0, 1], got {self.alpha}")

    @property
    def peak(self) -> float:
        return self.lr

    @property
    def horizon(self) -> Horizon:
        first = self.first_decay_steps
        return Horizon.cycles(first, first * self.t_mul, self.t_mul)

    def _value(self, t, ops: Ops):
        n, q = float(self.first_decay_steps), self.t_mul
        if q == 1.0:
            i_restart = ops.floor_div(t, n)
            frac = (t - i_restart * n) / n
        else:
            # period i starts after n (q^i - 1) / (q - 1) steps; invert, then correct the
            # floor, which rounding can put one period off at a restart (in float64,
            # log(243) / log(3) = 4.999...: t_mul=3 gave alpha, not the peak, at step 121 n)
            log_q = math.log(q)

            def start(i):
                # n (q^i - 1) / (q - 1) with expm1 and log q in float64: q^i - 1 cancels
                # badly in float32 for t_mul near 1
                steps = n * ops.expm1(i * log_q) / (q - 1.0)
                # with an integer t_mul every restart is a whole step: round off float32 noise
                return ops.floor(steps + 0.5) if q % 1 == 0 else steps

            # cap the log at the largest period any float step can reach (it overflows
            # to inf for a huge t_mul, and inf periods would give nan)
            cap = math.log(2.0**54) + math.log(q - 1.0) - math.log(n) + 1.0
            log_periods = ops.minimum(ops.log1p(t / n * (q - 1.0)), ops.asarray(cap))
            i_restart = ops.floor(log_periods / log_q)
            i_restart = ops.where(t < start(i_restart), i_restart - 1.0, i_restart)
            i_restart = ops.where(t >= start(i_restart + 1.0), i_restart + 1.0, i_restart)
            i_restart = ops.maximum(i_restart, ops.asarray(0.0))
            frac = (t - start(i_restart)) / (n * ops.power(q, i_restart))
        cosine = ops.power(self.m_mul, i_restart) * _half_cosine(frac, ops)
        return self.lr * ((1.0 - self.alpha) * cosine + self.alpha)


@register("wsd")
@dataclasses.dataclass(frozen=True)
class WarmupStableDecay(Schedule):
    """Warmup-stable-decay, as transformers ``get_wsd_schedule``.

    With ``r = min_lr / lr``, ``W, S, D`` the phase lengths and ``p`` the progress in
    the current phase: warmup ``lr * (r + (1 - r) * t / W)``; stable ``lr``; decay
    ``lr * (r + (1 - r) * g(p))`` with ``g`` = ``(1 + cos(pi p)) / 2`` (``cosine``),
    ``1 - p`` (``linear``) or ``1 - sqrt(p)`` (``sqrt``, transformers' ``1-sqrt``);
    ``min_lr`` after ``W + S + D``.

    >>> s = WarmupStableDecay(1.0, warmup_steps=2, stable_steps=2, decay_steps=4, decay="linear")
    >>> [s(t) for t in range(9)]
    [0.0, 0.5, 1.0, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0]
    """

    FORMULA = (
        "lr · factor, r = min_lr / lr: warmup r → 1 over W, stable 1 for S, decay 1 → r over "
        "D (cosine, linear or 1 − √p), then r"
    )
    REFERENCE = "transformers `get_wsd_schedule`"
    EXAMPLE = "wsd(0.1, warmup_steps=5, stable_steps=15, decay_steps=15, min_lr=0.001)"

    lr: float
    warmup_steps: int
    stable_steps: int
    decay_steps: int
    min_lr: float = 0.0
    decay: Literal["cosine", "linear", "sqrt"] = "cosine"

    def _check(self) -> None:
        self._require("lr", self.lr > 0, f"must be > 0, got {self.lr}")
        for arg in ("warmup_steps", "stable_steps", "decay_steps"):
            value = getattr(self, arg)
            self._require(arg, value >= 0, f"must be >= 0, got {value}")
        self._require(
            "min_lr", 0 <= self.min_lr <= self.lr, f"must be in [0, lr], got {self.min_lr}"
        )

    @property
    def peak(self) -> float:
        return self.lr

    @property
    def horizon(self) -> Horizon:
        return Horizon.end(self.warmup_steps + self.stable_steps + self.decay_steps)

    def _value(self, t, ops: Ops):
        w, s, d = self.warmup_steps, self.stable_steps, self.decay_steps
        r = self.min_lr / self.lr
        warm = r + (1.0 - r) * t / max(1, w)
        p = ops.clip((t - w - s) / max(1, d), 0.0, 1.0)
        if self.decay == "cosine":
            g = _half_cosine(p, ops)
        elif self.decay == "linear":
            g = 1.0 - p
        else:
            g = 1.0 - ops.sqrt(p)
        decayed = r + (1.0 - r) * g
        factor = ops.where(t < w + s + d, decayed, r)
        factor = ops.where(t < w + s, 1.0, factor)
        factor = ops.where(t < w, warm, factor)
        return self.lr * ops.maximum(factor, ops.asarray(0.0))
