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
import shlex
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
from lrlab.experiments.config import load_config
from lrlab.experiments.engines.base import Engine
from lrlab.experiments.plan import build_plan
from lrlab.experiments.runner import run_plan
from lrlab.experiments.store import Store
from lrlab.experiments.trial import TrialResult
from lrlab_process import LRLAB, one_error_line

IONO = IONOSPHERE_CSV
ROOT = Path(__file__).resolve().parents[1]
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

    Half the kills come 0-1.5 s after the run announced its sweep (so they land while
    trials are trained and stored), half 0.5-4 s after the start (imports, data, the
    lock, creating the store). After each kill the store is checked, and the trials
    stored before must be unchanged. A folder that completes is set aside and the
    campaign goes on in a new one; at the end the last folder is finished by an ordinary
    resume, and every folder must equal the uninterrupted run exactly.
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
            time.sleep(rng.uniform(0.0, 1.5))
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
    print(
        f"{kills} kills ({mid_sweep} during a sweep), {stored_by_killed_runs} trials stored by"
        f" runs that were then killed, {len(folders)} folder(s)"
    )
    assert mid_sweep >= 5 and stored_by_killed_runs >= 1  # kills landed inside sweeps
    run = Run(experiment, folders[-1])
    assert run.wait() == 0, run.stderr
    assert len(reference) == 16
    for out in folders:
        assert snapshot(out) == reference


PATCHED_RUN = """
import os, signal, sys
from lrlab.cli import main
from lrlab.experiments.store import Store

HOW, NTH = sys.argv[1], int(sys.argv[2])  # inside|after N: die in the Nth add; full: no room
add_all, initialize, calls = Store.add_all, Store.initialize, []


class Dying:
    # the store's connection, except that the process dies at HOW during the NTH add
    def __init__(self, conn):
        self.conn = conn

    def __getattr__(self, name):
        return getattr(self.conn, name)

    def executemany(self, sql, rows):
        if HOW == "inside" and len(calls) == NTH and sql.startswith("INSERT INTO epochs"):
            os.kill(os.getpid(), signal.SIGKILL)  # the trial row is in, its epochs not yet
        return self.conn.executemany(sql, rows)

    def execute(self, sql, *args):
        out = self.conn.execute(sql, *args)
        if HOW == "after" and len(calls) == NTH and sql == "COMMIT":
            os.kill(os.getpid(), signal.SIGKILL)  # committed, but the run never knew
        return out


def dying_add_all(self, results, versions=None):  # the Keras engine: one trial a write
    calls.append([r.trial.key for r in results])
    if not isinstance(self._conn, Dying):
        self._conn = Dying(self._conn)
    return add_all(self, results, versions)


def small_initialize(self, values):  # SQLite's own size limit: one more page, then full
    initialize(self, values)
    (pages,) = self._conn.execute("PRAGMA page_count").fetchone()
    self._conn.execute(f"PRAGMA max_page_count = {pages + 1}")


if HOW == "full":
    Store.initialize = small_initialize
else:
    Store.add_all = dying_add_all
sys.exit(main(sys.argv[3:]))
"""


def patched_run(how: str, nth: int, experiment: Path, out: Path) -> subprocess.CompletedProcess:
    """``lrlab run`` with the store patched by :data:`PATCHED_RUN` (``how``, ``nth``)."""
    argv = ["run", str(experiment), "--out", str(out), "-q"]
    return subprocess.run(
        [sys.executable, "-c", PATCHED_RUN, how, str(nth), *argv],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=ROOT,
        timeout=600,
    )


