"""Transfer learning (seed 004): a frozen base computed once, in both engines, and the example.

- the shortcut changes no number: every stored per-epoch row is the whole model's, in the
  Keras engine (``fit_trial`` with and without ``BaseFeatures``) and in the population
  engine (``population_inputs(..., frozen_base=False)`` against the default);
- the detection takes only what it can prove deterministic and splittable, and every other
  model keeps its whole forward pass;
- ``examples/seed004_transfer.toml`` runs through the CLI as a user runs it (small).
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from lrlab.experiments.engines.frozen_base import (
    BaseFeatures,
    shortcut_population,
    split_model,
    trained_part,
    why_not_split,
)

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"

MODELS = '''
import keras


def fixed_base(input_shape, n_outputs):
    """A frozen base with fixed weights (the same for every init seed), a frozen batch norm."""
    init = keras.initializers.GlorotUniform(seed=7)
    return keras.Sequential([
        keras.Input(input_shape),
        keras.layers.Conv2D(4, 3, padding="same", activation="relu", kernel_initializer=init,
                            trainable=False),
        keras.layers.BatchNormalization(trainable=False, moving_variance_initializer="ones"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(8, activation="relu"),
        keras.layers.Dense(n_outputs, activation="softmax"),
    ])


def random_base(input_shape, n_outputs):
    """The tutorial's functional pattern; the frozen base is drawn from the init seed."""
    base = keras.Sequential([keras.Input(input_shape), keras.layers.Conv2D(4, 3),
                             keras.layers.GlobalAveragePooling2D()])
    base.trainable = False
    inputs = keras.Input(input_shape)
    x = base(inputs, training=False)
    return keras.Model(inputs, keras.layers.Dense(n_outputs, activation="softmax")(x))
