"""Do I still need a schedule? AdamW with cosine / one-cycle vs ScheduleFreeAdamW at a constant lr.

Runs ``examples/schedule_free_ionosphere.toml`` and ``examples/schedule_free_digits.toml``
(population engine; each: AdamW with a constant lr, cosine and one-cycle, and Keras 3's
ScheduleFreeAdamW at a constant lr, each at three peak lrs, paired by seed) and prints, per
dataset and lr, every config against schedule-free at the same lr: mean ± std over seeds,
the paired difference with its 95% interval, the share of seeds where the config wins and
lrlab's verdict (Holm-adjusted Wilcoxon and bootstrap interval agreeing, else "not yet"
with the seeds a decision would need).

``--keras-seeds N`` also measures what evaluating schedule-free at its averaged weights
changes: N trials of schedule-free at the middle lr through the Keras engine, each epoch
validated both at ``x`` (what lrlab stores) and at the training weights ``y`` (what Keras'
own ``fit`` logs).

    python scripts/schedule_free.py --seeds 20 --ionosphere csv:../shared/data/ionosphere.csv
"""

from __future__ import annotations

import argparse
import os
import time
import tomllib
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")

from lrlab.analysis.results import results_from_store  # noqa: E402
from lrlab.experiments.config import config_from_dict  # noqa: E402
from lrlab.experiments.plan import build_plan  # noqa: E402
from lrlab.experiments.runner import run_plan  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
DATASETS = ("ionosphere", "digits")
BASELINE = "constant / schedule_free"
OTHERS = ("cosine / adamw", "one_cycle / adamw", "constant / adamw")


def load(dataset: str, seeds: int, epochs: int | None, data: str | None):
    """The example's plan, with the seed count (and, for a quick run, epochs) changed."""
    path = EXAMPLES / f"schedule_free_{dataset}.toml"
    raw = tomllib.loads(path.read_text())
    raw["experiment"]["seeds"] = seeds
    if epochs is not None:
        raw["training"]["epochs"] = epochs
    if data is not None:
        raw["data"]["dataset"] = data
    config = config_from_dict(raw, source=str(path), base_dir=path.parent, text=str(raw))
    return build_plan(config)


def verdict(row) -> str:
    if row.better is None:
        return f"not yet (~{row.seeds_needed} seeds)" if row.seeds_needed else "not yet"
    return "better" if row.better else "worse"


def describe(out: Path, metric: str) -> None:
    """Per lr: each config against schedule-free at the same lr, paired by seed."""
    configs = [r.config for r in results_from_store(out).rows]
    lrs = sorted((c.split(" / lr=")[1] for c in configs if c.startswith(BASELINE)), key=float)
    print(f"| lr | config | {metric} mean ± std | Δ vs schedule-free [95% CI] | wins | verdict |")
    print("|---|---|---|---|---|---|")
    for lr in lrs:
        table = results_from_store(out, metric=metric, baseline=f"{BASELINE} / lr={lr}")
        rows = {r.config.split(" / lr=")[0]: r for r in table.rows if r.config.endswith(lr)}
        base = rows[BASELINE]
        print(f"| {lr} | {BASELINE} | {base.mean:.4f} ± {base.std:.4f} | baseline | | |")
        for label in OTHERS:
            r = rows[label]
            print(
                f"| {lr} | {label} | {r.mean:.4f} ± {r.std:.4f} | {r.diff:+.4f} "
                f"[{r.diff_ci_low:+.4f}, {r.diff_ci_high:+.4f}] | {100 * r.p_better:.0f}% "
                f"| {verdict(r)} |"
            )
    best = max(
        results_from_store(out, metric=metric).rows,
        key=lambda r: r.mean if metric != "val_loss" else -r.mean,
    )
    print(f"\nBest config by mean {metric}: {best.config} ({best.mean:.4f})\n")


def keras_at_y(plan, seeds: int) -> None:
    """Schedule-free through the Keras engine, validated at x (stored) and y (Keras' fit)."""
    import keras
    import numpy as np

    from lrlab.experiments.engines.keras import fit_trial, targets_for

    class AtY(keras.callbacks.Callback):
        def __init__(self, split, task):
            super().__init__()
            self.data, self.rows = (split.x_val, targets_for(split.y_val, task)), []

        def on_epoch_end(self, epoch, logs=None):  # the swap is undone: the model holds y
            self.rows.append(self.model.evaluate(*self.data, verbose=0, return_dict=True))

    lrs = sorted({t.lr for t in plan.trials if t.lr is not None})
    middle = lrs[len(lrs) // 2]
    trials = [t for t in plan.trials if t.config.startswith(BASELINE) and t.lr == middle]
    gaps: dict[str, list[float]] = {"val_loss": [], "val_accuracy": []}
    for trial in trials[:seeds]:
        at_y = AtY(plan.split(trial.split_seed), plan.dataset.task)
        at_x = fit_trial(plan, trial, callbacks=[at_y])
        for row_x, row_y in zip(at_x, at_y.rows, strict=True):
            for name in gaps:
                gaps[name].append(row_x[name] - row_y[name.removeprefix("val_")])
    for name, values in gaps.items():
        v = np.asarray(values)
        last = v.reshape(-1, plan.epochs)[:, -1]
        print(
            f"- {name} at x − at y (Keras fit's log), lr={middle}, {len(trials[:seeds])} seeds "
            f"× {plan.epochs} epochs: mean {v.mean():+.4f}, mean |Δ| {np.abs(v).mean():.4f}, "
            f"max |Δ| {np.abs(v).max():.4f}; last epoch mean {last.mean():+.4f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=None, help="override (quick runs)")
    parser.add_argument("--ionosphere", default=None, help="e.g. csv:PATH (offline copy)")
    parser.add_argument("--keras-seeds", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/schedule_free"))
    args = parser.parse_args()
    t0 = time.perf_counter()
    plans = {}
    for dataset in DATASETS:
        data = args.ionosphere if dataset == "ionosphere" else None
        plans[dataset] = load(dataset, args.seeds, args.epochs, data)
        run_plan(plans[dataset], out=args.out / dataset, new=True, quiet=True)
    print(f"# Schedule-free vs a schedule, {args.seeds} seeds, population engine")
    for dataset in DATASETS:
        print(f"\n## {dataset} ({plans[dataset].epochs} epochs)\n")
        describe(args.out / dataset, "val_accuracy")
        describe(args.out / dataset, "val_loss")
        if args.keras_seeds:
            keras_at_y(plans[dataset], args.keras_seeds)
    print(f"\n({time.perf_counter() - t0:.0f} s including training)")


if __name__ == "__main__":
    main()
