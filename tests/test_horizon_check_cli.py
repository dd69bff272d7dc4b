"""Where the horizon check runs: ``lrlab check`` and ``lrlab.check``, ``lrlab run`` (printed,
stored, in the report; ``--strict`` refuses), the Keras ``Scheduler`` and ``lrlab.torch``."""

from __future__ import annotations

import doctest
import json
import re
import sqlite3
import warnings

import numpy as np
import pytest

import lrlab
from datafiles import IONOSPHERE_CSV
from lrlab import HorizonWarning
from lrlab_process import run_lrlab as lrlab_cli
from readme_console import console_blocks, console_env, readme_section, replay

SPECS = ["cosine(0.1, decay_steps=40)", "one_cycle(0.1, total_steps=520)", "exp_decay(0.1, k=0.05)"]


# --------------------------------------------------------------------------- lrlab check
def test_cli_and_python_give_the_same_findings_and_linter_exit_codes():
    run = ["--epochs", "40", "--steps-per-epoch", "13"]
    done = lrlab_cli("check", *SPECS, *run)
    assert done.returncode == 1, done.stderr
    expected = []
    for spec in SPECS:
        findings = lrlab.check(spec, epochs=40, steps_per_epoch=13)
        head = f"{spec} (40 epochs x 13 updates, unit step):"
        expected.append(head if findings else f"{head} ok")
        expected += [f"  {f.kind}: {f.message}" for f in findings]
    assert done.stdout.splitlines() == expected
    assert [len(lrlab.check(s, epochs=40, steps_per_epoch=13)) for s in SPECS] == [1, 0, 0]

    clean = lrlab_cli("check", SPECS[0], *run, "--unit", "epoch")
    assert (clean.returncode, clean.stdout) == (
        0,
        f"{SPECS[0]} (40 epochs x 13 updates, unit epoch): ok\n",
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["cosine(0.1", "--epochs", "4"], "bad spec at column 11"),
        (["plateau()", "--epochs", "4"], "reacts to a metric and has no curve"),
        (["constant(0.1)", "--epochs", "0"], "Invalid value for '--epochs'"),
        (["constant(0.1)", "--epochs", "4", "--unit", "batch"], "Invalid value for '--unit'"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(args, message):
    done = lrlab_cli("check", *args)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("lrlab: error: ") and message in done.stderr
    assert "Traceback" not in done.stderr


# --------------------------------------------------------------------------- lrlab run
EXP = f"""
[experiment]
seeds = 1
engine = "keras"

[data]
dataset = "csv:{IONOSPHERE_CSV}"
validation = 0.33

[model]
spec = 'mlp(hidden=[4])'

[training]
epochs = 2
batch_size = 47  # 235 training rows: 5 updates per epoch

[optimizers]
sgd = {{ type = "sgd" }}

[schedules]
constant = "constant(0.1)"
cosine = "cosine(0.1, decay_steps=2)"
"""

MIXUP = (
    "its horizon (2) is the run's epoch count, but the unit is step: it ends after 2 of 10 "
    'updates; did you mean unit = "epoch"?'
)


def test_run_strict_refuses_before_anything_is_written(tmp_path):
    (tmp_path / "exp.toml").write_text(EXP)
    done = lrlab_cli("run", "exp.toml", "--out", "out", "--strict", cwd=tmp_path)
    assert done.returncode == 2 and not (tmp_path / "out").exists()
    assert done.stderr == (
        f"lrlab: error: --strict: the horizon of cosine does not fit the run: {MIXUP} (fix the "
        "schedule or its unit, or drop --strict; lrlab check SPEC shows all findings)\n"
    )


def test_run_prints_stores_and_reports_the_findings(tmp_path):
    (tmp_path / "exp.toml").write_text(EXP)
    done = lrlab_cli("run", "exp.toml", "--out", "out", "-q", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[0] == f"horizon: cosine: {MIXUP}"
    conn = sqlite3.connect(tmp_path / "out" / "store.sqlite")
    (stored,) = conn.execute("SELECT value FROM meta WHERE key = 'horizon'").fetchone()
    conn.close()
    assert json.loads(stored) == {"cosine": [{"kind": "unit", "message": MIXUP}]}
    # the report reads the store alone: the finding is on the page, escaped
    report = lrlab_cli("report", "out", "--html", "report.html", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    page = (tmp_path / "report.html").read_text()
    assert '<div class="note" id="horizon">' in page
    assert "<li><b>cosine</b>: its horizon (2) is the run&#x27;s epoch count" in page


# --------------------------------------------------------------------------- adapters
def _horizon_warnings(record) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, HorizonWarning)]


def test_keras_scheduler_warns_at_train_begin_from_fits_epochs_and_steps():
    import keras

    import lrlab.keras

    x = np.random.default_rng(0).normal(size=(30, 2)).astype("float32")
    y = x.sum(axis=1, keepdims=True)

    def fit(callback, model=None, epochs=4) -> list[str]:
        if model is None:
            model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
            model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            model.fit(x, y, epochs=epochs, batch_size=10, verbose=0, callbacks=[callback])
        return _horizon_warnings(record)

    spec = "cosine(0.1, decay_steps=4)"  # 4 epochs of 3 updates
    (message,) = fit(lrlab.keras.Scheduler(spec))
    assert message.startswith(f"lrlab.keras.Scheduler: {spec}: its horizon (4)")
    assert message.endswith('did you mean unit = "epoch"?')
    assert fit(lrlab.keras.Scheduler(spec, per="epoch")) == []
    assert fit(lrlab.keras.Scheduler(spec, steps_per_epoch=3)) == []
    assert fit(lrlab.keras.Scheduler("cosine(0.1, decay_steps=12)")) == []
    # a second fit continues the schedule (optimizer.iterations): its run is both fits
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    scheduler = lrlab.keras.Scheduler("cosine(0.1, decay_steps=12)")
    (first,) = fit(scheduler, model, epochs=2)
    assert "the run ends at 50% of the decay (6 of 12 updates)" in first
    assert fit(scheduler, model, epochs=2) == []


def test_torch_scheduler_warns_given_the_runs_length():
    torch = pytest.importorskip("torch")
    import lrlab.torch

    def make(spec, **length) -> list[str]:
        opt = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=1.0)
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            lrlab.torch.scheduler(opt, spec, **length)
        return _horizon_warnings(record)

    spec = "cosine(0.1, decay_steps=40)"
    (message,) = make(spec, epochs=40, steps_per_epoch=13)
    assert message.startswith(f"lrlab.torch.scheduler: {spec}: its horizon (40)")
    assert make(spec, epochs=40, steps_per_epoch=13, unit="epoch") == []
    assert make(spec, total_steps=40) == []
    (message,) = make(spec, total_steps=400)
    assert "the last 360 of 400 updates train at lr 0.0" in message
    assert make(spec) == []  # no length: nothing to check
    with pytest.raises(lrlab.LrlabError, match="not both"):
        make(spec, total_steps=40, epochs=4)


# --------------------------------------------------------------------------- README
SECTION = "Does the horizon fit the run? `lrlab check`"


def test_readme_check_section_outputs_are_what_the_cli_prints(tmp_path):
    blocks = console_blocks(readme_section(SECTION))
    assert sum(len(b) for b in blocks) >= 3
    replay(blocks, tmp_path, console_env(tmp_path))


def test_readme_check_section_python_example_runs():
    (example,) = re.findall(r"^```pycon\n(.*?)^```$", readme_section(SECTION), re.M | re.S)
    test = doctest.DocTestParser().get_doctest(example, {}, "README", "README.md", 0)
    runner = doctest.DocTestRunner()
    runner.run(test)
    assert runner.summarize(verbose=False) == (0, len(test.examples)) and test.examples
