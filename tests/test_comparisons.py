"""Honest comparisons: agreement with the reference packages on fixed inputs, and calibration on
synthetic result sets whose truth is known.

Golden numbers come from deepsig 1.2.8, autorank 1.3.0, scikit-posthocs 0.17.1 and statsmodels
0.15.0, computed by scripts/comparisons_goldens.py in a scratch virtualenv (they are not lrlab
dependencies). The fixed inputs below are copied from that script.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from datafiles import IONOSPHERE_CSV
from lrlab.analysis import aso, pairwise, ranks
from lrlab.analysis import comparisons as cmp
from lrlab.reporting import cd_plot
from lrlab.reporting.tables import results_cells, results_footnote, results_markdown

A = [0.912, 0.905, 0.931, 0.899, 0.921, 0.917, 0.908, 0.925, 0.902, 0.915]
B = [0.901, 0.907, 0.915, 0.893, 0.910, 0.904, 0.911, 0.909, 0.897, 0.906]
C = [0.71, 0.74, 0.69, 0.73, 0.70, 0.72, 0.75]
D = [0.70, 0.70, 0.71, 0.74, 0.68, 0.73, 0.72, 0.69, 0.71]
E = [0.60, 0.65, 0.70, 0.75, 0.80, 0.85, 0.90]
F = [0.72, 0.73, 0.74, 0.75, 0.76, 0.77, 0.78, 0.79]
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
PAIRS = {"A_B": (A, B), "B_A": (B, A), "C_D": (C, D), "D_C": (D, C), "E_F": (E, F), "F_E": (F, E)}

# deepsig 1.2.8: compute_violation_ratio(a, b, dt=0.005), aso(a, b, seed=1234) and
# aso(a, b, confidence_level=0.99, seed=7), num_bootstrap_iterations=1000, dt=0.005.
DEEPSIG = {
    "A_B": (0.0, 0.15448419467904925, 0.2178850708081214),
    "B_A": (0.9978050118895189, 1.0, 1.0),
    "C_D": (0.0, 0.471083234281463, 0.5929822309580238),
    "D_C": (0.9966996699669968, 1.0, 1.0),
    "E_F": (0.541555407209613, 1.0, 1.0),
    "F_E": (0.44642857142857134, 0.9094411960071533, 1.0),
}


def _deepsig_uniforms(seed: int, n_a: int, n_b: int, n_boot: int = 1000):
    """The uniform draws of deepsig's bootstrap: iteration i seeds numpy's global RandomState
    with seed + i (i = 1..n_boot), then draws len(a) and len(b) uniforms."""
    ua, ub = np.empty((n_boot, n_a)), np.empty((n_boot, n_b))
    for i in range(n_boot):
        rs = np.random.RandomState(seed + i + 1)
        ua[i] = rs.uniform(0, 1, n_a)
        ub[i] = rs.uniform(0, 1, n_b)
    return ua, ub


# ---------------------------------------------------------------- agreement with reference packages


@pytest.mark.parametrize("name", list(PAIRS))
def test_violation_ratio_matches_deepsig(name):
    a, b = (np.asarray(x) for x in PAIRS[name])
    t = np.arange(0.005, 1, 0.005)
    vr = aso._violation_ratio(aso._quantiles(a, t), aso._quantiles(b, t), 0.005)
    assert float(vr) == pytest.approx(DEEPSIG[name][0], abs=1e-12)


@pytest.mark.parametrize("name", list(PAIRS))
def test_eps_min_matches_deepsig_exactly_given_its_random_draws(name):
    a, b = (np.asarray(x) for x in PAIRS[name])
    for (seed, conf), golden in zip([(1234, 0.95), (7, 0.99)], DEEPSIG[name][1:], strict=True):
        ua, ub = _deepsig_uniforms(seed, a.size, b.size)
        eps = aso._eps_min_from_uniforms(a, b, ua, ub, 0.005, conf)
        assert eps == pytest.approx(golden, abs=1e-12)


@pytest.mark.parametrize("name", list(PAIRS))
def test_eps_min_with_own_generator_is_close_to_deepsig(name):
    a, b = PAIRS[name]
    # Only the bootstrap draws differ from deepsig's: sigma is estimated from 1000 resamples.
    assert aso.aso_eps_min(a, b, seed=0) == pytest.approx(DEEPSIG[name][1], abs=0.03)


def test_aso_lower_is_better_is_the_mirror_image():
    assert aso.aso_eps_min([-x for x in F], [-x for x in E], higher_is_better=False) == (
        aso.aso_eps_min(F, E)
    )


def test_rank_comparison_matches_autorank_and_scikit_posthocs():
    r = ranks.rank_comparison({f"c{i}": [row[i] for row in MANY] for i in range(4)})
    # autorank.autorank(data, alpha=0.05, force_mode="nonparametric")
    assert r.p_value == pytest.approx(0.0004649504052105374, rel=1e-10)
    # autorank takes q_alpha from statsmodels' qsturng (interpolated tables), lrlab from scipy's
    # exact studentized range: they agree to 1e-5.
    assert r.critical_difference == pytest.approx(1.6582924452770451, rel=1e-5)
    assert dict(zip(r.names, r.mean_ranks, strict=True)) == {
        "c0": 1.25,
        "c1": 2.1875,
        "c2": 2.6875,
        "c3": 3.875,
    }
    assert r.statistic == pytest.approx(stats.friedmanchisquare(*np.array(MANY).T).statistic)
    # scikit_posthocs.posthoc_nemenyi_friedman(np.array(MANY)), configs c0..c3 in order
    golden = np.array(
        [
            [1.0, 4.666087910800e-01, 1.159485860724e-01, 2.784560425738e-04],
            [4.666087910800e-01, 1.0, 8.659775649527e-01, 4.429145287651e-02],
            [1.159485860724e-01, 8.659775649527e-01, 1.0, 2.546860188281e-01],
            [2.784560425738e-04, 4.429145287651e-02, 2.546860188281e-01, 1.0],
        ]
    )
    assert r.names == ("c0", "c1", "c2", "c3")  # so the orders agree
    np.testing.assert_allclose(r.nemenyi_p, golden, rtol=1e-8)
    # autorank's get_sorted_rank_groups: [(0, 2), (2, 3)] ({c0, c1, c2} and {c2, c3})
    assert r.groups == ((0, 2), (2, 3))
    assert "best c0 (mean rank 1.25), not separable from c1, c2" in r.sentence


@pytest.mark.parametrize(
    ("count", "n", "low", "high"),
    [  # statsmodels.stats.proportion.proportion_confint(count, n, method="wilson")
        (8.5, 10, 0.5411539838433437, 0.9645730562526336),
        (10, 10, 0.7224672001371106, 1.0),
        (0, 10, 0.0, 0.27753279986288926),
        (3, 7, 0.15821985525146964, 0.7495416354723428),
        (15.5, 20, 0.5573137549405551, 0.9040674081303941),
    ],
)
def test_wilson_matches_statsmodels(count, n, low, high):
    ci = pairwise.wilson_interval(count, n)
    assert (ci.low, ci.high) == pytest.approx((low, high), abs=1e-12)


@pytest.mark.parametrize(
    ("dz", "n_statsmodels"),
    [  # statsmodels TTestPower().solve_power(effect_size=dz, alpha=0.05, power=0.8)
        (0.2, 198.150820955562),
        (0.5, 33.36713118431779),
        (0.8, 14.30276455812943),
        (1.2, 7.58772381704109),
        (2.0, 4.22071858501904),
    ],
)
def test_seeds_needed_matches_statsmodels_power(dz, n_statsmodels):
    assert pairwise.seeds_needed(dz, 1.0, test="t") == math.ceil(n_statsmodels)
    wilcoxon = pairwise.seeds_needed(dz, 1.0, test="wilcoxon")
    assert wilcoxon == max(6, math.ceil(math.ceil(n_statsmodels) * math.pi / 3))


def test_holm_matches_statsmodels():
    # statsmodels.stats.multitest.multipletests(p, method="holm")[1]
    p = [0.01, 0.04, 0.03, 0.2, 0.004, 0.04]
    assert pairwise.holm(p) == pytest.approx([0.05, 0.12, 0.12, 0.2, 0.024, 0.12], abs=1e-12)


def test_wilcoxon_exact_p_by_hand_and_t_test_matches_scipy():
    # A - B: one negative difference with rank 1 and one with rank 3... W- = 3. Exactly 5 of the
    # 2**10 sign patterns have W <= 3 ({}, {1}, {2}, {3}, {1, 2}): two-sided p = 10 / 1024.
    stat, p = pairwise.paired_test(A, B, "wilcoxon")
    assert (stat, p) == (3.0, 10 / 1024)
    stat, p = pairwise.paired_test(A, B, "t")
    ref = stats.ttest_rel(A, B)
    assert (stat, p) == pytest.approx((ref.statistic, ref.pvalue))
    assert pairwise.paired_test(A, A, "t") == (0.0, 1.0)
    assert pairwise.paired_test([2, 3], [1, 2], "t") == (math.inf, 0.0)


def test_verdicts_use_the_one_paired_statistics_implementation():
    from lrlab.analysis.stats import paired_aligned

    ref = paired_aligned(A, B)
    for test, p_value in (("wilcoxon", ref.p_wilcoxon), ("t", ref.p_ttest)):
        c = cmp.compare_pair(A, B, test=test, aso=False, n_resamples=500)
        assert (c.p_value, c.effect_size) == (p_value, ref.cohen_dz)
    # two seeds with the same difference (a quantized accuracy): no infinite effect size
    two = cmp.compare_pair([0.9655, 0.9741], [0.9397, 0.9483], aso=False)
    assert math.isnan(two.effect_size) and two.winner is None and "inf" not in two.sentence
    # one seed: the exact Wilcoxon p of one pair is 1, the t-test has none
    assert pairwise.paired_test([1.0], [0.0]) == (0.0, 1.0)
    assert all(math.isnan(x) for x in pairwise.paired_test([1.0], [0.0], "t"))


def test_bootstrap_interval_is_seeded_and_brackets_the_mean():
    d1 = pairwise.bootstrap_mean_diff(A, B, seed=3)
    assert d1 == pairwise.bootstrap_mean_diff(A, B, seed=3)
    assert d1 != pairwise.bootstrap_mean_diff(A, B, seed=4)
    mean, ci = d1
    assert mean == pytest.approx(np.mean(np.subtract(A, B)))
    assert ci.low < mean < ci.high and ci.method == "BCa bootstrap"
    assert pairwise.bootstrap_mean_diff([1, 2, 3], [0, 1, 2])[1] == pairwise.Interval(
        1, 1, 0.95, "BCa bootstrap"
    )


def test_bootstrap_interval_covers_the_true_mean_about_95_percent():
    rng = np.random.default_rng(11)
    data = rng.normal(0.3, 1.0, size=(300, 15))
    covered = sum(
        pairwise.bootstrap_mean_diff(row, np.zeros(15), n_resamples=2000, seed=i)[1].contains(0.3)
        for i, row in enumerate(data)
    )
    assert 0.88 <= covered / 300 <= 0.99


# ---------------------------------------------------------------- known truth


def _seeded_scores(rng, n_configs, n_seeds, shifts, noise=1.0, seed_effect=3.0):
    """Scores sharing a per-seed effect (split/init/order move every config alike), plus noise."""
    per_seed = rng.normal(0.0, seed_effect, n_seeds)
    return {
        f"cfg{i}": 80.0 + shifts[i] + per_seed + rng.normal(0.0, noise, n_seeds)
        for i in range(n_configs)
    }


def test_identical_distributions_no_winner_in_95_percent_of_repetitions():
    rng = np.random.default_rng(2021)
    reps, winners, baseline_claims = 200, 0, 0
    for rep in range(reps):
        scores = _seeded_scores(rng, 3, 10, [0.0, 0.0, 0.0])
        res = cmp.compare_configs(scores, baseline="cfg0", seed=rep, aso=False, n_resamples=2000)
        winners += res.winner is not None
        baseline_claims += any(c.winner is not None for c in res.vs_baseline.values())
        assert res.winner is None or "Best:" in res.sentence
    assert winners <= 0.05 * reps
    assert baseline_claims <= 0.05 * reps  # Holm keeps the family-wise rate


def test_identical_distributions_with_t_test_no_winner_in_95_percent():
    rng = np.random.default_rng(7)
    claims = sum(
        cmp.compare_pair(
            rng.normal(size=12), rng.normal(size=12), test="t", aso=False, n_resamples=2000, seed=i
        ).winner
        is not None
        for i in range(200)
    )
    assert claims <= 10


def test_clear_shift_is_detected_with_the_right_winner():
    rng = np.random.default_rng(5)
    detected = 0
    for rep in range(100):
        # cfg1 is better than the runner-up cfg2 by 2.5 noise sds (d_z = 2.5 / sqrt(2) = 1.8)
        scores = _seeded_scores(rng, 3, 10, [0.0, 3.0, 0.5])
        res = cmp.compare_configs(scores, baseline="cfg0", seed=rep, aso=False, n_resamples=2000)
        assert res.winner in (None, "cfg1")
        detected += res.winner == "cfg1"
    assert detected >= 90


def test_pairing_by_seed_detects_what_an_unpaired_view_misses():
    rng = np.random.default_rng(3)
    scores = _seeded_scores(rng, 2, 10, [0.0, 1.5], noise=0.5, seed_effect=5.0)
    a, b = scores["cfg1"], scores["cfg0"]
    assert stats.mannwhitneyu(a, b).pvalue > 0.05  # seed effect swamps the shift unpaired
    c = cmp.compare_pair(a, b, name_a="cfg1", name_b="cfg0")
    assert c.winner == "cfg1" and c.p_a_better == 1.0
    assert c.sentence.startswith("cfg1 beats cfg0 in 100% of paired seeds (95% CI 72–100%)")


def test_seeds_needed_gives_about_80_percent_power_when_used():
    rng = np.random.default_rng(8)
    n = pairwise.seeds_needed(0.6, 1.0, test="t")
    p = stats.ttest_1samp(rng.normal(0.6, 1.0, size=(1000, n)), 0.0, axis=1).pvalue
    assert 0.76 <= float(np.mean(p < 0.05)) <= 0.86
    p = stats.ttest_1samp(rng.normal(0.6, 1.0, size=(1000, n - 3)), 0.0, axis=1).pvalue
    assert float(np.mean(p < 0.05)) < 0.8


def test_lower_is_better_and_wilcoxon_floor_of_six_seeds():
    loss_a, loss_b = [0.30, 0.31, 0.29, 0.30, 0.32], [0.40, 0.41, 0.42, 0.39, 0.43]
    c = cmp.compare_pair(loss_a, loss_b, name_a="cos", name_b="const", higher_is_better=False)
    # 5 seeds, every one a win: the Wilcoxon test cannot go below p = 2/32 with 5 pairs
    assert c.p_value == pytest.approx(0.0625) and c.winner is None
    assert c.p_a_better == 1.0 and c.seeds_needed == 6
    assert "not distinguishable with 5 seeds; about 6 needed" in c.sentence
    c6 = cmp.compare_pair(
        loss_a + [0.3], loss_b + [0.4], name_a="cos", name_b="const", higher_is_better=False
    )
    assert c6.winner == "cos"
    assert c6.sentence.startswith("cos beats const in 100% of paired seeds")
    assert "mean difference -0.1" in c6.sentence  # winner minus loser, in metric units


def test_inconclusive_sentence_names_seeds_needed():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, 10)
    c = cmp.compare_pair(x + 0.25 + rng.normal(0, 1, 10), x, name_a="step", name_b="const")
    assert c.verdict == "inconclusive"
    assert c.sentence.startswith(
        f"step and const are not distinguishable with 10 seeds; about {c.seeds_needed} needed"
    )
    assert c.seeds_needed > 10
    same = cmp.compare_pair(x, x.copy())
    assert "more seeds are unlikely to separate them" in same.sentence
    assert same.seeds_needed is None and same.p_a_better == 0.5


def test_nan_seeds_are_dropped_and_reported():
    c = cmp.compare_pair([1.0, np.nan, 3.0, 4.0], [0.0, 1.0, np.inf, 2.0])
    assert c.n == 2 and c.n_dropped == 2
    assert "2 dropped (not finite)" in c.sentence


def test_configs_without_values_are_ranked_last_and_not_compared():
    res = cmp.compare_configs(
        {"a": [1.0, 2.0, 3.0], "dead": [np.nan] * 3, "b": [0.5, 1.5, 2.0]}, baseline="b"
    )
    assert res.ranking == ("a", "b", "dead")
    assert (res.best_vs_runner_up.name_a, res.best_vs_runner_up.name_b) == ("a", "b")
    assert set(res.vs_baseline) == {"a"}
    three = cmp.compare_configs(
        {"a": [3.0, 2.0, 3.0], "dead": [np.nan] * 3, "b": [1.0, 1.0, 2.0], "c": [2, 3, 1]}
    )
    assert three.ranks is not None and set(three.ranks.names) == {"a", "b", "c"}
    alone = cmp.compare_configs({"a": [1.0, 2.0], "dead": [np.nan, np.nan]})
    assert alone.best_vs_runner_up is None and alone.winner is None
    assert alone.sentence == "Nothing to compare: fewer than two configs have a finite value."


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="same length"):
        cmp.compare_pair([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="share no seed"):
        cmp.compare_pair([np.nan], [1.0])
    with pytest.raises(ValueError, match="baseline 'z' is not one of the configs: a, b"):
        cmp.compare_configs({"a": [1, 2], "b": [2, 3]}, baseline="z")
    with pytest.raises(ValueError, match="at least 3 configs"):
        ranks.rank_comparison({"a": [1, 2], "b": [2, 3]})
    with pytest.raises(ValueError, match="unknown paired test"):
        pairwise.paired_test([1, 2], [2, 3], "anova")


def test_compare_configs_structure():
    scores = {f"c{i}": [row[i] for row in MANY] for i in range(4)}
    res = cmp.compare_configs(scores, baseline="c3", n_resamples=2000)
    assert res.ranking == ("c0", "c1", "c2", "c3")
    assert res.best_vs_runner_up.name_a == "c0" and res.best_vs_runner_up.name_b == "c1"
    assert set(res.vs_baseline) == {"c0", "c1", "c2"}
    raw = [res.vs_baseline[n].p_value for n in ("c0", "c1", "c2")]
    assert [res.vs_baseline[n].p_value_adjusted for n in ("c0", "c1", "c2")] == pairwise.holm(raw)
    assert res.ranks is not None and res.ranks.names[0] == "c0"
    assert res.vs_baseline["c0"].winner == "c0"  # c0 beats c3 on all 8 seeds
    assert "(Holm)" in res.vs_baseline["c0"].sentence
    assert res.vs_baseline["c0"].adjustment == "Holm"
    two = cmp.compare_configs({"c0": scores["c0"], "c3": scores["c3"]}, baseline="c3")
    assert two.vs_baseline["c0"].p_value_adjusted == two.vs_baseline["c0"].p_value
    assert "Holm" not in two.vs_baseline["c0"].sentence  # one comparison: nothing to adjust


# ---------------------------------------------------------------- properties


finite = st.floats(min_value=-100, max_value=100, allow_nan=False, width=32)
eighths = st.integers(-800, 800).map(lambda i: i / 8)  # exact in binary: shifts stay exact


@settings(max_examples=40, deadline=None)
# max_size 8: with ties scipy's Wilcoxon enumerates all 2**n sign patterns (exact, but slower)
@given(st.lists(st.tuples(eighths, eighths), min_size=2, max_size=8), st.integers(-50, 50))
def test_swapping_shifting_and_flipping_are_consistent(pairs, shift):
    a = np.array([p[0] for p in pairs])
    b = np.array([p[1] for p in pairs])
    kw = dict(n_resamples=500, aso=False)
    ab = cmp.compare_pair(a, b, **kw)
    ba = cmp.compare_pair(b, a, **kw)
    assert ab.p_a_better + ba.p_a_better == 1.0
    assert ab.p_value == pytest.approx(ba.p_value)
    assert ab.mean_diff == -ba.mean_diff
    swap = {"a_better": "b_better", "b_better": "a_better", "inconclusive": "inconclusive"}
    assert swap[ab.verdict] == ba.verdict
    lower = cmp.compare_pair(-a, -b, higher_is_better=False, **kw)
    assert (lower.p_a_better, lower.counts, lower.verdict) == (ab.p_a_better, ab.counts, ab.verdict)
    shifted = cmp.compare_pair(a + shift, b + shift, **kw)
    assert (shifted.counts, shifted.p_value, shifted.verdict) == (ab.counts, ab.p_value, ab.verdict)
    assert 0.0 <= ab.p_a_better_ci.low <= ab.p_a_better <= ab.p_a_better_ci.high <= 1.0


@settings(max_examples=25, deadline=None)
@given(st.lists(finite, min_size=1, max_size=15), st.lists(finite, min_size=1, max_size=15))
def test_eps_min_is_a_probability_and_dominance_gives_zero(a, b):
    eps = aso.aso_eps_min(a, b, n_bootstrap=200)
    assert 0.0 <= eps <= 1.0
    # b shifted above its own maximum: every bootstrap resample dominates too, so eps_min = 0
    above = [max(b) + 1.0 + x - min(b) for x in b]
    assert aso.aso_eps_min(above, b, n_bootstrap=200) == 0.0
    assert aso.aso_eps_min(b, above, n_bootstrap=200) > 0.9


# ---------------------------------------------------------------- critical-difference plot


def test_critical_difference_plot_content_and_png(tmp_path):
    r = ranks.rank_comparison({f"c{i}": [row[i] for row in MANY] for i in range(4)})
    path = tmp_path / "cd.png"
    fig = cd_plot.critical_difference_plot(r, path)
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    for name, rank in zip(r.names, r.mean_ranks, strict=True):
        assert f"{name} ({rank:.2f})" in texts
    assert f"CD = {r.critical_difference:.2f}" in texts
    group_bars = [ln for ln in ax.lines if ln.get_linewidth() == 3]
    assert len(group_bars) == len(r.groups) == 2
    cd_bar = next(ln for ln in ax.lines if ln.get_label() == "critical difference")
    assert np.ptp(cd_bar.get_xdata()) == pytest.approx(r.critical_difference)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


# ---------------------------------------------------------------- the experiment results table


def test_results_table_carries_the_honest_comparison():
    from lrlab.analysis.results import build_table

    rng = np.random.default_rng(4)
    scores = _seeded_scores(rng, 3, 10, [0.0, 3.0, 0.0])
    values = {name: dict(enumerate(v)) for name, v in scores.items()}
    del values["cfg2"][3]  # a diverged seed: no value, the pairs skip it
    t = build_table(
        values, list(values), metric="val_accuracy", higher_is_better=True, baseline="cfg0"
    )
    ref = cmp.compare_seed_maps(values, baseline="cfg0")
    assert t.verdict == ref.sentence and t.verdict.startswith("Best: cfg1. cfg1 beats cfg0")
    row = t["cfg1"]
    c = ref.vs_baseline["cfg1"]
    assert (row.p_better, row.p_better_ci_low, row.p_better_ci_high) == (
        c.p_a_better,
        c.p_a_better_ci.low,
        c.p_a_better_ci.high,
    )
    assert (row.eps_min, row.p_holm, row.better, row.verdict) == (
        c.eps_min,
        c.p_value_adjusted,
        True,
        c.sentence,
    )
    assert t["cfg2"].better is None and t["cfg2"].verdict.startswith(
        "cfg2 and cfg0 are not distinguishable with 9 seeds"
    )
    assert t["cfg0"].verdict == "" and t["cfg0"].is_baseline
    head, body = results_cells(t)
    cells = dict(zip(head, body[0], strict=True))
    assert cells["config"] == "cfg1" and cells["vs cfg0"] == "better"
    lo, hi = 100 * c.p_a_better_ci.low, 100 * c.p_a_better_ci.high
    assert cells["P(better)"] == f"{100 * c.p_a_better:.0f}% [{lo:.0f}–{hi:.0f}]"
    md = results_markdown(t)
    assert f"Verdict: {ref.sentence}" in md and f"- {t['cfg2'].verdict}" in md
    assert ref.ranks.sentence in md


# ---------------------------------------------------------------- what a seed varies (vary = [...])

IONO = str(IONOSPHERE_CSV)
VARY_EXP = f"""
[experiment]
seeds = [1, 2]
vary = VARY

