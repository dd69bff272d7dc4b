"""Terminal and Markdown tables: schedule curves, and the experiment results table.

The results table (:class:`lrlab.analysis.results.ResultTable`, plain data) is rendered here:
:func:`results_cells` (header and formatted cells, shared by every format),
:func:`results_footnote` (what every column measures, then the verdicts),
:func:`results_markdown`, :func:`results_table` (rich) and :func:`print_results`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from lrlab.analysis.results import ResultRow, ResultTable

__all__ = [
    "PrintableTable",
    "curve_table",
    "print_results",
    "results_cells",
    "results_footnote",
    "results_markdown",
    "results_table",
]


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


# --------------------------------------------------------------------------- results table


def results_table(table: ResultTable) -> PrintableTable:
    """The experiment results table as a rich table, best first.

    The best row is bold; the caption is :func:`results_footnote`.
    """
    head, body = results_cells(table)
    title = f"{table.title}: {table.metric}" if table.title else table.metric
    rich_table = Table(title=title, caption=results_footnote(table), caption_justify="left")
    for i, name in enumerate(head):
        rich_table.add_column(name, justify="left" if i == 1 else "right", overflow="fold")
    for row, cells in zip(table.rows, body, strict=True):
        rich_table.add_row(*cells, style="bold" if row.rank == 1 else None)
    return PrintableTable(rich_table)


def print_results(table: ResultTable, console: Console | None = None) -> None:
    """Print the results table with rich (stdout, at least 160 columns wide)."""
    results_table(table).print(console)


def results_markdown(table: ResultTable) -> str:
    """A Markdown table with the same columns as the terminal table, then the footnote."""
    head, body = results_cells(table)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines) + "\n\n" + results_footnote(table) + "\n"


def results_footnote(table: ResultTable) -> str:
    """What every column measures and what a seed varied; then the verdict lines."""
    better = "higher" if table.higher_is_better else "lower"
    comparison = table.comparison
    return (
        f"{table.metric} ({better} is better): mean ± std over seeds, 95% t-interval; "
        f"Δ = config − {table.baseline} paired by seed, with 95% interval, paired t-test and "
        "Wilcoxon p-values and Cohen's d_z; P(better) = share of paired seeds where the "
        f"config beats the baseline (ties half) [Wilson 95% interval, %]; vs {table.baseline}: "
        "better/worse when the Holm-adjusted Wilcoxon test and the bootstrap interval agree, "
        "else not yet ~seeds needed (80% power); gap = train − validation (positive: "
        "overfit)."
        + _varied(table.vary)
        + (f"\nVerdict: {table.verdict}" if table.verdict else "")
        + "".join(
            f"\n- {r.verdict}"
            for r in table.rows
            if r.verdict and len(table.rows) <= 8 and r.verdict not in table.verdict
        )
        + (f"\n{comparison.ranks.sentence}" if comparison and comparison.ranks else "")
    )


def results_cells(table: ResultTable) -> tuple[list[str], list[list[str]]]:
    """Header and formatted cells of every row (shared by terminal, Markdown and HTML)."""
    head = [
        "rank",
        "config",
        "n",
        f"{table.metric} mean ± std",
        "95% CI",
        f"Δ vs {table.baseline} [95% CI]",
        "p (t)",
        "p (Wilcoxon)",
        "d_z",
        "P(better)",
        f"vs {table.baseline}",
        "gap",
        "diverged",
    ]
    body = []
    for r in table.rows:
        if r.is_baseline:
            delta, pt, pw, dz, pb, says = "baseline", "", "", "", "", ""
        else:
            lo, hi = 100 * r.p_better_ci_low, 100 * r.p_better_ci_high
            pb = f"{r.p_better:.0%} [{lo:.0f}–{hi:.0f}]" if math.isfinite(r.p_better) else "–"
            says = _says(r)
            delta = f"{_f(r.diff, sign=True)} [{_f(r.diff_ci_low)}, {_f(r.diff_ci_high)}]"
            pt, pw, dz = _p(r.p_ttest), _p(r.p_wilcoxon), _f(r.cohen_dz, 2)
        bad = f"{r.diverged}" + (f" (+{r.failed} failed)" if r.failed else "")
        body.append(
            [
                str(r.rank),
                r.config,
                str(r.n),
                f"{_f(r.mean)} ± {_f(r.std)}",
                f"[{_f(r.ci_low)}, {_f(r.ci_high)}]",
                delta,
                pt,
                pw,
                dz,
                pb,
                says,
                _f(r.gap, sign=True),
                bad,
            ]
        )
    return head, body


def _f(x: float, digits: int = 4, sign: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if math.isinf(x):
        return "+inf" if x > 0 else "-inf"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def _varied(vary: tuple[str, ...] | None) -> str:
    """' Paired seeds: each seed varied the split and the init only (the order was fixed).'"""
    if vary is None:
        return ""
    sources = ("split", "init", "order")
    on = [f"the {v}" for v in sources if v in vary]
    off = [f"the {v}" for v in sources if v not in vary]

    def say(xs: list[str]) -> str:
        return " and ".join([", ".join(xs[:-1]), xs[-1]] if len(xs) > 1 else xs)

    if not on:
        return " Paired seeds: nothing varied between seeds (split, init and order fixed)."
    fixed = f" only ({say(off)} {'was' if len(off) == 1 else 'were'} fixed)" if off else ""
    return f" Paired seeds: each seed varied {say(on)}{fixed}."


def _says(r: ResultRow) -> str:
    """The row's verdict against the baseline in two words (the sentence is ``r.verdict``)."""
    if not r.verdict:
        return "–"
    if r.better is not None:
        return "better" if r.better else "worse"
    return f"not yet ~{r.seeds_needed}" if r.seeds_needed else "no difference"


def _p(p: float) -> str:
    if p is None or math.isnan(p):
        return "–"
    return "<0.0001" if p < 1e-4 else f"{p:.4f}"
