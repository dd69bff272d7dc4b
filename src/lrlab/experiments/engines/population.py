"""The population engine: hundreds of small trials trained as one vectorized JAX program.

A trial here is exactly a Keras-engine trial (same model, initial weights, batch order,
per-update lr, loss and metrics); what changes is how it runs. This module is the
:class:`~lrlab.experiments.engines.base.Engine` adapter: it groups a plan's trials by
optimizer *structure* (the type and the flags that change the program,
:class:`~.population_optim.OptimizerStructure`; the only thing that changes it within
one experiment: lrs, schedules and numeric hyperparameters such as momentum or betas
are per-trial data), turns each group into the inputs of a
:class:`~.population_chunks.Population` (from the same plan methods the Keras engine
uses), prepares every group, compiles them in parallel threads, then trains group after
group and yields each chunk's :class:`TrialResult` s as soon as they are final.

- :mod:`.population_program`: the jitted training of one group, its trials vmapped or in
  sequence (``trials_at_once``: in sequence for convolutional models);
- :mod:`.population_chunks`: memory budget, chunks, results (and ``train_population``,
  the array-level API); :mod:`.population_memory`: one trial's bytes and multiply-adds;
- :mod:`.population_optim`: Keras' optimizers as pure JAX functions.
- :mod:`.population_caches`: what is kept between runs (programs, weights, batch orders).

The engine object owns what is kept between its runs (compiled programs, initial
weights, batch orders: a :class:`~.population_chunks.PopulationCaches`); a copy sent to
another process (Ray) starts with empty caches. Its memory budget is a constructor
argument (``PopulationEngine(memory=512 << 20)``; default 1 GiB).

The only places that read a :class:`Trial`'s fields are :func:`_optimizer_config`,
:func:`_plateau` and :func:`population_inputs` (seeds, monitor; the lr table comes from
``plan.lr_table(trial)``).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from lrlab.errors import LrlabError
from lrlab.experiments.engines.base import Engine
from lrlab.experiments.engines.frozen_base import BaseFeatures, shortcut_population
from lrlab.experiments.engines.population_chunks import (
    EpochsDone,
    Population,
    PopulationCaches,
    WeightCache,
    device_count,
)
from lrlab.experiments.engines.population_optim import KerasOptimizer
from lrlab.experiments.engines.population_program import trials_at_once
from lrlab.experiments.memory import parse_memory
from lrlab.experiments.progress import counted
from lrlab.experiments.stopping import StopRequest
from lrlab.experiments.trial import OptimizerSettings, Trial, TrialResult, final_metrics
from lrlab.schedules import Plateau

__all__ = ["PopulationEngine", "population_inputs", "trials_at_once"]


class PopulationEngine(Engine):
    """Train a plan's trials in vectorized populations (one group per optimizer structure).

    Results are the Keras engine's (same rows, statuses and final metrics); a trial's
    ``seconds`` is its chunk's wall time divided by the chunk's trial count.
    """

    name = "population"

    def __init__(
        self,
        memory: int | str | None = None,
        devices: int | None = None,
        progress: Callable[[str], None] | None = None,
        stop: StopRequest | None = None,
    ):
        """``memory``: the budget that sets the chunk size, in bytes (or a size such as
        ``"512MB"``, :func:`lrlab.experiments.memory.parse_memory`); ``None``: 1 GiB.
        ``devices``: how many of JAX's devices a chunk's trials are split over (``None``:
        all of them; JAX gives a CPU one device unless asked for more before it starts,
        e.g. ``XLA_FLAGS=--xla_force_host_platform_device_count=2`` or
        ``JAX_NUM_CPU_DEVICES=2``).
        ``progress``: called with a line saying what the engine is doing (preparing and
        compiling each program, with the time it took; between the calls of a long chunk
        of trials the trial-epochs done and the best trial so far; each chunk trained);
        ``None``: silent.
        ``stop``: checked before each group's compile, between chunks and between a
        chunk's calls (a stop there keeps the chunk's trials out of the results: they run
        again on resume)."""
        self.memory = parse_memory(memory)
        self.devices = devices
        self._devices = 1
        self.stop = stop
        self.caches = PopulationCaches()
        self.progress = progress
        self._chunk: int | None = None
        self._modes: list[str] = []  # how the last run's programs run their trials

    def _say(self, text: str) -> None:
        if self.progress is not None:
            self.progress(text)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (e.g. sent to a Ray worker) without the caches and the progress
        callback: compiled programs do not travel; the copy builds its own."""
        return {**self.__dict__, "caches": None, "progress": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, caches=PopulationCaches())

    def describe(self) -> str:
        """What runs: before a run the rule (a chunk's trials vmapped, a convolutional
        model's in sequence: :func:`~.population_program.trials_at_once`) and the devices
        JAX has; once a run has prepared its programs, how their trials ran, the chunk size
        and the devices they were split over."""
        modes = " and ".join(self._modes) or "vmapped; a convolutional model's in sequence"
        chunk = f", {self._chunk} per chunk" if self._chunk else ""
        devices = self._devices if self._chunk else device_count(self.devices)
        spread = f", split over {devices} devices" if devices > 1 else ""
        return f"population engine (trials {modes}{chunk}{spread})"

    def unsupported(self, plan: Any) -> str | None:
        import keras

        if keras.backend.backend() != "jax":
            return f"it needs KERAS_BACKEND=jax (the backend is {keras.backend.backend()})"
        for group in _optimizer_groups(list(plan.iter_trials(plan.seeds[:1]))).values():
            try:
                KerasOptimizer.from_config(_optimizer_config(group[0]))
            except LrlabError as err:
                return str(err)
        return _model_unsupported(plan)

    def batches(self, trials: Sequence[Trial]) -> list[list[Trial]]:
        """One population per optimizer structure (:func:`_optimizer_groups`)."""
        return list(_optimizer_groups(trials).values())

    def run(self, plan: Any, trials: Sequence[Trial]) -> Iterator[TrialResult]:
        """Prepare every group (one per optimizer structure), compile them in parallel threads
        (XLA compiles one program per core), then train group after group."""
        from concurrent.futures import ThreadPoolExecutor

        prepared: list[tuple[list[Trial], Any]] = []
        groups = list(_optimizer_groups(trials).values())
        self._modes = []
        for g, group in enumerate(groups, 1):
            self.check_stop()
            name = f"population program {g}/{len(groups)}"
            seeds = len({t.init_seed for t in group})
            self._say(
                f"preparing {name} ({group[0].optimizer_label}, {len(group)} trials): "
                f"initial weights ({seeds} seeds), tracing"
            )
            try:
                t0 = time.perf_counter()
                population = Population(
                    **population_inputs(
                        plan, group, weights=self.caches.weights, features=self.caches.features
                    ),
                    memory=self.memory,
                    caches=self.caches,
                    devices=self.devices,
                    trials_at_once="auto",  # on the part that trains (a frozen base: the head)
                )
                t1 = time.perf_counter()
                population.lower()
                t2 = time.perf_counter()
                mode = population.program.mode
                self._modes += [mode] if mode not in self._modes else []
                self._say(
                    f"prepared {name} in {t2 - t0:.1f}s (initial weights and inputs "
                    f"{t1 - t0:.1f}s, tracing {t2 - t1:.1f}s): chunks of {population.size} "
                    f"trials {mode}, {population.per_call} epochs a call"
                )
                prepared.append((group, population))
            except Exception as err:  # e.g. an input the engine cannot take: 'failed'
                prepared.append((group, err))
        pool = ThreadPoolExecutor(max(1, min(len(prepared), os.cpu_count() or 1)))
        programs = sum(isinstance(p, Population) for _, p in prepared)
        self._say(f"compiling {programs} population program(s) ({len(trials)} trials)")
        tally = _Tally(plan, len(trials))
        try:
            compiles = [
                pool.submit(p.compile) if isinstance(p, Population) else None for _, p in prepared
            ]
            for g, ((group, population), compiling) in enumerate(
                zip(prepared, compiles, strict=True), 1
            ):
                name = f"population program {g}/{len(prepared)}"
                yield from self._run_group(plan, group, population, compiling, name, tally)
        finally:  # Ctrl-C or a closed generator does not wait for compiles nobody needs
            pool.shutdown(wait=False, cancel_futures=True)

    def _run_group(
        self, plan, trials: list[Trial], population, compiling, name: str, tally: _Tally
    ) -> Iterator[TrialResult]:
        first = plan.metrics[0] if plan.metrics else None
        done: set[int] = set()
        started, t0 = time.time(), time.perf_counter()

        def on_epochs(news: EpochsDone) -> None:
            if news.epochs < news.of:  # between a chunk's calls: a stop drops the chunk
                self.check_stop()
            if news.of > population.per_call:  # a chunk in one call: its trials say it
                self._say(tally.text(trials, news))

        try:
            if isinstance(population, Exception):
                raise population
            self.check_stop()
            seconds = compiling.result()
            self._say(
                f"compiled {name} in {seconds:.1f}s" if seconds else f"{name}: compiled before"
            )
            self._say(f"training {len(trials)} trials x {plan.epochs} epochs")
            for index, result in population.run(on_epochs):
                tally.finished(trials, index, result)
                self._chunk, self._devices = result.chunk_size, population.program.devices
                per_trial = result.seconds / max(len(index), 1)
                for j, i in enumerate(index):
                    rows = result.rows(j)
                    bad = int(result.diverged_epoch[j]) or None
                    done.add(int(i))
                    yield TrialResult(
                        trials[i],
                        "diverged" if bad else "ok",
                        epochs=rows,
                        final=final_metrics(rows, first),
                        diverged_epoch=bad,
                        started=started,
                        seconds=per_trial,
                        engine=self.name,
                        final_with_next=len(index) - 1 - j,  # a chunk: one store transaction
                    )
                self.check_stop()  # before the next chunk is computed
                started = time.time()
                self._say(
                    f"{len(done)}/{len(trials)} trials x {plan.epochs} epochs trained "
                    f"({len(index)} in {result.seconds:.1f}s)"
                )
        except Exception as err:  # the chunk failed: its trials and the rest are 'failed'
            text = str(err).strip()
            message = f"{type(err).__name__}: {text.splitlines()[0][:300]}" if text else ""
            seconds = time.perf_counter() - t0
            for i, trial in enumerate(trials):
                if i not in done:
                    yield TrialResult(
                        trial,
                        "failed",
                        message=message or type(err).__name__,
                        started=started,
                        seconds=seconds,
                        engine=self.name,
                    )


