"""``lrlab run``: plan, lock the folder, skip what is stored, train the rest, store each result.

Order of events (so that bad input never leaves anything behind):

1. the experiment file is validated and the plan built (data loaded, schedules parsed,
   the model built once) -- any error here is one line and nothing is written;
2. the experiment folder is created and locked (:class:`~.store.DirectoryLock`);
3. an existing store must hold the same config hash (settings + data fingerprint), else
   the run is refused unless ``new=True`` (the old store is kept, renamed
   ``store.<UTC time>.sqlite``);
4. trials already stored as ``ok`` or ``diverged`` are skipped (``failed`` ones run
   again); the engine trains the rest, and every result is stored in one transaction as
   it arrives;
5. Ctrl-C or SIGTERM stops after storing what finished (with a
   :class:`~.stopping.StopRequest`, checked between steps even when a signal's exception
   was swallowed); running the same command resumes.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math
import sqlite3
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from lrlab.errors import LrlabError
from lrlab.experiments.config import ExperimentConfig, load_config
from lrlab.experiments.engines import ENGINES, Engine, get_engine
from lrlab.experiments.plan import Plan, build_plan, verify_model
from lrlab.experiments.stopping import StopRequest, say_if_stopped
from lrlab.experiments.store import LOCKNAME, DirectoryLock, Store, StoreError, library_versions
from lrlab.experiments.trial import TrialResult

__all__ = [
    "RunSummary",
    "archive_store",
    "choose_engine",
    "default_out",
    "run_experiment",
    "run_on_ray",
    "run_plan",
]

#: Preference order for ``engine = "auto"``.
AUTO_ORDER = ("population", "keras")


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """What a run did: where, how many trials were skipped/run, and their statuses."""

    out: Path
    engine: str
    total: int
    skipped: int
    ran: int
    counts: dict[str, int]


def default_out(config: ExperimentConfig) -> Path:
    """``runs/<experiment file name>`` (relative to the working directory).

    The name is the file's without ``.toml``, its outer dots and spaces stripped and any
    control character or path separator replaced by ``_``: a file named ``...toml`` never
    puts its store at ``runs/..``. A file with no usable name needs ``--out``.

    >>> from types import SimpleNamespace as S
    >>> default_out(S(source="exp/my sweep.toml")), default_out(S(source="..a/b.toml"))
    (PosixPath('runs/my sweep'), PosixPath('runs/b'))
    >>> default_out(S(source="...toml"))
    Traceback (most recent call last):
    ...
    lrlab.errors.LrlabError: cannot name the experiment folder after '...toml'; give one with \
