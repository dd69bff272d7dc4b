"""Memory budgets: ``"512MB"``, ``"1.5GB"`` or a number of bytes, read once at the edge.

The CLI turns ``--memory`` (or ``LRLAB_MEMORY``) into bytes with :func:`parse_memory` and
the runner hands them to the engine that takes a ``memory`` argument (the population
engine sizes its chunks of trials with it).

>>> parse_memory("512MB"), parse_memory("1.5GB"), parse_memory(2**30)
(536870912, 1610612736, 1073741824)
"""

from __future__ import annotations

import math
import re

from lrlab.errors import LrlabError

__all__ = ["DEFAULT_MEMORY", "parse_memory"]

DEFAULT_MEMORY = 1 << 30
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "m": 1 << 20, "mb": 1 << 20}
_UNITS.update({"g": 1 << 30, "gb": 1 << 30, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30})


def parse_memory(value: int | float | str | None) -> int:
    """A memory budget in bytes from ``2**30``, ``"512MB"``, ``"1.5GB"`` (binary units, >= 1MB).

    ``None`` gives :data:`DEFAULT_MEMORY` (1 GiB).
    """
    if value is None:
        return DEFAULT_MEMORY
    if isinstance(value, bool):
        raise LrlabError(f"memory must be a size like 512MB or 2GB, got {value!r}")
    if isinstance(value, int | float):
        number, unit = float(value), ""
    else:
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([a-zA-Z]*)\s*", str(value))
        if not match or match.group(2).lower() not in _UNITS:
            raise LrlabError(f"memory must be a size like 512MB or 2GB, got {value!r}")
        number, unit = float(match.group(1)), match.group(2).lower()
    if not math.isfinite(number * _UNITS[unit]):  # 1e400GB, nan, inf
        raise LrlabError(f"memory must be a size like 512MB or 2GB, got {value!r}")
    size = int(number * _UNITS[unit])
    if size < 1 << 20:
        raise LrlabError(f"memory must be at least 1MB, got {value!r}")
    return size
