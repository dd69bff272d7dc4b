"""The SQLite store: one transaction per trial (or per group of trials final together),
exactly once, NaN-safe, whole or absent after a crash, and the folder lock."""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from lrlab.experiments.store import DirectoryLock, LockedError, Store, StoreError
from lrlab.experiments.trial import OptimizerSettings, Trial, TrialResult
from lrlab.spec import parse


def trial(seed: int = 0, config: str = "constant") -> Trial:
    return Trial(
        key=f"{config}|seed={seed}",
        config=config,
        schedule_label=config,
        schedule=parse("constant(0.1)"),
        plateau=None,
        monitor="val_loss",
        optimizer_label="sgd",
        optimizer=OptimizerSettings.from_dict({"type": "sgd", "momentum": 0.8}),
        lr=None,
        seed=seed,
        split_seed=seed,
        init_seed=seed,
        order_seed=seed,
    )


def result(t: Trial, status: str = "ok", epochs: int = 3, **kw) -> TrialResult:
    rows = [
        {"epoch": e, "lr": 0.1 / e, "loss": 1.0 / e, "val_loss": 1.1 / e, "val_accuracy": 0.5}
        for e in range(1, epochs + 1)
    ]
    return TrialResult(t, status, rows, {"val_accuracy": 0.5 + t.seed / 100}, started=1.0, **kw)


def test_roundtrip(tmp_path):
    with Store.open(tmp_path, create=True) as store:
        store.initialize({"config_hash": "abc", "labels": ["constant"]})
        store.add(result(trial(0)), {"keras": "3"})
        store.add(result(trial(1, "decay"), "diverged", diverged_epoch=2))
    with Store.open(tmp_path) as store:
        meta = store.meta()
        assert meta["config_hash"] == "abc" and meta["schema_version"] == 1
        trials = store.trials()
        assert [t.key for t in trials] == ["constant|seed=0", "decay|seed=1"]
        assert trials[0].params["optimizer_params"] == {"type": "sgd", "momentum": 0.8}
        assert trials[0].versions == {"keras": "3"}
        assert trials[1].status == "diverged" and trials[1].diverged_epoch == 2
        epochs = store.epochs()
        assert [e["epoch"] for e in epochs["constant|seed=0"]] == [1, 2, 3]
        assert epochs["constant|seed=0"][1]["lr"] == pytest.approx(0.05)
        assert store.finished_keys() == {"constant|seed=0", "decay|seed=1"}
        assert store.integrity_ok()
        mode = store._conn.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"


def test_final_trials_are_stored_once_failed_ones_are_replaced(tmp_path):
    with Store.open(tmp_path, create=True) as store:
        store.add(result(trial(0)))
        with pytest.raises(StoreError, match="already stored"):
            store.add(result(trial(0)))
        store.add(TrialResult(trial(1), "failed", message="RuntimeError: boom"))
        assert store.finished_keys() == {"constant|seed=0"}
        store.add(result(trial(1)))
        assert [(t.key, t.status) for t in store.trials()] == [
            ("constant|seed=0", "ok"),
            ("constant|seed=1", "ok"),
        ]
        assert store.count() == 2


def test_a_failed_write_leaves_nothing_half_stored(tmp_path):
    bad = result(trial(0))
    bad.epochs.append(dict(bad.epochs[0]))  # epoch 1 twice: the epochs insert fails
    with Store.open(tmp_path, create=True) as store:
        with pytest.raises(sqlite3.IntegrityError):
            store.add(bad)
        assert store.count() == 0 and store.epochs() == {}
        store.add(result(trial(0)))
        assert store.count() == 1


def statements(store: Store) -> list[str]:
    """The SQL ``store`` runs from now on (SQLite's trace callback), first words only."""
    seen: list[str] = []
    store._conn.set_trace_callback(lambda sql: seen.append(" ".join(sql.split()[:3])))
    return seen


def test_trials_final_together_are_written_in_one_transaction(tmp_path):
    with Store.open(tmp_path, create=True) as store:
        store.add(TrialResult(trial(3), "failed", message="RuntimeError: boom"))
        seen = statements(store)
        store.add_all([result(trial(s), epochs=5) for s in range(4)], {"keras": "3"})
        assert seen.count("BEGIN IMMEDIATE") == 1 and seen.count("COMMIT") == 1
        assert seen.count("INSERT INTO trials") == 4  # one statement, run once per trial
        assert [(t.key, t.status) for t in store.trials()] == [
            (f"constant|seed={s}", "ok")
            for s in range(4)  # the failed seed 3 replaced
        ]
        assert {k: len(rows) for k, rows in store.epochs().items()} == {
            f"constant|seed={s}": 5 for s in range(4)
        }
        assert store.trials()[0].versions == {"keras": "3"}


