"""Reactive schedules: declared in the spec language, driven by a metric in an integration."""

from __future__ import annotations

import dataclasses
from typing import Literal

from lrlab.schedules.base import ReactiveSchedule
from lrlab.schedules.registry import register


@register("plateau")
@dataclasses.dataclass(frozen=True)
class Plateau(ReactiveSchedule):
    """Reduce-on-plateau: multiply the lr by ``factor`` when the metric stops improving.

    A metric *improves* when it beats the best so far by more than ``min_delta``
    (``mode="min"``: ``m < best - min_delta``; ``mode="max"``: ``m > best + min_delta``,
    absolute threshold, as Keras ``ReduceLROnPlateau``). After ``patience`` consecutive
    evaluations without improvement the scale is multiplied by ``factor`` (never below
    ``min_lr`` in absolute lr), the count resets, and ``cooldown`` evaluations follow
    during which no reduction happens. The controller that runs this is
    :class:`lrlab.controllers.plateau.PlateauController`; its docstring pins the
    semantics where Keras and torch disagree.

    >>> Plateau(factor=0.5, patience=2).factor
    0.5
    """

    FORMULA = (
        "a scale × factor after `patience` evaluations without an improvement beyond "
        "min_delta, then `cooldown`"
    )
    REFERENCE = "Keras `ReduceLROnPlateau` (torch's patience p is lrlab's p + 1)"
    EXAMPLE = "plateau(factor=0.5, patience=3, min_delta=0.001, cooldown=1, min_lr=0.0001)"

    POSITIONAL = 0

    factor: float = 0.1
    patience: int = 10
    min_delta: float = 1e-4
    cooldown: int = 0
    min_lr: float = 0.0
    mode: Literal["min", "max"] = "min"

    def _check(self) -> None:
        self._require("factor", 0 < self.factor < 1, f"must be in (0, 1), got {self.factor}")
        self._require("patience", self.patience >= 0, f"must be >= 0, got {self.patience}")
        self._require("min_delta", self.min_delta >= 0, f"must be >= 0, got {self.min_delta}")
        self._require("cooldown", self.cooldown >= 0, f"must be >= 0, got {self.cooldown}")
        self._require("min_lr", self.min_lr >= 0, f"must be >= 0, got {self.min_lr}")
