"""Statistics against scipy on fixed inputs, and the results table built from a store."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from scipy import stats as sp

from lrlab.analysis.results import results_from_store
from lrlab.analysis.stats import paired, paired_aligned, rank, rank_by_mean, summarize
from lrlab.experiments.store import Store
from lrlab.experiments.trial import OptimizerSettings, Trial, TrialResult
from lrlab.reporting.tables import (
    print_results,
    results_cells,
    results_footnote,
    results_markdown,
    results_table,
)
from lrlab.spec import parse

A = [0.9914, 0.9741, 0.9828, 0.9655, 0.9914, 0.9828, 0.9569, 0.9741, 0.9828, 0.9914]
B = [0.9569, 0.9655, 0.9741, 0.9483, 0.9655, 0.9828, 0.9397, 0.9569, 0.9741, 0.9655]


def test_summary_matches_scipy():
    s = summarize(A)
    x = np.array(A)
    lo, hi = sp.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=sp.sem(x))
    assert s.n == 10
    assert s.mean == pytest.approx(x.mean(), rel=1e-15)
    assert s.std == pytest.approx(x.std(ddof=1), rel=1e-15)
    assert (s.ci_low, s.ci_high) == (pytest.approx(lo, rel=1e-12), pytest.approx(hi, rel=1e-12))
    s99 = summarize(A, confidence=0.99)
    assert s99.ci_low < s.ci_low and s99.ci_high > s.ci_high


def test_paired_matches_scipy():
    a = dict(enumerate(A))
    b = dict(enumerate(B))
    p = paired(a, b)
    d = np.array(A) - np.array(B)
    lo, hi = sp.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=sp.sem(d))
    assert p.n == 10
    assert p.mean_diff == pytest.approx(d.mean(), rel=1e-12)
    assert (p.ci_low, p.ci_high) == (pytest.approx(lo, rel=1e-12), pytest.approx(hi, rel=1e-12))
    assert p.p_ttest == pytest.approx(sp.ttest_rel(A, B).pvalue, rel=1e-12)
    assert p.p_wilcoxon == pytest.approx(sp.wilcoxon(d).pvalue, rel=1e-12)
    assert p.cohen_dz == pytest.approx(d.mean() / d.std(ddof=1), rel=1e-12)
    # golden values (scipy 1.x): the t-test is exact; Wilcoxon has ties and a zero here
    assert p.p_ttest == pytest.approx(0.00071659, rel=1e-4)


def test_paired_uses_only_shared_seeds_and_is_antisymmetric():
    a = {0: 1.0, 1: 2.0, 2: 4.0, 5: 9.0}
    b = {0: 0.5, 1: 1.0, 2: 3.5, 7: 0.0}
    ab, ba = paired(a, b), paired(b, a)
    assert ab.n == 3 and ab.mean_diff == pytest.approx(2 / 3)
    assert ba.mean_diff == -ab.mean_diff and ba.cohen_dz == -ab.cohen_dz
    assert ba.p_ttest == pytest.approx(ab.p_ttest) and ba.p_wilcoxon == pytest.approx(ab.p_wilcoxon)


def test_degenerate_inputs_have_defined_answers():
    same = paired({0: 0.5, 1: 0.7}, {0: 0.5, 1: 0.7})
    assert (same.mean_diff, same.p_ttest, same.p_wilcoxon, same.cohen_dz) == (0.0, 1.0, 1.0, 0.0)
    shift = paired({0: 0.6, 1: 0.8, 2: 0.9}, {0: 0.5, 1: 0.7, 2: 0.8})
    # Constant differences (up to rounding): the t-test's limit p = 0, a point interval, and
    # no standardized effect size (d_z was +inf before the two paired implementations merged;
    # with no spread there is none, so it is NaN and the table shows "–").
    assert shift.p_ttest == 0.0 and shift.t_statistic == math.inf and math.isnan(shift.cohen_dz)
    assert shift.ci_low == shift.ci_high == pytest.approx(0.1)
    one = paired({0: 1.0}, {0: 0.0})
    assert one.n == 1 and math.isnan(one.p_ttest) and math.isnan(one.ci_low)
    # the exact Wilcoxon test of one non-zero pair: both sign patterns are as extreme, p = 1
    assert one.p_wilcoxon == 1.0 and math.isnan(one.cohen_dz)
    one_same = paired({0: 1.0}, {0: 1.0})
    assert (one_same.p_ttest, one_same.p_wilcoxon, one_same.cohen_dz) == (1.0, 1.0, 0.0)
    none = paired({0: 1.0}, {1: 1.0})
    assert none.n == 0
    assert all(math.isnan(x) for x in (none.mean_diff, none.p_ttest, none.p_wilcoxon))
    with pytest.raises(ValueError, match="finite"):
        paired_aligned([1.0, math.nan], [1.0, 2.0])
    with pytest.raises(ValueError, match="same length"):
        paired_aligned([1.0, 2.0], [1.0])
    assert summarize([]).n == 0 and math.isnan(summarize([]).mean)
    with pytest.raises(ValueError, match="finite"):
        summarize([1.0, math.nan])


@given(st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=30))
def test_interval_contains_the_mean_and_shrinks_with_confidence(values):
    s = summarize(values)
    assert s.ci_low <= s.mean + 1e-9 * max(1.0, abs(s.mean))
    assert s.ci_high >= s.mean - 1e-9 * max(1.0, abs(s.mean))
    s80 = summarize(values, confidence=0.8)
    assert s80.ci_high - s80.ci_low <= s.ci_high - s.ci_low + 1e-9


# exact in binary: a shift by an integer keeps every difference exact
eighths = st.integers(-800, 800).map(lambda i: i / 8)
pairs_of_eighths = st.lists(st.tuples(eighths, eighths), min_size=2, max_size=12)


@settings(max_examples=60, deadline=None)
@given(pairs_of_eighths, st.integers(-50, 50))
def test_paired_is_antisymmetric_and_shift_invariant(pairs, shift):
    a = [x for x, _ in pairs]
    b = [y for _, y in pairs]
    ab, ba = paired_aligned(a, b), paired_aligned(b, a)
    assert ba.mean_diff == -ab.mean_diff
    assert (ba.ci_low, ba.ci_high) == (-ab.ci_high, -ab.ci_low)
    assert _same(ba.t_statistic, -ab.t_statistic) and _same(ba.cohen_dz, -ab.cohen_dz)
    assert _same(ba.p_ttest, ab.p_ttest) and _same(ba.p_wilcoxon, ab.p_wilcoxon)
    moved = paired_aligned([x + shift for x in a], [y + shift for y in b])
    for field in ("mean_diff", "ci_low", "ci_high", "p_ttest", "p_wilcoxon", "cohen_dz"):
        assert _same(getattr(moved, field), getattr(ab, field)), field


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3)), min_size=2, max_size=20),
    st.sampled_from([0.5, 0.9, 0.95, 0.99]),
)
def test_paired_interval_contains_the_mean_difference_and_p_values_are_probabilities(
    pairs, confidence
):
    p = paired_aligned([x for x, _ in pairs], [y for _, y in pairs], confidence)
    tol = 1e-9 * max(1.0, abs(p.mean_diff))
    assert p.ci_low - tol <= p.mean_diff <= p.ci_high + tol
    assert 0.0 <= p.p_ttest <= 1.0 and 0.0 <= p.p_wilcoxon <= 1.0
    assert not math.isinf(p.cohen_dz)  # no spread: NaN, never an infinite effect size


def _same(x: float, y: float) -> bool:
    """Equal up to rounding, NaN equal to NaN."""
    return (math.isnan(x) and math.isnan(y)) or x == pytest.approx(y, rel=1e-9, abs=1e-12)


def test_rank_orders_by_mean_in_the_metric_direction():
    s = {"a": summarize([0.9, 0.92]), "b": summarize([0.95, 0.96]), "c": summarize([])}
    assert rank(["a", "b", "c"], s, higher_is_better=True) == ["b", "a", "c"]
    assert rank(["a", "b", "c"], s, higher_is_better=False) == ["a", "b", "c"]
    means = {"x": 2.0, "y": math.nan, "z": 5.0, "w": 2.0}
    assert rank_by_mean(means, higher_is_better=True) == ["z", "x", "w", "y"]
    assert rank_by_mean(means, higher_is_better=False) == ["x", "w", "z", "y"]


def _trial(config: str, seed: int) -> Trial:
    return Trial(
        key=f"{config}|seed={seed}",
        config=config,
        schedule_label=config,
        schedule=parse("constant(0.1)"),
        plateau=None,
        monitor="val_loss",
        optimizer_label="sgd",
        optimizer=OptimizerSettings.from_dict({"type": "sgd"}),
        lr=None,
        seed=seed,
        split_seed=seed,
        init_seed=seed,
        order_seed=seed,
    )


def test_results_table_from_a_store(tmp_path):
    with Store.open(tmp_path, create=True) as store:
        store.initialize(
            {
                "labels": ["constant", "decay", "wild"],
                "metric": "val_accuracy",
                "baseline": "constant",
                "title": "t",
            }
        )
        for seed, (a, b) in enumerate(zip(A, B, strict=True)):
            final_b = {"val_accuracy": b, "val_loss": 1 - b, "train_val_gap": 0.01}
            store.add(TrialResult(_trial("constant", seed), "ok", final=final_b))
            final_a = {"val_accuracy": a, "val_loss": 1 - a, "train_val_gap": 0.03}
            store.add(TrialResult(_trial("decay", seed), "ok", final=final_a))
            status = "diverged" if seed < 3 else "ok"
            store.add(TrialResult(_trial("wild", seed), status, final={"val_accuracy": 0.5}))
    table = results_from_store(tmp_path)
    assert [r.config for r in table] == ["decay", "constant", "wild"]
    decay = table["decay"]
    assert decay.rank == 1 and decay.n == 10
    assert decay.diff == pytest.approx(np.mean(np.array(A) - np.array(B)))
    assert decay.p_ttest == pytest.approx(sp.ttest_rel(A, B).pvalue)
    assert decay.gap == pytest.approx(0.03)
    wild = table["wild"]
    assert wild.n == 7 and wild.diverged == 3 and wild.n_paired == 7
    assert table["constant"].is_baseline
    md = results_markdown(table)
    assert "| 1 | decay | 10 |" in md and "baseline" in md
    # the terminal rendering: same cells, title and footnote, the best row bold
    console = Console(record=True, width=240, color_system=None)
    print_results(table, console)
    text = console.export_text()
    head, body = results_cells(table)
    assert text.lstrip().startswith("t: val_accuracy")
    assert all(name in text for name in head) and all(cell in text for cell in body[0])
    assert results_footnote(table).split(";")[0] in text
    rich_rows = results_table(table).table.rows
    assert [r.style for r in rich_rows] == ["bold", None, None]
    # another metric and baseline, chosen at report time
    by_loss = results_from_store(tmp_path, metric="val_loss", baseline="decay")
    assert not by_loss.higher_is_better and by_loss.best.config == "decay"
    with pytest.raises(Exception, match="no stored metric 'val_acc'"):
        results_from_store(tmp_path, metric="val_acc")
