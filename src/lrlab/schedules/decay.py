"""Monotone decays: constant, time-based, exponential, step, piecewise, polynomial, linear.

Every formula below uses ``t`` for the step (0 = first optimizer update).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from lrlab.schedules.base import NO_HORIZON, Ops, Schedule, ops_for
from lrlab.schedules.horizon import Horizon
from lrlab.schedules.registry import register


@register("constant")
@dataclasses.dataclass(frozen=True)
class Constant(Schedule):
    """``lr(t) = lr``.

    >>> Constant(0.1)(1000)
    0.1
    """

    FORMULA = "lr"
    REFERENCE = "any library (a fixed lr)"
    EXAMPLE = "constant(0.1)"

    lr: float

    def _check(self) -> None:
        self._require("lr", self.lr >= 0, f"must be >= 0, got {self.lr}")

    @property
    def peak(self) -> float:
        return self.lr

    @property
    def horizon(self) -> Horizon:
        return Horizon.end(0)

    def _value(self, t, ops: Ops):
        return t * 0.0 + self.lr


@register("time_decay")
@dataclasses.dataclass(frozen=True)
class TimeDecay(Schedule):
    """Keras 2's ``SGD(decay=...)``: ``lr(t) = lr / (1 + decay * t)``.

    This is the per-update formula Keras 2 applied with ``iterations`` as ``t``
    (Keras 3 ignores ``decay=`` with a warning). With ``cumulative=true`` it is the
    recursion ``lr_t = lr_{t-1} / (1 + decay * t)`` that produces the table printed in
    the seed tutorial: ``lr * exp(-S(t))`` with ``S(t) = sum_{i=1..floor(t)} log1p(decay * i)``.

    ``S`` is evaluated in closed form, accurate to float32/float64 rounding in every
    array namespace: the first 16 terms exactly, the rest by the Euler-Maclaurin formula
    (integral of ``log1p(decay * x)``, end corrections up to the 5th derivative; the
    remainder is below 3e-12). A ``lgamma`` difference would lose ~1e-4 in float32.

    >>> s = TimeDecay(0.1, decay=0.001, cumulative=True)
    >>> [round(s(t), 11) for t in range(5)]
    [0.1, 0.0999000999, 0.0997006985, 0.09940249103, 0.09900646517]
    >>> round(TimeDecay(0.1, decay=0.002)(100), 10)
    0.0833333333
    """

    FORMULA = "lr / (1 + decay·t); cumulative: lr · Π_{i=1..t} 1 / (1 + decay·i)"
    REFERENCE = "Keras 2 `SGD(decay=...)` per update; cumulative: the seed tutorial's table"
    EXAMPLE = "time_decay(0.1, decay=0.05)"

    lr: float
    decay: float
    cumulative: bool = False

    def _check(self) -> None:
        self._require("lr", self.lr >= 0, f"must be >= 0, got {self.lr}")
        self._require("decay", self.decay >= 0, f"must be >= 0, got {self.decay}")

    @property
    def peak(self) -> float:
        return self.lr

    horizon = NO_HORIZON

    def _value(self, t, ops: Ops):
        if not self.cumulative:
            return self.lr / (1.0 + self.decay * t)
        if self.decay == 0.0:
            return t * 0.0 + self.lr
        t = ops.floor(t)
        d, k = self.decay, _HEAD
        # S(t) for t <= k, term by term (in float64, then selected)
        head = [0.0]
        for i in range(1, k + 1):
            head.append(head[-1] + math.log1p(d * i))
        s_head = t * 0.0
        for i in range(1, k + 1):
            s_head = ops.where(t >= i, head[i], s_head)
        if d * k > 1e20:  # every term past k is > 46 nats: the lr underflows to 0 there
            return ops.where(t <= k, self.lr * ops.exp(-s_head), 0.0)
        # Euler-Maclaurin for sum_{i=k+1..t} f(i), f(x) = log1p(d x), g = f' = d / (1 + d x)
        x = ops.maximum(t, ops.asarray(float(k)))
        g = d / (1.0 + d * x)
        gk = d / (1.0 + d * k)
        tail = (
            x * _h(d * x, ops)
            - k * _h_scalar(d * k)
            + (ops.log1p(d * x) - math.log1p(d * k)) / 2.0
            + (g - gk) / 12.0
            - (g**3 - gk**3) / 360.0
            + (g**5 - gk**5) / 1260.0
        )
        s = ops.where(t <= k, s_head, head[k] + tail)
        return self.lr * ops.exp(-s)


_HEAD = 16  # terms of the cumulative time decay summed exactly
_SERIES_BELOW = 0.1


def _h(u, ops: Ops):
    """``h(u) = ((1 + u) log1p(u) - u) / u``, so that ``int_0^x log1p(d y) dy = x h(d x)``.

    A power series below ``u = 0.1`` (where the direct form cancels), the direct form above.
    """
    small = ops.minimum(u, ops.asarray(_SERIES_BELOW))
    series = small * 0.0
    for n in range(10, 0, -1):  # sum_{n>=1} (-1)^(n+1) u^n / (n (n+1)), Horner form
        series = (series + (-1.0) ** (n + 1) / (n * (n + 1))) * small
    big = ops.maximum(u, ops.asarray(_SERIES_BELOW))
    direct = (1.0 + 1.0 / big) * ops.log1p(big) - 1.0
    return ops.where(u < _SERIES_BELOW, series, direct)


def _h_scalar(u: float) -> float:
    return float(_h(np.float64(u), ops_for(np)))


@dataclasses.dataclass(frozen=True)
class _KerasProgressDecay(Schedule):
    """Keras' decays of ``p = t / decay_steps`` (``floor`` of it with ``staircase=true``)."""

    lr: float
    decay_steps: int
    decay_rate: float
    staircase: bool = False

    def _check(self) -> None:
        self._require("lr", self.lr >= 0, f"must be >= 0, got {self.lr}")
        self._require("decay_steps", self.decay_steps > 0, f"must be > 0, got {self.decay_steps}")

    @property
    def peak(self) -> float:
        return self.lr

    horizon = NO_HORIZON

    def _progress(self, t, ops: Ops):
        if self.staircase:
            return ops.floor_div(t, self.decay_steps)
        return t / self.decay_steps


