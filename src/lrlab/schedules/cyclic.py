"""Cyclical schedules: torch OneCycleLR and CyclicLR, in closed form."""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

from lrlab.schedules.base import Ops, Schedule
from lrlab.schedules.horizon import Horizon
from lrlab.schedules.registry import register


def _anneal(kind: str, start: float, end: float, pct, ops: Ops):
    if kind == "cos":
        return end + (start - end) / 2.0 * (ops.cos(math.pi * pct) + 1.0)
    return (end - start) * pct + start


@register("one_cycle")
@dataclasses.dataclass(frozen=True)
class OneCycle(Schedule):
    """torch ``OneCycleLR`` (Smith & Topin 2018), lr only.

    ``initial = max_lr / div_factor`` rises to ``max_lr`` until step
    ``pct_start * total_steps - 1``, then anneals to ``initial / final_div_factor`` at
    step ``total_steps - 1`` (``anneal`` = ``cos`` or ``linear``). ``three_phase=true``
    goes back down to ``initial`` by ``2 * pct_start * total_steps - 2`` before the final
    annihilation. torch raises past ``total_steps``; lrlab holds the final lr.

    >>> s = OneCycle(1.0, total_steps=100)
    >>> round(s(0), 6), round(s(29), 6), round(s(99), 10)
    (0.04, 1.0, 4e-06)
    """

    FORMULA = (
        "max_lr / div_factor → max_lr by step pct_start·T − 1 → that / final_div_factor at T "
        "− 1 (cos or linear); three_phase: back to the start by 2·pct_start·T − 2 first"
    )
    REFERENCE = "torch `OneCycleLR`"
    EXAMPLE = "one_cycle(0.1, total_steps=40)"

    max_lr: float
    total_steps: int
    pct_start: float = 0.3
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    anneal: Literal["cos", "linear"] = "cos"
    three_phase: bool = False

    def _check(self) -> None:
        self._require("max_lr", self.max_lr > 0, f"must be > 0, got {self.max_lr}")
        self._require("total_steps", self.total_steps > 1, f"must be > 1, got {self.total_steps}")
        self._require(
            "pct_start", 0 < self.pct_start < 1, f"must be in (0, 1), got {self.pct_start}"
        )
        self._require("div_factor", self.div_factor > 0, f"must be > 0, got {self.div_factor}")
        self._require(
            "final_div_factor",
            self.final_div_factor > 0,
            f"must be > 0, got {self.final_div_factor}",
        )
        self._require(
            "div_factor",
            math.isfinite(self.max_lr / self.div_factor),
            f"makes the initial lr max_lr / div_factor overflow, got {self.div_factor}",
        )
        ends = [e for e, _, _ in self.phases()]
        self._require(
            "pct_start",
            all(b > a for a, b in zip([0.0, *ends], ends, strict=False)),
            f"leaves an empty phase for total_steps={self.total_steps}; use more steps or "
            "another pct_start",
        )

    def phases(self) -> list[tuple[float, float, float]]:
        """``(end_step, start_lr, end_lr)`` of each phase, as torch computes them."""
        initial = self.max_lr / self.div_factor
        minimum = initial / self.final_div_factor
        up_end = float(self.pct_start * self.total_steps) - 1
        last = float(self.total_steps - 1)
        if self.three_phase:
            down_end = float(2 * self.pct_start * self.total_steps) - 2
            return [
                (up_end, initial, self.max_lr),
                (down_end, self.max_lr, initial),
                (last, initial, minimum),
            ]
        return [(up_end, initial, self.max_lr), (last, self.max_lr, minimum)]

    @property
    def peak(self) -> float:
        return max(self.max_lr, self.max_lr / self.div_factor)

    @property
    def horizon(self) -> Horizon:
        """``total_steps``, the run it is written for (its last update reaches the end)."""
        return Horizon.end(self.total_steps)

    def _value(self, t, ops: Ops):
        phases = self.phases()
        out = None
        start = 0.0
        pieces = []
        for end, lr_from, lr_to in phases:
            pct = ops.clip((t - start) / (end - start), 0.0, 1.0)
            pieces.append((end, _anneal(self.anneal, lr_from, lr_to, pct, ops)))
            start = end
        out = pieces[-1][1]
        for end, value in reversed(pieces[:-1]):
            out = ops.where(t <= end, value, out)
        return out


@register("cyclic")
@dataclasses.dataclass(frozen=True)
class Cyclic(Schedule):
    """torch ``CyclicLR`` (Smith 2017), lr only: a triangle between ``base_lr`` and ``max_lr``.

    With ``up``/``down`` the half-cycle lengths, ``cycle = floor(1 + t / (up + down))``
    and ``x`` the position in the cycle: ``base_lr + (max_lr - base_lr) * s(x) * a``,
    where ``s`` rises over ``up`` and falls over ``down`` steps and the amplitude ``a``
    is 1 (``triangular``), ``1 / 2**(cycle - 1)`` (``triangular2``) or ``gamma**t``
    (``exp_range``).

    >>> s = Cyclic(0.1, 1.0, step_size_up=2)
    >>> [round(s(t), 6) for t in range(5)]
    [0.1, 0.55, 1.0, 0.55, 0.1]
    """

    FORMULA = (
        "base_lr + (max_lr − base_lr) · triangle(t) · a, a = 1 (triangular), 1/2^(cycle−1) "
        "(triangular2) or gamma^t (exp_range)"
    )
    REFERENCE = "torch `CyclicLR`"
    EXAMPLE = "cyclic(0.01, 0.1, step_size_up=5, step_size_down=3, mode='triangular2')"

    POSITIONAL = 2

    base_lr: float
    max_lr: float
    step_size_up: int = 2000
    step_size_down: int | None = None
    mode: Literal["triangular", "triangular2", "exp_range"] = "triangular"
    gamma: float = 1.0

    def _check(self) -> None:
        self._require("base_lr", self.base_lr >= 0, f"must be >= 0, got {self.base_lr}")
        self._require("max_lr", self.max_lr >= 0, f"must be >= 0, got {self.max_lr}")
        self._require(
            "step_size_up", self.step_size_up > 0, f"must be > 0, got {self.step_size_up}"
        )
        if self.step_size_down is not None:
            self._require(
                "step_size_down", self.step_size_down > 0, f"must be > 0, got {self.step_size_down}"
            )
        self._require("gamma", 0 < self.gamma <= 1, f"must be in (0, 1], got {self.gamma}")

    @property
    def peak(self) -> float:
        return max(self.base_lr, self.max_lr)

    @property
    def horizon(self) -> Horizon:
        """A cycle of ``step_size_up + step_size_down`` steps, from ``base_lr`` back to it."""
        cycle = self.step_size_up + (self.step_size_down or self.step_size_up)
        return Horizon.cycles(cycle, cycle)

    def _value(self, t, ops: Ops):
        up = float(self.step_size_up)
        down = float(self.step_size_down) if self.step_size_down is not None else up
        total = up + down
        # torch: cycle = floor(1 + t / total), x = 1 + t / total - cycle; the same in
        # whole steps (pos = x * total), exact for integer steps in float32 too
        done = ops.floor_div(t, total)
        pos = t - done * total
        scale = ops.where(pos <= up, pos / up, (total - pos) / down)
        height = (self.max_lr - self.base_lr) * scale
        if self.mode == "triangular2":
            height = height * 0.5**done
        elif self.mode == "exp_range":
            height = height * ops.power(self.gamma, t)
        return self.base_lr + height
