"""Hostile stores, names, functions and signals (issue 14): each ends in one line, or does
the right thing, and leaves every store as it was or consistent.

- readers are read-only: ``report``/``export`` read a store on a read-only folder and never
  give a schema to a file that is not a store;
- rows edited by hand are one line naming the store, the trial and the field;
- ``--new`` moves a damaged store aside (under a name no other archive has) and starts over;
- an experiment file named ``...toml`` never puts its store at ``runs/..``;
- CSV export guards spreadsheet formulas, and NUL never reaches a label, CSV, JSON or HTML;
- a ``module:function`` model must be a user's plain function returning a Keras model;
- SIGINT and SIGTERM at any moment stop the run with the resume line and exit 130/143;
- SIGKILL inside a population chunk's transaction leaves none of the chunk; the run resumes.

Every test here failed on the main branch before these guarantees were built.
"""

from __future__ import annotations

import csv
import io
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
import tomllib
from pathlib import Path

import pytest

from datafiles import IONOSPHERE_CSV
from lrlab.errors import LrlabError
from lrlab_process import LRLAB, one_error_line, run_lrlab

ROOT = Path(__file__).resolve().parents[1]
ENV = {
    **os.environ,
    "KERAS_BACKEND": "jax",
    "COLUMNS": "400",
    "JAX_COMPILATION_CACHE_DIR": os.path.join(tempfile.gettempdir(), "lrlab-tests-jax-cache"),
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
}


