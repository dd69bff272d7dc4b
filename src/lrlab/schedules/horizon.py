"""A schedule's horizon: where it ends, or how it cycles (read by :mod:`lrlab.schedules.check`).

Every registered schedule answers ``schedule.horizon``:

- ``Horizon.end(E)``: ``E`` is the run the schedule is written for and from step ``E`` on
  its lr is constant (``cosine``: ``decay_steps``; ``constant``: 0). Most become constant
  exactly at ``E``; ``one_cycle(total_steps=E)`` and ``lr_range(steps=E)`` reach their end
  at the run's last update, ``E - 1``, as their libraries define them;
- ``Horizon.cycles(first, period, growth)``: the schedule restarts at step ``first``, then
  after cycles of ``period``, ``period * growth``, ... steps (``cosine_annealing``: its
  lr turns back up at ``t_max``, then every ``2 t_max``);
- ``None``: it decays with no end (``exponential``, ``time_decay``, ``step_decay``, ...).

Combinators derive theirs from their children: ``warmup(W, s)`` is ``s``'s shifted by
``W`` (:meth:`Horizon.shifted`), ``sequence`` its last piece's shifted by the last
boundary, ``scale`` its schedule's.

>>> Horizon.end(30).shifted(8)
Horizon(steps=38, period=0.0, growth=1.0)
>>> Horizon.cycles(10, 20).last_restart_before(55)
(50.0, 20.0)
"""

from __future__ import annotations

import dataclasses
import math

__all__ = ["Horizon"]


@dataclasses.dataclass(frozen=True)
class Horizon:
    """Where a schedule ends (``period == 0``) or restarts (``period > 0``), in its steps.

    Attributes:
        steps: ending schedules: the run they are written for, the lr constant from
            there on; cycling ones: the first restart.
        period: the length of the cycle that starts at ``steps`` (0: the schedule ends).
        growth: each cycle is ``growth`` times as long as the one before (SGDR's
            ``t_mul``).
    """

    steps: int | float
    period: float = 0.0
    growth: float = 1.0

    @classmethod
    def end(cls, steps: int) -> Horizon:
        """Constant from ``steps`` on."""
        return cls(max(0, steps))

    @classmethod
    def cycles(cls, first: float, period: float, growth: float = 1.0) -> Horizon:
        """Restarts at ``first``, then after cycles of ``period * growth**i`` steps."""
        return cls(first, float(period), float(growth))

    @property
    def ends(self) -> bool:
        """True when the schedule becomes constant, False when it cycles."""
        return self.period == 0.0

    def shifted(self, by: int) -> Horizon:
        """The same horizon for the schedule started ``by`` steps later."""
        return dataclasses.replace(self, steps=self.steps + by)

    def last_restart_before(self, n: float) -> tuple[float, float] | None:
        """``(restart, length of its cycle)`` for the last restart before step ``n``.

        None when the schedule ends or first restarts at ``n`` or later.
        """
        if self.ends or self.steps >= n:
            return None
        if self.growth == 1.0:
            k = math.ceil((n - self.steps) / self.period) - 1
            return self.steps + k * self.period, self.period
        restart, length = float(self.steps), self.period
        while restart + length < n:
            restart, length = restart + length, length * self.growth
        return restart, length