--out DIR
    """
    name = Path(config.source).name
    name = name.removesuffix(".toml") if name.endswith(".toml") else Path(name).stem
    name = "".join("_" if c in "/\\" or not c.isprintable() else c for c in name)
    name = name.strip(". ")
    if not name:
        raise LrlabError(
            f"cannot name the experiment folder after {Path(config.source).name!r}; "
            "give one with --out DIR"
        )
    return Path("runs") / name


def choose_engine(
    name: str | Engine | None,
    plan: Plan,
    passed_over: list[str] | None = None,
    options: Mapping[str, Any] | None = None,
) -> Engine:
    """The engine called ``name`` (``auto``/None: the first of :data:`AUTO_ORDER` that can).

    An :class:`Engine` instance is used as given (e.g. a ``RayEngine`` wrapping another).
    With ``auto``, each engine passed over adds ``"not <name>: <reason>"`` to
    ``passed_over`` (when given), so the progress line can say why. ``options`` (e.g.
    ``{"memory": 2**30}``) go to the engine's constructor when it takes them.
    """
    options = dict(options or {})
    if isinstance(name, Engine):
        return name
    name = name or plan.config.experiment.engine
    if name != "auto":
        if name not in ENGINES:
            raise LrlabError(f"unknown engine {name!r}; use auto or one of {', '.join(ENGINES)}")
        engine = get_engine(name, **options)
        reason = engine.unsupported(plan)
        if reason:
            raise LrlabError(f"the {name} engine cannot run this experiment: {reason}")
        return engine
    for candidate in AUTO_ORDER:
        if candidate in ENGINES:
            engine = get_engine(candidate, **options)
            reason = engine.unsupported(plan)
            if reason is None:
                return engine
            if passed_over is not None:
                passed_over.append(f"not {candidate}: {reason}")
    raise LrlabError("no engine can run this experiment; use engine = 'keras'")  # pragma: no cover


def run_experiment(
    config: ExperimentConfig | str | Path,
    *,
    out: str | Path | None = None,
    new: bool = False,
    engine: str | None = None,
    quiet: bool = False,
    engine_options: Mapping[str, Any] | None = None,
    stop: StopRequest | None = None,
) -> RunSummary:
    """Run (or resume) the experiment in ``config`` into ``out``; see the module docstring.

    ``engine_options`` go to the engine's constructor (e.g. ``memory``, in bytes, for the
    population engine). ``stop``: checked between the steps of the run (a recorded
    signal raises :class:`~.stopping.Stopped` at the next one).
    """
    stop = stop or StopRequest()
    with say_if_stopped():
        if not isinstance(config, ExperimentConfig):
            config = load_config(config)
        plan = build_plan(config, check_model=False)
        stop.check()
        folder = Path(out) if out else default_out(config)
        precheck(plan, folder, new)  # quick refusals before the model check imports Keras
        verify_model(plan)
        stop.check()
    return run_plan(
        plan,
        out=folder,
        new=new,
        engine=engine,
        quiet=quiet,
        engine_options=engine_options,
        stop=stop,
    )


def precheck(plan: Plan, out: Path, new: bool) -> None:
    """Refuse early, reading only, when ``out`` is in use or holds another experiment.

    :func:`run_plan` checks both again under the lock; this only answers sooner.
    """
    if not out.is_dir():
        return
    if (out / LOCKNAME).exists():
        DirectoryLock(out).acquire().release()
    if Store.exists_in(out) and not new:
        with Store.open_read_only(out) as store:
            _check_same(store, plan, out)


def _check_same(store: Store, plan: Plan, out: Path) -> None:
    if store.meta().get("config_hash") != plan.hash:
        raise StoreError(
            f"{out} holds results of a different experiment (its settings or data "
            "changed since that run); rerun with --new to start over (the old store is "
            "kept beside it), or use another --out"
        )


def run_plan(
    plan: Plan,
    *,
    out: Path,
    new: bool = False,
    engine: str | Engine | None = None,
    quiet: bool = False,
    on_result: Callable[[TrialResult], None] | None = None,
    engine_options: Mapping[str, Any] | None = None,
    stop: StopRequest | None = None,
) -> RunSummary:
    """Run a built plan into the folder ``out`` (locked for the duration).

    ``stop`` is checked after each stored trial and given to engines that take it (they
    check it between trials or chunks)."""
    stop = stop or StopRequest()
    passed_over: list[str] = []
    with say_if_stopped():
        chosen = choose_engine(engine, plan, passed_over, {**(engine_options or {}), "stop": stop})
        out = Path(out)
        if out.exists() and not out.is_dir():
            raise LrlabError(f"{out} is a file; give a folder to --out")
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreError(f"cannot create {out}: {err.strerror}; choose another --out") from None
    with DirectoryLock(out):
        with say_if_stopped():
            store = _open_store(plan, out, new)
            stop.check()
        try:
            return _run(plan, store, out, chosen, quiet, on_result, passed_over, stop)
        finally:
            store.close()


def _open_store(plan: Plan, out: Path, new: bool) -> Store:
    if Store.exists_in(out):
        if not new:
            store = Store.open(out)
            try:
                _check_same(store, plan, out)
            except StoreError:
                store.close()
                raise
            return store
        archive_store(out)
    store = Store.open(out, create=True)
    store.initialize(
        {
            "config_hash": plan.hash,
            "config_text": plan.config.text,
            "config_source": plan.config.source,
            "canonical": plan.canonical,
            "title": plan.config.title,
            "metric": plan.metric,
            "higher_is_better": plan.higher_is_better,
            "baseline": plan.baseline,
            "labels": plan.labels,
            "planned": len(plan.trials),
            "dataset": {
                "name": plan.dataset.name,
                "rows": plan.dataset.n,
                "task": plan.dataset.task,
                "classes": list(plan.dataset.classes),
                "input_shape": list(plan.dataset.input_shape),
            },
            "steps_per_epoch": plan.steps_per_epoch,
            "command": " ".join(sys.argv),
            "versions": library_versions(),
        }
    )
    return store


def archive_store(out: Path) -> Path:
    """Move ``out/store.sqlite`` (and its ``-wal``/``-shm`` files) aside, for ``--new``.

    The name is ``store.<UTC time>.sqlite``, with ``-2``, ``-3``... when that name is
    taken (two ``--new`` in one second never overwrite each other). A store that cannot
    be opened (truncated, random bytes) is archived as it is; a readable one has its
    write-ahead log merged first, so the archive is one self-contained file.
    """
    old = Store.file_in(out)
    wal = old.with_name(old.name + "-wal")
    if wal.is_file() and wal.stat().st_size > 0:  # else the file is never opened
        try:
            with Store.open(out) as store:
                store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except (StoreError, sqlite3.DatabaseError):
            pass  # damaged: keep its bytes as they are
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    taken = {p.name for p in out.iterdir()}
    name, n = f"store.{stamp}.sqlite", 1
    while any(name + suffix in taken for suffix in ("", "-wal", "-shm")):
        n += 1
        name = f"store.{stamp}-{n}.sqlite"
    for suffix in ("", "-wal", "-shm"):
        src = old.with_name(old.name + suffix)
        if src.exists():
            src.replace(out / (name + suffix))
    return out / name


class _Best:
    """Running per-config means of the metric, for the progress line."""

    def __init__(self, plan: Plan):
        self.metric = plan.metric
        self.sign = 1.0 if plan.higher_is_better else -1.0
        self.values: dict[str, list[float]] = {}

    def add(self, config: str, status: str, final: dict[str, float]) -> None:
        value = final.get(self.metric)
        if status == "ok" and value is not None and math.isfinite(value):
            self.values.setdefault(config, []).append(float(value))

    def text(self) -> str:
        if not self.values:
            return ""
        label, vals = max(self.values.items(), key=lambda kv: self.sign * sum(kv[1]) / len(kv[1]))
        return f"best: {label} {self.metric}={sum(vals) / len(vals):.4f} (n={len(vals)})"


def _run(
    plan: Plan,
    store: Store,
    out: Path,
    engine: Engine,
    quiet: bool,
    on_result: Callable[[TrialResult], None] | None,
    passed_over: Sequence[str] = (),
    stop: StopRequest | None = None,
) -> RunSummary:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True, quiet=quiet)
    finished = store.finished_keys()
    todo = [t for t in plan.trials if t.key not in finished]
    best = _Best(plan)
    for t in store.trials():
        best.add(t.config, t.status, t.final)
    counts = {"ok": 0, "diverged": 0, "failed": 0}
    skipped = len(plan.trials) - len(todo)
    console.print(
        f"[bold]{plan.config.title}[/]: {len(plan.trials)} trials "
        f"({len(plan.labels)} configs x {len(plan.config.seeds)} seeds), {skipped} already "
        f"stored, {len(todo)} to run with {engine.describe()} -> {out}"
    )
    for note in passed_over:
        console.print(f"  (auto: {note})", markup=False)
    versions = library_versions()
    progress = Progress(
        TextColumn("trials"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[best]}"),
        console=console,
        transient=False,
        disable=quiet or not todo,
    )
    stored = 0
    try:
        with progress:
            task = progress.add_task("run", total=len(todo), best=best.text())
            for result in engine.run(plan, todo):
                store.add(result, versions)
                stored += 1
                counts[result.status] += 1
                best.add(result.trial.config, result.status, result.final)
                if result.status == "failed":
                    console.print(f"[red]failed[/] {result.trial.key}: {result.message}")
                if on_result is not None:
                    on_result(result)
                progress.update(task, advance=1, best=best.text())
                if stop is not None:
                    stop.check()
        if stop is not None:
            stop.check()  # a signal whose exception was swallowed during the last trial
    except KeyboardInterrupt:
        done = _stored_count(store, plan, skipped + stored)
        _say(
            f"stopped: {done} of {len(plan.trials)} trials are stored in {out}; "
            "run the same command to resume"
        )
        raise
    if counts["diverged"] or counts["failed"]:
        console.print(f"{counts['diverged']} diverged, {counts['failed']} failed")
    return RunSummary(out, engine.name, len(plan.trials), skipped, stored, counts)


def _say(line: str) -> None:
    """One line on stderr, even with --quiet, never wrapped (the resume line)."""
    print(line, file=sys.stderr, flush=True)


def _stored_count(store: Store, plan: Plan, counted: int) -> int:
    """The plan's trials in the store (a commit may have landed just before a signal)."""
    try:
        return len(store.finished_keys() & {t.key for t in plan.trials})
    except (StoreError, sqlite3.Error):
        return counted


