"""How every lrlab figure looks: sizes, the curve palette and dash patterns, where legends
go, how lr curves with jumps are drawn, and saving as PNG. The one place for figure style;
:mod:`lrlab.reporting.plots` and :mod:`lrlab.reporting.figures` draw with it.

- **Curves** (:func:`series_styles`): up to 12 curves each get their own colour from Paul
  Tol's 12-colour qualitative scheme (made to stay apart for colour-blind readers) *and*
  their own dash pattern, so they also stay apart in grayscale. Past 12, colours and dash
  patterns repeat in a new pairing and every curve of the next dozen carries a marker
  (``o``, then ``s``, ...): no two of the first 144 curves look alike.
- **Legends** (:func:`place_legend`): a few short entries sit inside the axes; more, or
  long ones, go below the axes in as many columns as fit the figure's width (measured, not
  guessed), and the figure grows by the legend's height. PNGs are saved with
  ``bbox_inches="tight"``, so nothing drawn is ever cut off.
- **Jumps** (:func:`lr_drawstyle`): an lr holds for a whole update, so a curve with jumps
  (a multistep drop, a restart, a per-epoch schedule) is drawn as steps with vertical
  edges; smooth curves stay lines through the per-update values.
"""

from __future__ import annotations

import dataclasses
import io
import textwrap
from collections.abc import Callable, Sequence
from functools import wraps
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lrlab.fileio import write_atomic

__all__ = [
    "DASHES",
    "DPI",
    "MARKERS",
    "PALETTE",
    "RC",
    "WIDTH",
    "LegendLayout",
    "config_styles",
    "figure_png",
    "has_jumps",
    "legend_label",
    "legend_layout",
    "lr_drawstyle",
    "place_legend",
    "plain_text",
    "save_png",
    "series_styles",
]

#: Font sizes of every figure.
RC = {"font.size": 10, "axes.titlesize": 11, "legend.fontsize": 9}
WIDTH = 10.0  # inches; at DPI this is the PNG's width in pixels / 100
DPI = 110

#: Paul Tol's 12-colour qualitative scheme (SRON technical note, 2012), ordered so that
#: the first few colours are the most different.
PALETTE = (
    "#332288",  # indigo
    "#117733",  # green
    "#cc6677",  # rose
    "#88ccee",  # cyan
    "#ddcc77",  # sand
    "#aa4499",  # purple
    "#44aa99",  # teal
    "#882255",  # wine
    "#999933",  # olive
    "#6699cc",  # blue
    "#661100",  # brown
    "#aa4466",  # raspberry
)

#: Twelve dash patterns (matplotlib's ``(offset, (on, off, ...))`` in line widths).
DASHES: tuple[Any, ...] = (
    "-",  # solid
    (0, (6, 2)),  # dashed
    (0, (1, 1.6)),  # dotted
    (0, (6, 2, 1, 2)),  # dash-dot
    (0, (12, 3)),  # long dashes
    (0, (6, 2, 1, 2, 1, 2)),  # dash-dot-dot
    (0, (3, 2)),  # short dashes
    (0, (12, 2, 3, 2)),  # long-short
    (0, (1, 3.5)),  # sparse dots
    (0, (12, 2, 1, 2, 1, 2, 1, 2)),  # long dash, three dots
    (0, (3, 1, 1, 1)),  # dense dash-dot
    (0, (12, 2, 6, 2)),  # long-medium
)

#: The marker of each further dozen of curves (the first dozen has none).
MARKERS = (None, "o", "s", "^", "D", "v", "P", "X", "<", "*", ">", "h")


