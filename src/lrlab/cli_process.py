"""What the ``lrlab`` command does to the process it runs in: the stop request its commands
share, the settings JAX takes only before it starts, the garbage collector's pace, and the
last line of a stopped command. :func:`lrlab.cli.main` owns the process only when it is
the process (the console script, ``python -m lrlab.cli``); called from Python, it leaves
the caller's process settings alone.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import click

__all__ = [
    "LrlabProcess",
    "before_exit",
    "before_jax",
    "collect_less_often",
    "interrupted",
    "process_of",
]


@dataclasses.dataclass(frozen=True)
class LrlabProcess:
    """What :func:`lrlab.cli.main` hands its commands: the stop request it installed, and whether
    lrlab is the process (the console script) rather than a call from Python, which
    keeps its own process settings (e.g. JAX's devices)."""

    stop: Any
    owned: bool = False

    def not_owned(self) -> LrlabProcess:
        """The same stop request, without the process's settings (e.g. on Ray, where the
        driver only stores and the workers take the CPUs their tasks ask for)."""
        return dataclasses.replace(self, owned=False)


def process_of(ctx: click.Context) -> LrlabProcess:
    """The process a command runs in (a fresh stop request when not started by ``main``)."""
    from lrlab.experiments.stopping import StopRequest

    return ctx.obj if isinstance(ctx.obj, LrlabProcess) else LrlabProcess(StopRequest())


def before_jax(process: LrlabProcess) -> None:
    """Settings that take effect only before JAX starts: the persistent compilation cache
    (:mod:`~lrlab.experiments.jax_cache`) and, when lrlab is the process, a CPU device per
    core for the population engine (:mod:`~lrlab.experiments.jax_devices`)."""
    from lrlab.experiments.jax_cache import use_compilation_cache

    use_compilation_cache()
    if process.owned:
        from lrlab.experiments.jax_devices import use_every_core

        use_every_core()


def collect_less_often() -> None:
    """Collect young objects every 10,000 allocations instead of Python's 700: importing
    Keras, JAX and SciPy makes millions of lasting objects, which the default pace walks
    again and again (a tenth of a short run). Garbage is collected all the same."""
    import gc

    gc.set_threshold(10_000)


def before_exit() -> None:
    """The process ends next: hide every object from the garbage collector
    (``gc.freeze``), so Python's shutdown does not walk the millions of objects Keras, JAX
    and SciPy made (a second or two on a small machine). Every ``atexit`` hook still runs
    (lrlab closes its stores before this); the memory goes back with the process."""
    import gc

    gc.freeze()


def interrupted(stop) -> int:
    """The last line of a stopped command, and its exit code (130 SIGINT, 143 SIGTERM)."""
    import signal

    signum = stop.signum or signal.SIGINT  # an Abort from a prompt: as Ctrl-C
    click.echo(f"lrlab: interrupted ({signal.Signals(signum).name})", err=True)
    return 128 + signum
