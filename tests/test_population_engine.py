"""The population engine reproduces Keras ``fit``, trial by trial, and keeps trials apart.

- Equivalence: for the same initial weights (``build_model(seed)``), the same batch order
  and the same lr per update, a population trial's per-epoch loss, accuracy, val_loss and
  val_accuracy equal those of a real Keras ``fit`` fed the same pre-shuffled data
  (``shuffle=False``, one ``fit`` per epoch), to float32 rounding: SGD with momentum under
  a time-decay table, Adam, Nadam and Lion under a cosine table, Adamax with weight decay,
  and ScheduleFreeAdamW at a constant lr (validated at its averaged weights on both
  sides; Keras' own ``fit`` validates the training weights: another val_loss). Through a
  plan, the engine's rows equal the Keras engine's, plateau and schedule-free included.
- Isolation: a trial that diverges is marked at its epoch, its rows stop there, and the
  other trials' numbers do not change; chunking and split groups do not change numbers.
- The plateau scale in the scanned state follows :class:`PlateauController` exactly.
"""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
from pathlib import Path

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from datafiles import IONOSPHERE_CSV
from lrlab.controllers.plateau import (
    PlateauArrays,
    PlateauController,
    PlateauParams,
    plateau_transition,
)
from lrlab.errors import LrlabError
from lrlab.experiments.datasets import batch_order, load_dataset, split_dataset
from lrlab.experiments.engines import population_chunks as chunks
from lrlab.experiments.engines.keras_schedule_free import ScheduleFreeEvaluation
from lrlab.experiments.engines.population import PopulationEngine
from lrlab.experiments.engines.population_chunks import train_population
from lrlab.experiments.engines.population_optim import KerasOptimizer
from lrlab.experiments.memory import parse_memory
from lrlab.experiments.models import parse_model
from lrlab.schedules import Plateau
from lrlab_process import lrlab_env, run_lrlab

DATA = IONOSPHERE_CSV
EPOCHS, BATCH = 3, 28  # 235 training rows: 8 full batches and one of 11 per epoch


@dataclasses.dataclass
class Split:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


@pytest.fixture(scope="module")
def split() -> Split:
    ds = load_dataset(f"csv:{DATA}")
    s = split_dataset(ds, validation=0.33, method="tail", seed=0, standardize=False)
    f32 = np.float32
    return Split(s.x_train, s.y_train.astype(f32), s.x_val, s.y_val.astype(f32))


def build_mlp(seed: int) -> keras.Model:
    """The seed 002 tutorial's model (34-34-1, init 'normal'), its weights drawn from ``seed``."""
    keras.utils.set_random_seed(seed)
    init = keras.initializers.RandomNormal(stddev=0.05)
    return keras.Sequential(
        [
            keras.Input((34,)),
            keras.layers.Dense(34, activation="relu", kernel_initializer=init),
            keras.layers.Dense(1, activation="sigmoid", kernel_initializer=init),
        ]
    )


def steps(split: Split) -> int:
    return EPOCHS * math.ceil(len(split.y_train) / BATCH)


class TableSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """The lr of update ``t`` is ``table[t]`` (looked up inside the compiled step)."""

    def __init__(self, table):
        self.table = np.asarray(table, np.float32)

    def __call__(self, step):
        index = keras.ops.minimum(keras.ops.cast(step, "int32"), len(self.table) - 1)
        return keras.ops.take(keras.ops.convert_to_tensor(self.table), index)


def keras_fit(
    split: Split, optimizer: dict, table, seed: int, swap: bool = True
) -> dict[str, list[float]]:
    """Keras ``fit`` on the population's batch order, fed pre-shuffled, one fit per epoch
    (``swap``: schedule-free validated at its averaged weights, as lrlab's Keras engine)."""
    model = build_mlp(seed)
    model.compile(
        optimizer=KerasOptimizer.from_config(optimizer).keras(TableSchedule(table)),
        loss="binary_crossentropy",
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy")],
    )
    n = len(split.y_train)
    out: dict[str, list[float]] = {}
    for epoch in range(EPOCHS):
        order = batch_order(seed, epoch, n)
        history = model.fit(
            split.x_train[order],
            split.y_train[order],
            batch_size=BATCH,
            epochs=1,
            shuffle=False,
            validation_data=(split.x_val, split.y_val),
            validation_batch_size=len(split.y_val),
            verbose=0,
            callbacks=[ScheduleFreeEvaluation()] if swap else [],
        )
        for key, values in history.history.items():
            out.setdefault(key, []).extend(values)
    return out


