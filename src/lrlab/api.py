"""``lrlab.compare``: the experiment runner from Python, with in-memory data and model functions.

It builds the same validated config an experiment file would, runs it through the same
runner into the same kind of store (so it resumes, and ``lrlab report``/``lrlab export``
work on its folder), and returns the results table.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from lrlab.analysis.results import ResultTable, results_from_store
from lrlab.errors import LrlabError
from lrlab.experiments.config import config_from_dict
from lrlab.experiments.datasets import Dataset, from_arrays
from lrlab.experiments.models import ModelSpec, parse_model
from lrlab.experiments.plan import build_plan
from lrlab.experiments.runner import run_plan
from lrlab.schedules import Schedule

__all__ = ["compare"]


def compare(
    model: Callable[..., Any] | str,
    data: str | Dataset | tuple[Any, Any],
    schedules: Sequence[str] | Mapping[str, Any],
    *,
    seeds: int | Sequence[int] = 10,
    optimizers: str | Mapping[str, Any] = "sgd",
    lrs: Sequence[float] | None = None,
    epochs: int = 20,
    batch_size: int = 32,
    validation: float | str | tuple[Any, Any] = 0.2,
    split: str = "stratified",
    standardize: bool = True,
    task: str = "auto",
    schedule_unit: str = "step",
    metrics: Sequence[str] | None = None,
    metric: str | None = None,
    baseline: str | None = None,
    vary: Sequence[str] = ("split", "init", "order"),
    out: str | Path | None = None,
    new: bool = False,
    engine: str | None = None,
    quiet: bool = False,
) -> ResultTable:
    """Train every schedule (x optimizer x lr) over ``seeds`` and return the results table.

    Args:
        model: a function returning an uncompiled Keras model (called with the keyword
            arguments it accepts among ``input_shape``, ``n_outputs`` and ``task``), or a
            model spec such as ``"mlp(hidden=[34])"``.
        data: a dataset reference (``"digits"``, ``"csv:PATH"``...), a
            :class:`~lrlab.experiments.datasets.Dataset`, or arrays ``(x, y)``.
        schedules: spec strings (each is its own label), or ``{label: spec}``; a spec
            may also be a schedule, a Python function ``fn(epoch)`` / ``fn(epoch, lr)``
            (evaluated per epoch as Keras' ``LearningRateScheduler`` would, from the
            ``lr`` of ``{"function": fn, "lr": 0.1}``), or a ``{"spec": ..., "plateau":
            ...}`` table as in an experiment file.
        seeds: a count or a list of seeds; each seed varies what ``vary`` names.
        optimizers: a type (``"adam"``), or ``{label: {"type": "sgd", "momentum": 0.9}}``.
        lrs: rescale each schedule to peak at each of these lrs (see the config docs).
        validation: a fraction, a holdout reference, or holdout arrays ``(x_val, y_val)``.
        out: the experiment folder; by default ``runs/compare-<hash>``, so calling again
            with the same settings resumes instead of retraining.
        Other arguments mirror the experiment file's fields.

    Returns:
        A :class:`~lrlab.analysis.results.ResultTable` (rows best first; ``.to_dicts()``,
        ``.to_pandas()``; :func:`lrlab.reporting.tables.print_results` prints it);
        ``.out`` is the folder.
    """
    spec = _model(model)
    dataset = None if isinstance(data, str) else _data(data, task)
    holdout = None
    if isinstance(validation, tuple):
        holdout = from_arrays(*validation, name="holdout arrays", task="auto")
        validation_value: float | str = "arrays"
    else:
        validation_value = validation
    if isinstance(schedules, str):
        schedules = [schedules]
    schedule_table = {
        label: _schedule_entry(value)
        for label, value in (
            schedules.items() if isinstance(schedules, Mapping) else ((s, s) for s in schedules)
        )
    }
    if isinstance(optimizers, str):
        optimizers = {optimizers: {"type": optimizers}}
    raw: dict[str, Any] = {
        "experiment": {
            "name": "lrlab.compare",
            "seeds": seeds if isinstance(seeds, int) else list(seeds),
            "vary": list(vary),
        },
        "data": {
            "dataset": data if dataset is None else dataset.name,
            "validation": validation_value,
            "split": split,
            "standardize": standardize,
            "task": task,
        },
        "model": {"spec": spec.text},
        "training": {"epochs": epochs, "batch_size": batch_size, "schedule_unit": schedule_unit},
        "optimizers": {k: v for k, v in optimizers.items()},
        "schedules": schedule_table,
    }
    if lrs is not None:
        raw["experiment"]["lrs"] = [float(v) for v in lrs]
    if metrics is not None:
        raw["training"]["metrics"] = list(metrics)
    for key, value in (("metric", metric), ("baseline", baseline), ("engine", engine)):
        if value is not None:
            raw["experiment"][key] = value
    config = config_from_dict(raw, source="lrlab.compare", base_dir=Path.cwd())
    plan = build_plan(config, dataset=dataset, holdout=holdout, model=spec)
    folder = Path(out) if out is not None else Path("runs") / f"compare-{plan.hash[:10]}"
    config._text = json.dumps(raw, indent=2, default=str)
    run_plan(plan, out=folder, new=new, engine=engine, quiet=quiet)
    return results_from_store(folder)


def _schedule_entry(value: Any) -> Any:
    """A spec, a schedule (its spec) or a function (``{"function": fn}``, tabulated per
    epoch like a ``function`` entry of an experiment file); tables pass through."""
    if isinstance(value, Schedule):
        return str(value)
    if callable(value):
        return {"function": value}
    return value


def _model(model: Callable[..., Any] | str) -> ModelSpec:
    if isinstance(model, str):
        return parse_model(model)
    if not callable(model):
        raise LrlabError(
            f"model must be a function returning a Keras model or a spec, got {model!r}"
        )
    name = f"{getattr(model, '__module__', '?')}:{getattr(model, '__qualname__', repr(model))}"
    return ModelSpec(name, "function", {}, model)


def _data(data: Dataset | tuple[Any, Any], task: str) -> Dataset:
    if isinstance(data, Dataset):
        return data
    if not isinstance(data, tuple) or len(data) != 2:
        raise LrlabError(
            f"data must be a dataset name, a Dataset or a pair (x, y), got {type(data).__name__}"
        )
    ds = from_arrays(*data, task=task)
    digest = hashlib.sha256(ds.fingerprint().encode()).hexdigest()[:12]
    return Dataset(f"arrays:{digest}", ds.x, ds.y, ds.task, ds.classes)
