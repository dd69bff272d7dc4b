"""The population engine: hundreds of small trials trained as one vectorized JAX program.

A trial here is exactly a Keras-engine trial (same model, initial weights, batch order,
per-update lr, loss and metrics); what changes is how it runs. The trials of a *group*
(same model, optimizer configuration, data shape, batch size and epochs) are stacked:

- parameters, non-trainable state (e.g. a dropout seed), optimizer slots and metric
  accumulators get a leading trial axis;
- one trial's training is a ``jax.lax.scan`` over epochs whose body scans over that
  epoch's batches (the last batch may be short, as in ``fit``) and then evaluates the
  validation data; the forward pass is the Keras model's own ``stateless_call``, the loss
  and metrics are Keras' own objects used statelessly, the optimizer is Keras' update
  formula in JAX (:mod:`.population_optim`);
- ``jax.vmap`` maps that over the trials and ``jax.jit`` compiles it once per group.

Per trial it takes the lr of every update (an ``[N, steps]`` table, e.g. from
``schedule.curve(steps)``), the seed of its initial weights (``build_model(seed)``), the
seed of its batch order (:func:`lrlab.experiments.datasets.batch_order`) and, optionally,
its data split and a plateau controller.

Divergence: a trial whose epoch loss or validation loss is NaN/inf is *diverged* at that
epoch (1-based, as the Keras engine reports it) and its history stops there. Its
arithmetic may go on producing NaN until the chunk ends, but vmapped trials share no
arithmetic, so this cannot change any other trial (a test pins that).

Plateau schedules are supported per trial: the plateau state (scale, best, wait,
cooldown, reductions) is part of the scanned state and moves at each epoch end on that
trial's monitored metric, with :class:`~lrlab.controllers.plateau.PlateauController`'s
semantics (the jnp port is tested against it). The lr of update ``t`` is then
``table[t] * scale``, and ``min_lr`` is checked against the schedule's value at the
epoch's last update, as :class:`lrlab.integrations.keras.Scheduler` (the Keras engine) does.

Memory: a chunk of trials runs at once; its size comes from a budget (``memory``,
default 1 GiB, ``lrlab run --memory`` or ``LRLAB_MEMORY``) divided by an estimate of one
trial's working set (parameters, optimizer slots, gradients, and every intermediate of
one training and one evaluation batch, from the traced program). The last chunk is
padded with copies so every chunk reuses one compiled program. Data splits go to the
device together when they fit in half the budget, else a few at a time.

The engine (:class:`PopulationEngine`) groups a plan's trials by optimizer
configuration (the only thing that changes the program within one experiment), prepares
every group, compiles them in parallel threads, then trains group after group and yields
each chunk's results as soon as they are final. Within a process, compiled programs,
initial weights and batch orders are kept for the next call with the same shapes.

>>> parse_memory("512MB"), parse_memory("1.5GB"), parse_memory(2**30)
(536870912, 1610612736, 1073741824)
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from lrlab.controllers.plateau import PlateauArrays, PlateauParams, plateau_transition
from lrlab.errors import LrlabError
from lrlab.experiments.engines.base import Engine, Trial, TrialResult, final_metrics
from lrlab.experiments.engines.population_optim import KerasOptimizer
from lrlab.schedules import Plateau

__all__ = [
    "DEFAULT_MEMORY",
    "PopulationEngine",
    "PopulationResult",
    "PopulationUnsupported",
    "chunk_size",
    "initial_weights",
    "parse_memory",
    "population_inputs",
    "iter_population",
    "train_population",
]

DEFAULT_MEMORY = 1 << 30
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "m": 1 << 20, "mb": 1 << 20}
_UNITS.update({"g": 1 << 30, "gb": 1 << 30, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30})


class PopulationUnsupported(LrlabError):
    """Something the population engine cannot run (the message says to use the keras engine)."""


def parse_memory(value: int | float | str | None) -> int:
    """A memory budget in bytes from ``2**30``, ``"512MB"``, ``"1.5GB"`` (binary units, >= 1MB).

    ``None`` gives :data:`DEFAULT_MEMORY` (1 GiB).
    """
    if value is None:
        return DEFAULT_MEMORY
    if isinstance(value, bool):
        raise LrlabError(f"memory must be a size like 512MB or 2GB, got {value!r}")
    if isinstance(value, int | float):
        number, unit = float(value), ""
    else:
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([a-zA-Z]*)\s*", str(value))
        if not match or match.group(2).lower() not in _UNITS:
            raise LrlabError(f"memory must be a size like 512MB or 2GB, got {value!r}")
        number, unit = float(match.group(1)), match.group(2).lower()
    size = int(number * _UNITS[unit])
    if not math.isfinite(number) or size < 1 << 20:
        raise LrlabError(f"memory must be at least 1MB, got {value!r}")
    return size


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
        out = []
        for e in range(stop):
            row: dict[str, float] = {"epoch": e + 1, "lr": float(self.lr[n, e])}
            row.update({k: float(v[n, e]) for k, v in self.history.items()})
            out.append(row)
        return out


# --------------------------------------------------------------------------- inputs
_WEIGHTS: dict[tuple[Any, int], tuple[list[np.ndarray], list[np.ndarray]]] = {}
_TEMPLATES: dict[Any, Any] = {}
_WEIGHTS_BYTES = 256 << 20
_weights_total = 0


def initial_weights(
    build_model: Callable[[int], Any], seeds: Sequence[int], cache_key: Any = None
) -> tuple[Any, list[np.ndarray], list[np.ndarray]]:
    """The models' initial variables for each seed, stacked on a leading trial axis.

    ``build_model(seed)`` is called once per *distinct* seed (a grid repeats each seed
    across its configs), so the weights are exactly the Keras engine's. With a
    ``cache_key`` (something that identifies ``build_model``, e.g. the model spec and the
    data shape) the weights are kept for the next call (other optimizer groups, a rerun).
    Returns a template model and the stacked trainable and non-trainable values.
    """
    seeds = [int(s) for s in seeds]
    distinct = sorted(set(seeds))
    template = _TEMPLATES.get(cache_key) if cache_key is not None else None
    values = {}
    for seed in distinct:
        found = _WEIGHTS.get((cache_key, seed)) if cache_key is not None else None
        if found is None:
            model = build_model(seed)
            template = template if template is not None else model
            found = (
                [np.asarray(v.value) for v in model.trainable_variables],
                [np.asarray(v.value) for v in model.non_trainable_variables],
            )
            if cache_key is not None:
                _remember(cache_key, seed, found, model)
        values[seed] = found
    if template is None:
        template = build_model(distinct[0])
    tv = [np.stack([values[s][0][i] for s in seeds]) for i in range(len(values[seeds[0]][0]))]
    ntv = [np.stack([values[s][1][i] for s in seeds]) for i in range(len(values[seeds[0]][1]))]
    return template, tv, ntv


def _remember(key: Any, seed: int, weights, model) -> None:
    """Keep ``weights`` for ``(key, seed)``; the oldest go first past 256 MB in total."""
    global _weights_total
    _TEMPLATES.setdefault(key, model)
    _WEIGHTS[(key, seed)] = weights
    _weights_total += _nbytes(weights)
    while _weights_total > _WEIGHTS_BYTES and len(_WEIGHTS) > 1:
        _weights_total -= _nbytes(_WEIGHTS.pop(next(iter(_WEIGHTS))))


def _nbytes(weights) -> int:
    return sum(a.nbytes for part in weights for a in part)


def _distinct_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(unique, index)`` with ``unique[index] == rows`` (first-seen order)."""
    unique, first, index = np.unique(rows, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return unique[order], rank[index.reshape(-1)]


@dataclasses.dataclass(frozen=True)
class _Plateaus:
    """Per-trial plateau parameters as arrays (``enabled`` False: scale stays 1)."""

    enabled: np.ndarray
    factor: np.ndarray
    patience: np.ndarray
    min_delta: np.ndarray
    cooldown: np.ndarray
    min_lr: np.ndarray
    mode_max: np.ndarray
    monitor: np.ndarray  # index into the epoch metric vector

    @classmethod
    def build(cls, plateaus: Sequence[Any], monitors: Sequence[str], names: Sequence[str]):
        n = len(plateaus)
        f32 = np.zeros(n, np.float32)
        out = {k: f32.copy() for k in ("factor", "min_delta", "min_lr")}
        out.update({k: np.zeros(n, np.int32) for k in ("patience", "cooldown", "monitor")})
        out["enabled"] = np.zeros(n, bool)
        out["mode_max"] = np.zeros(n, bool)
        for i, (p, monitor) in enumerate(zip(plateaus, monitors, strict=True)):
            if p is None:
                out["factor"][i] = 1.0
                continue
            if monitor not in names:
                raise PopulationUnsupported(
                    f"plateau monitor {monitor!r} is not logged (have: {', '.join(names)}); "
                    "use one of those"
                )
            out["enabled"][i] = True
            out["factor"][i] = p.factor
            out["patience"][i] = p.patience
            out["min_delta"][i] = p.min_delta
            out["cooldown"][i] = p.cooldown
            out["min_lr"][i] = p.min_lr
            out["mode_max"][i] = p.mode == "max"
            out["monitor"][i] = list(names).index(monitor)
        return cls(**out)

    def take(self, index: np.ndarray) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name)[index] for f in dataclasses.fields(self)}