def run_on_ray(
    experiment: str | Path,
    *,
    address: str | None = None,
    out: str | Path | None = None,
    new: bool = False,
    engine: str | None = None,
    quiet: bool = False,
    num_cpus: int | None = None,
    task_cpus: float = 1.0,
    task_gpus: float = 0.0,
    max_retries: int = 3,
    trials_per_task: int | None = None,
    engine_options: Mapping[str, Any] | None = None,
    stop: StopRequest | None = None,
) -> RunSummary:
    """``lrlab run EXPERIMENT --ray [ADDRESS]``: the local run, with trials as Ray tasks.

    The same checks as a local run come first (the file, the data, a folder in use or
    holding another experiment, the model), so bad input never waits for a cluster; Ray
    is up before the folder is locked, so a wrong address leaves nothing behind. Returns
    the :class:`RunSummary`; see :mod:`lrlab.experiments.engines.ray`.
    """
    from lrlab.experiments.engines.ray import RayEngine, check_options, import_ray, ray_session

    import_ray()
    check_options(task_cpus, task_gpus, max_retries, trials_per_task)
    with say_if_stopped():
        config = load_config(experiment)
        plan = build_plan(config, check_model=False)
        folder = Path(out) if out else default_out(config)
        precheck(plan, folder, new)
        verify_model(plan)
    wrapped = RayEngine(
        choose_engine(engine, plan, options=engine_options),
        task_cpus=task_cpus,
        task_gpus=task_gpus,
        max_retries=max_retries,
        trials_per_task=trials_per_task,
    )
    with ray_session(address, num_cpus=num_cpus):
        return run_plan(plan, out=folder, new=new, engine=wrapped, quiet=quiet, stop=stop)
