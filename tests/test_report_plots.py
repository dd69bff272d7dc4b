"""``lrlab plot`` / plot_schedules: one distinct line per spec and a legend that stays readable."""

from __future__ import annotations

import io
import subprocess
import sys

import hypothesis.strategies as st
import matplotlib
import numpy as np
import pytest
from hypothesis import given
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cbook import STEP_LOOKUP_MAP
from PIL import Image

from lrlab.reporting.data import ScheduleCurve
from lrlab.reporting.figures import curves_figure, lr_figure
from lrlab.reporting.plots import plot_schedules, schedules_figure
from lrlab.reporting.style import (
    figure_png,
    has_jumps,
    legend_layout,
    lr_drawstyle,
    series_styles,
)
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


# --------------------------------------------------------------------------- issue 15
TWELVE = [
    "multistep(0.1, milestones=[10, 25], gamma=0.1)",
    "cosine(0.1, decay_steps=30, alpha=0.1)",
    "exponential(0.1, decay_steps=7, decay_rate=0.5, staircase=true)",
    "cosine_restarts(0.1, first_decay_steps=8, t_mul=2.0, m_mul=0.5)",
    "cyclic(0.01, 0.1, step_size_up=5, step_size_down=3, mode='triangular2')",
    "sequence([linear(0.0, 0.1, steps=10), cosine(0.1, decay_steps=30)], boundaries=[10])",
    "wsd(0.1, warmup_steps=5, stable_steps=15, decay_steps=15, min_lr=0.001)",
    "one_cycle(0.1, total_steps=40, three_phase=true, anneal='linear')",
    "piecewise(boundaries=[10, 20], values=[0.1, 0.05, 0.01])",
    "step_decay(0.1, drop=0.5, every=10, offset=1)",
    "warmup(8, cosine(0.1, decay_steps=32))",
    "cosine(0.0, decay_steps=20, warmup_target=0.1, warmup_steps=10)",
]
STEPWISE = {TWELVE[0], TWELVE[2], TWELVE[3], TWELVE[8], TWELVE[9]}  # they jump somewhere


def drawn(line):
    """The vertices matplotlib draws for ``line`` (its drawstyle applied)."""
    x, y = line.get_xdata(), line.get_ydata()
    if line.get_drawstyle() == "default":
        return np.asarray(x, float), np.asarray(y, float)
    return STEP_LOOKUP_MAP[line.get_drawstyle()](x, y)


def vertical_edges(line):
    """The x of every vertical edge drawn: consecutive vertices with equal x, different y."""
    x, y = drawn(line)
    at = (np.diff(x) == 0) & (np.diff(y) != 0)
    return sorted(set(x[1:][at].tolist()))


