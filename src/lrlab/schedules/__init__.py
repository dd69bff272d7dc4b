"""The schedule library: pure, immutable values ``step -> lr`` and their registry."""

from lrlab.schedules.base import Ops, ReactiveSchedule, Schedule, ops_for
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
from lrlab.schedules.registry import REGISTRY, register
from lrlab.schedules.serialize import from_dict
from lrlab.schedules.table import Table, tabulate

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
    "Table",
    "TimeDecay",
    "Warmup",
    "WarmupStableDecay",
    "from_dict",
    "ops_for",
    "register",
    "tabulate",
]
