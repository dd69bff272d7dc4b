"""The reference engine: one Keras ``fit`` per trial, the lr set for every update.

Per trial:

1. the split for the trial's split seed (standardized on its training rows);
2. the model built from the trial's init seed (``keras.utils.set_random_seed`` plus a
   seed per layer initializer), compiled with the trial's optimizer, the task's loss and
   the experiment's metrics;
3. batches in :func:`lrlab.experiments.datasets.batch_order` for the order seed;
4. a schedule-free optimizer is validated at its averaged weights
   (:class:`~.keras_schedule_free.ScheduleFreeEvaluation`; Keras' own ``fit`` would use
   the training weights);
5. the lr comes from lrlab's Keras integration: ``lrlab.keras.schedule(spec)`` as the
   optimizer's ``LearningRateSchedule`` (evaluated inside the compiled step at
   ``optimizer.iterations``: exact per update, no callback cost) for schedules in steps;
   the ``lrlab.keras.Scheduler`` callback for ``schedule_unit = "epoch"`` (set at each
   epoch start) and for ``plateau=`` (``spec(t) * scale`` before each update, the scale
   moved by the plateau controller at each epoch end).

A NaN/inf loss stops the trial at that epoch (status ``diverged``); an exception makes
it ``failed``; both are results, not crashes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from typing import Any

import keras
import numpy as np

from lrlab.experiments.datasets import Split, batch_order
from lrlab.experiments.engines.base import Engine
from lrlab.experiments.engines.frozen_base import BaseFeatures
from lrlab.experiments.engines.keras_schedule_free import ScheduleFreeEvaluation
from lrlab.experiments.optimizers import OPTIMIZERS
from lrlab.experiments.stopping import StopRequest
from lrlab.experiments.trial import Trial, TrialResult, final_metrics, first_bad_epoch

__all__ = ["KerasEngine", "make_metrics", "make_optimizer"]


class KerasEngine(Engine):
    """Train each trial with ``model.fit`` (any model Keras can build)."""

    name = "keras"

    def describe(self) -> str:
        return "keras fit, one trial at a time"

    def __init__(self, stop: StopRequest | None = None):
        """``stop``: checked before each trial (a recorded signal stops the run there)."""
        self.stop = stop
        self.base_features = BaseFeatures()  # a frozen base's outputs, once per split

    def run(self, plan, trials: Sequence[Trial]) -> Iterator[TrialResult]:
        for trial in trials:
            self.check_stop()
            started, t0 = time.time(), time.perf_counter()
            try:
                epochs = fit_trial(plan, trial, base_features=self.base_features)
            except Exception as err:
                message = f"{type(err).__name__}: {str(err).strip().splitlines()[0][:300]}"
                if not str(err).strip():
                    message = type(err).__name__
                yield TrialResult(
                    trial,
                    "failed",
                    message=message,
                    started=started,
                    seconds=time.perf_counter() - t0,
                    engine=self.name,
                )
                continue
            finally:
                keras.backend.clear_session(free_memory=False)
            bad = first_bad_epoch(epochs)
            yield TrialResult(
                trial,
                "diverged" if bad is not None else "ok",
                epochs=epochs,
                final=final_metrics(epochs, plan.metrics[0] if plan.metrics else None),
                diverged_epoch=bad,
                started=started,
                seconds=time.perf_counter() - t0,
                engine=self.name,
            )


def make_optimizer(params: dict[str, Any], learning_rate: Any):
    """A Keras optimizer from the file's ``{type, ...}`` table and an lr (float or schedule).

    >>> opt = make_optimizer({"type": "sgd", "momentum": 0.8}, 0.1)
    >>> type(opt).__name__, float(opt.momentum)
    ('SGD', 0.8)
    """
    kwargs = dict(params)
    cls = getattr(keras.optimizers, OPTIMIZERS[kwargs.pop("type")].keras_class)
    return cls(learning_rate=learning_rate, **kwargs)


def make_metrics(names: Sequence[str], task: str) -> list[Any]:
    """Keras metric objects named exactly as lrlab stores them (``accuracy``, ``auc``...)."""
    out = []
    for name in names:
        if name == "accuracy":
            cls = keras.metrics.BinaryAccuracy if task == "binary" else None
            out.append(
                cls(name="accuracy")
                if cls
                else keras.metrics.SparseCategoricalAccuracy(name="accuracy")
            )
        elif name == "auc":
            out.append(keras.metrics.AUC(name="auc"))
        elif name == "precision":
            out.append(keras.metrics.Precision(name="precision"))
        elif name == "recall":
            out.append(keras.metrics.Recall(name="recall"))
        elif name == "mae":
            out.append(keras.metrics.MeanAbsoluteError(name="mae"))
        elif name == "mse":
            out.append(keras.metrics.MeanSquaredError(name="mse"))
        else:  # pragma: no cover - the config validated the names
            raise ValueError(name)
    return out


def loss_for(plan):
    """The Keras loss of the plan's task (binary / multiclass cross-entropy, or MSE)."""
    from_logits = plan.config.model.from_logits
    task = plan.dataset.task
    if task == "binary":
        return keras.losses.BinaryCrossentropy(from_logits=from_logits)
    if task == "multiclass":
        return keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)
    return keras.losses.MeanSquaredError()