def fits(fig):
    """Draw with Agg; the legend and everything drawn lie inside the figure."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    frame = fig.bbox
    for legend in [*fig.legends, *(ax.get_legend() for ax in fig.axes)]:
        if legend is not None:
            box = legend.get_window_extent(renderer)
            assert frame.x0 <= box.x0 and box.x1 <= frame.x1, (box, frame)
            assert frame.y0 <= box.y0 and box.y1 <= frame.y1, (box, frame)
    tight = fig.get_tightbbox(renderer)  # in inches: all that is drawn
    assert tight.x0 >= -0.01 and tight.y0 >= -0.01
    assert tight.x1 <= fig.get_figwidth() + 0.01 and tight.y1 <= fig.get_figheight() + 0.01


def test_twelve_curves_differ_in_colour_and_in_dashes():
    fig = schedules_figure({s: parse(s) for s in TWELVE}, 40)
    lines = list(curves(fig).values())
    colours = {ln.get_color() for ln in lines}
    dashes = {look(ln)[1:3] for ln in lines}
    assert len(colours) == 12 and len(dashes) == 12  # apart in colour and in grayscale
    assert all(ln.get_marker() in ("None", None, "") for ln in lines)  # no markers needed yet
    # the legend shows each line as drawn
    handles = fig.legends[0].legend_handles
    assert [look(h) for h in handles] == [look(ln) for ln in lines]


def test_past_twelve_curves_carry_markers_and_still_differ():
    styles = series_styles(30)
    assert [s.get("marker") for s in styles[:12]] == [None] * 12
    assert {s["marker"] for s in styles[12:24]} == {"o"} and styles[24]["marker"] == "s"
    assert [s["color"] for s in styles[12:24]] == [s["color"] for s in styles[:12]]
    assert len({(s["color"], s["linestyle"]) for s in styles[:24]}) == 24


@pytest.mark.parametrize(
    "labels",
    [
        TWELVE,
        [f"label{i} " + "word " * (4 * i) for i in range(12)],  # up to 230 characters
        ["x" * 300, "short"],  # one unbreakable label
        [f"{i} " + "WM" * 20 for i in range(8)],  # wider than 13 characters an inch
        ["a", "b"],  # inside the axes
    ],
    ids=["twelve-specs", "long-labels", "unbreakable", "wide-letters", "two-short"],
)
def test_the_legend_never_leaves_the_figure(labels):
    schedules = {label: parse(TWELVE[i % 12]) for i, label in enumerate(labels)}
    fig = schedules_figure(schedules, 40, title="a title " * 20)
    fits(fig)
    # saved tight, the PNG is the figure (trimmed, plus the 0.08-inch pad): nothing stuck out
    width, height = Image.open(io.BytesIO(figure_png(fig, dpi=100))).size
    assert width <= fig.get_figwidth() * 100 + 17 and height <= fig.get_figheight() * 100 + 17
    assert width >= fig.get_figwidth() * 100 * 0.9


def test_step_schedules_have_vertical_edges_and_smooth_ones_are_lines():
    fig = schedules_figure({s: parse(s) for s in TWELVE}, 40)
    lines = curves(fig)
    for spec, line in lines.items():
        np.testing.assert_array_equal(line.get_ydata(), parse(spec).curve(40))
        assert (line.get_drawstyle() == "steps-post") is (spec in STEPWISE), spec
    assert vertical_edges(lines[TWELVE[0]]) == [10, 25]  # the milestones
    assert vertical_edges(lines[TWELVE[8]]) == [11, 21]  # Keras: values[1] once step > 10
    assert vertical_edges(lines[TWELVE[2]]) == [7, 14, 21, 28, 35]  # staircase=true
    assert vertical_edges(lines[TWELVE[1]]) == []  # cosine: a line through its values
    # a step schedule's drawn path is flat between its jumps: every edge is level or upright
    x, y = drawn(lines[TWELVE[0]])
    assert np.all((np.diff(x) == 0) | (np.diff(y) == 0))


def test_cli_plot_twelve_specs(tmp_path):
    out = tmp_path / "twelve.png"
    r = subprocess.run(
        [sys.executable, "-m", "lrlab.cli", "plot", *TWELVE, "-n", "40", "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"wrote {out}"
    width, height = Image.open(out).size
    assert 900 <= width <= 1000 and height > 700  # 9 inches at 110 dpi, trimmed; legend below


# hypothesis: what counts as a jump
slopes = st.lists(
    st.tuples(st.integers(2, 12), st.floats(-0.01, 0.01, allow_nan=False)), min_size=1, max_size=6
)


@given(pieces=slopes, start=st.floats(0.05, 1.0))
def test_continuous_piecewise_linear_curves_have_no_jumps(pieces, start):
    steps = [slope for length, slope in pieces for _ in range(length)]
    curve = start + np.concatenate([[0.0], np.cumsum(steps)])
    assert not has_jumps(curve)
    assert lr_drawstyle(curve) == "default"


@given(
    pieces=slopes, start=st.floats(0.05, 1.0), where=st.integers(0, 100), size=st.floats(0.05, 1)
)
def test_a_jump_is_seen_wherever_it_is(pieces, start, where, size):
    steps = [slope for length, slope in pieces for _ in range(length)]
    steps[where % len(steps)] += size  # at least 0.04 against neighbours of at most 0.01
    curve = start + np.concatenate([[0.0], np.cumsum(steps)])
    assert has_jumps(curve) and lr_drawstyle(curve) == "steps-post"


@given(values=st.lists(st.floats(1e-6, 1.0), min_size=2, max_size=8), hold=st.integers(2, 6))
def test_a_per_epoch_schedule_held_over_its_updates_is_drawn_as_steps(values, hold):
    curve = np.repeat(values, hold)  # schedule_lr_table for unit = "epoch"
    assert has_jumps(curve) is (len(set(values)) > 1)


# --------------------------------------------------------------------------- the report's
class TwelveConfigs:
    """Just what lr_figure and curves_figure read of a ReportData: 12 configs, each with
    its own schedule (the odd ones per epoch), 3 seeds, 6 epochs of 5 updates."""

    steps_per_epoch, n_epochs, seeds = 5, 6, [0, 1, 2]
    epoch_keys = ["loss", "val_loss"]

    def __init__(self):
        self.labels = [f"config {i}: " + TWELVE[i] for i in range(12)]
        self.curves = [
            ScheduleCurve(label, TWELVE[i], "epoch" if i % 2 else "step", None, (label,))
            for i, label in enumerate(self.labels)
        ]

    def recorded_lr(self, configs):
        return np.full(self.n_epochs, np.nan)

    def curve_lr(self, curve):
        return parse(curve.spec).per_update(self.n_epochs, self.steps_per_epoch, curve.unit)

    def epoch_matrix(self, config, key):
        i = self.labels.index(config)
        epochs = np.arange(1, self.n_epochs + 1)
        return np.array([1.0 / (epochs + i) + 0.01 * seed for seed in self.seeds])


def test_report_lr_figure_steps_per_epoch_and_per_step():
    data = TwelveConfigs()
    fig = lr_figure(data)
    lines = curves(fig)
    assert len({look(ln) for ln in lines.values()}) == 12
    assert len({look(ln)[1:3] for ln in lines.values()}) == 12  # dashes alone tell them apart
    spe = data.steps_per_epoch
    for curve in data.curves:
        line = lines[curve.label]
        if curve.unit == "epoch":  # held for a whole epoch: steps, edges at epoch starts
            lr = parse(curve.spec).curve(data.n_epochs)
            np.testing.assert_array_equal(line.get_ydata(), np.repeat(lr, spe))
            edges = [spe * (e + 1) for e in np.flatnonzero(np.diff(lr))]
            assert vertical_edges(line) == edges
            assert (line.get_drawstyle() == "steps-post") is bool(edges)  # unless constant
        else:
            lr = parse(curve.spec).curve(data.n_epochs * spe)
            np.testing.assert_array_equal(line.get_ydata(), lr)
            assert (line.get_drawstyle() == "steps-post") is (curve.spec in STEPWISE)
    assert vertical_edges(lines[data.labels[0]]) == [10, 25]  # multistep, per step
    assert vertical_edges(lines[data.labels[6]]) == []  # wsd per step: a line
    assert vertical_edges(lines[data.labels[1]]) == [5, 10, 15, 20, 25]  # cosine per epoch
    fits(fig)


def test_report_curves_figure_twelve_configs_with_bands():
    data = TwelveConfigs()
    fig = curves_figure(data)
    for ax in fig.axes:
        means = [ln for ln in ax.get_lines() if (ln.get_gid() or "").startswith("mean:")]
        assert len({look(ln) for ln in means}) == 12 and len({look(ln)[1:3] for ln in means}) == 12
        bands = [c.get_facecolor()[0][:3] for c in ax.collections]
        assert [matplotlib.colors.to_hex(b) for b in bands] == [ln.get_color() for ln in means]
    (legend,) = fig.legends
    assert [t.get_text().replace("\n", " ") for t in legend.get_texts()] == data.labels
    fits(fig)
