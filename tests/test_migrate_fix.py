"""lrlab migrate --diff / --write: span edits that keep everything else, on files and seeds.

The expected texts below are written out by hand from the fixture (what a careful person
migrating the file would type), not produced by the tool.
"""

from __future__ import annotations

import re
import shutil
import stat
import subprocess
import tempfile
import warnings
from pathlib import Path

import keras
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lrlab
import lrlab.keras
from lrlab.migrate import check_file, check_source, migrate_file
from readme_console import console_blocks, console_env, readme_section, replay
from seedfiles import (
    EPOCHS,
    SEEDS,
    BeforeLastUpdate,
    assert_trained_with_keras2_lr,
    evaluate,
    ionosphere,
    lrlab_cli,
    needs_seeds,
)

REPO = Path(__file__).resolve().parents[1]

FIXTURE = '''\
"""Train the Ionosphere model (Keras 2)."""

import keras  # the Keras 2 API
from keras.optimizers import SGD

# time-based decay, as in the tutorial
sgd = SGD(lr=0.1,   momentum=0.8, decay=0.002, nesterov=False)  # keep this comment
adam = keras.optimizers.Adam(
    lr = 1e-3,      # odd spacing stays
    decay=1e-6,     # per update
    amsgrad=True,
)
rms = keras.optimizers.RMSprop(*args, decay=0.5)
model.add(keras.layers.Dense(1, init="normal")) ; model.fit(X, Y, nb_epoch=50,
                                                             batch_size=28)
'''

FIXTURE_DIFF = """\
--- train.py
+++ train.py
@@ -2,14 +2,15 @@
\x20
 import keras  # the Keras 2 API
 from keras.optimizers import SGD
+import lrlab.keras
\x20
 # time-based decay, as in the tutorial
-sgd = SGD(lr=0.1,   momentum=0.8, decay=0.002, nesterov=False)  # keep this comment
+sgd = SGD(learning_rate=lrlab.keras.legacy_decay(0.1, 0.002),   momentum=0.8, nesterov=False)  # keep this comment
 adam = keras.optimizers.Adam(
-    lr = 1e-3,      # odd spacing stays
-    decay=1e-6,     # per update
+    learning_rate = lrlab.keras.legacy_decay(1e-3, 1e-6),      # odd spacing stays
+    # per update
     amsgrad=True,
 )
 rms = keras.optimizers.RMSprop(*args, decay=0.5)
-model.add(keras.layers.Dense(1, init="normal")) ; model.fit(X, Y, nb_epoch=50,
+model.add(keras.layers.Dense(1, kernel_initializer="normal")) ; model.fit(X, Y, epochs=50,
                                                              batch_size=28)
"""  # noqa: E501


# --------------------------------------------------------------------------- diff / write
def test_diff_prints_a_unified_diff_and_changes_nothing(tmp_path):
    path = tmp_path / "train.py"
    path.write_text(FIXTURE)
    done = lrlab_cli("--diff", "train.py", cwd=tmp_path)
    assert done.returncode == 1  # like `ruff check --diff`: 1 when something would change
    assert done.stdout == FIXTURE_DIFF
    assert done.stderr.splitlines() == [
        "train.py:13:7: RMSprop: cannot fix it safely: `decay=0.5` is given but the lr may "
        "come from *args/**kwargs (fix by hand)",
        "    (fix by hand)",
        "lrlab migrate: 4 call(s) to fix in 1 file(s), 1 left to fix by hand",
    ]
    assert path.read_text() == FIXTURE
    patched = subprocess.run(
        ["patch", "-p0", "--dry-run"], input=done.stdout, text=True, cwd=tmp_path,
        capture_output=True,
    )  # fmt: skip
    assert patched.returncode == 0, patched.stdout + patched.stderr


