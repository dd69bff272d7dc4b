"""Golden numbers for tests/test_sequential.py, computed by the reference packages themselves.

lrlab implements its anytime-valid intervals itself (numpy only); this script prints what
confseq (Waudby-Smith & Ramdas' betting confidence sequences) and savvi (Lindon et al.'s
anytime-valid t-test, the same scale-invariant mixture as Lai's) give on the fixed inputs
below. The packages are NOT lrlab dependencies; run this in a scratch virtualenv:

    python3 -m venv /tmp/cs
    apt-get install libboost-dev          # confseq compiles its C++ boundaries
    /tmp/cs/bin/pip install "pybind11>=2.10" scikit-build cmake ninja setuptools wheel numpy
    /tmp/cs/bin/pip install --no-build-isolation confseq==0.0.11   # its pinned pybind11
    /tmp/cs/bin/pip install savvi==0.3.1                          # fails on Python 3.11
    /tmp/cs/bin/python scripts/sequential_goldens.py

Versions used for the numbers in the test: confseq 0.0.11, savvi 0.3.1, numpy 2.4.6,
scipy 1.17.1, Python 3.11.7. Paste the printed lists into tests/test_sequential.py.
"""

import numpy as np
from confseq.betting import betting_cs, betting_mart
from savvi.linear_regression import LinearRegression, log_bf

# Fixed inputs (copied verbatim into the test).
ACC = [0.91, 0.93, 0.90, 0.92, 0.94, 0.91, 0.92, 0.93, 0.89, 0.95, 0.92, 0.90]
A = [0.912, 0.905, 0.931, 0.899, 0.921, 0.917, 0.908, 0.925, 0.902, 0.915]
B = [0.701, 0.717, 0.655, 0.693, 0.710, 0.684, 0.721, 0.709, 0.697, 0.706]
LOSS_A = [0.412, 0.398, 0.455, 0.431, 0.402, 0.447, 0.418, 0.429, 0.441, 0.405, 0.433, 0.421]
LOSS_B = [0.451, 0.429, 0.470, 0.449, 0.446, 0.471, 0.440, 0.452, 0.468, 0.439, 0.455, 0.450]
ALPHA = 0.05
EFFECT_SD = 1.0


def running_p(x, m):
    """confseq's hedged betting martingale at m; p_t = min(1, 1 / running max)."""
    mart = betting_mart(np.asarray(x), m, alpha=ALPHA)  # theta=1/2, trunc_scale=1/2, max
    return np.minimum(1.0, 1.0 / np.maximum.accumulate(mart))


def betting(name, x01, null01):
    """betting_cs(x, alpha=0.05, breaks=1000, running_intersection=True), defaults else."""
    low, high = betting_cs(np.asarray(x01), alpha=ALPHA, breaks=1000, running_intersection=True)
    print(f"{name}_LOW = {np.round(low, 6).tolist()}")
    print(f"{name}_HIGH = {np.round(high, 6).tolist()}")
    print(f"{name}_P = {running_p(x01, null01).tolist()}")


class OneSampleT(LinearRegression):
    """savvi's regression t-test on an intercept only, with nu = n - 1 degrees of freedom.

    savvi's ``nu()`` is ``n - p - 1`` (it counts an intercept besides the p covariates);
    here the intercept is the only covariate, so the residual degrees of freedom are n - 1.
    """

    def nu(self) -> int:
        return self.n - self.p


def t_mixture(name, d):
    """savvi LinearRegression(alpha=0.05, p=1, phi=1/EFFECT_SD**2) on (d_i, 1), batched."""
    model = OneSampleT(alpha=ALPHA, p=1, phi=1 / EFFECT_SD**2)
    seq = model.batch(np.column_stack([d, np.ones(len(d))]))
    print(f"{name}_LOW = {[float(s.conf_int[0, 0]) for s in seq]}")
    print(f"{name}_HIGH = {[float(s.conf_int[0, 1]) for s in seq]}")
    print(f"{name}_P = {[float(np.ravel(s.p_value)[0]) for s in seq]}")
    # the closed form of the e-value itself, from savvi's own function, at the last n
    n = len(d)
    t2 = n * np.mean(d) ** 2 / np.var(d, ddof=1)
    print(f"{name}_LOG_BF_LAST = {float(log_bf(t2, n - 1, 1 / EFFECT_SD**2, n))}")


betting("ACC", ACC, 0.5)  # a single accuracy in [0, 1]; p tests mean 0.5
diff01 = (np.asarray(A) - np.asarray(B) + 1) / 2  # a - b in [-1, 1] mapped to [0, 1]
betting("DIFF", diff01, 0.5)  # p tests "no difference"
t_mixture("LOSS", np.asarray(LOSS_A) - np.asarray(LOSS_B))
