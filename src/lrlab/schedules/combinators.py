"""Schedules built from schedules: warmup, sequence, scale; and the range-test ramp."""

from __future__ import annotations

import dataclasses
import math

from lrlab.schedules.base import Ops, Schedule
from lrlab.schedules.horizon import Horizon
from lrlab.schedules.registry import register


@register("warmup")
@dataclasses.dataclass(frozen=True)
class Warmup(Schedule):
    """Linear warmup from ``start`` to ``schedule(0)`` over ``steps``, then ``schedule(t - steps)``.

    optax join semantics: the wrapped schedule sees its own local step, so
    ``warmup(5, cosine(0.1, decay_steps=95))`` is 100 steps long and reaches 0.1 at t = 5.

    >>> from lrlab.schedules.decay import Constant
    >>> s = Warmup(4, Constant(1.0))
    >>> [s(t) for t in range(6)]
    [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    """

    FORMULA = "start + (s(0) − start) · t / steps for t < steps, then s(t − steps)"
    REFERENCE = "optax `join_schedules([linear_schedule(start, s(0), steps), s], [steps])`"
    EXAMPLE = "warmup(8, cosine(0.1, decay_steps=32))"

    POSITIONAL = 2

    steps: int
    schedule: Schedule
    start: float = 0.0

    def _check(self) -> None:
        self._require("steps", self.steps >= 0, f"must be >= 0, got {self.steps}")
        self._require("start", self.start >= 0, f"must be >= 0, got {self.start}")
        self._require(
            "schedule", not self.schedule.reactive, "must not be reactive (plateau has no curve)"
        )

    @property
    def peak(self) -> float:
        return max(self.start, self.schedule.peak)

    @property
    def horizon(self) -> Horizon | None:
        inner = self.schedule.horizon
        return None if inner is None else inner.shifted(self.steps)

    def _value(self, t, ops: Ops):
        after = self.schedule._value(ops.maximum(t - self.steps, ops.asarray(0.0)), ops)
        if self.steps == 0:
            return after
        peak = self.schedule._value(ops.asarray(0.0), ops)
        warm = self.start + (peak - self.start) * (t / self.steps)
        return ops.where(t < self.steps, warm, after)


@register("sequence")
@dataclasses.dataclass(frozen=True)
class Sequence(Schedule):
    """optax ``join_schedules``: piece ``i`` runs from ``boundaries[i-1]`` on its local step.

    ``schedules[0](t)`` for ``t < b[0]``, ``schedules[i](t - b[i-1])`` for
    ``b[i-1] <= t < b[i]``, and so on. Boundaries are absolute steps.

    >>> from lrlab.schedules.decay import Constant, Linear
    >>> s = Sequence([Linear(0.0, 1.0, steps=2), Constant(0.5)], boundaries=[2])
    >>> [s(t) for t in range(4)]
    [0.0, 0.5, 0.5, 0.5]
    """

    FORMULA = "s_i(t − b_{i−1}) for b_{i−1} ≤ t < b_i (each piece sees its local step)"
    REFERENCE = "optax `join_schedules`"
    EXAMPLE = "sequence([linear(0.0, 0.1, steps=10), cosine(0.1, decay_steps=30)], boundaries=[10])"

    schedules: tuple[Schedule, ...]
    boundaries: tuple[int, ...]

    def _check(self) -> None:
        n, b = len(self.schedules), self.boundaries
        self._require("schedules", n >= 1, "must hold at least one schedule")
        self._require(
            "boundaries",
            len(b) == n - 1,
            f"must have {n - 1} entries (one fewer than schedules), got {len(b)}",
        )
        self._require("boundaries", all(x >= 0 for x in b), f"must be >= 0, got {list(b)}")
        self._require("boundaries", list(b) == sorted(b), f"must be increasing, got {list(b)}")
        self._require(
            "schedules",
            not any(s.reactive for s in self.schedules),
            "must not hold a reactive schedule (plateau has no curve)",
        )

    @property
    def peak(self) -> float:
        return max(s.peak for s in self.schedules)

    @property
    def horizon(self) -> Horizon | None:
        last = self.schedules[-1].horizon
        return None if last is None else last.shifted(max(self.boundaries, default=0))

    def _value(self, t, ops: Ops):
        out = self.schedules[0]._value(t, ops)
        for boundary, piece in zip(self.boundaries, self.schedules[1:], strict=True):
            local = ops.maximum(t - boundary, ops.asarray(0.0))
            out = ops.where(t < boundary, out, piece._value(local, ops))
        return out


@register("scale")
@dataclasses.dataclass(frozen=True)
class Scale(Schedule):
    """``factor * schedule(t)``.

    >>> from lrlab.schedules.decay import Constant
    >>> Scale(0.5, Constant(0.2))(3)
    0.1
    """

    FORMULA = "factor · s(t)"
    REFERENCE = "any library (a multiplier)"
    EXAMPLE = "scale(0.5, cosine(0.1, decay_steps=40))"

    POSITIONAL = 2

    factor: float
    schedule: Schedule

    def _check(self) -> None:
        self._require("factor", self.factor >= 0, f"must be >= 0, got {self.factor}")
        self._require(
            "schedule", not self.schedule.reactive, "must not be reactive (plateau has no curve)"
        )
        self._require(
            "factor",
            math.isfinite(self.factor * self.schedule.peak),
            f"times the schedule's peak {self.schedule.peak} overflows, got {self.factor}",
        )

    @property
    def peak(self) -> float:
        return self.factor * self.schedule.peak

    @property
    def horizon(self) -> Horizon | None:
        return self.schedule.horizon

    def _value(self, t, ops: Ops):
        return self.factor * self.schedule._value(t, ops)


@register("lr_range")
@dataclasses.dataclass(frozen=True)
class LrRange(Schedule):
    """Exponential ramp for an LR range test: ``start * (end / start) ** (t / (steps - 1))``.

    Reaches ``end`` at ``t = steps - 1`` and holds it.

    >>> s = LrRange(1e-4, 1.0, steps=5)
    >>> [round(s(t), 8) for t in range(6)]
    [0.0001, 0.001, 0.01, 0.1, 1.0, 1.0]
    """

    FORMULA = "start · (end / start)^(min(t, steps − 1) / (steps − 1))"
    REFERENCE = "the exponential ramp of an LR range test (fastai, Lightning `lr_find`)"
    EXAMPLE = "lr_range(1e-5, 1.0, steps=40)"

    POSITIONAL = 2

    start: float
    end: float
    steps: int

    def _check(self) -> None:
        self._require("start", self.start > 0, f"must be > 0, got {self.start}")
        self._require("end", self.end > 0, f"must be > 0, got {self.end}")
        self._require("steps", self.steps >= 2, f"must be >= 2, got {self.steps}")

    @property
    def peak(self) -> float:
        return max(self.start, self.end)

    @property
    def horizon(self) -> Horizon:
        """``steps``, the ramp's length (its last step reaches ``end``)."""
        return Horizon.end(self.steps)

    def _value(self, t, ops: Ops):
        frac = ops.clip(t / (self.steps - 1), 0.0, 1.0)
        # in logs, so that a span like 1e-300 .. 1e300 neither overflows nor gives 0 * inf
        log_start = math.log(self.start)
        return ops.exp(log_start + (math.log(self.end) - log_start) * frac)