def experiment_text(seeds: int = 2, engine: str = "keras", model: str = "mlp(hidden=[8])") -> str:
    return textwrap.dedent(
        f"""
        [experiment]
        seeds = {seeds}
        engine = "{engine}"
        [data]
        dataset = "csv:{IONOSPHERE_CSV}"
        validation = 0.33
        [model]
        spec = '{model}'
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


def lrlab(*args: object, cwd: Path = ROOT, env: dict | None = None, timeout: float = 300):
    return run_lrlab(*args, cwd=cwd, env=env or ENV, timeout=timeout)


def listing(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> Path:
    """A finished experiment folder (4 trials, Keras engine); copy it before changing it."""
    base = tmp_path_factory.mktemp("hostile")
    (base / "exp.toml").write_text(experiment_text())
    done = lrlab("run", base / "exp.toml", "--out", base / "out", "-q")
    assert done.returncode == 0, done.stderr
    return base / "out"


def copy_of(stored: Path, tmp_path: Path, name: str = "exp") -> Path:
    folder = tmp_path / name
    shutil.copytree(stored, folder)
    return folder


# --------------------------------------------------------------------------- readers
def _root_can(script: str, folder: Path) -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", str(folder)])
    return probe.returncode == 0


def test_report_and_export_read_a_store_on_a_read_only_folder(stored, tmp_path):
    """A shared results disk mounted read-only: reading used to fail with "unable to open
    database file". Read-only (a bind mount for root, whom permissions do not stop)."""
    folder = copy_of(stored, tmp_path)
    before = listing(folder)
    writable = {
        "csv": lrlab("export", folder).stdout,
        "json": lrlab("export", folder, "--all", "--format", "json").stdout,
        "table": lrlab("report", folder, "--format", "json").stdout,
    }
    assert listing(folder) == before  # reading a writable folder changes nothing either
    remount = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1"'
    if os.geteuid() != 0:
        folder.chmod(0o555)
        wrap = list
    elif _root_can(remount + ' && ! touch "$1/x" 2>/dev/null', folder):

        def wrap(cmd):
            script = remount + ' && shift && exec "$@"'
            return ["unshare", "-m", "sh", "-c", script, "sh", str(folder), *cmd]
    else:
        pytest.skip("as root, a read-only folder needs a bind mount (unshare -m, CAP_SYS_ADMIN)")
    commands = {
        "csv": ["export", folder],
        "json": ["export", folder, "--format", "json"],
        "table": ["report", folder, "--format", "json", "--html", tmp_path / "report.html"],
    }
    try:
        for name, args in commands.items():
            proc = subprocess.run(
                wrap([*LRLAB, *map(str, args)]), capture_output=True, text=True, env=ENV, cwd=ROOT
            )
            assert proc.returncode == 0, proc.stderr
            assert proc.stdout == writable[name]
    finally:
        folder.chmod(0o755)
    assert (tmp_path / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert listing(folder) == before


@pytest.mark.parametrize("command", ["report", "export"])
def test_a_zero_byte_store_is_not_a_store_and_stays_empty(tmp_path, command):
    """``report`` used to write a schema into an empty ``store.sqlite``."""
    (tmp_path / "store.sqlite").write_bytes(b"")
    line = one_error_line(lrlab(command, tmp_path))
    assert f"{tmp_path / 'store.sqlite'} is not an lrlab store" in line
    assert listing(tmp_path) == {"store.sqlite": b""}


EDITS = {
    "params": ("UPDATE trials SET params = '{bad' WHERE rowid = 1", "params is not valid JSON"),
    "final": (
        """UPDATE trials SET final = '{"val_accuracy": "high"}' WHERE rowid = 1""",
        "final.val_accuracy is 'high', not a number",
    ),
    "final-list": ("UPDATE trials SET final = '[1, 2]' WHERE rowid = 1", "not a JSON object"),
    "seed": ("UPDATE trials SET seed = 'one' WHERE rowid = 1", "seed is 'one', not an integer"),
    "started": ("UPDATE trials SET started = 'noon' WHERE rowid = 1", "started is 'noon'"),
    "epochs": ("UPDATE epochs SET metrics = '{' WHERE rowid = 1", "metrics is not valid JSON"),
}


@pytest.mark.parametrize("edit", sorted(EDITS))
@pytest.mark.parametrize("command", ["report", "export"])
def test_a_row_edited_by_hand_is_one_line_naming_store_trial_and_field(
    stored, tmp_path, edit, command
):
    folder = copy_of(stored, tmp_path)
    sql, expected = EDITS[edit]
    conn = sqlite3.connect(folder / "store.sqlite")
    with conn:
        conn.execute(sql)
    table = "epochs" if edit == "epochs" else "trials"
    column = "trial" if edit == "epochs" else "key"
    (key,) = conn.execute(f"SELECT {column} FROM {table} WHERE rowid = 1").fetchone()
    conn.close()
    if command == "report" and edit == "epochs":
        args = ["report", folder, "--html", tmp_path / "report.html"]  # the page reads epochs
    else:
        args = [command, folder] + (["--epochs"] if command == "export" else [])
    line = one_error_line(lrlab(*args))
    assert line.startswith(f"lrlab: error: {folder / 'store.sqlite'}: trial {key!r}"), line
    assert expected in line and "changed outside lrlab" in line


def test_a_setting_edited_by_hand_is_one_line(stored, tmp_path):
    folder = copy_of(stored, tmp_path)
    with sqlite3.connect(folder / "store.sqlite") as conn:
        conn.execute("UPDATE meta SET value = '[unclosed' WHERE key = 'labels'")
    line = one_error_line(lrlab("report", folder))
    assert "store.sqlite: settings: meta 'labels' is not valid JSON" in line
    folder = copy_of(stored, tmp_path, "again")
    with sqlite3.connect(folder / "store.sqlite") as conn:
        conn.execute("""UPDATE meta SET value = '"one"' WHERE key = 'schema_version'""")
    line = one_error_line(lrlab("export", folder))
    assert "store.sqlite: settings: meta 'schema_version' is not an integer" in line


# --------------------------------------------------------------------------- --new
@pytest.mark.parametrize("damage", ["truncated", "random-bytes"])
def test_new_archives_a_damaged_store_and_starts_over(stored, tmp_path, damage):
    """A damaged store used to be refused even with ``--new``: the user had to move it."""
    folder = copy_of(stored, tmp_path)
    store = folder / "store.sqlite"
    data = store.read_bytes()
    bad = data[: len(data) // 3] if damage == "truncated" else random.Random(1).randbytes(8192)
    store.write_bytes(bad)
    exp = tmp_path / "exp.toml"
    exp.write_text(experiment_text(seeds=1))
    refused = one_error_line(lrlab("run", exp, "--out", folder))
    assert "--new" in refused and store.read_bytes() == bad
    done = lrlab("run", exp, "--out", folder, "--new", "-q")
    assert done.returncode == 0, done.stderr
    (archive,) = folder.glob("store.2*.sqlite")
    assert archive.read_bytes() == bad  # kept byte for byte
    with sqlite3.connect(store) as conn:
        assert conn.execute("SELECT COUNT(*) FROM trials").fetchone()[0] == 2
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_two_archives_in_the_same_second_keep_both_stores(tmp_path, monkeypatch):
    """``store.<time>.sqlite`` named to the second: a second ``--new`` used to overwrite it."""
    import datetime as dt

    from lrlab.experiments import runner

    class Frozen(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=tz)

    monkeypatch.setattr(runner._dt, "datetime", Frozen)
    names = []
    for content in (b"first", b"second", b"third"):
        (tmp_path / "store.sqlite").write_bytes(content)
        (tmp_path / "store.sqlite-wal").write_bytes(content + b"-wal")
        names.append(runner.archive_store(tmp_path).name)
    assert names == [
        "store.20300102T030405Z.sqlite",
        "store.20300102T030405Z-2.sqlite",
        "store.20300102T030405Z-3.sqlite",
    ]
    for name, content in zip(names, (b"first", b"second", b"third"), strict=True):
        assert (tmp_path / name).read_bytes() == content
        assert (tmp_path / f"{name}-wal").read_bytes() == content + b"-wal"
    assert not (tmp_path / "store.sqlite").exists()


# --------------------------------------------------------------------------- names
@pytest.mark.parametrize("name", ["...toml", ".toml", ". .toml"])
def test_a_file_without_a_usable_name_needs_out(tmp_path, name):
    """``lrlab run ...toml`` used to put its store at ``runs/..``: the working directory."""
    (tmp_path / name).write_text(experiment_text(seeds=1))
    line = one_error_line(lrlab("run", name, cwd=tmp_path))
    assert line.endswith("give one with --out DIR")
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_default_folder_names_stay_inside_runs():
    from types import SimpleNamespace

    from lrlab.experiments.runner import default_out

    def out(source: str) -> str:
        return str(default_out(SimpleNamespace(source=source)))

    assert out("sweeps/lr sweep.toml") == "runs/lr sweep"
    assert out("a.b.toml") == "runs/a.b"
    assert out("..hidden.toml") == "runs/hidden"
    assert out("x\\y\x00.toml") == "runs/x_y_"
    assert out("notes.txt") == "runs/notes"
    with pytest.raises(LrlabError, match="give one with --out DIR"):
        out("..toml")


# --------------------------------------------------------------------------- CSV, NUL
def test_csv_export_guards_formulas_and_keeps_numbers(stored, tmp_path):
    folder = copy_of(stored, tmp_path)
    with sqlite3.connect(folder / "store.sqlite") as conn:
        conn.execute(
            "UPDATE trials SET config = '=HYPER' || char(0) || 'LINK(\"http://x\")', "
            "schedule = '+' || char(0) || '1', "
            "optimizer = '@SUM(A1)', message = '-2+3', engine = char(9) || 'tab', "
            "final = json_set(final, '$.val_loss', -1.5) "
            "WHERE rowid = 1"
        )
    # the edited label is no config of the file any more: --all exports it too
    text = lrlab("export", folder, "--all").stdout
    assert "\x00" not in text
    rows = list(csv.DictReader(io.StringIO(text)))
    first = rows[0]
    assert first["config"] == '\'=HYPERLINK("http://x")'
    assert (first["schedule"], first["optimizer"]) == ("'+1", "'@SUM(A1)")
    assert (first["message"], first["engine"]) == ("'-2+3", "'\ttab")
    assert first["final_val_loss"] == "-1.5"  # a number stays a number
    assert float(first["lr"] or 0) >= 0 and float(first["seconds"]) > 0
    assert all(not v.startswith("'") for r in rows[1:] for v in r.values())  # untouched rows
    epochs_csv = lrlab("export", folder, "--all", "--epochs").stdout
    per_epoch = list(csv.DictReader(io.StringIO(epochs_csv)))
    assert per_epoch[0]["config"] == '\'=HYPERLINK("http://x")'
    assert "\\u0000" not in lrlab("export", folder, "--all", "--format", "json").stdout
    report = lrlab("report", folder, "--html", tmp_path / "r.html")
    assert report.returncode == 0, report.stderr
    assert "\x00" not in (tmp_path / "r.html").read_text()


def test_nul_in_a_label_is_dropped_from_the_config_labels(tmp_path):
    from lrlab.experiments.config import config_from_dict
    from lrlab.experiments.plan import build_plan

    raw = tomllib.loads(experiment_text(seeds=1).replace("constant =", '"con\\u0000stant" ='))
    raw["experiment"]["baseline"] = "con\x00stant"
    plan = build_plan(config_from_dict(raw, source="nul.toml"), check_model=False)
    assert plan.labels == ["constant", "decay"] and plan.baseline == "constant"
    assert all("\x00" not in t.config for t in plan.trials)


# --------------------------------------------------------------------------- model functions
USER_MODULE = """
import keras
from shutil import rmtree  # a standard-library function, imported into a user module

class Net:
    def __init__(self, input_shape=None):
        pass

def not_a_model(input_shape, n_outputs):
    return 3

def needs_width(input_shape, width):
    raise AssertionError("never called")

def quits(input_shape):
    import sys
    sys.exit(0)

def good(input_shape, n_outputs):
    return keras.Sequential([keras.Input(input_shape), keras.layers.Dense(n_outputs)])
"""


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("sys:exit", "model sys:exit: sys is part of Python's standard library"),
        ("signal:pause", "signal is part of Python's standard library"),
        ("os:fork", "os is part of Python's standard library"),
        ("builtins:print", "builtins is part of Python's standard library"),
        ("subprocess:run", "subprocess is part of Python's standard library"),
        ("usermodels:rmtree", "usermodels:rmtree is shutil:rmtree, imported into usermodels"),
        ("usermodels:Net", "usermodels:Net is a class, not a function"),
        ("usermodels:needs_width", "needs argument 'width', which lrlab does not give"),
    ],
)
def test_a_model_target_that_is_not_a_user_function_is_refused_uncalled(
    tmp_path, monkeypatch, target, expected
):
    from lrlab.experiments.models import ModelError, parse_model

    (tmp_path / "usermodels.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "usermodels", raising=False)
    with pytest.raises(ModelError) as err:
        parse_model(target)
    assert expected in str(err.value)
    assert parse_model("usermodels:good").function is not None


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("sys:exit", "model sys:exit: sys is part of Python's standard library"),
        ("usermodels:not_a_model", "returned int, not a keras.Model; return the model"),
        ("usermodels:quits", "usermodels:quits raised SystemExit"),
    ],
)
def test_lrlab_run_refuses_a_bad_model_function_before_training(tmp_path, target, expected):
    """``sys:exit`` used to end the run silently with exit 0."""
    (tmp_path / "usermodels.py").write_text(USER_MODULE)
    (tmp_path / "exp.toml").write_text(experiment_text(seeds=1, model=target))
    env = {**ENV, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    line = one_error_line(lrlab("run", "exp.toml", "--out", "out", cwd=tmp_path, env=env))
    assert expected in line
    assert not (tmp_path / "out" / "store.sqlite").exists()


# --------------------------------------------------------------------------- signals
def _catches(pid: int, signum: int) -> bool:
    """Whether process ``pid`` has a handler for ``signum`` (Linux: /proc/PID/status)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    mask = next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(mask, 16) >> (signum - 1) & 1)


def _as_from_a_shell() -> None:
    """The child's SIGINT and SIGTERM at their defaults, as a shell starts a command (the
    test process's own dispositions, whatever an earlier test left, are not inherited)."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)


def _stop_at(exp: Path, out: Path, signum: int, moment: str, delay: float):
    """``lrlab run`` stopped by ``signum``: ``delay`` s after start (``first``), after
    lrlab's handlers are in place (``startup``), or after the first stored trial (``mid``)."""
    proc = subprocess.Popen(
        [*LRLAB, "run", str(exp), "--out", str(out), "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        cwd=ROOT,
        preexec_fn=_as_from_a_shell,
    )
    deadline = time.monotonic() + 300
    if moment == "startup":
        while not _catches(proc.pid, signal.SIGTERM) and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.005)
    elif moment == "mid":
        while len(_stored_keys(out)) < 1 and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    time.sleep(delay)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


def _stored_keys(out: Path) -> list[str]:
    if not (out / "store.sqlite").exists():
        return []
    try:
        with sqlite3.connect(f"file:{out / 'store.sqlite'}?mode=ro", uri=True) as conn:
            return [k for (k,) in conn.execute("SELECT key FROM trials")]
    except sqlite3.Error:
        return []


def _consistent(out: Path) -> list[str]:
    if not (out / "store.sqlite").exists():
        return []
    with sqlite3.connect(out / "store.sqlite") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        keys = [k for (k,) in conn.execute("SELECT key FROM trials")]
        epochs = conn.execute("SELECT trial, COUNT(*) FROM epochs GROUP BY trial").fetchall()
    assert len(keys) == len(set(keys)) and all(n == 2 for _, n in epochs)
    assert {k for k, _ in epochs} == set(keys)
    return keys


MOMENTS = [("first", 0.0), ("first", 0.25)] + [("startup", d) for d in (0.1, 0.5, 1.5)]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_at_any_moment_stops_the_run_with_the_resume_line(tmp_path, signum):
    """Ctrl-C in the first seconds (imports, data, JAX compilation) used to be swallowed
    ("Exception ignored in _xla_gc_callback") and the run completed with exit 0; SIGTERM
    ended it with 143 and no message. Moments: the first quarter second (before lrlab's
    code runs, the signal may end Python the default way: nothing is written then), seeded
    random delays after lrlab's handlers are in place, and in the middle of training."""
    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc to see when lrlab's handlers are in place")
    exp, out = tmp_path / "exp.toml", tmp_path / "out"
    exp.write_text(experiment_text(seeds=4, engine="auto"))
    name = signal.Signals(signum).name
    rng = random.Random(int(signum))
    moments = [(m, d + rng.uniform(0, 0.3) * (m == "startup")) for m, d in MOMENTS]
    for moment, delay in [*moments, ("mid", 0.0)]:
        code, err = _stop_at(exp, out, signum, moment, delay)
        keys = _consistent(out)
        if code == -signum:  # before lrlab's handlers: Python's default, nothing written
            assert moment == "first" and keys == [], (moment, delay, err)
            continue
        if code == 0 and len(keys) == 8:  # the run finished before the signal came
            assert moment == "mid", (moment, delay, err)
            continue
        assert code == 128 + signum, (moment, delay, code, err)
        lines = [line for line in err.splitlines() if line.strip()]
        assert lines[-1] == f"lrlab: interrupted ({name})", err
        resume = (
            "stopped before training began (nothing new stored); run the same command to resume",
            f"stopped: {len(keys)} of 8 trials are stored in {out}; run the same command to resume",
        )
        if moment != "first" or keys:  # (the first moments may land before the command)
            assert lines[-2] in resume, err
        assert "Traceback" not in err and "Exception ignored" not in err, err
    done = lrlab("run", exp, "--out", out, "-q")
    assert done.returncode == 0, done.stderr
    assert len(_consistent(out)) == 8


def test_stop_request_never_raises_inside_a_finalizer():
    """The handler's own rule, in-process: inside a ``__del__`` (as inside JAX's gc
    callback) it records the signal and asks again, instead of raising where Python would
    print "Exception ignored" and drop it."""
    from lrlab.experiments.stopping import Stopped, StopRequest

    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # as Python starts
    stop = StopRequest().install()
    seen: list[str] = []

    class Finalized:
        def __del__(self):
            try:
                signal.raise_signal(signal.SIGINT)  # handled right here, inside __del__
                seen.append("not raised inside __del__")
            except Stopped:
                seen.append("raised inside __del__")

    try:
        with pytest.raises(Stopped):
            Finalized()  # dropped at once: __del__ runs, then the retry arrives
            for _ in range(200):
                time.sleep(0.01)
        assert seen == ["not raised inside __del__"] and stop.signum == signal.SIGINT
    finally:
        stop.uninstall()
        restored = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, before)
    assert restored is signal.default_int_handler


