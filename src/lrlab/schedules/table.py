"""A schedule given as its values: ``table(values, unit)``, and Python functions tabulated.

A learning-rate *function* (what Keras' ``LearningRateScheduler`` takes) becomes a
:class:`Table` once, over the run's length (:func:`tabulate`): every integration,
engine, store and report then handles an ordinary, serializable schedule, and no
report ever needs the user's code again.
"""

from __future__ import annotations

import dataclasses
import inspect
import numbers
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from lrlab.errors import LrlabError
from lrlab.schedules.base import Ops, Schedule
from lrlab.schedules.horizon import Horizon
from lrlab.schedules.registry import register

__all__ = [
    "MAX_TABLE_LENGTH",
    "FunctionValues",
    "Table",
    "function_name",
    "tabulate",
    "takes_lr",
]

#: the most values a table holds (a run's epochs, or its updates with unit="step")
MAX_TABLE_LENGTH = 100_000


@register("table")
@dataclasses.dataclass(frozen=True)
class Table(Schedule):
    """The lr of each step given as a list: ``values[min(floor(t), n - 1)]``.

    ``unit`` says what the values are indexed by: ``"epoch"`` (one value per epoch, as
    Keras' ``LearningRateScheduler`` sets them) or ``"step"`` (one per update). Past its
    end the table holds its last value. A Python function becomes a table through
    :func:`tabulate`.

    >>> s = Table([0.1, 0.05, 0.025], unit="epoch")
    >>> [s(t) for t in range(5)]
    [0.1, 0.05, 0.025, 0.025, 0.025]
    >>> str(s)
    'table([0.1, 0.05, 0.025], unit="epoch")'
    """

    FORMULA = "values[min(⌊t⌋, n − 1)]"
    REFERENCE = "Keras `LearningRateScheduler` (a function's values, epoch by epoch)"
    EXAMPLE = 'table([0.1, 0.1, 0.05, 0.05, 0.025], unit="epoch")'

    values: tuple[float, ...]
    unit: Literal["step", "epoch"]

    def _check(self) -> None:
        n = len(self.values)
        self._require("values", n >= 1, "must hold at least one value")
        self._require(
            "values", n <= MAX_TABLE_LENGTH, f"must hold at most {MAX_TABLE_LENGTH} values, got {n}"
        )
        bad = [v for v in self.values if v < 0]
        self._require("values", not bad, f"must be >= 0, got {bad[0] if bad else 0}")

    @property
    def peak(self) -> float:
        return max(self.values)

    @property
    def horizon(self) -> Horizon:
        return Horizon.end(len(self.values))  # the run it was tabulated over

    def _value(self, t, ops: Ops):
        index = ops.clip(ops.floor(t), 0.0, float(len(self.values) - 1))
        return ops.take(self.values, index)


# --------------------------------------------------------------------------- functions
def function_name(fn: Callable[..., Any]) -> str:
    """``module:qualname`` of a function (how stores and messages name it).

    >>> import math
    >>> function_name(math.floor)
    'math:floor'
    """
    module = getattr(fn, "__module__", None) or "?"
    return f"{module}:{getattr(fn, '__qualname__', None) or repr(fn)}"


def takes_lr(fn: Callable[..., Any], name: str) -> bool:
    """Keras' rule for a schedule function: ``fn(epoch, lr)`` if it takes two arguments,
    else ``fn(epoch)``.

    Keras' ``LearningRateScheduler`` calls ``fn(epoch, lr)`` and falls back to ``fn(epoch)``
    on a ``TypeError``; the signature decides here, so a ``TypeError`` raised *inside* the
    function is reported instead of silently calling it again with one argument.

    Raises:
        LrlabError: the function can take neither (e.g. it needs a metric as well).
    """
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        raise LrlabError(f"{name}: cannot read its arguments; pass a Python function") from None
    for args, two in (((0, 0.1), True), ((0,), False)):
        try:
            signature.bind(*args)
        except TypeError:
            continue
        return two
    wanted = [p for p in signature.parameters.values() if p.default is inspect.Parameter.empty]
    raise LrlabError(
        f"{name} needs {len(wanted)} arguments ({', '.join(p.name for p in wanted)}); a "
        "schedule function gets (epoch) or (epoch, lr): a rule driven by a metric is "
        "plateau(...), composed with a schedule"
    )


