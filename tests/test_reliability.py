"""Nothing lost, nothing duplicated: ``lrlab run`` under SIGKILL, a second run, diverging
trials, a full disk and a read-only folder.

Every check reads the store the way the next run would: ``PRAGMA integrity_check``, each
trial key once, each trial complete (its row and all its epochs, or nothing), trials
stored earlier unchanged, and in the end the same numbers as an uninterrupted run.

The experiment is tiny (Ionosphere, an 8-unit MLP, 2 epochs, 16 trials) and uses the
Keras engine, whose trials are bit-for-bit reproducible whatever else runs in the
process. One uninterrupted ``lrlab run`` (started by the ``uninterrupted`` fixture) is
the reference, and it is also the run that a second ``lrlab run`` must not disturb.
"""

from __future__ import annotations

import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from datafiles import IONOSPHERE_CSV
from lrlab.cli import main
from lrlab.experiments.config import load_config
from lrlab.experiments.engines.base import Engine, TrialResult
from lrlab.experiments.plan import build_plan
from lrlab.experiments.runner import run_plan
from lrlab.experiments.store import Store

IONO = IONOSPHERE_CSV
ROOT = Path(__file__).resolve().parents[1]
LRLAB = [sys.executable, "-m", "lrlab.cli"]
ENV = {
    **os.environ,
    "KERAS_BACKEND": "jax",
    "COLUMNS": "400",  # rich: one line per message
    # JAX's persistent compilation cache: each trial builds a new model, and compiling its
    # train step dominates a tiny trial; cached, the compiled code is the same bytes, so
    # results are unchanged (the campaign compares them bit for bit), only 5x faster.
    "JAX_COMPILATION_CACHE_DIR": os.path.join(tempfile.gettempdir(), "lrlab-tests-jax-cache"),
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
}
EPOCHS = 2
KILLS = 20


def experiment_text(
    seeds: int = 8,
    schedules: str = 'constant = "constant(0.1)"\ndecay = "time_decay(0.1, decay=0.01)"',
    dataset: str = f"csv:{IONO}",
    sgd: str = '{ type = "sgd", momentum = 0.8 }',
) -> str:
    return textwrap.dedent(
        f"""
        [experiment]
        seeds = {seeds}
        engine = "keras"
        [data]
        dataset = "{dataset}"
        validation = 0.33
        [model]
        spec = 'mlp(hidden=[8])'
        [training]
        epochs = {EPOCHS}
        batch_size = 64
        [optimizers]
        sgd = {sgd}
        [schedules]
        """
    ) + textwrap.dedent(schedules)


def snapshot(out: Path) -> dict[str, tuple]:
    """Every stored trial, checked: ``key -> (status, diverged_epoch, final, epochs)``.

    Asserts the file's integrity, that no key is stored twice, and that every trial is
    complete: all its epochs (``ok``), or the epochs up to where it diverged.
    """
    if not Store.exists_in(out):
        return {}
    with Store.open(out) as store:
        assert store.integrity_ok()
        trials = store.trials()
        epochs = store.epochs()
        keys = [t.key for t in trials]
        assert len(keys) == len(set(keys)) == store.count()
        assert set(epochs) <= set(keys)  # no epoch rows without their trial
        snap = {}
        for t in trials:
            rows = epochs.get(t.key, [])
            expected = {"ok": EPOCHS, "diverged": t.diverged_epoch, "failed": 0}[t.status]
            assert len(rows) == expected, (t.key, t.status, len(rows))
            snap[t.key] = (t.status, t.diverged_epoch, t.final, rows)
        return snap


