"""``lrlab plot`` / plot_schedules: one distinct line per spec and a legend that stays readable."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from PIL import Image

from lrlab.reporting.plots import plot_schedules, schedules_figure
from lrlab.reporting.style import figure_png, legend_layout, series_styles
from lrlab.spec import parse


def look(line):
    """What tells a line apart: colour, dash pattern (``get_linestyle`` says "--" for every
    custom pattern, so read the pattern itself) and marker."""
    offset, dashes = line._unscaled_dash_pattern
    return line.get_color(), offset, tuple(dashes or ()), line.get_marker()


def curves(fig):
    ax = fig.axes[0]
    return {
        ln.get_gid()[6:]: ln for ln in ax.get_lines() if (ln.get_gid() or "").startswith("curve:")
    }


def test_few_specs_legend_inside(schedule_cases):
    specs = [schedule_cases["constant"], schedule_cases["cosine"]]
    fig = schedules_figure({s: parse(s) for s in specs}, 40)
    ax = fig.axes[0]
    assert ax.get_legend() is not None and not fig.legends
    assert [t.get_text() for t in ax.get_legend().get_texts()] == specs
    assert ax.get_xlabel() == "step" and ax.get_ylabel() == "learning rate"
    assert ax.get_yscale() == "linear"
    lines = curves(fig)
    assert list(lines) == specs
    np.testing.assert_allclose(lines[specs[1]].get_ydata(), parse(specs[1]).curve(40))


def test_many_specs_distinct_lines_and_a_legend_below(schedule_cases):
    specs = list(schedule_cases.values())
    assert len(specs) > 20
    fig = schedules_figure({s: parse(s) for s in specs}, 40, log=True)
    ax = fig.axes[0]
    lines = curves(fig)
    assert len(lines) == len(specs)
    assert len({look(ln) for ln in lines.values()}) == len(specs)  # no two curves look alike
    assert ax.get_yscale() == "log" and ax.get_ylabel() == "learning rate (log scale)"
    assert ax.get_legend() is None and len(fig.legends) == 1
    legend = fig.legends[0]
    texts = [t.get_text().replace("\n", " ") for t in legend.get_texts()]
    assert texts == specs  # long specs are wrapped, not cut
    assert legend._ncols > 1
    # the legend is drawn inside the figure, under the axes, and the figure grew for it
    png = figure_png(fig, dpi=100)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    box, frame = legend.get_window_extent(renderer), fig.bbox
    assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0
    assert box.y1 <= ax.get_window_extent(renderer).y0
    assert Image.open(io.BytesIO(png)).size[1] > 5.0 * 100 + 100


def test_series_styles_and_layout():
    assert len({(s["color"], s["linestyle"], s.get("marker")) for s in series_styles(80)}) == 80
    assert legend_layout(["a"] * 6).inside and not legend_layout(["a"] * 7).inside
    assert not legend_layout(["x" * 50]).inside  # one long spec goes below too


def test_labels_are_plain_text():
    fig = schedules_figure({"_hidden $5$": parse("constant(0.1)")}, 5, title="cost $x$ per run")
    figure_png(fig)  # drawing raises on bad mathtext; plain text cannot
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["\u200b_hidden \\$5\\$"]
    assert ax.get_title() == "cost \\$x\\$ per run"


def test_plot_schedules_writes_png(tmp_path):
    out = plot_schedules({"c": parse("constant(0.1)")}, 10, tmp_path / "sub" / "p.png")
    assert out == tmp_path / "sub" / "p.png" and Image.open(out).format == "PNG"
    assert not list(tmp_path.rglob("*.tmp"))


def test_cli_plot_many_specs_log(schedule_cases, tmp_path):
    out = tmp_path / "many.png"
    specs = list(schedule_cases.values())
    r = subprocess.run(
        [sys.executable, "-m", "lrlab.cli", "plot", *specs, "-n", "40", "--log", "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    width, height = Image.open(out).size
    assert height > width * 0.8  # grown to hold the 25-entry legend below the plot


@pytest.mark.parametrize("bad", [["nope(1)"], []])
def test_cli_plot_bad_input(bad, tmp_path, capsys):
    from lrlab.cli import main

    code = main(["plot", *bad, "-n", "5", "-o", str(tmp_path / "x.png")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("lrlab: error:") and "Traceback" not in err, err
    assert not (tmp_path / "x.png").exists()