def targets_for(y: np.ndarray, task: str) -> np.ndarray:
    """Targets as the loss expects them: int32 class ids (multiclass), else float32."""
    return y.astype(np.int32) if task == "multiclass" else y.astype(np.float32)


def _batches(split: Split, task: str, order_seed: int, batch_size: int, epochs: int):
    x, y = split.x_train, targets_for(split.y_train, task)
    n = len(y)
    for epoch in range(epochs):
        order = batch_order(order_seed, epoch, n)
        for i in range(0, n, batch_size):
            rows = order[i : i + batch_size]
            yield x[rows], y[rows]


def fit_trial(
    plan, trial: Trial, callbacks: Sequence[Any] = (), base_features: BaseFeatures | None = None
) -> list[dict[str, float]]:
    """Train one trial with Keras ``fit``; return its per-epoch rows (epoch, lr, metrics).

    With ``base_features``, a model with a frozen deterministic base trains its head on
    the base's outputs, computed once per split (:mod:`.frozen_base`); the rows are the
    whole model's."""
    import lrlab.keras as lrlab_keras

    ds = plan.dataset
    split = plan.split(trial.split_seed)
    schedule = trial.schedule
    model = plan.model.build(ds.input_shape, ds.task, ds.n_classes, trial.init_seed)
    if base_features is not None:
        model, split = base_features.shortcut(model, split)
    own: list[Any] = []
    if trial.plateau is None and trial.unit == "step":
        learning_rate: Any = lrlab_keras.schedule(schedule)
    else:
        own.append(
            lrlab_keras.Scheduler(
                schedule, plateau=trial.plateau, monitor=trial.monitor, per=trial.unit
            )
        )
        learning_rate = float(schedule(0))
    optimizer = make_optimizer(trial.optimizer.to_dict(), learning_rate)
    model.compile(
        optimizer=optimizer, loss=loss_for(plan), metrics=make_metrics(plan.metrics, ds.task)
    )
    recorder = _Recorder()
    # The data order is fixed by the generator; Keras' own shuffling is off.
    keras.utils.set_random_seed(int(trial.order_seed) + 7919)
    model.fit(
        _batches(split, ds.task, trial.order_seed, plan.batch_size, plan.epochs),
        steps_per_epoch=plan.steps_per_epoch,
        epochs=plan.epochs,
        validation_data=(split.x_val, targets_for(split.y_val, ds.task)),
        validation_batch_size=min(len(split.y_val), 1024),
        shuffle=False,
        verbose=0,
        callbacks=[*own, ScheduleFreeEvaluation(), recorder, *callbacks],
    )
    return recorder.rows


class _Recorder(keras.callbacks.Callback):
    """Per-epoch rows with the lr of the epoch's last update; stops at a non-finite loss.

    The lr is read back: from ``logs["learning_rate"]`` when lrlab's ``Scheduler`` set it,
    else from the optimizer's schedule at its last update (``iterations - 1``).
    """

    def __init__(self):
        super().__init__()
        self.rows: list[dict[str, float]] = []

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if "learning_rate" in logs:
            lr = float(logs["learning_rate"])
        else:
            opt = self.model.optimizer
            last = keras.ops.convert_to_numpy(opt.iterations) - 1
            lr = float(keras.ops.convert_to_numpy(opt._learning_rate(max(int(last), 0))))
        row = {"epoch": epoch + 1, "lr": lr}
        row.update({k: float(v) for k, v in logs.items() if k != "learning_rate"})
        self.rows.append(row)
        if not all(math.isfinite(row.get(k, 0.0)) for k in ("loss", "val_loss")):
            self.model.stop_training = True
