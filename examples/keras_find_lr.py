"""Seed 004 tries lrs 0.0001, 0.001, 0.01, 0.1 with one training run each; a range test
finds the region in one short run instead (Smith 2017; fastai/Lightning ``lr_find``).

``lrlab.keras.find_lr`` ramps the lr exponentially over ``--steps`` updates, stops when
the loss diverges, suggests an lr (steepest descent of the smoothed loss, and the
minimum / 10), and restores the model's weights and optimizer state afterwards.

    python examples/keras_find_lr.py --data csv:../shared/data/ionosphere.csv -o out/find_lr.png
"""

from __future__ import annotations

import argparse

import numpy as np

import lrlab.keras  # first: lrlab makes JAX the default backend (Keras alone picks TF)

# isort: split
import keras

from lrlab.experiments.datasets import load_dataset
from lrlab.experiments.models import parse_model
from lrlab.range_test import RangeTest

SEED_MODEL = 'mlp(hidden=[34], activation="relu", init="normal")'


def main(argv: list[str] | None = None) -> RangeTest:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--data", default="ionosphere", help="an lrlab dataset reference")
    parser.add_argument("--output", "-o", default=None, help="PNG plot of loss against lr")
    args = parser.parse_args(argv)
    data = load_dataset(args.data)

    model = parse_model(SEED_MODEL).build((34,), "binary", 2, seed=7)
    model.compile(
        loss="binary_crossentropy",
        optimizer=keras.optimizers.SGD(learning_rate=0.01, momentum=0.9),
        metrics=["accuracy"],
    )
    before = [np.array(w) for w in model.get_weights()]
    result = lrlab.keras.find_lr(
        model,
        data.x,
        data.y.astype("float32"),
        start=1e-5,
        end=10.0,
        steps=args.steps,
        batch_size=28,
    )
    unchanged = all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))
    print(f"{len(result.lrs)} updates, stopped early: {result.stopped_early}")
    print(f"suggested lr (steepest): {result.steepest}; minimum / 10: {result.min_over_10}")
    print(f"weights restored: {unchanged}")
    if args.output:
        result.plot(args.output)
        print(f"wrote {args.output}")
    return result


if __name__ == "__main__":
    main()
