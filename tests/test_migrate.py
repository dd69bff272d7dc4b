"""lrlab migrate: the legacy Keras arguments in the seed tutorials, Python files, the CLI.

The seed counts below were made by reading the seeds, not by running the tool:

- 000 (flashcards): two code listings, ``SGD(..., decay=0, ...)`` (line 216) and
  ``SGD(..., decay=decay_rate, ...)`` (line 251); its Dense layers already use
  ``kernel_initializer=`` and its ``fit`` uses ``epochs=``.
- 001 (course page): its code blocks did not survive the capture; ``lr=0.1`` and
  ``decay=0.01`` appear only in prose bullets ("lr=0.1: This sets the initial ..."),
  which are not calls, so nothing is reported.
- 002 (the Ionosphere tutorial, code flattened onto lines 99 and 131): per listing one
  ``SGD(lr=..., decay=...)``, two ``Dense(..., init='normal', ...)`` and one
  ``fit(..., nb_epoch=...)``.
- 003 (CIFAR-10 blog): ``keras.optimizers.SGD(lr=0.1, ..., decay=0.0, nesterov=**False**)``
  (markdown bold inside the code, line 17), ``SGD(lr=learning_rate, ..., decay=decay_rate)``
  (line 29) and four glued adaptive optimizers on line 63, each with ``lr=`` and ``decay=0.0``.
- 004 (Zoomcamp notes): ``keras.optimizers.Adam(learning_rate=learning_rate)``: clean.
"""

from __future__ import annotations

import ast
import inspect
import re
import warnings
from pathlib import Path

import keras
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lrlab
import lrlab.keras
from lrlab.errors import LrlabError
from lrlab.migrate import KERAS3_DEFAULT_LR, check_file, check_source, check_text
from seedfiles import (
    BATCH,
    EPOCHS,
    SEEDS,
    BeforeLastUpdate,
    assert_trained_with_keras2_lr,
    evaluate,
    ionosphere,
    lrlab_cli,
    needs_seeds,
    seed,
)

SEED_FINDINGS = [
    ("000", 216, "SGD", ("decay",)),
    ("000", 251, "SGD", ("momentum", "decay")),  # momentum=0: Keras 3 wants a float
    ("002", 99, "Dense", ("init",)),
    ("002", 99, "Dense", ("init",)),
    ("002", 99, "SGD", ("lr", "decay")),
    ("002", 99, "model.fit", ("nb_epoch",)),
    ("002", 131, "Dense", ("init",)),
    ("002", 131, "Dense", ("init",)),
    ("002", 131, "SGD", ("lr", "decay")),
    ("002", 131, "model.fit", ("nb_epoch",)),
    ("003", 17, "keras.optimizers.SGD", ("lr", "decay")),
    ("003", 29, "SGD", ("lr", "decay")),
    ("003", 63, "keras.optimizers.Adagrad", ("lr", "decay")),
    ("003", 63, "keras.optimizers.Adadelta", ("lr", "decay")),
    ("003", 63, "keras.optimizers.RMSprop", ("lr", "decay")),
    ("003", 63, "keras.optimizers.Adam", ("lr", "decay")),
]
SEED_002_SGD = (
    "SGD(learning_rate=lrlab.keras.legacy_decay(learning_rate, decay_rate), "
    "momentum=momentum, nesterov=False)"
)


# --------------------------------------------------------------------------- seeds
@needs_seeds
def test_finds_every_legacy_argument_in_the_seeds():
    found = [
        (f.path.split("/")[-1][:3], f.line, f.call, f.args)
        for p in sorted(SEEDS.glob("*.txt"))
        for f in check_file(p)
    ]
    assert found == SEED_FINDINGS
    optimizer_calls = [f for f in found if f[3][-1] == "decay"]
    assert len(optimizer_calls) == 10  # every legacy decay=/lr= optimizer call