@register("inverse_time")
@dataclasses.dataclass(frozen=True)
class InverseTime(_KerasProgressDecay):
    """Keras ``InverseTimeDecay``: ``lr / (1 + decay_rate * p)``, ``p = t / decay_steps``.

    With ``staircase=true``, ``p = floor(t / decay_steps)``.

    >>> InverseTime(0.1, decay_steps=10, decay_rate=1.0)(10)
    0.05
    """

    FORMULA = "lr / (1 + decay_rate · t / decay_steps), ⌊t / decay_steps⌋ with staircase"
    REFERENCE = "Keras `InverseTimeDecay`"
    EXAMPLE = "inverse_time(0.1, decay_steps=5, decay_rate=0.5)"

    def _check(self) -> None:
        super()._check()
        self._require("decay_rate", self.decay_rate >= 0, f"must be >= 0, got {self.decay_rate}")

    def _value(self, t, ops: Ops):
        return self.lr / (1.0 + self.decay_rate * self._progress(t, ops))


@register("exponential")
@dataclasses.dataclass(frozen=True)
class Exponential(_KerasProgressDecay):
    """Keras ``ExponentialDecay`` = optax ``exponential_decay``: ``lr * decay_rate ** p``.

    ``p = t / decay_steps`` (``floor`` of it with ``staircase=true``). With
    ``decay_steps=1`` it is torch ``ExponentialLR(gamma=decay_rate)``. ``decay_rate`` is in
    (0, 1] (Keras accepts a growing rate, which overflows; a rising ramp is :class:`LrRange`).

    >>> round(Exponential(0.1, decay_steps=10, decay_rate=0.96, staircase=True)(25), 6)
    0.09216
    """

    FORMULA = "lr · decay_rate^(t / decay_steps), ⌊t / decay_steps⌋ with staircase"
    REFERENCE = (
        "Keras `ExponentialDecay` = optax `exponential_decay`; torch `ExponentialLR` when "
        "decay_steps=1"
    )
    EXAMPLE = "exponential(0.1, decay_steps=7, decay_rate=0.5, staircase=true)"

    def _check(self) -> None:
        super()._check()
        self._require(
            "decay_rate",
            0 < self.decay_rate <= 1,
            f"must be in (0, 1], got {self.decay_rate} (a rising ramp is lr_range)",
        )

    def _value(self, t, ops: Ops):
        return self.lr * ops.power(self.decay_rate, self._progress(t, ops))


