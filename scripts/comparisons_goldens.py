"""Golden numbers for tests/test_comparisons.py, computed by the reference packages themselves.

lrlab implements these statistics itself (numpy/scipy only) and checks them against the packages'
outputs on the fixed inputs below. The packages are NOT lrlab dependencies; run this script in a
scratch virtualenv:

    python3 -m venv /tmp/scratchvenv
    /tmp/scratchvenv/bin/pip install deepsig==1.2.8 autorank==1.3.0 scikit-posthocs==0.17.1
    /tmp/scratchvenv/bin/python scripts/comparisons_goldens.py

(statsmodels comes with autorank.) Paste the printed numbers into tests/test_comparisons.py.
Versions used for the numbers in the test: deepsig 1.2.8, autorank 1.3.0, scikit-posthocs 0.17.1,
statsmodels 0.15.0, scipy 1.17.1, numpy 2.4.6.
"""

import contextlib
import io
import warnings

import numpy as np
import pandas as pd

# Fixed inputs (copied verbatim into the test).
A = [0.912, 0.905, 0.931, 0.899, 0.921, 0.917, 0.908, 0.925, 0.902, 0.915]
B = [0.901, 0.907, 0.915, 0.893, 0.910, 0.904, 0.911, 0.909, 0.897, 0.906]
C = [0.71, 0.74, 0.69, 0.73, 0.70, 0.72, 0.75]  # unpaired, other length, ties with nothing
D = [0.70, 0.70, 0.71, 0.74, 0.68, 0.73, 0.72, 0.69, 0.71]
E = [0.60, 0.65, 0.70, 0.75, 0.80, 0.85, 0.90]  # wide: its quantile curve crosses F's
F = [0.72, 0.73, 0.74, 0.75, 0.76, 0.77, 0.78, 0.79]
# 8 seeds (rows) x 4 configs (columns), with ties inside some rows.
MANY = [
    [0.81, 0.79, 0.80, 0.75],
    [0.83, 0.80, 0.80, 0.77],
    [0.80, 0.81, 0.78, 0.76],
    [0.84, 0.82, 0.79, 0.79],
    [0.82, 0.78, 0.81, 0.74],
    [0.85, 0.83, 0.80, 0.78],
    [0.79, 0.80, 0.77, 0.77],
    [0.83, 0.79, 0.82, 0.76],
]
WILSON = [(8.5, 10), (10, 10), (0, 10), (3, 7), (15.5, 20)]
DZ = [0.2, 0.5, 0.8, 1.2, 2.0]
HOLM = [0.01, 0.04, 0.03, 0.2, 0.004, 0.04]


def main() -> None:
    from importlib.metadata import version

    import autorank
    import scikit_posthocs as sp
    from deepsig.aso import aso, compute_violation_ratio
    from statsmodels.stats.multitest import multipletests
    from statsmodels.stats.power import TTestPower
    from statsmodels.stats.proportion import proportion_confint

    for pkg in ["deepsig", "autorank", "scikit-posthocs", "statsmodels", "scipy", "numpy"]:
        print(pkg, version(pkg))
    warnings.simplefilter("ignore")
    for name, (x, y) in {
        "A_B": (A, B),
        "B_A": (B, A),
        "C_D": (C, D),
        "D_C": (D, C),
        "E_F": (E, F),
        "F_E": (F, E),
    }.items():
        vr = compute_violation_ratio(np.array(x), np.array(y), dt=0.005)
        eps = aso(x, y, seed=1234, show_progress=False, num_bootstrap_iterations=1000, dt=0.005)
        eps99 = aso(x, y, confidence_level=0.99, seed=7, show_progress=False)
        print(
            f"ASO {name}: violation_ratio={vr!r} eps_min(seed=1234)={float(eps)!r}"
            f" eps_min(0.99, seed=7)={float(eps99)!r}"
        )

    data = pd.DataFrame(MANY, columns=["c0", "c1", "c2", "c3"])
    with contextlib.redirect_stdout(io.StringIO()):
        res = autorank.autorank(data, alpha=0.05, force_mode="nonparametric")
    print("autorank omnibus", res.omnibus, "posthoc", res.posthoc)
    print("autorank pvalue", repr(float(res.pvalue)), "cd", repr(float(res.cd)))
    from autorank._util import get_sorted_rank_groups

    by_rank = res._replace(rankdf=res.rankdf.sort_values(by="meanrank"))
    print("autorank groups", get_sorted_rank_groups(by_rank, False)[2])
    print("autorank meanrank", {k: float(v) for k, v in res.rankdf["meanrank"].items()})
    nem = sp.posthoc_nemenyi_friedman(np.array(MANY))
    print(
        "scikit-posthocs nemenyi p:", np.array2string(nem.to_numpy(), precision=12, separator=", ")
    )

    for count, nobs in WILSON:
        lo, hi = proportion_confint(count, nobs, alpha=0.05, method="wilson")
        print(f"wilson {count}/{nobs}: ({lo!r}, {hi!r})")
    for dz in DZ:
        n = TTestPower().solve_power(effect_size=dz, alpha=0.05, power=0.8, alternative="two-sided")
        print(f"ttest power dz={dz}: n={n!r}")
    print("holm", [float(x) for x in multipletests(HOLM, method="holm")[1]])


if __name__ == "__main__":
    main()
