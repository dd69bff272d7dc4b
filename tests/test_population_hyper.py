"""Optimizer hyperparameters as per-trial data: trials whose optimizers differ only in
numbers (momentum, betas, epsilon, ...) are one group, one compiled program, and each
trial computes exactly what it computes in a population of its own configuration.
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from lrlab.experiments.engines.population import PopulationEngine, _optimizer_groups
from lrlab.experiments.engines.population_chunks import PopulationCaches, train_population
from test_population_engine import BATCH, EPOCHS, _plan, build_mlp, split, steps

__all__ = ["split"]  # the fixture, shared with test_population_engine

SGD = [{"type": "sgd", "momentum": m} for m in (0.5, 0.9, 0.5)]
ADAM = [{"type": "adam", "beta_2": b} for b in (0.99, 0.999, 0.99)]


def test_a_group_mixing_numbers_is_one_program_giving_each_trial_its_own_numbers(split):
    caches = PopulationCaches()
    tables = np.asarray([np.full(steps(split), lr) for lr in (0.05, 0.1, 0.02)])
    seeds = [4, 5, 6]

    def run(optimizer, lr_scale):
        return train_population(
            build_mlp,
            [split],
            optimizer=optimizer,
            lr=tables * lr_scale,
            init_seeds=seeds,
            order_seeds=seeds,
            epochs=EPOCHS,
            batch_size=BATCH,
            loss="binary_crossentropy",
            metrics=[keras.metrics.BinaryAccuracy(name="accuracy")],
            caches=caches,
        )

    for configs, lr_scale in ((SGD, 1.0), (ADAM, 0.1)):
        mixed = run(configs, lr_scale)
        assert mixed.compile_seconds > 0
        for config in {str(c): c for c in configs}.values():
            alone = run(config, lr_scale)  # every trial with this one configuration
            assert alone.compile_seconds == 0  # the mixed group's executable, reused
            rows = [i for i, c in enumerate(configs) if c == config]
            for key, values in mixed.history.items():
                np.testing.assert_array_equal(values[rows], alone.history[key][rows], key)
        # the numbers matter: trial 1 trained with another momentum / beta_2
        other = run(configs[0], lr_scale)
        assert not np.array_equal(mixed.history["loss"][1], other.history["loss"][1])
    assert caches.programs.built == 2  # sgd with momentum, adam: one program each


def test_the_engine_groups_by_structure_and_equals_the_keras_engine(tmp_path):
    from lrlab.experiments.engines import get_engine

    configs = [*SGD[:2], *ADAM[:2], {"type": "sgd"}]
    inline = [", ".join(f"{k} = {json.dumps(v)}" for k, v in c.items()) for c in configs]
    tables = "\n".join(f"o{i} = {{ {text} }}" for i, text in enumerate(inline))
    schedule = {"c": '"cosine(0.05, decay_steps=18)"'}
    # _plan writes "opt = <its optimizer argument>": the first table, then the others
    plan = _plan(tmp_path, tables.removeprefix("o0 = "), schedule, seeds=(0,), epochs=2)
    assert len(plan.trials) == 5
    groups = _optimizer_groups(plan.trials)
    assert [len(g) for g in groups.values()] == [2, 2, 1]  # momentum sgd, adam, plain sgd
    engine = PopulationEngine()
    ours = {r.trial.key: r for r in engine.run(plan, plan.trials)}
    assert engine.caches.programs.built == 3
    theirs = {r.trial.key: r for r in get_engine("keras").run(plan, plan.trials)}
    assert set(ours) == set(theirs)
    for key, ref in theirs.items():
        assert ours[key].status == ref.status == "ok"
        for mine, row in zip(ours[key].epochs, ref.epochs, strict=True):
            for name, value in row.items():
                assert mine[name] == pytest.approx(value, rel=2e-5, abs=1e-6), (key, name)
