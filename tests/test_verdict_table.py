"""Issue 13 part 2 and issue 15's terminal table: anytime-valid verdicts once the results
were looked at twice, intervals inside the metric's range, and a results table that fits
80, 100 and 160 columns (plain lines off a terminal)."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from rich.console import Console

from lrlab.analysis.comparisons import compare_pair
from lrlab.analysis.results import build_table, results_from_store
from lrlab.experiments.store import Store
from lrlab.experiments.trial import TrialResult
from lrlab.reporting.tables import (
    COLUMNS,
    parse_columns,
    print_results,
    results_cells,
    results_footnote,
)
from test_stats import _trial  # a stored trial of one config and seed

REPO = Path(__file__).resolve().parents[1]
LONG = [
    "constant(0.1) / sgd",
    "exponential_decay_with_warmup(0.1, decay_steps=280) / momentum_nesterov",
    "cosine(0.05) / adam_with_a_very_long_optimizer_label",
]
ACC = dict(metric="val_accuracy", higher_is_better=True)


def _accuracies(labels, seeds=10, step=0.01, rng_seed=1):
    rng = np.random.default_rng(rng_seed)
    seed_effect = rng.normal(0, 0.02, seeds)
    return {
        label: {
            s: float(np.clip(0.9 + seed_effect[s] + step * k + rng.normal(0, 0.005), 0, 1))
            for s in range(seeds)
        }
        for k, label in enumerate(labels)
    }


def _terminal(width: int) -> Console:
    return Console(width=width, record=True, force_terminal=True, color_system=None)


# --------------------------------------------------------------------------- the terminal table


@pytest.mark.parametrize("width", [80, 100, 160])
@pytest.mark.parametrize("looks", [0, 2])
def test_the_default_table_fits_the_terminal_and_never_splits_a_label_mid_word(width, looks):
    table = build_table(_accuracies(LONG), LONG, baseline=LONG[0], title="t", looks=looks, **ACC)
    console = _terminal(width)
    print_results(table, console)
    text = console.export_text()
    lines = text.splitlines()
    assert all(len(line) <= width for line in lines)
    head = lines[[i for i, line in enumerate(lines) if line.lstrip().startswith("rank")][0]]
    kind = "Δ [anytime 95%]" if looks >= 2 else "Δ [95% CI, bootstrap]"
    for name in ("rank", "config", "mean ± std", kind, "P(better)", "verdict"):
        assert name in head
    assert "p (Wilcoxon)" not in text  # the wide columns stay out of the default
    words = {w for label in LONG for w in label.split() if len(w) >= 4}
    for token in (t for t in text.split() if len(t) >= 4):
        cut = [w for w in words if token != w and (w.startswith(token) or w.endswith(token))]
        assert not cut or token.endswith("…"), (token, cut)  # ellipsized, never split
    if width == 160:  # room for every label in full
        rows = [line for line in lines if re.match(r"\s+\d\s", line)]
        assert [label in row for label, row in zip(LONG[::-1], rows, strict=True)]
        assert all(label in text for label in LONG)


def test_wide_and_columns_choose_the_columns():
    table = build_table(_accuracies(LONG[:2]), LONG[:2], baseline=LONG[0], **ACC)
    console = _terminal(400)
    print_results(table, console, wide=True)
    text = console.export_text()
    head, _ = results_cells(table)
    assert all(name in text for name in head) and len(head) == len(COLUMNS)
    console = _terminal(100)
    print_results(table, console, columns=["config", "p_anytime"])
    head_line = next(line for line in console.export_text().splitlines() if "config" in line)
    assert head_line.split() == ["config", "p", "(anytime)"]
    with pytest.raises(ValueError, match="unknown column 'pvalue'; choose from rank, config"):
        parse_columns("config,pvalue")


def test_off_a_terminal_every_row_is_one_greppable_line():
    table = build_table(_accuracies(LONG), LONG, baseline=LONG[0], title="t", **ACC)
    console = Console(width=80, record=True)  # not a terminal (a pipe, a log file)
    print_results(table, console)
    lines = console.export_text().splitlines()
    head, body = results_cells(table)
    assert lines[0] == "t: val_accuracy" and lines[1] == "\t".join(head)
    assert lines[2 : 2 + len(body)] == ["\t".join(cells) for cells in body]
    for row in table:  # grep a config, get its whole row
        hits = [line for line in lines if line.startswith(f"{row.rank}\t{row.config}\t")]
        assert len(hits) == 1 and hits[0].split("\t")[COLUMNS.index("n")] == str(row.n)


def test_every_interval_column_says_its_kind():
    table = build_table(_accuracies(LONG[:2]), LONG[:2], baseline=LONG[0], **ACC)
    head, _ = results_cells(table)
    kinds = dict(zip(COLUMNS, head, strict=True))
    assert kinds["ci"] == "95% CI (t)"
    assert kinds["delta"].endswith("[95% CI, bootstrap]")
    assert kinds["anytime"].endswith("[anytime 95%, t-mixture]")
    note = results_footnote(table)
    assert "bootstrap interval (fixed-n)" in note and "anytime-valid 95% interval" in note


# ----------------------------------------------------------------- one interval per number


def test_the_sentence_quotes_the_interval_the_table_prints():
    values = _accuracies(LONG[:2], step=0.02)
    for looks, column in ((1, "delta"), (2, "anytime")):
        table = build_table(values, LONG[:2], baseline=LONG[0], looks=looks, **ACC)
        row = table[LONG[1]]
        c = table.comparison.vs_baseline[LONG[1]]
        low, high = (
            (row.diff_ci_low, row.diff_ci_high)
            if column == "delta"
            else (row.anytime_low, row.anytime_high)
        )
        expected = c.mean_diff_ci if column == "delta" else c.anytime
        assert (low, high) == (expected.low, expected.high)
        quoted = re.search(r"CI ([+-][\d.]+) to ([+-][\d.]+)", row.verdict).groups()
        assert [float(q) for q in quoted] == pytest.approx([low, high], abs=6e-4)


def test_after_two_looks_only_the_anytime_valid_test_names_a_winner():
    b = np.array([0.90, 0.91, 0.88, 0.92, 0.89, 0.90])
    a = b + np.array([0.004, 0.012, 0.001, 0.009, 0.006, 0.015])
    fixed = compare_pair(a, b, name_a="a", name_b="b", bounds=(0.0, 1.0), looks=1)
    assert fixed.winner == "a" and fixed.p_value < 0.05  # the fixed-n test rejects
    assert not fixed.anytime.rejects_null  # the anytime-valid one does not (yet)
    again = compare_pair(a, b, name_a="a", name_b="b", bounds=(0.0, 1.0), looks=2)
    assert again.winner is None and again.verdict == "inconclusive"
    assert "however often you look" in again.sentence and "2 looks" in again.sentence
    values = {"b": dict(enumerate(b)), "a": dict(enumerate(a))}
    table = build_table(values, ["b", "a"], baseline="b", looks=2, **ACC)
    assert table["a"].better is None and table.comparison.winner is None
    assert table.verdict.startswith("No winner yet")


def test_one_seed_gives_one_clear_line():
    values = {"b": {0: 0.9}, "a": {0: 0.95}}
    table = build_table(values, ["b", "a"], baseline="b", looks=2, **ACC)
    row = table["a"]
    assert math.isnan(row.anytime_low) and math.isnan(row.diff_ci_low)
    cells = dict(zip(COLUMNS, results_cells(table)[1][0], strict=True))
    assert cells["delta"] == cells["anytime"] == "+0.0500 (one seed: no interval)"
    assert "one seed: no interval" in table.verdict


@settings(max_examples=25)
@example(pairs=[(0.0, 0.0), (0.0, 0.0)], metric="val_loss", looks=2)  # no spread, no scale
@given(
    st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=8),
    st.sampled_from(["val_accuracy", "val_loss"]),
    st.integers(0, 3),
)
def test_intervals_never_leave_the_metric_s_range(pairs, metric, looks):
    scale = 1.0 if metric == "val_accuracy" else 3.0  # a loss: >= 0, no upper end
    values = {
        "b": {s: scale * y for s, (_, y) in enumerate(pairs)},
        "a": {s: scale * x for s, (x, _) in enumerate(pairs)},
    }
    hib = metric == "val_accuracy"
    table = build_table(
        values, ["b", "a"], metric=metric, higher_is_better=hib, baseline="b", looks=looks
    )
    high = 1.0 if hib else math.inf
    for row in table:
        if not math.isnan(row.ci_low):
            assert 0.0 <= row.ci_low <= row.ci_high <= high
        assert not math.isinf(row.cohen_dz)  # two seeds: no +inf effect size
    row = table["a"]
    width = 1.0 if hib else math.inf
    for low, up in ((row.diff_ci_low, row.diff_ci_high), (row.anytime_low, row.anytime_high)):
        if len(pairs) > 1:
            assert -width <= low <= up <= width
        else:
            assert math.isnan(low) and math.isnan(up)


# --------------------------------------------------------------------------- looks, counted


def _store(directory: Path, seeds: range) -> None:
    b = [0.90, 0.91, 0.88, 0.92, 0.89, 0.90, 0.91, 0.90]
    d = [0.004, 0.012, 0.001, 0.009, 0.006, 0.015, 0.007, 0.008]
    with Store.open(directory, create=True) as store:
        if not store.meta():
            store.initialize({"labels": ["b", "a"], "metric": "val_accuracy", "baseline": "b"})
        for s in seeds:
            store.add(TrialResult(_trial("b", s), "ok", final={"val_accuracy": b[s]}))
            store.add(TrialResult(_trial("a", s), "ok", final={"val_accuracy": b[s] + d[s]}))


def test_a_look_counts_when_the_trials_changed(tmp_path):
    _store(tmp_path, range(6))
    with Store.open(tmp_path) as store:
        assert [store.record_look(), store.record_look()] == [1, 1]  # the same data twice
    _store(tmp_path, range(6, 7))
    with Store.open(tmp_path) as store:
        assert store.record_look() == 2
    assert results_from_store(tmp_path).looks == 2


def test_lrlab_report_counts_looks_and_switches_to_the_anytime_rule(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), KERAS_BACKEND="jax")

    def report(*args, command=("report", str(tmp_path))):
        return subprocess.run(
            [sys.executable, "-m", "lrlab.cli", *command, *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            cwd=tmp_path,  # a run that went ahead would write runs/ here
        )

    _store(tmp_path, range(6))
    first = report()
    assert first.returncode == 0, first.stderr
    assert "Best: a." in first.stdout and "Holm-adjusted Wilcoxon" in first.stdout
    rows = [line.split("\t") for line in first.stdout.splitlines() if "\t" in line]
    assert [row[:3] for row in rows] == [["rank", "config", "n"], ["1", "a", "6"], ["2", "b", "6"]]
    _store(tmp_path, range(6, 7))
    second = report()
    assert "No winner yet" in second.stdout and "7 seeds, 2 looks" in second.stdout
    bad = report("--columns", "config,pvalue")
    assert bad.returncode == 2 and "unknown column 'pvalue'" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert results_from_store(tmp_path).looks == 2  # a refused report is not a look
    from test_cli_experiments import EXP  # a small valid experiment

    (tmp_path / "exp.toml").write_text(EXP)
    run = report("--columns", " , ", command=("run", str(tmp_path / "exp.toml")))
    assert run.returncode == 2 and "no column named; choose from rank" in run.stderr
    assert not (tmp_path / "runs").exists()  # refused before anything is trained or written


# --------------------------------------------------------------------------- the README


def _statistics_section() -> str:
    readme = (REPO / "README.md").read_text()
    start = readme.index("### Statistics\n")
    return readme[start : readme.index("\n### ", start + 1)]


def test_readme_statistics_outputs_are_what_the_code_prints():
    from readme_console import console_blocks  # the README's "$ command / output" blocks

    section = _statistics_section()
    [[(command, expected)]] = console_blocks(section)
    assert command.startswith("python scripts/sequential_calibration.py")
    done = subprocess.run(
        [sys.executable, *command.split()[1:]],
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO / "src")),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.stdout == expected
    # the figures the prose quotes are the ones printed
    for figure in ("25.4%", "3.0%"):
        assert figure in expected and f"**{figure}**" in section
    # the sentence it quotes: 8 seeds, looked at twice
    b = np.array([0.90, 0.91, 0.88, 0.92, 0.89, 0.90, 0.91, 0.87])
    a = b + np.array([0.004, 0.012, 0.001, 0.009, 0.006, 0.015, 0.003, 0.010])
    c = compare_pair(a, b, name_a="a", name_b="b", bounds=(0.0, 1.0), looks=2)
    quoted = re.search(r'\*"\.\.\. (mean difference .*?)"\*', section.replace("\n", " "))
    assert quoted.group(1) in c.sentence


def test_against_the_baseline_the_anytime_p_values_are_holm_adjusted():
    from lrlab.analysis.pairwise import holm

    labels = ["base", "x", "y", "z"]
    values = _accuracies(labels, seeds=12, step=0.004, rng_seed=3)
    table = build_table(values, labels, baseline="base", looks=2, **ACC)
    family = table.comparison.vs_baseline
    adjusted = holm([family[name].anytime.p_value for name in labels[1:]])
    assert adjusted != [family[name].anytime.p_value for name in labels[1:]]
    for name, p in zip(labels[1:], adjusted, strict=True):
        c = family[name]
        assert c.anytime_p_adjusted == p and (c.winner is not None) == (p <= 0.05)
        assert "(Holm)" in c.sentence and table[name].better == (
            None if c.winner is None else c.winner == name
        )
