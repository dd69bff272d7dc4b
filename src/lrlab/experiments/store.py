"""The experiment store: one SQLite file per experiment folder, the only shared state.

``DIR/store.sqlite`` (WAL journal, ``synchronous=FULL``) holds:

- ``meta``: the experiment file as written and its canonical settings (JSON), the config
  hash, the metric and baseline, the config labels in grid order, the planned trial
  count, library versions and the creation time;
- ``trials``: one row per finished trial: its parameters, status (``ok``, ``diverged``
  with ``diverged_epoch``, ``failed`` with ``message``), final metrics (JSON), start time,
  duration, engine and library versions;
- ``epochs``: one row per trial and epoch: the lr of the epoch's last update and the
  epoch's metrics (JSON, Keras names).

Each finished trial is written in one transaction (trial row and its epochs together), or
with the trials that finished at the same time (a population chunk: one commit for all,
:meth:`Store.add_all`), so a crash at any moment leaves every trial either complete or
absent. A trial that is ``ok`` or ``diverged`` is final: writing it again is refused. A
``failed`` trial is replaced when it is run again (a resumed run retries failures).

The folder is guarded by :class:`DirectoryLock` (an ``flock`` on ``DIR/.lrlab.lock``,
released by the OS even after ``kill -9``): a second ``lrlab run`` on a folder in use
refuses with a clear message.

A report can be rebuilt from the store alone. Readers (``lrlab report``, ``lrlab export``)
open it with :meth:`Store.open_read_only`: SQLite's read-only URI, so a store on a
read-only folder can be read and a file that is not a store is never given a schema.
Rows edited by hand are checked as they are read: a field that is not what lrlab wrote
is one line naming the store, the trial and the field.
"""

from __future__ import annotations

import datetime as _dt
import os
import socket
import sqlite3
import sys
import time
import urllib.parse
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from lrlab.experiments.config import ExperimentConfig, config_from_dict
from lrlab.experiments.config_errors import ConfigError
from lrlab.experiments.store_rows import (
    StoredTrial,
    StoreError,
    decode_json,
    edited_error,
    epoch_row,
    epoch_values,
    meta_value,
    stored_trial,
    to_json,
)
from lrlab.experiments.trial import TrialResult
from lrlab.fileio import open_lock_file

__all__ = [
    "FILENAME",
    "DirectoryLock",
    "LockedError",
    "Store",
    "StoreError",
    "StoredTrial",
    "library_versions",
]

