"""The engine interface: ``Engine.run(plan, trials)`` yields one ``TrialResult`` per trial.

:class:`~lrlab.experiments.trial.Trial` and :class:`~lrlab.experiments.trial.TrialResult`
live in :mod:`lrlab.experiments.trial`.

An engine is free to train trials one at a time (the Keras engine) or many at once (a
population engine may batch a whole chunk and yield its results together). The runner
stores each result in one transaction as it arrives, so an engine should yield as soon as
a result is final; results that become final together announce the ones that follow
(``TrialResult.final_with_next``) and are stored in one transaction. Contract:

- every trial given yields exactly one result, in any order;
- a trial whose loss becomes NaN/inf is ``status="diverged"`` with ``diverged_epoch`` (the
  1-based epoch where it happened); training that trial stops there;
- an exception inside a trial is ``status="failed"`` with a one-line ``message``; the
  other trials go on (``KeyboardInterrupt`` is not caught: it stops the run);
- ``epochs`` holds one dict per finished epoch: ``epoch`` (1-based), ``lr`` (the lr of
  the epoch's last update) and the Keras-named metrics (``loss``, ``val_loss``,
  ``accuracy``, ``val_accuracy``, ...);
- ``final`` holds the last epoch's metrics plus ``train_val_gap``.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, ClassVar

from lrlab.experiments.stopping import StopRequest
from lrlab.experiments.trial import Trial, TrialResult

if TYPE_CHECKING:
    from lrlab.experiments.plan import Plan

__all__ = ["Engine"]


class Engine(abc.ABC):
    """Trains trials of a :class:`~lrlab.experiments.plan.Plan`.

    Options (e.g. the population engine's ``memory``) are constructor arguments:
    :func:`lrlab.experiments.engines.get_engine` passes each engine the ones it accepts.
    """

    name: ClassVar[str] = ""
    #: SIGINT/SIGTERM as a request to stop: engines that take a ``stop`` option set it,
    #: and call :meth:`check_stop` between trials or chunks.
    stop: StopRequest | None = None

    def check_stop(self) -> None:
        """Raise :class:`~lrlab.experiments.stopping.Stopped` if a stop was requested."""
        if self.stop is not None:
            self.stop.check()

    def unsupported(self, plan: Plan) -> str | None:
        """Why this engine cannot run ``plan`` (``None``: it can). ``auto`` uses this."""
        return None

    def slower(self, plan: Plan) -> str | None:
        """Why ``auto`` should pass this engine over although it can run ``plan`` (it is
        measured to be slower there than the next one); ``None``: no reason."""
        return None

    def batches(self, trials: Sequence[Trial]) -> list[list[Trial]] | None:
        """The sets of trials this engine trains together (a vectorized engine's
        populations, e.g. one per optimizer structure), or ``None`` when it trains trials
        one at a time. A distributed runner keeps each set in one task, so that the
        results equal a local run's."""
        return None

    def describe(self) -> str:
        """A few words for the progress line, e.g. ``keras fit, one trial at a time``."""
        return self.name

    @abc.abstractmethod
    def run(self, plan: Plan, trials: Sequence[Trial]) -> Iterator[TrialResult]:
        """Train ``trials`` and yield one result per trial as soon as it is final."""
