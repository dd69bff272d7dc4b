"""Seed 002, drop-based decay: halve the lr every 10 epochs, with lrlab's Scheduler.

The tutorial (also seeds 000 and 003) writes a ``step_decay(epoch)`` function,
``0.1 * 0.5 ** floor((1 + epoch) / 10)``, and passes it to ``LearningRateScheduler``
with ``SGD(lr=0.0, momentum=0.9, decay=0.0)``. In lrlab it is one spec,
``step_decay(0.1, drop=0.5, every=10, offset=1)``, run per epoch by
``lrlab.keras.Scheduler``, which also logs the lr of each epoch into
``History.history["learning_rate"]`` (Keras' key).

    python examples/keras_step_decay.py --epochs 50 --data csv:../shared/data/ionosphere.csv
"""

from __future__ import annotations

import argparse

import lrlab.keras  # first: lrlab makes JAX the default backend (Keras alone picks TF)

# isort: split
import keras

from lrlab.experiments.datasets import load_dataset
from lrlab.experiments.models import parse_model

SEED_MODEL = 'mlp(hidden=[34], activation="relu", init="normal")'
STEP_DECAY = "step_decay(0.1, drop=0.5, every=10, offset=1)"


def main(argv: list[str] | None = None) -> keras.callbacks.History:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--data", default="ionosphere", help="an lrlab dataset reference")
    args = parser.parse_args(argv)
    data = load_dataset(args.data)

    model = parse_model(SEED_MODEL).build((34,), "binary", 2, seed=7)
    sgd = keras.optimizers.SGD(learning_rate=0.0, momentum=0.9, nesterov=False)
    model.compile(loss="binary_crossentropy", optimizer=sgd, metrics=["accuracy"])
    history = model.fit(
        data.x,
        data.y,
        validation_split=0.33,
        epochs=args.epochs,
        batch_size=28,
        callbacks=[lrlab.keras.Scheduler(STEP_DECAY, per="epoch")],
        verbose=0,
    )
    for epoch in range(0, args.epochs, 10):
        lr = history.history["learning_rate"][epoch]
        accuracy = history.history["val_accuracy"][epoch]
        print(f"epoch {epoch + 1:3d}: lr {lr:.6f}  val_accuracy {accuracy:.4f}")
    return history


if __name__ == "__main__":
    main()
