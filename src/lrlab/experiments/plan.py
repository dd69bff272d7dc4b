"""A plan: the validated config with its data loaded, its model checked and its grid of trials.

Everything that can be wrong with an experiment is found while building the plan, before
anything is written: the runner creates the experiment folder and the store only after
:func:`build_plan` succeeded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from collections.abc import Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from lrlab.errors import LrlabError
from lrlab.experiments.config import ConfigError, ExperimentConfig, close_match, config_hash
from lrlab.experiments.datasets import Dataset, DatasetError, Split, load_dataset, split_dataset
from lrlab.experiments.functions import resolve_function
from lrlab.experiments.identity import code_fingerprint
from lrlab.experiments.models import ModelError, ModelSpec, parse_model
from lrlab.experiments.trial import (
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    OptimizerSettings,
    Trial,
    higher_is_better,
)
from lrlab.schedules.check import Finding, check_schedule

__all__ = ["GridPoint", "Plan", "build_plan", "count_trials", "verify_model"]


@dataclasses.dataclass(frozen=True)
class GridPoint:
    """One config of the grid (a schedule, an optimizer, an lr): its trials differ by seed."""

    label: str
    schedule_label: str
    schedule: Any  # the trained Schedule (after lr rescaling)
    plateau: Any
    monitor: str
    unit: str
    optimizer_label: str
    optimizer: OptimizerSettings
    lr: float | None
    function: str | None = None  # the module:function a table(...) schedule was tabulated from

    def trial(self, seed: int, vary: Sequence[str]) -> Trial:
        """The trial of this config with ``seed`` (what ``vary`` leaves out stays at 0)."""
        return Trial(
            key=f"{self.label}|seed={seed}",
            config=self.label,
            schedule_label=self.schedule_label,
            schedule=self.schedule,
            plateau=self.plateau,
            monitor=self.monitor,
            optimizer_label=self.optimizer_label,
            optimizer=self.optimizer,
            lr=self.lr,
            seed=seed,
            split_seed=seed if "split" in vary else 0,
            init_seed=seed if "init" in vary else 0,
            order_seed=seed if "order" in vary else 0,
            unit=self.unit,
            function=self.function,
        )


@dataclasses.dataclass(eq=False)
class Plan:
    """What a run needs: settings, data, model, the grid and the config hash.

    The trials are planned lazily: :meth:`iter_trials` yields them seed-major from the
    grid's :attr:`points` and :attr:`seeds` (constant memory, whatever the count);
    :attr:`trials` is that list, for the small plans that want one.
    """

    config: ExperimentConfig
    dataset: Dataset
    holdout: Dataset | None
    model: Any  # ModelSpec, or any object with .text and .build(input_shape, task, n, seed)
    points: list[GridPoint]
    seeds: list[int]
    labels: list[str]
    steps_per_epoch: int
    metrics: list[str]
    metric: str
    baseline: str
    hash: str
    canonical: dict[str, Any]
    fingerprint: str = ""  # the data's (and holdout's) fingerprint
    code: dict[str, str] = dataclasses.field(default_factory=dict)  # module:function -> hash
    _splits: dict[int, Split] = dataclasses.field(default_factory=dict, repr=False)

    @property
    def n_trials(self) -> int:
        return len(self.points) * len(self.seeds)

    def iter_trials(self, seeds: Sequence[int] | None = None) -> Iterator[Trial]:
        """Trials seed-major (every config of a seed, then the next seed), made on demand."""
        vary = self.config.experiment.vary
        for seed in self.seeds if seeds is None else seeds:
            for point in self.points:
                yield point.trial(seed, vary)

    def chunks(self, size: int) -> Iterator[list[Trial]]:
        """:meth:`iter_trials` in lists of at most ``size`` trials."""
        it = self.iter_trials()
        while chunk := list(itertools.islice(it, size)):
            yield chunk

    @cached_property
    def trials(self) -> list[Trial]:
        """Every trial, seed-major (a list: use :meth:`iter_trials` for large plans)."""
        return list(self.iter_trials())

    @property
    def epochs(self) -> int:
        return self.config.training.epochs

    @property
    def data_fingerprint(self) -> str:
        """sha256 of the data (and holdout) arrays: experiments on equal data share it."""
        extra = self.dataset.fingerprint()
        extra += self.holdout.fingerprint() if self.holdout is not None else ""
        return hashlib.sha256(extra.encode()).hexdigest()

    @property
    def batch_size(self) -> int:
        return self.config.training.batch_size

    @property
    def schedule_unit(self) -> str:
        """The file's default unit; a trial's own is ``trial.unit``."""
        return self.config.training.schedule_unit

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    @property
    def higher_is_better(self) -> bool:
        return higher_is_better(self.metric)

    @cached_property
    def loss(self) -> str:
        from lrlab.experiments.models import head_for

        return head_for(self.dataset.task, self.dataset.n_classes).loss

    def split(self, seed: int) -> Split:
        """The (standardized) training/validation split for a trial's split seed (cached)."""
        if seed not in self._splits:
            data = self.config.data
            validation = self.holdout if self.holdout is not None else data.validation
            if len(self._splits) >= 16:
                self._splits.pop(next(iter(self._splits)))
            self._splits[seed] = split_dataset(
                self.dataset,
                validation=validation,
                method=data.split,
                seed=seed,
                standardize=data.standardize,
            )
        return self._splits[seed]

    def lr_table(self, trial: Trial) -> np.ndarray:
        """The lr of every update ``0 .. epochs*steps_per_epoch - 1`` (float64).

        With ``trial.unit == "epoch"``, update ``t`` uses ``schedule(t // steps_per_epoch)``.
        """
        return trial.schedule.per_update(self.epochs, self.steps_per_epoch, trial.unit)

    def horizon_findings(self) -> dict[str, list[Finding]]:
        """The horizon check of each config's schedule on this run, configs with findings
        only, in grid order (:func:`lrlab.schedules.check.check_schedule`)."""
        found = {
            p.label: check_schedule(p.schedule, self.epochs, self.steps_per_epoch, p.unit)
            for p in self.points
        }
        return {label: findings for label, findings in found.items() if findings}

    def user_class_curves(self) -> dict[str, list[float]]:
        """``{"<unit>:<spec>": lr per update}`` of each schedule built with a class that is
        not lrlab's own (``lrlab.schedules.register``): what a report needs to draw it
        without importing the code that registered it (the store keeps this)."""
        out: dict[str, list[float]] = {}
        for point in self.points:
            key = f"{point.unit}:{point.schedule}"
            if key not in out and _has_user_class(point.schedule):
                out[key] = point.schedule.per_update(
                    self.epochs, self.steps_per_epoch, point.unit
                ).tolist()
        return out


