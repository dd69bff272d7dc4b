"""``lrlab.optax.schedule(spec)``, ``lrlab.optax.inject(...)``: :mod:`lrlab.integrations.optax`.

This module is named ``optax`` inside the ``lrlab`` package; imports are absolute, so
``import optax`` anywhere (here included) is optax itself.
"""

from __future__ import annotations

from lrlab.integrations.optax import PlateauSchedule, PlateauScheduleState, inject, schedule

__all__ = ["PlateauSchedule", "PlateauScheduleState", "inject", "schedule"]
