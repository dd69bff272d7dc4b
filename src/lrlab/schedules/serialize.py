"""A schedule as text and as a dict: its canonical spec string, ``to_dict``/``from_dict``,
and the signature and one-line description ``lrlab list`` shows.

Reading spec strings is :mod:`lrlab.spec`'s job; this module only writes them, so the
schedules never need the parser. A schedule here is any registered frozen dataclass
(``lrlab.schedules.Schedule``); nested schedules are the dataclass values among its fields.

>>> from lrlab.schedules import Cosine, Warmup
>>> s = Warmup(5, Cosine(0.1, decay_steps=95))
>>> format_spec(s)
'warmup(5, cosine(0.1, decay_steps=95))'
>>> to_dict(s)
{'name': 'warmup', 'steps': 5, 'schedule': {'name': 'cosine', 'lr': 0.1, 'decay_steps': 95, \
'alpha': 0.0, 'warmup_target': None, 'warmup_steps': 0}, 'start': 0.0}
>>> from_dict(to_dict(s)) == s
True
"""

from __future__ import annotations

import dataclasses
from typing import Any

from lrlab.errors import ScheduleError
from lrlab.schedules.registry import REGISTRY

__all__ = ["MAX_DEPTH", "describe", "format_spec", "from_dict", "signature", "to_dict"]

#: the deepest nesting a spec or a schedule dict may have
MAX_DEPTH = 24


def _is_schedule(value: Any) -> bool:
    """A schedule's fields hold numbers, strings, booleans, None, tuples and schedules;
    the schedules are the dataclass instances among them."""
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


# --------------------------------------------------------------------------- spec text
def _format_value(value: Any) -> str:
    if _is_schedule(value):
        return format_spec(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_format_value(v) for v in value) + "]"
    return repr(value)


def format_spec(schedule: Any) -> str:
    """The canonical spec of a schedule: ``lrlab.parse(format_spec(s)) == s``.

    The leading ``POSITIONAL`` arguments (a class attribute) are written by position, the
    rest by keyword, and arguments equal to their default are left out.
    """
    parts = []
    positional = type(schedule).POSITIONAL
    for index, f in enumerate(dataclasses.fields(schedule)):
        value = getattr(schedule, f.name)
        has_default = f.default is not dataclasses.MISSING
        if has_default and value == f.default and type(value) is type(f.default):
            continue
        if index < positional and not has_default and len(parts) == index:
            parts.append(_format_value(value))
        else:
            parts.append(f"{f.name}={_format_value(value)}")
    return f"{schedule.name}({', '.join(parts)})"


def signature(cls: type) -> str:
    """``name(arg, arg=default, ...)`` for ``lrlab list`` and error hints."""
    parts = []
    for f in dataclasses.fields(cls):
        if f.default is dataclasses.MISSING:
            parts.append(f.name)
        else:
            parts.append(f"{f.name}={_format_value(f.default)}")
    return f"{cls.name}({', '.join(parts)})"


def describe(cls: type) -> str:
    """The first line of a schedule class's docstring."""
    return (cls.__doc__ or "").strip().splitlines()[0].replace("``", "")


# --------------------------------------------------------------------------- dicts
def to_dict(schedule: Any) -> dict[str, Any]:
    """A JSON-ready dict ``{"name": ..., <argument>: ...}``; nested schedules nest."""
    out: dict[str, Any] = {"name": schedule.name}
    for f in dataclasses.fields(schedule):
        value = getattr(schedule, f.name)
        if _is_schedule(value):
            value = to_dict(value)
        elif isinstance(value, tuple):
            value = [to_dict(v) if _is_schedule(v) else v for v in value]
        out[f.name] = value
    return out


def from_dict(data: Any, _depth: int = 1) -> Any:
    """Build a schedule from :func:`to_dict` output (nested dicts for nested schedules).

    Raises :class:`ScheduleError` (one line naming the fault) for anything else, including
    nesting deeper than ``MAX_DEPTH``.

    >>> from_dict({"name": "constant", "lr": 0.1})
    Constant(lr=0.1)
    """
    if _depth > MAX_DEPTH:
        raise ScheduleError(f"schedule dict nested deeper than {MAX_DEPTH} levels")
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise ScheduleError(f"a schedule dict needs a 'name' string, got {data!r:.80}")
    cls = REGISTRY.get(data["name"])
    if cls is None:
        raise ScheduleError(f"unknown schedule {data['name']!r}; run 'lrlab list' for the names")
    fields = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key == "name":
            continue
        if key not in fields:
            raise ScheduleError(
                f"{cls.name} has no argument {key!r}; valid: {', '.join(sorted(fields))}"
            )
        if isinstance(value, dict):
            value = from_dict(value, _depth + 1)
        elif isinstance(value, list):
            value = [from_dict(v, _depth + 1) if isinstance(v, dict) else v for v in value]
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except TypeError as err:  # missing required argument
        raise ScheduleError(f"{cls.name}: {err}; signature: {signature(cls)}") from None
