"""Progress of ``lrlab run`` in a log (stderr not a terminal): one complete plain line per
long step and per stored trial, the population engine saying what it does between results."""

from __future__ import annotations

import re

from test_cli_experiments import EXP
from test_cli_experiments import lrlab as lrlab_cli


def test_a_log_gets_plain_lines_for_steps_and_trials(tmp_path):
    (tmp_path / "exp.toml").write_text(EXP.replace('engine = "keras"', 'engine = "population"'))
    r = lrlab_cli("run", "exp.toml", "-o", "out", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert re.fullmatch(r"loading data csv:\S+ionosphere\.csv \(\d+\.\ds\)", lines[0])
    assert re.fullmatch(r"checking the model on 351 rows \(\d+\.\ds\)", lines[1])
    assert lines[2].startswith("exp: 4 trials (2 configs x 2 seeds), 0 already stored, 4 to run")
    assert lines[2].endswith("-> out")  # one line, however long: no wrapping at 80 columns
    assert lines[3:5] == [
        "compiling 1 population program(s) (4 trials)",
        "training 4 trials x 2 epochs",
    ]
    trials = [ln for ln in lines if ln.startswith("trials ")]
    assert [ln.split()[1] for ln in trials] == ["1/4", "2/4", "3/4", "4/4"]
    pattern = r"trials \d/4 \(\d+%\) \d:\d\d:\d\d best: \w+ val_accuracy=0\.\d{4} \(n=\d\)"
    assert all(re.fullmatch(pattern, ln) for ln in trials), trials
    assert re.fullmatch(r"4/4 trials x 2 epochs trained \(4 in \d+\.\ds\)", lines[-1])
    assert "\r" not in r.stderr and "\x1b" not in r.stderr  # no live-bar redraws or colours


def test_quiet_shows_nothing(tmp_path):
    (tmp_path / "exp.toml").write_text(EXP.replace("seeds = 2", "seeds = 1"))
    r = lrlab_cli("run", "exp.toml", "-o", "out", "-q", cwd=tmp_path)
    assert r.returncode == 0 and r.stderr == ""