[data]
dataset = "csv:{IONO}"
validation = 0.33

[model]
spec = 'mlp(hidden=[4])'

[training]
epochs = 1
batch_size = 64

[optimizers]
sgd = {{ type = "sgd", momentum = 0.8 }}

[schedules]
constant = "constant(0.1)"
"""


def _vary_plan(tmp_path, vary):
    from lrlab.experiments.config import load_config
    from lrlab.experiments.plan import build_plan

    path = tmp_path / "exp.toml"
    path.write_text(VARY_EXP.replace("VARY", repr(list(vary)).replace("'", '"')))
    return build_plan(load_config(path), check_model=False)


@pytest.mark.parametrize(
    "vary", [("split", "init", "order"), ("init",), ("split", "order"), ("order",), ()]
)
def test_vary_changes_exactly_the_named_sources_in_the_engine_inputs(tmp_path, vary):
    from lrlab.experiments.datasets import batch_order

    plan = _vary_plan(tmp_path, vary)
    t1, t2 = plan.trials  # seeds 1 and 2 of the one config
    ds = plan.dataset
    # what the engines read: the split, the initial weights, the batch order
    s1, s2 = plan.split(t1.split_seed), plan.split(t2.split_seed)
    same_split = np.array_equal(s1.val_rows, s2.val_rows)
    w1 = plan.model.build(ds.input_shape, ds.task, ds.n_classes, t1.init_seed).get_weights()
    w2 = plan.model.build(ds.input_shape, ds.task, ds.n_classes, t2.init_seed).get_weights()
    same_init = all(np.array_equal(a, b) for a, b in zip(w1, w2, strict=True))
    n = len(s1.y_train)
    same_order = np.array_equal(batch_order(t1.order_seed, 0, n), batch_order(t2.order_seed, 0, n))
    assert (not same_split, not same_init, not same_order) == (
        "split" in vary,
        "init" in vary,
        "order" in vary,
    )


def test_vary_nothing_makes_seeds_identical_in_a_real_fit(tmp_path):
    from lrlab.experiments.engines.keras import fit_trial

    fixed = _vary_plan(tmp_path, ())
    a, b = (fit_trial(fixed, t)[-1] for t in fixed.trials)
    assert a == b  # seeds 1 and 2 with nothing varied: the same run (inputs differ otherwise,
    # see the test above)


def test_results_table_says_what_a_seed_varied():
    from lrlab.analysis.results import build_table

    values = {"a": {0: 1.0, 1: 2.0}, "b": {0: 0.5, 1: 1.0}}
    kw = dict(metric="val_accuracy", higher_is_better=True, baseline="b")
    assert "each seed varied the split, the init and the order" in results_footnote(
        build_table(values, ["a", "b"], vary=["split", "init", "order"], **kw)
    )
    note = results_footnote(build_table(values, ["a", "b"], vary=["init"], **kw))
    assert "each seed varied the init only (the split and the order were fixed)" in note


@pytest.mark.parametrize(
    ("text", "vary"),
    [
        ("[data]\ndataset = 'digits'", ["split", "init", "order"]),
        ("[experiment]\nvary = ['init']\n[data]\ndataset = 'digits'", ["init"]),
        ("[data]\ndataset = 'digits'\nsplit = 'tail'", ["init", "order"]),  # Keras' fixed tail
        ("[data]\ndataset = 'digits'\nvalidation = 'csv:val.csv'", ["init", "order"]),  # holdout
    ],
)
def test_what_a_seed_varied_is_read_from_the_stored_experiment_file(text, vary, tmp_path):
    import tomllib

    from lrlab.experiments.config import config_from_dict
    from lrlab.experiments.store import Store

    rest = "[model]\nspec = 'mlp(hidden=[4])'\n[training]\nepochs = 1\nbatch_size = 8\n"
    rest += "[schedules]\nconstant = 'constant(0.1)'\n"
    stored = config_from_dict(tomllib.loads(text + "\n" + rest)).canonical()  # as the runner
    (tmp_path / "with").mkdir()
    (tmp_path / "without").mkdir()
    with Store.open(tmp_path / "with", create=True) as store:
        store.initialize({"canonical": stored})
        assert store.config().varied == vary
    with Store.open(tmp_path / "without", create=True) as store:
        store.initialize({"config_text": text})
        assert store.config() is None  # no stored settings: nothing to say
