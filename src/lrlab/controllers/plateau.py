"""Reduce-on-plateau as a controller that produces a *scale*, apart from the schedule.

The lr an optimizer uses is ``schedule(t) * scale``; the controller only moves the
scale, so plateau reduction composes with any schedule (Keras' own
``ReduceLROnPlateau`` refuses an optimizer that has a schedule).

Semantics (Keras ``ReduceLROnPlateau``'s, stated once here and tested):

- *improvement*: ``mode="min"``: ``metric < best - min_delta``; ``mode="max"``:
  ``metric > best + min_delta`` (absolute threshold). An improvement sets ``best`` and
  resets the wait count.
- while in cooldown, each evaluation decrements the cooldown counter and the wait
  count stays 0;
- otherwise each non-improving evaluation adds 1 to ``wait``; when ``wait >= patience``
  the scale is multiplied by ``factor``, ``wait`` resets and ``cooldown`` starts.
  Keras counts this way (reduce on the ``patience``-th bad evaluation); torch reduces
  one later (``num_bad_epochs > patience``): torch's ``patience=p`` is lrlab's ``p+1``.
- ``min_lr`` is a floor on the *lr*: a reduction never takes ``schedule(t) * scale``
  below ``min_lr``, and no reduction happens once the lr is at or below it.
- a NaN metric counts as not improving.

>>> from lrlab.schedules import Plateau
>>> c = PlateauController(Plateau(factor=0.5, patience=2))
>>> state = c.initial()
>>> for metric in [1.0, 0.9, 0.95, 0.95, 0.95, 0.95]:
...     state = c.update(state, metric, lr=0.1)
>>> state.scale, state.reductions
(0.25, 2)
"""

from __future__ import annotations

import dataclasses
import math

from lrlab.schedules import Plateau

__all__ = ["PlateauController", "PlateauState"]


@dataclasses.dataclass(frozen=True)
class PlateauState:
    """Everything the controller remembers; plain floats so it serializes as a dict."""

    scale: float = 1.0
    best: float | None = None
    wait: int = 0
    cooldown_left: int = 0
    reductions: int = 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> PlateauState:
        return cls(**data)


@dataclasses.dataclass(frozen=True)
class PlateauController:
    """Pure transition function ``(state, metric, lr) -> state`` for a :class:`Plateau`."""

    plateau: Plateau

    def initial(self) -> PlateauState:
        return PlateauState()

    def improved(self, metric: float, best: float | None) -> bool:
        if math.isnan(metric):
            return False
        if best is None:
            return True
        if self.plateau.mode == "min":
            return metric < best - self.plateau.min_delta
        return metric > best + self.plateau.min_delta

    def update(self, state: PlateauState, metric: float, lr: float) -> PlateauState:
        """The state after one evaluation of ``metric``; ``lr`` is the schedule's value now.

        ``lr`` (the unscaled schedule value) is needed only to honour ``min_lr``.
        """
        p = self.plateau
        metric = float(metric)
        cooldown_left, wait = state.cooldown_left, state.wait
        if cooldown_left > 0:
            cooldown_left -= 1
            wait = 0
        if self.improved(metric, state.best):
            return dataclasses.replace(state, best=metric, wait=0, cooldown_left=cooldown_left)
        if cooldown_left > 0:
            return dataclasses.replace(state, wait=0, cooldown_left=cooldown_left)
        wait += 1
        if wait < p.patience:
            return dataclasses.replace(state, wait=wait, cooldown_left=cooldown_left)
        scale = state.scale
        current = lr * scale
        reductions = state.reductions
        if current > p.min_lr:
            floor = p.min_lr / lr if lr > 0 else 0.0
            scale = max(scale * p.factor, floor)
            reductions += 1
        return PlateauState(
            scale=scale, best=state.best, wait=0, cooldown_left=p.cooldown, reductions=reductions
        )