'''


def _plan(tmp_path: Path, model: str, optimizer: str = '"adam"', seeds=(0, 1), lrs=(0.01, 0.1)):
    from lrlab.experiments.config import load_config
    from lrlab.experiments.plan import build_plan

    (tmp_path / "transfer_models.py").write_text(MODELS)
    (tmp_path / "exp.toml").write_text(
        f"""
[experiment]
seeds = {list(seeds)}
lrs = {list(lrs)}
vary = ["init", "order"]  # one split: the seeds differ in the (head's) weights

[data]
dataset = "digits"
classes = [5, 6, 7, 8, 9]
validation = 0.25
limit = 400

[model]
spec = "transfer_models:{model}"

[training]
epochs = 3
batch_size = 40
metrics = ["accuracy"]

[optimizers]
opt = {optimizer}

[schedules]
cosine = "cosine(0.1, decay_steps=20)"
"""
    )
    return build_plan(load_config(tmp_path / "exp.toml"))


def _assert_rows_equal(got: list[dict], want: list[dict], what: str) -> None:
    assert [r["epoch"] for r in got] == [r["epoch"] for r in want], what
    for mine, row in zip(got, want, strict=True):
        assert mine.keys() == row.keys(), what
        for name, value in row.items():
            assert mine[name] == pytest.approx(value, rel=1e-5, abs=1e-6), (what, name)


# --------------------------------------------------------------------------- classes
BASE_FILE = """
[data]
dataset = "digits"
{data}
[model]
spec = "mlp(hidden=[4])"
[training]
epochs = 1
batch_size = 32
[schedules]
c = "constant(0.1)"
"""


@pytest.mark.parametrize(
    "data, message",
    [
        ("classes = [5, 12]", "data.classes: digits has no class '12'; its classes are 0, 1, "),
        ("classes = [5]", "data.classes: must list at least two different class names"),
        ('classes = [5, "5"]', "data.classes: must list at least two different class names"),
        ("classes = 5", "data.classes: must list at least two different class names"),
        ("classes = [5, 6, 7]\ntask = 'binary'", "data.classes: task 'binary' needs 2 classes"),
    ],
)
def test_bad_classes_are_one_line_errors(tmp_path, data, message):
    from lrlab.experiments.config import ConfigError, load_config
    from lrlab.experiments.plan import build_plan

    (tmp_path / "exp.toml").write_text(BASE_FILE.format(data=data))
    with pytest.raises(ConfigError) as err:
        build_plan(load_config(tmp_path / "exp.toml"))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_bad_class_exits_2_with_one_line_and_writes_nothing(tmp_path):
    (tmp_path / "exp.toml").write_text(BASE_FILE.format(data="classes = [5, 12]"))
    done = subprocess.run(
        [sys.executable, "-m", "lrlab.cli", "run", "exp.toml", "--out", "out"],
        cwd=tmp_path,
        env=dict(os.environ, KERAS_BACKEND="jax"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "lrlab: error: exp.toml: data.classes: digits has no class '12'; its classes are "
        "0, 1, 2, 3, 4, 5, 6, 7, 8, 9"
    ]
    assert not (tmp_path / "out").exists()


def test_classes_select_rows_relabel_them_and_filter_a_holdout(tmp_path):
    from lrlab.experiments.config import load_config
    from lrlab.experiments.plan import build_plan

    rng = np.random.default_rng(0)
    for name, n in (("train", 80), ("hold", 40)):
        x = rng.normal(size=(n, 3)).astype(np.float32)
        np.savez(tmp_path / f"{name}.npz", x=x, y=np.arange(n) % 4)
    (tmp_path / "exp.toml").write_text(
        BASE_FILE.replace('"digits"', '"npz:train.npz"').format(
            data='classes = [3, 1]\nvalidation = "npz:hold.npz"'
        )
    )
    plan = build_plan(load_config(tmp_path / "exp.toml"))
    ds, hold = plan.dataset, plan.holdout
    assert (ds.task, ds.classes, ds.n, hold.n) == ("binary", ("3", "1"), 40, 20)
    train = np.load(tmp_path / "train.npz")
    kept = np.isin(train["y"], [3, 1])
    np.testing.assert_array_equal(ds.x, train["x"][kept])
    np.testing.assert_array_equal(ds.y, np.where(train["y"][kept] == 3, 0, 1))
    assert sorted(set(hold.y.tolist())) == [0, 1]


# --------------------------------------------------------------------------- equivalence
@pytest.mark.parametrize("model", ["fixed_base", "random_base"])
def test_keras_engine_rows_equal_the_whole_models(tmp_path, model):
    from lrlab.experiments.engines.keras import fit_trial

    plan = _plan(tmp_path, model, '{ type = "sgd", momentum = 0.9 }', lrs=(0.1,))
    ds = plan.dataset
    assert (ds.classes, ds.n_classes) == (("5", "6", "7", "8", "9"), 5)
    built = plan.model.build(ds.input_shape, ds.task, ds.n_classes, 0)
    assert split_model(built) is not None, why_not_split(built)
    features = BaseFeatures()
    for trial in plan.trials:
        whole = fit_trial(plan, trial)
        shortcut = fit_trial(plan, trial, base_features=features)
        _assert_rows_equal(shortcut, whole, trial.key)
        assert len(whole) == 3 and whole[0]["loss"] != whole[-1]["loss"]
    # one feature split per (split, base weights): the fixed base is shared across seeds
    assert len({t.split_seed for t in plan.trials}) == 1
    assert len(features._features) == (1 if model == "fixed_base" else len(plan.seeds))


@pytest.mark.parametrize("model", ["fixed_base", "random_base"])
def test_the_optimizer_groups_of_a_run_compute_a_bases_features_once(tmp_path, model, monkeypatch):
    """Two optimizer structures (two population programs) on one frozen base: each
    (split, base weights) is pushed through the base once per run, not once per group."""
    from lrlab.experiments.engines import frozen_base
    from lrlab.experiments.engines.population import PopulationEngine

    plan = _plan(tmp_path, model, optimizer='"adam"\nplain = "sgd"')
    computed = []
    of = frozen_base.FeatureSplit.of.__func__

    def counted(cls, frozen, split):
        computed.append(frozen.digest)
        return of(cls, frozen, split)

    monkeypatch.setattr(frozen_base.FeatureSplit, "of", classmethod(counted))
    engine = PopulationEngine()
    assert len(engine.batches(plan.trials)) == 2
    results = list(engine.run(plan, plan.trials))
    assert [r.status for r in results] == ["ok"] * len(plan.trials)
    bases = 1 if model == "fixed_base" else len(plan.seeds)  # one split (vary: init, order)
    assert len(computed) == len(set(computed)) == bases


@pytest.mark.parametrize("model", ["fixed_base", "random_base"])
def test_population_rows_equal_the_whole_models(tmp_path, model):
    from lrlab.experiments.engines.population import population_inputs
    from lrlab.experiments.engines.population_chunks import train_population

    plan = _plan(tmp_path, model)
    trials = plan.trials
    short = population_inputs(plan, trials)
    whole = population_inputs(plan, trials, frozen_base=False)
    assert short["splits"][0].x_train.ndim == 2  # features, not images
    assert whole["splits"][0].x_train.ndim == 4
    assert len(whole["splits"]) == 1
    assert len(short["splits"]) == (1 if model == "fixed_base" else len(plan.seeds))
    a, b = train_population(**short), train_population(**whole)
    for n, trial in enumerate(trials):
        _assert_rows_equal(a.rows(n), b.rows(n), trial.key)
    # the frozen weights carried call to call, the trials in sequence: the same rows
    c = train_population(**whole, trials_at_once=1, epochs_per_call=1)
    for n, trial in enumerate(trials):
        _assert_rows_equal(c.rows(n), b.rows(n), trial.key)


@pytest.mark.parametrize("model", ["fixed_base", "random_base"])
def test_population_engine_equals_the_keras_engine_on_the_shortcut(tmp_path, model):
    """Across engines too: the population engine (head only, the features of each seed's
    base) against Keras ``fit`` of the whole model (no shortcut)."""
    from lrlab.experiments.engines import get_engine
    from lrlab.experiments.engines.keras import fit_trial

    plan = _plan(tmp_path, model, seeds=(3, 4), lrs=(0.1,))
    engine = get_engine("population")
    assert engine.unsupported(plan) is None
    assert engine.slower(plan) is None  # the convolutions are in the base: run once
    for result in engine.run(plan, plan.trials):
        assert result.status == "ok"
        _assert_rows_equal(result.epochs, fit_trial(plan, result.trial), result.trial.key)


# --------------------------------------------------------------------------- detection
def _frozen_conv():
    conv = keras.layers.Conv2D(3, 3, trainable=False)
    return conv


def _seq(*layers):
    return keras.Sequential([keras.Input((8, 8, 1)), *layers])


def _head():
    return [keras.layers.Flatten(), keras.layers.Dense(5, activation="softmax")]


class Doubler(keras.layers.Layer):
    def call(self, x):
        return 2 * x


REFUSED = {
    "dropout before the frozen base": (
        lambda: _seq(keras.layers.Dropout(0.2), _frozen_conv(), *_head()),
        "is random in training",
    ),
    "noise": (
        lambda: _seq(keras.layers.GaussianNoise(0.1), _frozen_conv(), *_head()),
        "is random in training",
    ),
    "augmentation": (
        lambda: _seq(keras.layers.RandomFlip(), _frozen_conv(), *_head()),
        "is random in training",
    ),
    "batch norm in training mode": (
        lambda: _seq(keras.layers.BatchNormalization(center=False, scale=False), *_head()),
        "uses batch statistics in training",
    ),
    "a custom layer": (lambda: _seq(Doubler(), _frozen_conv(), *_head()), "is a custom layer"),
    "activity regularizer": (
        lambda: _seq(
            keras.layers.Conv2D(3, 3, trainable=False, activity_regularizer="l2"), *_head()
        ),
        "has an activity regularizer",
    ),
    "nothing frozen": (
        lambda: _seq(keras.layers.Conv2D(3, 3), *_head()),
        "no frozen layer with weights before its first trainable one",
    ),
    "nothing trainable": (
        lambda: _seq(_frozen_conv(), keras.layers.Flatten()),
        "it has no trainable layer",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_models_the_shortcut_cannot_prove_keep_their_whole_forward_pass(case):
    make, reason = REFUSED[case]
    model = make()
    assert reason in why_not_split(model)
    assert split_model(model) is None and trained_part(model) is model
    split = object()
    assert BaseFeatures().shortcut(model, split) == (model, split)


def test_a_frozen_layer_inside_random_layers_keeps_them_in_the_head():
    """Dropout after the frozen conv: the base stops before it; the head keeps it (exact)."""
    model = _seq(_frozen_conv(), keras.layers.Dropout(0.5), *_head())
    frozen = split_model(model)
    assert [type(layer).__name__ for layer in frozen.head.layers[1:]] == [
        "Dropout",
        "Flatten",
        "Dense",
    ]


def _functional_branch():
    inputs = keras.Input((8, 8, 1))
    frozen = keras.layers.Conv2D(1, 3, padding="same", trainable=False)(inputs)
    merged = keras.layers.Add()([inputs, frozen])  # a skip connection around the base
    x = keras.layers.Flatten()(merged)
    return keras.Model(inputs, keras.layers.Dense(2)(x))


def _two_inputs():
    a, b = keras.Input((4,)), keras.Input((4,))
    x = keras.layers.Concatenate()([keras.layers.Dense(3, trainable=False)(a), b])
    return keras.Model([a, b], keras.layers.Dense(2)(x))


def _shared_twice():
    inputs = keras.Input((4,))
    frozen = keras.layers.Dense(4, trainable=False)
    x = frozen(frozen(inputs))
    return keras.Model(inputs, keras.layers.Dense(2)(x))


@pytest.mark.parametrize(
    "make, reason",
    [
        (_functional_branch, "does not take the previous layer's output alone"),
        (_two_inputs, "not a model with one input and one output"),
        (_shared_twice, "is called more than once"),
    ],
    ids=["skip-connection", "two-inputs", "shared-layer"],
)
def test_functional_models_that_are_not_chains_are_not_split(make, reason):
    model = make()
    assert reason in why_not_split(model)
    assert split_model(model) is None


@pytest.mark.parametrize("training", [True, False])
def test_the_head_on_the_features_is_the_model(training):
    """The tutorial's shape (nested frozen model with a frozen batch norm, called with
    training=False, then pooling and a new head): head(features(x)) == model(x)."""
    keras.utils.set_random_seed(1)
    base = _seq(keras.layers.Conv2D(4, 3), keras.layers.BatchNormalization())
    base.layers[-1].moving_mean.assign(np.full(4, 0.3, np.float32))  # not the identity
    base.trainable = False
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.GlobalAveragePooling2D()(base(inputs, training=False))
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Dense(6)(x)))
    frozen = split_model(model)
    assert frozen is not None, why_not_split(model)
    assert [v.path for v in frozen.head.trainable_variables] == [
        v.path for v in model.trainable_variables
    ]
    rows = np.random.default_rng(0).normal(size=(70, 8, 8, 1)).astype(np.float32)
    got = keras.ops.convert_to_numpy(frozen.head(frozen.features(rows), training=training))
    want = keras.ops.convert_to_numpy(model(rows, training=training))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_bases_with_different_weights_get_their_own_features():
    calls = []

    def build(seed):
        calls.append(seed)
        keras.utils.set_random_seed(seed % 2)  # seeds 0 and 2 draw the same base
        return _seq(keras.layers.Conv2D(2, 3, trainable=False), *_head())

    class Split:
        x_train = np.zeros((4, 8, 8, 1), np.float32) + 1
        x_val = np.zeros((2, 8, 8, 1), np.float32)
        y_train, y_val = np.zeros(4, np.int32), np.zeros(2, np.int32)

    inputs = {
        "build_model": build,
        "splits": [Split()],
        "split_index": [0, 0, 0],
        "init_seeds": [0, 1, 2],
        "cache_key": "k",
    }
    out = shortcut_population(inputs)
    assert calls == [0, 1, 2]  # each distinct seed built once
    assert out["split_index"] == [0, 1, 0] and len(out["splits"]) == 2
    assert out["cache_key"][:2] == ("frozen base", "k")
    assert out["build_model"](1).input_shape == (None, 72)  # the head, on 6x6x2 features


def test_the_digest_tells_bases_apart_by_weights_and_layers_not_by_names():
    def build(activation="relu", seed=0):
        init = keras.initializers.GlorotUniform(seed=seed)
        conv = keras.layers.Conv2D(2, 3, activation=activation, kernel_initializer=init)
        conv.trainable = False
        return split_model(_seq(conv, *_head())).digest

    assert build() == build()  # a second build: other layer names, the same base
    assert build() != build(seed=1)
    assert build() != build(activation="tanh")  # the same weights, another function


def test_features_do_not_travel_with_a_pickled_engine():
    import pickle

    model = _seq(keras.layers.Conv2D(2, 3, trainable=False), *_head())

    class Split:
        x_train = np.ones((3, 8, 8, 1), np.float32)
        x_val = np.zeros((2, 8, 8, 1), np.float32)
        y_train, y_val = np.zeros(3, np.int32), np.zeros(2, np.int32)

    features = BaseFeatures()
    head, split = features.shortcut(model, Split())
    assert split.x_train.shape == (3, 72) and head.input_shape == (None, 72)
    assert len(features._features) == 1
    assert pickle.loads(pickle.dumps(features))._features == {}


# --------------------------------------------------------------------------- the example
def test_the_example_runs_through_the_cli_as_a_user_runs_it(tmp_path):
    """The example's files copied to a folder, made small (2 seeds, 2 lrs, 2 epochs), run
    with ``lrlab run``: the base is pre-trained and saved, auto picks the population
    engine (the convolutions are in the frozen base), every trial is stored."""
    for name in ("seed004_transfer.toml", "seed004_transfer.py"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    toml = (tmp_path / "seed004_transfer.toml").read_text()
    small = re.sub(r"(?m)^seeds = .*$", "seeds = 2", toml)
    small = re.sub(r"(?m)^lrs = .*$", "lrs = [0.01, 0.1]", small)
    small = re.sub(r"(?m)^epochs = .*$", "epochs = 2", small)
    assert small != toml
    (tmp_path / "small.toml").write_text(small)
    env = dict(os.environ, KERAS_BACKEND="jax", LRLAB_CACHE=str(tmp_path / "cache"))
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])

    first = subprocess.run(
        [sys.executable, "-m", "lrlab.cli", "run", "small.toml", "--out", "out"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert first.returncode == 0, first.stderr[-2000:]
    assert (tmp_path / "seed004_base.keras").is_file()
    assert "pre-trained on digits 0-4" in first.stdout + first.stderr
    assert "with population engine" in first.stdout + first.stderr
    with sqlite3.connect(tmp_path / "out" / "store.sqlite") as db:
        statuses = db.execute("select status, count(*) from trials group by status").fetchall()
    assert statuses == [("ok", 2 * 2 * 3)]  # 2 seeds x 2 lrs x 3 schedules
    assert re.search(r"one_cycle / lr=0\.1\s+2\s", first.stdout)


# --------------------------------------------------------------------------- README
README_SECTION = "Transfer learning: the lr of a new head on a frozen base (seed 004)"


@pytest.mark.skipif(shutil.which("column") is None, reason="the README uses column")
def test_readme_transfer_section_prints_what_it_shows(tmp_path):
    """The README's full run (10 seeds, 120 trials), from a copy of the example's files:
    its table is what ``lrlab report`` prints."""
    from readme_console import console_blocks, console_env, readme_section, replay

    blocks = console_blocks(readme_section(README_SECTION))
    assert len(blocks) == 1 and len(blocks[0]) == 2
    work = tmp_path / "work"
    (work / "examples").mkdir(parents=True)
    for name in ("seed004_transfer.toml", "seed004_transfer.py"):
        shutil.copy(EXAMPLES / name, work / "examples" / name)
    replay(blocks, work, {**console_env(tmp_path), "LRLAB_CACHE": str(tmp_path / "cache")})
