"""The results table in a notebook and at the Python prompt.

:class:`~lrlab.analysis.results.ResultTable` is plain data, and analysis never imports
reporting (the layers of ``docs/architecture.md``), so the table cannot render itself.
:class:`ShownResults` is the same table with its renderings attached: Jupyter's
``_repr_html_`` and ``_repr_markdown_``, ``str()`` / ``to_markdown()`` (Markdown) and
``print()`` (the terminal table). The front doors (``lrlab.compare``, ``lrlab.results``)
return it; :func:`shown` turns any ``ResultTable`` into one. Its ``repr()`` stays the one
short line of ``ResultTable``.

>>> from lrlab.analysis.results import build_table
>>> table = shown(build_table({"a": {0: 0.9, 1: 0.8}, "b": {0: 0.7, 1: 0.6}}, ["a", "b"],
...                           metric="val_accuracy", higher_is_better=True, baseline="a"))
>>> table
<ResultTable val_accuracy (higher is better): 2 configs, best 'a' 0.8500, baseline 'a'>
>>> str(table) == table._repr_markdown_() == results_markdown(table)
True
>>> table._repr_html_().startswith("<table")
True
"""

from __future__ import annotations

import dataclasses
import html

from lrlab.analysis.results import ResultTable
from lrlab.reporting.tables import print_results, results_cells, results_footnote, results_markdown

__all__ = ["ShownResults", "shown"]


@dataclasses.dataclass(repr=False)
class ShownResults(ResultTable):
    """A :class:`ResultTable` that renders itself (see the module docstring)."""

    def to_markdown(self) -> str:
        """The Markdown table and its footnote (``results_markdown``)."""
        return results_markdown(self)

    def print(self) -> None:
        """The terminal table (``print_results``)."""
        print_results(self)

    def __str__(self) -> str:
        return self.to_markdown()

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def _repr_html_(self) -> str:
        head, body = results_cells(self)
        cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
        rows = [f"<tr>{cells}</tr>"]
        for row, values in zip(self.rows, body, strict=True):
            style = ' style="font-weight:bold"' if row.rank == 1 else ""
            tds = "".join(f"<td>{html.escape(v)}</td>" for v in values)
            rows.append(f"<tr{style}>{tds}</tr>")
        title = f"{self.title}: {self.metric}" if self.title else self.metric
        notes = "<br>".join(html.escape(line) for line in results_footnote(self).splitlines())
        return (
            f"<table><caption>{html.escape(title)}</caption>{''.join(rows)}</table>"
            f"<p><small>{notes}</small></p>"
        )


def shown(table: ResultTable) -> ShownResults:
    """``table`` as a :class:`ShownResults` (same fields, shared row objects)."""
    fields = {f.name: getattr(table, f.name) for f in dataclasses.fields(ResultTable)}
    return ShownResults(**fields)
