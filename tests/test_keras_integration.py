"""lrlab.keras: real Keras 3 fits whose weights reveal the lr of every update.

The probe model is ``Dense(1, use_bias=False, kernel_initializer="zeros")`` on one-hot
inputs with loss ``mean(y_pred)`` and plain SGD: update ``j`` of an epoch (batch size 1,
no shuffling) sees input ``e_j``, so its gradient is ``e_j`` and it sets weight ``j`` to
``0 - lr_j``. The weights after an epoch are minus the lrs that the jitted train step
actually used, exact in float32; :class:`LrProbe` reads them and zeroes them at every
epoch end.
"""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

import lrlab
import lrlab.keras
from cases import SCHEDULE_CASES
from datafiles import IONOSPHERE_CSV
from lrlab.errors import LrlabError
from lrlab.schedules import REGISTRY

# One representative instance of every registered schedule (plateau is reactive: it is
# tested through the callback below), plus variants whose code paths differ (tests/cases.py).
REPRESENTATIVE = {name: spec for name, spec in SCHEDULE_CASES.items() if "-" not in name}
VARIANTS = [spec for name, spec in SCHEDULE_CASES.items() if "-" in name]
CASES = [*REPRESENTATIVE.values(), *VARIANTS]
N = 40  # updates per probe fit


def representative_schedules() -> dict[str, lrlab.Schedule]:
    return {name: lrlab.parse(spec) for name, spec in REPRESENTATIVE.items()}


def test_every_registered_schedule_has_a_representative():
    curves = {name for name, cls in REGISTRY.items() if not cls.reactive}
    assert set(representative_schedules()) == curves, "add the new schedule to REPRESENTATIVE"


class LrProbe(keras.callbacks.Callback):
    """Collects ``-weights`` (the lrs of the epoch's updates) and zeroes them, per epoch."""

    def __init__(self):
        super().__init__()
        self.lrs: list[float] = []

    def on_epoch_end(self, epoch, logs=None):
        (w,) = self.model.get_weights()
        self.lrs.extend((-w[:, 0]).tolist())
        self.model.set_weights([np.zeros_like(w)])


def probe_model(width: int, learning_rate) -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input((width,)),
            keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=learning_rate),
        loss=lambda y_true, y_pred: keras.ops.mean(y_pred),
    )
    return model


def probe_fit(model: keras.Model, epochs: int = 1, callbacks=(), **kwargs):
    """Fit ``epochs`` epochs of ``width`` updates each; return (probe lrs, history)."""
    width = model.input_shape[-1]
    probe = LrProbe()
    x = np.eye(width, dtype="float32")
    y = np.zeros((width, 1), dtype="float32")
    history = model.fit(
        x,
        y,
        batch_size=1,
        epochs=epochs,
        shuffle=False,
        verbose=0,
        callbacks=[*callbacks, probe],
        **kwargs,
    )
    return np.asarray(probe.lrs), history


def f32(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).astype(np.float32)


# --------------------------------------------------------------------------- schedule()
@pytest.mark.parametrize("spec", CASES)
def test_schedule_as_learning_rate_is_the_lr_of_every_update(spec):
    """The optimizer evaluates the schedule in float32 inside the jitted step."""
    expected = lrlab.parse(spec).curve(N)
    used, _ = probe_fit(probe_model(N, lrlab.keras.schedule(spec)))
    np.testing.assert_allclose(used, expected, rtol=2e-5, atol=1e-6 * expected.max())