def plain_text(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``fn`` (a function that builds a figure) with :data:`RC`."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with matplotlib.rc_context(RC):
            return fn(*args, **kwargs)

    return wrapper


# --------------------------------------------------------------------------- curve styles
def series_styles(n: int) -> list[dict[str, Any]]:
    """``n`` keyword sets for ``ax.plot``: ``color``, ``linestyle`` and, past 12, ``marker``.

    Curve ``i`` has colour ``PALETTE[i % 12]``, dash pattern ``DASHES[(i + i // 12) % 12]``
    and marker ``MARKERS[i // 12 % 12]``: within a dozen colour and dash pattern are both
    new; the next dozen pairs them differently and adds a marker. Distinct for ``n <= 144``.

    >>> [s["color"] for s in series_styles(2)], series_styles(2)[1]["linestyle"]
    (['#332288', '#117733'], (0, (6, 2)))
    >>> styles = series_styles(144)
    >>> len({(s["color"], s["linestyle"], s.get("marker")) for s in styles})
    144
    """
    k = len(PALETTE)
    out = []
    for i in range(n):
        style: dict[str, Any] = {"color": PALETTE[i % k], "linestyle": DASHES[(i + i // k) % k]}
        marker = MARKERS[(i // k) % len(MARKERS)]
        if marker is not None:  # spread along the line, shifted so markers do not stack
            style |= {"marker": marker, "markersize": 4.5, "markevery": (0.01 * (i % k), 0.12)}
        out.append(style)
    return out


def config_styles(labels: Sequence[str]) -> dict[str, dict[str, Any]]:
    """One style per config (grid order), the same in every figure of a report."""
    return dict(zip(labels, series_styles(len(labels)), strict=True))


# --------------------------------------------------------------------------- jumps
def has_jumps(values: np.ndarray) -> bool:
    """Whether an lr curve (one value per update) jumps somewhere.

    A jump is a change more than 3 times larger than the changes on either side of it
    (a milestone drop next to flat stretches, a warm restart after a slow decay); changes
    below ``1e-9`` of the curve's largest value count as none.

    >>> has_jumps(np.array([0.1, 0.1, 0.1, 0.01, 0.01]))
    True
    >>> has_jumps(np.cos(np.linspace(0, 3, 50)))  # smooth
    False
    >>> has_jumps(np.array([0.0, 0.02, 0.04, 0.06, 0.06, 0.06]))  # a warmup ramp
    False
    """
    y = np.asarray(values, dtype=float)
    finite = np.abs(y[np.isfinite(y)])
    if y.size < 2 or finite.size == 0:
        return False
    change = np.abs(np.diff(y))
    change[~np.isfinite(change) | (change <= 1e-9 * finite.max())] = 0.0
    around = np.maximum(np.r_[0.0, change[:-1]], np.r_[change[1:], 0.0])
    return bool(np.any(change > 3.0 * around))


def lr_drawstyle(values: np.ndarray) -> str:
    """``"steps-post"`` for a curve with jumps (the lr of update ``t`` holds on ``[t, t+1)``,
    so every jump is a vertical edge at the update it takes effect), else ``"default"``
    (a line through the per-update values).

    >>> lr_drawstyle(np.array([0.1, 0.1, 0.05, 0.05])), lr_drawstyle(np.linspace(1, 0, 9))
    ('steps-post', 'default')
    """
    return "steps-post" if has_jumps(values) else "default"


# --------------------------------------------------------------------------- legends
def legend_label(text: str, width: int = 44) -> str:
    r"""``text`` as plain text for matplotlib, wrapped at ``width`` characters.

    ``$`` is escaped (a config named ``$5 run`` is not mathtext), and a label starting with
    ``_`` (which matplotlib's legend would hide) gets a zero-width space in front.

    >>> legend_label("_private $x$")
    '\u200b_private \\$x\\$'
    >>> print(legend_label("sequence([linear(0.0, 0.1, steps=10), cosine(0.1, decay_steps=30)])"))
    sequence([linear(0.0, 0.1, steps=10),
    cosine(0.1, decay_steps=30)])
    """
    wrapped = "\n".join(
        textwrap.wrap(text, width, break_long_words=True, break_on_hyphens=False) or [""]
    )
    wrapped = wrapped.replace("$", r"\$")
    return "\u200b" + wrapped if wrapped.startswith("_") else wrapped


@dataclasses.dataclass(frozen=True)
class LegendLayout:
    """Where a legend of some labels goes: ``inside`` the axes, else below them in at most
    ``ncols`` columns (fewer if they do not fit the figure's width)."""

    inside: bool
    ncols: int


def legend_layout(labels: Sequence[str], *, inside_max: int = 6) -> LegendLayout:
    """Up to ``inside_max`` entries of at most 40 characters: inside the axes (where it
    hides least). More, or longer ones: below the axes, in as many columns as the longest
    entry allows on a :data:`WIDTH`-inch figure.

    >>> legend_layout(["a", "b"])
    LegendLayout(inside=True, ncols=1)
    >>> legend_layout([f"schedule {i}" for i in range(25)]).ncols
    7
    """
    entries = [legend_label(x) for x in labels]
    longest = max((len(line) for e in entries for line in e.split("\n")), default=0)
    if len(entries) <= inside_max and longest <= 40:
        return LegendLayout(True, 1)
    return LegendLayout(False, max(1, min(len(entries), int(WIDTH * 13) // (longest + 6))))


def place_legend(fig: Figure, ax: Any, *, inside_max: int = 6, title: str | None = None) -> Any:
    """Draw the legend of ``ax``'s labelled artists where :func:`legend_layout` says.

    Below the axes (``fig`` needs constrained layout), the columns are measured: fewer
    columns until the legend fits the figure's width, then the figure grows by the
    legend's height so the axes keep theirs. Returns the legend (None without labels).
    """
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    layout = legend_layout(labels, inside_max=inside_max)
    if layout.inside:
        return ax.legend(
            handles, labels, loc="best", title=title, framealpha=0.85, handlelength=3.2
        )
    renderer = FigureCanvasAgg(fig).get_renderer()
    for ncols in range(layout.ncols, 0, -1):
        legend = fig.legend(
            handles, labels, loc="outside lower center", ncols=ncols, title=title, handlelength=3.2
        )
        box = legend.get_window_extent(renderer)
        if box.width / fig.dpi <= fig.get_figwidth() - 0.3 or ncols == 1:
            break
        legend.remove()
    fig.set_figheight(fig.get_figheight() + box.height / fig.dpi + 0.1)
    return legend


# --------------------------------------------------------------------------- saving
def figure_png(fig: Figure, dpi: int = DPI) -> bytes:
    """The figure as PNG bytes, cropped to what is drawn (``bbox_inches="tight"``): a
    legend or label that reaches past the figure's edge is kept, not cut."""
    buf = io.BytesIO()
    with matplotlib.rc_context(RC):
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", pad_inches=0.08)
    return buf.getvalue()


def save_png(fig: Figure, path: str | Path, dpi: int = DPI) -> Path:
    """Write the figure as PNG to ``path`` atomically (a temporary file, then a rename)."""
    return write_atomic(path, figure_png(fig, dpi))
