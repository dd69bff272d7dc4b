"""``lrlab.keras``: schedules, callback, migration and range test for Keras 3.

See :mod:`lrlab.integrations.keras`. This module is named ``keras`` inside the ``lrlab``
package; imports are absolute, so ``import keras`` anywhere (here included) is Keras itself.
"""

from __future__ import annotations

from lrlab.integrations.keras import (
    KerasSchedule,
    RangeTest,
    Scheduler,
    find_lr,
    legacy_decay,
    schedule,
    smooth_losses,
    suggest_lrs,
)

__all__ = [
    "KerasSchedule",
    "RangeTest",
    "Scheduler",
    "find_lr",
    "legacy_decay",
    "schedule",
    "smooth_losses",
    "suggest_lrs",
]
