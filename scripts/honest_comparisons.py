"""Print the honest-comparison numbers of an experiment, and draw its critical-difference diagram.

    # an experiment run with `lrlab run exp.toml --out DIR`:
    KERAS_BACKEND=jax .venv/bin/python scripts/honest_comparisons.py DIR [--metric val_accuracy]
        [--baseline constant] [--test wilcoxon|t] [--png docs/cd.png]
    # no experiment at hand: a synthetic result set with a known truth
    .venv/bin/python scripts/honest_comparisons.py --synthetic [--png docs/cd.png]

Every number comes from lrlab.analysis.comparisons; the README section "Honest comparisons"
(notes/h6-readme.md) explains each of them.
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np

from lrlab.analysis import comparisons as cmp
from lrlab.reporting.cd_plot import critical_difference_plot


def values_from_store(directory: str, metric: str | None) -> tuple[dict, str, str | None]:
    """``{config: {seed: value}}`` of the finished (``ok``) trials, the metric and the baseline.
    A diverged trial has no value: it is left out of the pairs (and counted by the table)."""
    from lrlab.experiments.store import Store

    with Store.open(directory) as store:
        meta = store.meta()
        trials = store.trials()
    metric = metric or meta.get("metric", "val_accuracy")
    values: dict[str, dict[int, float]] = {c: {} for c in meta.get("labels") or []}
    for t in trials:
        v = t.final.get(metric)
        if t.status == "ok" and v is not None and math.isfinite(v):
            values.setdefault(t.config, {})[t.seed] = float(v)
    return values, metric, meta.get("baseline")


def synthetic(n_seeds: int = 10, seed: int = 0) -> dict[str, dict[int, float]]:
    """Four configs on shared seeds: a per-seed effect (split, init, order) moves all of them;
    ``time_decay`` is truly +1.5 points over ``constant``, ``step`` +0.3, ``exponential`` 0."""
    rng = np.random.default_rng(seed)
    per_seed = rng.normal(0, 2.0, n_seeds)
    truth = {"constant": 90.0, "time_decay": 91.5, "step": 90.3, "exponential": 90.0}
    return {
        name: {s: float(mu + per_seed[s] + rng.normal(0, 1.0)) for s in range(n_seeds)}
        for name, mu in truth.items()
    }


def report(values, *, metric, baseline, higher_is_better, test, png) -> None:
    res = cmp.compare_seed_maps(
        values, baseline=baseline, higher_is_better=higher_is_better, test=test
    )
    better = "higher" if higher_is_better else "lower"
    print(f"metric: {metric} ({better} is better); baseline: {baseline}; test: {test}\n")
    w = max(len(name) for name in res.ranking)
    print(f"  {'config':<{w}}    n  mean")
    for name, mean in zip(res.ranking, res.means, strict=True):
        print(f"  {name:<{w}}  {len(values[name]):>3}  {mean:.4f}")
    print("\nVerdict:", res.sentence)
    top = res.best_vs_runner_up
    if top is not None:
        print(
            f"  best vs runner-up: d_z={top.effect_size:.2f}, eps_min(ASO)={top.eps_min:.2f}, "
            f"seeds needed={top.seeds_needed}"
        )
    for name, c in res.vs_baseline.items():
        print(f"\n{name} vs {baseline}:\n  {c.sentence}")
        print(
            f"  P({name} better)={c.p_a_better:.2f} [{c.p_a_better_ci.low:.2f}, "
            f"{c.p_a_better_ci.high:.2f}], eps_min={c.eps_min:.2f}, d_z={c.effect_size:.2f}, "
            f"p={c.p_value:.3g} (Holm {c.p_value_adjusted:.3g}), seeds needed={c.seeds_needed}"
        )
    if res.ranks is not None:
        print("\n" + res.ranks.sentence)
        if png:
            critical_difference_plot(res.ranks, png)
            print(f"critical-difference diagram: {png}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("directory", nargs="?", help="experiment directory (with its store)")
    ap.add_argument("--synthetic", action="store_true", help="a synthetic result set instead")
    ap.add_argument("--metric")
    ap.add_argument("--baseline")
    ap.add_argument("--test", choices=["wilcoxon", "t"], default="wilcoxon")
    ap.add_argument("--png", help="write the critical-difference diagram here")
    args = ap.parse_args(argv)
    if args.synthetic == bool(args.directory):
        ap.error("give an experiment directory or --synthetic")
    if args.synthetic:
        values, metric, baseline = synthetic(), "val_accuracy (%)", "constant"
    else:
        values, metric, baseline = values_from_store(args.directory, args.metric)
    baseline = args.baseline or baseline or next(iter(values))
    higher = not (metric.endswith("loss") or metric.endswith(("mae", "mse")))
    report(
        values,
        metric=metric,
        baseline=baseline,
        higher_is_better=higher,
        test=args.test,
        png=args.png,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
