"""Experiments side by side: ``lrlab report DIR1 DIR2 ...``.

Two experiments can be compared when their seeds mean the same thing: the same data (the
stored data fingerprint; stores written before it was kept are compared by dataset name,
rows and shape, and the table says so), the same data settings (validation, split,
standardize) and the same metric. Then seed ``s`` trained on the same split in both, so
their configs are paired by seed like configs of one experiment: the table holds every
config as ``FOLDER/config``, the baseline the first experiment's. Otherwise
:func:`results_across` raises one line saying what differs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lrlab.analysis.results import ResultTable, build_table, collect
from lrlab.analysis.runs import read_only_store
from lrlab.errors import LrlabError
from lrlab.experiments.trial import higher_is_better

__all__ = ["results_across"]


def _data_identity(meta: dict[str, Any]) -> tuple[str, Any]:
    """(how it was compared, the value): the fingerprint, or the dataset's description."""
    if meta.get("data_fingerprint"):
        return "data fingerprint", meta["data_fingerprint"]
    return "dataset (name, rows, shape)", meta.get("dataset")


def _data_settings(meta: dict[str, Any]) -> dict[str, Any]:
    data = dict((meta.get("canonical") or {}).get("data") or {})
    data.pop("dataset", None)  # the data itself is compared by its identity
    return data


def results_across(directories: list[str | Path], *, metric: str | None = None) -> ResultTable:
    """One results table over the experiments in ``directories`` (module docstring)."""
    stores = []
    for directory in directories:
        with read_only_store(directory) as store:
            stores.append((Path(directory), store.meta(), store.trials()))
    first_dir, first, _ = stores[0]
    metric = metric or str(first.get("metric", "val_accuracy"))
    names = [d.name or str(d) for d, _, _ in stores]
    if len(set(names)) < len(names):
        names = [str(d) for d, _, _ in stores]
    for directory, meta, trials in stores[1:]:
        how, mine = _data_identity(meta)
        _, theirs = _data_identity(first)
        if mine != theirs:
            raise LrlabError(
                f"cannot compare {first_dir} and {directory}: they trained on different "
                f"data ({how} differs)"
            )
        if _data_settings(meta) != _data_settings(first):
            diff = sorted(
                k
                for k in set(_data_settings(meta)) | set(_data_settings(first))
                if _data_settings(meta).get(k) != _data_settings(first).get(k)
            )
            raise LrlabError(
                f"cannot compare {first_dir} and {directory}: their data settings differ "
                f"({', '.join('data.' + k for k in diff)}), so a seed means another split"
            )
        stored = {k for t in trials for k in t.final}
        if trials and metric not in stored:
            raise LrlabError(
                f"cannot compare {first_dir} and {directory}: {directory} stored no {metric!r} "
                f"(it has {', '.join(sorted(stored))})"
            )
    labels: list[str] = []
    parts: dict[str, dict] = {"values": {}, "gaps": {}, "diverged": {}, "failed": {}}
    for (_, meta, trials), name in zip(stores, names, strict=True):
        prefix = f"{name}/"
        labels += [prefix + c for c in meta.get("labels") or []]
        labels += [prefix + t.config for t in trials if prefix + t.config not in labels]
        for key, value in collect(trials, metric, prefix).items():
            parts[key].update(value)
    baseline = f"{names[0]}/{first.get('baseline') or ''}"
    if baseline not in labels:
        baseline = labels[0] if labels else ""
    how, _ = _data_identity(first)
    return build_table(
        labels=labels,
        metric=metric,
        higher_is_better=higher_is_better(metric),
        baseline=baseline,
        title=" vs ".join(names) + ("" if how == "data fingerprint" else f" (same {how})"),
        **parts,
    )