def population(split: Split, optimizer: dict, tables, seeds, **kwargs):
    return train_population(
        build_mlp,
        [split],
        optimizer=optimizer,
        lr=np.asarray(tables),
        init_seeds=seeds,
        order_seeds=seeds,
        epochs=EPOCHS,
        batch_size=BATCH,
        loss="binary_crossentropy",
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy")],
        **kwargs,
    )


@pytest.mark.parametrize(
    "optimizer, spec",
    [
        ({"type": "sgd", "momentum": 0.8}, "time_decay({lr}, decay=0.05)"),
        ({"type": "adam"}, "cosine({lr}, decay_steps=27, alpha=0.1)"),
        ({"type": "nadam"}, "cosine({lr}, decay_steps=27, alpha=0.1)"),
        ({"type": "adamax", "weight_decay": 0.01}, "time_decay({lr}, decay=0.05)"),
        ({"type": "lion"}, "cosine({lr}, decay_steps=27, alpha=0.1)"),
        ({"type": "schedulefreeadamw", "warmup_steps": 5}, "constant({lr})"),
    ],
    ids=["sgd-momentum", "adam", "nadam", "adamax", "lion", "schedulefreeadamw"],
)
def test_trials_reproduce_keras_fit(split, optimizer, spec):
    from lrlab.spec import parse

    peak = 0.1 if optimizer["type"] == "sgd" else 0.01
    lrs = [peak, peak / 3, peak * 2]
    tables = [parse(spec.format(lr=lr)).curve(steps(split)) for lr in lrs]
    seeds = [3, 11, 5]
    result = population(split, optimizer, tables, seeds)
    for n in (0, 2):  # the first and the last trial of the population
        reference = keras_fit(split, optimizer, tables[n], seeds[n])
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            np.testing.assert_allclose(
                result.history[key][n], reference[key], rtol=2e-5, atol=1e-6, err_msg=key
            )
    # the trials are not all the same (the lr and the seed matter)
    assert len({round(float(v), 5) for v in result.history["val_loss"][:, -1]}) == 3
    if optimizer["type"] == "schedulefreeadamw":
        # Keras' own fit validates the training weights y: same training, other val_loss
        at_y = keras_fit(split, optimizer, tables[0], seeds[0], swap=False)
        np.testing.assert_allclose(result.history["loss"][0], at_y["loss"], rtol=2e-5)
        assert np.all(np.abs(result.history["val_loss"][0] - at_y["val_loss"]) > 1e-4)


def test_a_diverging_trial_is_marked_and_leaves_the_others_alone(split):
    base = np.full(steps(split), 0.05)
    blowup = base.copy()
    blowup[12:] = np.inf  # update 12 is in epoch 2 (9 updates per epoch)
    optimizer = {"type": "sgd", "momentum": 0.8}
    together = population(split, optimizer, [base, blowup, base * 0.5], [1, 2, 3])
    alone = population(split, optimizer, [base, base * 0.5], [1, 3])
    assert together.diverged_epoch.tolist() == [0, 2, 0]
    rows = together.rows(1)
    assert [r["epoch"] for r in rows] == [1, 2]
    assert math.isfinite(rows[0]["loss"]) and not math.isfinite(rows[1]["loss"])
    assert np.isnan(together.history["val_loss"][1, 2:]).all()
    for key, values in alone.history.items():
        np.testing.assert_allclose(together.history[key][[0, 2]], values, rtol=1e-6, err_msg=key)