class Run:
    """``lrlab run EXPERIMENT --out OUT`` as a subprocess; its stderr is read by a thread."""

    def __init__(self, experiment: Path, out: Path, *extra: str):
        self.proc = subprocess.Popen(
            [*LRLAB, "run", str(experiment), "--out", str(out), *extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
            cwd=ROOT,
        )
        self.lines: list[str] = []
        self.started = threading.Event()  # the header: the folder is locked, the store open
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line)
            if " to run with " in line:
                self.started.set()
        self.started.set()  # ended without a header

    def kill(self) -> bool:
        """SIGKILL it; True if it was still running (it did not end by itself)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._reader.join(10)
        return self.proc.returncode == -signal.SIGKILL

    def wait(self, timeout: float = 600) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(10)
        return code

    @property
    def stderr(self) -> str:
        return "".join(self.lines)


@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("reliability") / "exp.toml"
    path.write_text(experiment_text())
    return path


@pytest.fixture(scope="module")
def uninterrupted(experiment):
    """The reference: one ``lrlab run`` of the experiment, started now, never interrupted."""
    run = Run(experiment, experiment.parent / "reference")
    run.out = experiment.parent / "reference"
    yield run
    if run.proc.poll() is None:
        run.kill()


@pytest.fixture(scope="module")
def reference(uninterrupted) -> dict[str, tuple]:
    assert uninterrupted.wait() == 0, uninterrupted.stderr
    return snapshot(uninterrupted.out)


def test_a_second_run_on_a_folder_in_use_refuses_and_disturbs_nothing(experiment, uninterrupted):
    assert uninterrupted.started.wait(300)
    lock = uninterrupted.out / ".lrlab.lock"
    holder = lock.read_text()
    assert holder.startswith(f"pid {uninterrupted.proc.pid} on ")
    second = subprocess.run(
        [*LRLAB, "run", str(experiment), "--out", str(uninterrupted.out)],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=ROOT,
        timeout=300,
    )
    assert uninterrupted.proc.poll() is None  # the first run held the folder throughout
    assert second.returncode == 2
    assert second.stderr.splitlines() == [
        f"lrlab: error: {uninterrupted.out} is in use by another 'lrlab run' ({holder}); "
        "wait for it to finish, or use another --out folder"
    ]
    assert lock.read_text() == holder  # the refused run did not touch the lock either
    snapshot(uninterrupted.out)  # readable and consistent while the first run writes


def test_sigkill_at_random_moments_then_resume_loses_and_duplicates_nothing(
    experiment, uninterrupted, reference, tmp_path
):
    """>= 20 SIGKILLs at seeded random moments, each followed by a resume.

    Half the kills come 0-2 s after the run announced its sweep (so they land while
    trials are trained and stored), half 0.5-4 s after the start (imports, data, the
    lock, creating the store). After each kill the store is checked, and the
    trials stored before must be unchanged. A folder that completes is set aside and the
    campaign goes on in a new one; at the end every folder is finished by an ordinary
    resume and must equal the uninterrupted run exactly.
    """
    rng = random.Random(8)
    folders = [tmp_path / "run0"]
    seen: dict[str, tuple] = {}
    kills = mid_sweep = stored_by_killed_runs = 0
    while kills < KILLS:
        out = folders[-1]
        before = len(seen)
        run = Run(experiment, out)
        during_sweep = rng.random() < 0.5
        if during_sweep:
            assert run.started.wait(300), run.stderr
            time.sleep(rng.uniform(0.0, 2.0))
        else:
            time.sleep(rng.uniform(0.5, 4.0))
        killed = run.kill()
        if killed:
            kills += 1
            mid_sweep += during_sweep and before < 16
        else:
            assert run.proc.returncode == 0, run.stderr
        now = snapshot(out)
        assert {k: now[k] for k in seen} == seen  # nothing stored earlier changed or vanished
        if killed:
            stored_by_killed_runs += len(now) - before
        seen = now
        if len(now) == 16:
            folders.append(tmp_path / f"run{len(folders)}")
            seen = {}
    assert mid_sweep >= 5 and stored_by_killed_runs >= 1  # kills landed inside sweeps
    for out in folders:
        run = Run(experiment, out)
        assert run.wait() == 0, run.stderr
        assert snapshot(out) == reference
    assert len(reference) == 16


DIE_IN_STORE = """
import os, signal, sys
from lrlab.cli import main
from lrlab.experiments.config import load_config
from lrlab.experiments.engines.base import Engine, TrialResult
from lrlab.experiments.plan import build_plan
from lrlab.experiments.runner import run_plan
from lrlab.experiments.store import Store

WHERE, NTH = sys.argv[1], int(sys.argv[2])
add, calls = Store.add, []


class Dying:
    # the store's connection, except that the process dies at WHERE during the NTH add
    def __init__(self, conn):
        self.conn = conn

    def __getattr__(self, name):
        return getattr(self.conn, name)

    def executemany(self, sql, rows):
        if WHERE == "inside" and len(calls) == NTH and sql.startswith("INSERT INTO epochs"):
            os.kill(os.getpid(), signal.SIGKILL)  # the trial row is in, its epochs not yet
        return self.conn.executemany(sql, rows)

    def execute(self, sql, *args):
        out = self.conn.execute(sql, *args)
        if WHERE == "after" and len(calls) == NTH and sql == "COMMIT":
            os.kill(os.getpid(), signal.SIGKILL)  # committed, but the run never knew
        return out


def dying_add(self, result, versions=None):
    calls.append(result.trial.key)
    if not isinstance(self._conn, Dying):
        self._conn = Dying(self._conn)
    return add(self, result, versions)


