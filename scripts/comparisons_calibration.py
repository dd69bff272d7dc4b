"""How often lrlab's verdict names a winner, on synthetic result sets whose truth is known.

    .venv/bin/python scripts/comparisons_calibration.py [--reps 1000] [--seeds 10]

Each repetition draws 3 configs on shared seeds: score = 80 + shift + seed effect + noise, with a
seed effect (sd 3, shared by all configs of a seed: split, init, order) and per-run noise (sd 1).
It reports, for the Wilcoxon and the paired t-test verdicts:

* null (all shifts 0): how often a winner is claimed (best vs runner-up), and how often at least
  one config is claimed better or worse than the baseline (Holm-adjusted family);
* shift: the best config better by ``delta`` noise sds than the two others: how often it is named
  the winner, how often a wrong winner is named;
* the median "seeds needed" reported in the inconclusive shift repetitions, and the detection
  rate actually reached when that many seeds are used.
"""

from __future__ import annotations

import argparse

import numpy as np

from lrlab.analysis import comparisons as cmp


def draw(rng, shifts, n_seeds):
    per_seed = rng.normal(0.0, 3.0, n_seeds)
    return {
        f"cfg{i}": 80.0 + s + per_seed + rng.normal(0.0, 1.0, n_seeds) for i, s in enumerate(shifts)
    }


def rates(reps, n_seeds, shifts, test, seed):
    rng = np.random.default_rng(seed)
    winner = wrong = family = 0
    needed = []
    for rep in range(reps):
        res = cmp.compare_configs(
            draw(rng, shifts, n_seeds), baseline="cfg0", test=test, seed=rep, aso=False
        )
        truth = max(range(len(shifts)), key=lambda i: shifts[i])
        winner += res.winner is not None
        wrong += res.winner is not None and res.winner != f"cfg{truth}"
        family += any(c.winner is not None for c in res.vs_baseline.values())
        top = res.best_vs_runner_up
        if res.winner is None and top.seeds_needed is not None:
            needed.append(top.seeds_needed)
    return winner / reps, wrong / reps, family / reps, needed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=1000)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--delta", type=float, default=1.5)
    args = ap.parse_args()
    n, d = args.seeds, args.delta
    print(f"{args.reps} repetitions, {n} seeds, 3 configs, seed effect sd 3, noise sd 1")
    for test in ("wilcoxon", "t"):
        w, _, fam, _ = rates(args.reps, n, [0.0, 0.0, 0.0], test, 1)
        print(
            f"[{test}] null: winner claimed {w:.1%}; "
            f"some config vs baseline claimed {fam:.1%} (Holm)"
        )
        w, wrong, _, needed = rates(args.reps, n, [0.0, d, 0.0], test, 2)
        med = int(np.median(needed)) if needed else None
        print(
            f"[{test}] shift {d} sd: right winner {w - wrong:.1%}, wrong winner {wrong:.1%}; "
            f"median seeds needed when inconclusive: {med}"
        )
        if med:
            w2, wrong2, _, _ = rates(max(200, args.reps // 4), med, [0.0, d, 0.0], test, 3)
            print(f"[{test}]   with {med} seeds: right winner {w2 - wrong2:.1%}")


if __name__ == "__main__":
    main()