def test_sigkill_inside_and_right_after_a_trial_transaction(reference, tmp_path):
    """Deterministic kills at the two moments random ones rarely hit: between a trial's
    row and its epochs (inside its transaction), and just after its COMMIT."""
    exp, out = tmp_path / "exp.toml", tmp_path / "out"
    exp.write_text(experiment_text(seeds=2))
    inside = patched_run("inside", 3, exp, out)  # dies while storing the 3rd trial
    assert inside.returncode == -signal.SIGKILL, inside.stderr
    snap = snapshot(out)
    assert list(snap) == [t for t in reference if t.endswith(("seed=0",))]  # 3rd: absent
    after = patched_run("after", 1, exp, out)  # resumes, dies right after storing it
    assert after.returncode == -signal.SIGKILL, after.stderr
    snap = snapshot(out)
    assert len(snap) == 3 and {k: reference[k] for k in snap} == snap
    run = Run(exp, out)  # resumes without running the 3rd trial again
    assert run.wait() == 0, run.stderr
    assert "3 already stored, 1 to run" in run.stderr
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


def test_a_diverging_trial_is_stored_with_its_epoch_and_the_sweep_goes_on(tmp_path):
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
    proc = subprocess.run(
        [*LRLAB, "run", str(exp), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=ROOT,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "2 diverged, 0 failed" in proc.stderr
    snap = snapshot(tmp_path / "out")
    assert list(snap) == ["fine|seed=0", "huge|seed=0", "fine|seed=1", "huge|seed=1"]
    for key in ("huge|seed=0", "huge|seed=1"):
        status, epoch, final, rows = snap[key]
        assert status == "diverged" and epoch >= 1
        bad = [r["epoch"] for r in rows if not math.isfinite(r["loss"] + r["val_loss"])]
        assert bad == [epoch]  # the first non-finite epoch, and training stopped there
    assert snap["fine|seed=1"][0] == "ok"  # the trial after a divergence ran normally
    # the results table counts them
    assert re.search(r"huge\s.*\s2\s*$", proc.stdout, re.MULTILINE), proc.stdout  # diverged: 2


# --------------------------------------------------------------------------- a full disk
def test_a_full_store_is_a_clear_error_and_the_store_stays_consistent(reference, tmp_path):
    """SQLite's own limit (``PRAGMA max_page_count``) makes the disk 'full' mid-sweep (the
    same error SQLite gives when the file system is full; a real one is tested below)."""
    exp, out = tmp_path / "exp.toml", tmp_path / "out"
    exp.write_text(experiment_text(seeds=3))
    full = patched_run("full", 0, exp, out)
    assert full.returncode == 2
    assert full.stderr.splitlines() == [
        f"lrlab: error: cannot write {out / 'store.sqlite'}: database or disk is full; "
        "check the disk"
    ]
    partial = snapshot(out)
    assert 1 <= len(partial) < 6  # it filled mid-sweep; what was stored is complete
    assert {k: reference[k] for k in partial} == partial
    run = Run(exp, out)  # space again: the same command resumes and finishes
    assert run.wait() == 0, run.stderr
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
    # the steps that succeeded are progress lines ("loading data ... (0.4s)"); then one error
    done = re.compile(r"^(loading data|checking the model) .* \(\d+\.\ds\)$")
    assert [line for line in old.stderr.splitlines() if not done.match(line)] == [
        f"lrlab: error: cannot write to {folder / 'old'} ({reason}); make it writable or "
        "use another --out folder"
    ]
    assert [line for line in new.stderr.splitlines() if not done.match(line)] == [
        f"lrlab: error: cannot create {folder / 'new'}: {reason}; choose another --out"
    ]
    assert {p.name: p.read_bytes() for p in (folder / "old").iterdir()} == before
    assert not (folder / "new").exists()
    assert snapshot(folder / "old") == reference


# --------------------------------------------------------------------------- hostile files
# (issue 14) Links planted in the experiment folder, read-only media, a full disk, devices
# and FIFOs given as data: each ends in one line (exit 2) or does the right thing, and no
# file outside the paths given is ever written.
def lrlab(*args: object, timeout: float = 300) -> subprocess.CompletedProcess:
    """The CLI as the user runs it, in a child with 4 GiB of address space: reading an
    endless device fails with MemoryError instead of taking the machine's memory."""
    limited = (
        "import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30)); "
        "from lrlab.cli import main; sys.exit(main())"
    )
    return subprocess.run(
        [sys.executable, "-c", limited, *map(str, args)],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=ROOT,
        timeout=timeout,
    )


def temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


@pytest.mark.parametrize("link", ["symbolic", "hard"])
def test_a_linked_lock_file_is_refused_and_its_target_untouched(tmp_path, link):
    """``DIR/.lrlab.lock`` planted as a link to a file elsewhere: the run used to follow it
    and truncate that file."""
    exp, out, victim = tmp_path / "exp.toml", tmp_path / "out", tmp_path / "victim.txt"
    exp.write_text(experiment_text(seeds=1))
    out.mkdir()
    victim.write_text("precious\n")
    lock = out / ".lrlab.lock"
    lock.symlink_to(victim) if link == "symbolic" else os.link(victim, lock)
    line = one_error_line(lrlab("run", exp, "--out", out))
    expected = "is a symbolic link" if link == "symbolic" else "has 1 other hard link(s)"
    assert f"{lock} {expected}" in line and line.endswith("remove it and run again")
    assert victim.read_text() == "precious\n"
    assert not (out / "store.sqlite").exists()


def test_reports_exports_and_figures_never_write_through_a_link(reference, uninterrupted, tmp_path):
    """Planted links: the old fixed temp name ``report.html.tmp``, and the targets
    themselves. The link at a target is replaced by the file; no link's target is written."""
    folder = tmp_path / "exp"
    shutil.copytree(uninterrupted.out, folder)
    victims = {name: tmp_path / f"victim-{name}" for name in ("tmp", "html", "csv", "png")}
    for victim in victims.values():
        victim.write_text("precious\n")
    (folder / "report.html.tmp").symlink_to(victims["tmp"])
    (folder / "report.html").symlink_to(victims["html"])
    (folder / "trials.csv").symlink_to(victims["csv"])
    (folder / "png").mkdir()
    (folder / "png" / "final.png").symlink_to(victims["png"])
    html = lrlab("report", folder, "--html", folder / "report.html", "--png", folder / "png")
    assert html.returncode == 0, html.stderr
    export = lrlab("export", folder, "-o", folder / "trials.csv")
    assert export.returncode == 0, export.stderr
    assert all(v.read_text() == "precious\n" for v in victims.values())
    for written in (folder / "report.html", folder / "trials.csv", folder / "png" / "final.png"):
        assert written.is_file() and not written.is_symlink(), written
    assert (folder / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert (folder / "trials.csv").read_text() == lrlab("export", folder).stdout
    assert (folder / "png" / "final.png").read_bytes()[:4] == b"\x89PNG"
    assert temp_files(folder) == [folder / "report.html.tmp"]  # only the planted link


def test_a_missing_parent_or_a_folder_as_target_is_one_line(uninterrupted, reference, tmp_path):
    folder = tmp_path / "exp"
    shutil.copytree(uninterrupted.out, folder)
    under_a_file = folder / "store.sqlite" / "sub" / "trials.csv"
    line = one_error_line(lrlab("export", folder, "-o", under_a_file))
    assert line == (
        f"lrlab: error: cannot write {under_a_file}: Not a directory; a part of the path is "
        "a file, not a folder; check the path"
    )
    from lrlab.fileio import FileWriteError, write_atomic

    (folder / "a folder").mkdir()
    with pytest.raises(FileWriteError, match="Is a directory; it is a folder; give a file name"):
        write_atomic(folder / "a folder", "x")
    made = lrlab("export", folder, "-o", folder / "new" / "deeper" / "trials.csv")
    assert made.returncode == 0 and (folder / "new" / "deeper" / "trials.csv").is_file()
    assert temp_files(folder) == []


def _private_mount(
    mount: str, folder: Path, log: Path, *commands: list[object]
) -> tuple[list[tuple[int, str]], list[str]]:
    """Run ``mount`` (``$1`` is ``folder``), then each command, in a private mount namespace.

    Returns each command's exit code and stderr, and ``ls -A`` of the folder as the
    commands left it (the mount vanishes with the namespace).
    """
    log.mkdir()
    lines = [f"{mount} || exit 99"]
    for i, cmd in enumerate(commands):
        quoted = " ".join(shlex.quote(str(a)) for a in cmd)
        lines.append(f"{quoted} 2> {log}/{i}.err; echo $? > {log}/{i}.rc")
    lines.append(f'ls -A "$1" > {log}/ls')
    proc = subprocess.run(
        ["unshare", "-m", "sh", "-c", "\n".join(lines), "sh", folder],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=ROOT,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    results = [
        (int((log / f"{i}.rc").read_text()), (log / f"{i}.err").read_text())
        for i in range(len(commands))
    ]
    return results, (log / "ls").read_text().split()


def test_writing_to_a_read_only_folder_is_one_line_and_leaves_nothing(
    uninterrupted, reference, tmp_path
):
    ro, folder = tmp_path / "ro", tmp_path / "exp"
    ro.mkdir()
    shutil.copytree(uninterrupted.out, folder)
    remount = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1"'
    if not _root_can(remount, ro):
        pytest.skip("a read-only folder for root needs a bind mount (unshare -m, CAP_SYS_ADMIN)")
    results, listing = _private_mount(
        remount,
        ro,
        tmp_path / "log",
        [*LRLAB, "export", folder, "-o", ro / "trials.csv"],
        [*LRLAB, "report", folder, "--html", ro / "report.html"],
        [*LRLAB, "report", folder, "--png", ro / "png"],
    )
    for (code, stderr), path in zip(
        results, [ro / "trials.csv", ro / "report.html", ro / "png"], strict=True
    ):
        (line,) = stderr.splitlines()
        assert code == 2 and line.startswith(f"lrlab: error: cannot write {path}"), stderr
        assert line.endswith(": Read-only file system; write to a writable folder"), line
    assert listing == []  # nothing written, no temporary file


def test_a_full_disk_is_one_line_and_leaves_no_temporary_file(uninterrupted, reference, tmp_path):
    """A 64 KiB tmpfs, filled: the report, its figures and the export each fail cleanly."""
    mnt, folder = tmp_path / "mnt", tmp_path / "exp"
    mnt.mkdir()
    shutil.copytree(uninterrupted.out, folder)
    mount = 'mount -t tmpfs -o size=64k tmpfs "$1"'
    if not _root_can(mount, mnt):
        pytest.skip("mounting a small tmpfs needs root with CAP_SYS_ADMIN (unshare -m)")
    fill = 'mount -t tmpfs -o size=64k tmpfs "$1" && (head -c 65536 /dev/zero > "$1/filler"; true)'
    results, listing = _private_mount(
        fill,
        mnt,
        tmp_path / "log",
        [*LRLAB, "export", folder, "-o", mnt / "trials.csv"],
        [*LRLAB, "report", folder, "--html", mnt / "report.html"],
        [*LRLAB, "report", folder, "--png", mnt / "png"],
    )
    for (code, stderr), name in zip(results, ["trials.csv", "report.html", "png"], strict=True):
        (line,) = stderr.splitlines()
        assert code == 2 and line.startswith(f"lrlab: error: cannot write {mnt / name}"), stderr
        assert line.endswith(": No space left on device; free some space or write elsewhere")
    assert listing == ["filler", "png"]  # no temporary file


@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "garbage-npz", "nan-first-row"])
def test_bad_data_files_end_lrlab_run_in_one_line(tmp_path, kind):
    """``csv:/dev/zero`` used to take memory without bound, a FIFO to hang, a garbage .npz to
    print a traceback, and a nan in the first row to drop that row silently."""
    data = {"dev-zero": Path("/dev/zero"), "fifo": tmp_path / "data.csv"}.get(kind)
    if kind == "fifo":
        os.mkfifo(data)
    elif kind == "garbage-npz":
        data = tmp_path / "data.npz"
        data.write_bytes(b"PK\x03\x04" + os.urandom(200))
    elif kind == "nan-first-row":
        data = tmp_path / "data.csv"
        rows = IONO.read_text().splitlines()
        rows[0] = "nan," + rows[0].split(",", 1)[1]
        data.write_text("\n".join(rows))
    exp, out = tmp_path / "exp.toml", tmp_path / "out"
    prefix = "npz" if kind == "garbage-npz" else "csv"
    exp.write_text(experiment_text(seeds=1, dataset=f"{prefix}:{data}"))
    line = one_error_line(lrlab("run", exp, "--out", out, timeout=120))
    assert line.startswith(f"lrlab: error: {exp}: data.dataset: ")
    assert {
        "dev-zero": "/dev/zero is a character device, not a regular file",
        "fifo": f"{data} is a FIFO (named pipe), not a regular file",
        "garbage-npz": f"{data} is a truncated or damaged .npz",
        "nan-first-row": f"{data}: line 1, column 0 holds 'nan', not a finite float32 number",
    }[kind] in line
    assert not out.exists()


def test_write_atomic_replaces_links_and_cleans_up_on_any_failure(tmp_path, monkeypatch):
    """The one writer's contract: the link itself is replaced (also a link to a folder),
    an existing file's permissions are kept, and a failure at any step (here Ctrl-C during the
    fsync) leaves the old file and no temporary file."""
    from lrlab import fileio

    (tmp_path / "folder").mkdir()
    (tmp_path / "r.html").symlink_to(tmp_path / "folder")
    fileio.write_atomic(tmp_path / "r.html", "new")
    assert not (tmp_path / "r.html").is_symlink() and (tmp_path / "r.html").read_text() == "new"
    assert list((tmp_path / "folder").iterdir()) == []
    script = tmp_path / "run.sh"
    script.write_text("old")
    script.chmod(0o751)
    fileio.write_atomic(script, "new")  # an existing file keeps its permissions
    assert script.stat().st_mode & 0o777 == 0o751 and script.read_text() == "new"
    old = tmp_path / "old.csv"
    old.write_text("old")

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(fileio.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fileio.write_atomic(old, "new")
    assert old.read_text() == "old" and temp_files(tmp_path) == []
    monkeypatch.setattr(fileio.os, "fsync", lambda fd: None)

    def full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fileio.os, "replace", full)
    with pytest.raises(fileio.FileWriteError, match="No space left on device; free some space"):
        fileio.write_atomic(old, "new")
    assert old.read_text() == "old" and temp_files(tmp_path) == []


def test_read_input_refuses_what_cannot_be_read_safely(tmp_path):
    """The reader for small input files (the experiment file): regular files under a limit."""
    from lrlab.fileio import InputFileError, read_input

    fifo, big, ok = tmp_path / "fifo", tmp_path / "big.toml", tmp_path / "ok.toml"
    os.mkfifo(fifo)  # no writer: a blocking open would hang
    with open(big, "wb") as f:
        f.truncate((1 << 20) + 1)
    ok.write_text("[experiment]\n")
    refused = {
        "/dev/zero": "/dev/zero is a character device, not a regular file",
        fifo: f"{fifo} is a FIFO (named pipe), not a regular file",
        tmp_path: f"{tmp_path} is a folder, not a regular file",
        big: f"experiment file {big} is 1,048,577 bytes, over the limit of 1 MiB",
        tmp_path / "missing": "cannot read experiment file",
    }
    for path, words in refused.items():
        with pytest.raises(InputFileError) as info:
            read_input(path, limit=1 << 20, what="experiment file")
        assert words in str(info.value) and "\n" not in str(info.value)
    assert read_input(ok, limit=1 << 20, what="experiment file") == b"[experiment]\n"