@needs_seeds
def test_seed_replacements_are_exact():
    by_key = {(f.line, f.call): f.replacement for f in check_file(seed("002"))}
    assert by_key[(99, "SGD")] == SEED_002_SGD
    assert by_key[(131, "SGD")] == "SGD(learning_rate=0.0, momentum=0.9, nesterov=False)"
    assert by_key[(99, "model.fit")] == (
        "model.fit(X, Y, validation_split=0.33, epochs=epochs, batch_size=28)"
    )
    three = [f.replacement for f in check_file(seed("003"))]
    assert three[0] == "keras.optimizers.SGD(learning_rate=0.1, momentum=0.0, nesterov=False)"
    assert three[-1] == (
        "keras.optimizers.Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-08)"
    )
    zero = check_file(seed("000"))[0]
    assert "decay=0` is a no-op" in zero.message
    assert zero.replacement == "SGD(learning_rate=learning_rate, momentum=momentum, nesterov=False)"


@needs_seeds
def test_seed_001_mentions_lr_only_in_prose():
    text = seed("001").read_text()
    assert "lr=0.1: This sets" in text and "decay=0.01: This sets" in text
    assert check_file(seed("001")) == []


@needs_seeds
def test_seed_replacements_construct_keras3_optimizers_without_warnings():
    """Every optimizer replacement from 003 builds on Keras 3; the originals do not."""
    namespace = {"keras": keras, "lrlab": lrlab, "learning_rate": 0.1, "decay_rate": 0.002}
    namespace["momentum"] = 0.8
    namespace["SGD"] = keras.optimizers.SGD
    for finding in check_file(seed("003")):
        original = re.sub(r"\*\*(\w+)\*\*", r"\1", _original_call(finding))
        with pytest.raises(ValueError, match="not recognized"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # decay= warns before lr= raises
            evaluate(original, namespace)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # decay= would warn "no longer supported"
            optimizer = evaluate(finding.replacement, namespace)
        assert isinstance(optimizer, keras.optimizers.Optimizer)


def _original_call(finding) -> str:
    text = Path(finding.path).read_text().splitlines()[finding.line - 1][finding.col - 1 :]
    depth = 0
    for i, ch in enumerate(text):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == ")" and depth == 0:
            return text[: i + 1]
    raise AssertionError(text)


# --------------------------------------------------------------------------- Ionosphere
@needs_seeds
def test_migrated_seed_002_trains_the_ionosphere_model_with_keras2_lrs():
    """The replacement of seed 002's SGD line, on its model and data, for 3 epochs."""
    x, y = ionosphere()
    findings = {(f.line, f.call): f.replacement for f in check_file(seed("002"))}
    assert findings[(99, "SGD")] == SEED_002_SGD
    # the seed's own values: epochs = 50; learning_rate = 0.1;
    # decay_rate = learning_rate / epochs; momentum = 0.8
    namespace = {
        "SGD": keras.optimizers.SGD,
        "Dense": keras.layers.Dense,
        "lrlab": lrlab,
        "learning_rate": 0.1,
        "decay_rate": 0.1 / 50,
        "momentum": 0.8,
    }
    keras.utils.set_random_seed(7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Keras 3 prefers Input() to input_dim=
        layers = [evaluate(findings[(99, "Dense")], namespace)]
    layers.append(
        evaluate("Dense(1, kernel_initializer='normal', activation='sigmoid')", {**namespace})
    )
    model = keras.Sequential(layers)
    sgd = evaluate(findings[(99, "SGD")], namespace)
    model.compile(loss="binary_crossentropy", optimizer=sgd, metrics=["accuracy"])
    probe = BeforeLastUpdate()
    model.fit(
        x,
        y,
        validation_split=0.33,
        epochs=EPOCHS,
        batch_size=BATCH,
        shuffle=False,
        callbacks=[probe],
        verbose=0,
    )
    assert_trained_with_keras2_lr(model, sgd, probe, x, y)


# --------------------------------------------------------------------------- Python files
def test_python_file_fixes_whole_lines_and_leaves_torch_alone():
    source = """\
import keras
from keras import optimizers
from torch.optim import SGD as TorchSGD
import torch.optim as optim
from keras.optimizers import Adam

opt = keras.optimizers.SGD(lr=0.1, decay=1e-6, momentum=0.9)  # comment
t = TorchSGD(params, lr=0.1)
t2 = optim.SGD(params, lr=0.1)
a = Adam(decay=0.01)
b = optimizers.RMSprop(0.01, decay=0.5)
c = optimizers.Nadam(
    lr=0.002,
    decay=0.004,
)
model.add(Dense(1, init="normal")); model.fit(x, nb_epoch=3)
s = "h\u00e9llo"; d = Adam(lr=1e-3, **extra)
"""
    found = check_source(source, "train.py")
    got = [(f.line, f.col, f.call, f.args, f.replacement) for f in found]
    fixed16 = 'model.add(Dense(1, kernel_initializer="normal")); model.fit(x, epochs=3)'
    assert got == [
        (
            7,
            7,
            "keras.optimizers.SGD",
            ("lr", "decay"),
            "opt = keras.optimizers.SGD(learning_rate=lrlab.keras.legacy_decay(0.1, 1e-6), "
            "momentum=0.9)  # comment",
        ),
        (
            10,
            5,
            "Adam",
            ("decay",),
            "a = Adam(learning_rate=lrlab.keras.legacy_decay(0.001, 0.01))",
        ),
        (
            11,
            5,
            "optimizers.RMSprop",
            ("decay",),
            "b = optimizers.RMSprop(lrlab.keras.legacy_decay(0.01, 0.5))",
        ),
        (
            12,
            5,
            "optimizers.Nadam",
            ("lr", "decay"),
            # the call keeps its layout: the decay= line goes, the rest stays
            "c = optimizers.Nadam(\n    learning_rate=lrlab.keras.legacy_decay(0.002, 0.004),\n)",
        ),
        (16, 11, "Dense", ("init",), fixed16),
        (16, 37, "model.fit", ("nb_epoch",), fixed16),
        (17, 18, "Adam", ("lr",), 's = "h\u00e9llo"; d = Adam(learning_rate=1e-3, **extra)'),
    ]
    assert "add `import lrlab.keras`" in found[0].message
    assert "lr not given: Adam's default" in found[1].message
    for f in found:
        ast.parse(f.replacement)


def test_both_lr_spellings_keep_lr_and_zero_decay_is_dropped():
    """Given both, Keras 2 trained with lr= (``kwargs.get("lr", learning_rate)``)."""
    (f,) = check_source("import lrlab.keras\nSGD(lr=0.1, learning_rate=0.2, decay=0.)")
    assert f.replacement == "SGD(learning_rate=0.1)"
    assert "import lrlab" not in f.message
    (g,) = check_source("SGD(learning_rate=0.2, decay=d)")
    assert g.replacement == "SGD(learning_rate=lrlab.keras.legacy_decay(0.2, d))"


def test_clean_python_has_no_findings():
    source = "from keras.optimizers import SGD\nSGD(learning_rate=0.1, momentum=0.9)\nf(lr=1)\n"
    assert check_source(source) == []


def test_keras3_default_lrs_match_keras():
    for name, lr in KERAS3_DEFAULT_LR.items():
        default = inspect.signature(getattr(keras.optimizers, name)).parameters["learning_rate"]
        assert default.default == lr, name


@given(
    lr=st.floats(1e-4, 1.0),
    decay=st.floats(1e-5, 0.1),
    momentum=st.sampled_from([0.0, 0.5, 0.9]),
    step=st.integers(0, 10_000),
)
def test_any_migrated_sgd_line_has_the_keras2_lr(lr, decay, momentum, step):
    (f,) = check_source(f"opt = SGD(lr={lr!r}, momentum={momentum!r}, decay={decay!r})")
    opt = evaluate(f.replacement.split(" = ", 1)[1], {"SGD": keras.optimizers.SGD, "lrlab": lrlab})
    assert opt.momentum == momentum
    value = float(keras.ops.convert_to_numpy(opt._learning_rate(step)))
    assert value == pytest.approx(lr / (1 + decay * step), rel=2e-6)


# --------------------------------------------------------------------------- prose
def test_prose_snippets_are_cut_at_balanced_parens_and_cleaned():
    text = (
        "Intro text SGD optimizer (SGD) lr=0.1 is nice.\n"
        "Try `SGD(lr=0.1, momentum=0.9)`then  keras.optimizers.Adam(lr=“0.001”)"
        "RMSprop(lr=(0.1 + 0.2), rho=0.9, name='a)b')\n"
        "torch.optim.SGD(p, lr=0.1) and broken Adam(lr=0.1, decay=)\n"
    )
    found = check_text(text, "notes.md")
    got = [(f.line, f.col, f.call, f.args, f.replacement) for f in found]
    assert got == [
        (2, 6, "SGD", ("lr",), "SGD(learning_rate=0.1, momentum=0.9)"),
        (2, 38, "keras.optimizers.Adam", ("lr",), 'keras.optimizers.Adam(learning_rate="0.001")'),
        (2, 71, "RMSprop", ("lr",), "RMSprop(learning_rate=(0.1 + 0.2), rho=0.9, name='a)b')"),
        (3, 39, "Adam", ("decay", "lr"), None),
    ]
    assert found[-1].format().endswith("(fix by hand)")


def test_notebook_cells_are_checked_as_python(tmp_path):
    import json

    cells = [
        {"cell_type": "markdown", "source": ["Use SGD(lr=0.1) here"]},
        {
            "cell_type": "code",
            "source": ["%matplotlib inline\n", "from keras.optimizers import SGD\n"],
        },
        {"cell_type": "code", "source": 'sgd = SGD(lr=0.01, decay=1e-6, name="opt")\n'},
        {"cell_type": "code", "source": ["x = (\n", "Adam(lr=1)"]},  # broken: prose mode
    ]
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"cells": cells}))
    got = [(f.path.split("/")[-1], f.line, f.col, f.args, f.replacement) for f in check_file(path)]
    assert got == [
        (
            "nb.ipynb[cell 3]",
            1,
            7,
            ("lr", "decay"),
            'sgd = SGD(learning_rate=lrlab.keras.legacy_decay(0.01, 1e-6), name="opt")',
        ),
        ("nb.ipynb[cell 4]", 2, 1, ("lr",), "Adam(learning_rate=1.0)"),  # Keras 3 wants a float
    ]
    path.write_text("{not json")
    with pytest.raises(LrlabError, match="not a Jupyter notebook"):
        check_file(path)


