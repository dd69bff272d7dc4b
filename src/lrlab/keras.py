"""``lrlab.keras``: any lrlab schedule is the lr a Keras 3 model trains with, update by update.

This module is named ``keras`` inside the ``lrlab`` package; imports are absolute, so
``import keras`` (here included) is Keras itself.

Two ways in, both exact per update (step ``t`` = the optimizer update, 0 first):

- :func:`schedule` turns a spec into a ``keras.optimizers.schedules.LearningRateSchedule``.
  The optimizer evaluates it inside its own (jitted) update at ``optimizer.iterations``,
  through ``keras.ops``, so it costs nothing per batch and works on every backend. It
  is registered as ``lrlab>KerasSchedule`` and its config is the canonical spec
  string, so a compiled model saves to ``.keras`` and loads back with no
  ``custom_objects`` in any process that did ``import lrlab``. Use it whenever the
  schedule needs neither a metric nor epochs.
- :class:`Scheduler` is a callback for what a ``LearningRateSchedule`` cannot do:
  reduce-on-plateau composed with *any* schedule (``lr = schedule(t) * scale``; Keras'
  own ``ReduceLROnPlateau`` refuses an optimizer that has a schedule), schedules
  written in epochs (``per="epoch"``, or ``steps_per_epoch`` for fractional epochs),
  and a record of the lr of every update. The optimizer must be compiled with a float
  ``learning_rate``; the callback assigns it before each update (or each epoch).

  With the JAX backend, ``fit`` keeps the optimizer's variables inside the jitted
  train step's state for a whole epoch, so an lr assigned between batches is lost
  unless the state is first synced back to the variables (``fit`` then re-reads it,
  new lr included, for the next step). The callback calls ``model.jax_state_sync()``
  before each per-update assignment (Keras' ``Callback.model`` property also syncs on
  access); the price is one sync of the model's variables per batch
  (``bench/keras_scheduler.py`` measures it). Per-epoch assignments need no sync.

:func:`legacy_decay` is Keras 2's ``SGD(decay=...)`` and :func:`find_lr` runs the LR range
test of :mod:`lrlab.range_test` on a compiled model.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from lrlab.controllers.plateau import PlateauController, PlateauState
from lrlab.errors import LrlabError
from lrlab.integrations._common import as_plateau, curve_schedule
from lrlab.integrations.horizon import check, warn_findings
from lrlab.range_test import LossWatch, RangeTest, batch_sampler, check_settings
from lrlab.schedules import Constant, Plateau, Schedule, TimeDecay
from lrlab.schedules.table import Table, function_name, tabulate, takes_lr
from lrlab.spec import parse

__all__ = ["KerasSchedule", "Scheduler", "find_lr", "legacy_decay", "schedule"]


# --------------------------------------------------------------------------- schedule
@keras.saving.register_keras_serializable(package="lrlab")
class KerasSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """An lrlab schedule as a Keras ``LearningRateSchedule`` (see :func:`schedule`).

    ``__call__(step)`` casts the step to ``floatx`` and evaluates the schedule with
    ``xp=keras.ops``; ``get_config()`` is ``{"spec": <canonical spec>}``.
    """

    def __init__(self, spec: str | Schedule):
        self.schedule = curve_schedule(spec)
        self.spec = str(self.schedule)

    def __call__(self, step: Any) -> Any:
        t = keras.ops.cast(step, keras.config.floatx())
        return self.schedule(t, xp=keras.ops)

    def get_config(self) -> dict[str, str]:
        return {"spec": self.spec}

    def __repr__(self) -> str:
        return f"lrlab.keras.schedule({self.spec!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KerasSchedule) and other.spec == self.spec

    def __hash__(self) -> int:
        return hash(self.spec)


def schedule(spec: str | Schedule) -> KerasSchedule:
    """A Keras ``LearningRateSchedule`` that is the lrlab schedule ``spec``, per update.

    Pass it as an optimizer's ``learning_rate``: update ``t`` (``optimizer.iterations``
    before the update) uses ``spec(t)``, computed in ``floatx`` inside the train step.

    Raises:
        LrlabError: the spec does not parse or is ``plateau(...)`` (use :class:`Scheduler`).

    >>> s = schedule("warmup(2, constant(0.1))")
    >>> s.get_config()
    {'spec': 'warmup(2, constant(0.1))'}
    >>> [round(float(s(t)), 6) for t in range(4)]
    [0.0, 0.05, 0.1, 0.1]
    """
    return KerasSchedule(spec)


def legacy_decay(lr: float, decay: float) -> KerasSchedule:
    """Keras 2's ``SGD(lr=lr, decay=decay)`` learning rate for Keras 3 optimizers.

    Keras 2 applied ``lr / (1 + decay * iterations)`` at every update, with
    ``iterations`` the number of updates done before it; Keras 3 ignores ``decay=``
    with a warning. This is ``schedule(time_decay(lr, decay=decay))``: write
    ``SGD(learning_rate=lrlab.keras.legacy_decay(0.1, 0.002), momentum=0.8)`` for Keras 2's
    ``SGD(lr=0.1, decay=0.002, momentum=0.8)`` (``lrlab migrate`` writes that line).

    >>> s = legacy_decay(0.1, 0.002)
    >>> s.spec
    'time_decay(0.1, decay=0.002)'
    >>> round(float(s(100)), 7)
    0.0833333
    """
    return KerasSchedule(TimeDecay(lr, decay=decay))


# --------------------------------------------------------------------------- callback
class Scheduler(keras.callbacks.Callback):
    """Callback: set the optimizer's lr from a schedule (x a plateau scale) at every update.

    The lr of update ``t`` (counted from ``optimizer.iterations`` when ``fit`` starts, so
    a second ``fit`` continues the schedule) is

    - ``per="step"``: ``spec(t) * scale``, or ``spec(t / steps_per_epoch) * scale`` when
      ``steps_per_epoch`` is given (the spec then counts epochs, evaluated at fractional
      epochs);
    - ``per="epoch"``: ``spec(epoch) * scale`` for every update of the epoch (Keras'
      ``LearningRateScheduler``, set in ``on_epoch_begin``).

    ``spec`` may be a Python function, as Keras' ``LearningRateScheduler`` takes it:
    ``fn(epoch, lr)`` (``lr`` = the lr it returned the epoch before, the optimizer's lr
    at the first) or ``fn(epoch)``; with ``per="step"`` it gets the update index instead
    of the epoch. It is evaluated once when ``fit`` starts, over ``fit``'s epochs, into
    a :class:`~lrlab.schedules.Table` (``scheduler.schedule``), which then runs like any
    spec; a function that raises or returns anything but a finite lr >= 0 is an
    :class:`~lrlab.errors.LrlabError` naming the function and the epoch.

    ``scale`` is 1 without ``plateau``. With ``plateau`` (a ``plateau(...)`` spec or a
    :class:`~lrlab.schedules.Plateau`), ``logs[monitor]`` is fed at each epoch end to a
    :class:`~lrlab.controllers.plateau.PlateauController` (Keras semantics: reduce on the
    ``patience``-th epoch without an improvement of more than ``min_delta``; ``min_lr``
    bounds reductions of ``spec(t) * scale``); a reduction applies from the next update.
    A bare ``plateau(...)`` as ``spec`` is Keras' ``ReduceLROnPlateau``: the schedule is
    the optimizer's lr when training starts. A missing ``monitor`` raises
    :class:`~lrlab.errors.LrlabError` unless it was present at an earlier epoch (then the
    epoch is skipped, as with ``validation_freq``).

    Records: ``scheduler.lrs`` holds the lr read back from the optimizer before every
    update (float32, what the train step receives); ``History.history["learning_rate"]``
    gets, per epoch, the lr of the epoch's last update (Keras' own convention and key);
    ``scheduler.state`` is the plateau state.

    Needs an optimizer compiled with a float ``learning_rate``; with ``per="step"`` also
    ``steps_per_execution=1`` (Keras calls batch hooks once per execution) and no
    ``gradient_accumulation_steps`` (the callback counts batches, not updates). For those,
    and whenever no metric is involved, use :func:`schedule` instead.
    """

    def __init__(
        self,
        spec: str | Schedule | Callable[..., Any],
        steps_per_epoch: int | None = None,
        plateau: str | Plateau | None = None,
        monitor: str = "val_loss",
        per: str = "step",
        verbose: int = 0,
    ):
        super().__init__()
        if per not in ("step", "epoch"):
            raise LrlabError(f"Scheduler: per must be 'step' or 'epoch', got {per!r}")
        #: a Python lr function given as ``spec`` (tabulated when training starts)
        self.function: Callable[..., Any] | None = None
        if callable(spec) and not isinstance(spec, Schedule):
            self.function = spec
            takes_lr(spec, function_name(spec))  # refuse a function needing a metric now
            value = None
        else:
            value = parse(spec)
        if value is not None and value.reactive:
            if plateau is not None:
                raise LrlabError(
                    f"Scheduler: spec {value} is a plateau and plateau= is given too; "
                    "pass the schedule as spec and the plateau as plateau="
                )
            plateau, value = value, None
        self.schedule: Schedule | None = None if value is None else curve_schedule(value)
        self.plateau = as_plateau(plateau)
        if steps_per_epoch is not None:
            if self.function is not None:
                raise LrlabError(
                    "Scheduler: a function gets the epoch (per='epoch') or the update index "
                    "(per='step'); steps_per_epoch does not apply to it"
                )
            if per == "epoch":
                raise LrlabError(
                    "Scheduler: steps_per_epoch only applies with per='step' "
                    "(per='epoch' evaluates the spec at the epoch number)"
                )
            if isinstance(steps_per_epoch, bool) or not isinstance(steps_per_epoch, int):
                raise LrlabError(
                    f"Scheduler: steps_per_epoch must be an integer, got {steps_per_epoch!r}"
                )
            if steps_per_epoch < 1:
                raise LrlabError(f"Scheduler: steps_per_epoch must be >= 1, got {steps_per_epoch}")
        self.steps_per_epoch = steps_per_epoch
        self.monitor = monitor
        self.per = per
        self.verbose = verbose
        self._controller = PlateauController(self.plateau) if self.plateau else None
        self.state: PlateauState | None = self._controller.initial() if self._controller else None
        self.lrs: list[float] = []
        self.step = 0
        self._lr = math.nan
        self._monitor_seen = False

    # -- the lr -----------------------------------------------------------------
    @property
    def scale(self) -> float:
        """The plateau scale now (1.0 without plateau)."""
        return 1.0 if self.state is None else self.state.scale

    def base_lr(self, t: float) -> float:
        """The schedule's value (before the plateau scale) at ``t`` (update or epoch)."""
        if self.per == "step" and self.steps_per_epoch is not None:
            t = t / self.steps_per_epoch
        return float(self.schedule(t))

    def _set_lr(self, lr: float) -> float:
        """Assign ``lr`` to the optimizer; return the value read back (float32)."""
        model = self.model
        if keras.backend.backend() == "jax":
            # fit() holds the optimizer variables in the jitted step's state within an
            # epoch; after a sync it re-reads them, new lr included, for the next step.
            model.jax_state_sync()
        model.optimizer.learning_rate = lr
        return _read_lr(model.optimizer)

    # -- hooks -------------------------------------------------------------------
    def on_train_begin(self, logs=None) -> None:
        optimizer = self.model.optimizer
        if not isinstance(optimizer.learning_rate, keras.Variable):
            raise LrlabError(
                "Scheduler needs an optimizer compiled with a float learning_rate, but it "
                "has a LearningRateSchedule; compile with e.g. SGD(learning_rate=0.1), or "
                "drop the callback and keep the schedule"
            )
        if self.per == "step" and getattr(self.model, "steps_per_execution", 1) > 1:
            raise LrlabError(
                "Scheduler(per='step') needs compile(steps_per_execution=1): Keras calls "
                "batch callbacks once per execution; use lrlab.keras.schedule(spec) as the "
                "optimizer's learning_rate instead"
            )
        if self.per == "step" and getattr(optimizer, "gradient_accumulation_steps", None):
            raise LrlabError(
                "Scheduler(per='step') counts batches, but the optimizer accumulates "
                "gradients over several; use lrlab.keras.schedule(spec) as its learning_rate"
            )
        if self.function is not None:
            self.schedule = self._tabulate(optimizer)
        elif self.schedule is None:  # bare plateau: Keras' ReduceLROnPlateau
            self.schedule = Constant(_read_lr(optimizer))
        self.step = int(keras.ops.convert_to_numpy(optimizer.iterations))
        self._check_horizon()
        self._lr = _read_lr(optimizer)

    def _check_horizon(self) -> None:
        """Warn (:class:`~lrlab.integrations.horizon.HorizonWarning`) when the schedule's
        horizon does not fit ``fit``'s ``epochs`` x ``steps`` (``self.params``)."""
        epochs, steps = self.params.get("epochs"), self.params.get("steps")
        if not epochs or not steps:  # a dataset of unknown length: nothing to check
            return
        counts_epochs = self.per == "epoch" or self.steps_per_epoch is not None
        unit = "epoch" if counts_epochs else "step"
        # per step, a second fit continues from optimizer.iterations: count what is done
        done = round(self.step / steps) if self.per == "step" else 0
        findings = check(self.schedule, epochs=done + epochs, steps_per_epoch=steps, unit=unit)
        warn_findings(self.schedule, findings, "lrlab.keras.Scheduler")

    def _tabulate(self, optimizer: keras.optimizers.Optimizer) -> Table:
        """The function's values over this ``fit``: per epoch (or update with
        ``per="step"``) from the optimizer's lr now, as Keras' ``LearningRateScheduler``
        calls it (:func:`lrlab.schedules.table.tabulate`)."""
        epochs = self.params.get("epochs") if self.params else None
        length = epochs
        if self.per == "step":
            steps = self.params.get("steps")
            if not steps:
                raise LrlabError(
                    "Scheduler(fn, per='step') needs the number of updates per epoch; "
                    "pass steps_per_epoch to fit"
                )
            length = epochs * steps
        return tabulate(
            self.function,
            length,
            unit=self.per,
            lr=_read_lr(optimizer),
            name=function_name(self.function),
        )

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        if self.per == "epoch":
            self._lr = self._set_lr(self.base_lr(epoch) * self.scale)

    def on_train_batch_begin(self, batch: int, logs=None) -> None:
        if self.per == "step":
            self._lr = self._set_lr(self.base_lr(self.step) * self.scale)
        self.lrs.append(self._lr)
        self.step += 1

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        logs = logs if logs is not None else {}
        logs["learning_rate"] = self._lr
        if self._controller is None:
            return
        metric = logs.get(self.monitor)
        if metric is None:
            if self._monitor_seen:
                return
            have = ", ".join(sorted(k for k in logs if k != "learning_rate")) or "nothing"
            raise LrlabError(
                f"Scheduler: monitor {self.monitor!r} is not in the epoch logs (have: {have}); "
                "pass validation data to fit or choose monitor= among those"
            )
        self._monitor_seen = True
        last = self.step - 1 if self.per == "step" else epoch
        before = self.state.reductions
        self.state = self._controller.update(
            self.state, float(metric), lr=self.base_lr(max(last, 0))
        )
        if self.verbose and self.state.reductions > before:
            print(
                f"\nEpoch {epoch + 1}: lrlab Scheduler: {self.monitor} stalled, lr scale "
                f"now {self.state.scale:.4g}"
            )