@register("exp_decay")
@dataclasses.dataclass(frozen=True)
class ExpDecay(Schedule):
    """The seed tutorial's ``exp_decay``: ``lr * exp(-k * t)``.

    >>> round(ExpDecay(0.1, k=0.1)(10), 8)
    0.03678794
    """

    FORMULA = "lr · exp(−k·t)"
    REFERENCE = "the seed tutorial's `exp_decay`"
    EXAMPLE = "exp_decay(0.1, k=0.05)"

    lr: float
    k: float

    def _check(self) -> None:
        self._require("lr", self.lr >= 0, f"must be >= 0, got {self.lr}")
        self._require("k", self.k >= 0, f"must be >= 0, got {self.k}")

    @property
    def peak(self) -> float:
        return self.lr

    horizon = NO_HORIZON

    def _value(self, t, ops: Ops):
        return self.lr * ops.exp(-self.k * t)


@register("step_decay")
@dataclasses.dataclass(frozen=True)
class StepDecay(Schedule):
    """Drops by ``drop`` every ``every`` steps: ``lr * drop ** floor((t + offset) / every)``.

    ``offset=0`` is torch ``StepLR(step_size=every, gamma=drop)``; ``offset=1`` is the
    seed tutorial's ``floor((1 + epoch) / epochs_drop)``, which drops one step early
    (the first drop comes at t = every - 1). ``drop`` is in (0, 1].

    >>> s = StepDecay(0.1, drop=0.5, every=10, offset=1)
    >>> [s(t) for t in (0, 8, 9, 19)]
    [0.1, 0.1, 0.05, 0.025]
    """

    FORMULA = "lr · drop^⌊(t + offset) / every⌋"
    REFERENCE = "torch `StepLR` (offset=0); the seed tutorials' `step_decay` (offset=1)"
    EXAMPLE = "step_decay(0.1, drop=0.5, every=10, offset=1)"

    lr: float
    drop: float
    every: int
    offset: int = 0

    def _check(self) -> None:
        self._require("lr", self.lr >= 0, f"must be >= 0, got {self.lr}")
        self._require("drop", 0 < self.drop <= 1, f"must be in (0, 1], got {self.drop}")
        self._require("every", self.every > 0, f"must be > 0, got {self.every}")
        self._require("offset", self.offset >= 0, f"must be >= 0, got {self.offset}")

    @property
    def peak(self) -> float:
        return self.lr

    horizon = NO_HORIZON

    def _value(self, t, ops: Ops):
        return self.lr * ops.power(self.drop, ops.floor_div(t + self.offset, self.every))


@register("multistep")
@dataclasses.dataclass(frozen=True)
class MultiStep(Schedule):
    """torch ``MultiStepLR``: multiply by ``gamma`` at each milestone, ``t >= m``.

    ``lr * gamma ** #{m in milestones : m <= t}``. The lr changes *at* the milestone;
    compare :class:`Piecewise` (Keras), which changes one step *after* a boundary. A
    repeated milestone applies ``gamma`` twice and a milestone 0 applies it from the
    first step, as in torch; ``gamma`` is in (0, 1].

    >>> s = MultiStep(0.1, milestones=[3, 5], gamma=0.1)
    >>> [round(s(t), 6) for t in range(7)]
    [0.1, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
    """

    FORMULA = "lr · gamma^#{m in milestones : m ≤ t}"
    REFERENCE = "torch `MultiStepLR`"
    EXAMPLE = "multistep(0.1, milestones=[10, 25], gamma=0.1)"

    lr: float
    milestones: tuple[int, ...]
    gamma: float

    def _check(self) -> None:
        self._require("lr", self.lr >= 0, f"must be >= 0, got {self.lr}")
        self._require("gamma", 0 < self.gamma <= 1, f"must be in (0, 1], got {self.gamma}")
        ms = self.milestones
        self._require("milestones", len(ms) > 0, "must not be empty")
        self._require("milestones", all(m >= 0 for m in ms), f"must be >= 0, got {list(ms)}")
        self._require("milestones", list(ms) == sorted(ms), f"must be increasing, got {list(ms)}")

    @property
    def peak(self) -> float:
        return self.lr

    @property
    def horizon(self) -> Horizon:
        return Horizon.end(self.milestones[-1])

    def _value(self, t, ops: Ops):
        out = t * 0.0 + self.lr
        for m in self.milestones:
            out = ops.where(t >= m, out * self.gamma, out)
        return out


