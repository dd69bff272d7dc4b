"""``lrlab find-lr``: the LR range test on an experiment's own model and data.

The experiment (a TOML file, or a folder holding a store, whose stored file is used) is
planned exactly as ``lrlab run`` plans it: same data, split and standardization for the
seed, same model built from the seed, same optimizer as the chosen config (the baseline by
default), same loss and batch size. :func:`lrlab.keras.find_lr` then ramps the lr
exponentially from ``start`` to ``end`` over ``steps`` updates and records the training
loss; the suggestion is where the smoothed loss falls fastest (else the lr of its minimum
divided by 10). Nothing is stored: the model is thrown away afterwards. The figure is
:func:`lrlab.reporting.find_lr.range_test_figure`.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

from lrlab.errors import LrlabError
from lrlab.range_test import RangeTest

__all__ = ["RangeTestRun", "run_range_test"]


@dataclasses.dataclass(frozen=True)
class RangeTestRun:
    """A range test and what it ran on."""

    test: RangeTest
    title: str
    config: str
    optimizer: dict[str, Any]
    seed: int
    batch_size: int
    rows: int


def _load(source: Path):
    from lrlab.experiments.config import config_from_dict, load_config
    from lrlab.experiments.store import Store

    if source.is_dir():
        with Store.open_read_only(source) as store:
            meta = store.meta()
        origin = str(meta.get("config_source") or "")
        text = str(meta.get("config_text") or "")
        if origin == "lrlab.compare" or not text:
            raise LrlabError(
                f"{source} was made by lrlab.compare in Python (its model and data are not in "
                "the store); run lrlab.keras.find_lr(model, x, y) from Python instead"
            )
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:  # pragma: no cover - it was valid when run
            raise LrlabError(f"{source}: the stored experiment file is not TOML: {err}") from None
        base = Path(origin).resolve().parent
        return config_from_dict(raw, source=origin, base_dir=base, text=text)
    return load_config(source)


def run_range_test(
    source: str | Path,
    *,
    config: str | None = None,
    seed: int = 0,
    start: float = 1e-7,
    end: float = 10.0,
    steps: int = 100,
    batch_size: int | None = None,
) -> RangeTestRun:
    """Run the LR range test for ``config`` (default: the baseline) of the experiment.

    Raises:
        LrlabError: a bad experiment file or folder, an unknown config, or bad ramp values.
    """
    import keras

    from lrlab.experiments.engines.keras import loss_for, make_optimizer, targets_for
    from lrlab.experiments.plan import build_plan
    from lrlab.keras import find_lr

    source = Path(source)
    plan = build_plan(_load(source))
    label = config or plan.baseline
    if label not in plan.labels:
        shown = ", ".join(plan.labels[:8]) + (" ..." if len(plan.labels) > 8 else "")
        raise LrlabError(f"no config {label!r} in {source}; use one of: {shown}")
    trials = [t for t in plan.trials if t.config == label]
    trial = next((t for t in trials if t.seed == seed), trials[0])
    ds = plan.dataset
    split = plan.split(trial.split_seed)
    model = plan.model.build(ds.input_shape, ds.task, ds.n_classes, trial.init_seed)
    params = trial.optimizer_params
    model.compile(optimizer=make_optimizer(params, float(start)), loss=loss_for(plan))
    size = batch_size or plan.batch_size
    try:
        test = find_lr(
            model,
            split.x_train,
            targets_for(split.y_train, ds.task),
            start=start,
            end=end,
            steps=steps,
            batch_size=size,
            seed=trial.order_seed,
        )
    finally:
        keras.backend.clear_session(free_memory=False)
    return RangeTestRun(
        test, plan.config.title, label, params, trial.seed, size, len(split.y_train)
    )
