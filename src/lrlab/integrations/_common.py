"""What every integration does with its arguments: a curve schedule and an optional plateau.

>>> curve_schedule("cosine(0.1, decay_steps=10)")
Cosine(lr=0.1, decay_steps=10, alpha=0.0, warmup_target=None, warmup_steps=0)
>>> as_plateau("plateau(patience=2)").patience
2
>>> as_plateau(None) is None
True
"""

from __future__ import annotations

from lrlab.errors import LrlabError
from lrlab.schedules import Plateau, Schedule
from lrlab.spec import parse

__all__ = ["as_plateau", "curve_schedule"]


def curve_schedule(spec: str | Schedule, where: str = "spec") -> Schedule:
    """Parse ``spec`` into a schedule that has a curve (not ``plateau(...)``).

    Raises:
        LrlabError: the spec does not parse, or it is reactive (``plateau`` has no curve).
    """
    schedule = parse(spec)
    if schedule.reactive:
        raise LrlabError(
            f"{where} {schedule} reacts to a metric and has no curve; give a schedule and "
            f"pass the plateau separately, e.g. spec='constant(0.1)', plateau='{schedule}'"
        )
    return schedule


def as_plateau(plateau: str | Plateau | None) -> Plateau | None:
    """``None``, a :class:`Plateau`, or a ``plateau(...)`` spec -> ``Plateau | None``.

    Raises:
        LrlabError: ``plateau`` is a spec of another schedule.
    """
    if plateau is None:
        return None
    value = parse(plateau)
    if not isinstance(value, Plateau):
        raise LrlabError(
            f"plateau must be a plateau(...) spec such as 'plateau(factor=0.5, patience=3)', "
            f"got {value}"
        )
    return value