def _read_lr(optimizer: keras.optimizers.Optimizer) -> float:
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


# --------------------------------------------------------------------------- range test
def find_lr(
    model: keras.Model,
    x: Any,
    y: Any,
    start: float = 1e-7,
    end: float = 10.0,
    steps: int = 100,
    batch_size: int = 32,
    smoothing: float = 0.98,
    diverge: float = 4.0,
    seed: int = 0,
) -> RangeTest:
    """LR range test (Smith 2017; fastai's ``lr_find``, Lightning's ``lr_find``).

    Trains the compiled ``model`` for up to ``steps`` updates on shuffled batches of
    ``(x, y)`` while the lr ramps exponentially from ``start`` to ``end``
    (``lr_range(start, end, steps)``), recording each batch's loss. It stops early when
    the loss is not finite or the smoothed loss exceeds ``diverge`` x its best. The
    model's weights and its optimizer's variables (slots, iterations, lr) are restored
    afterwards, also when an error interrupts the test.

    Args:
        model: a compiled model whose optimizer has a float ``learning_rate``.
        x, y: training arrays (or nested structures of arrays, as ``fit`` takes).
        start, end, steps: the ramp, ``start * (end / start) ** (t / (steps - 1))``.
        batch_size: samples per update.
        smoothing: weight ``b`` of the loss average (see :func:`lrlab.range_test.smooth_losses`).
        diverge: stop when the smoothed loss exceeds this multiple of the best one.
        seed: seed of the batch shuffling.

    Returns:
        A :class:`RangeTest` with the lrs, losses, smoothed losses and suggestions.
    """
    ramp = check_settings(start, end, steps, batch_size, smoothing, diverge)
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        raise LrlabError(
            "find_lr: compile the model first (model.compile(optimizer=..., loss=...))"
        )
    x, y = keras.tree.map_structure(np.asarray, (x, y))  # DataFrames, lists, tensors
    n = len(keras.tree.flatten(x)[0])
    take = batch_sampler(n, batch_size, np.random.default_rng(seed))
    _build(model, keras.tree.map_structure(lambda a: a[:batch_size], x))
    if not isinstance(optimizer.learning_rate, keras.Variable):
        raise LrlabError(
            "find_lr needs an optimizer with a float learning_rate (it sets the lr per "
            "batch); compile the model with e.g. SGD(learning_rate=0.01) for the test"
        )
    weights = [np.array(w) for w in model.get_weights()]
    slots = [np.array(keras.ops.convert_to_numpy(v)) for v in optimizer.variables]
    lrs: list[float] = []
    losses: list[float] = []
    watch = LossWatch(smoothing, diverge)
    stopped = False
    try:
        for t in range(steps):
            idx = take()
            optimizer.learning_rate = float(ramp(t))
            lrs.append(_read_lr(optimizer))
            batch = keras.tree.map_structure(lambda a, i=idx: a[i], (x, y))
            logs = model.train_on_batch(*batch, return_dict=True)
            losses.append(float(logs["loss"]))
            if watch.observe(losses[-1]):
                stopped = True
                break
    finally:
        model.set_weights(weights)
        for variable, value in zip(optimizer.variables, slots, strict=True):
            variable.assign(value)
        model.reset_metrics()
    return RangeTest.from_run(lrs, losses, smoothing, stopped)


def _build(model: keras.Model, x_batch: Any) -> None:
    """Create every model and optimizer variable before they are saved, as fit would."""
    if not model.built:
        model(x_batch)
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