def test_write_keeps_bytes_outside_the_edits_and_is_idempotent(tmp_path):
    """CRLF newlines, a latin-1 coding cookie, tabs and comments survive byte for byte."""
    original = (
        "# -*- coding: latin-1 -*-\r\n"
        '"""Caf\xe9 model."""\r\n'
        "from keras import optimizers\r\n"
        "\r\n"
        "opt = optimizers.SGD(lr=0.1,\tdecay=0.5)  # \xe9t\xe9\r\n"
        "if True:\r\n"
        "\tfit(nb_epoch = 3)  # tab-indented\r\n"
        "torch_opt = __import__('torch').optim.SGD(p, lr=0.1)\r\n"
    ).encode("latin-1")
    path = tmp_path / "legacy.py"
    path.write_bytes(original)
    path.chmod(0o750)
    expected = (
        original.replace(b"lr=0.1,\tdecay=0.5", b"learning_rate=lrlab.keras.legacy_decay(0.1, 0.5)")
        .replace(b"nb_epoch = 3", b"epochs = 3")
        .replace(b"optimizers\r\n\r\n", b"optimizers\r\nimport lrlab.keras\r\n\r\n")
    )
    done = lrlab_cli("--write", str(path))
    assert (done.returncode, done.stdout) == (0, ""), done.stderr
    assert path.read_bytes() == expected
    assert stat.S_IMODE(path.stat().st_mode) == 0o750
    assert done.stderr.splitlines()[-1] == (
        "lrlab migrate: 2 call(s) fixed in 1 file(s), 0 left to fix by hand"
    )
    again = lrlab_cli("--write", str(path))
    assert (again.returncode, again.stdout) == (0, "")
    assert again.stderr == "lrlab migrate: 0 call(s) fixed in 0 file(s), 0 left to fix by hand\n"
    assert path.read_bytes() == expected
    assert lrlab_cli("--diff", str(path)).stdout == ""
    assert [p.name for p in tmp_path.iterdir()] == ["legacy.py"]  # no temporary left


def test_write_reports_what_is_left_by_hand_at_its_new_position(tmp_path):
    path = tmp_path / "train.py"
    path.write_text(FIXTURE)
    done = lrlab_cli("--write", str(path))
    assert done.returncode == 1  # a legacy call is still in the file
    assert done.stdout == (
        f"{path}:14:7: RMSprop: cannot fix it safely: `decay=0.5` is given but the lr may "
        "come from *args/**kwargs (fix by hand)\n    (fix by hand)\n"
    )
    assert path.read_text().splitlines()[13] == "rms = keras.optimizers.RMSprop(*args, decay=0.5)"
    assert lrlab_cli("--diff", str(path)).stdout == ""


def test_bad_input_writes_nothing(tmp_path):
    good = tmp_path / "good.py"
    good.write_text("opt = SGD(lr=0.1)\n")
    bad = tmp_path / "bad.py"
    bad.write_text("opt = SGD(lr=0.1\n")
    for args in [("--write", good, bad), ("--write", good, tmp_path / "missing.py")]:
        done = lrlab_cli(*map(str, args))
        assert (done.returncode, done.stdout) == (2, "")
        (line,) = done.stderr.splitlines()
        assert line.startswith("lrlab: error: ") and ("bad.py:1:10" in line or "no such" in line)
        assert good.read_text() == "opt = SGD(lr=0.1)\n"
    done = lrlab_cli("--diff", "--write", str(good))
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "choose one" in done.stderr


def test_notebooks_are_reported_not_rewritten(tmp_path):
    path = tmp_path / "nb.ipynb"
    raw = '{"cells": [{"cell_type": "code", "source": "opt = SGD(lr=0.1)\\n"}]}'
    path.write_text(raw)
    done = lrlab_cli("--write", str(path))
    assert done.returncode == 1 and path.read_text() == raw
    assert done.stdout.splitlines()[1] == "    opt = SGD(learning_rate=0.1)"


# --------------------------------------------------------------------------- layouts
SEPARATORS = [", ", ",", ",\n    ", ",  # note {i}\n    ", " ,\n\t"]


@given(
    order=st.permutations(["lr", "momentum", "decay", "nesterov"]),
    separators=st.lists(st.sampled_from(SEPARATORS), min_size=3, max_size=3),
    opening=st.sampled_from(["", "\n    ", "  # start\n    "]),
    closing=st.sampled_from(["", ",", ",\n", "\n", "  # end\n", ",  # end\n"]),
    lr=st.sampled_from(["0.1", "(0.05 + 0.05)", "base_lr"]),
    decay=st.sampled_from(["0.002", "1 / 500", "decay_rate", "0"]),
)
def test_any_layout_is_fixed_exactly_or_left_alone(order, separators, opening, closing, lr, decay):
    """Comments survive, the result parses, trains with Keras 2's lr, and is stable."""
    values = {"lr": lr, "momentum": "0.9", "decay": decay, "nesterov": "False"}
    args = [f"{name}={values[name]}" for name in order]
    call = opening + args[0]
    for i, (sep, arg) in enumerate(zip(separators, args[1:], strict=True)):
        call += sep.format(i=i) + arg
    source = (
        "from keras.optimizers import SGD\n\nbase_lr, decay_rate = 0.1, 0.002\n"
        f"opt = SGD({call}{closing})\n"
    )
    comments = re.findall(r"#.*", source)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "layout.py"
        path.write_text(source)
        migration = migrate_file(path)
    assert migration.by_hand == []
    migrated = migration.migrated
    assert re.findall(r"#.*", migrated) == comments
    assert check_source(migrated) == []
    namespace: dict = {}
    exec(compile(migrated, "<migrated>", "exec"), namespace)  # noqa: S102 - lrlab's own output
    opt = namespace["opt"]
    assert opt.momentum == 0.9 and opt.nesterov is False
    decay_value = 0.0 if decay == "0" else 0.002  # 1 / 500 and decay_rate are 0.002 too
    schedule = opt._learning_rate
    for step in (0, 1, 449):
        got = schedule(step) if callable(schedule) else opt.learning_rate
        lr_keras2 = 0.1 / (1 + decay_value * step)
        assert float(keras.ops.convert_to_numpy(got)) == pytest.approx(lr_keras2, rel=1e-6)