# --------------------------------------------------------------------------- a kill mid-group
KILLED_IN_THE_SECOND_GROUP = """
import os, signal, sys
from lrlab.cli import main
from lrlab.experiments.store import Store

add_all, groups = Store.add_all, []


def dying_add_all(self, results, versions=None):  # the 2nd group dies on its 3rd epoch row
    groups.append([r.trial.key for r in results])
    if len(groups) == 2:
        rows = []

        def trace(sql):
            rows.append(sql) if sql.startswith("INSERT INTO epochs") else None
            if len(rows) == 3:
                os.kill(os.getpid(), signal.SIGKILL)

        self._conn.set_trace_callback(trace)
    return add_all(self, results, versions)


Store.add_all = dying_add_all
sys.exit(main(sys.argv[1:]))
"""


def _trials(out: Path) -> dict[str, tuple[str, str, list]]:
    with sqlite3.connect(out / "store.sqlite") as conn:
        rows = conn.execute("SELECT key, status, final FROM trials ORDER BY rowid").fetchall()
        epochs = conn.execute("SELECT trial, epoch, lr, metrics FROM epochs").fetchall()
    return {k: (s, f, sorted(e[1:] for e in epochs if e[0] == k)) for k, s, f in rows}


def test_a_kill_inside_a_population_chunks_transaction_then_resume(tmp_path):
    """The population engine's chunk (one optimizer group here) is stored in one
    transaction: SIGKILL halfway through writing the second one leaves the first group
    whole and none of the second; the same command then trains exactly the second group
    and the store equals an uninterrupted run's."""
    text = experiment_text(seeds=2, engine="population").replace(
        'sgd = { type = "sgd", momentum = 0.8 }',
        'sgd = { type = "sgd", momentum = 0.8 }\nadam = { type = "adam" }',
    )
    exp = tmp_path / "exp.toml"
    exp.write_text(text)
    clean = lrlab("run", exp, "--out", tmp_path / "clean", "-q")
    assert clean.returncode == 0, clean.stderr
    reference = _trials(tmp_path / "clean")
    out = tmp_path / "out"
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_IN_THE_SECOND_GROUP, "run", str(exp), "--out", str(out)],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=ROOT,
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    first = _consistent(out)  # every stored trial whole (2 epochs), no orphan epochs
    assert len(first) == 4 and all("sgd" in k for k in first)  # the sgd group, whole
    resumed = lrlab("run", exp, "--out", out)
    assert resumed.returncode == 0, resumed.stderr
    assert "4 already stored, 4 to run" in resumed.stderr
    assert _trials(out).keys() == reference.keys()
    assert _trials(out) == reference