class FunctionValues:
    """A schedule function evaluated index by index, as Keras' ``LearningRateScheduler``
    calls it; the values so far are kept (``values``), so each index is evaluated once.

    ``fn(i, lr_i)`` where ``lr_0 = lr`` and ``lr_{i+1}`` is what ``fn`` returned at ``i``,
    as the optimizer holds it (rounded to float32, Keras' variable dtype), so recursions
    such as ``lambda epoch, lr: lr * 0.9`` give Keras' exact numbers; ``fn(i)`` when the
    function takes one argument (:func:`takes_lr`). A two-argument function needs ``lr``
    (the optimizer's lr when training starts).

    >>> halve = FunctionValues(lambda epoch, lr: lr if epoch == 0 else lr * 0.5, lr=0.1)
    >>> halve(2), halve.values  # 0.1 as float32, then halved
    (0.02500000037252903, [0.10000000149011612, 0.05000000074505806, 0.02500000037252903])
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        unit: str = "epoch",
        lr: float | None = None,
        name: str | None = None,
    ):
        self.name = name or getattr(fn, "__qualname__", None) or repr(fn)
        if not callable(fn):
            raise LrlabError(f"a schedule function must be callable, got {fn!r:.80}")
        self.fn, self.unit = fn, unit
        self.takes_lr = takes_lr(fn, self.name)
        if self.takes_lr and lr is None:
            raise LrlabError(
                f"{self.name} takes (epoch, lr) and needs the lr training starts from; give "
                "lr (e.g. lr = 0.1)"
            )
        self.start = None if lr is None else float(np.float32(lr))
        self.values: list[float] = []

    def __call__(self, index: Any) -> float:
        """The value at ``index`` (an int >= 0; a float is floored, as a table does)."""
        index = int(index)
        while len(self.values) <= index:
            self._next()
        return self.values[index]

    def _next(self) -> None:
        index = len(self.values)
        if index >= MAX_TABLE_LENGTH:
            raise LrlabError(
                f"{self.name}: a function is evaluated at most {MAX_TABLE_LENGTH} times "
                f"({self.unit}s); use a spec (see 'lrlab list') for longer runs"
            )
        current = self.start if index == 0 else float(np.float32(self.values[-1]))
        try:
            out = self.fn(index, current) if self.takes_lr else self.fn(index)
        except Exception as err:
            text = str(err).strip().splitlines()
            detail = f": {text[0][:160]}" if text else ""
            raise LrlabError(
                f"{self.name} at {self.unit} {index} raised {type(err).__name__}{detail}"
            ) from None
        self.values.append(_lr_value(out, self.name, self.unit, index))


def tabulate(
    fn: Callable[..., Any],
    length: int,
    *,
    unit: Literal["step", "epoch"] = "epoch",
    lr: float | None = None,
    name: str | None = None,
) -> Table:
    """Evaluate a schedule function over ``length`` epochs (or updates with
    ``unit="step"``) as Keras' ``LearningRateScheduler`` would (:class:`FunctionValues`),
    into a :class:`Table`.

    Raises:
        LrlabError: one line naming the function, the index and the value, when the
            function raises or returns anything but a finite number >= 0.

    >>> tabulate(lambda epoch: 0.1 * 0.5 ** (epoch // 2), 4)
    Table(values=(0.1, 0.1, 0.05, 0.05), unit='epoch')
    >>> tabulate(lambda epoch: [0.1][epoch], 2)
    Traceback (most recent call last):
    ...
    lrlab.errors.LrlabError: <lambda> at epoch 1 raised IndexError: list index out of range
    """
    values = FunctionValues(fn, unit=unit, lr=lr, name=name)
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise LrlabError(f"{values.name}: the run length must be an integer >= 1, got {length!r}")
    values(length - 1)
    return Table(values.values, unit=unit)


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _lr_value(out: Any, name: str, unit: str, index: int) -> float:
    if isinstance(out, np.ndarray) and out.shape == ():
        out = out[()]
    if isinstance(out, bool) or not isinstance(out, numbers.Real):
        raise LrlabError(
            f"{name} at {unit} {index} returned {out!r:.60}, not a number; return the lr"
        )
    value = float(out)
    if not 0 <= value <= _FLOAT32_MAX:  # nan, inf, negative, or inf once in float32
        raise LrlabError(
            f"{name} at {unit} {index} returned {value}; an lr must be a finite number >= 0 "
            f"(at most {_FLOAT32_MAX:.3g}, float32)"
        )
    return value