@register("piecewise")
@dataclasses.dataclass(frozen=True)
class Piecewise(Schedule):
    """Keras ``PiecewiseConstantDecay``: ``values[i]`` for ``b[i-1] < t <= b[i]``.

    ``values[0]`` while ``t <= boundaries[0]``, then ``values[1]`` while
    ``t <= boundaries[1]``, ..., ``values[-1]`` after the last boundary. The value
    changes one step *after* a boundary (``t = b + 1``), unlike :class:`MultiStep`,
    which changes *at* its milestone.

    >>> s = Piecewise(boundaries=[2, 4], values=[1.0, 0.5, 0.1])
    >>> [s(t) for t in range(6)]
    [1.0, 1.0, 1.0, 0.5, 0.5, 0.1]
    """

    FORMULA = "values[i] for boundaries[i−1] < t ≤ boundaries[i]"
    REFERENCE = "Keras `PiecewiseConstantDecay`"
    EXAMPLE = "piecewise(boundaries=[10, 20], values=[0.1, 0.05, 0.01])"

    POSITIONAL = 0

    boundaries: tuple[int, ...]
    values: tuple[float, ...]

    def _check(self) -> None:
        b, v = self.boundaries, self.values
        self._require("boundaries", len(b) > 0, "must not be empty")
        self._require(
            "values",
            len(v) == len(b) + 1,
            f"must have one more entry than boundaries ({len(b) + 1}), got {len(v)}",
        )
        self._require("boundaries", list(b) == sorted(b), f"must be increasing, got {list(b)}")
        self._require("values", all(x >= 0 for x in v), f"must be >= 0, got {list(v)}")

    @property
    def peak(self) -> float:
        return max(self.values)

    @property
    def horizon(self) -> Horizon:
        return Horizon.end(self.boundaries[-1] + 1)  # the last value from one step after

    def _value(self, t, ops: Ops):
        out = t * 0.0 + self.values[-1]
        for boundary, value in reversed(list(zip(self.boundaries, self.values, strict=False))):
            out = ops.where(t <= boundary, value, out)
        return out


@register("polynomial")
@dataclasses.dataclass(frozen=True)
class Polynomial(Schedule):
    """Keras ``PolynomialDecay``: ``(lr - end_lr) * (1 - t / decay_steps) ** power + end_lr``.

    ``t`` is clamped to ``decay_steps``; with ``cycle=true`` the horizon grows instead
    to ``decay_steps * ceil(t / decay_steps)`` (1 at t = 0).

    >>> Polynomial(0.1, decay_steps=10, end_lr=0.0)(5)
    0.05
    """

    FORMULA = (
        "(lr − end_lr) · (1 − min(t, D) / D)^power + end_lr; cycle: D · ⌈t / D⌉ instead of "
        "the clamp"
    )
    REFERENCE = "Keras `PolynomialDecay`"
    EXAMPLE = "polynomial(0.1, decay_steps=30, power=2.0)"

    lr: float
    decay_steps: int
    end_lr: float = 0.0001
    power: float = 1.0
    cycle: bool = False

    def _check(self) -> None:
        self._require("lr", self.lr >= 0, f"must be >= 0, got {self.lr}")
        self._require("decay_steps", self.decay_steps > 0, f"must be > 0, got {self.decay_steps}")
        self._require("end_lr", self.end_lr >= 0, f"must be >= 0, got {self.end_lr}")
        self._require("power", self.power > 0, f"must be > 0, got {self.power}")

    @property
    def peak(self) -> float:
        return max(self.lr, self.end_lr)

    @property
    def horizon(self) -> Horizon:
        if self.cycle:  # the decay restarts from a longer horizon one step after each end
            return Horizon.cycles(self.decay_steps + 1, self.decay_steps)
        return Horizon.end(self.decay_steps)

    def _value(self, t, ops: Ops):
        horizon = ops.asarray(float(self.decay_steps))
        if self.cycle:
            multiplier = ops.where(t == 0, 1.0, ops.ceil_div(t, self.decay_steps))
            horizon = horizon * multiplier
        else:
            t = ops.minimum(t, horizon)
        # 1 - t / horizon, written so that it is exactly 0 at t = horizon in float32 too
        left = (horizon - t) / horizon
        return (self.lr - self.end_lr) * left**self.power + self.end_lr


