"""Terminal and Markdown tables: schedule curves, and the experiment results table.

The results table (:class:`lrlab.analysis.results.ResultTable`, plain data) is rendered here:
:func:`results_cells` (header and formatted cells, shared by every format),
:func:`results_footnote` (what every column measures, then the verdicts),
:func:`results_markdown`, :func:`results_table` (rich), :func:`results_lines` (plain,
greppable) and :func:`print_results` (the terminal's choice between the two).

The terminal table shows :func:`default_columns` (fits 100 columns); ``wide`` shows all of
:data:`COLUMNS`, ``columns`` the ones named. Every header names its interval's kind:
``95% CI (t)`` and ``[95% CI, bootstrap]`` are fixed-n (valid at one pre-planned look),
``[anytime 95%, t-mixture]`` stays valid however often seeds are added and the table read.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from rich import box
from rich.console import Console
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from lrlab.analysis.results import ResultRow, ResultTable

__all__ = [
    "COLUMNS",
    "PrintableTable",
    "curve_table",
    "default_columns",
    "more_seeds_sentence",
    "parse_columns",
    "print_results",
    "results_cells",
    "results_footnote",
    "results_lines",
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

#: Every column of the results table, in order; ``--columns`` takes these names.
COLUMNS = (
    "rank",
    "config",
    "n",
    "mean",
    "ci",
    "delta",
    "p_t",
    "p_wilcoxon",
    "anytime",
    "p_anytime",
    "d_z",
    "p_better",
    "verdict",
    "gap",
    "diverged",
)


def default_columns(table: ResultTable) -> list[str]:
    """The columns that fit 100 terminal columns: rank, config, mean ± std, Δ with the
    interval the verdict uses (the bootstrap at one look, the anytime-valid one from the
    second), P(better) and the verdict word."""
    delta = "anytime" if table.anytime_rule else "delta"
    return ["rank", "config", "mean", delta, "p_better", "verdict"]


def parse_columns(text: str) -> list[str]:
    """``"rank,config,delta"`` -> the column names, checked against :data:`COLUMNS`.

    >>> parse_columns("config, mean,anytime")
    ['config', 'mean', 'anytime']
    >>> try:
    ...     parse_columns("config,pvalue")
    ... except ValueError as err:
    ...     print(str(err)[:56])
    unknown column 'pvalue'; choose from rank, config, n, me
    """
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        if name not in COLUMNS:
            raise ValueError(f"unknown column {name!r}; choose from {', '.join(COLUMNS)}")
    if not names:
        raise ValueError(f"no column named; choose from {', '.join(COLUMNS)}")
    return names


#: Headers of the terminal's default table (the footnote names the baseline).
SHORT_HEADERS = {
    "mean": "mean ± std",
    "delta": "Δ [95% CI, bootstrap]",
    "anytime": "Δ [anytime 95%]",
    "verdict": "verdict",
}


def results_table(
    table: ResultTable,
    columns: Sequence[str] | None = None,
    digits: int = 4,
    short_headers: bool = False,
    width: int | None = None,
) -> PrintableTable:
    """The experiment results table as a rich table, best first (every column by default).

    The best row is bold; the caption is :func:`results_footnote`. Labels wrap at spaces
    and a word too long for its column ends in "…", never split mid-word. Cells are plain
    text (a label's ``[4]`` is not rich markup). ``short_headers``: :data:`SHORT_HEADERS`,
    P(better) without its Wilson interval. ``width``: the console's; the config column gets
    what the numbers leave of it (at least 8 characters).
    """
    names = list(columns or COLUMNS)
    head, body = results_cells(table, columns, digits)
    if short_headers:  # and P(better) without its interval (the wide table has it)
        head = [SHORT_HEADERS.get(name, header) for name, header in zip(names, head, strict=True)]
        body = [
            [c.split(" [")[0] if n == "p_better" else c for n, c in zip(names, row, strict=True)]
            for row in body
        ]
    title = f"{table.title}: {table.metric}" if table.title else table.metric
    rich_table = Table(
        title=title,
        caption=results_footnote(table),
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    # the numbers keep their width; the labels take what is left
    widths = [max(len(cells[i]) for cells in [head, *body]) for i in range(len(names))]
    numbers = sum(w for name, w in zip(names, widths, strict=True) if name != "config")
    room = None if width is None else max(8, width - numbers - 2 * len(names))
    for name, header, w in zip(names, head, widths, strict=True):
        justify = "left" if name in ("config", "verdict") else "right"
        rich_table.add_column(
            Text(header),
            justify=justify,
            overflow="ellipsis",
            min_width=None if name == "config" else w,
            max_width=room if name == "config" else None,
        )
    for row, cells in zip(table.rows, body, strict=True):
        rich_table.add_row(*map(Text, cells), style="bold" if row.rank == 1 else None)
    return PrintableTable(rich_table)


def print_results(
    table: ResultTable,
    console: Console | None = None,
    columns: Sequence[str] | None = None,
    wide: bool = False,
) -> None:
    """Print the results table to ``console`` (default: stdout).

    On a terminal: a rich table of :func:`default_columns` with 3 decimals (fits 100
    columns), every column with ``wide`` (4 decimals), or the ``columns`` named. Not a
    terminal (a pipe, a log file): plain lines, one per config, cells separated by tabs,
    every column unless ``columns`` are named.
    """
    console = console or Console()
    compact = columns is None and not wide and console.is_terminal
    if columns is None:
        columns = default_columns(table) if compact else list(COLUMNS)
    if console.is_terminal:
        digits = 3 if compact else 4
        rich_table = results_table(table, columns, digits, compact, width=console.width)
        console.print(rich_table.table)
        return
    console.print(_Verbatim(results_lines(table, columns)), crop=False)


class _Verbatim:
    """Lines printed as they are: no wrapping, no markup, tabs kept (rich expands them)."""

    def __init__(self, lines: list[str]):
        self.lines = lines

    def __rich_console__(self, console: Console, options: object):
        for line in self.lines:
            yield Segment(line)
            yield Segment.line()


def results_lines(table: ResultTable, columns: Sequence[str] | None = None) -> list[str]:
    """Plain, greppable lines: the title, the header and one line per config (cells
    separated by tabs), then the footnote."""
    head, body = results_cells(table, columns)
    title = f"{table.title}: {table.metric}" if table.title else table.metric
    rows = ["\t".join(cells) for cells in [head, *body]]
    return [title, *rows, *results_footnote(table).splitlines()]


def results_markdown(table: ResultTable) -> str:
    """A Markdown table with every column of the terminal table, then the footnote."""
    head, body = results_cells(table)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines) + "\n\n" + results_footnote(table) + "\n"


def results_footnote(table: ResultTable) -> str:
    """What every column measures and what a seed varied; then the verdict lines."""
    better = "higher" if table.higher_is_better else "lower"
    comparison = table.comparison
    return (
        f"{table.metric} ({better} is better): mean ± std over seeds, 95% t-interval (fixed-n) "
        f"within the metric's range; Δ = config − {table.baseline} paired by seed, with its 95% "
        "bootstrap interval (fixed-n), paired t-test and Wilcoxon p-values (fixed-n) and "
        "Cohen's d_z; anytime = the anytime-valid 95% interval of Δ and its p-value, valid "
        "however often seeds are added and the table looked at; P(better) = share of paired "
        "seeds where the config beats the baseline (ties half) [Wilson 95% interval, %]; "
        f"vs {table.baseline}: {_rule(table)}; gap = train − validation (positive: overfit)."
        + _varied(table.vary)
        + (f"\nVerdict: {table.verdict}" if table.verdict else "")
        + "".join(
            f"\n- {r.verdict}"
            for r in table.rows
            if r.verdict and len(table.rows) <= 8 and r.verdict not in table.verdict
        )
        + (f"\n{comparison.ranks.sentence}" if comparison and comparison.ranks else "")
        + (f"\n{more}" if (more := more_seeds_sentence(table)) else "")
    )


def more_seeds_sentence(table: ResultTable) -> str:
    """The line that says how to add the seeds the verdict asks for ("" when none are asked).

    The hook for the command that grows the experiment (``lrlab run exp.toml --seeds N``):
    today it names the number of seeds only.
    """
    top = table.comparison.best_vs_runner_up if table.comparison is not None else None
    if top is None or top.winner is not None or not top.seeds_needed:
        return ""
    return f"More seeds: about {max(top.seeds_needed, top.n + 1)} would separate the best two."


def _rule(table: ResultTable) -> str:
    """How the verdict word was decided."""
    if table.anytime_rule:
        return (
            "better/worse when the anytime-valid test rejects (Holm-adjusted over the configs; "
            f"looked at {table.looks} times: a fixed-n test would no longer hold its 5%), "
            "else not yet ~seeds needed"
        )
    return (
        "better/worse when the Holm-adjusted Wilcoxon test and the bootstrap interval agree, "
        "else not yet ~seeds needed (80% power); from the second look on, the anytime-valid "
        "test decides"
    )


def results_cells(
    table: ResultTable, columns: Sequence[str] | None = None, digits: int = 4
) -> tuple[list[str], list[list[str]]]:
    """Header and formatted cells of every row (shared by terminal, Markdown and HTML), for
    the ``columns`` named (default: every column, :data:`COLUMNS`), metric values with
    ``digits`` decimals."""
    names = list(columns or COLUMNS)
    base = table.baseline
    method = next((r.anytime_method for r in table.rows if r.anytime_method), "t-mixture")
    headers = {
        "rank": "rank",
        "config": "config",
        "n": "n",
        "mean": f"{table.metric} mean ± std",
        "ci": "95% CI (t)",
        "delta": f"Δ vs {base} [95% CI, bootstrap]",
        "p_t": "p (t)",
        "p_wilcoxon": "p (Wilcoxon)",
        "anytime": f"Δ vs {base} [anytime 95%, {method}]",
        "p_anytime": "p (anytime)",
        "d_z": "d_z",
        "p_better": "P(better)",
        "verdict": f"vs {base}",
        "gap": "gap",
        "diverged": "diverged",
    }
    body = []
    for r in table.rows:
        cells = _row_cells(r, digits)
        body.append([cells[name] for name in names])
    return [headers[name] for name in names], body


def _row_cells(r: ResultRow, digits: int) -> dict[str, str]:
    """Every column's cell of one row."""
    cells = {
        "rank": str(r.rank),
        "config": r.config,
        "n": str(r.n),
        "mean": f"{_f(r.mean, digits)} ± {_f(r.std, digits)}",
        "ci": f"[{_f(r.ci_low, digits)}, {_f(r.ci_high, digits)}]",
        "gap": _f(r.gap, digits, sign=True),
        "diverged": f"{r.diverged}" + (f" (+{r.failed} failed)" if r.failed else ""),
    }
    if r.is_baseline:
        blank = ("p_t", "p_wilcoxon", "p_anytime", "d_z", "p_better", "verdict")
        return {**cells, "delta": "baseline", "anytime": "baseline", **dict.fromkeys(blank, "")}
    lo, hi = 100 * r.p_better_ci_low, 100 * r.p_better_ci_high
    return {
        **cells,
        "delta": _with_interval(r, r.diff_ci_low, r.diff_ci_high, digits),
        "p_t": _p(r.p_ttest),
        "p_wilcoxon": _p(r.p_wilcoxon),
        "anytime": _with_interval(r, r.anytime_low, r.anytime_high, digits),
        "p_anytime": _p(r.p_anytime),
        "d_z": _f(r.cohen_dz, 2),
        "p_better": f"{r.p_better:.0%} [{lo:.0f}–{hi:.0f}]" if math.isfinite(r.p_better) else "–",
        "verdict": _says(r),
    }


def _with_interval(r: ResultRow, low: float, high: float, digits: int) -> str:
    """``+0.0123 [+0.0012, +0.0234]``; one seed: ``+0.0123 (one seed: no interval)``."""
    diff = _f(r.diff, digits, sign=True)
    if r.n_paired == 1:
        return f"{diff} (one seed: no interval)"
    return f"{diff} [{_f(low, digits, sign=True)}, {_f(high, digits, sign=True)}]"


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
