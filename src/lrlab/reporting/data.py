"""What a report reads from an experiment's store, loaded once.

:func:`load_report_data` opens ``DIR/store.sqlite`` read-only in spirit (it never writes)
and gathers the metadata, every trial, every epoch row and the results table
(:func:`lrlab.analysis.results.results_from_store`, with its comparison against the
baseline). Figures and the HTML page are built from a :class:`ReportData` and nothing
else, so a report can be rebuilt from the store alone, on any machine.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from lrlab.analysis.results import ResultTable, results_from_store
from lrlab.errors import LrlabError
from lrlab.experiments.store import Store, StoredTrial
from lrlab.experiments.trial import higher_is_better
from lrlab.spec import MAX_STORED_SPEC_LENGTH, parse

__all__ = ["ReportData", "ScheduleCurve", "load_report_data"]


@dataclasses.dataclass(frozen=True)
class ScheduleCurve:
    """One distinct lr curve of the experiment (configs that differ only by optimizer share it).

    ``spec`` is the schedule as trained (after lr rescaling), ``unit`` says whether it is
    evaluated per update (``step``) or at the epoch index (``epoch``); ``plateau`` is the
    reactive part, if any. ``configs`` are the configs that train with it. ``function``
    is the ``module:function`` a ``table(...)`` spec was tabulated from, if any.
    """

    label: str
    spec: str
    unit: str
    plateau: str | None
    configs: tuple[str, ...]
    function: str | None = None

    @property
    def shown(self) -> str:
        """The spec as a page shows it: a long table cut short, after its function's name."""
        spec = self.spec if len(self.spec) <= 160 else self.spec[:150] + " ...])"
        return spec if self.function is None else f"{self.function}: {spec}"


