"""One XLA CPU device per core, so the population engine can split its trials over them.

JAX gives a CPU one device, and one device runs a program's independent trials on one
core (XLA's intra-op threads barely help small per-trial matrices). With one device per
core, :class:`~lrlab.experiments.engines.population.PopulationEngine` splits a chunk's
trial axis over the devices (``jax.shard_map``; the same code splits over GPUs).

The count can only be set before JAX starts its CPU backend, which is why the CLI calls
:func:`use_every_core` first, before anything runs a JAX computation. It leaves the
user's choice alone: ``XLA_FLAGS`` with ``--xla_force_host_platform_device_count`` or
``JAX_NUM_CPU_DEVICES`` in the environment wins, and a backend already started keeps its
devices.
"""

from __future__ import annotations

import os

__all__ = ["cores", "use_every_core"]


def cores() -> int:
    """The CPU cores this process may run on.

    >>> cores() >= 1
    True
    """
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def use_every_core() -> bool:
    """Ask JAX for one CPU device per core (``jax_num_cpu_devices``); ``True`` if it took.

    Not done when the environment already says how many (``XLA_FLAGS``'
    ``--xla_force_host_platform_device_count``, ``JAX_NUM_CPU_DEVICES``), on one core, or
    once JAX's backend has started (the setting would no longer apply).
    """
    if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return False
    if "JAX_NUM_CPU_DEVICES" in os.environ or cores() < 2:
        return False
    import jax

    try:
        jax.config.update("jax_num_cpu_devices", cores())
    except RuntimeError:  # the backend has started: its devices are fixed
        return False
    return True
