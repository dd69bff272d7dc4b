"""The schedule library: pure, immutable values ``step -> lr`` and their registry."""

from lrlab.schedules.base import REGISTRY, Ops, ReactiveSchedule, Schedule, ops_for, register
from lrlab.schedules.combinators import LrRange, Scale, Sequence, Warmup
from lrlab.schedules.cosine import Cosine, CosineAnnealing, CosineRestarts, WarmupStableDecay
from lrlab.schedules.cyclic import Cyclic, OneCycle
from lrlab.schedules.decay import (
    Constant,
    ExpDecay,
    Exponential,
    InverseSqrt,
    InverseTime,
    Linear,
    MultiStep,
    Piecewise,
    Polynomial,
    StepDecay,
    TimeDecay,
)
from lrlab.schedules.reactive import Plateau

__all__ = [
    "REGISTRY",
    "Constant",
    "Cosine",
    "CosineAnnealing",
    "CosineRestarts",
    "Cyclic",
    "ExpDecay",
    "Exponential",
    "InverseSqrt",
    "InverseTime",
    "Linear",
    "LrRange",
    "MultiStep",
    "OneCycle",
    "Ops",
    "Piecewise",
    "Plateau",
    "Polynomial",
    "ReactiveSchedule",
    "Scale",
    "Schedule",
    "Sequence",
    "StepDecay",
    "TimeDecay",
    "Warmup",
    "WarmupStableDecay",
    "from_dict",
    "ops_for",
    "register",
]


def from_dict(data: dict) -> Schedule:
    """Inverse of :meth:`Schedule.to_dict`.

    >>> from_dict(Cosine(0.1, decay_steps=95).to_dict()) == Cosine(0.1, decay_steps=95)
    True
    """
    from lrlab.spec import schedule_from_dict

    return schedule_from_dict(data)
