"""Experiments that grow: more seeds, configs or lrs reuse every stored trial.

A stored trial is reused when its identity (:mod:`lrlab.experiments.identity`) is planned
again. Before a run, :func:`reconcile` compares the plan with the store:

- the shared part (data, split, model and its code, training, ``vary``) must be the
  same: a change is refused in one line naming the field, its old and new value, and the
  two ways on (restore it, or ``--new``);
- a config label the store knows must keep its identity (an edited spec or optimizer
  argument under an existing label is refused the same way);
- a stored config whose label is no longer planned but whose identity is (a second
  optimizer or lr changes every label) is stored under its new label;
- other stored configs stay in the store, out of the report (``lrlab export --all``).

The seeds only grow: a rerun runs the stored seeds plus the file's, and ``--seeds N``
adds the smallest unused seeds up to ``N`` (:func:`grown_seeds`). :func:`check_size`
refuses a plan above :data:`TRIAL_LIMIT` without ``yes``; :func:`grow_command` is the
command line that adds seeds, for a verdict that wants more.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from lrlab.errors import LrlabError
from lrlab.experiments.config import ExperimentConfig, config_hash
from lrlab.experiments.identity import (
    code_file,
    config_identity,
    first_difference,
    shared_identity,
)
from lrlab.experiments.plan import GridPoint, Plan, count_trials
from lrlab.experiments.store import Store, StoreError

__all__ = [
    "TRIAL_LIMIT",
    "check_size",
    "count_stored",
    "grow_command",
    "grown_seeds",
    "reconcile",
    "stored_seeds",
]

#: Plans with more trials than this need ``--yes``.
TRIAL_LIMIT = 200_000

#: The order in which the shared identity's parts are compared (the first change is named).
_SHARED_ORDER = ("data_fingerprint", "data", "model", "training", "vary", "code")

_WAYS_ON = "restore it, or rerun with --new to start over (the old store is kept beside it)"


def grow_command(directory: str | Path, seeds: int, experiment: str | Path | None = None) -> str:
    """The command that grows the experiment stored in ``directory`` to ``seeds`` seeds.

    ``experiment`` (the TOML file) defaults to the file the store was run from.

    >>> grow_command("runs/exp", 30, "exp.toml")
    'lrlab run exp.toml --out runs/exp --seeds 30'
    """
    if experiment is None:
        with Store.open(directory) as store:
            experiment = store.meta().get("config_source") or "EXPERIMENT.toml"
    return shlex.join(
        ["lrlab", "run", str(experiment), "--out", str(directory), "--seeds", str(seeds)]
    )


def stored_seeds(out: Path) -> list[int]:
    """The seeds of the experiment stored in ``out`` (none without a store)."""
    if not Store.exists_in(out):
        return []
    with Store.open(out) as store:
        meta = store.meta()
    if isinstance(meta.get("seeds"), list):
        return [int(s) for s in meta["seeds"]]
    canonical = meta.get("canonical") or {}
    return [int(s) for s in (canonical.get("experiment") or {}).get("seeds") or []]


def grown_seeds(
    stored: Sequence[int], listed: Sequence[int], count: int | None = None
) -> list[int]:
    """The stored seeds, then the file's new ones, then (``count``) the smallest unused
    seeds until there are ``count``. Seeds only grow: a smaller ``count`` is refused.

    >>> grown_seeds([0, 1, 2], [0, 1], 5)
    [0, 1, 2, 3, 4]
    >>> grown_seeds([], [0, 1, 7], 4)
    [0, 1, 7, 2]
    """
    seeds = list(stored)
    have = set(seeds)
    seeds += [s for s in listed if s not in have]
    if count is None:
        return seeds
    if count < len(seeds):
        raise LrlabError(
            f"--seeds {count}: the experiment already has {len(seeds)} seeds and seeds are "
            f"never dropped; give --seeds {len(seeds)} or more"
        )
    have = set(seeds)
    candidate = 0
    while len(seeds) < count:
        if candidate not in have:
            seeds.append(candidate)
        candidate += 1
    return seeds


def check_size(config: ExperimentConfig, n_seeds: int, yes: bool, limit: int = TRIAL_LIMIT) -> int:
    """The plan's trial count (from the file alone); above ``limit`` without ``yes``, refused."""
    total = count_trials(config, n_seeds)
    if total > limit and not yes:
        raise LrlabError(
            f"{config.source}: {total:,} trials ({total // n_seeds:,} configs x {n_seeds:,} "
            f"seeds) is more than {limit:,}; rerun with --yes to run them, or plan fewer"
        )
    return total


