"""``lrlab run``: plan, lock the folder, skip what is stored, train the rest, store each result.

Order of events (so that bad input never leaves anything behind):

1. the experiment file is validated and the plan built (data loaded, schedules parsed,
   the model built once) -- any error here is one line and nothing is written;
2. the experiment folder is created and locked (:class:`~.store.DirectoryLock`);
3. an existing store must hold trials the plan would train the same way (same data,
   split, model and its code, training settings, ``vary``; no config edited under its
   label: :func:`lrlab.experiments.growth.reconcile`), else the run is refused unless
   ``new=True`` (the old store is kept, renamed ``store.<UTC time>.sqlite``); new seeds,
   configs, optimizers and lrs are welcome;
4. trials already stored as ``ok`` or ``diverged`` are skipped (``failed`` ones run
   again); the engine trains the rest, pulled seed-major from the plan in chunks (each
   checked against the store), and every result is stored in one transaction as it
   arrives (the results of a population chunk, final together, in one transaction:
   :func:`final_together`);
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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from lrlab.errors import LrlabError
from lrlab.experiments.config import ExperimentConfig, load_config
from lrlab.experiments.engines import ENGINES, Engine, get_engine
from lrlab.experiments.growth import (
    check_size,
    count_stored,
    grown_seeds,
    plan_identity,
    reconcile,
    stored_seeds,
)
from lrlab.experiments.plan import Plan, build_plan, verify_model
from lrlab.experiments.progress import RunProgress
from lrlab.experiments.stopping import StopRequest, say_if_stopped
from lrlab.experiments.store import LOCKNAME, DirectoryLock, Store, StoreError, library_versions
from lrlab.experiments.trial import TrialResult

__all__ = [
    "RunSummary",
    "archive_store",
    "choose_engine",
    "default_out",
    "final_together",
    "run_experiment",
    "run_on_ray",
    "run_plan",
]

#: Preference order for ``engine = "auto"``.
AUTO_ORDER = ("population", "keras")

#: Trials pulled from the plan (and checked against the store) at a time.
CHUNK = 10_000

#: At most this many trials final together are stored in one transaction.
GROUP_LIMIT = 1_000


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
    """The engine called ``name`` (``auto``/None: the first of :data:`AUTO_ORDER` that can,
    and is not measured to be slower there: :meth:`Engine.slower`).

    An :class:`Engine` instance is used as given (e.g. a ``RayEngine`` wrapping another).
    With ``auto``, each engine passed over adds ``"not <name>: <reason>"`` to
    ``passed_over`` (when given), so the progress line can say why. ``options`` (e.g.
    ``{"memory": 2**30}``) go to the engine's constructor when it takes them.
    """
    options = dict(options or {})
    if isinstance(name, Engine):
        return name
    name = plan.config.experiment.engine if name is None else name
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
            reason = engine.unsupported(plan) or engine.slower(plan)
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
    seeds: int | None = None,
    yes: bool = False,
    strict: bool = False,
    stop: StopRequest | None = None,
) -> RunSummary:
    """Run (or resume, or grow) the experiment in ``config`` into ``out``; see the module
    docstring.

    ``engine_options`` go to the engine's constructor (e.g. ``memory``, in bytes, for the
    population engine). ``seeds`` grows the experiment to that many seeds (recorded in the
    store); a plan of more than :data:`~lrlab.experiments.growth.TRIAL_LIMIT` trials needs
    ``yes``. The horizon findings of each config are printed first
    (:func:`check_horizons`); with ``strict`` any finding is an error, before anything
    is written. ``stop``: checked between the steps of the run (a recorded signal raises
    :class:`~.stopping.Stopped` at the next one).
    """
    stop = stop or StopRequest()
    progress = RunProgress(quiet=quiet)
    with say_if_stopped():
        plan, folder = plan_run(config, out, new, seeds, yes, strict, progress, stop)
    return run_plan(
        plan,
        out=folder,
        new=new,
        engine=engine,
        progress=progress,
        engine_options=engine_options,
        stop=stop,
    )


def plan_run(
    config: ExperimentConfig | str | Path,
    out: str | Path | None,
    new: bool,
    seeds: int | None,
    yes: bool,
    strict: bool = False,
    progress: RunProgress | None = None,
    stop: StopRequest | None = None,
) -> tuple[Plan, Path]:
    """The checked plan of a run and its folder: the file, its size, the data, the store's
    consent (grown seeds included) and the model, in that order (cheapest refusal first).
    ``progress`` shows the long steps (loading data, checking the model); ``stop`` is
    checked after each."""
    progress = progress if progress is not None else RunProgress(quiet=True)
    stop = stop or StopRequest()
    if not isinstance(config, ExperimentConfig):
        config = load_config(config)
    folder = Path(out) if out else default_out(config)
    _check_free(folder)  # a folder in use (or read-only) answers before its store is read
    stored = [] if new or not folder.is_dir() else stored_seeds(folder)
    chosen = grown_seeds(stored, config.seeds, seeds)
    check_size(config, len(chosen), yes)
    # the refusals that need the plan belong to the step: a refused run prints one line
    with progress.doing(f"loading data {config.data.dataset}"):
        plan = build_plan(config, check_model=False, seeds=chosen)
        check_horizons(plan, strict)
        precheck(plan, folder, new)  # quick refusals before the model check imports Keras
    stop.check()
    with progress.doing(f"checking the model on {plan.dataset.n} rows"):
        verify_model(plan)
    stop.check()
    return plan, folder


def check_horizons(plan: Plan, strict: bool = False) -> None:
    """Print each config's horizon findings (``Plan.horizon_findings``) to stderr.

    Raises:
        LrlabError: ``strict`` and there is a finding (the first, and how many).
    """
    found = [(label, f) for label, fs in plan.horizon_findings().items() for f in fs]
    if strict and found:
        (label, first), more = found[0], len(found) - 1
        also = f" (and {more} more finding{'s' if more > 1 else ''})" if more else ""
        raise LrlabError(
            f"--strict: the horizon of {label} does not fit the run: {first}{also} (fix "
            "the schedule or its unit, or drop --strict; lrlab check SPEC shows all findings)"
        )
    for label, finding in found:
        print(f"horizon: {label}: {finding}", file=sys.stderr)


def precheck(plan: Plan, out: Path, new: bool) -> None:
    """Refuse early, reading only, when ``out`` is in use or holds trials the plan would
    change.

    :func:`run_plan` checks both again under the lock; this only answers sooner.
    """
    if not out.is_dir():
        return
    _check_free(out)
    if Store.exists_in(out) and not new:
        with Store.open_read_only(out) as store:
            reconcile(store, plan, out, apply=False)


def _check_free(out: Path) -> None:
    """Refuse now when another run holds ``out`` (or its lock cannot be taken)."""
    if out.is_dir() and (out / LOCKNAME).exists():
        DirectoryLock(out).acquire().release()


def run_plan(
    plan: Plan,
    *,
    out: Path,
    new: bool = False,
    engine: str | Engine | None = None,
    quiet: bool = False,
    on_result: Callable[[TrialResult], None] | None = None,
    engine_options: Mapping[str, Any] | None = None,
    progress: RunProgress | None = None,
    stop: StopRequest | None = None,
) -> RunSummary:
    """Run a built plan into the folder ``out`` (locked for the duration).

    ``progress`` (default: a new one, silent when ``quiet``) shows the run on stderr; its
    ``step`` goes to engines that take a ``progress`` option. ``stop`` is checked after
    each stored trial (or group of trials final together) and given to engines that take
    it (they check it between trials or chunks).
    """
    stop = stop or StopRequest()
    passed_over: list[str] = []
    progress = progress if progress is not None else RunProgress(quiet=quiet)
    options = {**(engine_options or {}), "progress": progress.step, "stop": stop}
    with say_if_stopped():
        chosen = choose_engine(engine, plan, passed_over, options)
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
            return _run(plan, store, out, chosen, progress, on_result, passed_over, stop)
        finally:
            store.close()


def _open_store(plan: Plan, out: Path, new: bool) -> Store:
    if Store.exists_in(out):
        if not new:
            store = Store.open(out)
            try:
                reconcile(store, plan, out, apply=True)
                store.set_meta(_experiment_meta(plan))
            except StoreError:
                store.close()
                raise
            return store
        archive_store(out)
    store = Store.open(out, create=True)
    store.initialize(
        {
            **_experiment_meta(plan),
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


def _experiment_meta(plan: Plan) -> dict[str, Any]:
    """What the store says the experiment is now (rewritten by every run that grows it)."""
    return {
        "config_hash": plan.hash,
        "data_fingerprint": plan.data_fingerprint,
        "config_text": plan.config.text,
        "config_source": plan.config.source,
        "canonical": plan.canonical,
        "identity": plan_identity(plan),
        "title": plan.config.title,
        "metric": plan.metric,
        "higher_is_better": plan.higher_is_better,
        "baseline": plan.baseline,
        "labels": plan.labels,
        "seeds": plan.seeds,
        "planned": plan.n_trials,
        "horizon": {
            label: [dataclasses.asdict(f) for f in findings]
            for label, findings in plan.horizon_findings().items()
        },
        "lr_curves": plan.user_class_curves(),
    }


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
    progress: RunProgress,
    on_result: Callable[[TrialResult], None] | None,
    passed_over: Sequence[str],
    stop: StopRequest,
) -> RunSummary:
    from rich.console import Console

    console = Console(stderr=True, quiet=progress.quiet, soft_wrap=True)  # whole lines in logs
    total = plan.n_trials
    skipped = count_stored(store, plan.labels, plan.seeds)
    todo = total - skipped
    stored = 0
    try:  # a stop from here on says how many trials are stored
        best = _Best(plan)
        for t in store.trials():
            best.add(t.config, t.status, t.final)
        counts = {"ok": 0, "diverged": 0, "failed": 0}
        progress.release()  # the steps that led here (loading data, checking the model)
        console.print(
            f"[bold]{plan.config.title}[/]: {total} trials "
            f"({len(plan.labels)} configs x {len(plan.seeds)} seeds), {skipped} already "
            f"stored, {todo} to run with {engine.describe()} -> {out}"
        )
        for note in passed_over:
            console.print(f"  (auto: {note})", markup=False)
        versions = library_versions()
        progress.start(todo, best.text())
        for chunk in _unfinished_chunks(plan, store):
            for batch in final_together(engine.run(plan, chunk)):
                store.add_all(batch, versions)
                stored += len(batch)
                for result in batch:
                    counts[result.status] += 1
                    best.add(result.trial.config, result.status, result.final)
                    if result.status == "failed":
                        console.print(f"[red]failed[/] {result.trial.key}: {result.message}")
                    if on_result is not None:
                        on_result(result)
                    progress.advance(1, best.text())
                stop.check()
        stop.check()  # a signal whose exception was swallowed during the last trial
    except KeyboardInterrupt:
        progress.stop()
        done = _stored_count(store, plan, skipped + stored)
        _say(
            f"stopped: {done} of {total} trials are stored in {out}; run the same command to resume"
        )
        raise
    progress.stop()
    if counts["diverged"] or counts["failed"]:
        console.print(f"{counts['diverged']} diverged, {counts['failed']} failed")
    return RunSummary(out, engine.name, total, skipped, stored, counts)


def final_together(
    results: Iterable[TrialResult], limit: int = GROUP_LIMIT
) -> Iterator[list[TrialResult]]:
    """``results`` in the groups that became final together, as their engine announced
    them (``TrialResult.final_with_next``), at most ``limit`` to a group (the results a
    transaction holds in memory): each group is stored in one transaction.

    A group is handed on as soon as its last result arrives, never held while the engine
    trains the next ones; an engine that stops before a group is complete hands on what
    came.

    >>> from types import SimpleNamespace as R
    >>> announced = [R(final_with_next=n) for n in (0, 2, 1, 0, 0)]
    >>> [len(group) for group in final_together(announced)]
    [1, 3, 1]
    >>> [len(group) for group in final_together(announced, limit=2)]
    [1, 2, 1, 1]
    """
    group: list[TrialResult] = []
    for result in results:
        group.append(result)
        if result.final_with_next <= 0 or len(group) >= limit:
            yield group
            group = []
    if group:
        yield group


def _unfinished_chunks(plan: Plan, store: Store):
    """The plan's trials not stored as final, seed-major, at most :data:`CHUNK` at a time
    (the plan is never held whole: constant memory whatever its size)."""
    for chunk in plan.chunks(max(CHUNK, len(plan.points))):
        done = store.finished_among(t.key for t in chunk)
        todo = [t for t in chunk if t.key not in done]
        if todo:
            yield todo


def _say(line: str) -> None:
    """One line on stderr, even with --quiet, never wrapped (the resume line)."""
    print(line, file=sys.stderr, flush=True)


def _stored_count(store: Store, plan: Plan, counted: int) -> int:
    """The plan's trials in the store (a commit may have landed just before a signal)."""
    try:
        return count_stored(store, plan.labels, plan.seeds)
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
    seeds: int | None = None,
    yes: bool = False,
    strict: bool = False,
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
        plan, folder = plan_run(experiment, out, new, seeds, yes, strict, stop=stop)
    wrapped = RayEngine(
        choose_engine(engine, plan, options=engine_options),
        task_cpus=task_cpus,
        task_gpus=task_gpus,
        max_retries=max_retries,
        trials_per_task=trials_per_task,
    )
    with ray_session(address, num_cpus=num_cpus):
        return run_plan(plan, out=folder, new=new, engine=wrapped, quiet=quiet, stop=stop)