def test_comment_layouts_are_fixed_or_refused_with_a_reason(tmp_path):
    source = (
        "opt = SGD(\n"
        "    lr=0.1,  # from the paper\n"
        "    decay=0.002,  # Keras 2 decay\n"
        "    momentum=0.9,\n"
        ")\n"
    )
    path = tmp_path / "layout.py"
    path.write_text(source)
    migration = migrate_file(path)
    assert migration.by_hand == []
    assert migration.migrated == (
        "import lrlab.keras\n"
        "opt = SGD(\n"
        "    learning_rate=lrlab.keras.legacy_decay(0.1, 0.002),  # from the paper\n"
        "    # Keras 2 decay\n"
        "    momentum=0.9,\n"
        ")\n"
    )
    refused = "opt = SGD(lr=0.1, decay=0.5  # why\n    , momentum=0.9)\n"
    path.write_text(refused)
    migration = migrate_file(path)
    assert migration.migrated == refused
    (finding,) = migration.by_hand
    assert finding.message.endswith(
        "cannot fix it safely: a comment sits between the argument and its comma (fix by hand)"
    )


@pytest.mark.parametrize(
    ("source", "migrated"),
    [
        # both spellings: Keras 2 read kwargs.get("lr", learning_rate), so lr= wins
        ("SGD(learning_rate=0.2, lr=0.1, momentum=0, decay=0.1)",
         "SGD(learning_rate=lrlab.keras.legacy_decay(0.1, 0.1), momentum=0.0)"),
        ("SGD(decay=0.1, lr=0.1)", "SGD(learning_rate=lrlab.keras.legacy_decay(0.1, 0.1))"),
        ("SGD(decay=0)", "SGD()"),
        ("SGD(\n    decay=0.1,\n)",
         "SGD(\n    learning_rate=lrlab.keras.legacy_decay(0.01, 0.1),\n)"),
        ("f(nb_epoch=1, epochs=2)", "f(epochs=1)"),
        ("SGD((0.1), decay=0.1)", "SGD((lrlab.keras.legacy_decay(0.1, 0.1)))"),
        ("Adadelta(lr=1)", "Adadelta(learning_rate=1.0)"),
        ("SGD(**kw, decay=0.1)", None),  # the lr may be in kw: left alone
        ("SGD(*args, decay=0.1)", None),
        ("fit(nb_epoch=SGD(lr=get(nb_epoch=2), decay=0.5))",  # nested: fixed in rounds
         "fit(epochs=SGD(learning_rate=lrlab.keras.legacy_decay(get(epochs=2), 0.5)))"),
    ],
)  # fmt: skip
def test_call_fixes(tmp_path, source, migrated):
    path = tmp_path / "calls.py"
    path.write_text(f"import lrlab.keras\nopt = {source}\n")
    migration = migrate_file(path)
    if migrated is None:
        assert migration.migrated == path.read_text()
        assert "cannot fix it safely" in migration.by_hand[0].message
    else:
        assert migration.migrated == f"import lrlab.keras\nopt = {migrated}\n"
        assert migration.by_hand == migration.remaining == []


