"""How often a user who keeps adding seeds is told a false winner (issue 13, part 3).

    PYTHONPATH=src .venv/bin/python scripts/sequential_calibration.py [--runs 2000]

Each simulated run compares two configs on shared seeds: score = 80 + shift + seed effect
(sd 3, shared by both configs of a seed, so it cancels in the pairs) + noise (sd 1 per
config and seed). The user starts with 5 seeds and adds 5 at a time up to 100, stopping at
the first look that names a winner. Two rules:

* fixed-n: the paired t-test at 5% (``scipy.stats.ttest_rel``) at every look, as if the
  number of seeds had been fixed in advance;
* anytime-valid: :func:`lrlab.analysis.sequential.t_mixture_log_evidence` (Lai's t
  confidence sequence, alpha = 5%): a winner once ``max_{s<=n} E_s(0) >= 20``.

It prints, per true shift (0, 0.5 and 1 noise sd), the share of runs naming a winner, the
share naming the wrong one (for shift 0: any winner is wrong), and the median number of
seeds until the right winner is named (runs that never name it count as "more than 100").
A bounded-metric variant (accuracy around 0.9: seed effect sd 0.03, noise sd 0.01, shifts in
noise sds) does the same for the betting confidence sequence on the difference's range
[-1, 1] (:func:`lrlab.analysis.sequential.betting_log_capital` at mean 0).
Everything is vectorized over runs; 2,000 runs take a few seconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import math

import numpy as np
from scipy import stats

from lrlab.analysis.sequential import betting_log_capital, t_mixture_log_evidence

LOOKS = np.arange(5, 101, 5)
ALPHA = 0.05


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What the runs of one rule and one shift ended with."""

    named: float  # share of runs naming any winner by 100 seeds
    wrong: float  # share naming the wrong winner (shift 0: any winner)
    median_seeds: float  # seeds until the right winner; inf if most runs never name it


def draw_pairs(rng, runs, shift, seed_sd, noise_sd, centre):
    """Scores of configs a (shifted up by ``shift``) and b on the same seeds, (runs, 100)."""
    seed_effect = rng.normal(0.0, seed_sd, (runs, LOOKS[-1]))
    a = centre + shift + seed_effect + rng.normal(0.0, noise_sd, seed_effect.shape)
    b = centre + seed_effect + rng.normal(0.0, noise_sd, seed_effect.shape)
    return a, b


def first_verdict(decided, direction):
    """Per run: the first look (index into LOOKS) with ``decided`` and the sign named then.

    ``decided``/``direction``: (runs, len(LOOKS)) booleans / signs. Returns (seeds, sign),
    seeds ``inf`` and sign 0 where no look decides.
    """
    any_look = decided.any(axis=1)
    first = np.argmax(decided, axis=1)
    seeds = np.where(any_look, LOOKS[first].astype(float), np.inf)
    sign = np.where(any_look, direction[np.arange(len(first)), first], 0.0)
    return seeds, sign


def outcome(seeds, sign, shift):
    truth = np.sign(shift)
    named = np.isfinite(seeds)
    wrong = named & (sign != truth) if truth else named
    right_seeds = np.where(named & (sign == truth), seeds, np.inf) if truth else seeds
    return Outcome(float(named.mean()), float(wrong.mean()), float(np.median(right_seeds)))


def fixed_n_rule(a, b):
    """The paired t-test at 5% at every look, as if n had been fixed."""
    decided, direction = [], []
    for n in LOOKS:
        test = stats.ttest_rel(a[:, :n], b[:, :n], axis=1)
        decided.append(test.pvalue <= ALPHA)
        direction.append(np.sign(test.statistic))
    return first_verdict(np.array(decided).T, np.array(direction).T)


def t_mixture_rule(a, b):
    """Lai's t-mixture e-process on a - b: winner once its running max reaches 1/alpha."""
    d = a - b
    running = np.maximum.accumulate(t_mixture_log_evidence(d), axis=1)
    decided = running[:, LOOKS - 1] >= math.log(1 / ALPHA)
    mean_sign = np.sign(np.cumsum(d, axis=1)[:, LOOKS - 1])
    return first_verdict(decided, mean_sign)


def betting_rule(a, b):
    """WSR's hedged betting e-process for mean(a - b) = 0, a and b in [0, 1]."""
    x = (a - b + 1) / 2  # the difference's range [-1, 1] mapped to [0, 1]
    log_capital, side = betting_log_capital(x, 0.5, ALPHA)
    running = np.maximum.accumulate(log_capital, axis=1)
    crossed = running >= math.log(1 / ALPHA)
    # the side that won at the first crossing (before it, the sign of the mean is shown)
    first = np.argmax(crossed, axis=1)
    side_then = np.sign(side[np.arange(len(first)), first])
    direction = np.where(crossed, side_then[:, None], 0.0)[:, LOOKS - 1]
    return first_verdict(crossed[:, LOOKS - 1], direction)


def table(runs, seed, rules, shifts, scale):
    """Rows (rule, shift, Outcome) for the score model with ``scale``'s sds and centre."""
    rng = np.random.default_rng(seed)
    rows = []
    for shift in shifts:
        a, b = draw_pairs(rng, runs, shift * scale["noise_sd"], **scale)
        if scale["centre"] < 1:  # an accuracy: keep it in [0, 1]
            a, b = np.clip(a, 0.0, 1.0), np.clip(b, 0.0, 1.0)
        for name, rule in rules.items():
            rows.append((name, shift, outcome(*rule(a, b), shift)))
    return rows


def print_rows(title, rows):
    print(title)
    print(f"  {'rule':<30} {'shift':>5} {'named':>7} {'wrong':>7} {'median seeds':>13}")
    for name, shift, o in rows:
        med = f"{o.median_seeds:.0f}" if math.isfinite(o.median_seeds) else ">100"
        print(f"  {name:<30} {shift:>5.1f} {o.named:>7.1%} {o.wrong:>7.1%} {med:>13}")


UNBOUNDED = {"seed_sd": 3.0, "noise_sd": 1.0, "centre": 80.0}
BOUNDED = {"seed_sd": 0.03, "noise_sd": 0.01, "centre": 0.9}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args(argv)
    print(
        f"{args.runs} runs per row; 5 seeds, then 5 more at a time up to 100, "
        "stopping at the first named winner; alpha 5%"
    )
    rules = {"fixed-n paired t-test": fixed_n_rule, "anytime t-mixture (Lai)": t_mixture_rule}
    print_rows(
        "score 80, seed effect sd 3, noise sd 1 (shift in noise sds):",
        table(args.runs, args.seed, rules, (0.0, 0.5, 1.0), UNBOUNDED),
    )
    rules = {**rules, "anytime betting (WSR), [-1,1]": betting_rule}
    print_rows(
        "accuracy 0.9, seed effect sd 0.03, noise sd 0.01 (shift in noise sds):",
        table(args.runs, args.seed + 1, rules, (0.0, 1.0, 5.0, 10.0), BOUNDED),
    )


if __name__ == "__main__":
    main()
