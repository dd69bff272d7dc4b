"""The results table of an experiment, built from its store alone.

One row per config (schedule x optimizer x lr): the metric's mean +- std over the seeds
whose trial finished ``ok``, its 95% t-interval and ``n``; the paired comparison with the
baseline config by seed (``config - baseline``: mean difference with its interval, paired
t-test and Wilcoxon p-values, Cohen's ``d_z``); the mean train/validation gap; and how
many trials diverged or failed. Rows are ranked best first. Diverged and failed trials
carry no final value, so they are counted, not averaged.

:class:`ResultTable` is plain data: a list of :class:`ResultRow` dataclasses (no pandas
needed) with what they measure; ``to_dicts()`` it, or ``to_pandas()`` when pandas is
installed. Rendering it (the terminal table, Markdown, the cells and the footnote) is
:mod:`lrlab.reporting.tables`' job: ``print_results(table)``, ``results_markdown(table)``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lrlab.analysis.comparisons import compare_seed_maps
from lrlab.analysis.stats import Paired, Summary, paired, rank, summarize

__all__ = ["ResultRow", "ResultTable", "results_from_store"]


@dataclasses.dataclass(frozen=True)
class ResultRow:
    """One config's statistics (see the module docstring)."""

    rank: int
    config: str
    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float
    diff: float
    diff_ci_low: float
    diff_ci_high: float
    p_ttest: float
    p_wilcoxon: float
    cohen_dz: float
    n_paired: int
    gap: float
    diverged: int
    failed: int
    is_baseline: bool = False
    # Honest comparison with the baseline (lrlab.analysis.comparisons): P(config better than
    # baseline) over paired seeds (ties half) with its Wilson 95% interval, the almost-stochastic-
    # order eps_min (< 0.5: config better), the Wilcoxon p Holm-adjusted over the configs, the
    # seeds that would separate the two (80% power), and the verdict in plain language.
    p_better: float = math.nan
    p_better_ci_low: float = math.nan
    p_better_ci_high: float = math.nan
    eps_min: float = math.nan
    p_holm: float = math.nan
    seeds_needed: int | None = None
    better: bool | None = None  # the verdict: better / worse than the baseline, None: not yet
    verdict: str = ""


@dataclasses.dataclass
class ResultTable:
    """Rows best first, with what they measure; ``table[0]`` is the best config.

    Plain data: :mod:`lrlab.reporting.tables` renders it (``print_results(table)``,
    ``results_markdown(table)``, ``results_cells(table)``, ``results_footnote(table)``).
    """

    rows: list[ResultRow]
    metric: str
    higher_is_better: bool
    baseline: str
    title: str = ""
    out: Path | None = None
    comparison: Any = None  # lrlab.analysis.comparisons.ConfigComparison
    vary: tuple[str, ...] | None = None  # what a seed changed: split, init, order

    @property
    def verdict(self) -> str:
        """Best vs runner-up in plain language: a winner only when the comparison is conclusive."""
        return self.comparison.sentence if self.comparison is not None else ""

    def __iter__(self) -> Iterator[ResultRow]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: int | str) -> ResultRow:
        if isinstance(key, str):
            for row in self.rows:
                if row.config == key:
                    return row
            raise KeyError(key)
        return self.rows[key]

    @property
    def best(self) -> ResultRow:
        return self.rows[0]

    def to_dicts(self) -> list[dict[str, Any]]:
        return [dataclasses.asdict(r) for r in self.rows]

    def to_pandas(self):
        """A ``pandas.DataFrame`` of the rows (pandas is optional; install it to use this)."""
        import pandas as pd

        return pd.DataFrame(self.to_dicts())