def _has_user_class(schedule: Any) -> bool:
    if not dataclasses.is_dataclass(schedule):
        return False
    if not type(schedule).__module__.startswith("lrlab."):
        return True
    for f in dataclasses.fields(schedule):
        value = getattr(schedule, f.name)
        values = value if isinstance(value, tuple) else (value,)
        if any(_has_user_class(v) for v in values):
            return True
    return False


def _fail(config: ExperimentConfig, path: str, err: Exception | str, fix: str = "") -> ConfigError:
    return ConfigError(config.source, path, str(err).splitlines()[0], fix)


def build_plan(
    config: ExperimentConfig,
    *,
    dataset: Dataset | None = None,
    holdout: Dataset | None = None,
    model: Any | None = None,
    check_model: bool = True,
    seeds: Sequence[int] | None = None,
) -> Plan:
    """Load the data, check the model and expand the grid; raise ConfigError if anything is bad.

    ``dataset``, ``holdout`` and ``model`` replace the file's (the Python API passes
    in-memory data and model functions). ``check_model`` builds the model once to catch
    shape errors early. ``seeds`` replace the file's (a grown experiment's seeds).
    """
    data = config.data
    base = config.base_dir
    try:
        if dataset is None:
            dataset = load_dataset(
                data.dataset,
                target=data.target,
                task=data.task,
                limit=data.limit,
                base=base,
                classes=data.classes,
            )
    except DatasetError as err:
        field = "data.classes" if str(err).startswith("classes:") else "data.dataset"
        raise _fail(config, field, str(err).removeprefix("classes: ")) from None
    try:
        if holdout is not None:
            holdout = _align_holdout(holdout, dataset)
        elif isinstance(data.validation, str):
            holdout = _load_holdout(data.validation, data, dataset, base)
    except DatasetError as err:
        raise _fail(config, "data.validation", err) from None
    if model is None:
        try:
            model = parse_model(config.model.spec, base)
        except ModelError as err:
            raise _fail(config, "model.spec", err) from None
    metrics = _metrics(config, dataset)
    n_train = dataset.n if holdout is not None else _n_train(dataset.n, data.validation)
    if n_train < 1 or (holdout is None and n_train >= dataset.n):
        raise ConfigError(
            config.source,
            "data.validation",
            f"a fraction of {data.validation} leaves {n_train} of {dataset.n} rows for training",
            "use a fraction that keeps rows in both parts",
        )
    steps_per_epoch = -(-n_train // config.training.batch_size)
    points = _grid(config, steps_per_epoch)
    labels = [p.label for p in points]
    metric = _primary_metric(config, metrics)
    _check_monitors(config, metrics)
    baseline = _baseline(config, labels)
    canonical = config.canonical()
    extra = dataset.fingerprint() + (holdout.fingerprint() if holdout is not None else "")
    if not isinstance(model, ModelSpec):
        canonical["model"]["spec"] = getattr(model, "text", repr(model))
    plan = Plan(
        config=config,
        dataset=dataset,
        holdout=holdout,
        model=model,
        points=points,
        seeds=list(config.seeds if seeds is None else seeds),
        labels=labels,
        steps_per_epoch=steps_per_epoch,
        metrics=metrics,
        metric=metric,
        baseline=baseline,
        hash=config_hash(canonical, extra),
        canonical=canonical,
        fingerprint=extra,
        code=_code_fingerprints(model, points, base),
    )
    if check_model:
        verify_model(plan)
    return plan


def _code_fingerprints(
    model: Any, points: Sequence[GridPoint], base: Path | None
) -> dict[str, str]:
    """``{"module:function": sha256 of its file}`` for a model function and each schedule
    function (part of the identity)."""
    out = {}
    function = getattr(model, "function", None)
    if function is not None:
        out[getattr(model, "text", repr(model))] = code_fingerprint(function)
    for point in points:
        if isinstance(point.function, str) and point.function not in out:
            try:
                fn = resolve_function(point.function, base, what="schedule function")
            except LrlabError:  # a function given from Python (a lambda): its table is the spec
                continue
            out[point.function] = code_fingerprint(fn)
    return out


def _n_train(n: int, fraction: float) -> int:
    import math

    return int(math.floor(n * (1.0 - fraction)))


def _load_holdout(ref: str, data: Any, dataset: Dataset, base: Path | None) -> Dataset:
    # a multiclass holdout takes the training data's task (its classes are matched by name)
    task = "multiclass" if dataset.task == "multiclass" else "auto"
    holdout = load_dataset(ref, target=data.target, task=task, base=base, classes=data.classes)
    return _align_holdout(holdout, dataset)


def _align_holdout(holdout: Dataset, dataset: Dataset) -> Dataset:
    """The holdout with the training data's class indices (labels matched by name)."""
    if holdout.input_shape != dataset.input_shape:
        raise DatasetError(
            f"holdout rows have shape {holdout.input_shape}, training rows "
            f"{dataset.input_shape}; use files with the same columns"
        )
    if dataset.task == "regression":
        return Dataset(holdout.name, holdout.x, np.asarray(holdout.y, np.float32), "regression")
    index = {c: i for i, c in enumerate(dataset.classes)}
    labels = _holdout_labels(holdout)
    unknown = sorted(set(labels) - set(index))
    if unknown:
        raise DatasetError(
            f"holdout labels {unknown[:5]} do not occur in the training data; "
            "use the same classes in both files"
        )
    y = np.array([index[v] for v in labels], dtype=np.int64)
    return Dataset(holdout.name, holdout.x, y, dataset.task, dataset.classes)


def _holdout_labels(holdout: Dataset) -> list[str]:
    if holdout.task == "regression":
        from lrlab.experiments.datasets import _format_number

        return [_format_number(v) for v in holdout.y]
    return [holdout.classes[i] for i in holdout.y]


def _metrics(config: ExperimentConfig, dataset: Dataset) -> list[str]:
    given = config.training.metrics
    regression = dataset.task == "regression"
    if given is None:
        return ["mae"] if regression else ["accuracy"]
    allowed = REGRESSION_METRICS if regression else CLASSIFICATION_METRICS
    for m in given:
        if m not in allowed:
            raise ConfigError(
                config.source,
                "training.metrics",
                f"{m!r} does not apply to a {dataset.task} task",
                f"use {', '.join(allowed)}",
            )
    return list(given)


def _primary_metric(config: ExperimentConfig, metrics: list[str]) -> str:
    names = ["loss", "val_loss", "train_val_gap"]
    for m in metrics:
        names += [m, f"val_{m}"]
    metric = config.experiment.metric or (f"val_{metrics[0]}" if metrics else "val_loss")
    if metric not in names:
        raise ConfigError(
            config.source,
            "experiment.metric",
            f"unknown metric {metric!r}{close_match(metric, names)}",
            f"use one of {', '.join(names)}",
        )
    return metric


def _check_monitors(config: ExperimentConfig, metrics: list[str]) -> None:
    names = ["loss", "val_loss", *metrics, *(f"val_{m}" for m in metrics)]
    for label, entry in config.schedules.items():
        if entry["plateau"] is not None and entry["monitor"] not in names:
            raise ConfigError(
                config.source,
                f"schedules.{label}.monitor",
                f"{entry['monitor']!r} is not logged{close_match(entry['monitor'], names)}",
                f"use one of {', '.join(names)}",
            )


def _baseline(config: ExperimentConfig, labels: list[str]) -> str:
    baseline = config.experiment.baseline
    if baseline is None:
        return labels[0]
    baseline = baseline.replace("\x00", "")  # as in the labels
    if baseline in labels:
        return baseline
    raise ConfigError(
        config.source,
        "experiment.baseline",
        f"{baseline!r} is not a config of this experiment{close_match(baseline, labels)}",
        f"use one of {', '.join(labels[:8])}{' ...' if len(labels) > 8 else ''}",
    )


def _rescaled(config: ExperimentConfig, label: str, schedule: Any, factor: float) -> Any:
    """``scale(factor, schedule)``; a factor the float range cannot hold names the lr."""
    from lrlab.schedules import Scale

    try:
        return Scale(float(f"{factor:.15g}"), schedule)
    except LrlabError as err:
        raise _fail(
            config, "experiment.lrs", f"schedules.{label}: {err}", "use smaller lrs"
        ) from None


def _refuse_overflow(config, label: str, schedule: Any, steps_per_epoch: int, unit: str) -> None:
    """Refuse an lr beyond float32, the training's number type (it trained as inf, with
    overflow warnings); ``peak`` (an upper bound) spares most schedules the exact check."""
    limit = float(np.finfo(np.float32).max)
    if schedule.peak <= limit:
        return
    top = float(np.max(schedule.per_update(config.training.epochs, steps_per_epoch, unit)))
    if top > limit:
        raise _fail(
            config,
            f"schedules.{label}",
            f"{schedule} reaches lr {top:.3g}, beyond float32 ({limit:.3g}), which training uses",
            "give it a smaller lr",
        )


def _grid(config: ExperimentConfig, steps_per_epoch: int) -> list[GridPoint]:
    """The configs in grid order (schedules x optimizers x lrs); trials add the seeds."""
    exp, training = config.experiment, config.training
    lrs: list[float | None] = list(exp.lrs) if exp.lrs else [None]
    many_opts = len(config.optimizers) > 1
    configs: list[GridPoint] = []
    only = _pairings(config)
    for sched_label, entry in config.schedules.items():
        schedule, plateau = config.parsed_schedule(sched_label)
        unit = entry["unit"] or training.schedule_unit
        peak = None
        if exp.lrs:
            table = schedule.per_update(training.epochs, steps_per_epoch, unit)
            peak = float(np.max(table))
            if not peak > 0:
                raise ConfigError(
                    config.source,
                    f"schedules.{sched_label}",
                    f"{entry['spec']} never rises above 0, so lrs cannot rescale it",
                    "give it a positive lr",
                )
        for opt_label, opt in config.optimizers.items():
            if opt_label in only and sched_label not in only[opt_label]:
                continue
            settings = OptimizerSettings.from_dict(
                {k: v for k, v in opt.items() if k != "schedules"}
            )
            for lr in lrs:
                trained = schedule
                if lr is not None and peak is not None and not np.isclose(lr, peak, rtol=1e-12):
                    trained = _rescaled(config, sched_label, schedule, lr / peak)
                _refuse_overflow(config, sched_label, trained, steps_per_epoch, unit)
                parts = [sched_label]
                if many_opts:
                    parts.append(opt_label)
                if lr is not None and len(lrs) > 1:
                    parts.append(f"lr={lr:g}")
                label = " / ".join(parts).replace("\x00", "")  # NUL: invisible, breaks CSV
                configs.append(
                    GridPoint(
                        label,
                        sched_label,
                        trained,
                        plateau,
                        entry["monitor"],
                        unit,
                        opt_label,
                        settings,
                        lr,
                        entry.get("function"),
                    )
                )
    labels = [c.label for c in configs]
    if len(set(labels)) != len(labels):
        raise ConfigError(
            config.source, "schedules", "two configs get the same label", "rename a schedule"
        )
    return configs


def count_trials(config: ExperimentConfig, seeds: int | None = None) -> int:
    """The plan's trial count from the file alone (nothing loaded or built):
    (schedule, optimizer) pairs x lrs x seeds (``seeds``: a count replacing the file's).
    """
    only = _pairings(config)
    pairs = sum(
        1
        for opt in config.optimizers
        for sched in config.schedules
        if opt not in only or sched in only[opt]
    )
    lrs = len(config.experiment.lrs or [None])
    return pairs * lrs * (len(config.seeds) if seeds is None else seeds)


def _pairings(config: ExperimentConfig) -> dict[str, list[str]]:
    """Optimizers restricted to some schedules (their ``schedules`` list), checked."""
    only = {}
    for label, opt in config.optimizers.items():
        if opt.get("schedules") is None:
            continue
        if not opt["schedules"]:
            raise ConfigError(
                config.source,
                f"optimizers.{label}.schedules",
                "lists no schedule, so the optimizer would train nothing",
                "name schedules from [schedules], or remove the list to pair it with all",
            )
        for name in opt["schedules"]:
            if name not in config.schedules:
                raise ConfigError(
                    config.source,
                    f"optimizers.{label}.schedules",
                    f"no schedule {name!r}{close_match(name, config.schedules)}",
                    f"use labels from [schedules]: {', '.join(config.schedules)}",
                )
        only[label] = list(opt["schedules"])
    free = len(only) < len(config.optimizers)  # an optimizer without a list pairs with all
    for label in config.schedules:
        if not free and not any(label in names for names in only.values()):
            raise ConfigError(
                config.source,
                f"schedules.{label}",
                "no optimizer pairs with it (every optimizer lists its schedules)",
                "add it to an optimizer's schedules, or remove it",
            )
    return only


def verify_model(plan: Plan) -> None:
    """Build the model once (on the data's shape) so shape errors stop the run before it starts."""
    ds = plan.dataset
    try:
        plan.model.build(ds.input_shape, ds.task, ds.n_classes, 0)
    except LrlabError as err:
        raise _fail(plan.config, "model.spec", err) from None
    except Exception as err:  # a user model function failing in Keras
        raise ConfigError(
            plan.config.source,
            "model.spec",
            f"building the model failed ({type(err).__name__}: {str(err).splitlines()[0][:160]})",
            "check the model against the data's shape",
        ) from None
