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

__all__ = ["RangeTestRun", "lrs_edit", "read_experiment_text", "run_range_test", "with_lrs"]


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

    @property
    def suggested_lrs(self) -> list[float]:
        """The test's suggestions (``min / 10`` and ``steepest``) to 3 significant digits,
        ascending, without repeats: what ``lrlab find-lr --write`` puts in ``lrs``."""
        found = (self.test.min_over_10, self.test.steepest)
        return sorted({float(f"{v:.3g}") for v in found if v is not None})


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
    trial = next((t for t in trials if t.seed == seed), None)
    if trial is None:
        seeds = ", ".join(str(t.seed) for t in trials[:8]) + (" ..." if len(trials) > 8 else "")
        raise LrlabError(f"--seed {seed} is not a seed of {source}; use one of: {seeds}")
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


def with_lrs(path: Path, text: str, lrs: list[float]) -> str:
    """``text`` (the experiment file at ``path``) with ``[experiment] lrs = lrs``, checked to
    plan as a valid experiment (a baseline may name an lr of the old list), else an
    :class:`~lrlab.errors.LrlabError` and nothing to write."""
    from lrlab.experiments.config import config_from_dict
    from lrlab.experiments.config_edit import format_lrs, set_experiment_lrs
    from lrlab.experiments.plan import build_plan

    edited = set_experiment_lrs(text, lrs, str(path))
    try:
        raw = tomllib.loads(edited)
        config = config_from_dict(raw, source=str(path), base_dir=path.resolve().parent)
        build_plan(config, check_model=False)
    except LrlabError as err:
        raise LrlabError(
            f"with lrs = {format_lrs(lrs)} the file would not load ({err}); nothing written"
        ) from None
    return edited


def read_experiment_text(path: Path) -> str:
    """The experiment file's text (UTF-8), or one line saying why it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise LrlabError(f"cannot read {path}: {err}") from None


def lrs_edit(path: Path, text: str, lrs: list[float]) -> tuple[str, str]:
    """``(edited text, unified diff)`` of setting ``lrs`` in the experiment file whose text
    was ``text`` when the range test started (:func:`with_lrs`); refused when there is no
    suggestion or the file changed meanwhile."""
    import difflib

    if not lrs:
        raise LrlabError(f"no suggestion to write: {path} is unchanged")
    if read_experiment_text(path) != text:
        raise LrlabError(f"{path} changed while the test ran; nothing written")
    edited = with_lrs(path, text, lrs)
    lines = (text.splitlines(keepends=True), edited.splitlines(keepends=True))
    return edited, "".join(difflib.unified_diff(*lines, str(path), str(path)))
