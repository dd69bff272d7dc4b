"""Seed 004 as the tutorial does it: a new head on a frozen pretrained base, lrs swept.

The tutorial (``make_model``) loads Xception pretrained on ImageNet, freezes it
(``base_model.trainable = False``), calls it with ``training=False``, and trains a new
``Dense`` head at lr 1e-4, 1e-3, 1e-2 and 0.1. Offline and small, the same shape:

- :func:`pretrain` trains a small CNN on scikit-learn's digits 0-4 (seeded, CPU) and
  saves its convolution base, without the 0-4 output layer, as ``seed004_base.keras``;
- :func:`transfer_model` (the experiment's ``[model] spec``) loads that base, freezes
  it, and puts a new head on it for digits 5-9 (``[data] classes``); it pre-trains the
  base first when the file is not there yet (the same file every time: fixed seed, the
  data bundled with scikit-learn).

Make the base alone (e.g. to look at it):  python examples/seed004_pretrain.py
Run the sweep:  lrlab run examples/seed004_transfer.toml
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

BASE_FILE = Path(__file__).with_name("seed004_base.keras")
PRETRAIN_CLASSES = (0, 1, 2, 3, 4)
PRETRAIN_EPOCHS = 10


def pretrain(path: Path = BASE_FILE, epochs: int = PRETRAIN_EPOCHS) -> Path:
    """Train the base on digits 0-4 (80% of their rows, seed 0) and save it to ``path``
    (written to a temporary file, then renamed: a reader never sees half a file)."""
    import keras
    import numpy as np
    from sklearn.datasets import load_digits

    digits = load_digits()
    keep = np.isin(digits.target, PRETRAIN_CLASSES)
    x = digits.images[keep].astype("float32")[..., None]
    y = digits.target[keep].astype("int32")
    x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-7)  # z-scored per pixel, as lrlab does
    keras.utils.set_random_seed(0)
    base = keras.Sequential(
        [
            keras.Input(shape=(8, 8, 1)),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu"),
        ],
        name="digits_0_4_base",
    )
    classifier = keras.Sequential([base, keras.layers.Dense(len(PRETRAIN_CLASSES))])
    classifier.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    order = np.random.default_rng(0).permutation(len(y))
    x, y = x[order], y[order]
    n_train = int(0.8 * len(y))
    history = classifier.fit(
        x[:n_train],
        y[:n_train],
        validation_data=(x[n_train:], y[n_train:]),
        epochs=epochs,
        batch_size=32,
        shuffle=False,
        verbose=0,
    )
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=path.stem, suffix=".keras", dir=path.parent)
    os.close(fd)
    base.save(tmp)
    os.replace(tmp, path)
    print(
        f"pre-trained on digits 0-4: val_accuracy {history.history['val_accuracy'][-1]:.3f} "
        f"after {epochs} epochs; saved the base to {path.name}"
    )
    return path


def transfer_model(input_shape, n_outputs):
    """The pretrained base, frozen, with a new head (``Dense(32, relu)``, then the
    ``n_outputs`` softmax lrlab's multiclass task needs); the tutorial's ``make_model``."""
    import keras

    if not BASE_FILE.exists():
        pretrain()
    if not BASE_FILE.resolve().is_file():  # e.g. a link to /dev/zero: Keras would read it all
        raise ValueError(f"{BASE_FILE} is not a regular file; delete it and run again")
    try:
        base = keras.models.load_model(BASE_FILE)
    except ValueError as err:  # a truncated or foreign file: Keras says "File not found"
        raise ValueError(
            f"{BASE_FILE} is not a readable .keras file ({str(err).splitlines()[0][:80]}); "
            "delete it and the next run pre-trains the base again"
        ) from err
    base.trainable = False
    inputs = keras.Input(shape=input_shape)
    features = base(inputs, training=False)
    hidden = keras.layers.Dense(32, activation="relu")(features)
    outputs = keras.layers.Dense(n_outputs, activation="softmax")(hidden)
    return keras.Model(inputs, outputs, name="transfer")
