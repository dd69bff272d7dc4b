"""The schedule base class, the registry, and the array-namespace shim.

A schedule is a frozen dataclass: a small immutable value whose ``__call__`` is a
pure function of the step. Step 0 is the first optimizer update.

The same value evaluates on a Python int (returns a float), on numpy arrays, and on
``jax.numpy``, ``torch`` or ``keras.ops`` tensors (pass the namespace as ``xp``), so one
definition feeds Keras, PyTorch, optax and the population engine.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import types
import typing
from typing import Any, ClassVar

import numpy as np

from lrlab.errors import ScheduleError
from lrlab.schedules.horizon import Horizon
from lrlab.schedules.serialize import format_spec
from lrlab.schedules.serialize import to_dict as schedule_to_dict

__all__ = ["NO_HORIZON", "FieldType", "Ops", "ReactiveSchedule", "Schedule", "ops_for"]


#: ``horizon = NO_HORIZON`` in a schedule class: it decays with no end (declared, not
#: forgotten: the base's own default is a different object, which a test tells apart).
NO_HORIZON = property(lambda self: None, doc="None: this schedule decays with no end.")


# --------------------------------------------------------------------------- xp shim
class Ops:
    """The handful of array operations a schedule needs, for one array namespace.

    numpy, jax.numpy, torch and keras.ops agree on the names of most elementwise
    functions (``floor``, ``cos``, ...); this class papers over the few that differ
    (array creation, ``where`` with Python scalars, ``lgamma``).
    """

    def __init__(self, xp: Any):
        self.xp = xp
        self.kind = _namespace_kind(xp)

    def __getattr__(self, name: str):  # floor, ceil, cos, exp, log, sqrt, minimum, maximum
        return getattr(self.xp, name)

    def asarray(self, x: Any) -> Any:
        if self.kind == "numpy":
            return np.asarray(x, dtype=np.float64)
        if self.kind == "jax":
            import jax.numpy as jnp

            return jnp.asarray(x, dtype=jnp.result_type(float))
        if self.kind == "torch":
            import torch

            if isinstance(x, torch.Tensor) and x.is_floating_point():
                return x
            return torch.as_tensor(x, dtype=torch.get_default_dtype())
        import keras

        return keras.ops.convert_to_tensor(x, dtype=keras.config.floatx())

    def where(self, cond: Any, a: Any, b: Any) -> Any:
        return self.xp.where(cond, self.asarray(a), self.asarray(b))

    def floor_div(self, t: Any, n: float) -> Any:
        """``floor(t / n)``, exact for integer-valued ``t`` and ``n`` (staircases, cycles).

        XLA rewrites a division by a constant as a multiplication by its reciprocal, which
        can land one ulp below an exact quotient (``214 / 107 -> 1.9999999``); the two
        corrections below use exact integer products instead.
        """
        q = self.xp.floor(t / n)
        q = self.where(q * n > t, q - 1.0, q)
        return self.where((q + 1.0) * n <= t, q + 1.0, q)

    def ceil_div(self, t: Any, n: float) -> Any:
        """``ceil(t / n)``, exact for integer-valued ``t`` and ``n`` (see :meth:`floor_div`)."""
        q = self.xp.ceil(t / n)
        q = self.where((q - 1.0) * n >= t, q - 1.0, q)
        return self.where(q * n < t, q + 1.0, q)

    def power(self, base: float, exponent: Any) -> Any:
        """``base ** exponent`` for a Python float ``base > 0`` and an array exponent.

        numpy computes it directly (float64, exact where the tutorials' ``math.pow`` is);
        float32 namespaces get ``exp(exponent * log(base))`` with ``log(base)`` taken in
        float64, so rounding ``base`` to float32 does not cost ``exponent`` ulps
        (``0.99999 ** 1000`` would otherwise be off by 1e-5).
        """
        if self.kind == "numpy":
            return base**exponent
        return self.xp.exp(exponent * math.log(base))

    def clip(self, x: Any, lo: float, hi: float) -> Any:
        return self.xp.minimum(self.xp.maximum(x, self.asarray(lo)), self.asarray(hi))

    def take(self, values: tuple[float, ...], index: Any) -> Any:
        """``values[index]`` elementwise, for an integer-valued float array ``index``.

        A gather, so every value comes back exactly as stored (rounded to the
        namespace's float dtype): tables of recorded lrs stay bit-faithful.
        """
        if self.kind == "numpy":
            return np.asarray(values, dtype=np.float64)[np.asarray(index).astype(np.int64)]
        if self.kind == "jax":
            import jax.numpy as jnp

            return jnp.take(self.asarray(values), jnp.asarray(index).astype(jnp.int32))
        if self.kind == "torch":
            import torch

            return self.asarray(values)[torch.as_tensor(index).long()]
        import keras

        return keras.ops.take(self.asarray(values), keras.ops.cast(index, "int32"))

    def lgamma(self, x: Any) -> Any:
        if self.kind == "numpy":
            return np.vectorize(math.lgamma, otypes=[np.float64])(x)
        if self.kind == "jax":
            import jax

            return jax.lax.lgamma(x)
        if self.kind == "torch":
            import torch

            return torch.lgamma(x)
        import keras

        backend = keras.backend.backend()
        if backend == "jax":
            import jax

            return jax.lax.lgamma(x)
        if backend == "torch":
            import torch

            return torch.lgamma(x)
        import tensorflow as tf

        return tf.math.lgamma(x)


def _namespace_kind(xp: Any) -> str:
    name = getattr(xp, "__name__", "") if isinstance(xp, types.ModuleType) else ""
    if xp is np or name == "numpy":
        return "numpy"
    if name.startswith("jax"):
        return "jax"
    if name == "torch":
        return "torch"
    if name.startswith("keras"):
        return "keras"
    raise TypeError(f"unsupported array namespace {xp!r}: use numpy, jax.numpy, torch or keras.ops")


_OPS_CACHE: dict[int, Ops] = {}


def ops_for(xp: Any) -> Ops:
    """Return the (cached) :class:`Ops` for an array namespace module."""
    key = id(xp)
    if key not in _OPS_CACHE:
        _OPS_CACHE[key] = Ops(xp)
    return _OPS_CACHE[key]


# --------------------------------------------------------------------------- field types
@dataclasses.dataclass(frozen=True)
class FieldType:
    """What a schedule field holds, read from its annotation.

    ``kind`` is one of ``float``, ``int``, ``bool``, ``choice`` (a ``Literal`` of strings,
    listed in ``choices``), ``schedule``, ``schedules``, ``ints``, ``floats`` (the last
    three are ``tuple[X, ...]``); ``optional`` is ``X | None``.
    """

    kind: str
    optional: bool = False
    choices: tuple[str, ...] = ()


_SCALARS = {bool: "bool", int: "int", float: "float"}
_TUPLES = {int: "ints", float: "floats"}


def _field_type(cls: type, name: str, hint: Any) -> FieldType:
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return dataclasses.replace(_field_type(cls, name, inner[0]), optional=True)
    if hint in _SCALARS:
        return FieldType(_SCALARS[hint])
    if typing.get_origin(hint) is typing.Literal:
        return FieldType("choice", choices=args)
    if isinstance(hint, type) and issubclass(hint, Schedule):
        return FieldType("schedule")
    if typing.get_origin(hint) is tuple and len(args) == 2 and args[1] is Ellipsis:
        if isinstance(args[0], type) and issubclass(args[0], Schedule):
            return FieldType("schedules")
        if args[0] in _TUPLES:
            return FieldType(_TUPLES[args[0]])
    raise TypeError(
        f"{cls.__name__}.{name}: annotation {hint!r} is not one a schedule field can have; "
        "use float, int, bool, Literal[...], Schedule, tuple[X, ...] of those, or X | None"
    )


# --------------------------------------------------------------------------- base
@dataclasses.dataclass(frozen=True)
class Schedule:
    """Base of every schedule: ``lr = schedule(step)``.

    Subclasses are frozen dataclasses; they declare their arguments as fields,
    check them in :meth:`_check` (raising :class:`ScheduleError` naming the
    argument) and compute the value in :meth:`_value` with the :class:`Ops` given.
    Positional arguments in the spec language are the fields without defaults,
    in declaration order. A field's annotation says what it holds (:meth:`field_types`):
    ``float``, ``int``, ``bool``, ``Literal["a", "b"]``, a ``Schedule``, ``tuple[X, ...]``
    of those, or ``X | None``; values are checked and coerced to it.
    """

    name: ClassVar[str] = ""
    #: how many leading arguments the canonical spec writes by position
    POSITIONAL: ClassVar[int] = 1
    #: a spec string of a representative instance, shared by the docs and the tests
    EXAMPLE: ClassVar[str] = ""
    _field_types: ClassVar[dict[str, FieldType] | None] = None
    #: the formula in one line (``t`` = step), and the library whose numbers it matches;
    #: ``scripts/schedule_table.py`` prints the README table from them
    FORMULA: ClassVar[str] = ""
    REFERENCE: ClassVar[str] = ""
    reactive: ClassVar[bool] = False

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, self._coerce(f.name, getattr(self, f.name)))
        self._check()

    # -- construction helpers ------------------------------------------------
    def _fail(self, arg: str, problem: str) -> ScheduleError:
        err = ScheduleError(f"{self.name}: argument '{arg}' {problem}")
        err.argument = arg  # the spec parser puts its caret under this argument
        return err

    @classmethod
    def field_types(cls) -> dict[str, FieldType]:
        """What each field holds, derived once per class from its annotations.

        >>> from lrlab.schedules import Cyclic
        >>> Cyclic.field_types()["step_size_down"]
        FieldType(kind='int', optional=True, choices=())
        """
        types = cls.__dict__.get("_field_types")
        if types is None:
            hints = typing.get_type_hints(cls)
            types = {
                f.name: _field_type(cls, f.name, hints[f.name]) for f in dataclasses.fields(cls)
            }
            cls._field_types = types
        return types

    def _coerce(self, arg: str, value: Any) -> Any:
        field = self.field_types()[arg]
        if value is None and field.optional:
            return None
        if field.kind == "schedule":
            if not isinstance(value, Schedule):
                raise self._fail(arg, f"must be a schedule, got {value!r}")
            return value
        if field.kind == "schedules":
            if not isinstance(value, list | tuple) or not all(
                isinstance(v, Schedule) for v in value
            ):
                raise self._fail(arg, f"must be a list of schedules, got {value!r}")
            return tuple(value)
        if field.kind == "bool":
            if not isinstance(value, bool):
                raise self._fail(arg, f"must be true or false, got {value!r}")
            return value
        if field.kind == "choice":
            if value not in field.choices:
                raise self._fail(
                    arg, f"must be one of {', '.join(map(repr, field.choices))}, got {value!r}"
                )
            return value
        if field.kind == "ints":
            if not isinstance(value, list | tuple):
                raise self._fail(arg, f"must be a list of integers, got {value!r}")
            return tuple(_as_int(self, arg, v) for v in value)
        if field.kind == "floats":
            if not isinstance(value, list | tuple):
                raise self._fail(arg, f"must be a list of numbers, got {value!r}")
            return tuple(_as_float(self, arg, v) for v in value)
        if field.kind == "int":
            return _as_int(self, arg, value)
        return _as_float(self, arg, value)

    def _check(self) -> None:
        """Validate arguments; subclasses raise ``self._fail(arg, problem)``."""

    def _require(self, arg: str, condition: bool, problem: str) -> None:
        if not condition:
            raise self._fail(arg, problem)

    # -- evaluation ------------------------------------------------------------
    def __call__(self, step: Any, xp: Any = None) -> Any:
        """The learning rate at ``step`` (int -> float; array -> array of ``xp``).

        Python numbers and numpy arrays are checked (finite, >= 0; else
        :class:`ScheduleError`); traced jax/torch/keras tensors are not.
        """
        if xp is None:
            if isinstance(step, numbers.Real) and not isinstance(step, np.ndarray):
                t = _numpy_steps(step)
                with _quiet():
                    return float(self._value(t, ops_for(np)))
            xp = _infer_namespace(step)
        ops = ops_for(xp)
        if xp is np:
            t = _numpy_steps(step)
            with _quiet():
                return self._value(t, ops)
        return self._value(ops.asarray(step), ops)

    def _value(self, t: Any, ops: Ops) -> Any:
        raise NotImplementedError

    @property
    def peak(self) -> float:
        """The largest value the schedule takes at any step ``t >= 0`` (an upper bound).

        Plots use it for their axes, ``scale`` checks that ``factor * peak`` stays
        finite, and the property tests check ``0 <= schedule(t) <= peak``.
        """
        raise NotImplementedError

    @property
    def horizon(self) -> Horizon | None:
        """Where the schedule ends or how it cycles (:class:`Horizon`), None without an end.

        Every registered class declares its own (a test checks): a decay with no end says
        so with ``horizon = NO_HORIZON``; this default, None, is what a class that declares
        nothing gets, so the horizon check skips it.
        """
        return None

    def curve(self, steps: int) -> np.ndarray:
        """The values at steps ``0 .. steps-1`` as a float64 numpy array."""
        if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 0:
            raise ScheduleError(f"the number of steps must be an integer >= 0, got {steps!r}")
        return np.asarray(self(np.arange(steps, dtype=np.float64), np), dtype=np.float64)

    def per_update(self, epochs: int, steps_per_epoch: int, unit: str = "step") -> np.ndarray:
        """The lr of every update ``0 .. epochs * steps_per_epoch - 1`` (float64).

        ``unit="step"``: update ``t`` trains at ``schedule(t)``; ``unit="epoch"``: at
        ``schedule(t // steps_per_epoch)``, each epoch's value held for its updates (the
        epoch-indexed tutorials' ``LearningRateScheduler``).

        >>> from lrlab.schedules import StepDecay
        >>> StepDecay(0.1, drop=0.5, every=1).per_update(2, steps_per_epoch=3, unit="epoch")
        array([0.1 , 0.1 , 0.1 , 0.05, 0.05, 0.05])
        >>> StepDecay(0.1, drop=0.5, every=2).per_update(2, steps_per_epoch=2)
        array([0.1 , 0.1 , 0.05, 0.05])
        """
        for arg, value in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
                raise ScheduleError(f"{arg} must be an integer >= 0, got {value!r}")
        if unit == "epoch":
            return np.repeat(self.curve(epochs), steps_per_epoch)
        if unit == "step":
            return self.curve(epochs * steps_per_epoch)
        raise ScheduleError(f"unit must be 'step' or 'epoch', got {unit!r}")

    # -- serialization -----------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict ``{"name": ..., <argument>: ...}``; nested schedules nest
        (:func:`lrlab.schedules.serialize.to_dict`)."""
        return schedule_to_dict(self)

    def __str__(self) -> str:
        """The canonical spec (:func:`lrlab.schedules.serialize.format_spec`)."""
        return format_spec(self)


class ReactiveSchedule(Schedule):
    """A schedule that reacts to a metric; it has no curve of its own."""

    reactive: ClassVar[bool] = True

    def __call__(self, step: Any, xp: Any = None) -> Any:
        raise ScheduleError(
            f"{self.name} reacts to a metric and has no curve of its own; "
            "combine it with a schedule in an integration (e.g. lrlab.keras.Scheduler"
            "(spec, plateau=...)) instead of evaluating it"
        )

    @property
    def peak(self) -> float:
        return self(0)

    @property
    def horizon(self) -> Horizon | None:
        return None  # no curve of its own


# Branches of a ``where`` that are not selected may overflow (e.g. a warmup ramp evaluated
# at step 2**53); the selected values are finite, so numpy's overflow warnings are noise.
def _quiet() -> np.errstate:
    return np.errstate(over="ignore", under="ignore")


def _numpy_steps(step: Any) -> np.ndarray:
    """``step`` as float64 numpy, checked: finite and >= 0 (else :class:`ScheduleError`)."""
    try:
        steps = np.asarray(step, dtype=np.float64)
    except (OverflowError, ValueError, TypeError):
        raise ScheduleError(f"steps must be finite and >= 0, got {str(step)[:40]}") from None
    _check_steps(steps)
    return steps


def _check_steps(steps: np.ndarray) -> None:
    if not np.all(np.isfinite(steps)) or np.any(steps < 0):
        bad = steps[~(np.isfinite(steps) & (steps >= 0))] if steps.ndim else steps
        raise ScheduleError(f"steps must be finite and >= 0, got {np.ravel(bad)[0]}")


def _as_float(sched: Schedule, arg: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise sched._fail(arg, f"must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise sched._fail(arg, f"must be finite, got {value}")
    return value


def _as_int(sched: Schedule, arg: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise sched._fail(arg, f"must be an integer, got {value!r}")
    if isinstance(value, float) and (not math.isfinite(value) or value != int(value)):
        raise sched._fail(arg, f"must be an integer, got {value!r}")
    if abs(value) > 2**53:
        raise sched._fail(arg, f"must be at most 2**53 in size, got {value:.3g}")
    return int(value)


def _infer_namespace(step: Any) -> Any:
    module = type(step).__module__
    if module.startswith("jax") or module.startswith("jaxlib"):
        import jax.numpy as jnp

        return jnp
    if module.startswith("torch"):
        import torch

        return torch
    if module.startswith("numpy") or isinstance(step, list | tuple | range):
        return np
    if module == "builtins":
        raise ScheduleError(
            f"steps must be a number or an array of numbers, got {type(step).__name__}"
        )
    import keras

    return keras.ops
