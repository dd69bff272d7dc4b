"""Bad experiment files never end in a traceback: hypothesis writes TOML files, lrlab reads them.

Each generated file is either valid or refused with one line (``LrlabError``; on the
command line ``lrlab: error: ...`` and exit 2) that names the file, and a refused
``lrlab run`` leaves no folder behind. The files are made from a valid experiment by
swapping values for others of any type (numbers at their edges, NaN and infinities,
huge integers, nested tables, schedule and model specs with bad arguments, text), by
adding and dropping keys, by cutting and splicing the text, and by raw bytes.

Spec strings alone (length and depth limits, grammar) are ``tests/test_spec.py``'s.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from datafiles import IONOSPHERE_CSV
from lrlab.cli import main
from lrlab.errors import LrlabError
from lrlab.experiments import runner
from lrlab.experiments.config import ExperimentConfig, config_from_dict, load_config

IONO = IONOSPHERE_CSV
ROOT = Path(__file__).resolve().parents[1]

# --------------------------------------------------------------------------- TOML writing
_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def toml_key(key: str) -> str:
    return key if _BARE.match(key) else json.dumps(key, ensure_ascii=False)


def toml_value(value) -> str:
    """A TOML value (inline tables and arrays; NaN and infinities as TOML spells them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(value)  # pragma: no cover


def toml_document(data: dict, headers: bool) -> str:
    """``data`` as a file: tables under ``[headers]`` or as inline tables."""
    lines = []
    tables = {k: v for k, v in data.items() if isinstance(v, dict)} if headers else {}
    for key, value in data.items():
        if key not in tables:
            lines.append(f"{toml_key(key)} = {toml_value(value)}")
    for key, table in tables.items():
        lines.append(f"[{toml_key(key)}]")
        lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- strategies
EDGE_NUMBERS = st.sampled_from(
    [0, -1, 1, 2, 10**6, 10**7, 2**63 - 1, -(2**63), 0.0, -0.0, 1e-320, 1e308, -1e308,
     math.nan, math.inf, -math.inf, 0.5, 0.999999, 1.0, 1.5]
)  # fmt: skip
NUMBERS = st.one_of(EDGE_NUMBERS, st.integers(-(10**6), 10**6), st.floats(allow_nan=True))
NAMES = st.sampled_from(
    ["constant", "cosine", "linear", "step_decay", "time_decay", "exponential", "warmup",
     "one_cycle", "multistep", "piecewise", "plateau", "cyclic", "wsd", "sequence", "scale",
     "nope", "", "mlp", "cnn"]
)  # fmt: skip
ARG = st.one_of(NUMBERS.map(toml_value), st.sampled_from(["[1, 2]", "'x'", "true", "[]", "-"]))


@st.composite
def specs(draw) -> str:
    """Spec-like strings: a known or unknown name with positional/keyword arguments."""
    name = draw(NAMES)
    args = draw(st.lists(ARG, max_size=4))
    kwargs = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["decay_steps", "steps", "drop", "every", "decay", "alpha",
                                 "factor", "patience", "warmup_steps", "hidden", "x", "lr"]),
                ARG,
            ),
            max_size=3,
        )
    )  # fmt: skip
    inner = ", ".join([*args, *(f"{k}={v}" for k, v in kwargs)])
    return draw(st.sampled_from([f"{name}({inner})", f"{name}({inner}", name, inner]))


TEXT = st.text(max_size=30)
LEAF = st.one_of(NUMBERS, st.booleans(), TEXT, specs())
ANY = st.recursive(
    LEAF,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)

GOOD_DATASETS = ["iris", "wine", "digits", "breast_cancer", "csv:tiny.csv", f"csv:{IONO}"]
BAD_DATASETS = ["csv:missing.csv", "csv:text.csv", "npz:missing.npz", "csv:", "iris2", "x:y"]
MODELS = [
    "mlp(hidden=[4])",
    "mlp(hidden=[])",
    "mlp(hidden=[0])",
    'mlp(hidden=[4], activation="nope")',
    "cnn(filters=[2])",
    "no_such_module_xyz:build",
    "json:dumps",
    "mlp(",
]


def valid_config() -> dict:
    return {
        "experiment": {"seeds": 2, "metric": "val_accuracy"},
        "data": {"dataset": "iris", "validation": 0.25},
        "model": {"spec": "mlp(hidden=[4])"},
        "training": {"epochs": 2, "batch_size": 16},
        "optimizers": {"sgd": {"type": "sgd", "momentum": 0.8}},
        "schedules": {"constant": "constant(0.1)", "decay": "time_decay(0.1, decay=0.01)"},
    }


