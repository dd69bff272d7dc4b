"""``lrlab run/report/export`` as subprocesses: bad files, end to end, resume after kill -9,
the folder lock, Ctrl-C."""

from __future__ import annotations

import csv
import io
import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from datafiles import IONOSPHERE_CSV
from lrlab_process import LRLAB, lrlab_env
from lrlab_process import run_lrlab as lrlab

IONO = IONOSPHERE_CSV

EXP = f"""
[experiment]
seeds = 2
engine = "keras"

[data]
dataset = "csv:{IONO}"
validation = 0.33

[model]
spec = 'mlp(hidden=[8])'

[training]
epochs = 2
batch_size = 47  # 235 training rows: 5 full batches, no second compile for a short one

[optimizers]
sgd = {{ type = "sgd", momentum = 0.8 }}

[schedules]
constant = "constant(0.1)"
time_decay = "time_decay(0.1, decay=0.002)"
"""


def popen(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [*LRLAB, *args],
        cwd=cwd,
        env=lrlab_env(cwd),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stored(db: Path) -> list[tuple]:
    if not db.exists():
        return []
    conn = sqlite3.connect(db, timeout=30)
    try:
        return conn.execute(
            "SELECT key, status, final, started FROM trials ORDER BY key"
        ).fetchall()
    except sqlite3.OperationalError:  # created but no schema yet
        return []
    finally:
        conn.close()


BAD = {
    "missing field": ("epochs = 2\n", ""),
    "wrong type": ("batch_size = 47", 'batch_size = "47"'),
    "unknown schedule": ('"constant(0.1)"', '"constnt(0.1)"'),
    "unknown dataset": (f'"csv:{IONO}"', '"ionosfere"'),
    "unreadable csv": (f'"csv:{IONO}"', '"csv:binary.csv"'),
    "non-numeric column": (f'"csv:{IONO}"', '"csv:text.csv"'),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_files_exit_2_with_one_line_and_leave_nothing(tmp_path, case):
    (tmp_path / "binary.csv").write_bytes(b"\xff\xfe\x00\x81garbage\n")
    (tmp_path / "text.csv").write_text("1,2,g\n3,high,b\n")
    old, new = BAD[case]
    assert old in EXP
    (tmp_path / "exp.toml").write_text(EXP.replace(old, new, 1))
    out = tmp_path / "out"
    r = lrlab("run", "exp.toml", "--out", str(out), cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lrlab: error: exp.toml: "), r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""
    assert not out.exists()
    assert not (tmp_path / "runs").exists()


def test_run_report_export_resume_and_changed_config(tmp_path):
    (tmp_path / "exp.toml").write_text(EXP)
    r = lrlab("run", "exp.toml", "--out", "out", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "4 trials (2 configs x 2 seeds), 0 already stored, 4 to run" in r.stderr
    assert "constant" in r.stdout and "time_decay" in r.stdout and "val_accuracy" in r.stdout
    db = tmp_path / "out" / "store.sqlite"
    first = stored(db)
    assert [(k, s) for k, s, _, _ in first] == [
        ("constant|seed=0", "ok"),
        ("constant|seed=1", "ok"),
        ("time_decay|seed=0", "ok"),
        ("time_decay|seed=1", "ok"),
    ]

    r = lrlab("report", "out", "--format", "markdown", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "| 2 | time_decay | 2 |" in r.stdout or "| 1 | time_decay | 2 |" in r.stdout
    assert "Δ = config − constant" in r.stdout

    r = lrlab("export", "out", cwd=tmp_path)
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert r.returncode == 0 and len(rows) == 4
    assert {row["status"] for row in rows} == {"ok"}
    assert float(rows[0]["final_val_accuracy"]) > 0.5
    r = lrlab("export", "out", "--format", "json", "-o", "all.json", cwd=tmp_path)
    data = json.loads((tmp_path / "all.json").read_text())
    assert r.returncode == 0 and len(data["trials"]) == 4
    assert [e["epoch"] for e in data["trials"][0]["epochs"]] == [1, 2]
    assert data["experiment"]["config_text"] == EXP

    # resume: nothing to do, nothing duplicated or rewritten
    r = lrlab("run", "exp.toml", "--out", "out", cwd=tmp_path)
    assert r.returncode == 0 and "4 already stored, 0 to run" in r.stderr
    assert stored(db) == first

    # a change to the stored trials is refused by name, then started over with --new (old
    # store kept); fewer seeds alone would not be a change (seeds only grow: test_grow.py)
    changed = EXP.replace("seeds = 2", "seeds = 1").replace("epochs = 2", "epochs = 1")
    (tmp_path / "exp.toml").write_text(changed)
    r = lrlab("run", "exp.toml", "--out", "out", cwd=tmp_path)
    assert r.returncode == 2 and "training.epochs changed from 2 to 1" in r.stderr
    assert "--new" in r.stderr and stored(db) == first
    r = lrlab("run", "exp.toml", "--out", "out", "--new", "-q", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert [k for k, *_ in stored(db)] == ["constant|seed=0", "time_decay|seed=0"]
    (kept,) = (tmp_path / "out").glob("store.*.sqlite")
    assert stored(kept) == first


def wait_for(predicate, proc: subprocess.Popen, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"run ended early ({proc.returncode}): {proc.stderr.read()}")
        assert time.monotonic() < deadline, "timed out waiting for the run"
        time.sleep(0.1)


KILL_EPOCHS = 40


def test_kill_9_mid_run_loses_and_duplicates_nothing(tmp_path):
    # long enough trials that the run is still going when the second run and the kill come
    text = EXP.replace("seeds = 2", "seeds = 4").replace("epochs = 2", f"epochs = {KILL_EPOCHS}")
    (tmp_path / "exp.toml").write_text(text)
    db = tmp_path / "out" / "store.sqlite"

    proc = popen("run", "exp.toml", "--out", "out", cwd=tmp_path)
    try:
        wait_for(lambda: len(stored(db)) >= 2, proc)
        # the folder is in use: a second run refuses, without touching the store
        second = lrlab("run", "exp.toml", "--out", "out", cwd=tmp_path)
        assert second.returncode == 2 and "is in use by another 'lrlab run'" in second.stderr
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    before = stored(db)
    assert 2 <= len(before) < 8, "the kill should land mid-run"

    # Ctrl-C (SIGINT) stops cleanly after storing what finished
    proc = popen("run", "exp.toml", "--out", "out", cwd=tmp_path)
    try:
        wait_for(lambda: len(stored(db)) > len(before), proc)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    middle = stored(db)
    if len(middle) < 8:  # interrupted before the end (the run may also have just finished)
        assert proc.returncode == 130, err
        assert f"stopped: {len(middle)} of 8 trials are stored" in err
        assert "lrlab: interrupted" in err and "Traceback" not in err

    r = lrlab("run", "exp.toml", "--out", "out", "-q", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    after = stored(db)
    assert len(after) == 8 and len({k for k, *_ in after}) == 8
    assert set(before) <= set(after) and set(middle) <= set(after)  # stored rows never rewritten
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT COUNT(*) FROM epochs").fetchone()[0] == 8 * KILL_EPOCHS
    conn.close()


def test_report_on_a_folder_without_a_store(tmp_path):
    r = lrlab("report", str(tmp_path), cwd=tmp_path)
    assert r.returncode == 2 and "holds no lrlab store" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
