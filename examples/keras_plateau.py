"""Plateau reduction on top of a schedule: what Keras' ReduceLROnPlateau cannot do.

``ReduceLROnPlateau`` refuses an optimizer whose lr is a schedule. lrlab's Scheduler
composes them: every update uses ``warmup-cosine(t) * scale``, and the scale halves
when ``val_loss`` has not improved for 5 epochs (Keras' rules: patience, cooldown,
min_lr, min_delta). ``scheduler.lrs`` holds the lr of every update.

    python examples/keras_plateau.py --epochs 40 --data csv:../shared/data/ionosphere.csv
"""

from __future__ import annotations

import argparse

import lrlab.keras  # first: lrlab makes JAX the default backend (Keras alone picks TF)

# isort: split
import keras

from lrlab.experiments.datasets import load_dataset
from lrlab.experiments.models import parse_model

SEED_MODEL = 'mlp(hidden=[34], activation="relu", init="normal")'


def main(argv: list[str] | None = None) -> lrlab.keras.Scheduler:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--data", default="ionosphere", help="an lrlab dataset reference")
    args = parser.parse_args(argv)
    data = load_dataset(args.data)

    steps = args.epochs * -(-int(len(data.x) * 0.67) // 28)  # updates in the whole run
    schedule = f"warmup({steps // 10}, cosine(0.1, decay_steps={steps - steps // 10}, alpha=0.1))"
    scheduler = lrlab.keras.Scheduler(
        schedule, plateau="plateau(factor=0.5, patience=5, cooldown=2)", monitor="val_loss"
    )
    model = parse_model(SEED_MODEL).build((34,), "binary", 2, seed=7)
    model.compile(
        loss="binary_crossentropy",
        optimizer=keras.optimizers.SGD(learning_rate=0.1, momentum=0.9),
        metrics=["accuracy"],
    )
    history = model.fit(
        data.x,
        data.y,
        validation_split=0.33,
        epochs=args.epochs,
        batch_size=28,
        callbacks=[scheduler],
        verbose=0,
    )
    print(f"schedule {schedule}, {len(scheduler.lrs)} updates")
    print(f"plateau reductions: {scheduler.state.reductions}, final scale {scheduler.scale}")
    every_5th = history.history["learning_rate"][::5]
    print(f"lr of every 5th epoch: {[round(lr, 5) for lr in every_5th]}")
    return scheduler


if __name__ == "__main__":
    main()
