"""Engines train trials; the runner stores what they yield (see :mod:`.base`).

Engines are registered by name with the import path of their class
(:mod:`lrlab.experiments.engine_registry`), so choosing one does not import the others.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from lrlab.experiments.engine_registry import ENGINES, engine_names, register_engine
from lrlab.experiments.engines.base import Engine

__all__ = ["ENGINES", "Engine", "engine_names", "get_engine", "register_engine"]


def get_engine(name: str, **options: Any) -> Engine:
    """An instance of the engine registered as ``name``, given the ``options`` it accepts.

    An option the engine's constructor does not take is left out (``memory`` sizes the
    population engine's chunks and means nothing to the Keras engine); ``None`` values
    are left out too, so the engine's own default applies.
    """
    module, _, cls_name = ENGINES[name].partition(":")
    cls = getattr(importlib.import_module(module), cls_name)
    accepted = inspect.signature(cls).parameters
    return cls(**{k: v for k, v in options.items() if k in accepted and v is not None})
