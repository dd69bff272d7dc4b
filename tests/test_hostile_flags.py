"""Flags and output paths nobody wrote a test for, run as a user runs lrlab: each bad one
ends in one line ``lrlab: error: ...`` naming the flag and the fix, exit 2.

Each case failed before its fix: ``--memory 1e400GB`` and ``--ray --task-cpus inf``
(tracebacks), ``--engine ""`` (the file's engine, silently), ``find-lr --start`` above
``--end`` (a descending ramp, or a division by zero), ``--steps 1e9`` (hours of training),
``--seed`` outside the file's seeds (seed 0, silently), a spec with non-ASCII digits
(accepted: ``constant(٠.1)``), and an output path that is a device, FIFO or a link to one
(as root, ``-o /dev/full`` replaced the device with a regular file).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from lrlab_process import one_error_line, run_lrlab
from test_hostile_inputs import csv_rows, experiment


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """``exp.toml`` on ``data.csv`` (not run)."""
    path = tmp_path_factory.mktemp("flags")
    csv_rows(path)
    (path / "exp.toml").write_text(experiment())
    return path


RUN_FLAGS = {
    "--memory 1e400GB": (["--memory", "1e400GB"], "memory must be a size like 512MB or 2GB"),
    "--memory nanGB": (["--memory", "nanGB"], "memory must be a size like 512MB or 2GB"),
    "--engine ''": (["--engine", ""], "unknown engine ''; use auto or one of"),
    "--task-cpus inf": (
        ["--ray", "--task-cpus", "inf"],
        "--task-cpus and --task-gpus must be finite and >= 0, got inf, 0.0",
    ),
}


@pytest.mark.parametrize("case", list(RUN_FLAGS))
def test_a_bad_run_flag_is_one_line_and_nothing_is_written(folder, tmp_path, case):
    flags, words = RUN_FLAGS[case]
    out = tmp_path / "out"
    line = one_error_line(run_lrlab("run", folder / "exp.toml", "--out", out, *flags, cwd=folder))
    assert words in line
    assert not out.exists()


FIND_LR_FLAGS = {
    "start above end": (["--start", "10", "--end", "1"], "start (10) must be below end (1)"),
    "start equals end": (["--start", "1", "--end", "1"], "start (1) must be below end (1)"),
    "a billion steps": (["--steps", "1000000000"], "steps must be at most 100,000"),
    "a seed the file has not": (["--seed", "7"], "--seed 7 is not a seed of"),
    "a negative seed": (["--seed", "-1"], "--seed -1 is not a seed of"),
}


@pytest.mark.parametrize("case", list(FIND_LR_FLAGS))
def test_a_bad_find_lr_flag_is_one_line_and_writes_no_figure(folder, tmp_path, case):
    flags, words = FIND_LR_FLAGS[case]
    png = tmp_path / "lr.png"
    line = one_error_line(run_lrlab("find-lr", folder / "exp.toml", "-o", png, *flags, cwd=folder))
    assert words in line, line
    assert not png.exists()


@pytest.mark.parametrize("spec", ["constant(\u0660.1)", "cosine(0.1, decay_steps=\uff11\uff10)"])
def test_a_spec_with_non_ascii_digits_is_refused(tmp_path, spec):
    proc = run_lrlab("curve", spec, "-n", "2", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("lrlab: error: bad spec at column ")
    assert "unexpected character" in proc.stderr and "write digits as 0-9" in proc.stderr


@pytest.mark.parametrize("target", ["fifo", "link-to-fifo"])
@pytest.mark.parametrize("command", ["plot", "export"])
def test_an_output_path_that_is_a_fifo_or_links_to_one_is_left_as_it_is(tmp_path, target, command):
    """A FIFO stands in for a device such as ``/dev/full``: renaming a new file over it
    would put a regular file in the system's place."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    path = fifo
    if target == "link-to-fifo":
        path = tmp_path / "out.png"
        path.symlink_to(fifo)
    if command == "plot":
        args = ["plot", "constant(0.1)", "-n", "3", "-o", path]
    else:
        args = ["export", tmp_path / "stored", "-o", path]
        csv_rows(tmp_path)
        (tmp_path / "exp.toml").write_text(experiment(experiment="seeds = 1"))
        done = run_lrlab("run", tmp_path / "exp.toml", "--out", tmp_path / "stored", "-q",
                         cwd=tmp_path)  # fmt: skip
        assert done.returncode == 0, done.stderr
    line = one_error_line(run_lrlab(*args, cwd=tmp_path))
    assert line == (
        f"lrlab: error: cannot write {path}: it is a FIFO (named pipe), not a regular file; "
        "give the path of a file to write"
    )
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert path.is_symlink() == (target == "link-to-fifo")


# --------------------------------------------------------------------------- migrate
def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _link_to_dev_zero(path: Path) -> None:
    path.symlink_to("/dev/zero")


def _sparse_300_mib(path: Path) -> None:
    with open(path, "wb") as f:
        f.truncate(300 << 20)


def _deep_notebook(path: Path) -> None:
    path.write_text("[" * 100_000 + "]" * 100_000)


def _nul_byte(path: Path) -> None:
    path.write_bytes(b"x = 1\x00\n")


MIGRATE_FILES = {  # name -> (how the file is made, the one line)
    "x.py FIFO": (_fifo, "{path} is a FIFO (named pipe), not a regular file"),
    "x.py link to /dev/zero": (_link_to_dev_zero, "{path} is a character device, not a"),
    "x.py of 300 MiB": (_sparse_300_mib, "source file {path} is 300 MiB, over the limit of 256"),
    "x.ipynb nested 100,000 deep": (_deep_notebook, "{path}: not a Jupyter notebook"),
    "x.py with a NUL byte": (_nul_byte, "{path}: not valid Python (source code string cannot"),
}


@pytest.mark.parametrize("case", list(MIGRATE_FILES))
def test_migrate_refuses_a_file_it_cannot_read_in_one_line(tmp_path, case):
    """Before: a FIFO hung, /dev/zero was read until the kernel killed lrlab, a large file
    was read whole, a deep notebook was a RecursionError, a NUL byte gave 'x.py:None:None'."""
    make, words = MIGRATE_FILES[case]
    path = tmp_path / case.split()[0]
    make(path)
    line = one_error_line(run_lrlab("migrate", path, cwd=tmp_path, timeout=60))
    assert line.startswith("lrlab: error: ") and words.format(path=path) in line, line


@pytest.mark.parametrize("target", ["file", "/dev/null"])
def test_demo_to_an_output_that_is_not_a_folder_is_one_line_before_it_trains(tmp_path, target):
    """``lrlab demo -o X`` where X is a file or a device: one line at once, X untouched."""
    path = tmp_path / "file" if target == "file" else Path(target)
    if target == "file":
        path.write_text("mine")
    done = run_lrlab("demo", "-o", path, cwd=tmp_path)
    line = one_error_line(done)
    if target == "file":  # click's own check of the option
        assert f"Directory '{path}' is a file" in line, line
    else:
        assert line == f"lrlab: error: {path} is not a folder; give a folder to --output"
    assert "trials" not in done.stdout  # refused before the curves, the plot or training
    assert path.read_text() == "mine" if target == "file" else path.is_char_device()