FIELDS = {  # where to mutate, and plausible values for that place
    ("experiment", "seeds"): st.one_of(NUMBERS, st.lists(st.integers(-3, 12), max_size=5)),
    ("experiment", "lrs"): st.lists(NUMBERS, max_size=3),
    ("experiment", "metric"): st.sampled_from(["val_loss", "loss", "val_auc", "accuracy", "x"]),
    ("experiment", "baseline"): st.sampled_from(["constant", "decay", "nope", ""]),
    ("experiment", "vary"): st.lists(st.sampled_from(["split", "init", "order", "x"]), max_size=4),
    ("experiment", "engine"): st.sampled_from(["auto", "keras", "population", "ray", "torch"]),
    ("data", "dataset"): st.sampled_from(GOOD_DATASETS + BAD_DATASETS),
    ("data", "validation"): st.one_of(NUMBERS, st.sampled_from(["csv:tiny.csv", "csv:nope.csv"])),
    ("data", "split"): st.sampled_from(["stratified", "random", "tail", "nope"]),
    ("data", "task"): st.sampled_from(["auto", "binary", "multiclass", "regression", "x"]),
    ("data", "target"): st.one_of(st.integers(-5, 5), st.sampled_from(["label", "a", "zz"])),
    ("data", "limit"): NUMBERS,
    ("model", "spec"): st.sampled_from(MODELS),
    ("training", "epochs"): st.one_of(st.integers(-2, 300), EDGE_NUMBERS),
    ("training", "batch_size"): st.one_of(st.integers(-2, 300), EDGE_NUMBERS),
    ("training", "schedule_unit"): st.sampled_from(["step", "epoch", "batch"]),
    ("training", "metrics"): st.lists(st.sampled_from(["accuracy", "mae", "f1"]), max_size=3),
    ("optimizers", "sgd"): st.one_of(
        st.sampled_from(["sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta", "lion"]),
        st.dictionaries(
            st.sampled_from(["type", "momentum", "nesterov", "beta_1", "epsilon", "rho", "lr",
                             "clipnorm", "weight_decay", "schedules", "amsgrad"]),
            st.one_of(NUMBERS, st.sampled_from(["sgd", "adam"]), st.booleans(),
                      st.lists(st.sampled_from(["constant", "decay", "x"]), max_size=2)),
            max_size=4,
        ),
    ),
    ("schedules", "decay"): st.one_of(
        specs(),
        st.dictionaries(
            st.sampled_from(["spec", "plateau", "monitor", "unit", "x"]),
            st.one_of(specs(), st.sampled_from(["val_loss", "epoch", "step", "loss"])),
            max_size=4,
        ),
    ),
}  # fmt: skip


@st.composite
def configs(draw) -> dict:
    """A valid experiment with a few places swapped, added or dropped."""
    data = valid_config()
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["field"] * 6 + ["any", "any", "drop", "extra"]))
        section, key = draw(st.sampled_from(sorted(FIELDS)))
        table = data.setdefault(section, {})
        if not isinstance(table, dict):
            continue
        if kind == "field":
            table[key] = draw(FIELDS[section, key])
        elif kind == "any":
            table[key] = draw(ANY)
        elif kind == "drop":
            if draw(st.booleans()):
                data.pop(section, None)
            else:
                table.pop(key, None)
        else:
            target = draw(st.sampled_from([data, table]))
            target[draw(st.text(min_size=1, max_size=10))] = draw(ANY)
    if draw(st.integers(0, 9)) == 0:  # a whole section of the wrong type
        data[draw(st.sampled_from(sorted(data) or ["data"]))] = draw(LEAF)
    return data