def test_chunks_and_split_groups_do_not_change_results(split, monkeypatch):
    other = Split(split.x_train[::-1].copy(), split.y_train[::-1].copy(), split.x_val, split.y_val)
    tables = [np.full(steps(split), lr) for lr in (0.05, 0.1, 0.02)]
    seeds = [4, 5, 6]
    kwargs = dict(
        build_model=build_mlp,
        optimizer={"type": "sgd", "momentum": 0.9, "nesterov": True},
        lr=np.asarray(tables),
        init_seeds=seeds,
        order_seeds=seeds,
        epochs=EPOCHS,
        batch_size=BATCH,
        loss="binary_crossentropy",
        split_index=[0, 1, 0],
    )
    whole = train_population(splits=[split, other], **kwargs)
    assert whole.chunks == 1
    # chunks of 2 (the last one padded) and one split on the device at a time
    monkeypatch.setattr(chunks, "chunk_size", lambda n, per_trial, memory: 2)
    monkeypatch.setattr(chunks, "_split_bytes", lambda splits: 1 << 40)
    parts = train_population(splits=[split, other], **kwargs)
    assert parts.chunks == 2 and parts.chunk_size == 2
    np.testing.assert_allclose(parts.history["val_loss"], whole.history["val_loss"], rtol=1e-6)
    # the split index matters: trial 1 trained on reversed rows
    alone = train_population(splits=[other], **{**kwargs, "split_index": None})
    np.testing.assert_allclose(alone.history["loss"][1], whole.history["loss"][1], rtol=1e-6)
    assert not np.allclose(alone.history["loss"][0], whole.history["loss"][0])


def test_epochs_per_call_changes_no_number_and_compiles_once(split, monkeypatch):
    """A chunk trained one epoch a call (its state carried on the device from call to call)
    equals one call for all epochs, bit for bit (plateau, divergence, Nadam's
    ``u_product``), with one executable for every call and both chunks of trials; between
    calls the caller hears each epoch's latest values."""
    from lrlab.experiments.engines.population_chunks import Population, PopulationCaches

    monkeypatch.setattr(chunks, "chunk_size", lambda n, per_trial, memory: 2)
    blowup = np.full(steps(split), 0.05)
    blowup[12:] = np.inf  # trial 1 diverges in epoch 2
    tables = [np.full(steps(split), 0.02), blowup, np.full(steps(split), 0.01)]
    plateau = Plateau(factor=0.5, patience=0, mode="max")
    kwargs = dict(
        optimizer={"type": "nadam"},
        lr=np.asarray(tables),
        init_seeds=[4, 5, 6],
        order_seeds=[4, 5, 6],
        epochs=EPOCHS,
        batch_size=BATCH,
        loss="binary_crossentropy",
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy")],
        plateaus=[plateau, None, plateau],
        monitors=["val_accuracy"] * 3,
    )
    results, news = {}, []
    for per_call in (1, EPOCHS):
        caches = PopulationCaches()
        population = Population(
            build_mlp, [split], **kwargs, caches=caches, epochs_per_call=per_call
        )
        parts = list(population.run(news.append if per_call == 1 else None))
        assert [len(index) for index, _ in parts] == [2, 1]  # the last chunk padded
        assert len(population.program._executables) == 1
        # every leaf of the carried state has a row per trial, the update count too
        tv, ntv, *_, hyper, _ = population.abstract_args()
        carry = jax.eval_shape(population.program.init, tv, ntv, hyper)
        assert {a.shape[0] for a in jax.tree.leaves(carry)} == {2}
        assert carry["t"].shape == carry["opt"]["u_product"].shape == (2,)
        results[per_call] = train_population(
            build_mlp, [split], **kwargs, caches=caches, epochs_per_call=per_call
        )
        assert len(population.program._executables) == 1  # the rerun compiled nothing
    one, whole = results[1], results[EPOCHS]
    assert one.diverged_epoch.tolist() == whole.diverged_epoch.tolist() == [0, 2, 0]
    assert (one.scale < 1).any()  # the plateau acted
    for name, values in whole.history.items():
        np.testing.assert_array_equal(one.history[name], values, err_msg=name)
    np.testing.assert_array_equal(one.lr, whole.lr)
    np.testing.assert_array_equal(one.scale, whole.scale)
    # news after every call of each chunk: the epochs so far and each trial's latest values
    assert [(n.index.tolist(), n.epochs, n.of) for n in news] == [
        ([0, 1], 1, 3),
        ([0, 1], 2, 3),
        ([0, 1], 3, 3),
        ([2], 1, 3),
        ([2], 2, 3),
        ([2], 3, 3),
    ]
    for n in news:  # NaN from the epoch a trial diverged in (trial 1, epoch 2) on
        expected = one.history["val_accuracy"][n.index, n.epochs - 1].astype(np.float64)
        gone = one.diverged_epoch[n.index]
        expected[(gone > 0) & (gone <= n.epochs)] = np.nan
        np.testing.assert_array_equal(n.latest["val_accuracy"], expected)
    assert math.isfinite(news[0].latest["loss"][1]) and math.isnan(news[1].latest["loss"][1])
    with pytest.raises(ValueError, match="epochs_per_call must divide epochs"):
        Population(build_mlp, [split], **kwargs, epochs_per_call=2)


