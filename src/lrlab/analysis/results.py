"""The results table of an experiment, built from its store alone.

One row per config (schedule x optimizer x lr): the metric's mean +- std over the seeds
whose trial finished ``ok``, its 95% t-interval (clipped to the metric's range:
:func:`lrlab.experiments.trial.metric_range`) and ``n``; the paired comparison with the
baseline config by seed (``config - baseline``: mean difference with the bootstrap interval
the verdict quotes, paired t-test and Wilcoxon p-values, Cohen's ``d_z``, and the
anytime-valid interval and p-value of :func:`lrlab.analysis.comparisons.anytime_interval`);
the mean train/validation gap; and how many trials diverged or failed. Rows are ranked
best first. Diverged and failed trials carry no final value, so they are counted, not
averaged.

:class:`ResultTable` is plain data: a list of :class:`ResultRow` dataclasses (no pandas
needed) with what they measure; ``to_dicts()`` it, or ``to_pandas()`` when pandas is
installed. Rendering it (the terminal table, Markdown, the cells and the footnote) is
:mod:`lrlab.reporting.tables`' job: ``print_results(table)``, ``results_markdown(table)``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from lrlab.analysis.comparisons import compare_seed_maps
from lrlab.analysis.stats import Paired, Summary, paired, rank, summarize
from lrlab.errors import LrlabError
from lrlab.experiments.trial import metric_range

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
    # The anytime-valid interval of ``diff`` and its p-value (NaN: one seed, no interval).
    anytime_low: float = math.nan
    anytime_high: float = math.nan
    p_anytime: float = math.nan
    anytime_method: str = ""


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
    looks: int = 0  # printed verdicts so far (Store.record_look); 2+: the anytime rule

    @property
    def anytime_rule(self) -> bool:
        """True when the verdicts are the anytime-valid test's (looked at twice or more)."""
        return self.looks >= 2

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

    def __repr__(self) -> str:
        """One line: what was measured, how many configs, the best (not every field).

        >>> table = build_table({"a": {0: 0.9, 1: 0.8}}, ["a"], metric="val_accuracy",
        ...                     higher_is_better=True, baseline="a")
        >>> table
        <ResultTable val_accuracy (higher is better): 1 config, best 'a' 0.8500, baseline 'a'>
        """
        better = "higher" if self.higher_is_better else "lower"
        head = f"<ResultTable {self.metric} ({better} is better): {len(self.rows)} config"
        head += "" if len(self.rows) == 1 else "s"
        if self.rows:
            head += f", best {self.best.config!r} {self.best.mean:.4f}"
        head += f", baseline {self.baseline!r}"
        return head + (f", out={str(self.out)!r}>" if self.out is not None else ">")

    def to_dicts(self) -> list[dict[str, Any]]:
        return [dataclasses.asdict(r) for r in self.rows]

    def epoch_records(self) -> list[dict[str, Any]]:
        """One dict per stored trial and epoch, read from the store in ``out``.

        Keys: ``config``, ``schedule``, ``optimizer``, ``lr`` (the config's lr, None when
        the schedule sets it), ``seed``, ``status``, ``epoch``, ``epoch_lr`` (the lr of the
        epoch's last update), then the epoch's metrics under their Keras names.
        """
        from lrlab.experiments.store import Store

        if self.out is None:
            raise LrlabError("this table has no experiment folder (out) to read epochs from")
        with Store.open(self.out) as store:
            trials = store.trials()
            per_epoch = store.epochs()
        records = []
        for t in trials:
            trial = {
                "config": t.config,
                "schedule": t.schedule,
                "optimizer": t.optimizer,
                "lr": t.lr,
                "seed": t.seed,
                "status": t.status,
            }
            for row in per_epoch.get(t.key, []):
                metrics = {k: v for k, v in row.items() if k not in ("epoch", "lr")}
                records.append({**trial, "epoch": row["epoch"], "epoch_lr": row["lr"], **metrics})
        return records

    def to_pandas(self, *, epochs: bool = False):
        """A ``pandas.DataFrame``: one row per config, or with ``epochs=True`` one row per
        trial and epoch (:meth:`epoch_records`). pandas is optional; without it, an
        :class:`~lrlab.errors.LrlabError` says how to install it.
        """
        try:
            import pandas as pd
        except ImportError:
            raise LrlabError(
                "to_pandas needs pandas, which lrlab does not install: pip install pandas "
                "(or use .to_dicts() / .epoch_records())"
            ) from None
        return pd.DataFrame(self.epoch_records() if epochs else self.to_dicts())


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
    looks: int = 0,
) -> ResultTable:
    """Assemble a :class:`ResultTable` from per-config ``{seed: value}`` maps.

    ``looks``: how often a verdict was printed (2 or more: the anytime-valid rule decides).
    """
    bounds = metric_range(metric)
    summaries = {c: _clipped(summarize(values.get(c, {}).values()), bounds) for c in labels}
    base = values.get(baseline, {})
    order = rank(labels, summaries, higher_is_better=higher_is_better)
    comparison = _honest(values, labels, baseline, higher_is_better, bounds, looks)
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
                diff_ci_low=vs.mean_diff_ci.low if vs is not None and cmp.n > 1 else math.nan,
                diff_ci_high=vs.mean_diff_ci.high if vs is not None and cmp.n > 1 else math.nan,
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
    return ResultTable(
        rows, metric, higher_is_better, baseline, title, out, comparison, vary, looks
    )


