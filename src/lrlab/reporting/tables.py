"""Terminal tables (rich)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from rich.console import Console
from rich.table import Table


class PrintableTable:
    """A rich table with a ``print`` method (to stdout, no colour when piped)."""

    def __init__(self, table: Table):
        self.table = table

    def print(self, console: Console | None = None) -> None:
        (console or Console(width=max(Console().width, 160))).print(self.table)


def curve_table(
    curves: Mapping[str, np.ndarray], rows: Sequence[int] | None = None, title: str | None = None
) -> PrintableTable:
    """One column per curve, one row per step (all steps, or the ``rows`` given)."""
    length = min(len(v) for v in curves.values())
    steps = list(rows) if rows is not None else list(range(length))
    table = Table(title=title, show_lines=False)
    table.add_column("step", justify="right")
    for label in curves:
        table.add_column(label, justify="right", overflow="fold")
    for step in steps:
        table.add_row(str(step), *(f"{float(v[step]):.4g}" for v in curves.values()))
    return PrintableTable(table)


def results_table(table) -> PrintableTable:
    """The experiment results table (a :class:`lrlab.analysis.results.ResultTable`), best first.

    The baseline row is marked; the footnote says what every column measures.
    """
    head, body = table.cells()
    title = f"{table.title}: {table.metric}" if table.title else table.metric
    rich_table = Table(title=title, caption=table.footnote(), caption_justify="left")
    for i, name in enumerate(head):
        rich_table.add_column(name, justify="left" if i == 1 else "right", overflow="fold")
    for row, cells in zip(table.rows, body, strict=True):
        rich_table.add_row(*cells, style="bold" if row.rank == 1 else None)
    return PrintableTable(rich_table)
