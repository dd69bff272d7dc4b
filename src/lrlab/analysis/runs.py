"""``lrlab runs``: the experiments under a folder, from their stores alone, read-only.

For each ``store.sqlite`` under the folder: the experiment's name, trials done / planned,
its status, the best config with its mean metric, and when a trial was last stored.
Status: ``running`` while an ``lrlab run`` holds the folder's lock (the lock tells, not a
guess from times), ``complete`` when every planned trial is final (``ok`` or
``diverged``), else ``partial`` (stopped, or with failed trials to retry).

Nothing is created or changed: a store is opened read-only (``immutable`` when no WAL file
is left, so SQLite makes no ``-wal``/``-shm`` files either), and the lock is only probed
with a shared ``flock`` on an existing lock file.

>>> list_runs("no/such/folder")
[]
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import os
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import quote

from lrlab.analysis.stats import rank, summarize
from lrlab.errors import LrlabError
from lrlab.experiments.store import FILENAME, FINAL_STATUSES, LOCKNAME, Store
from lrlab.experiments.trial import higher_is_better

__all__ = [
    "RunSummary",
    "is_running",
    "list_runs",
    "read_only_store",
    "refuse_folders_of_experiments",
]


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """One experiment folder as its store describes it (see the module docstring)."""

    folder: Path
    name: str
    done: int
    planned: int
    status: str  # complete, partial, running
    metric: str
    best: str | None
    best_value: float | None
    last: _dt.datetime | None  # when the last trial was stored (UTC)


@contextlib.contextmanager
def read_only_store(directory: str | Path) -> Iterator[Store]:
    """``Store`` of ``directory`` opened read-only; creates no file (module docstring)."""
    path = Store.file_in(Path(directory))
    if not path.is_file():
        raise LrlabError(f"{directory} holds no lrlab store ({FILENAME})")
    wal = path.with_name(path.name + "-wal").exists()
    uri = f"file:{quote(str(path.resolve()))}?" + ("mode=ro" if wal else "immutable=1")
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=30)
        conn.execute("SELECT 1 FROM meta LIMIT 1")
    except sqlite3.DatabaseError as err:
        raise LrlabError(f"cannot read {path}: {err}; is it an lrlab store?") from None
    try:
        yield Store(path, conn)
    finally:
        conn.close()


def is_running(directory: str | Path) -> bool:
    """True while an ``lrlab run`` holds ``directory``'s lock (probed, never created)."""
    import fcntl

    try:
        fd = os.open(Path(directory) / LOCKNAME, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing drops the probe's shared lock
    return False


def summarize_run(directory: str | Path) -> RunSummary:
    """The :class:`RunSummary` of one experiment folder."""
    with read_only_store(directory) as store:
        meta = store.meta()
        trials = store.trials()
    metric = str(meta.get("metric", "val_accuracy"))
    values: dict[str, list[float]] = {}
    for t in trials:
        value = t.final.get(metric)
        if t.status == "ok" and value is not None:
            values.setdefault(t.config, []).append(float(value))
    summaries = {c: summarize(v) for c, v in values.items()}
    order = rank(list(summaries), summaries, higher_is_better=higher_is_better(metric))
    done = sum(t.status in FINAL_STATUSES for t in trials)
    planned = int(meta.get("planned") or len(trials))
    if is_running(directory):
        status = "running"
    else:
        status = "complete" if done >= planned else "partial"
    stored = [t.started + t.seconds for t in trials]
    folder = Path(directory)
    return RunSummary(
        folder=folder,
        name=str(meta.get("title") or folder.name),
        done=done,
        planned=planned,
        status=status,
        metric=metric,
        best=order[0] if order else None,
        best_value=summaries[order[0]].mean if order else None,
        last=_dt.datetime.fromtimestamp(max(stored), _dt.UTC) if stored else None,
    )


def list_runs(folder: str | Path) -> list[RunSummary]:
    """Every experiment under ``folder`` (itself included), sorted by folder path."""
    root = Path(folder)
    if not root.is_dir():
        return []
    found = sorted(p.parent for p in root.rglob(FILENAME) if p.is_file())
    return [summarize_run(directory) for directory in found]


def refuse_folders_of_experiments(folders: Sequence[Path]) -> None:
    """A folder of experiments given where one experiment is expected: name them."""
    for folder in folders:
        if folder.is_dir() and not (folder / FILENAME).exists():
            inside = sorted(str(p.parent) for p in folder.rglob(FILENAME))
            if inside:
                shown = ", ".join(inside[:5]) + (" ..." if len(inside) > 5 else "")
                raise LrlabError(
                    f"{folder} holds no experiment itself but {len(inside)} below it "
                    f"({shown}); give one of them, or list them with 'lrlab runs {folder}'"
                )