def _clipped(s: Summary, bounds: tuple[float, float]) -> Summary:
    """The summary with its interval inside the metric's range (an accuracy never above 1)."""
    low, high = bounds
    if math.isnan(s.ci_low):
        return s
    return dataclasses.replace(
        s, ci_low=min(max(s.ci_low, low), high), ci_high=max(min(s.ci_high, high), low)
    )


def _honest(values, labels, baseline, higher_is_better, bounds, looks):
    """The honest comparison of the configs (None when there are none)."""
    if not labels:
        return None
    return compare_seed_maps(
        {c: values.get(c, {}) for c in labels},
        baseline=baseline if baseline in labels else None,
        higher_is_better=higher_is_better,
        bounds=bounds,
        looks=looks,
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
        **_anytime_fields(c.anytime),
    }


def _anytime_fields(av) -> dict[str, Any]:
    if av is None:
        return {}
    return {
        "anytime_low": av.low,
        "anytime_high": av.high,
        "p_anytime": av.p_value,
        "anytime_method": av.method,
    }


def results_from_store(
    directory: str | Path,
    *,
    metric: str | None = None,
    baseline: str | None = None,
    looks: int | None = None,
) -> ResultTable:
    """The results table of the experiment stored in ``directory``.

    ``metric`` and ``baseline`` default to the experiment file's; any stored final metric
    (``val_loss``, ``accuracy``, ``train_val_gap``...) can be chosen. The looks counted in
    the store (:meth:`lrlab.experiments.store.Store.record_look`), or ``looks``, pick the
    verdict's rule.
    """
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
    if known and metric not in known:  # none: every trial failed, the table counts them
        raise LrlabError(f"no stored metric {metric!r}; stored: {', '.join(known)}")
    if labels and baseline not in labels:
        raise LrlabError(f"no config {baseline!r} in {directory}; configs: {', '.join(labels)}")
    return build_table(
        labels=labels,
        metric=metric,
        higher_is_better=higher_is_better(metric),
        baseline=baseline,
        title=str(meta.get("title", "")),
        out=Path(directory),
        vary=config.varied if config is not None else None,
        looks=int(meta.get("looks", 0)) if looks is None else looks,
        **collect(trials, metric),
    )


def collect(trials: Iterable[Any], metric: str, prefix: str = "") -> dict[str, dict]:
    """:func:`build_table`'s ``values``, ``gaps``, ``diverged`` and ``failed`` from stored
    trials; config names get ``prefix`` (experiments side by side)."""
    values: dict[str, dict[int, float]] = {}
    gaps: dict[str, list[float]] = {}
    diverged: dict[str, int] = {}
    failed: dict[str, int] = {}
    for t in trials:
        config = prefix + t.config
        if t.status == "ok":
            v = t.final.get(metric)
            if v is not None and math.isfinite(v):
                values.setdefault(config, {})[t.seed] = float(v)
            if "train_val_gap" in t.final:
                gaps.setdefault(config, []).append(float(t.final["train_val_gap"]))
        elif t.status == "diverged":
            diverged[config] = diverged.get(config, 0) + 1
        else:
            failed[config] = failed.get(config, 0) + 1
    return {"values": values, "gaps": gaps, "diverged": diverged, "failed": failed}