# --------------------------------------------------------------------------- plateau
@jax.jit
def _plateau_scan(metrics, lrs, params):
    state = PlateauArrays.initial(jnp)

    def body(s, x):
        s = plateau_transition(s, x[0], x[1], params, jnp)
        return s, s._asdict()

    return jax.lax.scan(body, state, jnp.stack([metrics, lrs], axis=1))[1]


dyadic = st.integers(0, 16).map(lambda k: k / 8)


@given(
    metrics=st.lists(st.one_of(dyadic, st.just(math.nan)), min_size=12, max_size=12),
    lrs=st.lists(st.sampled_from([0.5, 0.25, 0.125, 1.0]), min_size=12, max_size=12),
    factor=st.sampled_from([0.5, 0.25]),
    patience=st.integers(0, 3),
    min_delta=st.sampled_from([0.0, 0.125, 0.5]),
    cooldown=st.integers(0, 2),
    min_lr=st.sampled_from([0.0, 0.0625, 0.25]),
    mode=st.sampled_from(["min", "max"]),
)
def test_plateau_scale_follows_the_controller(
    metrics, lrs, factor, patience, min_delta, cooldown, min_lr, mode
):
    plateau = Plateau(
        factor=factor,
        patience=patience,
        min_delta=min_delta,
        cooldown=cooldown,
        min_lr=min_lr,
        mode=mode,
    )
    # float32/int32 arrays, as the population engine stacks them per trial
    params = PlateauParams(
        factor=np.float32(factor),
        patience=np.int32(patience),
        min_delta=np.float32(min_delta),
        cooldown=np.int32(cooldown),
        min_lr=np.float32(min_lr),
        mode_max=np.bool_(mode == "max"),
    )
    ours = _plateau_scan(jnp.asarray(metrics, jnp.float32), jnp.asarray(lrs, jnp.float32), params)
    controller = PlateauController(plateau)
    state = controller.initial()
    for i, (metric, lr) in enumerate(zip(metrics, lrs, strict=True)):
        state = controller.update(state, metric, lr)
        assert float(ours["scale"][i]) == state.scale
        assert int(ours["wait"][i]) == state.wait
        assert int(ours["cooldown_left"][i]) == state.cooldown_left
        assert int(ours["reductions"][i]) == state.reductions
        best = float(ours["best"][i])
        assert (math.isnan(best) and state.best is None) or best == state.best


# --------------------------------------------------------------------------- the engine
IONOSPHERE = f"""
dataset = "csv:{DATA}"
validation = 0.33
split = "tail"
standardize = false
"""


def _plan(
    tmp_path: Path,
    optimizer: str,
    schedules: dict,
    seeds=(0, 1),
    metrics=None,
    data=IONOSPHERE,
    model='mlp(hidden=[34], activation="relu", init="normal")',
    epochs=EPOCHS,
    batch_size=BATCH,
):
    from lrlab.experiments.config import load_config
    from lrlab.experiments.plan import build_plan

    toml = f"""
[experiment]
seeds = {list(seeds)}

[data]
{data}

[model]
spec = '{model}'

[training]
epochs = {epochs}
batch_size = {batch_size}
{"metrics = " + json.dumps(metrics) if metrics else ""}

[optimizers]
opt = {optimizer}

[schedules]
""" + "\n".join(f"{k} = {v}" for k, v in schedules.items())
    path = tmp_path / "exp.toml"
    path.write_text(toml)
    return build_plan(load_config(path))


