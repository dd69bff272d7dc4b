"""Rows of the store as values, every field checked as it is read (and the rows written).

A store is a file anyone can open in a SQLite shell. A field that is not what lrlab
wrote (JSON that does not parse, text in a metric, a seed or a time, an array where an
object belongs) is one line naming the store, the trial and the field, instead of a
``JSONDecodeError`` or ``TypeError`` deep inside a report:

>>> from pathlib import Path
>>> decode_json(Path("out/store.sqlite"), "trial 'a'", "final", "{oops")
Traceback (most recent call last):
...
lrlab.experiments.store_rows.StoreError: out/store.sqlite: trial 'a': final is not valid \
JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1)); the \
store was changed outside lrlab (restore it from a copy, or rerun with --new to start over)
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from lrlab.errors import LrlabError

__all__ = [
    "StoreError",
    "StoredTrial",
    "decode_json",
    "edited_error",
    "epoch_row",
    "epoch_values",
    "meta_value",
    "stored_trial",
    "to_json",
]


class StoreError(LrlabError):
    """The store is missing, locked, from another experiment, or cannot be written."""


@dataclasses.dataclass(frozen=True)
class StoredTrial:
    """A trial as stored: its parameters, outcome and final metrics."""

    key: str
    config: str
    schedule: str
    spec: str
    optimizer: str
    lr: float | None
    seed: int
    params: dict[str, Any]
    status: str
    diverged_epoch: int | None
    message: str | None
    final: dict[str, float]
    started: float
    seconds: float
    engine: str
    versions: dict[str, str]


def stored_trial(path: Path, r: tuple[Any, ...]) -> StoredTrial:
    """One ``trials`` row (the columns in :class:`StoredTrial`'s order), checked."""
    where = f"trial {r[0]!r}"
    for i, name in ((0, "key"), (1, "config"), (2, "schedule"), (3, "spec"), (4, "optimizer")):
        _check(path, where, name, r[i], str)
    _check(path, where, "lr", r[5], float, none=True)
    _check(path, where, "seed", r[6], int)
    _check(path, where, "diverged_epoch", r[9], int, none=True)
    _check(path, where, "message", r[10], str, none=True)
    _check(path, where, "started", r[12], float)
    _check(path, where, "seconds", r[13], float)
    _check(path, where, "engine", r[14], str)

    def obj(i: int, field: str) -> dict[str, Any]:
        return _object(path, where, field, decode_json(path, where, field, r[i]))

    final = obj(11, "final")
    for name, value in final.items():
        _check(path, where, f"final.{name}", value, float, none=True)
    return StoredTrial(
        key=r[0],
        config=r[1],
        schedule=r[2],
        spec=r[3],
        optimizer=r[4],
        lr=r[5],
        seed=r[6],
        params=obj(7, "params"),
        status=r[8],
        diverged_epoch=r[9],
        message=r[10],
        final=final,
        started=r[12],
        seconds=r[13],
        engine=r[14],
        versions=obj(15, "versions"),
    )


def epoch_row(path: Path, trial: str, epoch: Any, lr: Any, metrics: Any) -> dict[str, float]:
    """One ``epochs`` row as ``{"epoch", "lr", <metrics>...}`` (no lr stored: NaN), checked."""
    where = f"trial {trial!r}, epoch {epoch!r}"
    _check(path, where, "epoch", epoch, int)
    _check(path, where, "lr", lr, float, none=True)
    values = _object(path, where, "metrics", decode_json(path, where, "metrics", metrics))
    for name, value in values.items():
        _check(path, where, f"metrics.{name}", value, float, none=True)
    return {"epoch": epoch, "lr": lr if lr is not None else math.nan, **values}


_ENCODER = json.JSONEncoder(sort_keys=True, allow_nan=True)  # one for all: 25k rows a chunk


def to_json(data: Any) -> str:
    """JSON with NaN/inf kept (Python's json reads them back), keys sorted.

    >>> to_json({"b": float("nan"), "a": 1})
    '{"a": 1, "b": NaN}'
    """
    return _ENCODER.encode(data)


def epoch_values(key: str, epochs: list[dict[str, float]]) -> list[tuple[Any, ...]]:
    """The ``epochs`` rows of trial ``key``: key, epoch, the lr (NULL when not finite: read
    back as NaN) and the other metrics as JSON.

    >>> epoch_values("a", [{"epoch": 1, "lr": float("inf"), "loss": 0.5}])
    [('a', 1, None, '{"loss": 0.5}')]
    """
    return [
        (
            key,
            int(e["epoch"]),
            _finite_or_none(e.get("lr")),
            to_json({k: v for k, v in e.items() if k not in ("epoch", "lr")}),
        )
        for e in epochs
    ]


def _finite_or_none(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def decode_json(path: Path, where: str, field: str, text: Any) -> Any:
    """``json.loads(text)``, or the one-line error naming ``where`` and ``field``."""
    try:
        return json.loads(text)
    except (TypeError, ValueError) as err:
        raise edited_error(path, where, field, f"is not valid JSON ({err})") from None
    except RecursionError:  # lrlab writes flat JSON; the decoder recurses once per level
        raise edited_error(path, where, field, "is JSON nested too deeply") from None


def edited_error(path: Path, where: str, field: str, problem: str) -> StoreError:
    """The one line for a field of ``path`` that lrlab did not write so."""
    return StoreError(
        f"{path}: {where}: {field} {problem}; the store was changed outside lrlab "
        "(restore it from a copy, or rerun with --new to start over)"
    )


def _check(
    path: Path, where: str, field: str, value: Any, kind: type, *, none: bool = False
) -> None:
    """``value`` is a ``kind`` (``float`` takes ints too; ``bool`` is neither)."""
    if value is None and none:
        return
    kinds = (int, float) if kind is float else (kind,)
    if isinstance(value, bool) != (kind is bool) or not isinstance(value, kinds):
        raise edited_error(path, where, field, f"is {_short(value)}, not {_KIND_WORDS[kind]}")


_KIND_WORDS = {
    str: "text",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    dict: "a JSON object",
    list: "a JSON list",
}

#: the JSON type of each setting lrlab keeps in the meta table (``schema_version`` is
#: the store's own check, with its own message)
META_TYPES: dict[str, type] = {
    "created": str,
    "config_hash": str,
    "data_fingerprint": str,
    "config_text": str,
    "config_source": str,
    "canonical": dict,
    "identity": dict,
    "title": str,
    "metric": str,
    "higher_is_better": bool,
    "baseline": str,
    "labels": list,
    "seeds": list,
    "planned": int,
    "horizon": dict,
    "lr_curves": dict,
    "dataset": dict,
    "steps_per_epoch": int,
    "command": str,
    "versions": dict,
    "looks": int,
    "looked_at": int,
}


def meta_value(path: Path, key: str, text: Any) -> Any:
    """The setting ``key`` of the meta table, decoded and checked against :data:`META_TYPES`
    (one line naming the setting when a hand changed its type)."""
    value = decode_json(path, "settings", f"meta {key!r}", text)
    if key in META_TYPES:
        _check(path, "settings", f"meta {key!r}", value, META_TYPES[key])
    return value


def _object(path: Path, where: str, field: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise edited_error(path, where, field, f"is {_short(value)}, not a JSON object")
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
