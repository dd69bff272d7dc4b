"""The registry of schedule classes: one name per class, read by the spec parser,
``from_dict``, ``lrlab list`` and the docs."""

from __future__ import annotations

from typing import Any

__all__ = ["REGISTRY", "register"]

#: schedule name -> schedule class (``lrlab.schedules.Schedule`` subclasses)
REGISTRY: dict[str, Any] = {}


def register(name: str):
    """Class decorator: add a schedule class to the registry under ``name``."""

    def wrap(cls: type) -> type:
        if name in REGISTRY:
            raise RuntimeError(f"schedule name {name!r} registered twice")
        cls.name = name
        REGISTRY[name] = cls
        return cls

    return wrap