class _Tally:
    """Trial-epochs trained in one :meth:`PopulationEngine.run` and the best trial so far
    (by the plan's metric: finished trials at their last epoch, trials still training at
    their latest), for the progress line between a chunk's calls, e.g.
    ``population: 12,000/25,000 trial-epochs (48%), best so far: cosine val_accuracy=0.9712``.
    """

    def __init__(self, plan: Any, n_trials: int):
        self.epochs = plan.epochs
        self.total = n_trials * plan.epochs
        self.done = 0  # trial-epochs of finished chunks
        self.metric = plan.metric
        self.sign = 1.0 if plan.higher_is_better else -1.0
        self.best: tuple[float, str] | None = None  # (signed value, config)

    def _better(self, best, trials: list[Trial], index, values) -> tuple[float, str] | None:
        for i, value in zip(index, values, strict=True):
            if np.isfinite(value) and (best is None or self.sign * value > best[0]):
                best = (self.sign * float(value), trials[i].config)
        return best

    def finished(self, trials: list[Trial], index, result) -> None:
        self.done += len(index) * self.epochs
        values = result.history.get(self.metric)
        if values is not None:  # a diverged trial is never the best (the runner's rule)
            last = np.where(result.diverged_epoch > 0, np.nan, values[:, -1])
            self.best = self._better(self.best, trials, index, last)

    def text(self, trials: list[Trial], news: EpochsDone) -> str:
        done = self.done + len(news.index) * news.epochs
        line = f"population: {counted(done, self.total, 'trial-epochs')}"
        values = news.latest.get(self.metric)
        best = self.best if values is None else self._better(self.best, trials, news.index, values)
        if best is None:
            return line
        return f"{line}, best so far: {best[1]} {self.metric}={self.sign * best[0]:.4f}"


