"""``lrlab list``, ``lrlab curve`` and ``lrlab plot``, run as a user runs them: a subprocess."""

from __future__ import annotations

import csv
import io
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lrlab import parse
from lrlab.schedules import REGISTRY

ENTRY = Path(sys.executable).with_name("lrlab")
COMMAND = [str(ENTRY)] if ENTRY.exists() else [sys.executable, "-m", "lrlab.cli"]


def lrlab(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "jax")}
    return subprocess.run(
        [*COMMAND, *args], capture_output=True, text=True, timeout=120, env=env, cwd=cwd
    )


def assert_usage_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr.startswith("lrlab: error: ")
    assert result.stderr.count("lrlab: error:") == 1
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr


def test_list_names_every_registered_schedule_with_its_signature():
    result = lrlab("list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    heads = {line.split("(")[0] for line in lines if not line.startswith(" ")}
    assert heads == set(REGISTRY)
    assert "step_decay(lr, drop, every, offset=0)" in lines
    assert "``" not in result.stdout


SPECS = [
    "warmup(5, cosine(0.1, decay_steps=95))",
    "time_decay(0.1, decay=0.001, cumulative=true)",
    "one_cycle(0.1, total_steps=50, three_phase=true)",
    "sequence([constant(0.1), exp_decay(0.1, k=0.1)], boundaries=[20])",
]


@pytest.mark.parametrize("spec", SPECS)
def test_curve_json_prints_exactly_n_floats_equal_to_the_schedule(spec):
    result = lrlab("curve", spec, "--steps", "137", "--format", "json")
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert isinstance(values, list) and len(values) == 137
    assert all(isinstance(v, float) for v in values)
    assert values == parse(spec).curve(137).tolist()  # exact: JSON floats round-trip


def test_curve_csv_has_a_step_lr_header_and_one_row_per_step():
    spec = "step_decay(0.1, drop=0.5, every=10, offset=1)"
    result = lrlab("curve", spec, "-n", "25", "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["step", "lr"]
    assert [int(r[0]) for r in rows[1:]] == list(range(25))
    np.testing.assert_array_equal([float(r[1]) for r in rows[1:]], parse(spec).curve(25))
    assert float(rows[10][1]) == 0.05  # the seed tutorial's drop at epoch 9


def test_curve_table_is_the_default():
    result = lrlab("curve", "constant(0.25)", "-n", "3")
    assert result.returncode == 0, result.stderr
    assert "0.25" in result.stdout and "step" in result.stdout


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert data.rstrip(b"\x00")[-8:-4] == b"IEND"
    return width, height


def test_plot_writes_a_png(tmp_path):
    out = tmp_path / "sub" / "curves.png"
    result = lrlab("plot", SPECS[0], SPECS[2], "--steps", "100", "-o", str(out), "--log")
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 1000
    width, height = _png_size(out)
    assert width > 100 and height > 100
    assert not list(out.parent.glob("*.tmp"))


def test_the_plotted_figure_has_one_labelled_line_per_spec():
    from lrlab.reporting.plots import schedules_figure

    schedules = {spec: parse(spec) for spec in SPECS}
    fig = schedules_figure(schedules, 60)
    (ax,) = fig.axes
    lines = ax.get_lines()
    assert [line.get_gid() for line in lines] == [f"curve:{spec}" for spec in SPECS]
    for line, spec in zip(lines, SPECS, strict=True):
        np.testing.assert_array_equal(line.get_ydata(), parse(spec).curve(60))
    legend = [t.get_text().replace("\n", " ") for t in ax.get_legend().get_texts()]
    assert legend == SPECS  # long specs are wrapped, not cut


@pytest.mark.parametrize(
    "args, needles",
    [
        (
            ["curve", "cosin(0.1, 10)", "-n", "5"],
            ["unknown schedule 'cosin'", "did you mean cosine"],
        ),
        (["curve", "cosine(0.1, 10", "-n", "5"], ["expected ',' or ')'", "^"]),
        (["curve", "cosine(0.1, 10, alpha=2)", "-n", "5"], ["'alpha' must be in [0, 1]"]),
        (["curve", "plateau()", "-n", "5"], ["has no curve of its own"]),
        (["curve", "constant(0.1)", "--steps", "0"], ["--steps"]),
        (["curve", "constant(0.1)", "--steps", "-3"], ["--steps"]),
        (["curve", "constant(0.1)", "--steps", "many"], ["--steps"]),
        (["curve", "constant(0.1)"], ["--steps"]),
        (["curve", "constant(0.1)", "-n", "3", "--format", "xml"], ["--format"]),
        (["curve", "constant(0.1)", "-n", "3", "--bogus"], ["--bogus"]),
        (["curve", "x" * 5000, "-n", "3"], ["the limit is"]),
        (["plot", "constant(0.1)", "cosin(1)", "-n", "5", "-o", "{tmp}/x.png"], ["cosin"]),
        (["plot", "constant(0.1)", "-n", "5", "-o", "{tmp}"], ["is a directory"]),
        (["plot", "constant(0.1)", "-n", "5", "-o", "/proc/lrlab/x.png"], ["cannot write"]),
        (["plot", "constant(0.1)", "-n", "5"], ["--output"]),
        (["nosuchcommand"], ["No such command"]),
    ],
)
def test_bad_input_exits_2_with_one_message_and_no_traceback(args, needles, tmp_path):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = lrlab(*args)
    assert_usage_error(result, *needles)
    assert not (tmp_path / "x.png").exists()  # nothing half-written