def test_a_group_with_a_final_trial_or_a_key_twice_stores_none_of_it(tmp_path):
    with Store.open(tmp_path, create=True) as store:
        store.add(result(trial(1)))
        with pytest.raises(StoreError, match=r"trial 'constant\|seed=1' is already stored \(ok\)"):
            store.add_all([result(trial(0)), result(trial(1)), result(trial(2))])
        with pytest.raises(StoreError, match=r"trial 'constant\|seed=5' is given twice"):
            store.add_all([result(trial(5)), result(trial(6)), result(trial(5))])
        assert store.count() == 1 and list(store.epochs()) == ["constant|seed=1"]
        store.add_all([result(trial(0)), result(trial(2))])
        assert store.count() == 3


KILLED_IN_A_GROUP = """
import os, signal, sys
from lrlab.experiments.store import Store
sys.path.insert(0, sys.argv[2])
from test_store import result, trial

with Store.open(sys.argv[1], create=True) as store:
    store.add_all([result(trial(s)) for s in range(3)])  # committed
    epochs = []

    def die_on_the_fifth_epoch_row(sql):  # 3 trial rows and 4 epoch rows are in
        epochs.append(sql) if sql.startswith("INSERT INTO epochs") else None
        if len(epochs) == 5:
            os.kill(os.getpid(), signal.SIGKILL)

    store._conn.set_trace_callback(die_on_the_fifth_epoch_row)
    store.add_all([result(trial(s)) for s in range(3, 6)])
"""


def test_a_kill_inside_a_groups_transaction_leaves_none_of_the_group(tmp_path):
    """SIGKILL halfway through writing a group's epochs (its trial rows written): the
    group is absent, the trials committed before are whole, and writing it again works."""
    here = os.path.dirname(__file__)
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_IN_A_GROUP, str(tmp_path), here], capture_output=True
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    with Store.open(tmp_path) as store:
        assert store.integrity_ok()
        assert [t.key for t in store.trials()] == [f"constant|seed={s}" for s in range(3)]
        assert {k: len(v) for k, v in store.epochs().items()} == {
            f"constant|seed={s}": 3 for s in range(3)
        }
        store.add_all([result(trial(s)) for s in range(3, 6)])  # the group, run again
        assert store.finished_keys() == {f"constant|seed={s}" for s in range(6)}


def test_nan_and_inf_survive(tmp_path):
    r = result(trial(0), "diverged", diverged_epoch=1)
    r.epochs[0].update(loss=math.nan, lr=math.inf)
    r.final["val_loss"] = math.inf
    with Store.open(tmp_path, create=True) as store:
        store.add(r)
        (t,) = store.trials()
        assert t.final["val_loss"] == math.inf
        e = store.epochs()[t.key][0]
        assert math.isnan(e["loss"]) and math.isnan(e["lr"])  # a non-finite lr is stored as NULL


def test_missing_store_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="holds no lrlab store .*'lrlab run"):
        Store.open(tmp_path)


def test_lock_refuses_a_second_holder_and_names_the_first(tmp_path):
    with DirectoryLock(tmp_path):
        with pytest.raises(
            LockedError, match=rf"in use by another 'lrlab run' \(pid {os.getpid()}"
        ):
            DirectoryLock(tmp_path).acquire()
    with DirectoryLock(tmp_path):  # released: free again
        pass


def test_lock_is_released_when_its_holder_is_killed(tmp_path):
    code = (
        "import sys, time; from lrlab.experiments.store import DirectoryLock; "
        f"DirectoryLock({str(tmp_path)!r}).acquire(); print('locked', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(LockedError):
            DirectoryLock(tmp_path).acquire()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 10
    while True:
        try:
            DirectoryLock(tmp_path).acquire().release()
            break
        except LockedError:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_the_store_gives_back_the_validated_config_and_what_a_seed_varied(tmp_path):
    from lrlab.experiments.config import config_from_dict

    raw = {
        "experiment": {"seeds": 3, "vary": ["split", "order"]},
        "data": {"dataset": "digits", "split": "tail"},
        "model": "mlp(hidden=[8])",
        "training": {"epochs": 2, "batch_size": 16},
        "optimizers": {"adamw": "adamw"},
        "schedules": {"c": "constant(0.1)", "p": {"spec": "constant(0.1)", "plateau": "plateau"}},
    }
    config = config_from_dict(raw)
    with Store.open(tmp_path, create=True) as store:
        assert store.config() is None  # nothing stored yet
        store.initialize({"canonical": config.canonical()})
        back = store.config()
    assert back is not None and back.canonical() == config.canonical()
    assert back.varied == ["order"]  # a tail split is the same for every seed
    assert back.parsed_schedule("p") == config.parsed_schedule("p")
    assert back.optimizers["adamw"]["weight_decay"] == 0.004  # the default, kept
    raw["data"] = {"dataset": "digits"}
    raw["experiment"].pop("vary")
    assert config_from_dict(raw).varied == ["split", "init", "order"]
    raw["data"]["validation"] = "csv:holdout.csv"
    assert config_from_dict(raw).varied == ["init", "order"]