def test_probe_detects_an_lr_lost_by_the_jitted_state():
    """A callback that assigns the lr without syncing JAX state: the probe sees stale lrs."""

    class Unsynced(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self._model.optimizer.learning_rate = 0.01 * (batch + 1)  # no jax_state_sync

    used, _ = probe_fit(probe_model(5, 0.5), callbacks=[Unsynced()])
    intended = f32([0.01, 0.02, 0.03, 0.04, 0.05])
    if keras.backend.backend() == "jax":
        assert used.tolist() == [used[0]] * 5 and not np.array_equal(used, intended)
    else:
        np.testing.assert_array_equal(used, intended)


def test_schedule_config_is_the_canonical_spec_and_round_trips():
    s = lrlab.keras.schedule("warmup( 5 , cosine(0.1,decay_steps=95) )")
    assert s.get_config() == {"spec": "warmup(5, cosine(0.1, decay_steps=95))"}
    again = lrlab.keras.KerasSchedule.from_config(s.get_config())
    assert again == s and again.schedule == s.schedule
    config = keras.optimizers.schedules.serialize(s)
    assert config["registered_name"] == "lrlab>KerasSchedule"
    assert keras.optimizers.schedules.deserialize(config) == s


def test_schedule_rejects_a_plateau_and_bad_specs_with_lrlab_errors():
    with pytest.raises(LrlabError, match="no curve"):
        lrlab.keras.schedule("plateau(patience=2)")
    with pytest.raises(LrlabError, match="bad spec"):
        lrlab.keras.schedule("cosine(0.1, decay_steps=")


def test_legacy_decay_is_keras2_per_update_time_decay():
    used, _ = probe_fit(probe_model(N, lrlab.keras.legacy_decay(0.1, 0.002)))
    keras2 = 0.1 / (1.0 + 0.002 * np.arange(N))  # Keras 2: lr / (1 + decay * iterations)
    np.testing.assert_allclose(used, keras2, rtol=1e-6)
    assert lrlab.keras.legacy_decay(0.1, 0.002).spec == "time_decay(0.1, decay=0.002)"


# --------------------------------------------------------------------------- save / load
def _run(code: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "KERAS_BACKEND": keras.backend.backend(), **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


LOAD = """
    import json, sys
    {imports}
    model = keras.saving.load_model(sys.argv[-1] if len(sys.argv) > 1 else {path!r})
    lr = model.optimizer._learning_rate
    print(json.dumps([type(lr).__name__, lr.get_config(),
                      [float(lr(t)) for t in range(6)],
                      int(model.optimizer.iterations)]))
"""


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    spec = "warmup(2, cosine(0.1, decay_steps=4))"
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(lrlab.keras.schedule(spec)), loss="mse")
    model.fit(np.eye(3), np.ones((3, 1)), batch_size=1, verbose=0)
    path = tmp_path_factory.mktemp("keras") / "model.keras"
    model.save(path)
    return path, spec


@pytest.mark.parametrize("imports", ["import lrlab\nimport keras", "import keras\nimport lrlab"])
def test_saved_model_loads_in_a_fresh_process_that_only_imported_lrlab(saved_model, imports):
    path, spec = saved_model
    done = _run(LOAD.format(imports=imports.replace("\n", "\n    "), path=str(path)))
    assert done.returncode == 0, done.stderr[-2000:]
    name, config, values, iterations = json.loads(done.stdout.strip().splitlines()[-1])
    assert (name, config, iterations) == ("KerasSchedule", {"spec": spec}, 3)
    np.testing.assert_allclose(values, lrlab.parse(spec).curve(6), rtol=1e-6, atol=1e-9)


def test_loading_without_lrlab_fails_so_the_registration_is_what_makes_it_work(saved_model):
    path, _ = saved_model
    done = _run(LOAD.format(imports="import keras", path=str(path)))
    assert done.returncode != 0 and "KerasSchedule" in done.stderr


# --------------------------------------------------------------------------- Scheduler
@pytest.fixture(scope="module")
def shared_probe():
    """One compiled probe model reused by the callback tests (no retracing per test)."""
    return probe_model(8, 0.5)


def reset(model: keras.Model, lr: float = 0.5) -> keras.Model:
    model.set_weights([np.zeros((model.input_shape[-1], 1), "float32")])
    model.optimizer.iterations.assign(0)
    model.optimizer.learning_rate = lr
    return model


@pytest.mark.parametrize("spec", CASES)
def test_scheduler_sets_the_lr_of_every_update(shared_probe, spec):
    model = reset(shared_probe)
    scheduler = lrlab.keras.Scheduler(spec)
    used, history = probe_fit(model, epochs=5, callbacks=[scheduler])
    expected = f32(lrlab.parse(spec).curve(N))
    np.testing.assert_array_equal(used, expected)  # float64 value rounded once to float32
    np.testing.assert_array_equal(scheduler.lrs, expected)
    assert history.history["learning_rate"] == expected[7::8].tolist()  # last update of epochs


def test_scheduler_per_epoch_matches_keras_learning_rate_scheduler(shared_probe):
    spec = "step_decay(0.1, drop=0.5, every=2)"
    s = lrlab.parse(spec)
    ours, history = probe_fit(
        reset(shared_probe), epochs=5, callbacks=[lrlab.keras.Scheduler(spec, per="epoch")]
    )
    keras_cb = keras.callbacks.LearningRateScheduler(lambda epoch: s(epoch))
    theirs, keras_history = probe_fit(reset(shared_probe), epochs=5, callbacks=[keras_cb])
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(ours, np.repeat(f32([s(e) for e in range(5)]), 8))
    assert history.history["learning_rate"] == keras_history.history["learning_rate"]


def test_scheduler_steps_per_epoch_evaluates_the_spec_at_fractional_epochs(shared_probe):
    spec = "exp_decay(0.1, k=0.5)"
    used, _ = probe_fit(
        reset(shared_probe),
        epochs=3,
        callbacks=[lrlab.keras.Scheduler(spec, steps_per_epoch=8)],
    )
    np.testing.assert_array_equal(used, f32(0.1 * np.exp(-0.5 * np.arange(24) / 8)))


def test_a_second_fit_continues_the_schedule_from_optimizer_iterations(shared_probe):
    model = reset(shared_probe)
    scheduler = lrlab.keras.Scheduler("linear(0.1, 0.0, steps=32)")
    first, _ = probe_fit(model, epochs=2, callbacks=[scheduler])
    second, _ = probe_fit(model, epochs=2, callbacks=[scheduler])
    curve = f32(lrlab.parse("linear(0.1, 0.0, steps=32)").curve(32))
    np.testing.assert_array_equal(np.concatenate([first, second]), curve)


class Scripted(keras.callbacks.Callback):
    """Writes ``logs['scripted'] = values[epoch]`` (placed before the Scheduler)."""

    def __init__(self, values):
        super().__init__()
        self.values = values

    def on_epoch_end(self, epoch, logs=None):
        logs["scripted"] = self.values[epoch]


# Expected scales are traced by hand with Keras ReduceLROnPlateau's rules: an improvement
# beats best by more than min_delta; otherwise wait += 1 outside cooldown, and on
# wait >= patience the scale is multiplied by factor, wait resets and cooldown starts;
# a reduction never takes the lr below min_lr. scale[e] is the scale used in epoch e.
PLATEAU_CASES = {
    # patience counts: the reduction comes on the 2nd stalled epoch; cooldown=1 delays
    # the count by one epoch after each reduction.
    "patience_cooldown": (
        "plateau(factor=0.5, patience=2, cooldown=1)",
        [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.8, 0.85, 0.85, 0.85],
        [1, 1, 1, 1, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125],
    ),
    # min_lr: 1 -> 0.5 -> 0.3 (floored, not 0.25) -> no further reduction
    "min_lr": (
        "plateau(factor=0.5, patience=1, min_lr=0.3)",
        [1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        [1, 1, 0.5, 0.3, 0.3, 0.3],
    ),
    # mode max: rising accuracy is an improvement, a fall or a tie within min_delta is not
    "mode_max": (
        "plateau(factor=0.1, patience=1, mode='max')",
        [0.5, 0.6, 0.6, 0.7, 0.65, 0.9],
        [1, 1, 1, 0.1, 0.1, 0.01],
    ),
}


@pytest.mark.parametrize("case", sorted(PLATEAU_CASES))
def test_plateau_composes_with_a_schedule_on_a_scripted_metric(shared_probe, case):
    plateau, metrics, scales = PLATEAU_CASES[case]
    spec = "constant(1.0)" if case == "min_lr" else "cosine(1.0, decay_steps=100, alpha=0.5)"
    scheduler = lrlab.keras.Scheduler(spec, plateau=plateau, monitor="scripted")
    used, _ = probe_fit(
        reset(shared_probe), epochs=len(metrics), callbacks=[Scripted(metrics), scheduler]
    )
    t = np.arange(8 * len(metrics))
    expected = lrlab.parse(spec).curve(len(t)) * np.repeat(scales, 8)
    np.testing.assert_array_equal(used, f32(expected))


@pytest.mark.parametrize("case", sorted(PLATEAU_CASES))
def test_bare_plateau_matches_keras_reduce_lr_on_plateau(shared_probe, case):
    plateau, metrics, _ = PLATEAU_CASES[case]
    p = lrlab.parse(plateau)
    ours, _ = probe_fit(
        reset(shared_probe, lr=1.0),
        epochs=len(metrics),
        callbacks=[Scripted(metrics), lrlab.keras.Scheduler(plateau, monitor="scripted")],
    )
    reduce = keras.callbacks.ReduceLROnPlateau(
        monitor="scripted",
        factor=p.factor,
        patience=p.patience,
        cooldown=p.cooldown,
        min_lr=p.min_lr,
        min_delta=p.min_delta,
        mode=p.mode,
    )
    theirs, _ = probe_fit(
        reset(shared_probe, lr=1.0), epochs=len(metrics), callbacks=[Scripted(metrics), reduce]
    )
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def test_plateau_with_per_epoch_schedule(shared_probe):
    metrics = [1.0, 1.0, 1.0, 1.0]
    scheduler = lrlab.keras.Scheduler(
        "exp_decay(1.0, k=0.1)",
        per="epoch",
        plateau="plateau(factor=0.5, patience=1)",
        monitor="scripted",
    )
    used, _ = probe_fit(reset(shared_probe), epochs=4, callbacks=[Scripted(metrics), scheduler])
    expected = [np.exp(-0.1 * e) * s for e, s in enumerate([1, 1, 0.5, 0.25])]
    np.testing.assert_array_equal(used, np.repeat(f32(expected), 8))
    assert scheduler.state.reductions == 3  # the last, at the end of epoch 3, is unused


def test_missing_monitor_is_a_clear_error(shared_probe):
    scheduler = lrlab.keras.Scheduler("constant(0.1)", plateau="plateau(patience=1)")
    with pytest.raises(
        LrlabError, match=r"monitor 'val_loss' is not in the epoch logs \(have: loss\)"
    ):
        probe_fit(reset(shared_probe), callbacks=[scheduler])


def test_scheduler_refuses_an_optimizer_with_a_schedule():
    model = probe_model(2, lrlab.keras.schedule("constant(0.1)"))
    with pytest.raises(LrlabError, match="float learning_rate"):
        probe_fit(model, callbacks=[lrlab.keras.Scheduler("constant(0.1)")])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"per": "batch"}, "per must be 'step' or 'epoch'"),
        ({"per": "epoch", "steps_per_epoch": 10}, "only applies with per='step'"),
        ({"steps_per_epoch": 0}, "must be >= 1"),
        ({"steps_per_epoch": 2.5}, "must be an integer"),
        ({"plateau": "cosine(0.1, decay_steps=3)"}, "plateau must be a plateau"),
    ],
)
def test_scheduler_arguments_are_checked(kwargs, match):
    with pytest.raises(LrlabError, match=match):
        lrlab.keras.Scheduler("constant(0.1)", **kwargs)


