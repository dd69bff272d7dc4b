"""The population engine's program: one group's training over its trials, jitted.

One trial's training is a ``jax.lax.scan`` over epochs whose body scans over that
epoch's batches (the last batch may be short, as in ``fit``) and then evaluates the
validation data; the forward pass is the Keras model's own ``stateless_call``, the loss
and metrics are Keras' own objects used statelessly, the optimizer is Keras' update
formula in JAX (:mod:`.population_optim`). Parameters, non-trainable state (e.g. a
dropout seed), optimizer slots, metric accumulators and the plateau state are the scanned
state, each leaf with a row per trial; ``jax.vmap`` maps the trial over a chunk (or
``jax.lax.map`` runs the chunk's trials in sequence: :func:`trials_at_once`) and
``jax.jit`` compiles it once per argument shapes (:class:`PopulationProgram`, kept by a
:class:`~.population_caches.ProgramCache`).

A call trains ``per_call`` epochs (:func:`epochs_per_call`, a divisor of the epochs) and
hands its scanned state to the next call on the device, so the caller hears from a chunk
of trials between its epochs (progress, the best so far) while one executable serves
every call: the numbers are the same as with one call for all epochs, bit for bit.

Plateau: the state (:class:`~lrlab.controllers.plateau.PlateauArrays`) moves at each
epoch end on the trial's monitored metric by
:func:`~lrlab.controllers.plateau.plateau_transition` (``xp=jax.numpy``, the trial's
parameters as arrays). The lr of update ``t`` is ``table[t] * scale``, and ``min_lr`` is
checked against the schedule's value at the epoch's last update, as
:class:`lrlab.integrations.keras.Scheduler` (the Keras engine) does.

The program also keeps one trial's costs (:meth:`PopulationProgram.costs`: bytes and
multiply-adds, read from the traced step by :mod:`.population_memory`), which set the
chunk size and the epochs a call trains.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from lrlab.controllers.plateau import PlateauArrays, PlateauParams, plateau_transition
from lrlab.experiments.engines.conv_layout import canonical_convs
from lrlab.experiments.engines.population_memory import TrialCosts, trial_costs
from lrlab.experiments.engines.population_optim import OptimizerStructure
from lrlab.experiments.engines.xla_options import compile_lowered

__all__ = [
    "PLATEAU_FIELDS",
    "ChunkExecutables",
    "EpochChunk",
    "PopulationProgram",
    "ProgramShape",
    "epochs_per_call",
    "trials_at_once",
]

#: the per-trial plateau arguments the program takes (a dict of arrays, one row per
#: trial): ``enabled`` (False: the scale stays 1), ``monitor`` (an index into the epoch's
#: metric vector, :attr:`PopulationProgram.names`) and :class:`PlateauParams`' fields
PLATEAU_FIELDS = ("enabled", "monitor", *PlateauParams._fields)


@dataclasses.dataclass(frozen=True)
class ProgramShape:
    """What a compiled program depends on (besides the model and optimizer)."""

    epochs: int
    batch_size: int
    n_train: int
    n_val: int
    eval_batch: int

    @property
    def steps_per_epoch(self) -> int:
        return -(-self.n_train // self.batch_size)


#: the work (multiply-adds, :meth:`PopulationProgram.chunk_work`) under which a chunk of
#: trials trains all its epochs in one call: about a second on one CPU core (a 34-64-1 MLP
#: population does ~5e9 of them a second on two)
SHORT_CHUNK_WORK = 1e10
#: the number of calls a longer chunk of trials aims at (one progress report each)
CALLS_PER_CHUNK = 8


def epochs_per_call(epochs: int, work: float) -> int:
    """How many epochs one call of the program trains, for a chunk of trials whose whole
    training is ``work`` multiply-adds (:meth:`PopulationProgram.chunk_work`).

    Under :data:`SHORT_CHUNK_WORK` (about a second of CPU) there is nothing to report in
    between: all ``epochs`` at once. Else the divisor of ``epochs`` whose number of calls
    is nearest :data:`CALLS_PER_CHUNK` (by ratio; the fewer calls on a tie): a divisor, so
    every call has the same length and one compiled executable serves them all.

    >>> epochs_per_call(30, 1e8), epochs_per_call(100, 1e12), epochs_per_call(30, 1e12)
    (30, 10, 3)
    >>> epochs_per_call(7, 1e12), epochs_per_call(2, 1e12), epochs_per_call(1, 1e12)
    (1, 1, 1)
    """
    if work < SHORT_CHUNK_WORK:
        return epochs
    divisors = [k for k in range(1, epochs + 1) if epochs % k == 0]
    return min(divisors, key=lambda k: (abs(np.log(epochs / k / CALLS_PER_CHUNK)), -k))


def _layers(model: Any) -> Iterator[Any]:
    """Every layer of ``model``, nested models' layers included."""
    for layer in getattr(model, "layers", ()):
        yield layer
        yield from _layers(layer)


