"""``lrlab find-lr``: the LR range test on an experiment's own model, data and optimizer."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from datafiles import IONOSPHERE_CSV
from lrlab.errors import LrlabError
from lrlab.experiments.find_lr import run_range_test
from lrlab.experiments.store import Store
from lrlab.reporting.find_lr import range_test_figure

IONOSPHERE = IONOSPHERE_CSV
DATASET = f"csv:{IONOSPHERE}" if IONOSPHERE.is_file() else "breast_cancer"
EXPERIMENT = f"""
[experiment]
name = "find-lr check"
seeds = 2
baseline = "adam / adam"

[data]
dataset = "{DATASET}"
validation = 0.3

[model]
spec = "mlp(hidden=[16])"

[training]
epochs = 3
batch_size = 32

[optimizers]
sgd = {{ type = "sgd", momentum = 0.9, schedules = ["constant"] }}
adam = {{ type = "adam", schedules = ["adam"] }}

[schedules]
constant = "constant(0.1)"
adam = "constant(0.001)"
"""
RAMP = {"start": 1e-5, "end": 10.0, "steps": 40}


@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("findlr") / "exp.toml"
    path.write_text(EXPERIMENT)
    return path


@pytest.fixture(scope="module")
def sgd_run(experiment):
    return run_range_test(experiment, config="constant / sgd", **RAMP)


def test_range_test_uses_the_configs_optimizer_and_data(sgd_run):
    test = sgd_run.test
    assert sgd_run.config == "constant / sgd" and sgd_run.optimizer["type"] == "sgd"
    assert sgd_run.optimizer["momentum"] == 0.9 and sgd_run.batch_size == 32
    assert sgd_run.rows == int(351 * 0.7) if DATASET.startswith("csv") else sgd_run.rows > 0
    # the lr ramps exponentially from start; the loss was measured at each lr
    n = len(test.lrs)
    assert 3 <= n <= RAMP["steps"] and len(test.losses) == n
    expected = RAMP["start"] * (RAMP["end"] / RAMP["start"]) ** (np.arange(n) / 39)
    np.testing.assert_allclose(test.lrs, expected, rtol=1e-6)
    assert test.suggestion is not None and RAMP["start"] <= test.suggestion <= RAMP["end"]


def test_range_test_figure(sgd_run):
    fig = range_test_figure(sgd_run)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert ax.get_xlabel() == "learning rate" and ax.get_ylabel() == "training loss"
    dot = next(ln for ln in ax.get_lines() if ln.get_gid() == "suggestion")
    chosen = sgd_run.test.suggestion
    x = float(dot.get_xdata()[0])
    assert x == pytest.approx(chosen, rel=0.2)  # the nearest measured lr
    assert float(dot.get_ydata()[0]) in sgd_run.test.smoothed
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert f"suggested lr {chosen:.3g}" in labels and "smoothed loss" in labels
    assert "config constant / sgd (sgd" in ax.get_title()


def test_default_config_is_the_baseline(experiment):
    run = run_range_test(experiment, steps=5, start=1e-4, end=1e-2)
    assert run.config == "adam / adam" and run.optimizer["type"] == "adam"


def test_experiment_folder_gives_the_same_test(experiment, sgd_run, tmp_path):
    """A folder with a store is tested with the experiment file stored in it."""
    with Store.open(tmp_path, create=True) as store:
        store.initialize({"config_text": EXPERIMENT, "config_source": str(experiment)})
    run = run_range_test(tmp_path, config="constant / sgd", **RAMP)
    np.testing.assert_allclose(run.test.losses, sgd_run.test.losses, rtol=1e-5)
    assert run.test.suggestion == pytest.approx(sgd_run.test.suggestion, rel=1e-5)


def test_bad_input(experiment, tmp_path):
    with pytest.raises(
        LrlabError, match=r"no config 'nope' .* use one of: constant / sgd, adam / adam"
    ):
        run_range_test(experiment, config="nope")
    with Store.open(tmp_path, create=True) as store:
        store.initialize({"config_text": "{}", "config_source": "lrlab.compare"})
    with pytest.raises(LrlabError, match="lrlab.compare"):
        run_range_test(tmp_path)


def lrlab(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "lrlab.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
        env={**os.environ, "KERAS_BACKEND": "jax"},
    )


def test_cli(experiment, tmp_path):
    r = lrlab("find-lr", experiment, "--config", "constant / sgd", "--steps", "30", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    match = re.search(r"^suggested lr: (\S+)$", r.stdout, re.M)
    assert match and 1e-7 <= float(match.group(1)) <= 10
    assert (experiment.parent / "exp-find-lr.png").read_bytes()[:4] == b"\x89PNG"  # beside it
    assert not list(tmp_path.iterdir())


def test_cli_write_puts_the_suggestions_into_lrs(tmp_path):
    """--write: the diff on stdout, then the file with only its lrs changed, comments kept."""
    text = EXPERIMENT.replace('baseline = "adam / adam"\n', "")  # labels gain "/ lr=..."
    text = text.replace("seeds = 2\n", "seeds = 2  # paired\nlrs = [0.1, 0.2]  # by hand\n")
    path = tmp_path / "exp.toml"
    path.write_text(text)
    (tmp_path / "cwd").mkdir()
    args = ("find-lr", path, "--config", "constant / sgd / lr=0.1", "--steps", "30", "--write")
    r = lrlab(*args, cwd=tmp_path / "cwd")
    assert r.returncode == 0, r.stderr
    values = {
        name: float(v) for name, v in re.findall(r"^  (steepest|min / 10): (\S+)$", r.stdout, re.M)
    }
    lrs = sorted(set(values.values()))
    assert lrs and all(1e-5 <= v <= 10 for v in lrs)
    written = f"lrs = [{', '.join(repr(v) for v in lrs)}]  # by hand"
    assert path.read_text() == text.replace("lrs = [0.1, 0.2]  # by hand", written)
    diff = f"-lrs = [0.1, 0.2]  # by hand\n+{written}\n"
    assert diff in r.stdout and f"--- {path}\n+++ {path}\n" in r.stdout
    assert f"wrote lrs = [{', '.join(repr(v) for v in lrs)}] into {path}" in r.stderr
    assert (tmp_path / "exp-find-lr.png").is_file() and not list((tmp_path / "cwd").iterdir())


def test_cli_write_refuses_a_file_that_would_not_load(tmp_path):
    """A baseline naming an lr of the old list: the new lrs would orphan it."""
    text = EXPERIMENT.replace('"adam / adam"', '"adam / adam / lr=0.1"')
    text = text.replace("seeds = 2\n", "seeds = 2\nlrs = [0.1, 0.2]\n")
    path = tmp_path / "exp.toml"
    path.write_text(text)
    args = ("find-lr", path, "--config", "constant / sgd / lr=0.1", "--steps", "30", "--write")
    r = lrlab(*args, cwd=tmp_path)
    assert r.returncode == 2 and path.read_text() == text
    wrote, line = r.stderr.splitlines()  # the plot, then why the file is kept
    assert wrote == f"wrote {tmp_path / 'exp-find-lr.png'}"
    assert line.startswith("lrlab: error: with lrs = [") and "nothing written" in line
    assert "experiment.baseline: 'adam / adam / lr=0.1' is not a config" in line


def test_cli_write_refuses_a_folder_before_testing(tmp_path):
    r = lrlab("find-lr", tmp_path, "--write", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr == (
        "lrlab: error: --write needs the experiment's TOML file, not its folder\n"
    )


def test_cli_bad_input(experiment, tmp_path, capsys):
    from lrlab.cli import main

    for args, message in (
        (["--config", "nope"], "lrlab: error: no config 'nope'"),
        (["--start", "0"], "lrlab: error: Invalid value for '--start'"),
        (["--steps", "2"], "lrlab: error: Invalid value for '--steps'"),
    ):
        code = main(["find-lr", str(experiment), *args, "-o", str(tmp_path / "x.png")])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith(message) and err.count("\n") == 1, err
    assert not (tmp_path / "x.png").exists()