Store.add = dying_add
sys.exit(main(sys.argv[3:]))
"""


@pytest.mark.parametrize("where", ["inside", "after"])
def test_sigkill_inside_and_right_after_a_trial_transaction(where, reference, tmp_path):
    """Deterministic kills at the two moments random ones rarely hit: between a trial's
    row and its epochs (inside the transaction), and just after its COMMIT."""
    exp, out = tmp_path / "exp.toml", tmp_path / "out"
    exp.write_text(experiment_text(seeds=2))
    argv = ["run", str(exp), "--out", str(out), "-q"]
    proc = subprocess.run(
        [sys.executable, "-c", DIE_IN_STORE, where, "3", *argv],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=ROOT,
        timeout=600,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    snap = snapshot(out)
    # trials 1 and 2 are stored; trial 3 is absent (inside) or complete (after)
    assert len(snap) == {"inside": 2, "after": 3}[where]
    assert {k: reference[k] for k in snap} == snap
    run = Run(exp, out)
    assert run.wait() == 0, run.stderr
    done = snapshot(out)
    assert len(done) == 4 and {k: reference[k] for k in done} == done


class Instant(Engine):
    """Results without training (the runner and store are what is tested)."""

    name = "instant"

    def run(self, plan, trials):
        for t in trials:
            rows = [
                {"epoch": e + 1, "lr": 0.1, "loss": 1.0, "val_loss": 1.0} for e in range(EPOCHS)
            ]
            yield TrialResult(t, "ok", epochs=rows, final={"loss": 1.0}, engine=self.name)


def test_a_store_file_left_without_settings_is_taken_as_new(tmp_path):
    """A kill (or a full disk) between creating store.sqlite and writing its settings
    leaves an empty file; the next run must not call it 'a different experiment'."""
    exp = tmp_path / "exp.toml"
    exp.write_text(experiment_text(seeds=2))
    plan = build_plan(load_config(exp), check_model=False)
    out = tmp_path / "out"
    out.mkdir()
    Store.open(out, create=True).close()  # tables, no settings, no trials
    assert Store.file_in(out).is_file() and not Store.exists_in(out)
    summary = run_plan(plan, out=out, engine=Instant(), quiet=True)
    assert (summary.skipped, summary.ran) == (0, 4)
    assert len(snapshot(out)) == 4 and Store.exists_in(out)


def test_a_diverging_trial_is_stored_with_its_epoch_and_the_sweep_goes_on(tmp_path, capsys):
    """Plain SGD at lr 10 on a regression (mean squared error) overflows in epoch 1.

    (Binary cross-entropy on probabilities is clipped by Keras, so a classifier's loss
    stays finite even at lr 1e6: its weights saturate the sigmoid instead.)
    """
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5))
    y = x @ np.array([1.0, -2.0, 3.0, 0.5, 1.0]) + rng.normal(size=200) * 0.1
    np.savetxt(tmp_path / "linear.csv", np.c_[x, y], delimiter=",", fmt="%.6f")
    exp = tmp_path / "exp.toml"
    exp.write_text(
        experiment_text(
            seeds=2,
            schedules='fine = "constant(0.01)"\nhuge = "constant(10)"',
            dataset="csv:linear.csv",
            sgd='{ type = "sgd" }',
        )
    )
    assert main(["run", str(exp), "--out", str(tmp_path / "out"), "-q"]) == 0
    snap = snapshot(tmp_path / "out")
    assert [k for k in snap] == ["fine|seed=0", "huge|seed=0", "fine|seed=1", "huge|seed=1"]
    for key in ("huge|seed=0", "huge|seed=1"):
        status, epoch, final, rows = snap[key]
        assert status == "diverged" and epoch >= 1
        bad = [r["epoch"] for r in rows if not math.isfinite(r["loss"] + r["val_loss"])]
        assert bad == [epoch]  # the first non-finite epoch, and training stopped there
    assert snap["fine|seed=1"][0] == "ok"  # the trial after a divergence ran normally
    table = capsys.readouterr().out  # the results table counts them
    assert re.search(r"huge .* 2 \S*$", table, re.MULTILINE), table


# --------------------------------------------------------------------------- a full disk
def test_a_full_store_is_a_clear_error_and_the_store_stays_consistent(
    experiment, reference, tmp_path, monkeypatch, capsys
):
    """SQLite's own limit (``PRAGMA max_page_count``) makes the disk 'full' mid-sweep (the
    same error SQLite gives when the file system is full; a real one is tested below)."""
    out = tmp_path / "out"
    small = tmp_path / "small.toml"
    small.write_text(experiment_text(seeds=3))
    initialize = Store.initialize

    def limited(store, values):  # a new store may grow by one page: room for a few trials
        initialize(store, values)
        (pages,) = store._conn.execute("PRAGMA page_count").fetchone()
        store._conn.execute(f"PRAGMA max_page_count = {pages + 1}")

    monkeypatch.setattr(Store, "initialize", limited)
    assert main(["run", str(small), "--out", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"lrlab: error: cannot write {out / 'store.sqlite'}: database or disk is full; "
        "check the disk"
    ]
    partial = snapshot(out)
    assert 1 <= len(partial) < 6  # it filled mid-sweep; what was stored is complete
    assert {k: reference[k] for k in partial} == partial
    monkeypatch.undo()  # space again: the same command resumes and finishes
    assert main(["run", str(small), "--out", str(out), "-q"]) == 0
    done = snapshot(out)
    assert len(done) == 6 and {k: reference[k] for k in done} == done


def _root_can(script: str, folder: Path) -> bool:
    """Whether ``script`` runs in a private mount namespace (root with CAP_SYS_ADMIN)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", str(folder)])
    return probe.returncode == 0


