"""``lrlab find-lr``: the LR range test on an experiment's own model and data.

The experiment (a TOML file, or a folder holding a store, whose stored file is used) is
planned exactly as ``lrlab run`` plans it: same data, split and standardization for the
seed, same model built from the seed, same optimizer as the chosen config (the baseline by
default), same loss and batch size. :func:`lrlab.keras.find_lr` then ramps the lr
exponentially from ``start`` to ``end`` over ``steps`` updates and records the training
loss; the suggestion is where the smoothed loss falls fastest (else the lr of its minimum
divided by 10). Nothing is stored: the model is thrown away afterwards.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from lrlab.errors import LrlabError

__all__ = ["RangeTestRun", "range_test_figure", "run_range_test"]


@dataclasses.dataclass(frozen=True)
class RangeTestRun:
    """A range test and what it ran on."""

    test: Any  # lrlab.range_test.RangeTest
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
        with Store.open(source) as store:
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


def range_test_figure(run: RangeTestRun) -> Figure:
    """Smoothed loss against lr (log x), both suggestions as lines, the chosen one as a dot."""
    import matplotlib
    import numpy as np

    from lrlab.reporting.figures import RC, legend_label

    test = run.test
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(8, 4.8), layout="constrained")
        ax = fig.add_subplot()
        ax.plot(test.lrs, test.losses, color="0.75", lw=0.8, label="loss of each batch")
        test.plot(ax=ax)
        chosen = test.suggestion
        if chosen is not None and len(test.lrs):
            i = int(np.argmin(np.abs(np.log(test.lrs) - np.log(chosen))))
            (dot,) = ax.plot(
                test.lrs[i],
                test.smoothed[i],
                "o",
                color="tab:red",
                ms=8,
                zorder=5,
                label=f"suggested lr {chosen:.3g}",
            )
            dot.set_gid("suggestion")
        finite = test.smoothed[np.isfinite(test.smoothed)]
        if finite.size:
            low, high = float(finite.min()), float(finite.max())
            pad = 0.08 * (high - low or 1.0)
            ax.set_ylim(low - pad, high + pad)
        opt = run.optimizer.get("type", "?")
        ax.set_title(
            legend_label(
                f"LR range test: {run.title}, config {run.config} ({opt}, seed {run.seed}, "
                f"batch {run.batch_size})",
                90,
            )
        )
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left", framealpha=0.85)
    return fig
