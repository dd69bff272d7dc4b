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

The rule is written once, :func:`plateau_transition`, with ``where`` selects over an
array namespace ``xp`` (``numpy`` or ``jax.numpy``), as the schedules are; so it runs on
Python numbers (:class:`PlateauController`, used by the Keras and torch integrations,
evaluates it with numpy in float64, i.e. Python float arithmetic), and under ``jit``
and ``vmap`` (the optax integration and the population engine, with per-trial
parameters as arrays).

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
from typing import Any, NamedTuple

import numpy as np

from lrlab.schedules import Plateau

__all__ = [
    "PlateauArrays",
    "PlateauController",
    "PlateauParams",
    "PlateauState",
    "improved",
    "plateau_transition",
]


class PlateauParams(NamedTuple):
    """A :class:`Plateau`'s arguments as numbers or arrays (a pytree: stack it to vmap).

    ``mode_max`` is ``mode == "max"``; the monitored metric is the caller's business.
    """

    factor: Any
    patience: Any
    min_delta: Any
    cooldown: Any
    min_lr: Any
    mode_max: Any

    @classmethod
    def of(cls, plateau: Plateau) -> PlateauParams:
        """The Python numbers of ``plateau``.

        >>> PlateauParams.of(Plateau(factor=0.5, patience=2, mode="max"))[:3]
        (0.5, 2, 0.0001)
        """
        return cls(
            factor=plateau.factor,
            patience=plateau.patience,
            min_delta=plateau.min_delta,
            cooldown=plateau.cooldown,
            min_lr=plateau.min_lr,
            mode_max=plateau.mode == "max",
        )


class PlateauArrays(NamedTuple):
    """The controller's state as arrays of ``xp`` (a pytree: a ``scan`` carry, vmappable).

    ``best`` is NaN until the first improvement (a NaN metric never improves, so NaN
    means "no best yet" and nothing else).
    """

    scale: Any
    best: Any
    wait: Any
    cooldown_left: Any
    reductions: Any

    @classmethod
    def initial(cls, xp: Any, float_dtype: Any = None, int_dtype: Any = None) -> PlateauArrays:
        """Scale 1, no best, all counts 0, as 0-d arrays (``float32``/``int32`` by default).

        >>> s = PlateauArrays.initial(np)
        >>> float(s.scale), float(s.best), int(s.wait), s.wait.dtype
        (1.0, nan, 0, dtype('int32'))
        """
        f = xp.float32 if float_dtype is None else float_dtype
        i = xp.int32 if int_dtype is None else int_dtype
        return cls(
            scale=xp.ones((), f),
            best=xp.full((), xp.nan, f),
            wait=xp.zeros((), i),
            cooldown_left=xp.zeros((), i),
            reductions=xp.zeros((), i),
        )


def improved(metric: Any, best: Any, params: PlateauParams, xp: Any) -> Any:
    """Whether ``metric`` beats ``best`` (NaN: none yet) by more than ``min_delta``.

    >>> bool(improved(np.float64(0.9), np.float64(1.0), PlateauParams.of(Plateau()), np))
    True
    """
    beats = xp.where(
        params.mode_max, metric > best + params.min_delta, metric < best - params.min_delta
    )
    return ~xp.isnan(metric) & (xp.isnan(best) | beats)


def plateau_transition(state: Any, metric: Any, lr: Any, params: PlateauParams, xp: Any) -> Any:
    """The state after one evaluation of ``metric``: the plateau rule, written once.

    Args:
        state: a NamedTuple with fields ``scale, best, wait, cooldown_left, reductions``
            (:class:`PlateauArrays`, or one that carries more, such as the optax
            integration's step count), arrays of ``xp``; the result is
            ``state._replace(...)`` of those five fields.
        metric: the monitored value, an array of ``best``'s dtype.
        lr: the schedule's (unscaled) value now; needed only to honour ``min_lr``.
        params: the plateau's arguments (numbers, or arrays under ``vmap``).
        xp: ``numpy`` or ``jax.numpy`` (every branch is a ``where``: ``jit``-safe).
    """
    was_cooling = state.cooldown_left > 0
    cooldown_left = xp.where(was_cooling, state.cooldown_left - 1, state.cooldown_left)
    wait = xp.where(was_cooling, 0, state.wait)
    better = improved(metric, state.best, params, xp)
    cooling = ~better & (cooldown_left > 0)
    wait = xp.where(better | cooling, 0, wait + 1)
    due = ~better & ~cooling & (wait >= params.patience)
    scale = state.scale
    reduce = due & (lr * scale > params.min_lr)
    floor = xp.where(lr > 0, params.min_lr / xp.where(lr > 0, lr, 1), 0)
    return state._replace(
        scale=xp.where(reduce, xp.maximum(scale * params.factor, floor), scale),
        best=xp.where(better, metric, state.best),
        wait=xp.where(due, 0, wait),
        cooldown_left=xp.where(due, params.cooldown, cooldown_left),
        reductions=state.reductions + reduce.astype(state.reductions.dtype),
    )


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

    def arrays(self) -> PlateauArrays:
        """This state as numpy float64/int64 scalars (``best`` None -> NaN)."""
        return PlateauArrays(
            scale=np.float64(self.scale),
            best=np.float64(math.nan if self.best is None else self.best),
            wait=np.int64(self.wait),
            cooldown_left=np.int64(self.cooldown_left),
            reductions=np.int64(self.reductions),
        )

    @classmethod
    def from_arrays(cls, arrays: PlateauArrays) -> PlateauState:
        best = float(arrays.best)
        return cls(
            scale=float(arrays.scale),
            best=None if math.isnan(best) else best,
            wait=int(arrays.wait),
            cooldown_left=int(arrays.cooldown_left),
            reductions=int(arrays.reductions),
        )


@dataclasses.dataclass(frozen=True)
class PlateauController:
    """Transition function ``(state, metric, lr) -> state`` for a :class:`Plateau`, on
    Python numbers: :func:`plateau_transition` in float64 numpy."""

    plateau: Plateau

    def initial(self) -> PlateauState:
        return PlateauState()

    def improved(self, metric: float, best: float | None) -> bool:
        nan = math.nan if best is None else best
        return bool(improved(np.float64(metric), np.float64(nan), self._params, np))

    def update(self, state: PlateauState, metric: float, lr: float) -> PlateauState:
        """The state after one evaluation of ``metric``; ``lr`` is the schedule's value now.

        ``lr`` (the unscaled schedule value) is needed only to honour ``min_lr``.
        """
        new = plateau_transition(
            state.arrays(), np.float64(float(metric)), np.float64(float(lr)), self._params, np
        )
        return PlateauState.from_arrays(new)

    @property
    def _params(self) -> PlateauParams:
        return PlateauParams.of(self.plateau)