# --------------------------------------------------------------------------- the program
@dataclasses.dataclass(frozen=True)
class _Shape:
    """What a compiled program depends on (besides the model and optimizer)."""

    epochs: int
    batch_size: int
    n_train: int
    n_val: int
    eval_batch: int

    @property
    def steps_per_epoch(self) -> int:
        return -(-self.n_train // self.batch_size)


class _Program:
    """The jitted, vmapped training of one group (reused across its chunks)."""

    def __init__(self, model, optimizer: KerasOptimizer, loss, metrics, shape: _Shape):
        import jax

        self.model = model
        self.optimizer = optimizer
        self.loss = loss
        self._squeeze = _name(loss) in _ELEMENTWISE_LOSSES
        self.metrics = list(metrics)
        self.shape = shape
        self.names = ["loss", *[m.name for m in self.metrics]]
        self.names += [f"val_{n}" for n in self.names]
        self.run = jax.jit(self._run)
        self._executables: dict[str, Any] = {}
        self._lowered: dict[str, Any] = {}
        self._compile_seconds: dict[str, float] = {}
        self._trial_bytes: int | None = None

    @staticmethod
    def _key(args) -> str:
        import jax

        return str(jax.tree.map(lambda a: (tuple(a.shape), str(a.dtype)), args))

    def lower(self, args) -> None:
        """Trace and lower for ``args``' shapes (Python work: call it from the main thread)."""
        key = self._key(args)
        if key not in self._executables and key not in self._lowered:
            self._lowered[key] = self.run.lower(*args)

    def compiled(self, args) -> tuple[Any, float]:
        """The executable for ``args``' shapes and, the first time it is asked for, the
        seconds its compilation took (XLA's compile releases the GIL: threads may call it)."""
        key = self._key(args)
        if key not in self._executables:
            t0 = time.perf_counter()
            lowered = self._lowered.pop(key, None) or self.run.lower(*args)
            self._executables[key] = lowered.compile()
            self._compile_seconds[key] = time.perf_counter() - t0
        return self._executables[key], self._compile_seconds.pop(key, 0.0)

    # -- one trial ----------------------------------------------------------------
    def _forward_loss(self, tv, ntv, x, y, training: bool):
        import jax.numpy as jnp

        y_pred, ntv, losses = self.model.stateless_call(
            tv, ntv, x, training=training, return_losses=True
        )
        if self._squeeze and y_pred.shape[-1] == 1:
            # One output: the loss's mean over the last axis is over one value, so the batch
            # mean of the squeezed values is the same number; XLA reduces it much faster
            # without the trailing axis of length 1.
            loss = self.loss(jnp.reshape(y, y_pred.shape[:-1]), y_pred[..., 0])
        else:
            loss = self.loss(y, y_pred)
        if losses:
            loss = loss + jnp.sum(jnp.stack([jnp.sum(v) for v in losses]))
        return loss, (y_pred, ntv)

    def _metric_init(self):
        import jax.numpy as jnp

        return [[jnp.zeros(v.shape, v.dtype) for v in m.variables] for m in self.metrics]

    def _metric_update(self, mvars, y, y_pred):
        return [
            m.stateless_update_state(v, y, y_pred) for m, v in zip(self.metrics, mvars, strict=True)
        ]

    def _metric_results(self, mvars):
        import jax.numpy as jnp

        return [
            jnp.asarray(m.stateless_result(v), jnp.float32)
            for m, v in zip(self.metrics, mvars, strict=True)
        ]

    def _trial(self, tv, ntv, split, order, table, plateau, data):
        import jax
        import jax.numpy as jnp

        X, Y, XV, YV, orders, tables = data
        s = self.shape
        B, nb = s.batch_size, s.n_train // s.batch_size
        rem = s.n_train - nb * B
        grad_fn = jax.value_and_grad(self._forward_loss, has_aux=True)
        opt = self.optimizer
        dtype = jax.tree.leaves(tv)[0].dtype if tv else jnp.float32

        def lr_at(t):
            return tables[table, jnp.minimum(t, tables.shape[1] - 1)].astype(dtype)

        def step(c, rows):
            x, y = X[split, rows], Y[split, rows]
            (loss, (y_pred, ntv_new)), grads = grad_fn(c["tv"], c["ntv"], x, y, True)
            lr = lr_at(c["t"]) * c["plateau"].scale
            tv_new, opt_new = opt.apply(grads, c["tv"], c["opt"], lr, c["t"])
            size = rows.shape[0]
            c = dict(
                c,
                tv=tv_new,
                ntv=ntv_new,
                opt=opt_new,
                t=c["t"] + 1,
                last_lr=lr,
                loss_sum=c["loss_sum"] + loss * size,
                metrics=self._metric_update(c["metrics"], y, y_pred),
            )
            return c, None

        def evaluate(tv_, ntv_):
            E = s.eval_batch
            ne, erem = s.n_val // E, s.n_val % E

            def batch(acc, start, size):
                rows = start + jnp.arange(size)
                if XV.shape[0] == 1:  # one split: the rows are the same for every trial, so
                    x, y = XV[0, rows], YV[0, rows]  # XLA runs the population as one matmul
                else:
                    x, y = XV[split, rows], YV[split, rows]
                loss, (y_pred, _) = self._forward_loss(tv_, ntv_, x, y, False)
                total, mvars = acc
                return (total + loss * size, self._metric_update(mvars, y, y_pred))

            acc = (jnp.zeros((), jnp.float32), self._metric_init())
            acc, _ = jax.lax.scan(lambda a, i: (batch(a, i * E, E), None), acc, jnp.arange(ne))
            if erem:
                acc = batch(acc, ne * E, erem)
            total, mvars = acc
            return [total / s.n_val, *self._metric_results(mvars)]

        def epoch(c, e):
            rows = orders[order, e]
            c = dict(c, loss_sum=jnp.zeros((), jnp.float32), metrics=self._metric_init())
            c, _ = jax.lax.scan(step, c, rows[: nb * B].reshape(nb, B))
            if rem:
                c, _ = step(c, rows[nb * B :])
            train = [c["loss_sum"] / s.n_train, *self._metric_results(c["metrics"])]
            values = jnp.stack(train + evaluate(c["tv"], c["ntv"]))
            bad = ~jnp.isfinite(values[0]) | ~jnp.isfinite(values[len(train)])
            diverged = jnp.where((c["diverged"] == 0) & bad, e + 1, c["diverged"])
            metric = values[plateau["monitor"]]
            base = lr_at(c["t"] - 1)  # the schedule at the epoch's last update (Scheduler)
            moved = plateau_transition(c["plateau"], metric, base, params, jnp)
            state = jax.tree.map(
                lambda new, old: jnp.where(plateau["enabled"], new, old), moved, c["plateau"]
            )
            c = dict(c, diverged=diverged, plateau=state)
            return c, (values, c["last_lr"], state.scale)

        params = PlateauParams(**{k: plateau[k] for k in PlateauParams._fields})
        carry = {
            "tv": tv,
            "ntv": ntv,
            "opt": opt.init(tv),
            "t": jnp.zeros((), jnp.int32),
            "last_lr": jnp.zeros((), dtype),
            "loss_sum": jnp.zeros((), jnp.float32),
            "metrics": self._metric_init(),
            "diverged": jnp.zeros((), jnp.int32),
            "plateau": PlateauArrays.initial(jnp),
        }
        carry, (values, lrs, scales) = jax.lax.scan(epoch, carry, jnp.arange(s.epochs))
        return values, lrs, scales, carry["diverged"]

    def _run(self, tv, ntv, split, order, table, plateau, data):
        import jax

        trial = jax.vmap(self._trial, in_axes=(0, 0, 0, 0, 0, 0, None))
        return trial(tv, ntv, split, order, table, plateau, data)

    # -- memory --------------------------------------------------------------------
    def trial_bytes(self, tv, ntv, sample_x, sample_y) -> int:
        """An upper estimate of one trial's working set (see the module docstring)."""
        if self._trial_bytes is None:
            self._trial_bytes = self._estimate(tv, ntv, sample_x, sample_y)
        return self._trial_bytes

    def _estimate(self, tv, ntv, sample_x, sample_y) -> int:
        import jax

        s = self.shape
        params = sum(int(np.prod(a.shape[1:])) * a.dtype.itemsize for a in tv)
        state = sum(int(np.prod(a.shape[1:])) * a.dtype.itemsize for a in ntv)
        slots = len(self.optimizer.slots)
        one = ([a[0] for a in tv], [a[0] for a in ntv])

        def train_step(tv_, ntv_, x, y):
            return jax.value_and_grad(self._forward_loss, has_aux=True)(tv_, ntv_, x, y, True)

        def eval_step(tv_, ntv_, x, y):
            return self._forward_loss(tv_, ntv_, x, y, False)

        xb = np.zeros((s.batch_size, *sample_x.shape[1:]), sample_x.dtype)
        yb = np.zeros((s.batch_size, *sample_y.shape[1:]), sample_y.dtype)
        xe = np.zeros((s.eval_batch, *sample_x.shape[1:]), sample_x.dtype)
        ye = np.zeros((s.eval_batch, *sample_y.shape[1:]), sample_y.dtype)
        inter = _jaxpr_bytes(train_step, *one, xb, yb) + _jaxpr_bytes(eval_step, *one, xe, ye)
        return params * (4 + 2 * slots) + 2 * state + inter


#: losses that average an elementwise term over the last axis
_ELEMENTWISE_LOSSES = ("binary_crossentropy", "mean_squared_error", "mean_absolute_error")


def _name(loss: Any) -> str | None:
    try:
        return loss.get_config().get("name")
    except Exception:
        return None


_PROGRAMS: dict[str, _Program] = {}


def _program(model, optimizer: KerasOptimizer, loss, metrics, shape: _Shape) -> _Program:
    """A :class:`_Program`, reused when the same structure comes again (compiled once).

    The key is the model's architecture without layer names and seeds (each build numbers
    its layers anew), the optimizer, the loss and metrics (names included: they name the
    results) and the shapes; anything that cannot be serialized gets a fresh program.
    """
    import json

    try:
        parts = [
            _nameless(model.get_config()),
            loss.get_config(),
            [m.get_config() for m in metrics],
        ]
        key = json.dumps([parts, repr(optimizer), repr(shape)], sort_keys=True, default=repr)
    except Exception:
        return _Program(model, optimizer, loss, metrics, shape)
    if key not in _PROGRAMS:
        while len(_PROGRAMS) >= 8:
            _PROGRAMS.pop(next(iter(_PROGRAMS)))
        _PROGRAMS[key] = _Program(model, optimizer, loss, metrics, shape)
    return _PROGRAMS[key]


def _nameless(value: Any) -> Any:
    """``value`` (a Keras config) without ``name`` and ``seed`` entries (the program gets
    the weights and seed states as inputs, so neither changes what it computes)."""
    if isinstance(value, dict):
        return {k: _nameless(v) for k, v in value.items() if k not in ("name", "seed")}
    if isinstance(value, list | tuple):
        return [_nameless(v) for v in value]
    return value if isinstance(value, str | int | float | bool | type(None)) else repr(value)


def _jaxpr_bytes(fn, *args) -> int:
    """The bytes of every intermediate value in ``fn``'s jaxpr (an upper bound of its temps)."""
    import jax
    from jax.extend.core import jaxprs_in_params

    closed = jax.make_jaxpr(fn)(*args)
    total = 0
    stack = [closed.jaxpr]
    while stack:
        jaxpr = stack.pop()
        for eqn in jaxpr.eqns:
            for var in eqn.outvars:
                aval = var.aval
                if hasattr(aval, "shape"):
                    total += int(np.prod(aval.shape)) * _itemsize(aval.dtype)
            for sub in jaxprs_in_params(eqn.params):
                stack.append(sub)
    return total


def _itemsize(dtype: Any) -> int:
    """Bytes per element; 8 for dtypes numpy does not know (JAX PRNG keys: two uint32)."""
    try:
        return np.dtype(dtype).itemsize
    except TypeError:
        return 8


def chunk_size(n_trials: int, trial_bytes: int, memory: int) -> int:
    """How many trials run at once: the budget over one trial's bytes, balanced over chunks.

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
    return iter(_Population(build_model, splits, **kwargs))


class _Population:
    """One group's trials, ready to run: inputs checked and stacked, program chosen, chunks
    planned. Iterating trains chunk by chunk (see :func:`iter_population`)."""

    def __init__(
        self,
        build_model: Callable[[int], Any],
        splits: Sequence[Any],
        *,
        optimizer: KerasOptimizer | dict[str, Any],
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
    ):
        import keras

        if batch_order is None:
            from lrlab.experiments.datasets import batch_order
        if not isinstance(optimizer, KerasOptimizer):
            optimizer = KerasOptimizer.from_config(optimizer)
        lr = np.asarray(lr, dtype=np.float32)
        n = len(init_seeds)
        if lr.ndim != 2 or lr.shape[0] != n or len(order_seeds) != n or n == 0:
            raise ValueError(
                f"lr must be [N, steps] and the seeds N long (N > 0); got lr {lr.shape}, "
                f"{n} init seeds, {len(order_seeds)} order seeds"
            )
        self.split_index = np.zeros(n, np.int64) if split_index is None else np.asarray(split_index)
        self.splits = splits
        first = splits[0]
        n_train, n_val = len(first.y_train), len(first.y_val)
        shape = _Shape(epochs, batch_size, n_train, n_val, int(eval_batch or min(n_val, 1024)))
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

        template, self.tv, self.ntv = initial_weights(build_model, init_seeds, cache_key)
        self.program = _program(template, optimizer, loss, metrics, shape)
        self.plateaus = _Plateaus.build(plateaus, monitors, self.program.names)

        # Shared inputs, deduplicated over the population: lr tables and batch orders.
        self.tables, self.table_idx = _distinct_rows(lr[:, : epochs * shape.steps_per_epoch])
        seeds, self.order_idx = np.unique(np.asarray(order_seeds, np.int64), return_inverse=True)
        self.orders = np.stack([_orders(batch_order, int(s), epochs, n_train) for s in seeds])

        # Data splits: all on the device at once when they fit in half the budget, else
        # ``per_group`` at a time (padded to the same count so shapes stay static).
        split_bytes = _split_bytes(splits)
        self.used = sorted(set(int(i) for i in self.split_index))
        self.per_group = max(1, min(len(self.used), (budget // 2) // max(split_bytes, 1)))
        per_trial = self.program.trial_bytes(
            self.tv, self.ntv, np.asarray(first.x_train), np.asarray(first.y_train)
        )
        memory_left = max(budget - self.per_group * split_bytes, budget // 4)
        self.size = chunk_size(n, per_trial, memory_left)

    # -- shapes and arguments ------------------------------------------------------
    def _groups(self) -> Iterator[tuple[dict[int, int], list[int]]]:
        for g in range(0, len(self.used), self.per_group):
            group = self.used[g : g + self.per_group]
            group = group + [group[0]] * (self.per_group - len(group))
            yield {s: j for j, s in enumerate(group)}, group

    def _args(self, padded: np.ndarray, local: dict[int, int], data: list[Any]):
        import jax

        put = jax.device_put
        return (
            [put(a[padded]) for a in self.tv],
            [put(a[padded]) for a in self.ntv],
            put(np.array([local[int(s)] for s in self.split_index[padded]], np.int32)),
            put(self.order_idx[padded].astype(np.int32)),
            put(self.table_idx[padded].astype(np.int32)),
            {k: put(v) for k, v in self.plateaus.take(padded).items()},
            (*data, put(self.orders), put(self.tables)),
        )

    def abstract_args(self):
        """The shapes of every chunk's arguments (to compile before the data is placed)."""
        import jax

        def spec(a: Any, rows: int | None = None) -> Any:
            a = np.asarray(a)
            shape = (rows, *a.shape[1:]) if rows is not None else a.shape
            return jax.ShapeDtypeStruct(shape, a.dtype)

        size, group = self.size, self.per_group

        def split_spec(key: str) -> Any:
            a = np.asarray(getattr(self.splits[0], key))
            return jax.ShapeDtypeStruct((group, *a.shape), a.dtype)

        i32 = jax.ShapeDtypeStruct((size,), np.int32)
        plateau = {k: spec(v, size) for k, v in self.plateaus.take(np.zeros(1, int)).items()}
        data = [split_spec(k) for k in ("x_train", "y_train", "x_val", "y_val")]
        return (
            [spec(a, size) for a in self.tv],
            [spec(a, size) for a in self.ntv],
            i32,
            i32,
            i32,
            plateau,
            (*data, spec(self.orders), spec(self.tables)),
        )

    # -- running ---------------------------------------------------------------------
    def __iter__(self) -> Iterator[tuple[np.ndarray, PopulationResult]]:
        import jax

        size, program = self.size, self.program
        for local, group in self._groups():
            data = [
                jax.device_put(np.stack([np.asarray(getattr(self.splits[s], k)) for s in group]))
                for k in ("x_train", "y_train", "x_val", "y_val")
            ]
            members = np.flatnonzero(np.isin(self.split_index, group))
            for start in range(0, len(members), size):
                index = members[start : start + size]
                padded = np.concatenate([index, np.full(size - len(index), index[0])])
                args = self._args(padded, local, data)
                t0 = time.perf_counter()
                compiled, compile_seconds = program.compiled(args)
                values, lrs, scales, diverged = (np.array(a) for a in compiled(*args))
                k = len(index)
                result = PopulationResult(
                    history={name: values[:k, :, j] for j, name in enumerate(program.names)},
                    lr=lrs[:k],
                    scale=scales[:k],
                    diverged_epoch=diverged[:k],
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


_ORDERS: dict[tuple[Any, int, int, int], np.ndarray] = {}


def _orders(batch_order: Callable[[int, int, int], np.ndarray], seed: int, epochs: int, n: int):
    """``[epochs, n]`` batch orders of one order seed (kept for the next call, up to 64 MB)."""
    key = (batch_order, seed, epochs, n)
    if key not in _ORDERS:
        while _ORDERS and (len(_ORDERS) + 1) * epochs * n * 4 > 64 << 20:
            _ORDERS.pop(next(iter(_ORDERS)))
        _ORDERS[key] = np.stack([batch_order(seed, e, n) for e in range(epochs)]).astype(np.int32)
    return _ORDERS[key]


def _split_bytes(splits: Sequence[Any]) -> int:
    """Bytes of one split's arrays (all splits have the same shapes)."""
    keys = ("x_train", "y_train", "x_val", "y_val")
    return sum(np.asarray(getattr(splits[0], k)).nbytes for k in keys)


def _targets_or_x(split: Any, key: str) -> np.ndarray:
    return np.asarray(getattr(split, key))


def train_population(build_model: Callable[[int], Any], splits: Sequence[Any], **kwargs):
    """Train ``N`` trials of one model and optimizer configuration as one JAX program.

    Args:
        build_model: ``seed -> keras.Model`` (built); called once per distinct init seed.
        splits: objects with ``x_train, y_train, x_val, y_val`` (one, or one per distinct
            data split; all of the same shapes), targets as the loss expects them.
        optimizer: a :class:`~.population_optim.KerasOptimizer` or an experiment-file
            table (``{"type": "sgd", "momentum": 0.8}``).
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


# --------------------------------------------------------------------------- the engine
class PopulationEngine(Engine):
    """Train a plan's trials in vectorized populations (one group per optimizer config).

    Results are the Keras engine's (same rows, statuses and final metrics); a trial's
    ``seconds`` is its chunk's wall time divided by the chunk's trial count.
    """

    name = "population"

    def __init__(self, memory: int | str | None = None):
        self.memory = parse_memory(memory if memory is not None else _env_memory())
        self._chunk: int | None = None

    def describe(self) -> str:
        chunk = f", {self._chunk} trials per chunk" if self._chunk else ""
        return f"population engine (jax.vmap over trials{chunk})"

    def unsupported(self, plan: Any) -> str | None:
        import keras

        if keras.backend.backend() != "jax":
            return f"it needs KERAS_BACKEND=jax (the backend is {keras.backend.backend()})"
        import json

        for trial in {t.optimizer_json: t for t in plan.trials}.values():
            try:
                KerasOptimizer.from_config(json.loads(trial.optimizer_json))
            except LrlabError as err:
                return str(err)
        return _model_unsupported(plan)

    def run(self, plan: Any, trials: Sequence[Trial]) -> Iterator[TrialResult]:
        """Prepare every group (one per optimizer config), compile them in parallel threads
        (XLA compiles one program per core), then train group after group."""
        from concurrent.futures import ThreadPoolExecutor

        groups: dict[str, list[Trial]] = {}
        for trial in trials:
            groups.setdefault(trial.optimizer_json, []).append(trial)
        prepared: list[tuple[list[Trial], Any]] = []
        for group in groups.values():
            try:
                population = _Population(**population_inputs(plan, group), memory=self.memory)
                population.program.lower(population.abstract_args())
                prepared.append((group, population))
            except Exception as err:  # e.g. an input the engine cannot take: 'failed'
                prepared.append((group, err))
        pool = ThreadPoolExecutor(max(1, min(len(prepared), os.cpu_count() or 1)))
        try:
            compiles = [
                pool.submit(p.program.compiled, p.abstract_args())
                if isinstance(p, _Population)
                else None
                for _, p in prepared
            ]
            for (group, population), compiling in zip(prepared, compiles, strict=True):
                yield from self._run_group(plan, group, population, compiling)
        finally:  # Ctrl-C or a closed generator does not wait for compiles nobody needs
            pool.shutdown(wait=False, cancel_futures=True)

    def _run_group(self, plan, trials: list[Trial], population, compiling) -> Iterator[TrialResult]:
        first = plan.metrics[0] if plan.metrics else None
        done: set[int] = set()
        started, t0 = time.time(), time.perf_counter()
        try:
            if isinstance(population, Exception):
                raise population
            compiling.result()
            for index, result in population:
                self._chunk = result.chunk_size
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
                    )
                started = time.time()
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


def _env_memory() -> str | None:
    return os.environ.get("LRLAB_MEMORY") or None


def population_inputs(plan: Any, trials: Sequence[Trial]) -> dict[str, Any]:
    """:func:`iter_population`'s arguments for ``trials`` of ``plan`` (one optimizer config).

    Everything comes from the same plan methods the Keras engine uses (split, lr table,
    model build, batch order, loss and metrics), so a trial means the same in both.
    """
    import json

    from lrlab.experiments.engines.keras import loss_for, make_metrics
    from lrlab.spec import parse

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
    return {
        "build_model": lambda seed: plan.model.build(ds.input_shape, ds.task, ds.n_classes, seed),
        "splits": splits,
        "optimizer": json.loads(trials[0].optimizer_json),
        "lr": np.stack([plan.lr_table(t) for t in trials]).astype(np.float32),
        "init_seeds": [t.init_seed for t in trials],
        "order_seeds": [t.order_seed for t in trials],
        "split_index": [split_of[t.split_seed] for t in trials],
        "epochs": plan.epochs,
        "batch_size": plan.batch_size,
        "loss": loss_for(plan),
        "metrics": make_metrics(plan.metrics, ds.task),
        "plateaus": [parse(t.plateau) if t.plateau else None for t in trials],
        "monitors": [t.monitor for t in trials],
        "cache_key": model_key if model_key[0] is not None else None,
    }


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