def _is_conv(layer: Any) -> bool:
    """A convolution layer of Keras (``Conv1D/2D/3D``, transposed, separable, depthwise)."""
    names = [cls.__name__ for cls in type(layer).__mro__]
    return any(name.startswith("Base") and "Conv" in name for name in names)


def trials_at_once(model: Any) -> int | None:
    """How the program runs a chunk's trials for ``model``: one at a time in sequence
    (``1``) if it has a convolution layer (:func:`_is_conv`), else all vmapped (``None``).

    Vmapped, a convolution over the trials' own kernels becomes one grouped convolution,
    which XLA's CPU backend runs with its slow generic emitter; a dense layer becomes a
    batched matmul, the population engine's lead. Measured on seed 003's CNN grid (48
    trials, 5 epochs, ``bench/peers.py --cnn``, load 3.2): 1230 trial-updates/s in
    sequence, 707 vmapped, 889 four at a time; Keras' ``fit`` of one trial ~740 updates/s.
    """
    return 1 if any(_is_conv(layer) for layer in _layers(model)) else None


@dataclasses.dataclass(frozen=True)
class ChunkExecutables:
    """A program compiled for one chunk shape: ``init(tv, ntv, hyper) -> carry`` and
    ``run(carry, epochs, *rest) -> (carry, outputs)`` for ``per_call`` epochs a call."""

    init: Any
    run: Any
    per_call: int


@dataclasses.dataclass(frozen=True)
class EpochChunk:
    """One call's outputs for a chunk of trials (device arrays, one row per trial):
    ``values`` ``[trials, per_call, len(names)]``, the lr of each epoch's last update and
    the plateau scale after each epoch (``[trials, per_call]``), and the 1-based epoch of
    divergence so far (0: none); ``epochs_done`` counts the epochs trained up to here."""

    epochs_done: int
    values: Any
    lrs: Any
    scales: Any
    diverged: Any