def test_a_really_full_disk_is_a_clear_error_and_the_store_resumes(experiment, reference, tmp_path):
    """A 200 KB tmpfs in a private mount namespace (the mount vanishes with the process)."""
    mnt, copy = tmp_path / "mnt", tmp_path / "copy"
    mnt.mkdir()
    mount = 'mount -t tmpfs -o size=200k tmpfs "$1"'
    if not _root_can(mount, mnt):
        pytest.skip("mounting a small tmpfs needs root with CAP_SYS_ADMIN (unshare -m)")
    script = (
        f'{mount} && "$3" -m lrlab.cli run "$4" --out "$1/run" -q; rc=$?; '
        'cp -a "$1/run" "$2"; exit $rc'
    )
    proc = subprocess.run(
        ["unshare", "-m", "sh", "-c", script, "sh", mnt, copy, sys.executable, experiment],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=ROOT,
        timeout=600,
    )
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith("lrlab: error: cannot ") and line.endswith("; check the disk")
    assert "disk is full" in line or "disk I/O error" in line
    partial = snapshot(copy)
    assert {k: reference[k] for k in partial} == partial
    run = Run(experiment, copy)  # on a disk with space, the same folder resumes
    assert run.wait() == 0, run.stderr
    assert snapshot(copy) == reference


# --------------------------------------------------------------------------- read-only
def test_a_read_only_folder_is_a_clear_error_and_nothing_changes(
    experiment, reference, uninterrupted, tmp_path
):
    """Resuming into a read-only folder, and creating one inside a read-only folder."""
    folder = tmp_path / "ro"
    shutil.copytree(uninterrupted.out, folder / "old")
    before = {p.name: p.read_bytes() for p in (folder / "old").iterdir()}
    commands = [
        [*LRLAB, "run", str(experiment), "--out", str(folder / "old")],
        [*LRLAB, "run", str(experiment), "--out", str(folder / "new")],
    ]
    remount = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1"'
    reason = "Read-only file system"
    if os.geteuid() != 0:
        os.chmod(folder / "old", 0o555)
        os.chmod(folder, 0o555)
        wrap, reason = list, "Permission denied"
    elif _root_can(remount + ' && ! touch "$1/x" 2>/dev/null', folder):

        def wrap(cmd):  # root ignores permissions: a read-only bind mount instead
            return [
                "unshare",
                "-m",
                "sh",
                "-c",
                remount + ' && shift && exec "$@"',
                "sh",
                folder,
                *cmd,
            ]
    else:
        pytest.skip("as root, a read-only folder needs a bind mount (unshare -m, CAP_SYS_ADMIN)")
    try:
        results = [
            subprocess.run(
                wrap(cmd), capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=300
            )
            for cmd in commands
        ]
    finally:
        os.chmod(folder, 0o755)
        os.chmod(folder / "old", 0o755)
    old, new = results
    assert (old.returncode, new.returncode) == (2, 2)
    assert old.stderr.splitlines() == [
        f"lrlab: error: cannot write to {folder / 'old'} ({reason}); make it writable or "
        "use another --out folder"
    ]
    assert new.stderr.splitlines() == [
        f"lrlab: error: cannot create {folder / 'new'}: {reason}; choose another --out"
    ]
    assert {p.name: p.read_bytes() for p in (folder / "old").iterdir()} == before
    assert not (folder / "new").exists()
    assert snapshot(folder / "old") == reference
