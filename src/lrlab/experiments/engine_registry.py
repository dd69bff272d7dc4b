"""The engines' names and where their classes live: what the config checks names against.

A name maps to the import path of its class (``"package.module:Class"``), so knowing the
names imports no engine; :func:`lrlab.experiments.engines.get_engine` imports the one
chosen (the Keras engine imports Keras only when it runs).
"""

from __future__ import annotations

__all__ = ["ENGINES", "engine_names", "register_engine"]

#: name -> "module:Class"
ENGINES: dict[str, str] = {
    "keras": "lrlab.experiments.engines.keras:KerasEngine",
    "population": "lrlab.experiments.engines.population:PopulationEngine",
}


def register_engine(name: str, target: str) -> None:
    """Make an engine class (``"package.module:Class"``) available by ``name``."""
    ENGINES[name] = target


def engine_names() -> tuple[str, ...]:
    """The registered engine names (``auto`` is not one: it picks among them).

    >>> engine_names()[:2]
    ('keras', 'population')
    """
    return tuple(ENGINES)
