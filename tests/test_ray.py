"""Sweeps on Ray: a local Ray (2 CPUs, no dashboard) shared by every test of this module.

What is pinned: a Ray run stores exactly what a local run stores (final metrics and
per-epoch rows bit for bit, Keras and population engines); a worker killed mid-task is
retried and its trial stored once; a worker that keeps dying makes its trial ``failed``
and a rerun stores it once; duplicate results never reach the store; the CLI's ``--ray
ADDRESS`` path works end to end; without Ray, ``--ray`` is one line naming the extra.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest

from datafiles import IONOSPHERE_CSV
from lrlab_process import LRLAB

ray = pytest.importorskip("ray", reason="Ray is the optional extra lrlab[ray]")

from lrlab.experiments.config import load_config  # noqa: E402
from lrlab.experiments.engines import get_engine  # noqa: E402
from lrlab.experiments.engines.base import Engine  # noqa: E402
from lrlab.experiments.engines.keras import KerasEngine  # noqa: E402
from lrlab.experiments.engines.ray import RayEngine, ray_session, task_units  # noqa: E402
from lrlab.experiments.plan import build_plan  # noqa: E402
from lrlab.experiments.runner import run_plan  # noqa: E402
from lrlab.experiments.store import Store  # noqa: E402
from lrlab.experiments.trial import TrialResult  # noqa: E402

IONO = IONOSPHERE_CSV
ROOT = Path(__file__).resolve().parents[1]
# Workers compile each trial's train step; JAX's persistent cache makes the second and
# later compiles of the same program a file read (the same compiled code: same numbers).
CACHE = {
    "JAX_COMPILATION_CACHE_DIR": os.path.join(tempfile.gettempdir(), "lrlab-tests-jax-cache"),
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
}

# The test engines below are defined here; Ray's workers cannot import this file, so
# they receive the classes by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def write_experiment(folder: Path, *, seeds: int = 2, engine: str = "keras") -> Path:
    path = folder / "exp.toml"
    path.write_text(
        textwrap.dedent(
            f"""
            [experiment]
            seeds = {seeds}
            engine = "{engine}"
            [data]
            dataset = "csv:{IONO}"
            validation = 0.33
            [model]
            spec = 'mlp(hidden=[8])'
            [training]
            epochs = 2
            batch_size = 64
            [optimizers]
            sgd = {{ type = "sgd", momentum = 0.8 }}
            [schedules]
            constant = "constant(0.1)"
            decay = "time_decay(0.1, decay=0.01)"
            """
        )
    )
    return path


def stored(out: Path) -> dict[str, tuple]:
    """key -> (status, final metrics, per-epoch rows, message) of every stored trial."""
    with Store.open(out) as store:
        assert store.integrity_ok()
        epochs = store.epochs()
        rows = store.trials()
        assert len({t.key for t in rows}) == len(rows) == store.count()
        return {t.key: (t.status, t.final, epochs.get(t.key), t.message) for t in rows}


@pytest.fixture(scope="module")
def session():
    """One local Ray for the module (starting Ray is the slow part)."""
    with ray_session(None, num_cpus=2) as r:
        yield r


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ray-plan")
    return build_plan(load_config(write_experiment(folder)))


@pytest.fixture(scope="module")
def local(plan, tmp_path_factory):
    """The same experiment run locally with the Keras engine (the reference)."""
    out = tmp_path_factory.mktemp("local") / "run"
    run_plan(plan, out=out, engine="keras", quiet=True)
    return stored(out)


class KillOnce(KerasEngine):
    """The Keras engine, except that the first attempt at ``victim`` waits to be killed.

    Every attempt leaves ``<folder>/attempt.<pid>``; the first at the victim writes its
    pid to ``<folder>/victim.pid`` and sleeps until the test kills the process.
    """

    def __init__(self, folder: Path, victim: str):
        super().__init__()
        self.folder, self.victim = Path(folder), victim

    def run(self, plan, trials):
        (self.folder / f"attempt.{os.getpid()}.{time.monotonic_ns()}").write_text(trials[0].key)
        marker = self.folder / "victim.pid"
        if any(t.key == self.victim for t in trials) and not marker.exists():
            marker.write_text(str(os.getpid()))
            time.sleep(600)
        yield from super().run(plan, trials)


def kill_when_ready(folder: Path) -> threading.Thread:
    """Kill the worker whose pid appears in ``folder/victim.pid`` with SIGKILL."""

    def target():
        marker = folder / "victim.pid"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            text = marker.read_text().strip() if marker.exists() else ""
            if text:
                os.kill(int(text), signal.SIGKILL)
                return
            time.sleep(0.05)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def test_ray_run_stores_exactly_what_a_local_run_stores(session, plan, local, tmp_path):
    summary = run_plan(
        plan, out=tmp_path / "ray", engine=RayEngine(KerasEngine(), env=CACHE), quiet=True
    )
    assert summary.engine == "ray" and summary.ran == len(plan.trials) == 4
    assert stored(tmp_path / "ray") == local


def test_a_worker_killed_mid_task_is_retried_and_its_trial_stored_once(
    session, plan, local, tmp_path
):
    victim = plan.trials[1].key
    engine = RayEngine(KillOnce(tmp_path, victim), max_retries=2, env=CACHE)
    thread = kill_when_ready(tmp_path)
    summary = run_plan(plan, out=tmp_path / "ray", engine=engine, quiet=True)
    thread.join(timeout=5)
    attempts = [p.read_text() for p in tmp_path.glob("attempt.*")]
    assert attempts.count(victim) == 2  # killed once, then run again
    assert summary.counts == {"ok": 4, "diverged": 0, "failed": 0}
    assert stored(tmp_path / "ray") == local  # once each, and the retry's numbers are exact


def test_a_worker_that_keeps_dying_fails_its_trial_and_a_rerun_stores_it_once(
    session, plan, local, tmp_path
):
    victim = plan.trials[2].key
    thread = kill_when_ready(tmp_path)
    out = tmp_path / "ray"
    engine = RayEngine(KillOnce(tmp_path, victim), max_retries=0, env=CACHE)
    summary = run_plan(plan, out=out, engine=engine, quiet=True)
    thread.join(timeout=5)
    assert summary.counts == {"ok": 3, "diverged": 0, "failed": 1}
    first = stored(out)
    assert first[victim][0] == "failed" and "Ray worker died 1 time(s)" in first[victim][3]
    # the same command again retries the failed trial only
    again = run_plan(plan, out=out, engine=RayEngine(KerasEngine(), env=CACHE), quiet=True)
    assert (again.skipped, again.ran) == (3, 1)
    assert stored(out) == local


class Twice(Engine):
    """A faulty engine: every result comes twice (and one trial of another plan)."""

    name = "twice"

    def run(self, plan, trials):
        for t in trials:
            result = TrialResult(
                t, "ok", epochs=[{"epoch": 1, "lr": 0.1, "loss": 1.0}], final={"loss": 1.0}
            )
            yield result
            yield result
        foreign = dataclasses.replace(trials[0], key="elsewhere|seed=9")
        yield TrialResult(foreign, "ok", final={"loss": 2.0})


def test_duplicate_and_foreign_results_never_reach_the_store(session, plan, tmp_path):
    engine = RayEngine(Twice(), trials_per_task=2)
    assert [len(u) for u in task_units(Twice(), plan.trials, 2)] == [2, 2]
    summary = run_plan(plan, out=tmp_path / "ray", engine=engine, quiet=True)
    assert summary.ran == 4
    assert set(stored(tmp_path / "ray")) == {t.key for t in plan.trials}


def test_each_tasks_fresh_results_are_stored_in_one_transaction(
    session, plan, tmp_path, monkeypatch
):
    """The results a task returns arrive together: one write each, duplicates left out."""
    groups: list[list[str]] = []
    add_all = Store.add_all

    def recording(self, results, versions=None):
        groups.append(sorted(r.trial.key for r in results))
        return add_all(self, results, versions)

    monkeypatch.setattr(Store, "add_all", recording)
    run_plan(plan, out=tmp_path / "ray", engine=RayEngine(Twice(), trials_per_task=2), quiet=True)
    units = [sorted(t.key for t in u) for u in task_units(Twice(), plan.trials, 2)]
    assert sorted(groups) == sorted(units)


class FirstFastRestSlow(Engine):
    """Trial 0 returns once another task is running; every other trial sleeps 2 minutes
    (leaving ``<pid>.pid`` in ``folder``)."""

    name = "slow"

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def run(self, plan, trials):
        for t in trials:
            if t.key == plan.trials[0].key:
                deadline = time.monotonic() + 60
                while not list(self.folder.glob("*.pid")) and time.monotonic() < deadline:
                    time.sleep(0.05)
            else:
                (self.folder / f"{os.getpid()}.pid").write_text("")
                time.sleep(120)
            yield TrialResult(t, "ok", final={"loss": 1.0})


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_a_stopped_run_cancels_its_pending_tasks_and_keeps_what_was_stored(session, plan, tmp_path):
    def stop(result):  # what Ctrl-C does between two results
        raise KeyboardInterrupt

    out = tmp_path / "ray"
    with pytest.raises(KeyboardInterrupt):
        run_plan(plan, out=out, engine=RayEngine(FirstFastRestSlow(tmp_path)), on_result=stop)
    assert list(stored(out)) == [plan.trials[0].key]
    pids = [int(p.stem) for p in tmp_path.glob("*.pid")]
    deadline = time.monotonic() + 30
    while any(map(alive, pids)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pids and not any(map(alive, pids))  # the running slow task was killed


def test_population_chunks_on_ray_match_a_local_population_run(session, tmp_path):
    pytest.importorskip("jax")
    plan = build_plan(load_config(write_experiment(tmp_path, engine="population")))
    population = get_engine("population")
    assert task_units(population, plan.trials) == [plan.trials]  # one optimizer group
    run_plan(plan, out=tmp_path / "local", engine=population, quiet=True)
    run_plan(plan, out=tmp_path / "ray", engine=RayEngine(population, env=CACHE), quiet=True)
    assert stored(tmp_path / "ray") == stored(tmp_path / "local")


def test_a_population_task_is_a_local_population_one_per_optimizer_structure():
    from lrlab.experiments.trial import OptimizerSettings, Trial
    from lrlab.schedules import Constant

    def trial(i, **optimizer):
        settings = OptimizerSettings.from_dict(optimizer)
        return Trial(
            f"c{i}|seed=0",
            "c",
            "c",
            Constant(0.1),
            None,
            "val_loss",
            "o",
            settings,
            None,
            0,
            0,
            0,
            0,
        )

    # momentum 0.5 and 0.9 differ only in numbers (one program); nesterov changes it
    trials = [
        trial(0, type="sgd", momentum=0.5),
        trial(1, type="sgd", momentum=0.9),
        trial(2, type="sgd", momentum=0.9, nesterov=True),
    ]
    units = task_units(get_engine("population"), trials)
    assert [[t.key for t in u] for u in units] == [["c0|seed=0", "c1|seed=0"], ["c2|seed=0"]]


def test_cli_ray_address_runs_on_that_cluster(session, local, tmp_path):
    address = ray.get_runtime_context().gcs_address
    exp = write_experiment(tmp_path)
    out = tmp_path / "run"
    proc = subprocess.run(
        [*LRLAB, "run", str(exp), "--out", str(out), "--ray", address, "--task-cpus", "1"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **CACHE},
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr
    assert "with Ray on 1 node(s), 2 CPUs" in " ".join(proc.stderr.split())  # the header
    assert "Traceback" not in proc.stderr
    assert stored(out) == local


def test_a_wrong_address_is_one_line_and_leaves_nothing(tmp_path):
    exp = write_experiment(tmp_path)
    out = tmp_path / "run"
    proc = subprocess.run(
        [*LRLAB, "run", str(exp), "--out", str(out), "--ray", "127.0.0.1:1"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=240,
    )
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "lrlab: error: cannot connect to Ray at 127.0.0.1:1 (Connection refused); start the "
        "cluster with 'ray start --head' and pass the address it prints"
    ]
    assert not out.exists()


def test_without_ray_the_flag_is_one_line_naming_the_extra(tmp_path):
    code = (
        "import sys; sys.modules['ray'] = None\n"  # makes `import ray` fail
        "from lrlab.cli import main\n"
        f"sys.exit(main(['run', {str(write_experiment(tmp_path))!r}, '--ray']))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "lrlab: error: --ray needs Ray, which is not installed; pip install 'lrlab[ray]'"
    ]
    assert not (tmp_path / "runs").exists()