def test_scheduler_per_step_refuses_steps_per_execution():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", steps_per_execution=2)
    with pytest.raises(LrlabError, match="steps_per_execution=1"):
        model.fit(
            np.zeros((4, 2)),
            np.zeros((4, 1)),
            verbose=0,
            callbacks=[lrlab.keras.Scheduler("constant(0.1)")],
        )


def test_scheduler_per_step_refuses_gradient_accumulation():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1, gradient_accumulation_steps=2), loss="mse")
    with pytest.raises(LrlabError, match="accumulates gradients"):
        model.fit(
            np.zeros((4, 2)),
            np.zeros((4, 1)),
            verbose=0,
            callbacks=[lrlab.keras.Scheduler("constant(0.1)")],
        )


# --------------------------------------------------------------------------- find_lr
def regression_model(optimizer) -> keras.Model:
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)]
    )
    model.compile(optimizer=optimizer, loss="mse")
    return model


@pytest.fixture(scope="module")
def regression_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 4)).astype("float32")
    y = (x @ np.array([1.0, -2.0, 0.5, 3.0]) + 0.1 * rng.normal(size=256)).astype("float32")
    return x, y[:, None]


def _state(model):
    return [np.array(w) for w in model.get_weights()] + [
        np.array(keras.ops.convert_to_numpy(v)) for v in model.optimizer.variables
    ]