@register("linear")
@dataclasses.dataclass(frozen=True)
class Linear(Schedule):
    """A straight line from ``start`` to ``end`` over ``steps``, then ``end``.

    ``start + (end - start) * min(t, steps) / steps``: optax ``linear_schedule``, and
    torch ``LinearLR`` with ``start = base * start_factor``, ``end = base * end_factor``.

    >>> Linear(0.0, 1.0, steps=4)(2), Linear(0.0, 1.0, steps=4)(9)
    (0.5, 1.0)
    """

    FORMULA = "start + (end − start) · min(t, steps) / steps"
    REFERENCE = (
        "optax `linear_schedule`; torch `LinearLR` (start = lr·start_factor, end = lr·end_factor)"
    )
    EXAMPLE = "linear(0.1, 0.01, steps=30)"

    POSITIONAL = 2

    start: float
    end: float
    steps: int

    def _check(self) -> None:
        self._require("start", self.start >= 0, f"must be >= 0, got {self.start}")
        self._require("end", self.end >= 0, f"must be >= 0, got {self.end}")
        self._require("steps", self.steps > 0, f"must be > 0, got {self.steps}")

    @property
    def peak(self) -> float:
        return max(self.start, self.end)

    @property
    def horizon(self) -> Horizon:
        return Horizon.end(self.steps)

    def _value(self, t, ops: Ops):
        frac = ops.clip(t / self.steps, 0.0, 1.0)
        return self.start + (self.end - self.start) * frac


@register("inverse_sqrt")
@dataclasses.dataclass(frozen=True)
class InverseSqrt(Schedule):
    """transformers ``get_inverse_sqrt_schedule``: linear warmup, then ``1/sqrt`` decay.

    ``lr * t / warmup_steps`` for ``t < warmup_steps``, then
    ``lr / sqrt((t + timescale - warmup_steps) / timescale)``; ``timescale`` defaults to
    ``warmup_steps`` (10,000 when there is no warmup), as in transformers.

    >>> s = InverseSqrt(1.0, warmup_steps=4)
    >>> [s(t) for t in (0, 2, 4, 16)]
    [0.0, 0.5, 1.0, 0.5]
    """

    FORMULA = (
        "lr · t / W for t < W, then lr / √((t + τ − W) / τ), τ = timescale or W (10000 when W = 0)"
    )
    REFERENCE = "transformers `get_inverse_sqrt_schedule`"
    EXAMPLE = "inverse_sqrt(0.1, warmup_steps=5)"

    lr: float
    warmup_steps: int
    timescale: int | None = None

    def _check(self) -> None:
        self._require("lr", self.lr >= 0, f"must be >= 0, got {self.lr}")
        self._require(
            "warmup_steps", self.warmup_steps >= 0, f"must be >= 0, got {self.warmup_steps}"
        )
        if self.timescale is not None:
            self._require("timescale", self.timescale > 0, f"must be > 0, got {self.timescale}")

    @property
    def effective_timescale(self) -> int:
        return self.timescale if self.timescale is not None else (self.warmup_steps or 10_000)

    @property
    def peak(self) -> float:
        return self.lr

    horizon = NO_HORIZON

    def _value(self, t, ops: Ops):
        tau = self.effective_timescale
        warm = self.lr * t / max(1, self.warmup_steps)
        decay_arg = ops.maximum((t + (tau - self.warmup_steps)) / tau, ops.asarray(1e-30))
        decayed = self.lr / ops.sqrt(decay_arg)
        return ops.where(t < self.warmup_steps, warm, decayed)
