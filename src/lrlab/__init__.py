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
]


def compare(*args, **kwargs):
    """Compare schedules on a model and data over many seeds; returns the results table.

    See :func:`lrlab.api.compare` (imported on first use).
    """
    from lrlab.api import compare as _compare

    return _compare(*args, **kwargs)