def test_find_lr_restores_weights_and_optimizer_state_exactly(regression_data):
    x, y = regression_data
    keras.utils.set_random_seed(1)
    model = regression_model(keras.optimizers.Adam(learning_rate=0.003))
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)  # non-trivial Adam moments
    before = _state(model)
    result = lrlab.keras.find_lr(model, x, y, start=1e-5, end=10.0, steps=60, batch_size=32)
    after = _state(model)
    assert len(before) == len(after) and all(
        np.array_equal(a, b) for a, b in zip(before, after, strict=True)
    )
    # the ramp was lr_range(start, end, steps), read back from the optimizer
    ramp = f32(lrlab.parse("lr_range(1e-5, 10.0, steps=60)").curve(60))
    np.testing.assert_array_equal(result.lrs, ramp[: len(result.lrs)])


def test_find_lr_on_an_unbuilt_model_leaves_a_fresh_optimizer_state(regression_data):
    x, y = regression_data
    keras.utils.set_random_seed(2)
    fresh = regression_model(keras.optimizers.SGD(learning_rate=0.01, momentum=0.9))
    result = lrlab.keras.find_lr(fresh, x, y, steps=30, start=1e-4, end=1.0)
    assert len(result.lrs) == 30
    state = {v.name: np.array(keras.ops.convert_to_numpy(v)) for v in fresh.optimizer.variables}
    assert int(state.pop("iteration")) == 0
    assert float(state.pop("learning_rate")) == np.float32(0.01)
    assert state and all(not v.any() for v in state.values())  # momenta still zero


