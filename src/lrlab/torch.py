"""``lrlab.torch``: any lrlab schedule as a torch ``LRScheduler``, in closed form.

This module is named ``torch`` inside the ``lrlab`` package; imports are absolute, so
``import torch`` (here included) is PyTorch itself.

``lrlab.torch.scheduler(optimizer, spec, plateau=None)`` follows torch's conventions:
constructing it sets every param group's lr for update 0, and ``scheduler.step()``
(called after ``optimizer.step()``) advances the step ``t``. The lr of update ``t`` is
computed from the closed form every time, never by multiplying the previous lr, so it
does not drift and a resumed run continues exactly.

Param groups. One spec is the schedule of the optimizer's own lr (``optimizer.defaults
["lr"]``, the ``lr=`` given to its constructor); a group that set a different lr keeps its
ratio to it::

    lr_g(t) = spec(t) * initial_lr_g / optimizer.defaults["lr"] * scale

so ``SGD([{"params": body, "lr": 1e-4}, {"params": head}], lr=1e-3)`` with
``cosine(0.1, ...)`` runs the head on ``cosine(0.1)`` and the body on ``cosine(0.01)``;
a one-group optimizer simply follows the spec (its constructor lr is replaced). Give
a list of specs, one per group, to schedule each group on its own (ratio 1).
``initial_lr_g`` is torch's ``group["initial_lr"]`` (set to ``group["lr"]`` when absent).

Plateau. ``plateau=`` (a ``plateau(...)`` spec or :class:`~lrlab.schedules.Plateau`)
multiplies every group's lr by the scale of a
:class:`~lrlab.controllers.plateau.PlateauController` (Keras semantics, documented
there: reduce on the ``patience``-th non-improving evaluation, absolute ``min_delta``).
``scheduler.step(metrics=m)`` feeds ``m`` to the controller and advances ``t``; the
reduction applies from the update that follows. ``scheduler.observe(m)`` feeds a metric
without advancing ``t`` (a per-epoch metric with a per-update schedule). ``min_lr`` is
compared with the spec's own lr (group 0's spec when there is one per group); the one
scale then applies to every group. A bare ``plateau(...)`` spec is torch's
``ReduceLROnPlateau``: each group starts from its own lr. Translating torch's arguments:
torch's ``patience=p`` is lrlab's ``p + 1`` (torch reduces when the count *exceeds*
``p``), its ``cooldown=c`` is lrlab's ``c + 1`` (torch ignores ``c`` evaluations after a
reduction, Keras and lrlab ``c - 1``), ``threshold_mode="abs"`` with ``threshold`` is
``min_delta``, and torch's ``eps`` (skip reductions below 1e-8) has no counterpart; with
these the two give identical lrs (tested).

``state_dict()`` holds only numbers and strings (``torch.load(weights_only=True)``
reads it) and ``load_state_dict()`` re-applies the lrs of the restored step, so the
order of loading the optimizer and the scheduler does not matter.

>>> import torch
>>> from lrlab.torch import scheduler
>>> opt = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=1.0)
>>> sched = scheduler(opt, "warmup(2, cosine(0.1, decay_steps=4))")
>>> lrs = []
>>> for _ in range(7):
...     lrs.append(round(opt.param_groups[0]["lr"], 6))
...     opt.step()
...     sched.step()
>>> lrs
[0.0, 0.05, 0.1, 0.085355, 0.05, 0.014645, 0.0]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from lrlab.controllers.plateau import PlateauController, PlateauState
from lrlab.errors import LrlabError
from lrlab.integrations._common import as_plateau, curve_schedule
from lrlab.integrations.horizon import check, warn_findings
from lrlab.schedules import Constant, Plateau, Schedule
from lrlab.schedules.table import FunctionValues, function_name, takes_lr
from lrlab.spec import parse

__all__ = ["FunctionCurve", "ScheduleLR", "scheduler"]

SpecLike = str | Schedule


def scheduler(
    optimizer: Optimizer,
    spec: SpecLike | Sequence[SpecLike] | Callable[..., Any],
    plateau: str | Plateau | None = None,
    kind: str | None = None,
    *,
    total_steps: int | None = None,
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
    unit: str = "step",
) -> ScheduleLR:
    """A closed-form ``LRScheduler`` running ``spec`` (times a plateau scale) on ``optimizer``.

    Given the run's length (``total_steps``: the ``step()`` calls it will make; or
    ``epochs`` and ``steps_per_epoch``), each schedule's horizon is checked against it
    (:func:`lrlab.check`) and every finding is a
    :class:`~lrlab.integrations.horizon.HorizonWarning`. ``unit`` says when ``step()`` is
    called: ``"step"`` after each update, ``"epoch"`` after each epoch.

    Args:
        optimizer: any ``torch.optim.Optimizer``.
        spec: a spec string or schedule for the optimizer's lr (other groups keep their
            ratio to it), a list with one per param group, or a bare ``plateau(...)``
            (each group's own lr, reduced on plateau).
        plateau: ``plateau(...)`` spec or :class:`Plateau` composed with the schedule.
        kind: for a Python function as ``spec``: ``"factor"`` is torch's ``LambdaLR``
            (``lr_g = initial_lr_g * fn(t)``), ``"lr"`` a function giving the lr itself,
            ``fn(t)`` or Keras' ``fn(t, lr)`` (other groups keep their ratio, as for a
            spec). The function is evaluated once per step, as the run reaches it, and
            the values so far are part of ``state_dict`` (a resumed run continues them).

    Raises:
        LrlabError: a spec does not parse, the list length differs from the number of
            param groups, or group lrs cannot be related to the optimizer's lr.
    """
    if callable(spec) and not isinstance(spec, Schedule):
        made = ScheduleLR(optimizer, _function_curve(optimizer, spec, kind), plateau=plateau)
    elif kind is not None:
        raise LrlabError("kind= applies to a Python function as spec; a spec needs none")
    else:
        made = ScheduleLR(optimizer, spec, plateau=plateau)
    if total_steps is not None and (epochs is not None or steps_per_epoch is not None):
        raise LrlabError("give total_steps, or epochs and steps_per_epoch, not both")
    if epochs is None and steps_per_epoch is not None:
        raise LrlabError("steps_per_epoch needs epochs (the run's length in epochs)")
    if total_steps is not None:
        epochs, steps_per_epoch, unit = total_steps, 1, "step"
    if epochs is not None:
        for schedule in dict.fromkeys(s for s in made.schedules if isinstance(s, Schedule)):
            findings = check(
                schedule, epochs=epochs, steps_per_epoch=steps_per_epoch or 1, unit=unit
            )
            warn_findings(schedule, findings, "lrlab.torch.scheduler")
    return made


class FunctionCurve:
    """A Python function as a schedule of :class:`ScheduleLR` (see :func:`scheduler`'s
    ``kind``): its values at steps ``0, 1, ...``, evaluated once each
    (:class:`~lrlab.schedules.table.FunctionValues`)."""

    def __init__(self, values: FunctionValues, kind: str):
        self.values, self.kind = values, kind

    def __call__(self, t: Any) -> float:
        return self.values(t)

    def __str__(self) -> str:
        return f"function {self.values.name} (kind={self.kind!r})"


def _function_curve(optimizer: Optimizer, fn: Callable[..., Any], kind: str | None) -> Any:
    name = function_name(fn)
    if kind == "factor":
        if takes_lr(fn, name):
            raise LrlabError(f"{name}: a LambdaLR factor function takes the step only, fn(t)")
        return FunctionCurve(FunctionValues(fn, unit="step", name=name), kind)
    if kind == "lr":
        groups = optimizer.param_groups
        start = _reference_lr(optimizer, [_as_float(g.get("initial_lr", g["lr"])) for g in groups])
        return FunctionCurve(FunctionValues(fn, unit="step", lr=start, name=name), kind)
    raise LrlabError(
        f"{name} is a function: say what it gives, kind='factor' (torch's LambdaLR: a factor "
        "of each group's lr) or kind='lr' (the lr itself)"
    )


class ScheduleLR(LRScheduler):
    """``lr_g(t) = schedule_g(t) * ratio_g * plateau_scale`` (see the module docstring).

    Attributes:
        schedules: one schedule per param group.
        ratios: each group's factor on its schedule (1.0 with one spec per group).
        plateau: the :class:`Plateau` composed with the schedule, or ``None``.
        plateau_state: the controller's :class:`PlateauState` (``scale`` is the factor).
    """

    def __init__(
        self,
        optimizer: Optimizer,
        spec: SpecLike | Sequence[SpecLike],
        plateau: str | Plateau | None = None,
    ) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not a torch.optim.Optimizer")
        groups = optimizer.param_groups
        initial = [_as_float(g.get("initial_lr", g["lr"])) for g in groups]
        self.plateau = as_plateau(plateau)
        if isinstance(spec, FunctionCurve):
            self.schedules = [spec] * len(groups)
            self.ratios = initial if spec.kind == "factor" else _group_ratios(optimizer, initial)
        elif isinstance(spec, str | Schedule):
            single = parse(spec)
            if isinstance(single, Plateau):
                if self.plateau is not None:
                    raise LrlabError(f"spec {single} is a plateau and plateau= is given too")
                self.plateau = single
                single = Constant(_reference_lr(optimizer, initial))
            self.schedules = [curve_schedule(single)] * len(groups)
            self.ratios = _group_ratios(optimizer, initial)
        else:
            specs = list(spec)
            if len(specs) != len(groups):
                raise LrlabError(
                    f"got {len(specs)} specs for {len(groups)} param groups; give one spec "
                    "per group, or a single spec"
                )
            self.schedules = [
                curve_schedule(s, f"spec for param group {i}") for i, s in enumerate(specs)
            ]
            self.ratios = [1.0] * len(groups)
        self._controller = PlateauController(self.plateau) if self.plateau else None
        self.plateau_state = PlateauState()
        super().__init__(optimizer)

    # -- the closed form -------------------------------------------------------------
    def lrs_at(self, t: int) -> list[float]:
        """The lr of every param group at update ``t`` with the current plateau scale."""
        scale = self.plateau_state.scale
        return [s(t) * r * scale for s, r in zip(self.schedules, self.ratios, strict=True)]

    def get_lr(self) -> list[float]:
        return self.lrs_at(self.last_epoch)

    _get_closed_form_lr = get_lr

    # -- stepping --------------------------------------------------------------------
    def step(self, metrics: Any = None) -> None:  # type: ignore[override]
        """Advance to the next update; with ``metrics``, feed the plateau controller first.

        The metric's effect (a reduction) applies from the update that follows.
        """
        if metrics is not None:
            self._observe(metrics, self.last_epoch + 1)
        super().step()

    def observe(self, metrics: Any) -> None:
        """Feed a metric to the plateau controller without advancing the step.

        The next update uses the new scale; use it when the schedule advances per batch
        (``step()``) but the metric comes once per epoch.
        """
        self._observe(metrics, self.last_epoch)
        self._apply(self.lrs_at(self.last_epoch))

    def _observe(self, metrics: Any, t: int) -> None:
        if self._controller is None:
            raise LrlabError(
                "this scheduler has no plateau; pass plateau='plateau(...)' to "
                "lrlab.torch.scheduler to use step(metrics=...)"
            )
        try:
            value = float(metrics)
        except (TypeError, ValueError, RuntimeError):
            raise LrlabError(f"metrics must be one number, got {metrics!r:.80}") from None
        self.plateau_state = self._controller.update(
            self.plateau_state, value, self.schedules[0](t)
        )

    def _apply(self, lrs: list[float]) -> None:
        for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
            if isinstance(group["lr"], torch.Tensor):
                group["lr"].fill_(lr)
            else:
                group["lr"] = lr
        self._last_lr = [
            g["lr"].clone() if isinstance(g["lr"], torch.Tensor) else g["lr"]
            for g in self.optimizer.param_groups
        ]

    # -- checkpoints -----------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: plain numbers and strings only."""
        return {
            "last_epoch": self.last_epoch,
            "_step_count": self._step_count,
            "specs": [str(s) for s in self.schedules],
            "ratios": list(self.ratios),
            "plateau": str(self.plateau) if self.plateau else None,
            "plateau_state": self.plateau_state.to_dict(),
            "base_lrs": [_as_float(x) for x in self.base_lrs],
            **self._function_state(),
        }

    def _function_state(self) -> dict[str, Any]:
        curve = self.schedules[0]
        return {"function_values": list(curve.values.values)} if _is_function(curve) else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` and set the optimizer's lrs for the restored step.

        Raises:
            LrlabError: the state was saved by a scheduler with other specs, another
                plateau, or another number of param groups.
        """
        specs = [str(s) for s in self.schedules]
        plateau = str(self.plateau) if self.plateau else None
        for key, mine in (("specs", specs), ("plateau", plateau)):
            if state_dict.get(key) != mine:
                raise LrlabError(
                    f"scheduler state was saved with {key} {state_dict.get(key)!r}, this "
                    f"scheduler has {mine!r}; construct it with the same arguments to resume"
                )
        if len(state_dict["ratios"]) != len(self.optimizer.param_groups):
            raise LrlabError(
                f"scheduler state has {len(state_dict['ratios'])} param groups, the optimizer "
                f"has {len(self.optimizer.param_groups)}"
            )
        self.last_epoch = int(state_dict["last_epoch"])
        self._step_count = int(state_dict["_step_count"])
        self.ratios = [float(r) for r in state_dict["ratios"]]
        self.base_lrs = [float(x) for x in state_dict["base_lrs"]]
        self.plateau_state = PlateauState.from_dict(state_dict["plateau_state"])
        if _is_function(self.schedules[0]):
            self.schedules[0].values.values = [float(v) for v in state_dict["function_values"]]
        self._apply(self.lrs_at(self.last_epoch))


def _is_function(curve: Any) -> bool:
    return isinstance(curve, FunctionCurve)


def _as_float(value: Any) -> float:
    return float(value.item()) if isinstance(value, torch.Tensor) else float(value)


def _reference_lr(optimizer: Optimizer, initial: list[float]) -> float:
    """The optimizer's own lr (its constructor's ``lr=``), else group 0's."""
    default = optimizer.defaults.get("lr")
    return initial[0] if default is None else _as_float(default)


def _group_ratios(optimizer: Optimizer, initial: list[float]) -> list[float]:
    reference = _reference_lr(optimizer, initial)
    if reference > 0:
        return [lr / reference for lr in initial]
    if any(lr != reference for lr in initial):
        raise LrlabError(
            f"param groups have lrs {initial} but the optimizer's lr is {reference}, so their "
            "ratio to the spec is undefined; give one spec per param group"
        )
    return [1.0] * len(initial)
