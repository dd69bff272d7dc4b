"""Benchmark: seed 004's transfer sweep with the frozen base computed once, against the whole
model per trial, in both engines.

The workload is ``examples/seed004_transfer.toml``: a small CNN pre-trained on digits 0-4
(``examples/seed004_base.keras``, made the first time), frozen, with a new head
(``Dense(32, relu)``, ``Dense(5, softmax)``) trained on digits 5-9 with Adam; 3
schedules x 4 peak lrs x seeds, 10 epochs, batch 32.

Measured in one process, one after the other:

- ``population``: the population engine on every trial of the sweep, with the shortcut
  (``population_inputs(plan, trials)``: the base's outputs computed once per split, the
  head trained on them) and without (``frozen_base=False``: every batch goes through the
  frozen CNN); the first call (building, compiling) and a second, steady call of each
  (compiled programs kept, the base's outputs computed again);
- ``keras engine``: ``fit_trial`` on a few trials, with ``BaseFeatures`` (features kept
  between trials, as the engine keeps them) and without.

Printed: seconds and trials/s, the ratio whole / shortcut for each, and the load
average (the machine may be shared: compare the ratios, measured in the same run).

Usage::

    KERAS_BACKEND=jax .venv/bin/python bench/transfer.py                 # 10 seeds
    KERAS_BACKEND=jax .venv/bin/python bench/transfer.py --seeds 2 --keras-trials 2
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "seed004_transfer.toml"


def make_plan(seeds: int, epochs: int):
    """The example's plan with ``seeds`` seeds and ``epochs`` epochs."""
    import tomllib

    from lrlab.experiments.config import config_from_dict
    from lrlab.experiments.plan import build_plan

    raw = tomllib.loads(EXAMPLE.read_text())
    raw["experiment"]["seeds"] = seeds
    raw["training"]["epochs"] = epochs
    config = config_from_dict(raw, source=str(EXAMPLE), base_dir=EXAMPLE.parent)
    return build_plan(config)


def population_seconds(plan, frozen_base: bool) -> tuple[float, float]:
    """(first call, steady call) seconds to train every trial of ``plan``, the inputs
    (the base's outputs, with the shortcut) made inside each call."""
    from lrlab.experiments.engines.population import population_inputs
    from lrlab.experiments.engines.population_chunks import PopulationCaches, train_population

    caches = PopulationCaches()
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        inputs = population_inputs(plan, plan.trials, frozen_base=frozen_base)
        train_population(**inputs, caches=caches)
        times.append(time.perf_counter() - t0)
    return times[0], times[1]


def keras_seconds(plan, n: int, shortcut: bool) -> float:
    """Seconds per trial of the Keras engine's ``fit_trial`` over the plan's first ``n``
    trials (after one warm-up trial)."""
    import keras

    from lrlab.experiments.engines.frozen_base import BaseFeatures
    from lrlab.experiments.engines.keras import fit_trial

    features = BaseFeatures() if shortcut else None
    trials = plan.trials[: n + 1]
    fit_trial(plan, trials[0], base_features=features)
    keras.backend.clear_session(free_memory=False)
    t0 = time.perf_counter()
    for trial in trials[1:]:
        fit_trial(plan, trial, base_features=features)
        keras.backend.clear_session(free_memory=False)
    return (time.perf_counter() - t0) / max(len(trials) - 1, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--keras-trials", type=int, default=4, help="timed trials per case")
    args = parser.parse_args()

    print(f"machine: {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f} at start")
    plan = make_plan(args.seeds, args.epochs)
    n = len(plan.trials)
    print(
        f"workload: {EXAMPLE.name}, {n} trials ({len(plan.points)} configs x {args.seeds} "
        f"seeds), {args.epochs} epochs, {plan.steps_per_epoch} updates per epoch, "
        f"{len(plan.split(plan.trials[0].split_seed).y_train)} training rows"
    )

    short_first, short_steady = population_seconds(plan, frozen_base=True)
    try:
        whole = population_seconds(plan, frozen_base=False)
    except Exception as err:  # the engine cannot run the whole model: say so, go on
        whole = None
        failure = f"{type(err).__name__}: {str(err).strip().splitlines()[0][:120]}"
    print("\npopulation engine, every trial of the sweep:")
    print(f"  {'':24}{'first call':>14}{'steady':>14}{'trials/s steady':>18}")
    rows = [("frozen base once", short_first, short_steady)]
    if whole is not None:
        rows.insert(0, ("whole model per trial", *whole))
    for name, first, steady in rows:
        print(f"  {name:24}{first:>13.2f}s{steady:>13.2f}s{n / steady:>18.1f}")
    if whole is None:
        print(f"  whole model per trial: fails ({failure}); no ratio")
    else:
        print(
            f"  ratio whole / frozen-base-once: {whole[0] / short_first:.1f}x first call, "
            f"{whole[1] / short_steady:.1f}x steady"
        )

    k = args.keras_trials
    keras_short = keras_seconds(plan, k, shortcut=True)
    keras_whole = keras_seconds(plan, k, shortcut=False)
    print(f"\nkeras engine (fit_trial), {k} trials after a warm-up one:")
    print(f"  whole model per trial   {keras_whole:.2f} s/trial")
    print(f"  frozen base once        {keras_short:.2f} s/trial")
    print(f"  ratio whole / frozen-base-once: {keras_whole / keras_short:.2f}x")
    print(
        f"\npopulation (frozen base once, steady) vs keras engine (whole model): "
        f"{keras_whole * n / short_steady:.0f}x for the sweep"
    )
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