def test_find_lr_stops_on_divergence_and_suggests_an_lr_inside_the_descent(
    regression_data, tmp_path
):
    x, y = regression_data
    keras.utils.set_random_seed(3)
    model = regression_model(keras.optimizers.SGD(learning_rate=0.01))
    result = lrlab.keras.find_lr(model, x, y, start=1e-4, end=1e3, steps=100, batch_size=32)
    assert result.stopped_early and len(result.lrs) < 100
    assert result.smoothed[-1] > 4 * np.nanmin(result.smoothed[:-1])
    best = result.lrs[np.argmin(result.smoothed)]
    assert result.min_over_10 == pytest.approx(best / 10)
    assert 1e-4 < result.steepest <= best  # the loss falls fastest before its minimum
    assert result.suggestion == result.steepest
    assert result.plot(tmp_path / "find_lr.png") and (tmp_path / "find_lr.png").stat().st_size
    assert 1e-3 < result.suggestion < 1.0  # SGD on standardized linear data


def test_find_lr_refuses_a_schedule_optimizer_and_an_uncompiled_model(regression_data):
    x, y = regression_data
    model = regression_model(
        keras.optimizers.SGD(learning_rate=lrlab.keras.schedule("constant(0.1)"))
    )
    with pytest.raises(LrlabError, match="float learning_rate"):
        lrlab.keras.find_lr(model, x, y, steps=5)
    bare = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    with pytest.raises(LrlabError, match="compile the model first"):
        lrlab.keras.find_lr(bare, x, y, steps=5)
    with pytest.raises(LrlabError, match="steps"):
        lrlab.keras.find_lr(model, x, y, steps=1)


# --------------------------------------------------------------------------- examples
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
IONOSPHERE = IONOSPHERE_CSV


@pytest.mark.skipif(not IONOSPHERE.is_file(), reason=f"no Ionosphere data at {IONOSPHERE}")
@pytest.mark.parametrize(
    "name, args",
    [
        ("keras_time_decay", ["--epochs", "2"]),
        ("keras_step_decay", ["--epochs", "2"]),
        ("keras_plateau", ["--epochs", "3"]),
        ("keras_seed_schedules", ["--epochs", "1", "--only", "step decay"]),
        ("keras_find_lr", ["--steps", "20"]),
    ],
)
def test_examples_run(name, args, capsys):
    main = runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name="example")["main"]
    result = main([*args, "--data", f"csv:{IONOSPHERE}"])
    out = capsys.readouterr().out
    assert out.strip()
    if name == "keras_time_decay":
        assert "reloaded schedule: {'spec': 'time_decay(0.1, decay=0.002)'}" in out
        assert "18 updates; next lr 0.096525" in out  # 0.1 / (1 + 0.002 * 18)
    if name == "keras_step_decay":
        assert result.history["learning_rate"] == [np.float32(0.1)] * 2
    if name == "keras_seed_schedules":
        assert list(result) == ["step decay (tutorial)"]
    if name == "keras_find_lr":
        assert len(result.lrs) == 20 and "weights restored: True" in out


# --------------------------------------------------------------------------- torch backend
TORCH_SCRIPT = """
    import json
    import numpy as np
    import lrlab, lrlab.keras, keras
    assert keras.backend.backend() == "torch"
    def probe(lr, callbacks=()):
        m = keras.Sequential([keras.Input((6,)),
                              keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")])
        m.compile(optimizer=keras.optimizers.SGD(learning_rate=lr),
                  loss=lambda t, p: keras.ops.mean(p))
        m.fit(np.eye(6, dtype="float32"), np.zeros((6, 1), "float32"), batch_size=1,
              shuffle=False, verbose=0, callbacks=list(callbacks))
        return (-m.get_weights()[0][:, 0]).tolist()
    spec = "warmup(2, cosine(0.1, decay_steps=4))"
    print(json.dumps([probe(lrlab.keras.schedule(spec)),
                      probe(0.5, [lrlab.keras.Scheduler(spec)])]))
"""


def test_torch_backend_schedule_and_scheduler():
    pytest.importorskip("torch")
    done = _run(TORCH_SCRIPT, {"KERAS_BACKEND": "torch"})
    assert done.returncode == 0, done.stderr[-2000:]
    in_graph, callback = json.loads(done.stdout.strip().splitlines()[-1])
    expected = lrlab.parse("warmup(2, cosine(0.1, decay_steps=4))").curve(6)
    np.testing.assert_allclose(in_graph, expected, rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(callback, f32(expected))
