"""The Keras engine: real fits on Ionosphere, read back the lr used, deterministic by seed,
divergence and failures recorded as results."""

from __future__ import annotations

import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

from datafiles import IONOSPHERE_CSV
from lrlab.experiments.config import load_config
from lrlab.experiments.engines import get_engine
from lrlab.experiments.engines.keras import fit_trial
from lrlab.experiments.plan import build_plan

IONO = IONOSPHERE_CSV


def make_plan(tmp_path: Path, schedules: str, *, epochs: int = 2, extra: str = "", opt=None):
    opt = opt or '{ type = "sgd", momentum = 0.8 }'
    text = f"""
    [experiment]
    seeds = 2
    {extra}
    [data]
    dataset = "csv:{IONO}"
    validation = 0.33
    [model]
    spec = 'mlp(hidden=[34])'
    [training]
    epochs = {epochs}
    batch_size = 28
    [optimizers]
    sgd = {opt}
    [schedules]
    """
    path = tmp_path / "exp.toml"
    path.write_text(textwrap.dedent(text) + textwrap.dedent(schedules))
    return build_plan(load_config(path), check_model=False)


class LrProbe(keras.callbacks.Callback):
    """Reads the lr the optimizer will use for the coming update."""

    def __init__(self):
        super().__init__()
        self.lrs: list[float] = []
        self.steps: list[int] = []

    def on_train_batch_begin(self, batch, logs=None):
        sync = getattr(self.model, "jax_state_sync", None)
        if sync is not None:
            sync()
        opt = self.model.optimizer
        self.steps.append(int(keras.ops.convert_to_numpy(opt.iterations)))
        self.lrs.append(float(keras.ops.convert_to_numpy(opt.learning_rate)))


def test_every_update_uses_the_schedule(tmp_path):
    plan = make_plan(tmp_path, 'decay = "time_decay(0.1, decay=0.05)"')
    probe = LrProbe()
    rows = fit_trial(plan, plan.trials[0], callbacks=[probe])
    steps = plan.total_steps
    assert probe.steps == list(range(steps))
    expected = (0.1 / (1 + 0.05 * np.arange(steps))).astype(np.float32)
    np.testing.assert_allclose(probe.lrs, expected, rtol=1e-6)
    # the stored per-epoch lr is the lr of the epoch's last update
    assert [r["lr"] for r in rows] == pytest.approx(
        [expected[plan.steps_per_epoch - 1], expected[-1]], rel=1e-6
    )


def test_epoch_unit_and_plateau_scale(tmp_path):
    # mode=max on val_loss: it "improves" only on the first evaluation, then every epoch
    # end without improvement halves the scale (patience=0)
    plan = make_plan(
        tmp_path,
        'p = { spec = "step_decay(0.1, drop=0.5, every=2)", '
        'plateau = "plateau(factor=0.5, patience=0, mode=\\"max\\")" }',
        epochs=4,
        extra="",
    )
    text = plan.config.text.replace("batch_size = 28", 'batch_size = 28\nschedule_unit = "epoch"')
    path = tmp_path / "epoch.toml"
    path.write_text(text)
    plan = build_plan(load_config(path), check_model=False)
    probe = LrProbe()
    rows = fit_trial(plan, plan.trials[0], callbacks=[probe])
    spe = plan.steps_per_epoch
    schedule = [0.1, 0.1, 0.05, 0.05]  # step_decay per epoch
    scale = [1.0, 1.0, 0.5, 0.25]  # reductions at the ends of epochs 2 and 3
    expected = np.repeat(np.array(schedule) * np.array(scale), spe)
    np.testing.assert_allclose(probe.lrs, expected, rtol=1e-6)
    assert [r["lr"] for r in rows] == pytest.approx(list(expected[spe - 1 :: spe]))


def test_same_trial_twice_gives_the_same_metrics_other_seeds_do_not(tmp_path):
    plan = make_plan(tmp_path, 'constant = "constant(0.1)"')
    a = fit_trial(plan, plan.trials[0])
    b = fit_trial(plan, plan.trials[0])
    c = fit_trial(plan, plan.trials[1])
    assert a == b
    assert a != c
    assert all(np.isfinite(r["val_loss"]) for r in a)


def test_divergence_is_a_result_with_its_epoch(tmp_path):
    plan = make_plan(tmp_path, 'huge = "constant(1e30)"', epochs=4)
    results = list(get_engine("keras").run(plan, plan.trials[:1]))
    (r,) = results
    assert r.status == "diverged" and r.diverged_epoch == 1
    assert len(r.epochs) == 1  # training stopped at the bad epoch
    assert r.engine == "keras"


def test_an_exception_fails_one_trial_and_the_others_go_on(tmp_path):
    plan = make_plan(tmp_path, 'constant = "constant(0.1)"', epochs=1)
    model = plan.model

    class Flaky:
        text = "flaky"

        def build(self, input_shape, task, n_classes, seed):
            if seed == 0:
                raise RuntimeError("boom\nsecond line")
            return model.build(input_shape, task, n_classes, seed)

    plan.model = Flaky()
    results = list(get_engine("keras").run(plan, plan.trials))
    assert [r.status for r in results] == ["failed", "ok"]
    assert results[0].message == "RuntimeError: boom"
    assert results[1].final["val_accuracy"] > 0.5


def test_engine_options_go_to_the_engines_that_take_them():
    from lrlab.experiments.engines.keras import KerasEngine
    from lrlab.experiments.engines.population import PopulationEngine

    population = get_engine("population", memory=64 << 20)
    assert isinstance(population, PopulationEngine) and population.memory == 64 << 20
    assert isinstance(get_engine("keras", memory=64 << 20), KerasEngine)  # not an option of it