FILENAME = "store.sqlite"
LOCKNAME = ".lrlab.lock"
SCHEMA_VERSION = 1
FINAL_STATUSES = ("ok", "diverged")
_NEW_HINT = " ('lrlab run --new' moves a damaged store aside and starts over)"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS trials (
    key            TEXT PRIMARY KEY,
    config         TEXT NOT NULL,
    schedule       TEXT NOT NULL,
    spec           TEXT NOT NULL,
    optimizer      TEXT NOT NULL,
    lr             REAL,
    seed           INTEGER NOT NULL,
    params         TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('ok', 'diverged', 'failed')),
    diverged_epoch INTEGER,
    message        TEXT,
    final          TEXT NOT NULL,
    started        REAL NOT NULL,
    seconds        REAL NOT NULL,
    engine         TEXT NOT NULL,
    versions       TEXT NOT NULL,
    stored         REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS epochs (
    trial   TEXT NOT NULL REFERENCES trials(key) ON DELETE CASCADE,
    epoch   INTEGER NOT NULL,
    lr      REAL,
    metrics TEXT NOT NULL,
    PRIMARY KEY (trial, epoch)
);
"""


class LockedError(StoreError):
    """Another ``lrlab run`` holds the experiment folder."""


def library_versions() -> dict[str, str]:
    """Versions of Python, lrlab and the libraries that shape results (no imports needed)."""
    from importlib import metadata

    out = {"python": sys.version.split()[0]}
    for name in ("lrlab", "numpy", "keras", "jax", "jaxlib", "scipy", "scikit-learn"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    out["keras_backend"] = os.environ.get("KERAS_BACKEND", "")
    return out


class Store:
    """The SQLite store of one experiment folder."""

    def __init__(self, path: Path, conn: sqlite3.Connection):
        self.path = path
        self._conn = conn

    # -- opening -------------------------------------------------------------------
    @staticmethod
    def file_in(directory: Path) -> Path:
        return Path(directory) / FILENAME

    @classmethod
    def exists_in(cls, directory: Path) -> bool:
        """True if ``DIR/store.sqlite`` holds an experiment (its settings are written).

        A file without settings holds no trials either: a run stopped (or the disk filled)
        while creating it. It is not a store yet, and the next run initializes it.
        """
        path = cls.file_in(directory)
        if not path.is_file():
            return False
        try:
            conn = _connect_read_only(path)
            try:
                tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
                if (
                    "meta" in tables
                    and conn.execute("SELECT 1 FROM meta WHERE key = 'config_hash'").fetchone()
                ):
                    return True
                return "trials" in tables and bool(
                    conn.execute("SELECT 1 FROM trials LIMIT 1").fetchone()
                )
            finally:
                conn.close()
        except sqlite3.DatabaseError:
            return True  # unreadable: opening it reports why

    @classmethod
    def open(cls, directory: str | Path, *, create: bool = False) -> Store:
        """Open ``DIR/store.sqlite`` (``create=True`` makes it; the folder must exist)."""
        path = cls.file_in(Path(directory))
        if path.is_symlink() or (path.exists() and not path.is_file()):  # as the lock file
            what = "a symbolic link" if path.is_symlink() else "not a regular file"
            raise StoreError(
                f"{path} is {what}; lrlab writes its store to a regular file only: move it "
                "away, or choose another --out folder"
            )
        if not create and not path.is_file():
            raise StoreError(
                f"{directory} holds no lrlab store ({FILENAME}); "
                "run 'lrlab run EXPERIMENT.toml --out DIR' first"
            )
        try:
            conn = sqlite3.connect(path, isolation_level=None, timeout=30)
            _refuse_foreign_tables(conn, path)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as err:
            hint = "is it an lrlab store?" if "not a database" in str(err) else "check the disk"
            hint += f"{_NEW_HINT}"
            raise StoreError(f"cannot open {path}: {err}; {hint}") from None
        return cls(path, conn)._known_schema()

    @classmethod
    def open_read_only(cls, directory: str | Path) -> Store:
        """Open ``DIR/store.sqlite`` to read it only (``report``, ``export``).

        SQLite's read-only URI (``mode=ro``; ``immutable=1`` when the folder is not
        writable, so SQLite needs no ``-shm`` file there): nothing is created, migrated
        or written, and a file that is not an lrlab store is one line, left as it was.
        """
        path = cls.file_in(Path(directory))
        if not path.is_file():
            return cls.open(directory)  # the message for a folder without a store
        try:
            conn = _connect_read_only(path)
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        except sqlite3.DatabaseError as err:
            hint = f"is it an lrlab store?{_NEW_HINT}"
            if not os.access(path.parent, os.W_OK):  # a log SQLite cannot open read-only
                hint = "its folder is read-only: copy the whole folder somewhere writable"
            raise StoreError(f"cannot read {path}: {err}; {hint}") from None
        if not {"meta", "trials", "epochs"} <= tables:
            conn.close()
            raise StoreError(
                f"{path} is not an lrlab store (it has no lrlab tables); "
                "run 'lrlab run EXPERIMENT.toml --out DIR' to make one"
            )
        return cls(path, conn)._known_schema()

    def _known_schema(self) -> Store:
        """``self``, unless a newer lrlab (or a hand) wrote its schema version (closed then)."""
        try:
            version = self.meta().get("schema_version")
            if version is None or (isinstance(version, int) and version <= SCHEMA_VERSION):
                return self
        except StoreError:
            self.close()
            raise
        self.close()
        if isinstance(version, int) and not isinstance(version, bool):
            raise StoreError(
                f"{self.path} was written by a newer lrlab (schema {version}); upgrade lrlab"
            )
        raise edited_error(self.path, "settings", "meta 'schema_version'", "is not an integer")

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- meta ------------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        """All metadata, JSON values decoded."""
        rows = self._read("SELECT key, value FROM meta")
        return {k: meta_value(self.path, k, v) for k, v in rows}

    def set_meta(self, values: dict[str, Any]) -> None:
        """Write metadata entries in one transaction."""
        try:
            with self._transaction():
                self._conn.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    [(k, to_json(v)) for k, v in values.items()],
                )
        except sqlite3.OperationalError as err:
            raise StoreError(f"cannot write {self.path}: {err}; check the disk") from None

    def config(self) -> ExperimentConfig | None:
        """The experiment's validated settings, from the canonical settings the store holds
        (``None`` for a store without them, or whose settings no longer validate).

        What the analysis needs of the file (e.g. ``config.varied``, what a seed varied)
        comes from here, with the config's own defaults, instead of re-reading its text.
        """
        canonical = self.meta().get("canonical")
        if not isinstance(canonical, dict):
            return None
        try:
            return config_from_dict(canonical, source=str(self.path))
        except ConfigError:
            return None

    def record_look(self, *, dry_run: bool = False) -> int:
        """Count one look at the results (a printed verdict) and return the looks so far.

        A look counts when the stored trials changed since the last one: printing the same
        data twice is one look, adding seeds and printing again is two. Kept in the meta as
        ``looks`` and ``looked_at`` (the trial count of the last look). ``dry_run``: the
        count this look would give, nothing written.
        """
        meta = self.meta()
        looks = int(meta.get("looks", 0))
        trials = self.count()
        if looks == 0 or meta.get("looked_at") != trials:
            looks += 1
            if not dry_run:
                self.set_meta({"looks": looks, "looked_at": trials})
        return looks

    def initialize(self, values: dict[str, Any]) -> None:
        """First metadata of a new store (adds ``schema_version`` and ``created``)."""
        self.set_meta(
            {
                "schema_version": SCHEMA_VERSION,
                "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
                **values,
            }
        )

    # -- trials ----------------------------------------------------------------------
    def finished_keys(self) -> set[str]:
        """Keys of final trials (``ok`` or ``diverged``): a resumed run skips these."""
        rows = self._conn.execute(
            "SELECT key FROM trials WHERE status IN ('ok', 'diverged')"
        ).fetchall()
        return {r[0] for r in rows}

    def add(self, result: TrialResult, versions: dict[str, str] | None = None) -> None:
        """Store one finished trial and its epochs in one transaction (:meth:`add_all`)."""
        self.add_all([result], versions)

    def add_all(
        self, results: Sequence[TrialResult], versions: dict[str, str] | None = None
    ) -> None:
        """Store finished trials and their epochs in one transaction: all of them or none.

        Trials that finish together (a population chunk) cost one commit (one ``fsync``
        of the log) instead of one each; each trial is still whole or absent after a crash.
        A stored ``failed`` trial of the same key is replaced.

        Raises:
            StoreError: a trial is already stored as final, or given twice (nothing of
                ``results`` is stored then), or the disk refuses the write.
        """
        keys = [r.trial.key for r in results]
        if len(set(keys)) < len(keys):
            twice = next(k for k in keys if keys.count(k) > 1)
            raise StoreError(f"trial {twice!r} is given twice in one write")
        now, versions_text = time.time(), to_json(versions or {})
        try:
            with self._transaction():
                stored = self._statuses(keys)
                final = [k for k in keys if stored.get(k) in FINAL_STATUSES]
                if final:
                    raise StoreError(f"trial {final[0]!r} is already stored ({stored[final[0]]})")
                self._conn.executemany(
                    "DELETE FROM trials WHERE key = ?", [(k,) for k in keys if k in stored]
                )
                self._conn.executemany(
                    "INSERT INTO trials (key, config, schedule, spec, optimizer, lr, seed, "
                    "params, status, diverged_epoch, message, final, started, seconds, engine, "
                    "versions, stored) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    [_trial_row(r, versions_text, now) for r in results],
                )
                self._conn.executemany(
                    "INSERT INTO epochs (trial, epoch, lr, metrics) VALUES (?, ?, ?, ?)",
                    [row for r in results for row in epoch_values(r.trial.key, r.epochs)],
                )
        except sqlite3.OperationalError as err:
            raise StoreError(f"cannot write {self.path}: {err}; check the disk") from None

    def trials(self, status: str | None = None, *, every: bool = False) -> list[StoredTrial]:
        """Stored trials in the order they were stored (optionally one status only).

        Only the trials of the experiment's configs (``meta["labels"]``, the configs of the
        file as last run) unless ``every``: a config removed from the file keeps its
        trials in the store, out of the report. A store written before experiments could
        grow (no ``meta["identity"]``) holds one experiment: all of its trials.
        """
        query = (
            "SELECT key, config, schedule, spec, optimizer, lr, seed, params, status, "
            "diverged_epoch, message, final, started, seconds, engine, versions FROM trials"
        )
        args: tuple[Any, ...] = ()
        if status is not None:
            query += " WHERE status = ?"
            args = (status,)
        rows = self._read(query + " ORDER BY stored, rowid", args)
        meta = self.meta()
        if not every and "identity" in meta and meta.get("labels") is not None:
            current = set(meta["labels"])
            rows = [r for r in rows if r[1] in current]
        return [stored_trial(self.path, r) for r in rows]

    def epochs(self, keys: Iterable[str] | None = None) -> dict[str, list[dict[str, float]]]:
        """Per-epoch rows ``{"epoch", "lr", <metrics>...}`` of every (or the given) trial."""
        rows = self._read("SELECT trial, epoch, lr, metrics FROM epochs ORDER BY trial, epoch")
        wanted = set(keys) if keys is not None else None
        out: dict[str, list[dict[str, float]]] = {}
        for trial, epoch, lr, metrics in rows:
            if wanted is not None and trial not in wanted:
                continue
            row = epoch_row(self.path, trial, epoch, lr, metrics)
            out.setdefault(trial, []).append(row)
        return out

    def finished_among(self, keys: Iterable[str]) -> set[str]:
        """Which of ``keys`` are stored as final (one query per 500 keys: a chunk's check)."""
        return {k for k, status in self._statuses(keys).items() if status in FINAL_STATUSES}

    def _statuses(self, keys: Iterable[str]) -> dict[str, str]:
        """The stored status of each of ``keys`` that is stored (one query per 500 keys)."""
        keys = list(keys)
        found: dict[str, str] = {}
        for i in range(0, len(keys), 500):
            part = keys[i : i + 500]
            rows = self._conn.execute(
                f"SELECT key, status FROM trials WHERE key IN ({','.join('?' * len(part))})",
                part,
            ).fetchall()
            found.update(rows)
        return found

    def finished_pairs(self) -> list[tuple[str, int]]:
        """``(config, seed)`` of every final trial."""
        return self._conn.execute(
            "SELECT config, seed FROM trials WHERE status IN ('ok', 'diverged')"
        ).fetchall()

    def config_params(self) -> dict[str, tuple[dict[str, Any], int]]:
        """Each stored config's label -> (the parameters of one of its trials, trial count)."""
        rows = self._conn.execute(
            "SELECT config, params, COUNT(*) FROM trials GROUP BY config"
        ).fetchall()
        return {
            config: (decode_json(self.path, f"config {config!r}", "params", params), n)
            for config, params, n in rows
        }

    def relabel(self, old: str, new: str, schedule: str, optimizer: str) -> None:
        """Store the trials of config ``old`` under the label ``new`` (keys ``new|seed=N``),
        with the file's new ``schedule`` and ``optimizer`` labels, in one transaction."""
        rows = self._conn.execute(
            "SELECT key, seed, params FROM trials WHERE config = ?", (old,)
        ).fetchall()
        try:
            with self._transaction():
                self._conn.execute("PRAGMA defer_foreign_keys = ON")
                for key, seed, params in rows:
                    new_key = f"{new}|seed={seed}"
                    data = {
                        **decode_json(self.path, f"trial {key!r}", "params", params),
                        "key": new_key,
                        "config": new,
                        "schedule": schedule,
                        "optimizer": optimizer,
                    }
                    self._conn.execute(
                        "UPDATE trials SET key = ?, config = ?, schedule = ?, optimizer = ?, "
                        "params = ? WHERE key = ?",
                        (new_key, new, schedule, optimizer, to_json(data), key),
                    )
                    self._conn.execute(
                        "UPDATE epochs SET trial = ? WHERE trial = ?", (new_key, key)
                    )
        except sqlite3.OperationalError as err:
            raise StoreError(f"cannot write {self.path}: {err}; check the disk") from None

    def count(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM trials").fetchone()[0])

    def integrity_ok(self) -> bool:
        return self._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    # -- helpers ---------------------------------------------------------------------
    def _transaction(self):
        return _Transaction(self._conn)

    def _read(self, query: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._conn.execute(query, args).fetchall()
        except sqlite3.DatabaseError as err:  # a damaged file, a table dropped by hand
            raise StoreError(
                f"cannot read {self.path}: {err}; is it an lrlab store?{_NEW_HINT}"
            ) from None


def _refuse_foreign_tables(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse (closing ``conn``) another program's database: tables lrlab never makes."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if foreign := sorted(tables - {"meta", "trials", "epochs"}):
        conn.close()
        raise StoreError(
            f"{path} is not an lrlab store (it has the tables {', '.join(foreign[:5])}); "
            "move it away or choose another --out folder"
        )


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection.

    With ``immutable=1`` too when the folder is not writable and holds no write-ahead log
    to merge: SQLite then needs no ``-shm`` file beside the store. (A log left there is
    read through ``mode=ro``, which needs its ``-shm`` file: immutable would ignore it.)
    """
    uri = "file:" + urllib.parse.quote(str(path.absolute())) + "?mode=ro"
    wal = path.with_name(path.name + "-wal")
    unmerged = wal.is_file() and wal.stat().st_size > 0
    if not os.access(path.parent, os.W_OK) and not unmerged:
        uri += "&immutable=1"
    return sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30)


def _trial_row(result: TrialResult, versions: str, stored: float) -> tuple[Any, ...]:
    """The ``trials`` row of ``result`` (the schema's columns in order; ``versions`` as
    JSON, ``stored`` the time it is written)."""
    t = result.trial
    return (
        t.key,
        t.config,
        t.schedule_label,
        t.spec,
        t.optimizer_label,
        t.lr,
        t.seed,
        to_json(t.params()),
        result.status,
        result.diverged_epoch,
        result.message,
        to_json(result.final),
        result.started,
        result.seconds,
        result.engine,
        versions,
        stored,
    )


class _Transaction:
    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind, value, tb) -> None:
        if kind is None:
            try:
                self.conn.execute("COMMIT")
            except sqlite3.Error:  # e.g. the disk filled: leave no transaction open
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
        elif self.conn.in_transaction:  # SQLite may have rolled back already (disk full)
            self.conn.execute("ROLLBACK")


class DirectoryLock:
    """An exclusive ``flock`` on ``DIR/.lrlab.lock`` for the duration of a run.

    The OS drops the lock when the process ends, even by ``kill -9``, so a stale lock
    file never blocks a later run. The file records who holds it, for the message.
    """

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.path = self.directory / LOCKNAME
        self._fd: int | None = None

    def acquire(self) -> DirectoryLock:
        import fcntl

        try:
            fd = open_lock_file(self.path)  # never through a link: a hostile folder
        except OSError as err:  # a read-only folder or file system, a full disk
            raise StoreError(
                f"cannot write to {self.directory} ({err.strerror}); make it writable "
                "or use another --out folder"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 400, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise LockedError(
                f"{self.directory} is in use by another 'lrlab run' ({holder}); wait for it "
                "to finish, or use another --out folder"
            ) from None
        now = _dt.datetime.now().isoformat(timespec="seconds")
        try:  # who holds it, for the message of a refused run (the lock holds without it)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}, since {now}".encode(), 0)
        except OSError:
            pass
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            import fcntl

            try:
                os.ftruncate(self._fd, 0)
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> DirectoryLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
