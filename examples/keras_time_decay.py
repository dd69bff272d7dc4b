"""Seed 002, time-based decay: the Ionosphere model on Keras 3, with Keras 2's decay intact.

The tutorial's Keras 2 line (also in seeds 000 and 003)::

    sgd = SGD(lr=learning_rate, momentum=momentum, decay=decay_rate, nesterov=False)

raises on Keras 3 (``lr=``), and with ``learning_rate=`` it trains *without* the decay
(``decay=`` is ignored with a warning). ``lrlab migrate`` rewrites it to the line below,
which applies Keras 2's ``lr / (1 + decay * iterations)`` at every update. The model is
saved to ``.keras`` and loaded back with the same schedule, no ``custom_objects``.

    python examples/keras_time_decay.py --epochs 50 --data csv:../shared/data/ionosphere.csv
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import lrlab.keras  # first: lrlab makes JAX the default backend (Keras alone picks TF)

# isort: split
import keras

from lrlab.experiments.datasets import load_dataset
from lrlab.experiments.models import parse_model

SEED_MODEL = 'mlp(hidden=[34], activation="relu", init="normal")'  # Dense(34) -> Dense(1)


def main(argv: list[str] | None = None) -> keras.callbacks.History:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--data", default="ionosphere", help="an lrlab dataset reference")
    args = parser.parse_args(argv)
    data = load_dataset(args.data)

    learning_rate, momentum = 0.1, 0.8
    decay_rate = learning_rate / 50  # the tutorial's 0.1 / epochs with epochs = 50
    model = parse_model(SEED_MODEL).build((34,), "binary", 2, seed=7)
    sgd = keras.optimizers.SGD(
        learning_rate=lrlab.keras.legacy_decay(learning_rate, decay_rate),
        momentum=momentum,
        nesterov=False,
    )
    model.compile(loss="binary_crossentropy", optimizer=sgd, metrics=["accuracy"])
    history = model.fit(
        data.x, data.y, validation_split=0.33, epochs=args.epochs, batch_size=28, verbose=0
    )
    updates = int(sgd.iterations)
    print(
        f"{updates} updates; next lr {float(sgd.learning_rate):.6f} = 0.1 / (1 + 0.002 * {updates})"
    )
    print(f"val_accuracy after {args.epochs} epochs: {history.history['val_accuracy'][-1]:.4f}")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ionosphere.keras"
        model.save(path)
        loaded = keras.saving.load_model(path)  # no custom_objects: lrlab registered it
        print(f"reloaded schedule: {loaded.optimizer.get_config()['learning_rate']['config']}")
    return history


if __name__ == "__main__":
    main()
