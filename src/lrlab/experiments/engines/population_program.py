"""The population engine's program: one group's training, vmapped over trials and jitted.

One trial's training is a ``jax.lax.scan`` over epochs whose body scans over that
epoch's batches (the last batch may be short, as in ``fit``) and then evaluates the
validation data; the forward pass is the Keras model's own ``stateless_call``, the loss
and metrics are Keras' own objects used statelessly, the optimizer is Keras' update
formula in JAX (:mod:`.population_optim`). Parameters, non-trainable state (e.g. a
dropout seed), optimizer slots, metric accumulators and the plateau state are the scanned
state; ``jax.vmap`` maps the trial over a chunk and ``jax.jit`` compiles it once per
argument shapes (:class:`PopulationProgram`, kept by a :class:`ProgramCache`).

Plateau: the state (:class:`~lrlab.controllers.plateau.PlateauArrays`) moves at each
epoch end on the trial's monitored metric by
:func:`~lrlab.controllers.plateau.plateau_transition` (``xp=jax.numpy``, the trial's
parameters as arrays). The lr of update ``t`` is ``table[t] * scale``, and ``min_lr`` is
checked against the schedule's value at the epoch's last update, as
:class:`lrlab.integrations.keras.Scheduler` (the Keras engine) does.

The program also estimates one trial's working set (:meth:`PopulationProgram.trial_bytes`:
parameters, optimizer slots, gradients, and every intermediate of one training and one
evaluation batch, from the traced program), which sets the chunk size.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import numpy as np

from lrlab.controllers.plateau import PlateauArrays, PlateauParams, plateau_transition
from lrlab.experiments.engines.population_optim import KerasOptimizer, OptimizerStructure

__all__ = ["PLATEAU_FIELDS", "PopulationProgram", "ProgramCache", "ProgramShape"]

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


class PopulationProgram:
    """The jitted, vmapped training of one group (reused across its chunks).

    ``run(tv, ntv, split, order, table, plateau, hyper, data)`` (vmapped over the first
    seven, one row per trial; ``hyper``: the optimizer's numbers,
    :func:`~.population_optim.per_trial_numbers`) returns per trial the
    ``[epochs, len(names)]`` metric values, the lr of each epoch's last update, the
    plateau scale after each epoch and the 1-based epoch of divergence (0: none).
    ``data`` is shared: ``(x_train, y_train, x_val, y_val)`` stacked over the chunk's
    splits, the batch orders and the lr tables. With ``devices > 1`` the
    trial axis is split over that many devices (:meth:`_sharded`; a chunk is then a
    multiple of ``devices`` trials); every trial computes the same numbers either way.
    """

    def __init__(
        self, model, optimizer: OptimizerStructure, loss, metrics, shape: ProgramShape, devices=1
    ):
        import jax

        self.devices = max(1, int(devices))
        self.model = model
        self.optimizer = optimizer
        self.loss = loss
        self._squeeze = _name(loss) in _ELEMENTWISE_LOSSES
        self.metrics = list(metrics)
        self.shape = shape
        self.names = ["loss", *[m.name for m in self.metrics]]
        self.names += [f"val_{n}" for n in self.names]
        self.run = jax.jit(self._run if self.devices == 1 else self._sharded())
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

    def _trial(self, tv, ntv, split, order, table, plateau, hyper, data):
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
        carry = {
            "tv": tv,
            "ntv": ntv,
            "opt": opt.init(tv, hyper),
            "t": jnp.zeros((), jnp.int32),
            "last_lr": jnp.zeros((), dtype),
            "loss_sum": jnp.zeros((), jnp.float32),
            "metrics": self._metric_init(),
            "diverged": jnp.zeros((), jnp.int32),
            "plateau": PlateauArrays.initial(jnp),
        }
        carry, (values, lrs, scales) = jax.lax.scan(epoch, carry, jnp.arange(s.epochs))
        return values, lrs, scales, carry["diverged"]

    def _run(self, tv, ntv, split, order, table, plateau, hyper, data):
        import jax

        trial = jax.vmap(self._trial, in_axes=(0, 0, 0, 0, 0, 0, 0, None))
        return trial(tv, ntv, split, order, table, plateau, hyper, data)

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
            in_specs=(trials,) * 7 + (shared,),
            out_specs=trials,
            check_vma=False,
        )

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


class ProgramCache:
    """Programs by structure, so the same structure coming again is compiled once.

    The key is the model's architecture without layer names and seeds (each build numbers
    its layers anew), the optimizer's :class:`~.population_optim.OptimizerStructure` (its
    numbers are per-trial data, so a grid over momentum or betas shares one program), the
    loss and metrics (names included: they name the results) and the shapes; anything
    that cannot be serialized gets a fresh program. The ``limit`` most recent programs
    are kept; :attr:`built` counts the programs made.
    """

    def __init__(self, limit: int = 8):
        self.limit = limit
        self.built = 0
        self._programs: dict[str, PopulationProgram] = {}

    def get(
        self,
        model,
        optimizer: OptimizerStructure | KerasOptimizer,
        loss,
        metrics,
        shape: ProgramShape,
        devices=1,
    ) -> PopulationProgram:
        if isinstance(optimizer, KerasOptimizer):
            optimizer = optimizer.structure
        try:
            parts = [
                _nameless(model.get_config()),
                loss.get_config(),
                [m.get_config() for m in metrics],
            ]
            key = json.dumps(
                [parts, repr(optimizer), repr(shape), devices], sort_keys=True, default=repr
            )
        except Exception:
            self.built += 1
            return PopulationProgram(model, optimizer, loss, metrics, shape, devices)
        if key not in self._programs:
            while len(self._programs) >= self.limit:
                self._programs.pop(next(iter(self._programs)))
            self.built += 1
            self._programs[key] = PopulationProgram(model, optimizer, loss, metrics, shape, devices)
        return self._programs[key]


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