def _optimizer_groups(trials: Sequence[Trial]) -> dict[Any, list[Trial]]:
    """The trials by optimizer structure (one program each), in first-seen order: trials
    whose optimizers differ only in numbers (momentum, betas, epsilon, ...) are one group.
    A configuration the engine cannot take is a group of its own (refused when run)."""
    keys: dict[OptimizerSettings, Any] = {}
    groups: dict[Any, list[Trial]] = {}
    for trial in trials:
        if trial.optimizer not in keys:
            keys[trial.optimizer] = _structure(trial)
        groups.setdefault(keys[trial.optimizer], []).append(trial)
    return groups


def _structure(trial: Trial) -> Any:
    """The trial's optimizer structure, or its settings if the engine cannot take them."""
    try:
        return KerasOptimizer.from_config(_optimizer_config(trial)).structure
    except LrlabError:
        return trial.optimizer


def _optimizer_config(trial: Trial) -> dict[str, Any]:
    """The trial's optimizer as an experiment-file table (``{"type": "sgd", ...}``)."""
    return trial.optimizer.to_dict()


def _plateau(trial: Trial) -> Plateau | None:
    return trial.plateau


def population_inputs(
    plan: Any,
    trials: Sequence[Trial],
    frozen_base: bool = True,
    weights: WeightCache | None = None,
    features: BaseFeatures | None = None,
) -> dict[str, Any]:
    """:class:`~.population_chunks.Population`'s arguments for ``trials`` of ``plan`` (one
    optimizer structure; each trial's own numbers). A model with a frozen deterministic
    base trains only its head, on the base's outputs computed once per split
    (``frozen_base=False``: the whole model; :func:`~.frozen_base.shortcut_population`).
    ``weights``: the engine's cache of initial weights; the template model it keeps for
    the plan's model answers whether it has a frozen base without building another.
    ``features``: the engine's store of a frozen base's features (a run's optimizer groups
    share them); ``None``: this call's own.

    Everything comes from the same plan methods the Keras engine uses (split, lr table,
    model build, batch order, loss and metrics), so a trial means the same in both.
    """
    from lrlab.experiments.engines.keras import loss_for, make_metrics

    ds = plan.dataset
    model_key = (getattr(plan.model, "text", None), ds.input_shape, ds.task, ds.n_classes)
    # Splits that hold the same rows (e.g. split = "tail", or "split" not in vary) are one.
    seeds = sorted({t.split_seed for t in trials})
    rows: dict[bytes, int] = {}
    split_of: dict[int, int] = {}
    splits = []
    for seed in seeds:
        split = plan.split(seed)
        key = _rows_key(split)
        if key not in rows:
            rows[key] = len(splits)
            splits.append(_TargetSplit(split, ds.task))
        split_of[seed] = rows[key]
    inputs = {
        "build_model": lambda seed: plan.model.build(ds.input_shape, ds.task, ds.n_classes, seed),
        "splits": splits,
        "optimizer": [_optimizer_config(t) for t in trials],
        "lr": np.stack([plan.lr_table(t) for t in trials]).astype(np.float32),
        "init_seeds": [t.init_seed for t in trials],
        "order_seeds": [t.order_seed for t in trials],
        "split_index": [split_of[t.split_seed] for t in trials],
        "epochs": plan.epochs,
        "batch_size": plan.batch_size,
        "loss": loss_for(plan),
        "metrics": make_metrics(plan.metrics, ds.task),
        "plateaus": [_plateau(t) for t in trials],
        "monitors": [t.monitor for t in trials],
        "cache_key": model_key if model_key[0] is not None else None,
    }
    if not frozen_base:
        return inputs
    known = weights.template(inputs["cache_key"]) if weights is not None else None
    return shortcut_population(inputs, known, features)


