"""Per-update cost of lrlab's two Keras paths, against a fixed lr and Keras' own callbacks.

Trains the same MLP with: a float lr (baseline); ``lrlab.keras.schedule`` (evaluated in the
jitted step); ``lrlab.keras.Scheduler`` per step (one JAX state sync per batch) and per
epoch; Keras' ``LearningRateScheduler`` (per epoch); and a plain per-batch Keras callback
that sets the lr (what a user would write for per-step control). Prints the best-of-N
seconds per epoch (after a warm-up epoch that compiles) and the ratio to the baseline.

    KERAS_BACKEND=jax .venv/bin/python bench/keras_scheduler.py [--repeats 3] [--width 256]
"""

from __future__ import annotations

import argparse
import time

import lrlab.keras  # first: lrlab makes JAX the default backend (Keras alone picks TF)

# isort: split
import keras
import numpy as np

SPEC = "warmup(100, cosine(0.1, decay_steps=10000))"


class PerBatchKeras(keras.callbacks.Callback):
    """What one writes without lrlab: set the lr before every batch."""

    def __init__(self):
        super().__init__()
        self.schedule = lrlab.parse(SPEC)
        self.t = 0

    def on_train_batch_begin(self, batch, logs=None):
        self.model.optimizer.learning_rate = self.schedule(self.t)  # Keras syncs on .model
        self.t += 1


class EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.start)


def variants():
    s = lrlab.parse(SPEC)
    return {
        "float lr (baseline)": (0.1, lambda: []),
        "lrlab.keras.schedule (in the step)": (lrlab.keras.schedule(SPEC), lambda: []),
        "lrlab Scheduler per step": (0.1, lambda: [lrlab.keras.Scheduler(SPEC)]),
        "plain Keras per-batch callback": (0.1, lambda: [PerBatchKeras()]),
        "lrlab Scheduler per epoch": (0.1, lambda: [lrlab.keras.Scheduler(SPEC, per="epoch")]),
        "Keras LearningRateScheduler": (
            0.1,
            lambda: [keras.callbacks.LearningRateScheduler(lambda e: s(e))],
        ),
    }


def epoch_seconds(lr, callbacks, x, y, width, epochs) -> float:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((x.shape[1],)),
            keras.layers.Dense(width, activation="relu"),
            keras.layers.Dense(width, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer=keras.optimizers.SGD(lr, momentum=0.9), loss="binary_crossentropy")
    timer = EpochTimer()
    model.fit(x, y, batch_size=32, epochs=epochs, verbose=0, callbacks=[*callbacks, timer])
    return min(timer.times[1:])  # epoch 0 compiles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4096, 34)).astype("float32")
    y = (x[:, :1] > 0).astype("float32")
    best = {name: np.inf for name in variants()}
    for _ in range(args.repeats):  # interleaved, so load changes hit every variant
        for name, (lr, callbacks) in variants().items():
            t = epoch_seconds(lr, callbacks(), x, y, args.width, args.epochs)
            best[name] = min(best[name], t)
    base = best["float lr (baseline)"]
    steps = len(x) // 32
    head = f"backend {keras.backend.backend()}, MLP 34-{args.width}-{args.width}-1"
    print(f"{head}, {steps} updates/epoch, best of {args.repeats}")
    for name, seconds in best.items():
        us = 1e6 * seconds / steps
        print(f"{name:36s} {seconds:7.3f} s/epoch {us:7.1f} us/update  x{seconds / base:.2f}")


if __name__ == "__main__":
    main()
