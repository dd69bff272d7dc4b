"""``lrlab runs`` and ``lrlab report DIR1 DIR2``: real stores from real (tiny) runs, the CLI
as a subprocess; nothing is created in the folders read."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from lrlab.experiments.store import DirectoryLock
from test_cli_experiments import EXP, lrlab


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """runs/a (constant, time_decay), runs/b (constant, cosine): same data, 2 seeds."""
    root = tmp_path_factory.mktemp("runs")
    (root / "a.toml").write_text(EXP)
    other = EXP.replace('time_decay = "time_decay(0.1, decay=0.002)"', 'cosine = "cosine(0.1, 10)"')
    (root / "b.toml").write_text(other)
    for name in ("a", "b"):
        r = lrlab("run", f"{name}.toml", "-o", f"runs/{name}", "-q", cwd=root)
        assert r.returncode == 0, r.stderr
    return root


def test_runs_lists_each_experiment_read_only(runs, tmp_path):
    folder = tmp_path / "runs"
    shutil.copytree(runs / "runs", folder)
    before = _files(folder)
    r = lrlab("runs", str(folder), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    head, a, b = r.stdout.splitlines()
    assert head.split() == [
        "folder",
        "name",
        "trials",
        "status",
        "best",
        "(val_accuracy)",
        "last",
        "run",
    ]
    assert a.split()[:4] == [str(folder / "a"), "a", "4/4", "complete"]
    assert b.split()[:4] == [str(folder / "b"), "b", "4/4", "complete"]
    uri = f"file:{folder / 'a' / 'store.sqlite'}?immutable=1"  # the best, recomputed
    with sqlite3.connect(uri, uri=True) as conn:
        rows = conn.execute("SELECT config, json_extract(final, '$.val_accuracy') FROM trials")
        means: dict[str, list[float]] = {}
        for config, value in rows:
            means.setdefault(config, []).append(value)
    conn.close()
    best = max(means, key=lambda c: sum(means[c]) / len(means[c]))
    assert a.split()[4:6] == [best, f"{sum(means[best]) / len(means[best]):.4f}"]
    assert _files(folder) == before  # no -wal, -shm, lock or anything else written


def test_runs_status_partial_and_running(runs, tmp_path):
    folder = tmp_path / "runs"
    shutil.copytree(runs / "runs" / "a", folder / "a")
    with sqlite3.connect(folder / "a" / "store.sqlite") as conn:
        conn.execute("DELETE FROM trials WHERE key = 'constant|seed=1'")
    conn.close()
    r = lrlab("runs", str(folder), cwd=tmp_path)
    assert r.stdout.splitlines()[1].split()[2:4] == ["3/4", "partial"], r.stdout
    with DirectoryLock(folder / "a"):  # what a run in progress holds
        r = lrlab("runs", str(folder), cwd=tmp_path)
    assert r.stdout.splitlines()[1].split()[2:4] == ["3/4", "running"], r.stdout


def test_runs_on_a_folder_without_experiments(tmp_path):
    r = lrlab("runs", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr == (
        "lrlab: error: runs: no such folder; give the folder that holds your runs\n"
    )
    (tmp_path / "empty").mkdir()
    r = lrlab("runs", "empty", cwd=tmp_path)
    assert r.returncode == 0 and "no lrlab experiment under empty" in r.stdout
    assert list((tmp_path / "empty").iterdir()) == []


def test_report_two_folders_pairs_their_configs_by_seed(runs):
    r = lrlab("report", "runs/a", "runs/b", "--format", "json", cwd=runs)
    assert r.returncode == 0, r.stderr
    rows = {row["config"]: row for row in json.loads(r.stdout)}
    assert set(rows) == {"a/constant", "a/time_decay", "b/constant", "b/cosine"}
    assert rows["a/constant"]["is_baseline"]
    # the same config on the same data and seeds trains the same: paired difference 0
    assert rows["b/constant"]["mean"] == rows["a/constant"]["mean"]
    assert rows["b/constant"]["diff"] == 0.0 and rows["b/constant"]["n_paired"] == 2
    single = json.loads(lrlab("report", "runs/b", "--format", "json", cwd=runs).stdout)
    assert {r["config"]: r["mean"] for r in single}["cosine"] == rows["b/cosine"]["mean"]


def _edit_meta(folder: Path, key: str, path: str, value: object) -> None:
    """Set ``meta[key]`` (at the JSON ``path`` inside it) of a copied store."""
    with sqlite3.connect(folder / "store.sqlite") as conn:
        conn.execute(
            "UPDATE meta SET value = json_set(value, ?, json(?)) WHERE key = ?",
            (path, json.dumps(value), key),
        )
    conn.close()


@pytest.mark.parametrize(
    "key, path, value, why",
    [
        (
            "canonical",
            "$.data.validation",
            0.3,
            "their data settings differ (data.validation), so a seed means another split",
        ),
        (
            "data_fingerprint",
            "$",
            "0" * 64,
            "they trained on different data (data fingerprint differs)",
        ),
    ],
)
def test_report_refuses_experiments_that_cannot_be_compared(runs, tmp_path, key, path, value, why):
    shutil.copytree(runs / "runs" / "b", tmp_path / "c")
    _edit_meta(tmp_path / "c", key, path, value)
    r = lrlab("report", str(runs / "runs" / "a"), "c", cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == f"lrlab: error: cannot compare {runs / 'runs' / 'a'} and c: {why}\n"
