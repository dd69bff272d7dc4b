"""The bottom of the experiment layer: what a trial is, what it yields, and the metric names.

Everything above (config, plan, engines, store, analysis) takes these from here:

- :class:`Trial`: one point of the grid with *parsed* values (a :class:`~lrlab.schedules.Schedule`,
  a :class:`~lrlab.schedules.Plateau`, an :class:`OptimizerSettings`), never strings to
  parse again; :meth:`Trial.params` is what the store keeps (JSON data);
- :class:`TrialResult`: what an engine reports for one trial;
- :data:`METRICS`: the metric names an experiment may log, by task, and whether higher is
  better (:func:`higher_is_better`), and the range its values can take (:func:`metric_range`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from lrlab.schedules import Plateau, Schedule

__all__ = [
    "CLASSIFICATION_METRICS",
    "METRICS",
    "REGRESSION_METRICS",
    "STATUSES",
    "OptimizerSettings",
    "Trial",
    "TrialResult",
    "final_metrics",
    "first_bad_epoch",
    "higher_is_better",
    "metric_range",
]

STATUSES = ("ok", "diverged", "failed")

#: metric name -> (the tasks it applies to, higher is better)
METRICS: dict[str, tuple[str, bool]] = {
    "accuracy": ("classification", True),
    "auc": ("classification", True),
    "precision": ("classification", True),
    "recall": ("classification", True),
    "mae": ("regression", False),
    "mse": ("regression", False),
}
CLASSIFICATION_METRICS = tuple(m for m, (task, _) in METRICS.items() if task == "classification")
REGRESSION_METRICS = tuple(m for m, (task, _) in METRICS.items() if task == "regression")


def higher_is_better(metric: str) -> bool:
    """True for accuracy-like metrics (``val_accuracy``, ``auc``...), False for losses/errors.

    >>> higher_is_better("val_accuracy"), higher_is_better("val_loss"), higher_is_better("mae")
    (True, False, False)
    """
    entry = METRICS.get(metric.removeprefix("val_"))
    return entry is not None and entry[1]


def metric_range(metric: str) -> tuple[float, float]:
    """The values ``metric`` can take: ``(0, 1)`` for the classification metrics of
    :data:`METRICS` (accuracy, auc, precision, recall), ``(0, inf)`` for the regression
    errors and ``loss``, ``(-inf, inf)`` for anything else (``train_val_gap``).

    >>> metric_range("val_accuracy"), metric_range("mse"), metric_range("val_loss")
    ((0.0, 1.0), (0.0, inf), (0.0, inf))
    >>> metric_range("train_val_gap")
    (-inf, inf)
    """
    name = metric.removeprefix("val_")
    entry = METRICS.get(name)
    if entry is not None and entry[0] == "classification":
        return 0.0, 1.0
    if entry is not None or name == "loss":
        return 0.0, math.inf
    return -math.inf, math.inf


@dataclasses.dataclass(frozen=True)
class OptimizerSettings:
    """An optimizer's type and every argument the file gave it (validated), hashable.

    >>> opt = OptimizerSettings.from_dict({"type": "sgd", "momentum": 0.8, "nesterov": False})
    >>> opt.type, opt.to_dict()
    ('sgd', {'momentum': 0.8, 'nesterov': False, 'type': 'sgd'})
    """

    type: str
    arguments: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def from_dict(cls, params: Mapping[str, Any]) -> OptimizerSettings:
        """From ``{"type": ..., <argument>: <value>, ...}`` (the validated file table)."""
        rest = {k: v for k, v in params.items() if k != "type"}
        return cls(str(params["type"]), tuple(sorted(rest.items())))

    def to_dict(self) -> dict[str, Any]:
        """``{"type": ..., <argument>: <value>, ...}``, keys sorted (as the store keeps it)."""
        return dict(sorted({"type": self.type, **dict(self.arguments)}.items()))


@dataclasses.dataclass(frozen=True)
class Trial:
    """One point of the grid: a schedule, an optimizer, an lr and a seed.

    ``schedule`` is the schedule the trial trains with (canonical, after lr rescaling), in
    ``unit`` (``step``: evaluated per update; ``epoch``: at the epoch index); ``plateau``
    scales it on ``monitor`` when given. ``schedule_label`` and ``optimizer_label`` are the
    file's table labels, ``config`` the grid label. ``split_seed``, ``init_seed`` and
    ``order_seed`` follow the seed unless the experiment's ``vary`` holds one of them fixed
    (at 0). ``function`` is the ``module:function`` a ``table(...)`` schedule was tabulated
    from (None for a spec).
    """

    key: str
    config: str
    schedule_label: str
    schedule: Schedule
    plateau: Plateau | None
    monitor: str
    optimizer_label: str
    optimizer: OptimizerSettings
    lr: float | None
    seed: int
    split_seed: int
    init_seed: int
    order_seed: int
    unit: str = "step"
    function: str | None = None

    @property
    def spec(self) -> str:
        """The schedule as its canonical spec string."""
        return str(self.schedule)

    @property
    def optimizer_params(self) -> dict[str, Any]:
        """The optimizer's ``type`` and arguments (as validated from the file)."""
        return self.optimizer.to_dict()

    def params(self) -> dict[str, Any]:
        """Everything that defines the trial, as JSON-ready data (what the store keeps)."""
        return {
            "key": self.key,
            "config": self.config,
            "schedule": self.schedule_label,
            "spec": self.spec,
            "plateau": str(self.plateau) if self.plateau is not None else None,
            "monitor": self.monitor,
            "optimizer": self.optimizer_label,
            "optimizer_params": self.optimizer_params,
            "lr": self.lr,
            "seed": self.seed,
            "split_seed": self.split_seed,
            "init_seed": self.init_seed,
            "order_seed": self.order_seed,
            "unit": self.unit,
            **({} if self.function is None else {"function": self.function}),
        }


@dataclasses.dataclass
class TrialResult:
    """What an engine reports for one trial (see :mod:`lrlab.experiments.engines.base`)."""

    trial: Trial
    status: str
    epochs: list[dict[str, float]] = dataclasses.field(default_factory=list)
    final: dict[str, float] = dataclasses.field(default_factory=dict)
    diverged_epoch: int | None = None
    message: str | None = None
    started: float = 0.0
    seconds: float = 0.0
    engine: str = ""
    #: How many of the results the engine yields right after this one became final at the
    #: same time (the rest of a population chunk): the runner stores them together, in one
    #: transaction. 0: none (stored now, with the ones before it that announced it).
    final_with_next: int = dataclasses.field(default=0, compare=False)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")


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

    The gap is ``m - val_m`` for the first metric ``m`` when :func:`higher_is_better`, else
    ``val_m - m``, so a positive gap means the model does better on its training data than
    on held-out data.

    >>> final_metrics([{"epoch": 1, "lr": 0.1, "accuracy": 0.9, "val_accuracy": 0.8}],
    ...               "accuracy")["train_val_gap"]
    0.09999999999999998
    """
    if not epochs:
        return {}
    last = {k: float(v) for k, v in epochs[-1].items() if k not in ("epoch", "lr")}
    name = first_metric or "loss"
    if name in last and f"val_{name}" in last:
        gap = last[name] - last[f"val_{name}"]
        last["train_val_gap"] = gap if higher_is_better(name) else -gap
    return last
