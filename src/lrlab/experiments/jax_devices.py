"""Every CPU core for the population engine when lrlab is the process (``lrlab run``,
``lrlab demo``).

JAX gives a CPU one device, and XLA runs the population engine's small operations on one
core of it. The engine splits a chunk's trials over all of JAX's devices (each device
trains its share with the same code; no device waits for another), so with one CPU
device per core a population trains on every core: on the 2-core reference machine the
seed 002 grid's 500 trials train 1.37x faster and seed 003's CNN grid 1.6x
(``bench/population.py``, ``bench/peers.py --cnn``).

The numbers: a dense model's agree to float32 rounding on any number of devices (the
seed 002 grid's 25,000 epoch rows are identical bit for bit; a small chunk's validation
loss may differ in its last bit, a reduction over a differently tiled matmul); a model
with convolutions rounds differently once its trials are split (XLA partitions a
convolution by the threads it has), as it does on another machine, and training can
amplify that rounding.

The user's choice wins: ``JAX_NUM_CPU_DEVICES`` (``1`` keeps one device) or
``--xla_force_host_platform_device_count`` in ``XLA_FLAGS``. This only takes effect
before JAX starts its backend, which is why the CLI calls it first; a Python program that
uses lrlab keeps JAX's own default (it owns its process), and Ray's workers take the
CPUs their task asked for.
"""

from __future__ import annotations

import os

from lrlab.errors import LrlabError

#: the XLA flag that also sets the number of CPU devices
FORCE_DEVICES_FLAG = "--xla_force_host_platform_device_count"


def cpu_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS tells it).

    >>> cpu_cores() >= 1
    True
    """
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def use_every_core(environ: dict[str, str] | None = None) -> int | None:
    """Give JAX one CPU device per core, unless the user chose a number (see the module
    docstring) or JAX has already started; return the number set, else ``None``.

    >>> use_every_core({"JAX_NUM_CPU_DEVICES": "1"}) is None
    True
    >>> use_every_core({"XLA_FLAGS": "--xla_force_host_platform_device_count=4"}) is None
    True
    >>> use_every_core({"JAX_NUM_CPU_DEVICES": "two"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    lrlab.errors.LrlabError: JAX_NUM_CPU_DEVICES='two' is not a number of CPU devices; ...
    """
    environ = os.environ if environ is None else environ
    if "JAX_NUM_CPU_DEVICES" in environ:
        _check_count(environ["JAX_NUM_CPU_DEVICES"])
        return None
    if FORCE_DEVICES_FLAG in environ.get("XLA_FLAGS", ""):
        return None
    import jax

    cores = cpu_cores()
    if cores == 1 or jax.config.jax_num_cpu_devices != -1:
        return None
    try:
        jax.config.update("jax_num_cpu_devices", cores)
    except RuntimeError:  # JAX's backend has started: its devices are fixed
        return None
    return cores


def _check_count(text: str) -> None:
    """``JAX_NUM_CPU_DEVICES`` as JAX reads it: a whole number >= 1 (or JAX's ``-1``,
    unset); anything else would fail later, inside the first JAX call, under another name."""
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1 and count != -1:
        raise LrlabError(
            f"JAX_NUM_CPU_DEVICES={text!r} is not a number of CPU devices; set a whole number "
            "such as 1, or unset it for one per core"
        )
