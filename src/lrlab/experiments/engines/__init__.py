"""Engines train trials; the runner stores what they yield (see :mod:`.base`).

Engines are registered by name with the import path of their class, so choosing one does
not import the others (the Keras engine imports Keras only when it runs).
"""

from __future__ import annotations

import importlib

from lrlab.experiments.engines.base import Engine, TrialResult

__all__ = ["ENGINES", "Engine", "TrialResult", "engine_names", "get_engine", "register_engine"]

#: name -> "module:Class"
ENGINES: dict[str, str] = {
    "keras": "lrlab.experiments.engines.keras:KerasEngine",
    "population": "lrlab.experiments.engines.population:PopulationEngine",
}


def register_engine(name: str, target: str) -> None:
    """Make an engine class (``"package.module:Class"``) available by ``name``."""
    ENGINES[name] = target


def engine_names() -> tuple[str, ...]:
    return tuple(ENGINES)


def get_engine(name: str) -> Engine:
    """An instance of the engine registered as ``name``."""
    module, _, cls = ENGINES[name].partition(":")
    return getattr(importlib.import_module(module), cls)()
