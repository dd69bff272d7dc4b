"""lrlab: choose a learning-rate schedule with evidence.

>>> import lrlab
>>> s = lrlab.parse("warmup(5, cosine(0.1, decay_steps=95))")
>>> round(s(50), 6)
0.054129
"""

import os

# Keras 3 picks TensorFlow when KERAS_BACKEND is unset; lrlab defaults to JAX.
os.environ.setdefault("KERAS_BACKEND", "jax")

from lrlab._keras_hook import install as _install_keras_hook  # noqa: E402
from lrlab.errors import LrlabError, ScheduleError, SpecError  # noqa: E402
from lrlab.integrations.horizon import HorizonWarning, check  # noqa: E402
from lrlab.schedules import REGISTRY, Schedule, from_dict  # noqa: E402
from lrlab.spec import format_spec, parse  # noqa: E402

_install_keras_hook()  # registers lrlab.keras classes when Keras is imported (.keras loading)

__version__ = "0.1.0"

__all__ = [
    "REGISTRY",
    "HorizonWarning",
    "LrlabError",
    "Schedule",
    "ScheduleError",
    "SpecError",
    "check",
    "compare",
    "format_spec",
    "from_dict",
    "parse",
    "results",
]


_FRONT_DOOR = ("compare", "results")  # lrlab.api, imported on first use (it imports Keras)


def __getattr__(name: str):
    """``lrlab.compare`` and ``lrlab.results`` are :mod:`lrlab.api`'s own functions (their
    signature and docstring in ``help()``), imported on first access."""
    if name in _FRONT_DOOR:
        import lrlab.api

        return getattr(lrlab.api, name)
    raise AttributeError(f"module 'lrlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_FRONT_DOOR])