PLATEAU_SCHEDULE = (
    '{ spec = "time_decay(0.3, decay=0.1)", '
    "plateau = \"plateau(factor=0.5, patience=0, min_lr=0.1, mode='max')\" }"
)


@pytest.mark.parametrize(
    "optimizer, schedule",
    [
        ('{ type = "sgd", momentum = 0.8, nesterov = true }', PLATEAU_SCHEDULE),
        (
            '{ type = "schedulefreeadamw", warmup_steps = 9, weight_decay = 0.004 }',
            '"constant(0.01)"',
        ),
    ],
    ids=["sgd-plateau", "schedulefreeadamw"],
)
def test_engine_rows_equal_the_keras_engines(tmp_path, optimizer, schedule):
    from lrlab.experiments.engines import get_engine

    plan = _plan(tmp_path, optimizer, {"decay_plateau": schedule})
    engine = get_engine("population")
    assert engine.unsupported(plan) is None
    ours = {r.trial.key: r for r in engine.run(plan, plan.trials)}
    theirs = {r.trial.key: r for r in get_engine("keras").run(plan, plan.trials)}
    assert set(ours) == set(theirs) == {t.key for t in plan.trials}
    for key, ref in theirs.items():
        got = ours[key]
        assert (got.status, got.engine) == (ref.status, "population")
        assert [r["epoch"] for r in got.epochs] == [r["epoch"] for r in ref.epochs]
        for mine, row in zip(got.epochs, ref.epochs, strict=True):
            assert mine.keys() == row.keys()
            for name, value in row.items():
                assert mine[name] == pytest.approx(value, rel=2e-5, abs=1e-6), (key, name)
        assert got.final.keys() == ref.final.keys()
    # the plateau acted: the lr of the last epoch is below the schedule's own
    if "plateau" in schedule:
        assert any(r.epochs[-1]["lr"] < 0.3 / (1 + 0.1 * 26) - 1e-6 for r in ours.values())


def test_a_cnn_with_dropout_equals_the_keras_engine(tmp_path):
    """Convolutions, pooling and dropout (its seed state carried per trial), multiclass."""
    from lrlab.experiments.engines import get_engine

    plan = _plan(
        tmp_path,
        '"adam"',
        {"step": '"step_decay(0.01, drop=0.5, every=4)"'},
        seeds=(0, 1),
        data='dataset = "digits"\nvalidation = 0.25\nlimit = 240',
        model="cnn(filters=[4], dense=[8], dropout=0.25)",
        epochs=2,
        batch_size=50,
    )
    ours = {r.trial.key: r for r in get_engine("population").run(plan, plan.trials)}
    theirs = {r.trial.key: r for r in get_engine("keras").run(plan, plan.trials)}
    for key, ref in theirs.items():
        assert ours[key].status == ref.status == "ok"
        for mine, row in zip(ours[key].epochs, ref.epochs, strict=True):
            for name, value in row.items():
                assert mine[name] == pytest.approx(value, rel=2e-5, abs=1e-6), (key, name)


def test_unsupported_settings_make_auto_choose_keras(tmp_path):
    from lrlab.experiments.runner import choose_engine

    plan = _plan(tmp_path, '{ type = "sgd", clipnorm = 1.0 }', {"c": '"constant(0.1)"'})
    reason = PopulationEngine().unsupported(plan)
    assert "clipnorm" in reason and 'engine = "keras"' in reason
    passed_over = []
    assert choose_engine("auto", plan, passed_over).name == "keras"
    assert passed_over == [f"not population: {reason}"]  # printed under the progress line
    with pytest.raises(LrlabError, match="population engine cannot run"):
        choose_engine("population", plan)
    ok = _plan(tmp_path, '"adam"', {"c": '"constant(0.1)"'})
    assert choose_engine("auto", ok).name == "population"


@pytest.mark.parametrize("text", ["lots", "-1MB", "1KB", "2XB", True])
def test_bad_memory_budgets_are_one_line_errors(text):
    with pytest.raises(LrlabError, match="memory must be") as info:
        parse_memory(text)
    assert "\n" not in str(info.value)


