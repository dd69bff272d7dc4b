"""Seeds 001 and 003: every schedule the tutorials teach, on the Ionosphere model.

Seed 003 compares constant, time-based, step and exponential decay; seed 001 adds
Keras' ``ExponentialDecay(staircase=True)``, a custom halving and a warmup. Each is an
lrlab spec in ``lrlab.tutorials.SEED_SCHEDULES`` (steps are epochs there), run per epoch by
``lrlab.keras.Scheduler``. One seed per schedule: this shows the port, not which
schedule is better (for that, run an lrlab experiment over many seeds).

    python examples/keras_seed_schedules.py --epochs 30 --data csv:../shared/data/ionosphere.csv
"""

from __future__ import annotations

import argparse

import lrlab.keras  # first: lrlab makes JAX the default backend (Keras alone picks TF)

# isort: split
import keras

from lrlab.experiments.datasets import load_dataset
from lrlab.experiments.models import parse_model
from lrlab.tutorials import SEED_SCHEDULES

SEED_MODEL = 'mlp(hidden=[34], activation="relu", init="normal")'


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--data", default="ionosphere", help="an lrlab dataset reference")
    parser.add_argument("--only", default="", help="run only the schedules whose label has this")
    args = parser.parse_args(argv)
    data = load_dataset(args.data)

    results = {}
    for label, spec in SEED_SCHEDULES.items():
        if args.only not in label:
            continue
        model = parse_model(SEED_MODEL).build((34,), "binary", 2, seed=7)
        model.compile(
            loss="binary_crossentropy",
            optimizer=keras.optimizers.SGD(learning_rate=0.1, momentum=0.8),
            metrics=["accuracy"],
        )
        history = model.fit(
            data.x,
            data.y,
            validation_split=0.33,
            epochs=args.epochs,
            batch_size=28,
            callbacks=[lrlab.keras.Scheduler(spec, per="epoch")],
            verbose=0,
        )
        results[label] = history.history["val_accuracy"][-1]
        lr = history.history["learning_rate"][-1]
        print(f"{label:34s} {spec:62s} last lr {lr:.5f}  val_acc {results[label]:.4f}")
    return results


if __name__ == "__main__":
    main()