class PopulationProgram:
    """The jitted training of one group, its trials vmapped or in sequence (reused across
    its chunks).

    A trial's training state (parameters, non-trainable state, optimizer slots, update
    count, plateau state, divergence epoch: :meth:`_init`) is carried from call to call
    on the device. ``init(tv, ntv, hyper)`` makes it (``hyper``: the optimizer's numbers,
    one row per trial, :func:`~.population_optim.per_trial_numbers`); ``run(carry, epochs,
    split, order, table, plateau, hyper, data)`` trains the epochs numbered ``epochs`` (a
    shared ``[per_call]`` vector, so one executable serves every call; carry and the next
    five are vmapped, one row per trial) and returns the new carry and, per trial, the ``[per_call,
    len(names)]`` metric values, the lr of each epoch's last update, the plateau scale
    after each epoch and the 1-based epoch of divergence (0: none). ``data`` is shared:
    ``(x_train, y_train, x_val, y_val)`` stacked over the chunk's splits, the batch orders
    and the lr tables. :meth:`train` runs a chunk call by call. With ``devices > 1`` the
    trial axis is split over that many devices (:meth:`_sharded`; a chunk is then a
    multiple of ``devices`` trials); every trial computes the same numbers either way, and
    however many epochs a call trains. ``trials_at_once``: ``None`` vmaps a chunk's trials,
    ``k`` runs them ``k`` at a time in sequence inside the same program (:meth:`_run`;
    convolutional models, :func:`~.population.trials_at_once`).
    """

    def __init__(
        self,
        model,
        optimizer: OptimizerStructure,
        loss,
        metrics,
        shape: ProgramShape,
        devices=1,
        trials_at_once: int | None = None,
    ):
        self.devices = max(1, int(devices))
        self.trials_at_once = trials_at_once
        self.model = model
        self.optimizer = optimizer
        self.loss = loss
        self._squeeze = _name(loss) in _ELEMENTWISE_LOSSES
        self.metrics = list(metrics)
        self.shape = shape
        self.names = ["loss", *[m.name for m in self.metrics]]
        self.names += [f"val_{n}" for n in self.names]
        self.init: Any = None  # jitted when first lowered (:meth:`_jit`)
        self.run: Any = None
        self._executables: dict[str, Any] = {}
        self._lowered: dict[str, Any] = {}
        self._compile_seconds: dict[str, float] = {}
        self._costs: TrialCosts | None = None

    @staticmethod
    def _key(args) -> str:
        import jax

        return str(jax.tree.map(lambda a: (tuple(a.shape), str(a.dtype)), args))

    def lower(self, args, per_call: int) -> None:
        """Trace and lower for ``args``' shapes, ``per_call`` epochs a call (Python work:
        call it from the main thread)."""
        key = self._key(args) + f"/{per_call}"
        if key not in self._executables and key not in self._lowered:
            self._lowered[key] = self._lower(args, per_call)

    def compiled(self, args, per_call: int) -> tuple[ChunkExecutables, float]:
        """The executables for ``args``' shapes and ``per_call`` epochs a call and, the
        first time they are asked for, the seconds their compilation took (XLA's compile
        releases the GIL: threads may call it)."""
        key = self._key(args) + f"/{per_call}"
        if key not in self._executables:
            t0 = time.perf_counter()
            lowered = self._lowered.pop(key, None) or self._lower(args, per_call)
            init, run = (compile_lowered(part) for part in lowered)
            self._executables[key] = ChunkExecutables(init, run, per_call)
            self._compile_seconds[key] = time.perf_counter() - t0
        return self._executables[key], self._compile_seconds.pop(key, 0.0)

    def _lower(self, args, per_call: int) -> tuple[Any, Any]:
        """The init and the run lowered for ``args``' shapes (the first call's arguments:
        the carry as the init makes it, epochs ``0 .. per_call - 1``)."""
        import jax

        self._jit()
        _, _, *rest = args
        carry = jax.eval_shape(self.init, *_init_args(args))
        where = self._carry_sharding()
        if where is not None:
            carry = jax.tree.map(
                lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=where), carry
            )
        epochs = self._epoch_numbers(0, per_call, abstract=True)
        return self.init.lower(*_init_args(args)), self.run.lower(carry, epochs, *rest)

    def _jit(self) -> None:
        """Jit the init and the run. Every leaf of the carry has a row per trial (axis 0),
        the update count ``t`` too (vmap gives a value no per-trial input reaches one copy
        per trial), so its layout is known without tracing. The carry is donated: each
        call's new state takes the old one's memory."""
        import jax

        if self.run is not None:
            return
        self.init = jax.jit(jax.vmap(self._init), out_shardings=self._carry_sharding())
        run = self._run if self.devices == 1 else self._sharded()
        self.run = jax.jit(run, donate_argnums=0)

    def _carry_sharding(self) -> Any:
        """Where the carry's leaves go with ``devices > 1``, split by trial (``None``: the
        default device)."""
        if self.devices == 1:
            return None
        from jax.sharding import NamedSharding, PartitionSpec

        return NamedSharding(self.mesh(), PartitionSpec("trials"))

    def _epoch_numbers(self, first: int, per_call: int, abstract: bool = False):
        """The 0-based epochs ``first, ..., first + per_call - 1`` (shared by every trial)."""
        import jax

        shared = None
        if self.devices > 1:
            from jax.sharding import NamedSharding, PartitionSpec

            shared = NamedSharding(self.mesh(), PartitionSpec())
        if abstract:
            return jax.ShapeDtypeStruct((per_call,), np.int32, sharding=shared)
        return jax.device_put(np.arange(first, first + per_call, dtype=np.int32), shared)

    def train(self, executables: ChunkExecutables, args) -> Iterator[EpochChunk]:
        """Train one chunk of trials: the initial state, then ``epochs / per_call`` calls,
        each carrying the state (on the device) into the next; yields each call's
        :class:`EpochChunk` as soon as the next call is queued, so the device never waits
        for the caller to look at the numbers."""
        _, _, *rest = args
        carry = executables.init(*_init_args(args))
        per_call, pending = executables.per_call, None
        for first in range(0, self.shape.epochs, per_call):
            carry, (values, lrs, scales, diverged) = executables.run(
                carry, self._epoch_numbers(first, per_call), *rest
            )
            if pending is not None:
                yield pending
            pending = EpochChunk(first + per_call, values, lrs, scales, diverged)
        if pending is not None:
            yield pending

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

    def _init(self, tv, ntv, hyper):
        """One trial's state before its first epoch (what :meth:`_trial` carries)."""
        import jax
        import jax.numpy as jnp

        dtype = jax.tree.leaves(tv)[0].dtype if tv else jnp.float32
        return {
            "tv": jax.tree.map(jnp.copy, tv),  # its own buffers: the carry is donated
            "ntv": jax.tree.map(jnp.copy, ntv),
            "opt": self.optimizer.init(tv, hyper),
            "t": jnp.zeros((), jnp.int32),
            "last_lr": jnp.zeros((), dtype),
            "loss_sum": jnp.zeros((), jnp.float32),
            "metrics": self._metric_init(),
            "diverged": jnp.zeros((), jnp.int32),
            "plateau": PlateauArrays.initial(jnp),
        }

    def _trial(self, carry, epochs, split, order, table, plateau, hyper, data):
        """The epochs ``epochs`` (0-based numbers) of one trial from state ``carry``."""
        import jax
        import jax.numpy as jnp

        X, Y, XV, YV, orders, tables = data
        s = self.shape
        B, nb = s.batch_size, s.n_train // s.batch_size
        rem = s.n_train - nb * B
        # the gradient's convolutions in the layout XLA runs fast inside the scan
        grad_fn = canonical_convs(jax.value_and_grad(self._forward_loss, has_aux=True))
        opt = self.optimizer
        dtype = carry["last_lr"].dtype

        def lr_at(t):
            return tables[table, jnp.minimum(t, tables.shape[1] - 1)].astype(dtype)

        at = 0 if X.shape[0] == 1 else split  # one split: a shared array (one matmul in eval)

        def step(c, rows):
            x, y = X[at, rows], Y[at, rows]
            (loss, (y_pred, ntv_new)), grads = grad_fn(c["tv"], c["ntv"], x, y, True)
            lr = lr_at(c["t"]) * c["plateau"].scale
            tv_new, opt_new = opt.apply(grads, c["tv"], c["opt"], lr, c["t"], hyper)
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
                x, y = XV[at, rows], YV[at, rows]
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
            evaluated = opt.evaluation_params(c["tv"], c["opt"], hyper)  # schedule-free: x
            values = jnp.stack(train + evaluate(evaluated, c["ntv"]))
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

        params = PlateauParams(*(plateau[k] for k in PlateauParams._fields))
        carry, (values, lrs, scales) = jax.lax.scan(epoch, carry, epochs)
        return carry, (values, lrs, scales, carry["diverged"])

    def _run(self, carry, epochs, split, order, table, plateau, hyper, data):
        """The chunk's trials, all vmapped (``trials_at_once`` ``None``) or
        ``trials_at_once`` at a time in sequence (``jax.lax.map``)."""
        import jax

        if self.trials_at_once is None:
            in_axes = (0, None, 0, 0, 0, 0, 0, None)
            trial = jax.vmap(self._trial, in_axes=in_axes)
            return trial(carry, epochs, split, order, table, plateau, hyper, data)

        def one(per_trial):
            return self._trial(per_trial[0], epochs, *per_trial[1:], data)

        per_trial = (carry, split, order, table, plateau, hyper)
        at_once = self.trials_at_once if self.trials_at_once > 1 else None  # 1: no vmap
        return jax.lax.map(one, per_trial, batch_size=at_once)

    @property
    def mode(self) -> str:
        """How a chunk's trials run, in a few words (for progress lines): ``vmapped``,
        ``in sequence`` or ``k at a time in sequence``."""
        if self.trials_at_once is None:
            return "vmapped"
        if self.trials_at_once == 1:
            return "in sequence"
        return f"{self.trials_at_once} at a time in sequence"

    def mesh(self):
        """The first :attr:`devices` devices as a one-axis mesh (axis ``trials``)."""
        import jax
        from jax.sharding import Mesh

        return Mesh(np.array(jax.devices()[: self.devices]), ("trials",))

    def _sharded(self):
        """:meth:`_run` with the trial axis split over :meth:`mesh`: each device trains
        its share of the chunk with the same vmapped code (trials share no arithmetic, so
        no device talks to another); the shared ``data`` is replicated."""
        import jax
        from jax.sharding import PartitionSpec

        trials, shared = PartitionSpec("trials"), PartitionSpec()
        return jax.shard_map(
            self._run,
            mesh=self.mesh(),
            in_specs=(trials, shared, *(trials,) * 5, shared),
            out_specs=(trials, trials),
            check_vma=False,
        )

    def chunk_work(self, costs: TrialCosts, size: int) -> float:
        """The multiply-adds of a chunk of ``size`` trials over all epochs, for
        :func:`epochs_per_call`: per trial and epoch, a training batch's (``costs.train``,
        forward and gradient) per ``batch_size`` training rows and an evaluation batch's
        per ``eval_batch`` validation rows. The same count whether the trials are vmapped
        or in sequence: each trial does its own products either way."""
        s = self.shape
        per_epoch = costs.train * s.n_train / s.batch_size
        per_epoch += costs.evaluate * s.n_val / s.eval_batch
        return float(size) * s.epochs * per_epoch

    # -- memory --------------------------------------------------------------------
    def costs(self, tv, ntv, sample_x, sample_y) -> TrialCosts:
        """One trial's bytes and multiply-adds (:func:`~.population_memory.trial_costs`;
        traced once per program)."""
        if self._costs is None:
            s = self.shape
            self._costs = trial_costs(
                self._forward_loss,
                s.batch_size,
                s.eval_batch,
                len(self.optimizer.slots),
                tv,
                ntv,
                sample_x,
                sample_y,
            )
        return self._costs

    @property
    def live_trials(self) -> int | None:
        """How many of a chunk's trials train at the same moment (``None``: all, vmapped;
        in sequence, ``trials_at_once`` on each device), for
        :func:`~.population_memory.chunk_bytes`."""
        return None if self.trials_at_once is None else self.trials_at_once * self.devices


#: losses that average an elementwise term over the last axis
_ELEMENTWISE_LOSSES = ("binary_crossentropy", "mean_squared_error", "mean_absolute_error")


def _name(loss: Any) -> str | None:
    try:
        return loss.get_config().get("name")
    except Exception:
        return None


def _init_args(args) -> tuple[Any, Any, Any]:
    """What the init takes of a program's arguments ``(tv, ntv, split, order, table,
    plateau, hyper, data)``: the weights, the non-trainable state and the optimizer's
    numbers (e.g. adagrad's initial accumulator)."""
    return args[0], args[1], args[6]
