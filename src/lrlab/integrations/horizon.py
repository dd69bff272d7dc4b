"""The horizon check for a spec or schedule: ``lrlab.check``, and the adapters' warnings.

The check itself is :func:`lrlab.schedules.check.check_schedule` (pure); this module
parses the spec first and turns findings into :class:`HorizonWarning` for ``lrlab.keras``
and ``lrlab.torch``.

>>> [f.kind for f in check("cosine(0.1, decay_steps=40)", epochs=40, steps_per_epoch=13)]
['unit']
>>> check("cosine(0.1, decay_steps=40)", epochs=40, steps_per_epoch=13, unit="epoch")
[]
"""

from __future__ import annotations

import warnings

from lrlab.integrations._common import curve_schedule
from lrlab.schedules import Schedule
from lrlab.schedules.check import Finding, check_schedule

__all__ = ["Finding", "HorizonWarning", "check", "warn_findings"]


class HorizonWarning(UserWarning):
    """A schedule's horizon does not fit the run it trains (one :class:`Finding`)."""


def check(
    spec: str | Schedule, *, epochs: int, steps_per_epoch: int = 1, unit: str = "step"
) -> list[Finding]:
    """The horizon findings of ``spec`` on a run of ``epochs`` x ``steps_per_epoch`` updates.

    ``unit`` is what the schedule counts (``"step"``: updates, ``"epoch"``: epochs). An
    empty list means the horizon fits; see :mod:`lrlab.schedules.check` for the findings
    (``unit``, ``ends_early``, ``never_finishes``, ``late_restart``). ``lrlab check`` prints
    the same.

    Raises:
        LrlabError: the spec does not parse or is ``plateau(...)``, or a length is not an
            integer >= 1, or ``unit`` is neither ``"step"`` nor ``"epoch"``.
    """
    return check_schedule(curve_schedule(spec), epochs, steps_per_epoch, unit)


def warn_findings(schedule: Schedule, findings: list[Finding], where: str) -> None:
    """One :class:`HorizonWarning` per finding: ``"<where>: <schedule>: <message>"``."""
    for finding in findings:
        warnings.warn(f"{where}: {schedule}: {finding}", HorizonWarning, stacklevel=3)