@st.composite
def files(draw) -> bytes:
    """The bytes of an experiment file: structured, cut/spliced text, or raw bytes."""
    how = draw(st.sampled_from(["config"] * 6 + ["cut", "splice", "bytes", "text", "deep"]))
    if how == "deep":  # arrays or inline tables nested up to 3000 levels
        depth = draw(st.integers(1, 3000))
        opened, closed = draw(st.sampled_from([("[", "]"), ("{a = ", "}")]))
        return f"[data]\ndataset = {opened * depth}1{closed * depth}\n".encode()
    if how == "bytes":
        return draw(st.binary(max_size=200))
    if how == "text":
        return draw(st.text(max_size=200)).encode("utf-8", "surrogatepass")
    text = toml_document(draw(configs()), headers=draw(st.booleans()))
    if how == "cut":
        a = draw(st.integers(0, len(text)))
        b = draw(st.integers(a, min(len(text), a + 40)))
        text = text[:a] + text[b:]
    elif how == "splice":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(["[", "]", '"', "=", "\n[data]\n", "{", "\x00",
                                                 "\\", "'''", "\ud800"])) + text[at:]  # fmt: skip
    return text.encode("utf-8", "surrogatepass")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Where the files are written (relative dataset paths are relative to it)."""
    path = tmp_path_factory.mktemp("fuzz")
    (path / "tiny.csv").write_text(
        "a,b,label\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(40))
    )
    (path / "text.csv").write_text("a,b\nx,y\n1,z\n")
    return path


def write(folder: Path, content: bytes) -> Path:
    fd, name = tempfile.mkstemp(suffix=".toml", dir=folder)
    with open(fd, "wb") as fh:
        fh.write(content)
    return Path(name)


def _where(message: str, path: Path) -> str:
    """What an error is about, coarsely (for hypothesis' statistics)."""
    rest = message.split(f"{path}: ", 1)[-1]
    field = re.match(r"(experiment|data|model|training|optimizers|schedules)(\.[a-z_]+)?:", rest)
    if field:
        return field.group(0)[:-1]
    for words in ("not valid TOML", "cannot read", "nested too deeply", "unknown key"):
        if words in rest:
            return words
    return "another key"


def check_one_line(message: str, path: Path) -> None:
    assert message and "\n" not in message and "Traceback" not in message
    assert message.startswith(f"{path}: "), message  # it names the file


# --------------------------------------------------------------------------- the tests
@settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
@given(files())
def test_any_file_is_a_valid_config_or_one_line_naming_it(folder, content):
    """1,500 files through ``load_config``, the CLI's reading and validation step."""
    path = write(folder, content)
    try:
        config = load_config(path)
    except LrlabError as err:
        check_one_line(str(err), path)
        event(f"refused: {_where(str(err), path)}")
    else:
        assert isinstance(config, ExperimentConfig)
        event("valid")
    finally:
        path.unlink()


class Reached(Exception):
    """The file passed every check and the run would start."""


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(configs(), st.booleans())
def test_lrlab_run_on_any_file_starts_or_exits_2_with_one_line(folder, data, headers):
    """The whole ``lrlab run`` path in-process (data loaded, grid built, model checked);
    the training is replaced by a stop once everything was accepted."""
    path = write(folder, toml_document(data, headers).encode("utf-8", "surrogatepass"))
    out = folder / f"{path.stem}-out"
    err = io.StringIO()

    def reached(*args, **kwargs):
        raise Reached

    try:
        with mock.patch.object(runner, "run_plan", reached), contextlib.redirect_stderr(err):
            code = main(["run", str(path), "--out", str(out), "-q"])
    except Reached:
        event("accepted: the run would start")
        return
    finally:
        path.unlink()
    assert code == 2
    lines = err.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lrlab: error: "), lines
    check_one_line(lines[0].removeprefix("lrlab: error: "), path)
    event(f"refused: {_where(lines[0], path)}")
    assert not out.exists()  # nothing written


BAD_FILES = {
    "binary": b"\xff\xfe\x00garbage\x80",
    "syntax": b"[data\ndataset = 'iris'\n",
    "deep": ("x = " + "[" * 2000 + "]" * 2000 + "\n").encode(),
    "huge-int": b"[training]\nepochs = 99999999999999999999999999\n",
    "wrong-table": b"data = 3\nmodel = 'mlp()'\ntraining = []\nschedules = {}\n",
    "bad-spec": (
        b"[data]\ndataset = 'iris'\n[model]\nspec = 'mlp(hidden=[4])'\n"
        b"[training]\nepochs = 1\nbatch_size = 8\n[schedules]\nc = 'cosine(0.1, decay_steps=-3'\n"
    ),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_cli_subprocess_bad_file_exit_2_one_line(name, tmp_path):
    path = tmp_path / f"{name}.toml"
    path.write_bytes(BAD_FILES[name])
    proc = subprocess.run(
        [sys.executable, "-m", "lrlab.cli", "run", str(path), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.splitlines()
    check_one_line(line.removeprefix("lrlab: error: "), path)
    assert proc.stdout == "" and not (tmp_path / "out").exists()


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(configs())
def test_a_valid_config_comes_back_whole_from_its_canonical_settings(data):
    """What the store keeps (``canonical()``) validates again to the same settings, the same
    parsed schedules and the same ``varied``: ``Store.config()`` relies on it."""
    try:
        config = config_from_dict(data)
    except LrlabError:
        event("refused")
        return
    event("valid")
    back = config_from_dict(config.canonical())
    assert back.canonical() == config.canonical()
    assert back.varied == config.varied
    for label in config.schedules:
        assert back.parsed_schedule(label) == config.parsed_schedule(label)