# --------------------------------------------------------------------------- seeds
@needs_seeds
def test_every_seed_is_written_keras3_ready_and_stays_so(tmp_path):
    """--write on copies of the seeds: each fixed call builds on Keras 3, the rest is kept."""
    copies = tmp_path / "seeds"
    shutil.copytree(SEEDS, copies)
    originals = {p.name: (p.read_text(), check_file(p)) for p in sorted(SEEDS.glob("*.txt"))}
    done = lrlab_cli("--write", *map(str, sorted(copies.glob("*.txt"))))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr.splitlines()[-1] == (
        "lrlab migrate: 16 call(s) fixed in 3 file(s), 0 left to fix by hand"
    )
    namespace = {
        "keras": keras,
        "lrlab": lrlab,
        "SGD": keras.optimizers.SGD,
        "Dense": keras.layers.Dense,
        "learning_rate": 0.1,
        "decay_rate": 0.002,
        "momentum": 0.8,
    }
    built = 0
    for name, (text, findings) in originals.items():
        written = (copies / name).read_text()
        assert check_file(copies / name) == []
        old_lines, new_lines = text.splitlines(), written.splitlines()
        assert len(old_lines) == len(new_lines)
        touched = {f.line for f in findings}
        for n, (old, new) in enumerate(zip(old_lines, new_lines, strict=True), start=1):
            assert (old == new) == (n not in touched), (name, n)
        for finding in findings:
            assert finding.replacement in new_lines[finding.line - 1]
            compile(finding.replacement, "<written>", "eval")
            if finding.call.endswith("fit"):
                continue  # compiled; run in the seed 002 training test
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # decay= would warn "no longer supported"
                warnings.filterwarnings("ignore", "Do not pass an `input_shape`")
                built_object = evaluate(finding.replacement, namespace)
            expected = keras.layers.Dense if finding.call == "Dense" else keras.optimizers.Optimizer
            assert isinstance(built_object, expected)
            built += 1
    assert built == 14  # 10 optimizers and 4 Dense layers
    written = {p.name: p.read_bytes() for p in copies.glob("*.txt")}
    again = lrlab_cli("--write", *map(str, sorted(copies.glob("*.txt"))))
    assert again.returncode == 0 and again.stdout == ""
    assert {p.name: p.read_bytes() for p in copies.glob("*.txt")} == written


@needs_seeds
def test_written_seed_002_listing_trains_with_keras2_lr(tmp_path):
    """Seed 002's first listing after --write, run statement by statement on Keras 3.

    The capture flattened the listing onto one line (line 99); its statements from
    ``# create model`` on are split where the line breaks were and executed as written,
    with the data (``X``, ``Y``) loaded by lrlab (what the listing's pandas/LabelEncoder
    lines do) and ``fit`` stopped after 3 of its 50 epochs. The SGD the listing builds must
    train with Keras 2's ``0.1 / (1 + 0.002 * iterations)``.
    """
    copy = tmp_path / "002.txt"
    shutil.copy(next(SEEDS.glob("002_*.txt")), copy)
    assert lrlab_cli("--write", str(copy)).returncode == 0
    line = copy.read_text().splitlines()[98]
    listing = line[line.index("# create model") :]
    listing = re.sub(r"# (create model|Compile model|Fit the model) ", "", listing)
    statements = re.split(
        r" (?=model[ .]|epochs =|learning_rate =|decay_rate =|momentum =|sgd =)", listing
    )
    assert statements[-1].startswith("model.fit(") and len(statements) == 10
    x, y = ionosphere()
    fit_calls = []

    class Sequential(keras.Sequential):
        def fit(self, *args, **kwargs):
            fit_calls.append(dict(kwargs))
            kwargs.update(epochs=EPOCHS, shuffle=False, verbose=0, callbacks=[probe])
            return super().fit(*args, **kwargs)

    probe = BeforeLastUpdate()
    namespace = {
        "Sequential": Sequential,
        "Dense": keras.layers.Dense,
        "SGD": keras.optimizers.SGD,
        "lrlab": lrlab,
        "X": x,
        "Y": y,
    }
    keras.utils.set_random_seed(7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Keras 3 prefers Input() to input_dim=
        for statement in statements:
            exec(compile(statement.strip(), "<seed 002>", "exec"), namespace)  # noqa: S102
    assert fit_calls == [{"validation_split": 0.33, "epochs": 50, "batch_size": 28}]
    assert namespace["decay_rate"] == 0.1 / 50
    model, sgd = namespace["model"], namespace["sgd"]
    assert sgd.momentum == 0.8
    assert_trained_with_keras2_lr(model, sgd, probe, x, y)


# --------------------------------------------------------------------------- README
def test_readme_migrate_section_outputs_are_what_the_cli_prints(tmp_path):
    """Every console block of the README's migrate section, run in a fresh folder.

    A file first shown by ``$ cat FILE`` is created with the content shown; the seed
    paths (``../shared/seeds/...``) resolve to the shared seeds.
    """
    blocks = console_blocks(readme_section("Migrating Keras 2 code: `lrlab migrate`"))
    assert len(blocks) >= 2 and sum(len(b) for b in blocks) >= 6
    env = console_env(tmp_path)
    (tmp_path / "shared").symlink_to(SEEDS.parent)
    work = tmp_path / "work"
    work.mkdir()
    replay(blocks, work, env)