def build_table(
    values: dict[str, dict[int, float]],
    labels: list[str],
    *,
    metric: str,
    higher_is_better: bool,
    baseline: str,
    gaps: dict[str, list[float]] | None = None,
    diverged: dict[str, int] | None = None,
    failed: dict[str, int] | None = None,
    title: str = "",
    out: Path | None = None,
    vary: list[str] | tuple[str, ...] | None = None,
) -> ResultTable:
    """Assemble a :class:`ResultTable` from per-config ``{seed: value}`` maps."""
    summaries: dict[str, Summary] = {c: summarize(values.get(c, {}).values()) for c in labels}
    base = values.get(baseline, {})
    order = rank(labels, summaries, higher_is_better=higher_is_better)
    comparison = _honest(values, labels, baseline, higher_is_better)
    rows = []
    for i, label in enumerate(order, start=1):
        s = summaries[label]
        cmp: Paired = paired(values.get(label, {}), base)
        vs = comparison.vs_baseline.get(label) if comparison is not None else None
        g = [x for x in (gaps or {}).get(label, []) if math.isfinite(x)]
        rows.append(
            ResultRow(
                rank=i,
                config=label,
                n=s.n,
                mean=s.mean,
                std=s.std,
                ci_low=s.ci_low,
                ci_high=s.ci_high,
                diff=cmp.mean_diff,
                diff_ci_low=cmp.ci_low,
                diff_ci_high=cmp.ci_high,
                p_ttest=cmp.p_ttest,
                p_wilcoxon=cmp.p_wilcoxon,
                cohen_dz=cmp.cohen_dz,
                n_paired=cmp.n,
                gap=sum(g) / len(g) if g else math.nan,
                diverged=(diverged or {}).get(label, 0),
                failed=(failed or {}).get(label, 0),
                is_baseline=label == baseline,
                **_honest_fields(vs),
            )
        )
    vary = tuple(vary) if vary is not None else None
    return ResultTable(rows, metric, higher_is_better, baseline, title, out, comparison, vary)


def _honest(values, labels, baseline, higher_is_better):
    """The honest comparison of the configs (None when there are none)."""
    if not labels:
        return None
    return compare_seed_maps(
        {c: values.get(c, {}) for c in labels},
        baseline=baseline if baseline in labels else None,
        higher_is_better=higher_is_better,
    )


def _honest_fields(c) -> dict[str, Any]:
    """The :class:`ResultRow` fields of one config's comparison with the baseline."""
    if c is None:
        return {}
    return {
        "p_better": c.p_a_better,
        "p_better_ci_low": c.p_a_better_ci.low,
        "p_better_ci_high": c.p_a_better_ci.high,
        "eps_min": math.nan if c.eps_min is None else c.eps_min,
        "p_holm": c.p_value_adjusted,
        "seeds_needed": c.seeds_needed,
        "better": None if c.winner is None else c.winner == c.name_a,
        "verdict": c.sentence,
    }


def results_from_store(
    directory: str | Path, *, metric: str | None = None, baseline: str | None = None
) -> ResultTable:
    """The results table of the experiment stored in ``directory``.

    ``metric`` and ``baseline`` default to the experiment file's; any stored final metric
    (``val_loss``, ``accuracy``, ``train_val_gap``...) can be chosen.
    """
    from lrlab.errors import LrlabError
    from lrlab.experiments.store import Store
    from lrlab.experiments.trial import higher_is_better

    with Store.open_read_only(directory) as store:
        meta = store.meta()
        trials = store.trials()
        config = store.config()
    labels = list(meta.get("labels") or [])
    for t in trials:
        if t.config not in labels:
            labels.append(t.config)
    metric = metric or meta.get("metric", "val_accuracy")
    baseline = baseline or meta.get("baseline") or (labels[0] if labels else "")
    known = sorted({k for t in trials for k in t.final})
    if trials and metric not in known:
        raise LrlabError(f"no stored metric {metric!r}; stored: {', '.join(known)}")
    if labels and baseline not in labels:
        raise LrlabError(f"no config {baseline!r} in {directory}; configs: {', '.join(labels)}")
    values: dict[str, dict[int, float]] = {}
    gaps: dict[str, list[float]] = {}
    diverged: dict[str, int] = {}
    failed: dict[str, int] = {}
    for t in trials:
        if t.status == "ok":
            v = t.final.get(metric)
            if v is not None and math.isfinite(v):
                values.setdefault(t.config, {})[t.seed] = float(v)
            if "train_val_gap" in t.final:
                gaps.setdefault(t.config, []).append(float(t.final["train_val_gap"]))
        elif t.status == "diverged":
            diverged[t.config] = diverged.get(t.config, 0) + 1
        else:
            failed[t.config] = failed.get(t.config, 0) + 1
    return build_table(
        values,
        labels,
        metric=metric,
        higher_is_better=higher_is_better(metric),
        baseline=baseline,
        gaps=gaps,
        diverged=diverged,
        failed=failed,
        title=str(meta.get("title", "")),
        out=Path(directory),
        vary=config.varied if config is not None else None,
    )

