"""``lrlab.optax``: any lrlab schedule as an optax schedule, injected into any optax optimizer.

This module is named ``optax`` inside the ``lrlab`` package; imports are absolute, so
``import optax`` here is optax itself.

- :func:`schedule` turns a spec into an optax schedule ``count -> lr``: the lrlab
  schedule evaluated with ``xp=jax.numpy``, so it runs on Python ints and traced
  arrays alike (``jit``, ``vmap``, ``lax.scan``).
- :func:`inject` builds ``optax.inject_hyperparams(optimizer_factory)(learning_rate=...)``:
  the lr of every update is readable as ``opt_state.hyperparams["learning_rate"]``
  (after an update it holds the lr that update used).
- ``inject(..., plateau="plateau(...)")`` composes reduce-on-plateau with the schedule:
  ``lr = schedule(t) * scale``. Pass the metric as ``update(grads, state, params,
  value=metric)``; the scale moves *before* that update uses it (as in
  ``optax.contrib.reduce_on_plateau``); updates without ``value`` leave it alone, so a
  per-epoch metric goes with the first update of the next epoch. The scale follows
  lrlab's :class:`~lrlab.controllers.plateau.PlateauController` exactly (Keras
  semantics), not ``optax.contrib.reduce_on_plateau``, which differs in four ways:
  its tolerance is relative (``rtol``) as well as absolute, it only minimises, its
  ``min_scale`` bounds the scale rather than the lr, and its ``cooldown=c`` ignores
  ``c`` evaluations where Keras (and lrlab) ignore ``c - 1``. :class:`PlateauSchedule`
  runs the controller's own transition
  (:func:`~lrlab.controllers.plateau.plateau_transition`) with ``xp=jax.numpy``, so it
  is ``jit``-safe; tests check it against the controller on random metric sequences.

>>> import jax, jax.numpy as jnp, optax
>>> from lrlab.optax import inject, schedule
>>> lr = schedule("warmup(2, cosine(0.1, decay_steps=4))")
>>> [round(float(v), 6) for v in jax.jit(jax.vmap(lr))(jnp.arange(7))]
[0.0, 0.05, 0.1, 0.085355, 0.05, 0.014645, 0.0]
>>> opt = inject(optax.sgd, "cosine(0.1, decay_steps=4)", momentum=0.9)
>>> params = jnp.zeros(3)
>>> state = opt.init(params)
>>> used = []
>>> for _ in range(5):
...     updates, state = opt.update(jnp.ones(3), state, params)
...     used.append(round(float(state.hyperparams["learning_rate"]), 6))
>>> used
[0.1, 0.085355, 0.05, 0.014645, 0.0]
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from lrlab.controllers.plateau import PlateauParams, plateau_transition
from lrlab.errors import LrlabError
from lrlab.integrations._common import as_plateau, curve_schedule
from lrlab.schedules import Plateau, Schedule
from lrlab.schedules.table import function_name, tabulate

__all__ = ["PlateauSchedule", "PlateauScheduleState", "inject", "schedule"]


def schedule(
    spec: str | Schedule | Callable[..., Any],
    total_steps: int | None = None,
    initial_lr: float | None = None,
) -> Callable[[Any], jax.Array]:
    """An optax schedule ``count -> lr`` for ``spec`` (``jit``- and ``vmap``-safe).

    The value is ``parse(spec)(count, xp=jax.numpy)``, in jax's default float dtype.

    ``spec`` may be a Python function ``fn(count)``: one that jax can trace is already an
    optax schedule and is returned as it is; any other (Python control flow on the
    count, ``math`` calls, Keras' ``fn(count, lr)`` from ``initial_lr``) is evaluated once per
    update over ``total_steps`` (:func:`lrlab.schedules.table.tabulate`) into a
    ``table(..., unit="step")``, which holds its last value after ``total_steps``.

    >>> lr = schedule("exponential(0.1, decay_steps=10, decay_rate=0.5)")
    >>> float(lr(10))
    0.05000000074505806

    Raises:
        LrlabError: the spec does not parse or is a bare ``plateau(...)`` (no curve).
    """
    if callable(spec) and not isinstance(spec, Schedule):
        if initial_lr is None and _traceable(spec):
            return spec
        if total_steps is None:
            raise LrlabError(
                f"{function_name(spec)} cannot be traced by jax (or takes an lr); pass "
                "total_steps= (the run's updates) to evaluate it once per update"
            )
        spec = tabulate(spec, total_steps, unit="step", lr=initial_lr, name=function_name(spec))
    curve = curve_schedule(spec)

    def lr(count: Any) -> jax.Array:
        return curve(count, xp=jnp)

    lr.__doc__ = f"optax schedule of lrlab spec {curve}."
    return lr


def _traceable(fn: Callable[..., Any]) -> bool:
    """True when ``fn(count)`` traces under jax to one float (so it runs inside ``jit``)."""
    try:
        out = jax.eval_shape(fn, jax.ShapeDtypeStruct((), jnp.int32))
    except Exception:
        return False
    return getattr(out, "shape", None) == () and jnp.issubdtype(out.dtype, jnp.floating)


def inject(
    optimizer_factory: Callable[..., optax.GradientTransformation],
    spec: str | Schedule,
    *,
    plateau: str | Plateau | None = None,
    **hyperparams: Any,
) -> optax.GradientTransformationExtraArgs:
    """``optimizer_factory(learning_rate=<spec>, **hyperparams)`` with the lr injected.

    Example: ``inject(optax.sgd, "cosine(0.1, decay_steps=100)", momentum=0.9)``.
    ``opt_state.hyperparams["learning_rate"]`` is the lr of the latest update.

    Args:
        optimizer_factory: an optax optimizer taking ``learning_rate`` (``optax.sgd``,
            ``optax.adam``, ``optax.adamw``, ...).
        spec: the lr schedule.
        plateau: ``plateau(...)`` spec or :class:`Plateau`; the metric is the
            ``value=`` extra argument of ``update`` (see the module docstring).
        **hyperparams: the optimizer's other arguments (these may be optax schedules).

    Raises:
        LrlabError: a spec is invalid, or the factory takes no ``learning_rate``.
    """
    params = inspect.signature(optimizer_factory).parameters
    name = getattr(optimizer_factory, "__name__", repr(optimizer_factory))
    if "learning_rate" not in params:
        raise LrlabError(f"{name} takes no learning_rate argument, so lrlab cannot schedule it")
    if "learning_rate" in hyperparams:
        raise LrlabError("learning_rate comes from the spec; remove learning_rate=")
    curve = curve_schedule(spec)
    found = as_plateau(plateau)
    lr = schedule(curve) if found is None else PlateauSchedule(curve, found)
    return optax.inject_hyperparams(optimizer_factory)(learning_rate=lr, **hyperparams)


class PlateauScheduleState(NamedTuple):
    """The step and the plateau controller's state, as arrays (see ``PlateauArrays``;
    ``best`` is NaN until the first improvement)."""

    count: jax.Array
    scale: jax.Array
    best: jax.Array
    wait: jax.Array
    cooldown_left: jax.Array
    reductions: jax.Array


@dataclasses.dataclass(frozen=True)
class PlateauSchedule:
    """optax stateful schedule ``lr = schedule(count) * scale``, the scale from ``plateau``.

    Pass it to ``optax.inject_hyperparams`` (as :func:`inject` does); the metric is the
    ``value=`` extra argument of the optimizer's ``update``. The transition is
    :func:`~lrlab.controllers.plateau.plateau_transition` with ``xp=jax.numpy``.
    """

    schedule: Schedule
    plateau: Plateau

    def init(self) -> PlateauScheduleState:
        dtype = jnp.result_type(float)
        return PlateauScheduleState(
            count=jnp.zeros([], jnp.int32),
            scale=jnp.ones([], dtype),
            best=jnp.full([], jnp.nan, dtype),
            wait=jnp.zeros([], jnp.int32),
            cooldown_left=jnp.zeros([], jnp.int32),
            reductions=jnp.zeros([], jnp.int32),
        )

    def __call__(self, state: PlateauScheduleState, value: Any = None, **extra: Any) -> jax.Array:
        observed = self.observe(state, value)
        return self.schedule(state.count, xp=jnp) * observed.scale

    def update(
        self, state: PlateauScheduleState, value: Any = None, **extra: Any
    ) -> PlateauScheduleState:
        observed = self.observe(state, value)
        return observed._replace(count=optax.safe_increment(observed.count))

    def observe(self, state: PlateauScheduleState, value: Any) -> PlateauScheduleState:
        """The state after evaluating metric ``value`` before update ``state.count``."""
        if value is None:
            return state
        metric = jnp.asarray(value, state.best.dtype)
        lr = self.schedule(state.count, xp=jnp)
        return plateau_transition(state, metric, lr, PlateauParams.of(self.plateau), jnp)