def plan_identity(plan: Plan) -> dict[str, Any]:
    """The shared identity of every trial of ``plan``."""
    return shared_identity(plan.canonical, plan.fingerprint, plan.code)


def reconcile(store: Store, plan: Plan, out: Path, *, apply: bool) -> list[tuple[str, str]]:
    """Refuse a plan that would change stored trials; return (and with ``apply``, do) the
    relabels ``(stored label, planned label)`` of configs whose label changed."""
    meta = store.meta()
    old = meta.get("identity") or _legacy_identity(meta, plan, out)
    new = plan_identity(plan)
    for part in _SHARED_ORDER:
        before, after = old.get(part), new.get(part)
        if part == "code":  # a function new to the file is a new config's, not a change
            before = {k: v for k, v in (before or {}).items() if k in (after or {})}
            after = {k: v for k, v in (after or {}).items() if k in before}
        found = first_difference(before, after, part)
        if found is not None:
            raise StoreError(_shared_refusal(out, plan, *found))
    stored = store.config_params()
    planned = {p.label: p for p in plan.points}
    for label, point in planned.items():
        if label in stored:
            params, n = stored[label]
            found = first_difference(config_identity(params), _identity(point))
            if found is not None:
                raise StoreError(_config_refusal(out, point, n, *found))
    orphans = {
        _key(config_identity(params)): label
        for label, (params, _) in stored.items()
        if label not in planned
    }
    relabels = []
    for label, point in planned.items():
        if label not in stored and (match := orphans.pop(_key(_identity(point)), None)):
            relabels.append((match, label))
            if apply:
                store.relabel(match, label, point.schedule_label, point.optimizer_label)
    return relabels


def count_stored(store: Store, labels: Iterable[str], seeds: Iterable[int]) -> int:
    """How many planned ``(label, seed)`` trials the store holds as final."""
    labels, seeds = set(labels), set(seeds)
    return sum(1 for c, s in store.finished_pairs() if c in labels and s in seeds)


def _identity(point: GridPoint) -> dict[str, Any]:
    return config_identity(point.trial(0, ()).params())


def _key(identity: dict[str, Any]) -> str:
    import json

    return json.dumps(identity, sort_keys=True, default=str)


def _legacy_identity(meta: dict[str, Any], plan: Plan, out: Path) -> dict[str, Any]:
    """The shared identity of a store written before experiments grew (no ``identity``):
    from its canonical settings, once its hash proves the data is the same."""
    canonical = meta.get("canonical")
    if not isinstance(canonical, dict) or config_hash(canonical, plan.fingerprint) != meta.get(
        "config_hash"
    ):
        raise StoreError(
            f"{out}: the data changed since the stored trials were trained (its fingerprint "
            f"differs); {_WAYS_ON}"
        )
    return shared_identity(canonical, plan.fingerprint, plan.code)


def _shared_refusal(out: Path, plan: Plan, field: str, old: Any, new: Any) -> str:
    if field == "data_fingerprint":
        return (
            f"{out}: the data's contents changed since the stored trials were trained "
            f"(fingerprint {str(old)[:12]} -> {str(new)[:12]}); {_WAYS_ON}"
        )
    if field.startswith("code."):
        ref = field.removeprefix("code.")
        return (
            f"{out}: the code of {ref} ({code_file(ref)}) changed since the stored trials "
            f"were trained with it; {_WAYS_ON}"
        )
    return (
        f"{out}: {field} changed from {_show(old)} to {_show(new)}, but the stored trials "
        f"were trained with {_show(old)}; {_WAYS_ON}"
    )


def _config_refusal(out: Path, point: GridPoint, n: int, field: str, old: Any, new: Any) -> str:
    if field == "spec":
        name = f"schedules.{point.schedule_label}"
    elif field.startswith("optimizer_params."):
        name = f"optimizers.{point.optimizer_label}.{field.removeprefix('optimizer_params.')}"
    else:
        name = f"schedules.{point.schedule_label}.{field}"
    return (
        f"{out}: {name} changed from {_show(old)} to {_show(new)}, but the {n} stored trials "
        f"of {point.label!r} were trained with {_show(old)}; {_WAYS_ON}"
    )


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