@dataclasses.dataclass
class ReportData:
    """An experiment as stored: metadata, trials, per-epoch rows and the results table."""

    directory: Path
    meta: dict[str, Any]
    trials: list[StoredTrial]
    epochs: dict[str, list[dict[str, float]]]
    table: ResultTable

    # -- what was compared ---------------------------------------------------------------
    @property
    def title(self) -> str:
        return str(self.meta.get("title") or self.directory.name)

    @property
    def metric(self) -> str:
        return self.table.metric

    @property
    def baseline(self) -> str:
        return self.table.baseline

    @property
    def higher_is_better(self) -> bool:
        return self.table.higher_is_better

    @cached_property
    def labels(self) -> list[str]:
        """Configs in grid order (the file's), then any stored config the metadata lacks."""
        labels = list(self.meta.get("labels") or [])
        for t in self.trials:
            if t.config not in labels:
                labels.append(t.config)
        return labels

    @property
    def ranked(self) -> list[str]:
        """Configs best first (the results table's order)."""
        return [row.config for row in self.table]

    @property
    def steps_per_epoch(self) -> int:
        return int(self.meta.get("steps_per_epoch") or 1)

    @cached_property
    def n_epochs(self) -> int:
        """Planned epochs (from the stored settings), else the most any trial ran."""
        planned = (self.meta.get("canonical") or {}).get("training", {}).get("epochs")
        if planned:
            return int(planned)
        return max((len(rows) for rows in self.epochs.values()), default=0)

    @property
    def seeds(self) -> list[int]:
        return sorted({t.seed for t in self.trials})

    def trials_of(self, config: str, status: str | None = "ok") -> list[StoredTrial]:
        """The trials of ``config`` (only those with ``status``; None: all), by seed."""
        out = [t for t in self.trials if t.config == config]
        if status is not None:
            out = [t for t in out if t.status == status]
        return sorted(out, key=lambda t: t.seed)

    def count(self, config: str, status: str) -> int:
        return sum(1 for t in self.trials if t.config == config and t.status == status)

    # -- values -------------------------------------------------------------------------
    def final_values(self, metric: str, config: str) -> dict[int, float]:
        """``{seed: final metric}`` of the finished (``ok``) trials of ``config``."""
        out = {}
        for t in self.trials_of(config):
            v = t.final.get(metric)
            if v is not None and math.isfinite(v):
                out[t.seed] = float(v)
        return out

    def epoch_matrix(self, config: str, key: str) -> np.ndarray:
        """``seeds x epochs`` values of ``key`` for the ``ok`` trials of ``config`` (NaN gaps)."""
        trials = self.trials_of(config)
        out = np.full((len(trials), self.n_epochs), np.nan)
        for i, t in enumerate(trials):
            for row in self.epochs.get(t.key, []):
                e = int(row["epoch"]) - 1
                v = row.get(key)
                if 0 <= e < self.n_epochs and v is not None:
                    out[i, e] = float(v)
        return out

    @cached_property
    def epoch_keys(self) -> list[str]:
        """Metric names logged per epoch, ``loss`` first, training before validation."""
        keys = {k for rows in self.epochs.values() for row in rows for k in row}
        keys -= {"epoch", "lr"}
        bases = sorted({k.removeprefix("val_") for k in keys}, key=lambda b: (b != "loss", b))
        return [k for b in bases for k in (b, f"val_{b}") if k in keys]

    @cached_property
    def final_keys(self) -> set[str]:
        return {k for t in self.trials for k in t.final}

    # -- schedules and sweeps -----------------------------------------------------------
    @cached_property
    def is_sweep(self) -> bool:
        """True when configs differ by the lr they peak at (``[experiment] lrs``)."""
        return len({t.lr for t in self.trials if t.lr is not None}) > 1

    @cached_property
    def many_optimizers(self) -> bool:
        return len({t.optimizer for t in self.trials}) > 1

    def group_of(self, t: StoredTrial) -> str:
        """A config's label without its lr: ``schedule`` or ``schedule / optimizer``."""
        return f"{t.schedule} / {t.optimizer}" if self.many_optimizers else t.schedule

    @cached_property
    def curves(self) -> list[ScheduleCurve]:
        """Every distinct lr curve, in grid order; optimizers sharing a curve share a line."""
        found: dict[tuple[str, str, str | None], tuple[str, list[str], str | None]] = {}
        for config in self.labels:
            trials = self.trials_of(config, status=None)
            if not trials:
                continue
            t = trials[0]
            unit = str(t.params.get("unit") or "step")
            key = (t.spec, unit, t.params.get("plateau"))
            if key not in found:
                label = t.schedule + (f" / lr={t.lr:g}" if self.is_sweep and t.lr else "")
                found[key] = (label, [], t.params.get("function"))
            found[key][1].append(config)
        return [
            ScheduleCurve(label, spec, unit, plateau, tuple(configs), function)
            for (spec, unit, plateau), (label, configs, function) in found.items()
        ]

    def curve_lr(self, curve: ScheduleCurve) -> np.ndarray | None:
        """The lr of every update of ``curve``, from the store alone: the curve the store
        keeps for a schedule class the user registered, else the spec parsed with lrlab's
        own schedules (None when neither works, e.g. an older store of a user class)."""
        kept = (self.meta.get("lr_curves") or {}).get(f"{curve.unit}:{curve.spec}")
        if kept is not None:
            return np.asarray(kept, dtype=np.float64)
        try:
            schedule = parse(curve.spec, max_length=MAX_STORED_SPEC_LENGTH)
            return schedule.per_update(self.n_epochs, self.steps_per_epoch, curve.unit)
        except LrlabError:
            return None

    def recorded_lr(self, configs: Iterable[str]) -> np.ndarray:
        """Median over the trials of ``configs`` of the lr recorded at each epoch's last update."""
        rows = [self.epoch_matrix(c, "lr") for c in configs]
        rows = [r for r in rows if r.size]
        if not rows:
            return np.full(self.n_epochs, np.nan)
        stacked = np.vstack(rows)
        with np.errstate(all="ignore"):
            ok = np.isfinite(stacked).any(axis=0)
            out = np.full(stacked.shape[1], np.nan)
            out[ok] = np.nanmedian(stacked[:, ok], axis=0)
        return out

    @cached_property
    def sweep_metric(self) -> tuple[str | None, str | None, bool]:
        """``(train key, validation key, higher_is_better)`` of the metric the sweep plots."""
        metric = self.metric
        if metric == "train_val_gap":
            bases = [k for k in self.epoch_keys if not k.startswith("val_") and k != "loss"]
            base = bases[0] if bases else "loss"
        else:
            base = metric.removeprefix("val_")
        train = base if base in self.final_keys else None
        val = f"val_{base}" if f"val_{base}" in self.final_keys else None
        return train, val, higher_is_better(base)


def load_report_data(
    directory: str | Path,
    *,
    metric: str | None = None,
    baseline: str | None = None,
    table: ResultTable | None = None,
) -> ReportData:
    """Read everything a report shows from ``directory``'s store (see the module docstring).

    ``table``: the store's results table when the caller has it already (``lrlab report``
    prints it first), so it is not worked out twice; else it is built from ``metric`` and
    ``baseline``.

    Raises:
        lrlab.errors.LrlabError: no store in ``directory``, an unknown ``metric`` or
            ``baseline`` (the same one-line messages as ``lrlab report``).
    """
    directory = Path(directory)
    if table is None:
        table = results_from_store(directory, metric=metric, baseline=baseline)
    with Store.open_read_only(directory) as store:
        meta = store.meta()
        trials = store.trials()
        epochs = store.epochs()
    return ReportData(directory, meta, trials, epochs, table)
