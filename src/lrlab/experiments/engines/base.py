"""The engine interface: ``Engine.run(plan, trials)`` yields one :class:`TrialResult` per trial.

An engine is free to train trials one at a time (the Keras engine) or many at once (a
population engine may batch a whole chunk and yield its results together). The runner
stores each result in one transaction as it arrives, so an engine should yield as soon as
a result is final. Contract:

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
import dataclasses
import json
import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from lrlab.experiments.plan import Plan

__all__ = ["STATUSES", "Engine", "Trial", "TrialResult", "final_metrics", "first_bad_epoch"]

STATUSES = ("ok", "diverged", "failed")


@dataclasses.dataclass(frozen=True)
class Trial:
    """One point of the grid: a schedule, an optimizer, an lr and a seed.

    ``spec`` is the schedule the trial trains with (canonical, after lr rescaling), in
    ``unit`` (``step``: evaluated per update; ``epoch``: at the epoch index);
    ``split_seed``, ``init_seed`` and ``order_seed`` follow the seed unless the
    experiment's ``vary`` holds one of them fixed (at 0).
    """

    key: str
    config: str
    schedule: str
    spec: str
    plateau: str | None
    monitor: str
    optimizer: str
    optimizer_json: str
    lr: float | None
    seed: int
    split_seed: int
    init_seed: int
    order_seed: int
    unit: str = "step"

    @property
    def optimizer_params(self) -> dict[str, Any]:
        """The optimizer's ``type`` and arguments (as validated from the file)."""
        return json.loads(self.optimizer_json)

    def params(self) -> dict[str, Any]:
        """Everything that defines the trial, as JSON-ready data."""
        out = dataclasses.asdict(self)
        out.pop("optimizer_json")
        out["optimizer_params"] = self.optimizer_params
        return out


@dataclasses.dataclass
class TrialResult:
    """What an engine reports for one trial (see the module docstring for the contract)."""

    trial: Trial
    status: str
    epochs: list[dict[str, float]] = dataclasses.field(default_factory=list)
    final: dict[str, float] = dataclasses.field(default_factory=dict)
    diverged_epoch: int | None = None
    message: str | None = None
    started: float = 0.0
    seconds: float = 0.0
    engine: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")


class Engine(abc.ABC):
    """Trains trials of a :class:`~lrlab.experiments.plan.Plan`."""

    name: ClassVar[str] = ""

    def unsupported(self, plan: Plan) -> str | None:
        """Why this engine cannot run ``plan`` (``None``: it can). ``auto`` uses this."""
        return None

    def describe(self) -> str:
        """A few words for the progress line, e.g. ``keras fit, one trial at a time``."""
        return self.name

    @abc.abstractmethod
    def run(self, plan: Plan, trials: Sequence[Trial]) -> Iterator[TrialResult]:
        """Train ``trials`` and yield one result per trial as soon as it is final."""


def first_bad_epoch(epochs: Sequence[dict[str, float]]) -> int | None:
    """The first 1-based epoch whose loss (train or validation) is NaN or infinite."""
    for row in epochs:
        for key in ("loss", "val_loss"):
            value = row.get(key)
            if value is not None and not math.isfinite(value):
                return int(row["epoch"])
    return None


def final_metrics(epochs: Sequence[dict[str, float]], first_metric: str | None) -> dict[str, float]:
    """The last epoch's metrics plus ``train_val_gap``.

    The gap is ``m - val_m`` for the first metric ``m`` (higher is better: accuracy, auc,
    precision, recall) or ``val_m - m`` for a loss-like one, so a positive gap means the
    model does better on its training data than on held-out data.

    >>> final_metrics([{"epoch": 1, "lr": 0.1, "accuracy": 0.9, "val_accuracy": 0.8}],
    ...               "accuracy")["train_val_gap"]
    0.09999999999999998
    """
    if not epochs:
        return {}
    last = {k: float(v) for k, v in epochs[-1].items() if k not in ("epoch", "lr")}
    name = first_metric or "loss"
    if name in last and f"val_{name}" in last:
        higher = name in ("accuracy", "auc", "precision", "recall")
        gap = last[name] - last[f"val_{name}"]
        last["train_val_gap"] = gap if higher else -gap
    return last
