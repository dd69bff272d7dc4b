"""``lrlab runs``, ``lrlab report DIR1 DIR2`` and the results table in a notebook: real stores
from real (tiny) runs, the CLI as a subprocess; nothing is created in the folders read."""

from __future__ import annotations

import csv
import inspect
import io
import json
import pydoc
import shutil
import sqlite3
import sys
import types
from html.parser import HTMLParser
from pathlib import Path

import pytest

import lrlab
import lrlab.api as lrlab_api
from lrlab.analysis.results import build_table
from lrlab.errors import LrlabError
from lrlab.experiments.store import DirectoryLock
from lrlab.reporting.notebook import shown
from lrlab.reporting.tables import results_cells, results_markdown
from test_cli_experiments import EXP
from test_cli_experiments import lrlab as lrlab_cli


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
        r = lrlab_cli("run", f"{name}.toml", "-o", f"runs/{name}", "-q", cwd=root)
        assert r.returncode == 0, r.stderr
    return root


def test_runs_lists_each_experiment_read_only(runs, tmp_path):
    folder = tmp_path / "runs"
    shutil.copytree(runs / "runs", folder)
    before = _files(folder)
    r = lrlab_cli("runs", str(folder), cwd=tmp_path)
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
    r = lrlab_cli("runs", str(folder), cwd=tmp_path)
    assert r.stdout.splitlines()[1].split()[2:4] == ["3/4", "partial"], r.stdout
    with DirectoryLock(folder / "a"):  # what a run in progress holds
        r = lrlab_cli("runs", str(folder), cwd=tmp_path)
    assert r.stdout.splitlines()[1].split()[2:4] == ["3/4", "running"], r.stdout


