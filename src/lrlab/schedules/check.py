"""The horizon check: does a schedule's horizon (:mod:`lrlab.schedules.horizon`) fit its run?

A run trains ``epochs * steps_per_epoch`` updates; the schedule counts updates
(``unit="step"``) or epochs (``unit="epoch"``), so it sees ``n`` steps, ``n = epochs *
steps_per_epoch`` or ``n = epochs``. With ``E`` the horizon's step (where an ending
schedule becomes constant, where a cycling one first restarts), the findings are:

- ``unit``: the mix-up. ``E`` is within 5% of the epoch count while the unit is
  ``step`` (``steps_per_epoch > 1``), or of the update count while it is ``epoch``;
  it explains the other symptoms, so it is then the only finding;
- ``ends_early``: an ending schedule is constant for more than half of the run
  (``n - E > n / 2``) at an lr below its peak;
- ``never_finishes``: the run stops before 95% of the horizon (``n < 0.95 E``);
- ``late_restart``: a cycling schedule restarts in the last 10% of the run and the run
  stops before 95% of that new cycle.

Schedules without a horizon, and those constant from step 0, have no findings.

>>> from lrlab.schedules import Cosine
>>> for finding in check_schedule(Cosine(0.1, decay_steps=40), epochs=40, steps_per_epoch=13):
...     print(finding.kind, "|", finding.message)
unit | its horizon (40) is the run's epoch count, but the unit is step: it ends after \
40 of 520 updates; did you mean unit = "epoch"?
>>> check_schedule(Cosine(0.1, decay_steps=40), epochs=40, steps_per_epoch=13, unit="epoch")
[]
>>> [f.message for f in check_schedule(Cosine(0.1, decay_steps=40), epochs=520)]
['the last 480 of 520 updates train at lr 0.0 (it is constant from update 40)']
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any

import numpy as np

from lrlab.errors import ScheduleError
from lrlab.schedules.horizon import Horizon

__all__ = ["KINDS", "Finding", "check_schedule"]

#: the kinds of finding, in the order they are reported
KINDS = ("unit", "ends_early", "never_finishes", "late_restart")

MIXUP_TOLERANCE = 0.05  # a horizon within 5% of the other unit's count is a mix-up
FINISHED = 0.95  # a run that reaches 95% of the horizon finishes it
LATE = 0.10  # a restart in the last 10% of the run is late


@dataclasses.dataclass(frozen=True)
class Finding:
    """One problem of a schedule's horizon with its run: ``kind`` (in :data:`KINDS`)
    and a one-line ``message``."""

    kind: str
    message: str

    def __str__(self) -> str:
        return self.message


def check_schedule(
    schedule: Any, epochs: int, steps_per_epoch: int = 1, unit: str = "step"
) -> list[Finding]:
    """The findings of ``schedule``'s horizon on a run of ``epochs * steps_per_epoch``
    updates, the schedule counting ``unit`` (``"step"`` or ``"epoch"``); see the module
    docstring.

    Raises:
        ScheduleError: ``epochs`` or ``steps_per_epoch`` is not an integer >= 1, or
            ``unit`` is neither ``"step"`` nor ``"epoch"``.
    """
    for arg, value in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ScheduleError(f"{arg} must be an integer >= 1, got {value!r}")
    if unit not in ("step", "epoch"):
        raise ScheduleError(f"unit must be 'step' or 'epoch', got {unit!r}")
    horizon: Horizon | None = getattr(schedule, "horizon", None)
    if horizon is None or horizon.steps <= 0:
        return []
    run = _Run(schedule, horizon, int(epochs), int(steps_per_epoch), unit)
    mixup = run.unit_mixup()
    if mixup:
        return [mixup]
    found = [run.ends_early(), run.never_finishes(), run.late_restart()]
    return [f for f in found if f is not None]


@dataclasses.dataclass(frozen=True)
class _Run:
    schedule: Any
    horizon: Horizon
    epochs: int
    steps_per_epoch: int
    unit: str

    @property
    def n(self) -> int:
        """The run's length in the schedule's steps."""
        return self.epochs * self.steps_per_epoch if self.unit == "step" else self.epochs

    def _count(self, k: float) -> str:
        word = "update" if self.unit == "step" else "epoch"
        return f"{_number(k)} {word}{'' if k == 1 else 's'}"

    def _what(self) -> str:
        if not self.horizon.ends:
            return "the first cycle"
        final = self.schedule(self.horizon.steps)
        return "the decay" if final < self.schedule.peak else "the ramp"

    def unit_mixup(self) -> Finding | None:
        e, updates = self.horizon.steps, self.epochs * self.steps_per_epoch
        if self.steps_per_epoch == 1:
            return None
        if self.unit == "step" and _near(e, self.epochs):
            return Finding(
                "unit",
                f"its horizon ({_number(e)}) is the run's epoch count, but the unit is step: "
                f"{'it ends' if self.horizon.ends else 'its first cycle ends'} after "
                f"{_number(e)} of {updates} updates; "
                'did you mean unit = "epoch"?',
            )
        if self.unit == "epoch" and _near(e, updates):
            return Finding(
                "unit",
                f"its horizon ({_number(e)}) is the run's update count, but the unit is "
                f"epoch: the run ends after {self.epochs} of its {_number(e)} epochs; "
                'did you mean unit = "step"?',
            )
        return None

    def ends_early(self) -> Finding | None:
        e, n = int(self.horizon.steps), self.n
        if not self.horizon.ends or n - e <= n / 2:
            return None
        final = self.schedule(e)
        if final >= self.schedule.peak:
            return None  # a ramp up that holds its peak (warmup, then constant)
        # the tail may start a step early (one_cycle's last update reaches its end)
        moving = np.nonzero(self.schedule.curve(e) != final)[0]
        start = int(moving[-1]) + 1 if moving.size else 0
        word = "update" if self.unit == "step" else "epoch"
        return Finding(
            "ends_early",
            f"the last {n - start} of {self._count(n)} train at lr {_lr(final)} "
            f"(it is constant from {word} {start})",
        )

    def never_finishes(self) -> Finding | None:
        e, n = self.horizon.steps, self.n
        if n >= FINISHED * e:
            return None
        peak, last = self.schedule.peak, self.schedule(n - 1)
        still = f"; the lr is still {last / peak:.0%} of its peak" if peak > 0 else ""
        return Finding(
            "never_finishes",
            f"the run ends at {n / e:.0%} of {self._what()} ({n} of {self._count(e)}){still}",
        )

    def late_restart(self) -> Finding | None:
        n = self.n
        last = self.horizon.last_restart_before(n)
        if last is None:
            return None
        restart, length = last
        into = n - restart
        if into > LATE * n or into >= FINISHED * length:
            return None
        word = "update" if self.unit == "step" else "epoch"
        return Finding(
            "late_restart",
            f"it restarts at {word} {_number(restart)} of {n}: the last {self._count(into)} "
            f"{'trains' if into == 1 else 'train'} on {into / length:.0%} of a new cycle",
        )


def _near(horizon: float, count: int) -> bool:
    return abs(horizon - count) <= MIXUP_TOLERANCE * count


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.1f}"


def _lr(value: float) -> str:
    text = f"{value:.4g}"
    return text if any(c in text for c in ".en") else text + ".0"