# --------------------------------------------------------------------------- CLI
@needs_seeds
def test_cli_reports_the_seeds_and_exits_1():
    done = lrlab_cli(*map(str, sorted(SEEDS.glob("*.txt"))))
    assert done.returncode == 1, done.stderr
    heads = [line for line in done.stdout.splitlines() if not line.startswith("    ")]
    fixes = [line for line in done.stdout.splitlines() if line.startswith("    ")]
    assert len(heads) == len(fixes) == len(SEED_FINDINGS)
    assert all(re.match(r"^/\S+\.txt:\d+:\d+: \w+: ", line) for line in heads)
    assert f"    {SEED_002_SGD}" in fixes
    assert done.stderr.strip() == f"lrlab migrate: {len(SEED_FINDINGS)} call(s) to change"


def test_cli_exit_codes_clean_unreadable_unparsable(tmp_path):
    clean = tmp_path / "clean.py"
    clean.write_text("from keras.optimizers import SGD\nSGD(learning_rate=0.1)\n")
    done = lrlab_cli(str(clean))
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")

    bad = tmp_path / "bad.py"
    bad.write_text("opt = SGD(lr=0.1\n")
    binary = tmp_path / "blob.txt"
    binary.write_bytes(b"\xff\xfe\x00\x81")
    for path, message in [
        (bad, "bad.py:1:10: not valid Python ('(' was never closed); to scan prose"),
        (binary, "blob.txt: not a text file"),
        (tmp_path / "missing.py", "missing.py: no such file"),
        (tmp_path, "is a directory"),
    ]:
        done = lrlab_cli(str(clean), str(path))
        assert done.returncode == 2, done
        assert done.stdout == ""  # nothing half-written
        (line,) = done.stderr.splitlines()
        assert line.startswith("lrlab: error: ") and message in line

    done = lrlab_cli("--text", str(bad))
    assert done.returncode == 1 and "SGD: a call with lr= that is not valid Python" in done.stdout


def test_unparsable_python_is_an_lrlab_error():
    with pytest.raises(LrlabError, match=r"<string>:1:\d+: not valid Python"):
        check_source("SGD(lr=")