def _lrlab(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run_lrlab(*args, cwd=cwd, env=lrlab_env(COLUMNS="300"))


def test_cli_runs_the_population_engine_into_the_store_and_resumes(tmp_path):
    from lrlab.experiments.store import Store

    _plan(tmp_path, '{ type = "sgd", momentum = 0.8 }', {"c": '"constant(0.1)"'}, seeds=(0, 1, 2))
    out = tmp_path / "run"
    first = _lrlab(
        "run",
        "exp.toml",
        "--engine",
        "population",
        "--memory",
        "64MB",
        "-o",
        str(out),
        cwd=tmp_path,
    )
    assert first.returncode == 0, first.stderr
    assert "3 to run with population engine" in " ".join(first.stderr.split())
    with Store.open(out) as store:
        trials = store.trials()
        assert len(trials) == 3
        assert {t.engine for t in trials} == {"population"}
        assert {t.status for t in trials} == {"ok"}
        epochs = store.epochs()
        assert all(len(rows) == EPOCHS for rows in epochs.values())
    again = _lrlab("run", "exp.toml", "-o", str(out), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "3 already stored, 0 to run" in " ".join(again.stderr.split())
    bad = _lrlab("run", "exp.toml", "--memory", "lots", "-o", str(tmp_path / "x"), cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "lrlab: error: memory must be a size like 512MB or 2GB, got 'lots'"
    ]
    assert not (tmp_path / "x").exists()


def test_a_stop_between_a_chunks_calls_ends_the_run_without_that_chunk(tmp_path, monkeypatch):
    """Chunks of 2 of 4 trials, one epoch a call: a stop requested once the first chunk is
    stored ends the run after the second chunk's first call; the first chunk's trials are
    the run's results, the second's are not (they train again on resume)."""
    import signal

    from lrlab.experiments.stopping import Stopped, StopRequest

    monkeypatch.setattr(chunks, "chunk_size", lambda n, per_trial, memory: 2)
    monkeypatch.setattr(chunks, "epochs_per_call", lambda epochs, work: 1)
    plan = _plan(tmp_path, '{ type = "sgd" }', {"c": '"constant(0.1)"'}, seeds=(0, 1, 2, 3))
    stop, lines = StopRequest(), []

    def progress(line: str) -> None:
        lines.append(line)
        if line.startswith("2/4 trials"):  # the first chunk is stored: Ctrl-C
            stop.signum = signal.SIGINT

    engine = PopulationEngine(progress=progress, stop=stop)
    results = []
    with pytest.raises(Stopped):
        for result in engine.run(plan, plan.trials):
            results.append(result)
    assert [r.trial for r in results] == plan.trials[:2]
    assert {r.status for r in results} == {"ok"}
    assert lines[-1].startswith("2/4 trials")  # the second chunk said nothing after a call


def test_a_model_function_that_cannot_vmap_is_refused_with_the_fix(tmp_path, monkeypatch):
    """A layer that runs in Keras' jitted fit but has no batching rule: auto takes keras."""
    from lrlab.experiments.runner import choose_engine

    (tmp_path / "hostmodel.py").write_text(
        "import jax, keras, numpy as np\n"
        "class HostTanh(keras.layers.Layer):\n"
        "    def call(self, x):\n"
        "        shape = jax.ShapeDtypeStruct(x.shape, x.dtype)\n"
        "        return jax.pure_callback(np.tanh, shape, x)\n"
        "def build(input_shape, n_outputs):\n"
        "    return keras.Sequential([keras.Input(input_shape), keras.layers.Dense(4),\n"
        "        HostTanh(), keras.layers.Dense(n_outputs, activation='sigmoid')])\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    plan = _plan(tmp_path, '"adam"', {"c": '"constant(0.1)"'}, seeds=(0,))
    plan.model = parse_model("hostmodel:build")
    reason = PopulationEngine().unsupported(plan)
    assert reason.startswith("hostmodel:build does not run under jax.vmap (")
    assert reason.endswith('use engine = "keras"') and "\n" not in reason
    passed_over = []
    assert choose_engine("auto", plan, passed_over).name == "keras"
    assert passed_over == [f"not population: {reason}"]  # printed under the progress line
