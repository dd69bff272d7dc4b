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
    steps = [
        r"preparing population program 1/1 \(sgd, 4 trials\): initial weights \(2 seeds\), tracing",
        r"prepared population program 1/1 in \d+\.\ds \(initial weights and inputs \d+\.\ds, "
        r"tracing \d+\.\ds\): chunks of 4 trials vmapped, 2 epochs a call",  # short: one call
        r"compiling 1 population program\(s\) \(4 trials\)",
        r"compiled population program 1/1 in \d+\.\ds",
        r"training 4 trials x 2 epochs",
    ]
    assert all(re.fullmatch(p, ln) for p, ln in zip(steps, lines[3:8], strict=True)), lines[3:8]
    assert not [ln for ln in lines if ln.startswith("population:")]  # one call: no news
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


LONG = """
[experiment]
seeds = 4
engine = "population"

[data]
dataset = "csv:{data}"
validation = 0.33

[model]
spec = 'mlp(hidden=[256, 256])'

[training]
epochs = 24
batch_size = 47

[optimizers]
sgd = {{ type = "sgd", momentum = 0.8 }}

[schedules]
constant = "constant(0.05)"
time_decay = "time_decay(0.05, decay=0.002)"
"""


def test_a_long_population_chunk_reports_between_its_epochs(tmp_path):
    """8 trials x 24 epochs of a 34-256-256-1 MLP (1.1e10 multiply-adds, over the one-call
    limit): 8 calls of 3 epochs, each one line with the trial-epochs done and the best
    trial so far, all before the chunk's trials are stored."""
    from datafiles import IONOSPHERE_CSV

    (tmp_path / "exp.toml").write_text(LONG.format(data=IONOSPHERE_CSV))
    r = lrlab_cli("run", "exp.toml", "-o", "out", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert any(ln.endswith("chunks of 8 trials vmapped, 3 epochs a call") for ln in lines), lines
    pattern = (
        r"population: (\d+)/192 trial-epochs \((\d+)%\), "
        r"best so far: (constant|time_decay) val_accuracy=(0\.\d{4}|1\.0000)"
    )
    news = [re.fullmatch(pattern, ln) for ln in lines if ln.startswith("population:")]
    assert all(news) and len(news) == 8, lines
    assert [int(m[1]) for m in news] == list(range(24, 193, 24))
    assert [int(m[2]) for m in news] == [100 * k // 8 for k in range(1, 9)]
    first_trial = next(i for i, ln in enumerate(lines) if ln.startswith("trials "))
    assert lines.index(news[-1][0]) < first_trial  # trials are stored once all epochs are done
    assert "\r" not in r.stderr and "\x1b" not in r.stderr


def test_on_a_terminal_an_engine_step_is_the_bars_description():
    """A live bar (stderr a terminal) shows the engine's latest news in its last column;
    a stored trial clears it."""
    import io

    from lrlab.experiments.progress import RunProgress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    progress = RunProgress(stream=Terminal())
    progress.start(4, "")
    news = "population: 12/40 trial-epochs (30%), best so far: cosine val_accuracy=0.9712"
    progress.step(news)
    assert progress._bar.tasks[0].description == news
    progress.advance(1, "best: cosine val_accuracy=0.9700 (n=1)")
    assert progress._bar.tasks[0].description == ""
    assert progress._bar.tasks[0].completed == 1
    progress.stop()


def test_progress_whose_reader_is_gone_goes_quiet_and_the_run_stores_every_trial(tmp_path):
    """``lrlab run exp.toml 2>&1 | head``: once the reader is gone, writing progress fails;
    during training that used to fail the trials (``BrokenPipeError`` stored as their
    message). Now progress goes quiet and every trial is stored ``ok``. (A reader gone
    before training starts ends the run there, as rich's console does: exit 1, nothing
    trained.)"""
    import subprocess
    import sys

    from lrlab.experiments.store import Store
    from lrlab_process import LRLAB, lrlab_env

    (tmp_path / "exp.toml").write_text(EXP.replace('engine = "keras"', 'engine = "population"'))
    # a reader that leaves once training starts (the pipe breaks while trials train)
    leaves = "import sys\nfor line in sys.stdin:\n    if line.startswith('training'): break\n"
    reader = subprocess.Popen([sys.executable, "-c", leaves], stdin=subprocess.PIPE)
    done = subprocess.run(
        [*LRLAB, "run", "exp.toml", "-o", "out"],
        cwd=tmp_path,
        env=lrlab_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=reader.stdin,
        timeout=300,
    )
    reader.stdin.close()
    reader.wait()
    assert done.returncode == 0
    with Store.open_read_only(tmp_path / "out") as store:
        assert [t.status for t in store.trials()] == ["ok"] * 4


def test_a_closed_stream_silences_progress():
    import io

    from lrlab.experiments.progress import RunProgress

    class Gone(io.StringIO):
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

    progress = RunProgress(stream=Gone())
    progress.step("preparing")
    progress.start(2, "")
    progress.advance(1, "best: x")
    assert progress.quiet and progress.done == 1
