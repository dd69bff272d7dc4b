"""Helpers of the migrate tests: the seed tutorials, the CLI, the seed 002 model's lr.

The seed tutorials live in ``../shared/seeds`` beside the data folder of
:mod:`datafiles`; tests that need them are skipped when it is missing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from datafiles import IONOSPHERE_CSV, SHARED_DATA

SHARED = SHARED_DATA.parent
SEEDS = SHARED / "seeds"
needs_seeds = pytest.mark.skipif(not SEEDS.is_dir(), reason=f"seed tutorials not at {SEEDS}")


def seed(prefix: str) -> Path:
    (path,) = SEEDS.glob(f"{prefix}_*.txt")
    return path


def evaluate(expression: str, namespace: dict):
    """Run a replacement line that lrlab itself wrote (tests only; lrlab never evals)."""
    return eval(compile(expression, "<replacement>", "eval"), dict(namespace))  # noqa: S307


EPOCHS, BATCH = 3, 28
N_TRAIN = int(351 * (1 - 0.33))  # Keras' validation_split keeps the first rows
PER_EPOCH = -(-N_TRAIN // BATCH)


def ionosphere():
    from lrlab.experiments.datasets import load_dataset

    data = load_dataset(f"csv:{IONOSPHERE_CSV}")  # 'b' -> 0, 'g' -> 1, as LabelEncoder
    assert len(data.x) == 351
    return data.x, data.y.astype("float32")


class BeforeLastUpdate(keras.callbacks.Callback):
    """Weights and SGD momenta just before the last update of an EPOCHS-epoch fit."""

    def on_train_batch_begin(self, batch, logs=None):
        if int(self.model.optimizer.iterations) == EPOCHS * PER_EPOCH - 1:
            opt = self.model.optimizer
            self.iterations = int(opt.iterations)
            self.weights = [np.array(v) for v in self.model.trainable_variables]
            self.momenta = [np.array(m) for m in opt.momentums]


def assert_trained_with_keras2_lr(model, sgd, probe, x, y, lr=0.1, decay=0.002, momentum=0.8):
    """The lr of the last update, recovered from SGD's ``m' = momentum m - lr g``, is
    Keras 2's ``lr / (1 + decay * iterations)`` (``iterations`` = updates before it)."""
    import jax

    assert int(sgd.iterations) == EPOCHS * PER_EPOCH == probe.iterations + 1
    last = slice((PER_EPOCH - 1) * BATCH, N_TRAIN)

    def loss(weights):
        pred, _ = model.stateless_call(weights, [], x[last])
        return keras.ops.mean(keras.losses.binary_crossentropy(y[last, None], pred))

    grads = jax.grad(loss)(probe.weights)
    after = [np.array(m) for m in sgd.momentums]
    ratios = [
        ((momentum * m0 - m1) / g)[np.abs(g) > 1e-3 * np.abs(g).max()]
        for m0, m1, g in zip(probe.momenta, after, grads, strict=True)
    ]
    lr_used = float(np.median(np.concatenate(ratios)))
    keras2 = lr / (1 + decay * probe.iterations)
    assert lr_used == pytest.approx(keras2, rel=1e-4)  # neighbours differ by 1.9e-3
    assert not lr_used == pytest.approx(lr / (1 + decay * (probe.iterations - 1)), rel=1e-4)
    # the lr logged for the epoch and the next lr, from the optimizer's own schedule
    next_lr = float(keras.ops.convert_to_numpy(sgd.learning_rate))
    assert next_lr == pytest.approx(lr / (1 + decay * int(sgd.iterations)), rel=1e-6)
    return lr_used


def lrlab_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``lrlab migrate ARGS`` as a subprocess (stdout and stderr captured apart)."""
    return subprocess.run(
        [sys.executable, "-m", "lrlab.cli", "migrate", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "KERAS_BACKEND": "jax"},
        timeout=120,
    )
