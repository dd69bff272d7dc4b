"""Inputs nobody wrote a test for, run as a user runs lrlab: each bad one ends in one line
``lrlab: error: <file>: <field>: <problem>; <fix>``, exit 2, and no experiment folder.

Each case failed before its fix: NPZ arrays without rows (a traceback), without features
(trained on nothing) or of complex numbers (cast with a warning); labels and names with
control characters (a newline or tab split the results table's rows, an escape recoloured
the terminal), empty labels; a ``monitor`` without a plateau (silently ignored); an lr that
overflows the schedule's rescaling (a message without file or field); seeds beyond 32 bits
(every trial failed, and the refused run left a store behind).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from lrlab_process import one_error_line, run_lrlab

ROWS = 60


def experiment(dataset: str = "csv:data.csv", **sections: str) -> str:
    """A small valid experiment; ``sections`` replace whole tables (``schedules=...``) or
    add lines to them (``experiment_extra=...``)."""
    tables = {
        "experiment": 'seeds = 2\nengine = "keras"',
        "data": f'dataset = "{dataset}"\nvalidation = 0.25',
        "model": 'spec = "mlp(hidden=[4])"',
        "training": "epochs = 1\nbatch_size = 16",
        "schedules": 'constant = "constant(0.1)"\ndecay = "time_decay(0.1, decay=0.01)"',
    }
    for key, text in sections.items():
        name, _, extra = key.partition("_")
        tables[name] = tables[name] + "\n" + text if extra else text
    return "".join(f"[{name}]\n{body}\n" for name, body in tables.items())


def csv_rows(folder: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(ROWS, 2))
    rows = "".join(f"{a:.4f},{b:.4f},{int(a + b > 0)}\n" for a, b in x)
    (folder / "data.csv").write_text("a,b,label\n" + rows)


def npz(x: np.ndarray, y: np.ndarray) -> Callable[[Path], str]:
    def write(folder: Path) -> str:
        np.savez(folder / "data.npz", x=x, y=y)
        return experiment("npz:data.npz")

    return write


X = np.random.default_rng(0).normal(size=(ROWS, 3)).astype(np.float32)
Y = (X[:, 0] > 0).astype(np.int64)


def text(**sections: str) -> Callable[[Path], str]:
    return lambda folder: experiment(**sections)


def semicolons(folder: Path) -> str:
    (folder / "semi.csv").write_text(
        "a;b;label\n" + "".join(f"{i};{i};{i % 2}\n" for i in range(9))
    )
    return experiment("csv:semi.csv")


def duplicate_target_name(folder: Path) -> str:
    (folder / "dup.csv").write_text("a,a,b\n" + "".join(f"{i},{i % 2},{i}\n" for i in range(9)))
    return experiment("csv:dup.csv", data_extra='target = "a"')


def schedule_function(code: str) -> Callable[[Path], str]:
    def write(folder: Path) -> str:
        (folder / "myschedules.py").write_text(code)
        return experiment(schedules='f = { function = "myschedules:f", lr = 0.1 }')

    return write


CASES = {
    "a target name two columns have": (
        duplicate_target_name,
        "data.dataset",
        "2 columns are named 'a'; rename all but one, or give the target's index",
    ),
    "a CSV file with semicolons": (
        semicolons,
        "data.dataset",
        "has 1 column; it needs features and a target; lrlab reads commas between columns, not ';'",
    ),
    "npz without rows": (npz(X[:0], Y[:0]), "data.dataset", "holds no rows (x has shape (0, 3))"),
    "npz without features": (npz(X[:, :0], Y), "data.dataset", "x has shape (60, 0): no features"),
    "npz of complex numbers": (
        npz(X.astype(np.complex64), Y),
        "data.dataset",
        "x has dtype complex64; features must be real numbers",
    ),
    "npz of complex targets": (
        npz(X, Y.astype(np.complex128)),
        "data.dataset",
        "the target has dtype complex128; give real numbers or labels",
    ),
    "a label with a newline": (
        text(schedules='"a\\nb" = "constant(0.1)"'),
        'schedules."a\\nb"',
        "holds the control character '\\n'",
    ),
    "a label with a tab": (
        text(schedules='"a\\tb" = "constant(0.1)"'),
        'schedules."a\\tb"',
        "holds the control character '\\t'",
    ),
    "a label with a terminal escape": (
        text(schedules='"\\u001b[31mred" = "constant(0.1)"'),
        'schedules."\\u001b[31mred"',
        "holds the control character '\\x1b'",
    ),
    "a label with a bidi override": (
        text(optimizers='"sgd\\u202e" = "sgd"'),
        'optimizers."sgd\\u202e"',
        "holds the control character '\\u202e'",
    ),
    "an empty label": (text(schedules='"" = "constant(0.1)"'), 'schedules.""', "is empty"),
    "a blank label": (text(optimizers='" " = "sgd"'), 'optimizers." "', "is empty"),
    "a name with a newline": (
        text(experiment_extra='name = "two\\nlines"'),
        "experiment.name",
        "holds the control character '\\n'",
    ),
    "a monitor without a plateau": (
        text(schedules='c = { spec = "constant(0.1)", monitor = "val_accuracy" }'),
        "schedules.c.monitor",
        "only applies with a plateau; write e.g. plateau = ",
    ),
    "an lr the rescaling overflows": (
        text(experiment_extra="lrs = [1e308]"),
        "experiment.lrs",
        "schedules.constant: scale: argument 'factor' must be finite, got inf; use smaller lrs",
    ),
    "an optimizer paired with no schedule": (
        text(optimizers='sgd = { type = "sgd", schedules = [] }'),
        "optimizers.sgd.schedules",
        "lists no schedule, so the optimizer would train nothing",  # was an IndexError
    ),
    "a schedule no optimizer pairs with": (
        text(optimizers='sgd = { type = "sgd", schedules = ["constant"] }'),
        "schedules.decay",
        "no optimizer pairs with it (every optimizer lists its schedules)",  # was dropped
    ),
    "an lr beyond float32": (
        text(schedules='big = "constant(1e308)"'),
        "schedules.big",
        "constant(1e+308) reaches lr 1e+308, beyond float32 (3.4e+38), which training uses",
    ),  # trained as inf, with overflow warnings on stderr
    "a schedule function beyond float32": (
        schedule_function("def f(epoch):\n    return 1e300\n"),
        "schedules.f.function",
        "myschedules:f at epoch 0 returned 1e+300; an lr must be a finite number >= 0 "
        "(at most 3.4e+38",
    ),
    "a generator as schedule function": (
        schedule_function("def f(epoch):\n    yield 0.1\n"),
        "schedules.f.function",
        "schedule function myschedules:f is a generator or async function; return from a plain def",
    ),
    "a seed beyond 31 bits": (
        text(experiment="seeds = [4294967296]"),
        "experiment.seeds",
        "must list integers from 0 to 2147483647, got [4294967296]",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_input_is_one_line_naming_the_field_and_writes_nothing(tmp_path, case):
    write, field, words = CASES[case]
    csv_rows(tmp_path)
    exp = tmp_path / "exp.toml"
    exp.write_text(write(tmp_path))
    line = one_error_line(run_lrlab("run", exp, "--out", tmp_path / "out", cwd=tmp_path))
    assert line.startswith(f"lrlab: error: {exp}: {field}: "), line
    assert words in line
    assert not (tmp_path / "out").exists()


def test_the_largest_seed_trains_in_the_keras_engine(tmp_path):
    """The Keras engine seeds its batch order with ``order_seed + 7919``: the largest seed
    the file accepts still fits NumPy's 32 bits (a larger one failed every trial)."""
    csv_rows(tmp_path)
    exp = tmp_path / "exp.toml"
    exp.write_text(experiment(experiment='seeds = [2147483647]\nengine = "keras"'))
    done = run_lrlab("run", exp, "--out", tmp_path / "out", "-q", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    export = run_lrlab("export", tmp_path / "out", cwd=tmp_path)
    assert export.stdout.count(",ok,") == 2, export.stdout


def test_printable_labels_are_accepted_whatever_their_characters(tmp_path):
    """Slashes, pipes, non-Latin letters and long labels are labels like any other."""
    csv_rows(tmp_path)
    labels = ["a/b", "a|b", "число", "x" * 300]
    schedules = "\n".join(f'"{label}" = "constant(0.1)"' for label in labels)
    exp = tmp_path / "exp.toml"
    exp.write_text(experiment(experiment='seeds = 1\nengine = "keras"', schedules=schedules))
    done = run_lrlab("run", exp, "--out", tmp_path / "out", "-q", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = run_lrlab("export", tmp_path / "out", cwd=tmp_path).stdout
    assert all(label in rows for label in labels)


# --------------------------------------------------------------------------- stores
@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> Path:
    """A finished experiment (``exp.toml``, ``data.csv``, ``out/``); copy it to change it."""
    folder = tmp_path_factory.mktemp("stored")
    csv_rows(folder)
    (folder / "exp.toml").write_text(experiment())
    done = run_lrlab("run", folder / "exp.toml", "--out", folder / "out", "-q", cwd=folder)
    assert done.returncode == 0, done.stderr
    return folder


DEEP = "[" * 100_000 + "]" * 100_000  # JSON whose decoder recursed until RecursionError


@pytest.mark.parametrize(
    ("command", "sql", "where"),
    [
        ("report", "UPDATE trials SET params = ?", "trial 'constant|seed=0': params"),
        ("export", "UPDATE trials SET params = ?", "trial 'constant|seed=0': params"),
        ("runs", "UPDATE trials SET params = ?", "trial 'constant|seed=0': params"),
        ("run", "UPDATE trials SET params = ?", "config 'constant': params"),
        ("report", "UPDATE meta SET value = ? WHERE key = 'schema_version'", "settings: meta"),
        ("runs", "UPDATE meta SET value = ? WHERE key = 'schema_version'", "settings: meta"),
    ],
)
def test_json_nested_too_deeply_in_a_store_is_one_line(stored, tmp_path, command, sql, where):
    """Stores edited by hand with JSON nested 100,000 deep: a traceback before."""
    shutil.copytree(stored, tmp_path, dirs_exist_ok=True)
    store = tmp_path / "out" / "store.sqlite"
    with sqlite3.connect(store) as conn:
        conn.execute(sql, (DEEP,))
    conn.close()
    args = {
        "run": ["run", tmp_path / "exp.toml", "--out", tmp_path / "out"],
        "runs": ["runs", tmp_path],
    }.get(command, [command, tmp_path / "out"])
    line = one_error_line(run_lrlab(*args, cwd=tmp_path))
    assert line.startswith(f"lrlab: error: {store}: {where}"), line
    assert "is JSON nested too deeply; the store was changed outside lrlab" in line


# --------------------------------------------------------------------------- model functions
USER_MODELS = """
import sys
import keras

def dense(input_shape, n_outputs):
    return keras.Sequential([keras.Input(input_shape), keras.layers.Dense(n_outputs)])

def base_exception(input_shape, n_outputs):
    raise BaseException("not an Exception")

def other_input(input_shape, n_outputs):
    return keras.Sequential([keras.Input((5,)), keras.layers.Dense(n_outputs)])

def two_inputs(input_shape, n_outputs):
    a, b = keras.Input(input_shape), keras.Input(input_shape)
    return keras.Model([a, b], keras.layers.Dense(n_outputs)(keras.layers.Add()([a, b])))

def output_3d(input_shape, n_outputs):
    return keras.Sequential([keras.Input(input_shape), keras.layers.Reshape((input_shape[0], 1)),
                             keras.layers.Dense(n_outputs)])

def generator(input_shape, n_outputs):
    yield dense(input_shape, n_outputs)

async def coroutine(input_shape, n_outputs):
    return dense(input_shape, n_outputs)

def prints(input_shape, n_outputs):
    print("printed by the model function")
    return dense(input_shape, n_outputs)
"""

MODEL_CASES = {
    "base_exception": "mymodels:base_exception raised BaseException: not an Exception",
    "other_input": "mymodels:other_input takes inputs of shape (5,); the data's rows have "
    "shape (2,): build one keras.Input(input_shape) from the input_shape argument",
    "two_inputs": "mymodels:two_inputs takes inputs of shape (2,), (2,);",
    "output_3d": "mymodels:output_3d gives outputs of shape (None, 2, 1); the binary task "
    "needs one output of shape (batch, 1): flatten before the last Dense layer",
    "generator": "model mymodels:generator is a generator or async function; return from a",
    "coroutine": "model mymodels:coroutine is a generator or async function; return from a",
}


@pytest.mark.parametrize("name", list(MODEL_CASES))
def test_a_model_function_that_cannot_train_is_refused_before_any_trial(tmp_path, name):
    """Before: a traceback (BaseException), a store of failed trials ending in 'no stored
    metric' (wrong input or output shape), or a RuntimeWarning (a coroutine)."""
    csv_rows(tmp_path)
    (tmp_path / "mymodels.py").write_text(USER_MODELS)
    exp = tmp_path / "exp.toml"
    exp.write_text(experiment(model=f'spec = "mymodels:{name}"'))
    line = one_error_line(run_lrlab("run", exp, "--out", tmp_path / "out", cwd=tmp_path))
    assert line.startswith(f"lrlab: error: {exp}: model.spec: {MODEL_CASES[name]}"), line
    assert not (tmp_path / "out").exists()


def test_a_module_that_exits_at_import_is_one_line(tmp_path):
    csv_rows(tmp_path)
    (tmp_path / "quits.py").write_text("import sys\nsys.exit(3)\n")
    exp = tmp_path / "exp.toml"
    exp.write_text(experiment(model='spec = "quits:build"'))
    line = one_error_line(run_lrlab("run", exp, "--out", tmp_path / "out", cwd=tmp_path))
    assert "model quits:build: cannot import 'quits' (SystemExit: 3); put quits.py in" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("engine", ["keras", "population"])
def test_what_user_code_prints_goes_to_stderr_and_stdout_keeps_the_table(tmp_path, engine):
    csv_rows(tmp_path)
    (tmp_path / "printing.py").write_text('print("printed at import")\n' + USER_MODELS)
    exp = tmp_path / "exp.toml"
    exp.write_text(
        experiment(experiment=f'seeds = 1\nengine = "{engine}"', model='spec = "printing:prints"')
    )
    done = run_lrlab("run", exp, "--out", tmp_path / "out", "-q", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("exp: val_accuracy\n"), done.stdout
    assert "printed" not in done.stdout
    assert "printed at import" in done.stderr and "printed by the model function" in done.stderr


def test_a_run_whose_every_trial_failed_shows_the_failures(stored, tmp_path):
    """Every trial failed (here: a model too large for memory would): the table counts
    the failures instead of 'no stored metric 'val_accuracy'; stored: '."""
    shutil.copytree(stored, tmp_path, dirs_exist_ok=True)
    with sqlite3.connect(tmp_path / "out" / "store.sqlite") as conn:
        conn.execute("UPDATE trials SET status = 'failed', final = '{}', message = 'MemoryError'")
    conn.close()
    shown = run_lrlab("report", tmp_path / "out", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    rows = [line.split("\t") for line in shown.stdout.splitlines()[2:4]]
    assert [(r[1], r[-1]) for r in rows] == [
        ("constant", "0 (+2 failed)"),
        ("decay", "0 (+2 failed)"),
    ]


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("identity", "5", "meta 'identity' is 5, not a JSON object"),  # a traceback in run
        ("looks", '"x"', "meta 'looks' is 'x', not an integer"),  # a traceback in run
        ("labels", "5", "meta 'labels' is 5, not a JSON list"),
        ("dataset", "[1]", "meta 'dataset' is [1], not a JSON object"),
    ],
)
@pytest.mark.parametrize("command", ["run", "report"])
def test_a_setting_of_the_wrong_type_is_one_line(stored, tmp_path, command, key, value, words):
    shutil.copytree(stored, tmp_path, dirs_exist_ok=True)
    store = tmp_path / "out" / "store.sqlite"
    with sqlite3.connect(store) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = ?", (value, key))
    conn.close()
    out = tmp_path / "out"
    args = ["run", tmp_path / "exp.toml", "--out", out] if command == "run" else ["report", out]
    line = one_error_line(run_lrlab(*args, cwd=tmp_path))
    assert line.startswith(f"lrlab: error: {store}: settings: {words}; the store was changed")


def test_run_leaves_another_programs_sqlite_file_as_it_was(tmp_path):
    """Before: lrlab took a database without its tables for a store it had begun, added
    its tables and switched the file to WAL mode."""
    csv_rows(tmp_path)
    (tmp_path / "exp.toml").write_text(experiment())
    (tmp_path / "out").mkdir()
    store = tmp_path / "out" / "store.sqlite"
    with sqlite3.connect(store) as conn:
        conn.execute("CREATE TABLE users (id INTEGER, name TEXT)")
        conn.execute("INSERT INTO users VALUES (1, 'ada')")
    conn.close()
    before = store.read_bytes()
    line = one_error_line(run_lrlab("run", tmp_path / "exp.toml", "--out", tmp_path / "out",
                                    cwd=tmp_path))  # fmt: skip
    assert line == (
        f"lrlab: error: {store} is not an lrlab store (it has the tables users); "
        "move it away or choose another --out folder"
    )
    assert store.read_bytes() == before
    assert sorted(p.name for p in store.parent.iterdir()) == [".lrlab.lock", "store.sqlite"]


def test_run_writes_no_store_through_a_link_and_report_still_reads_it(stored, tmp_path):
    """Before: ``run`` wrote the trials into the file the link named, elsewhere."""
    shutil.copytree(stored, tmp_path, dirs_exist_ok=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = tmp_path / "out" / "store.sqlite"
    link.rename(elsewhere / "store.sqlite")
    link.symlink_to(elsewhere / "store.sqlite")
    before = (elsewhere / "store.sqlite").read_bytes()
    exp = tmp_path / "exp.toml"
    exp.write_text(experiment(experiment='seeds = 3\nengine = "keras"'))
    line = one_error_line(run_lrlab("run", exp, "--out", tmp_path / "out", cwd=tmp_path))
    assert line == (
        f"lrlab: error: {link} is a symbolic link; lrlab writes its store to a regular file "
        "only: move it away, or choose another --out folder"
    )
    assert (elsewhere / "store.sqlite").read_bytes() == before
    shown = run_lrlab("report", tmp_path / "out", cwd=tmp_path)
    assert shown.returncode == 0 and "constant" in shown.stdout, shown.stderr


def test_run_on_a_store_that_is_a_fifo_is_one_line(tmp_path):
    """Before: 'disk I/O error; check the disk'."""
    csv_rows(tmp_path)
    (tmp_path / "exp.toml").write_text(experiment())
    (tmp_path / "out").mkdir()
    os.mkfifo(tmp_path / "out" / "store.sqlite")
    line = one_error_line(run_lrlab("run", tmp_path / "exp.toml", "--out", tmp_path / "out",
                                    cwd=tmp_path))  # fmt: skip
    assert line == (
        f"lrlab: error: {tmp_path / 'out' / 'store.sqlite'} is not a regular file; lrlab writes "
        "its store to a regular file only: move it away, or choose another --out folder"
    )
