"""``lrlab export``: every stored trial as CSV (one row per trial, or per trial and epoch)
or JSON (the experiment's metadata and every trial with its epochs).

Per epoch (``--epochs``), ``lr`` stays the trial's lr and ``epoch_lr`` is the lr of the
epoch's last update: every column name is unique.

Non-finite numbers are written as empty CSV cells and JSON ``null``. NUL characters are
dropped from text. A CSV text cell that a spreadsheet would run as a formula (it begins
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) is written with a leading
``'``, as OWASP advises for CSV injection; numbers stay numbers.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import math
from pathlib import Path
from typing import Any

from lrlab.experiments.store import Store

__all__ = ["FORMULA_STARTS", "export_trials", "json_ready", "text_cell"]

_COLUMNS = [
    "key",
    "config",
    "schedule",
    "spec",
    "plateau",
    "optimizer",
    "optimizer_params",
    "lr",
    "seed",
    "split_seed",
    "init_seed",
    "order_seed",
    "status",
    "diverged_epoch",
    "message",
    "started",
    "seconds",
    "engine",
]


def json_ready(value: Any) -> Any:
    """``value`` with non-finite floats as ``None`` and paths as strings (strict JSON).

    >>> json_ready({"a": [1.0, float("nan")], "b": float("inf"), "c": "x\\x00y"})
    {'a': [1.0, None], 'b': None, 'c': 'xy'}
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str):
        return value.replace("\x00", "")
    return value


def _iso(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, _dt.UTC).isoformat(timespec="seconds")


def _base_row(t) -> dict[str, Any]:
    p = t.params
    return {
        "key": t.key,
        "config": t.config,
        "schedule": t.schedule,
        "spec": t.spec,
        "plateau": p.get("plateau") or "",
        "optimizer": t.optimizer,
        "optimizer_params": json.dumps(p.get("optimizer_params", {}), sort_keys=True),
        "lr": t.lr,
        "seed": t.seed,
        "split_seed": p.get("split_seed"),
        "init_seed": p.get("init_seed"),
        "order_seed": p.get("order_seed"),
        "status": t.status,
        "diverged_epoch": t.diverged_epoch,
        "message": t.message or "",
        "started": _iso(t.started),
        "seconds": round(t.seconds, 3),
        "engine": t.engine,
    }


def export_trials(
    directory: str | Path, fmt: str = "csv", *, epochs: bool = False, every: bool = False
) -> str:
    """The stored trials of ``directory`` as CSV or JSON text (see the module docstring):
    the experiment's configs, or with ``every`` also those removed from its file."""
    with Store.open_read_only(directory) as store:
        meta = store.meta()
        trials = store.trials(every=every)
        per_epoch = store.epochs()
    if fmt == "json":
        data = {
            "experiment": {
                k: meta.get(k)
                for k in (
                    "title",
                    "metric",
                    "baseline",
                    "labels",
                    "config_hash",
                    "config_source",
                    "config_text",
                    "dataset",
                    "created",
                    "versions",
                )
            },
            "trials": [
                {
                    **t.params,
                    "key": t.key,
                    "status": t.status,
                    "diverged_epoch": t.diverged_epoch,
                    "message": t.message,
                    "started": _iso(t.started),
                    "seconds": t.seconds,
                    "engine": t.engine,
                    "versions": t.versions,
                    "final": t.final,
                    "epochs": per_epoch.get(t.key, []),
                }
                for t in trials
            ],
        }
        return json.dumps(json_ready(data), indent=2, allow_nan=False) + "\n"
    if fmt != "csv":
        raise ValueError(f"unknown format {fmt!r}")
    buf = io.StringIO()
    if epochs:
        # ``lr`` is the trial's (config) lr; the epoch's own lr is ``epoch_lr``.
        names = sorted({k for rows in per_epoch.values() for r in rows for k in r})
        names = [n for n in names if n not in ("epoch", "lr")]
        writer = csv.DictWriter(
            buf, fieldnames=_COLUMNS + ["epoch", "epoch_lr", *names], lineterminator="\n"
        )
        _header(writer)
        for t in trials:
            base = _base_row(t)
            for r in per_epoch.get(t.key, []):
                cells = {k: _cell(r.get(k)) for k in names}
                row = {**base, "epoch": r["epoch"], "epoch_lr": _cell(r["lr"]), **cells}
                writer.writerow(_guarded(row))
        return buf.getvalue()
    finals = sorted({k for t in trials for k in t.final})
    writer = csv.DictWriter(
        buf, fieldnames=_COLUMNS + [f"final_{k}" for k in finals], lineterminator="\n"
    )
    _header(writer)
    for t in trials:
        row = _base_row(t)
        row.update({f"final_{k}": _cell(t.final.get(k)) for k in finals})
        writer.writerow(_guarded(row))
    return buf.getvalue()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    return value


#: What a spreadsheet takes as the start of a formula (OWASP, "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def text_cell(text: str) -> str:
    """``text`` safe in a spreadsheet: NUL dropped, a formula start escaped with ``'``.

    >>> text_cell("=HYPERLINK(\\"http://x\\")"), text_cell("-1+2"), text_cell("cos\\x00ine")
    ('\\'=HYPERLINK("http://x")', "'-1+2", 'cosine')
    """
    text = text.replace("\x00", "")
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _header(writer: csv.DictWriter) -> None:
    """The header row, its names guarded like any text cell (metric names are text too)."""
    writer.writerow({name: text_cell(name) for name in writer.fieldnames})


def _guarded(row: dict[str, Any]) -> dict[str, Any]:
    """Every text cell through :func:`text_cell` (numbers are written as numbers)."""
    return {k: text_cell(v) if isinstance(v, str) else v for k, v in row.items()}