def _rows_key(split: Any) -> bytes:
    """The dataset rows a split takes for training and validation (a holdout file has none:
    every seed's split is then the whole dataset against the holdout)."""
    train, val = getattr(split, "train_rows", None), getattr(split, "val_rows", None)
    if train is None or val is None:
        return b"holdout"
    return np.asarray(train).tobytes() + b"|" + np.asarray(val).tobytes()


@dataclasses.dataclass(frozen=True)
class _TargetSplit:
    """A split with targets typed as the loss expects (the Keras engine's ``targets_for``)."""

    split: Any
    task: str

    def __getattr__(self, name: str) -> Any:
        from lrlab.experiments.engines.keras import targets_for

        value = getattr(self.split, name)
        return targets_for(value, self.task) if name in ("y_train", "y_val") else value


def _model_unsupported(plan: Any) -> str | None:
    """Why the plan's model cannot run under ``jax.vmap`` (``None``: it can)."""
    import jax

    ds = plan.dataset
    try:
        model = plan.model.build(ds.input_shape, ds.task, ds.n_classes, 0)
        tv = [np.stack([np.asarray(v.value)] * 2) for v in model.trainable_variables]
        ntv = [np.stack([np.asarray(v.value)] * 2) for v in model.non_trainable_variables]
        x = np.zeros((2, 2, *ds.input_shape), np.float32)

        def call(tv_, ntv_, x_):
            return model.stateless_call(tv_, ntv_, x_, training=True)[0]

        jax.eval_shape(jax.vmap(call), tv, ntv, x)
    except Exception as err:
        text = getattr(plan.model, "text", "the model")
        return (
            f"{text} does not run under jax.vmap ({type(err).__name__}: "
            f"{str(err).strip().splitlines()[0][:160] if str(err).strip() else ''}); "
            'use engine = "keras"'
        )
    return None