def test_runs_on_a_folder_without_experiments(tmp_path):
    r = lrlab_cli("runs", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr == (
        "lrlab: error: runs: no such folder; give the folder that holds your runs\n"
    )
    (tmp_path / "empty").mkdir()
    r = lrlab_cli("runs", "empty", cwd=tmp_path)
    assert r.returncode == 0 and "no lrlab experiment under empty" in r.stdout
    assert list((tmp_path / "empty").iterdir()) == []


def test_report_two_folders_pairs_their_configs_by_seed(runs):
    r = lrlab_cli("report", "runs/a", "runs/b", "--format", "json", cwd=runs)
    assert r.returncode == 0, r.stderr
    rows = {row["config"]: row for row in json.loads(r.stdout)}
    assert set(rows) == {"a/constant", "a/time_decay", "b/constant", "b/cosine"}
    assert rows["a/constant"]["is_baseline"]
    # the same config on the same data and seeds trains the same: paired difference 0
    assert rows["b/constant"]["mean"] == rows["a/constant"]["mean"]
    assert rows["b/constant"]["diff"] == 0.0 and rows["b/constant"]["n_paired"] == 2
    single = json.loads(lrlab_cli("report", "runs/b", "--format", "json", cwd=runs).stdout)
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
    r = lrlab_cli("report", str(runs / "runs" / "a"), "c", cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == f"lrlab: error: cannot compare {runs / 'runs' / 'a'} and c: {why}\n"


# --------------------------------------------------------------------------- notebook
class _Cells(HTMLParser):
    """The text of every <th>/<td>, row by row."""

    def __init__(self):
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def test_results_render_in_a_notebook(runs):
    table = lrlab_api.results(runs / "runs" / "a")
    assert repr(table) == (
        f"<ResultTable val_accuracy (higher is better): 2 configs, best {table.best.config!r} "
        f"{table.best.mean:.4f}, baseline 'constant', out={str(runs / 'runs' / 'a')!r}>"
    )
    assert table._repr_markdown_() == results_markdown(table) == str(table)
    parser = _Cells()
    parser.feed(table._repr_html_())
    head, body = results_cells(table)
    assert parser.rows == [head, *body]


def test_html_repr_escapes_labels():
    raw = build_table(
        {"<b>x</b>": {0: 0.5, 1: 0.6}, "a&b": {0: 0.4, 1: 0.5}},
        ["<b>x</b>", "a&b"],
        metric="val_accuracy",
        higher_is_better=True,
        baseline="a&b",
    )
    page = shown(raw)._repr_html_()
    assert "<b>x" not in page and "&lt;b&gt;x&lt;/b&gt;" in page and "a&amp;b" in page
    parser = _Cells()
    parser.feed(page)
    assert [row[1] for row in parser.rows[1:]] == ["<b>x</b>", "a&b"]


def test_help_shows_the_real_signature_and_docstring():
    text = pydoc.render_doc(lrlab.compare, renderer=pydoc.plaintext)
    assert "compare(\n    model" in text or "compare(model" in text
    assert "*args" not in text and "Train every schedule" in text
    assert inspect.signature(lrlab.compare) == inspect.signature(lrlab_api.compare)
    assert list(inspect.signature(lrlab.results).parameters) == ["directory", "metric", "baseline"]


def test_epoch_records_one_row_per_trial_and_epoch(runs):
    table = lrlab_api.results(runs / "runs" / "a")
    records = table.epoch_records()
    uri = f"file:{runs / 'runs' / 'a' / 'store.sqlite'}?immutable=1"
    with sqlite3.connect(uri, uri=True) as conn:
        stored = conn.execute(
            "SELECT t.config, t.seed, t.lr, e.epoch, e.lr, json_extract(e.metrics, '$.loss') "
            "FROM epochs e JOIN trials t ON t.key = e.trial"
        ).fetchall()
    conn.close()
    assert len(records) == len(stored) == 4 * 2  # 4 trials x 2 epochs
    got = {(r["config"], r["seed"], r["lr"], r["epoch"], r["epoch_lr"], r["loss"]) for r in records}
    assert got == set(stored)
    assert {"status", "schedule", "optimizer", "val_accuracy"} <= set(records[0])


def test_to_pandas_without_pandas_says_so_in_one_line(runs, monkeypatch):
    table = lrlab_api.results(runs / "runs" / "a")
    monkeypatch.setitem(sys.modules, "pandas", None)  # what a missing package looks like
    with pytest.raises(LrlabError) as err:
        table.to_pandas(epochs=True)
    assert str(err.value) == (
        "to_pandas needs pandas, which lrlab does not install: pip install pandas "
        "(or use .to_dicts() / .epoch_records())"
    )
    stub = types.ModuleType("pandas")
    stub.DataFrame = lambda rows: ("frame", rows)
    monkeypatch.setitem(sys.modules, "pandas", stub)
    assert table.to_pandas(epochs=True) == ("frame", table.epoch_records())
    assert table.to_pandas() == ("frame", table.to_dicts())


def test_export_epochs_has_one_column_per_name(runs):
    r = lrlab_cli("export", "runs/a", "--epochs", cwd=runs)
    assert r.returncode == 0, r.stderr
    header, *rows = list(csv.reader(io.StringIO(r.stdout)))
    assert len(header) == len(set(header)) and {"lr", "epoch", "epoch_lr"} <= set(header)
    records = lrlab_api.results(runs / "runs" / "a").epoch_records()
    assert len(rows) == len(records) == 8
    got = sorted(
        (
            row[header.index("config")],
            int(row[header.index("seed")]),
            int(row[header.index("epoch")]),
            float(row[header.index("epoch_lr")]),
        )
        for row in rows
    )
    assert got == sorted((r["config"], r["seed"], r["epoch"], r["epoch_lr"]) for r in records)


def test_report_on_a_folder_of_experiments_names_them(runs):
    r = lrlab_cli("report", "runs", cwd=runs)
    assert r.returncode == 2 and r.stderr == (
        "lrlab: error: runs holds no experiment itself but 2 below it (runs/a, runs/b); "
        "give one of them, or list them with 'lrlab runs runs'\n"
    )
