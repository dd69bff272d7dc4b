"""Running a population chunk by chunk: inputs stacked, memory budgeted, results gathered.

The trials of a *group* (same model, optimizer structure, data shape, batch size and
epochs) share one :class:`~.population_program.PopulationProgram`. Per trial a group
takes the lr of every update (an ``[N, steps]`` table, e.g. from
``schedule.curve(steps)``), the seed of its initial weights (``build_model(seed)``), the
seed of its batch order (:func:`lrlab.experiments.datasets.batch_order`) and,
optionally, its data split and a plateau. Identical lr tables and batch orders are
stored once and indexed per trial.

Memory: a chunk of trials runs in one program; its size comes from a budget (``memory``,
default 1 GiB) and the program's estimate of one trial's bytes: vmapped, each trial's
whole working set; in sequence, what each trial keeps plus the working set of the trials
training at once (:func:`~.population_memory.chunk_bytes`). The last
chunk is padded with copies so every chunk reuses one compiled program. Data splits go
to the device together when they fit in half the budget, else a few at a time.

Divergence: a trial whose epoch loss or validation loss is NaN/inf is *diverged* at that
epoch (1-based, as the Keras engine reports it) and its history stops there. Its
arithmetic may go on producing NaN until the chunk ends, but vmapped trials share no
arithmetic, so this cannot change any other trial (a test pins that).

What is worth keeping between calls (compiled programs, initial weights, batch orders)
lives in a :class:`PopulationCaches` that the caller owns and passes in (the engine
keeps one); without one, nothing is kept.

"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from lrlab.controllers.plateau import PlateauParams
from lrlab.errors import LrlabError
from lrlab.experiments.engines.population_caches import (
    OrderCache,
    PopulationCaches,
    WeightCache,
)
from lrlab.experiments.engines.population_memory import chunk_bytes
from lrlab.experiments.engines.population_optim import KerasOptimizer, per_trial_numbers
from lrlab.experiments.engines.population_program import (
    PLATEAU_FIELDS,
    ProgramShape,
    epochs_per_call,
    trials_at_once,
)
from lrlab.experiments.memory import parse_memory
from lrlab.schedules import Plateau

__all__ = [
    "EpochsDone",
    "OrderCache",
    "Population",
    "PopulationCaches",
    "PopulationResult",
    "PopulationUnsupported",
    "WeightCache",
    "chunk_size",
    "device_count",
    "initial_weights",
    "iter_population",
    "per_device",
    "plateau_table",
    "train_population",
]


class PopulationUnsupported(LrlabError):
    """Something the population engine cannot run (the message says to use the keras engine)."""


# --------------------------------------------------------------------------- results
@dataclasses.dataclass
class PopulationResult:
    """Per-trial, per-epoch results of :func:`train_population`.

    ``history[name]`` is ``[N, epochs]`` with Keras' names (``loss``, ``accuracy``,
    ``val_loss``, ``val_accuracy``, ...); rows after a trial's divergence are NaN.
    ``lr[n, e]`` is the lr of epoch ``e``'s last update (plateau scale included),
    ``scale[n, e]`` the plateau scale after epoch ``e``'s end (1 without plateau).
    ``diverged_epoch[n]`` is the 1-based epoch where trial ``n`` diverged, 0 if it did not.
    """

    history: dict[str, np.ndarray]
    lr: np.ndarray
    scale: np.ndarray
    diverged_epoch: np.ndarray
    chunk_size: int
    chunks: int
    compile_seconds: float
    seconds: float

    def rows(self, n: int) -> list[dict[str, float]]:
        """Trial ``n``'s epochs as the engines' rows: ``epoch`` (1-based), ``lr``, metrics."""
        stop = int(self.diverged_epoch[n]) or self.lr.shape[1]
        columns = {"lr": self.lr, **self.history}
        values = [v[n, :stop].astype(np.float64).tolist() for v in columns.values()]
        return [
            {"epoch": e + 1, **dict(zip(columns, row, strict=True))}
            for e, row in enumerate(zip(*values, strict=True))
        ]


@dataclasses.dataclass(frozen=True)
class EpochsDone:
    """News from a chunk of trials between its calls: trials ``index`` (as
    :meth:`Population.run` yields them) have trained ``epochs`` of their ``of`` epochs;
    ``latest[name][j]`` is trial ``index[j]``'s value of ``name`` after its latest epoch
    (NaN once the trial diverged)."""

    index: np.ndarray
    epochs: int
    of: int
    latest: dict[str, np.ndarray]


# --------------------------------------------------------------------------- inputs
def initial_weights(
    build_model: Callable[[int], Any],
    seeds: Sequence[int],
    cache_key: Any = None,
    cache: WeightCache | None = None,
) -> tuple[Any, list[np.ndarray], list[np.ndarray]]:
    """The models' initial variables for each seed, stacked on a leading trial axis.

    ``build_model(seed)`` is called once per *distinct* seed (a grid repeats each seed
    across its configs), so the weights are exactly the Keras engine's. With a ``cache``
    and a ``cache_key`` (something that identifies ``build_model``, e.g. the model spec
    and the data shape) the weights are kept for the next call (other optimizer groups,
    a rerun). Returns a template model and the stacked trainable and non-trainable values.
    """
    seeds = [int(s) for s in seeds]
    distinct = sorted(set(seeds))
    if cache_key is None:
        cache = None
    template = cache.template(cache_key) if cache is not None else None
    values = {}
    for seed in distinct:
        found = cache.get(cache_key, seed) if cache is not None else None
        if found is None:
            model = build_model(seed)
            template = template if template is not None else model
            found = (
                [np.asarray(v.value) for v in model.trainable_variables],
                [np.asarray(v.value) for v in model.non_trainable_variables],
            )
            if cache is not None:
                cache.remember(cache_key, seed, found, model)
        values[seed] = found
    if template is None:
        template = build_model(distinct[0])
    tv = [np.stack([values[s][0][i] for s in seeds]) for i in range(len(values[seeds[0]][0]))]
    ntv = [np.stack([values[s][1][i] for s in seeds]) for i in range(len(values[seeds[0]][1]))]
    return template, tv, ntv


def _distinct_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(unique, index)`` with ``unique[index] == rows`` (first-seen order)."""
    unique, first, index = np.unique(rows, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return unique[order], rank[index.reshape(-1)]


_PLATEAU_DTYPES = {"enabled": bool, "monitor": np.int32, "patience": np.int32}
_PLATEAU_DTYPES.update({"cooldown": np.int32, "mode_max": bool})


def plateau_table(
    plateaus: Sequence[Plateau | None], monitors: Sequence[str], names: Sequence[str]
) -> dict[str, np.ndarray]:
    """Per-trial plateau arguments as the program takes them: arrays keyed by
    :data:`~.population_program.PLATEAU_FIELDS` (no plateau: ``enabled`` False, factor 1).

    >>> t = plateau_table([None, Plateau(factor=0.5)], ["val_loss"] * 2, ["loss", "val_loss"])
    >>> t["enabled"].tolist(), t["factor"].tolist(), t["monitor"].tolist()
    ([False, True], [1.0, 0.5], [0, 1])
    """
    n = len(plateaus)
    table = {k: np.zeros(n, _PLATEAU_DTYPES.get(k, np.float32)) for k in PLATEAU_FIELDS}
    table["factor"][:] = 1.0
    for i, (p, monitor) in enumerate(zip(plateaus, monitors, strict=True)):
        if p is None:
            continue
        if monitor not in names:
            raise PopulationUnsupported(
                f"plateau monitor {monitor!r} is not logged (have: {', '.join(names)}); "
                "use one of those"
            )
        row = {"enabled": True, "monitor": list(names).index(monitor)}
        for key, value in {**row, **PlateauParams.of(p)._asdict()}.items():
            table[key][i] = value
    return table


def _take(table: dict[str, np.ndarray], index: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[index] for k, v in table.items()}


def chunk_size(n_trials: int, trial_bytes: int, memory: int) -> int:
    """How many trials a chunk holds: the budget over one trial's bytes, balanced over chunks.

    >>> chunk_size(1000, 1_000_000, 300_000_000)   # 300 fit -> 4 chunks of 250
    250
    >>> chunk_size(10, 1_000_000, 1 << 30)
    10
    """
    fit = max(1, memory // max(trial_bytes, 1))
    if fit >= n_trials:
        return max(n_trials, 1)
    chunks = -(-n_trials // fit)
    return -(-n_trials // chunks)


def per_device(size: int, devices: int) -> int:
    """``size`` rounded up to a multiple of ``devices`` (each device takes an equal share of
    a chunk; the padding is copies of a trial).

    >>> per_device(9, 2), per_device(10, 2), per_device(7, 1)
    (10, 10, 7)
    """
    return -(-size // devices) * devices


def device_count(devices: int | None) -> int:
    """The devices a chunk is split over: ``None``: every device JAX has (a CPU has one
    unless the process asked for more, e.g. ``JAX_NUM_CPU_DEVICES=2``); else at most
    ``devices``."""
    import jax

    have = jax.device_count()
    return have if devices is None else max(1, min(int(devices), have))


# --------------------------------------------------------------------------- the API
def iter_population(
    build_model: Callable[[int], Any], splits: Sequence[Any], **kwargs: Any
) -> Iterator[tuple[np.ndarray, PopulationResult]]:
    """Train ``N`` trials chunk by chunk; yield ``(trial_indices, result)`` per chunk.

    The arguments are :func:`train_population`'s; a chunk's result covers its trials
    only (``result.history[k][j]`` is trial ``trial_indices[j]``).
    """
    if len(kwargs.get("init_seeds", ())) == 0:
        return iter(())
    return iter(Population(build_model, splits, **kwargs))


class Population:
    """One group's trials, ready to run: inputs checked and stacked, program chosen, chunks
    planned. Iterating trains chunk by chunk (see :func:`iter_population`)."""

    def __init__(
        self,
        build_model: Callable[[int], Any],
        splits: Sequence[Any],
        *,
        optimizer: KerasOptimizer | dict[str, Any] | Sequence[KerasOptimizer | dict[str, Any]],
        lr: np.ndarray,
        init_seeds: Sequence[int],
        order_seeds: Sequence[int],
        epochs: int,
        batch_size: int,
        loss: Any,
        metrics: Sequence[Any] = (),
        split_index: Sequence[int] | None = None,
        plateaus: Sequence[Plateau | None] | None = None,
        monitors: Sequence[str] | None = None,
        batch_order: Callable[[int, int, int], np.ndarray] | None = None,
        eval_batch: int | None = None,
        memory: int | str | None = None,
        cache_key: Any = None,
        caches: PopulationCaches | None = None,
        devices: int | None = 1,
        epochs_per_call: int | None = None,
        trials_at_once: int | str | None = None,
    ):
        import keras

        if batch_order is None:
            from lrlab.experiments.datasets import batch_order
        lr = np.asarray(lr, dtype=np.float32)
        n = len(init_seeds)
        optimizers = [
            o if isinstance(o, KerasOptimizer) else KerasOptimizer.from_config(o)
            for o in (optimizer if isinstance(optimizer, list | tuple) else [optimizer] * n)
        ]
        if len(optimizers) != n:
            raise ValueError(f"{len(optimizers)} optimizers for {n} trials: give one or N")
        if lr.ndim != 2 or lr.shape[0] != n or len(order_seeds) != n or n == 0:
            raise ValueError(
                f"lr must be [N, steps] and the seeds N long (N > 0); got lr {lr.shape}, "
                f"{n} init seeds, {len(order_seeds)} order seeds"
            )
        self.split_index = np.zeros(n, np.int64) if split_index is None else np.asarray(split_index)
        self.splits = splits
        first = splits[0]
        n_train, n_val = len(first.y_train), len(first.y_val)
        shape = ProgramShape(
            epochs, batch_size, n_train, n_val, int(eval_batch or min(n_val, 1024))
        )
        if lr.shape[1] < epochs * shape.steps_per_epoch:
            raise ValueError(
                f"lr has {lr.shape[1]} steps, the run needs {epochs * shape.steps_per_epoch}"
            )
        if isinstance(loss, str):  # what compile(loss="name") makes of a name
            from keras.src.losses.losses import LossFunctionWrapper

            loss = LossFunctionWrapper(keras.losses.get(loss), name=loss)
        plateaus = list(plateaus) if plateaus is not None else [None] * n
        monitors = list(monitors) if monitors is not None else ["val_loss"] * n
        budget = parse_memory(memory)
        caches = caches if caches is not None else PopulationCaches()

        template, self.tv, self.ntv = initial_weights(
            build_model, init_seeds, cache_key, caches.weights
        )
        self.hyper = per_trial_numbers(optimizers, self.tv[0].dtype if self.tv else np.float32)
        self.program = caches.programs.get(
            template,
            optimizers[0].structure,
            loss,
            metrics,
            shape,
            device_count(devices),
            _at_once(trials_at_once, template),
        )
        self.plateaus = plateau_table(plateaus, monitors, self.program.names)

        # Shared inputs, deduplicated over the population: lr tables and batch orders.
        self.tables, self.table_idx = _distinct_rows(lr[:, : epochs * shape.steps_per_epoch])
        seeds, self.order_idx = np.unique(np.asarray(order_seeds, np.int64), return_inverse=True)
        self.orders = np.stack(
            [caches.orders.get(batch_order, int(s), epochs, n_train) for s in seeds]
        )

        # Data splits: all on the device at once when they fit in half the budget, else
        # ``per_group`` at a time (padded to the same count so shapes stay static).
        split_bytes = _split_bytes(splits)
        self.used = sorted(set(int(i) for i in self.split_index))
        self.per_group = max(1, min(len(self.used), (budget // 2) // max(split_bytes, 1)))
        costs = self.program.costs(
            self.tv, self.ntv, np.asarray(first.x_train), np.asarray(first.y_train)
        )
        per_trial, fixed = chunk_bytes(costs, self.program.live_trials)
        memory_left = max(budget - self.per_group * split_bytes, budget // 4) - fixed
        self.size = per_device(chunk_size(n, per_trial, memory_left), self.program.devices)
        work = self.program.chunk_work(costs, self.size)
        self.per_call = _per_call(epochs, epochs_per_call, work)

    # -- shapes and arguments ------------------------------------------------------
    def _groups(self) -> Iterator[tuple[dict[int, int], list[int]]]:
        for g in range(0, len(self.used), self.per_group):
            group = self.used[g : g + self.per_group]
            group = group + [group[0]] * (self.per_group - len(group))
            yield {s: j for j, s in enumerate(group)}, group

    def _shardings(self) -> tuple[Any, Any]:
        """Where per-trial and shared arrays go (``(None, None)``: the default device)."""
        if self.program.devices == 1:
            return None, None
        from jax.sharding import NamedSharding, PartitionSpec

        mesh = self.program.mesh()
        return NamedSharding(mesh, PartitionSpec("trials")), NamedSharding(mesh, PartitionSpec())

    def _args(self, padded: np.ndarray, local: dict[int, int], data: list[Any]):
        import jax

        trials, shared = self._shardings()

        def put(a):
            return jax.device_put(a, trials)

        return (
            [put(a[padded]) for a in self.tv],
            [put(a[padded]) for a in self.ntv],
            put(np.array([local[int(s)] for s in self.split_index[padded]], np.int32)),
            put(self.order_idx[padded].astype(np.int32)),
            put(self.table_idx[padded].astype(np.int32)),
            {k: put(v) for k, v in _take(self.plateaus, padded).items()},
            {k: put(v) for k, v in _take(self.hyper, padded).items()},
            (*data, jax.device_put(self.orders, shared), jax.device_put(self.tables, shared)),
        )

    def abstract_args(self):
        """The shapes of every chunk's arguments (to compile before the data is placed)."""
        import jax

        trials, shared = self._shardings()

        def spec(a: Any, rows: int | None = None) -> Any:
            a = np.asarray(a)
            shape = (rows, *a.shape[1:]) if rows is not None else a.shape
            where = trials if rows is not None else shared
            return jax.ShapeDtypeStruct(shape, a.dtype, sharding=where)

        size, group = self.size, self.per_group

        def split_spec(key: str) -> Any:
            a = np.asarray(getattr(self.splits[0], key))
            return jax.ShapeDtypeStruct((group, *a.shape), a.dtype, sharding=shared)

        i32 = jax.ShapeDtypeStruct((size,), np.int32, sharding=trials)
        plateau = {k: spec(v, size) for k, v in _take(self.plateaus, np.zeros(1, int)).items()}
        data = [split_spec(k) for k in ("x_train", "y_train", "x_val", "y_val")]
        return (
            [spec(a, size) for a in self.tv],
            [spec(a, size) for a in self.ntv],
            i32,
            i32,
            i32,
            plateau,
            {k: spec(v, size) for k, v in self.hyper.items()},
            (*data, spec(self.orders), spec(self.tables)),
        )

    # -- running ---------------------------------------------------------------------
    def lower(self) -> None:
        """Trace and lower the program for this population's chunks (main thread)."""
        self.program.lower(self.abstract_args(), self.per_call)

    def compile(self) -> float:
        """Compile the program for this population's chunks; the seconds it took (0 when
        it was compiled before). Threads may call it."""
        return self.program.compiled(self.abstract_args(), self.per_call)[1]

    def __iter__(self) -> Iterator[tuple[np.ndarray, PopulationResult]]:
        return self.run()

    def run(
        self, on_epochs: Callable[[EpochsDone], None] | None = None
    ) -> Iterator[tuple[np.ndarray, PopulationResult]]:
        """Train chunk by chunk and yield ``(trial_indices, result)`` per chunk of trials
        (see :func:`iter_population`); ``on_epochs`` hears of each call's epochs as soon as
        they are trained (the last one's too, before the chunk's result)."""
        import jax

        size, program = self.size, self.program
        for local, group in self._groups():
            data = [
                jax.device_put(
                    np.stack([np.asarray(getattr(self.splits[s], k)) for s in group]),
                    self._shardings()[1],
                )
                for k in ("x_train", "y_train", "x_val", "y_val")
            ]
            members = np.flatnonzero(np.isin(self.split_index, group))
            for start in range(0, len(members), size):
                index = members[start : start + size]
                padded = np.concatenate([index, np.full(size - len(index), index[0])])
                args = self._args(padded, local, data)
                t0 = time.perf_counter()
                executables, compile_seconds = program.compiled(args, self.per_call)
                k = len(index)
                values, lrs, scales = [], [], []
                for part in program.train(executables, args):
                    values.append(np.array(part.values)[:k])
                    lrs.append(np.array(part.lrs)[:k])
                    scales.append(np.array(part.scales)[:k])
                    diverged = np.array(part.diverged)[:k]
                    if on_epochs is not None:
                        on_epochs(self._news(index, part.epochs_done, values[-1], diverged))
                history = np.concatenate(values, axis=1)
                result = PopulationResult(
                    history={name: history[:, :, j] for j, name in enumerate(program.names)},
                    lr=np.concatenate(lrs, axis=1),
                    scale=np.concatenate(scales, axis=1),
                    diverged_epoch=diverged,
                    chunk_size=size,
                    chunks=1,
                    compile_seconds=compile_seconds,
                    seconds=time.perf_counter() - t0 + compile_seconds,
                )
                for j, d in enumerate(result.diverged_epoch):
                    if d:
                        for v in result.history.values():
                            v[j, d:] = np.nan
                        result.lr[j, d:] = np.nan
                yield index, result

    def _news(
        self, index: np.ndarray, epochs_done: int, values: np.ndarray, diverged: np.ndarray
    ) -> EpochsDone:
        latest = values[:, -1, :].astype(np.float64)
        latest[diverged > 0] = np.nan
        names = self.program.names
        return EpochsDone(
            index=index,
            epochs=epochs_done,
            of=self.program.shape.epochs,
            latest={name: latest[:, j] for j, name in enumerate(names)},
        )


def _per_call(epochs: int, asked: int | None, work: float) -> int:
    """Epochs a call trains: ``asked`` (a divisor of ``epochs``) or :func:`epochs_per_call`."""
    if asked is None:
        return epochs_per_call(epochs, work)
    if asked < 1 or epochs % asked:
        raise ValueError(f"epochs_per_call must divide epochs ({epochs}), got {asked}")
    return int(asked)


def _at_once(asked: int | str | None, model: Any) -> int | None:
    """The program's ``trials_at_once``: ``asked``, or for ``"auto"`` the mode that runs
    ``model`` fastest (:func:`~.population_program.trials_at_once`)."""
    if asked == "auto":
        return trials_at_once(model)
    if asked is not None and (isinstance(asked, str) or asked < 1):
        raise ValueError(f'trials_at_once must be None, "auto" or a count >= 1, got {asked!r}')
    return asked


def _split_bytes(splits: Sequence[Any]) -> int:
    """Bytes of one split's arrays (all splits have the same shapes)."""
    keys = ("x_train", "y_train", "x_val", "y_val")
    return sum(np.asarray(getattr(splits[0], k)).nbytes for k in keys)


def train_population(build_model: Callable[[int], Any], splits: Sequence[Any], **kwargs):
    """Train ``N`` trials of one model and optimizer structure as one JAX program.

    Args:
        build_model: ``seed -> keras.Model`` (built); called once per distinct init seed.
        splits: objects with ``x_train, y_train, x_val, y_val`` (one, or one per distinct
            data split; all of the same shapes), targets as the loss expects them.
        optimizer: a :class:`~.population_optim.KerasOptimizer` or an experiment-file
            table (``{"type": "sgd", "momentum": 0.8}``), or a list of ``N`` of them, one
            per trial, of one structure (they may differ in numbers: momentum, betas,
            epsilon, ... are per-trial data of one program).
        lr: ``[N, epochs * steps_per_epoch]``, the lr of every update of every trial.
        init_seeds, order_seeds: per trial, the seed given to ``build_model`` and the seed
            of the batch order (``batch_order(seed, epoch, n_train)``, default
            :func:`lrlab.experiments.datasets.batch_order`).
        epochs, batch_size: as ``fit``'s; ``steps_per_epoch = ceil(n_train / batch_size)``,
            the last batch of an epoch holds the remainder.
        loss: a Keras loss (object or name); metrics: Keras metric objects, used statelessly.
        split_index: per trial, which of ``splits`` it trains on (default: the first).
        plateaus: per trial a :class:`~lrlab.schedules.Plateau` or ``None``; ``monitors``:
            the metric each one watches (default ``val_loss``).
        eval_batch: validation batch size (default ``min(n_val, 1024)``, the Keras engine's).
        memory: the budget that sets the chunk size (bytes or ``"512MB"``; default 1 GiB).
        cache_key: identifies ``build_model`` so initial weights are reused across calls.
        caches: a :class:`PopulationCaches` to reuse programs, weights and batch orders
            from (and keep them for) other calls; default: nothing is kept.
        epochs_per_call: epochs one call of the program trains (a divisor of ``epochs``;
            default :func:`~.population_program.epochs_per_call` of the chunk's work);
            the numbers do not depend on it.
        trials_at_once: ``None`` (default): a chunk's trials are vmapped all at once;
            ``k``: ``k`` at a time, in sequence, in the same compiled program
            (:class:`~.population_program.PopulationProgram`); ``"auto"``: as
            :func:`~.population_program.trials_at_once` decides for the model that
            trains (in sequence when it has a convolution); the numbers are the same.

    Returns:
        A :class:`PopulationResult` for the ``N`` trials, in their order.
    """
    t0 = time.perf_counter()
    parts = list(iter_population(build_model, splits, **kwargs))
    n = len(kwargs["init_seeds"])
    epochs = kwargs["epochs"]
    names = list(parts[0][1].history) if parts else []
    history = {k: np.full((n, epochs), np.nan, np.float32) for k in names}
    lrs = np.full((n, epochs), np.nan, np.float32)
    scales = np.ones((n, epochs), np.float32)
    diverged = np.zeros(n, np.int32)
    for index, part in parts:
        for k in names:
            history[k][index] = part.history[k]
        lrs[index], scales[index], diverged[index] = part.lr, part.scale, part.diverged_epoch
    return PopulationResult(
        history=history,
        lr=lrs,
        scale=scales,
        diverged_epoch=diverged,
        chunk_size=parts[0][1].chunk_size if parts else 0,
        chunks=len(parts),
        compile_seconds=sum(p.compile_seconds for _, p in parts),
        seconds=time.perf_counter() - t0,
    )
