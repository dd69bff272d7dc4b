"""``lrlab runs``: the experiments under a folder as plain, aligned, greppable lines.

>>> import datetime as dt
>>> from pathlib import Path
>>> from lrlab.analysis.runs import RunSummary
>>> run = RunSummary(Path("runs/a"), "a", 4, 4, "complete", "val_accuracy", "cosine",
...                  0.91234, dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC))
>>> print(runs_text([run]))
folder  name  trials  status    best (val_accuracy)  last run
runs/a  a     4/4     complete  cosine 0.9123        2026-01-02 03:04 UTC
"""

from __future__ import annotations

from collections.abc import Sequence

from lrlab.analysis.runs import RunSummary

__all__ = ["runs_text"]


def runs_text(runs: Sequence[RunSummary]) -> str:
    """One line per experiment under a header, columns padded to their widest cell."""
    metrics = {r.metric for r in runs}
    best_head = f"best ({metrics.pop()})" if len(metrics) == 1 else "best"
    rows = [["folder", "name", "trials", "status", best_head, "last run"]]
    for r in runs:
        if r.best is None:
            best = "–"
        else:
            best = f"{r.best} {r.best_value:.4f}"
            best += "" if len(metrics) <= 1 else f" ({r.metric})"
        last = r.last.strftime("%Y-%m-%d %H:%M UTC") if r.last is not None else "–"
        rows.append([str(r.folder), r.name, f"{r.done}/{r.planned}", r.status, best, last])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
