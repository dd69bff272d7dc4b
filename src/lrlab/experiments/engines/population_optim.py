"""Keras 3's optimizers as pure JAX functions, for the population engine.

Each optimizer is a pair of pure functions over pytrees of parameters (no Keras
variables), so a whole population runs them under ``jax.vmap``. The update formulas are
Keras 3's (``keras/src/optimizers/*.py``), written with the same operations in the same
order so that a trial matches Keras ``fit`` to float32 rounding. ``t`` is Keras'
``iterations`` (updates done before this one, 0 for the first), ``lr`` the learning
rate of this update (``schedule(t)``).

A configuration is split in two (:class:`KerasOptimizer`): its :class:`OptimizerStructure`
(the type and the flags Keras branches on: nesterov, amsgrad, centered, momentum zero or
not, weight decay set or not, warmup or not) is what a compiled program depends on;
every number (momentum, betas, epsilon, rho, the weight decay's value, ...) is data, one
row per trial (:func:`per_trial_numbers`), so trials that differ only in numbers share
one program. Each number is rounded to the parameters' dtype once, from its Python
value, as Keras casts it; where Keras computes ``1 - beta`` in Python (float64) the
program takes ``one_minus_beta`` computed the same way on the host, so every trial's
arithmetic is Keras' to the bit. The formulas:

- every optimizer, when ``weight_decay`` is set: ``w <- w - w * weight_decay * lr``,
  applied *before* the update (Keras' ``_apply_weight_decay``, all trainable variables);
- ``sgd``: without momentum ``w <- w - g * lr``; with momentum
  ``m <- m * momentum - g * lr``, then ``w <- w + m``, or with nesterov
  ``w <- w + (m * momentum - g * lr)``;
- ``adam`` (and ``adamw``, which only defaults ``weight_decay`` to 0.004):
  ``alpha = lr * sqrt(1 - beta_2^(t+1)) / (1 - beta_1^(t+1))``,
  ``m <- m + (g - m)(1 - beta_1)``, ``v <- v + (g^2 - v)(1 - beta_2)``
  (amsgrad: ``vhat <- max(vhat, v)`` is used for ``v``), ``w <- w - m * alpha / (sqrt(v) + eps)``;
- ``rmsprop``: ``v <- rho v + (1 - rho) g^2``; centered: ``a <- rho a + (1 - rho) g``,
  ``d = v - a^2 + eps``, else ``d = v + eps``; ``inc = lr g / sqrt(d)``; with momentum
  ``s <- momentum s + inc``, ``w <- w - s``, else ``w <- w - inc``;
- ``adagrad``: ``acc`` starts at ``initial_accumulator_value`` (0.1);
  ``acc <- acc + g^2``, ``w <- w - lr g / sqrt(acc + eps)``;
- ``adadelta``: ``Eg <- rho Eg + (1 - rho) g^2``,
  ``dx = -sqrt(Ex + eps) g / sqrt(Eg + eps)``, ``Ex <- rho Ex + (1 - rho) dx^2``,
  ``w <- w + lr dx``;
- ``nadam``: ``u_t = beta_1 (1 - 0.5 * 0.96^(t+1))``, ``u_(t+1)`` likewise at ``t+2``, a
  scalar product ``P <- P u_t`` per update (Keras' ``_u_product``, starting at 1);
  ``m``, ``v`` as adam; ``m_hat = u_(t+1) m / (1 - P u_(t+1)) + (1 - u_t) g / (1 - P)``,
  ``w <- w - m_hat lr / (sqrt(v / (1 - beta_2^(t+1))) + eps)``;
- ``adamax``: ``m`` as adam, ``u <- max(beta_2 u, |g|)``,
  ``w <- w - lr m / ((1 - beta_1^(t+1)) (u + eps))``;
- ``lion``: ``w <- w - lr sign(beta_1 m + (1 - beta_1) g)``, then
  ``m <- beta_2 m + (1 - beta_2) g``;
- ``schedulefreeadamw`` (Defazio et al. 2024, Keras' port): the model's weights are
  ``y``; the slots are ``z`` (Keras' ``momentum``, starting at the initial weights) and
  ``v``; with ``lr`` times ``min((t+1) / warmup_steps, 1)`` when ``warmup_steps > 0``:
  ``v <- v + (g^2 - v)(1 - beta_2)``, ``z <- z - lr g / (sqrt(v / (1 - beta_2^(t+1))) + eps)``,
  ``x = (y - (1 - beta_1) z_old) / beta_1``, ``x <- (1 - 1/(t+1)) x + z / (t+1)``,
  ``y <- (1 - beta_1) z + beta_1 x``. The averaged weights ``x`` are what the method is
  evaluated at (:meth:`KerasOptimizer.evaluation_params`, recovered from ``y`` and ``z``
  as Keras' update does). Keras' ``fit`` itself validates at ``y``: Keras 3.15's class
  does not swap ``x`` in for evaluation, so lrlab's Keras engine adds that swap (the
  ``ScheduleFreeEvaluation`` callback); both engines store metrics at ``x``.

Where optax differs (which is why this module does not simply call optax):

- ``sgd`` momentum: optax keeps a trace of *gradients* (``t <- g + momentum t``,
  ``w <- w - lr t``); Keras keeps a trace of *steps* already scaled by the lr. They agree
  for a constant lr and differ as soon as a schedule changes the lr (Keras' momentum
  carries the old, larger lr forward).
- ``adam``: optax puts the bias correction on ``m`` and ``v`` and ``eps`` outside it
  (``m_hat / (sqrt(v_hat) + eps)``); Keras folds the correction into the lr, which is
  optax's formula with ``eps * sqrt(1 - beta_2^t)``. Default ``eps``: Keras 1e-7, optax 1e-8.
- ``adamw``: same decoupled decay ``lr * wd * w``; default ``weight_decay`` Keras 0.004,
  optax 1e-4.
- ``rmsprop``: Keras adds ``eps`` inside the square root (``sqrt(v + eps)``), optax
  ``scale_by_rms`` by default too, but optax's default ``eps`` is 1e-8 (Keras 1e-7) and its
  momentum variant traces the scaled gradient without the lr.
- ``adagrad``: the same formula and defaults (0.1, 1e-7); optax maps a zero accumulator to
  a zero update instead of ``g / sqrt(eps)``.
- ``adadelta``: Keras multiplies the step by ``lr`` (default 0.001) and defaults
  ``rho = 0.95, eps = 1e-7``; optax defaults ``rho = 0.9, eps = 1e-6``.

>>> import jax.numpy as jnp
>>> opt = KerasOptimizer.from_config({"type": "sgd", "momentum": 0.5})
>>> w, s = jnp.array([1.0]), opt.init(jnp.array([1.0]))
>>> w, s = opt.apply(jnp.array([2.0]), w, s, 0.1, 0)   # m = -0.2, w = 0.8
>>> w, s = opt.apply(jnp.array([2.0]), w, s, 0.1, 1)   # m = -0.1 - 0.2, w = 0.5
>>> [round(float(w[0]), 6), round(float(s["momentum"][0]), 6)]
[0.5, -0.3]
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lrlab.errors import LrlabError
from lrlab.experiments.optimizers import OPTIMIZERS

__all__ = [
    "DEFAULTS",
    "KerasOptimizer",
    "OptimizerStructure",
    "OptimizerUnsupported",
    "per_trial_numbers",
]

#: optimizer type -> its hyperparameters with Keras 3's defaults (the one table's)
DEFAULTS: dict[str, dict[str, Any]] = {k: dict(v.defaults) for k, v in OPTIMIZERS.items()}


#: the per-parameter slots of the types added with Keras 3 (Keras' variable names)
_SLOTS = {
    "nadam": ("m", "v"),
    "adamax": ("momentum", "norm"),
    "lion": ("momentum",),
    "schedulefreeadamw": ("momentum", "velocity"),
}

#: per type, the hyperparameters Keras uses as ``1 - value`` computed in Python (float64,
#: then cast to the variables' dtype, which can differ by one ulp from ``1 - value``
#: computed in float32): they travel precomputed, as ``one_minus_<name>``
_ONE_MINUS = {
    "adam": ("beta_1", "beta_2"),
    "adamw": ("beta_1", "beta_2"),
    "rmsprop": ("rho",),
    "adadelta": ("rho",),
    "adamax": ("beta_1",),
}


class OptimizerUnsupported(LrlabError):
    """An optimizer setting the population engine does not implement."""


def _flags(kind: str, h: Mapping[str, Any]) -> dict[str, bool]:
    """The structural facts of a configuration: what changes the program's operations or
    slots (Keras' own ``if``s on hyperparameters)."""
    flags = {"weight_decay": h.get("weight_decay") is not None}
    if kind == "sgd":
        momentum = h["momentum"] != 0
        flags.update(momentum=momentum, nesterov=momentum and bool(h["nesterov"]))
    elif kind in ("adam", "adamw"):
        flags.update(amsgrad=bool(h["amsgrad"]))
    elif kind == "rmsprop":
        flags.update(momentum=h["momentum"] > 0, centered=bool(h["centered"]))
    elif kind == "schedulefreeadamw":
        flags.update(warmup=h["warmup_steps"] > 0)
    return flags


@dataclasses.dataclass(frozen=True)
class OptimizerStructure:
    """What of an optimizer configuration shapes the compiled program: the type and the
    flags Keras branches on (``weight_decay`` set; sgd: ``momentum`` non-zero,
    ``nesterov``; adam/adamw: ``amsgrad``; rmsprop: ``momentum`` > 0, ``centered``;
    schedulefreeadamw: ``warmup`` = ``warmup_steps > 0``). Hashable: the population
    engine's group and program key.

    Every number (momentum, betas, epsilon, rho, weight decay, ...) is an argument,
    ``numbers``: a dict of scalars in the parameters' dtype
    (:meth:`KerasOptimizer.numbers`), so under ``jax.vmap`` each trial brings its own row
    of :func:`per_trial_numbers` and trials that differ only in numbers share one program.
    """

    type: str
    flags: tuple[tuple[str, bool], ...]

    @property
    def f(self) -> dict[str, bool]:
        return dict(self.flags)

    @property
    def slots(self) -> tuple[str, ...]:
        """Names of the per-parameter state arrays (for memory estimates)."""
        f = self.f
        if self.type == "sgd":
            return ("momentum",) if f["momentum"] else ()
        if self.type in ("adam", "adamw"):
            return ("m", "v", "vhat") if f["amsgrad"] else ("m", "v")
        if self.type == "rmsprop":
            names = ["velocity"]
            if f["momentum"]:
                names.append("momentum")
            if f["centered"]:
                names.append("average_gradient")
            return tuple(names)
        if self.type == "adagrad":
            return ("accumulator",)
        if self.type == "adadelta":
            return ("accumulated_grad", "accumulated_delta_var")
        return _SLOTS[self.type]

    def init(self, params: Any, numbers: Mapping[str, Any]) -> dict[str, Any]:
        """The initial state for ``params`` (zeros; adagrad's accumulator at
        ``numbers["initial_accumulator_value"]``)."""
        import jax
        import jax.numpy as jnp

        state = {}
        for name in self.slots:
            fill = numbers["initial_accumulator_value"] if name == "accumulator" else 0.0
            state[name] = jax.tree.map(lambda p, f=fill: jnp.full_like(p, f), params)
        if self.type == "schedulefreeadamw":  # z starts at the weights (Keras' build)
            state["momentum"] = jax.tree.map(jnp.array, params)
        if self.type == "nadam":  # one scalar per trial, not per parameter
            state["u_product"] = jnp.ones((), jax.tree.leaves(params)[0].dtype)
        return state

    def evaluation_params(self, params: Any, state: dict[str, Any], numbers: Mapping[str, Any]):
        """:meth:`KerasOptimizer.evaluation_params` with the trial's ``numbers``."""
        if self.type != "schedulefreeadamw":
            return params
        import jax

        beta_1 = numbers["beta_1"]
        return jax.tree.map(lambda y, z: (y - (1 - beta_1) * z) / beta_1, params, state["momentum"])

    def apply(
        self,
        grads: Any,
        params: Any,
        state: dict[str, Any],
        lr: Any,
        t: Any,
        numbers: Mapping[str, Any],
    ):
        """One update: ``(params, state)`` after gradient ``grads`` at lr ``lr``, step ``t``,
        with the trial's hyperparameters ``numbers``."""
        import jax
        import jax.numpy as jnp

        f, n = self.f, numbers
        dtype = jax.tree.leaves(params)[0].dtype
        lr = jnp.asarray(lr, dtype)
        if f["weight_decay"]:
            wd = n["weight_decay"]
            params = jax.tree.map(lambda w: w - w * wd * lr, params)
        names = self.slots
        leaves_p, treedef = jax.tree.flatten(params)
        leaves_g = treedef.flatten_up_to(grads)
        leaves_s = [treedef.flatten_up_to(state[name]) for name in names]
        new_p, new_s = [], [[] for _ in names]
        step = getattr(self, "_adam" if self.type == "adamw" else f"_{self.type}")
        shared = {}
        if self.type == "nadam":  # Keras' _backend_update_step, before the variables'
            u_product = (
                state["u_product"]
                * n["beta_1"]
                * (1.0 - 0.5 * jnp.power(0.96, jnp.asarray(t + 1, dtype)))
            )
            step, shared = functools.partial(step, u_product=u_product), {"u_product": u_product}
        for i, (w, g) in enumerate(zip(leaves_p, leaves_g, strict=True)):
            g = g.astype(dtype)
            w, slots = step(f, n, w, g, [s[i] for s in leaves_s], lr, t, dtype)
            new_p.append(w)
            for k, value in enumerate(slots):
                new_s[k].append(value)
        params = jax.tree.unflatten(treedef, new_p)
        return params, {
            **{name: jax.tree.unflatten(treedef, v) for name, v in zip(names, new_s, strict=True)},
            **shared,
        }

    # -- per-variable updates (Keras' update_step) ----------------------------------
    # ``f``: the structure's flags; ``n``: the trial's numbers (scalars in ``dtype``), each
    # used where Keras casts the Python value, ``one_minus_*`` where Keras computes
    # ``1 - value`` in Python.
    @staticmethod
    def _sgd(f, n, w, g, slots, lr, t, dtype):
        if not slots:
            return w - g * lr, []
        momentum = n["momentum"]
        (m,) = slots
        m = m * momentum - g * lr
        if f["nesterov"]:
            return w + (m * momentum - g * lr), [m]
        return w + m, [m]

    @staticmethod
    def _adam(f, n, w, g, slots, lr, t, dtype):
        import jax.numpy as jnp

        local_step = jnp.asarray(t, dtype) + 1
        beta_1_power = jnp.power(n["beta_1"], local_step)
        beta_2_power = jnp.power(n["beta_2"], local_step)
        alpha = lr * jnp.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        m, v = slots[0], slots[1]
        m = m + (g - m) * n["one_minus_beta_1"]
        v = v + (jnp.square(g) - v) * n["one_minus_beta_2"]
        out = [m, v]
        if f["amsgrad"]:
            vhat = jnp.maximum(slots[2], v)
            out.append(vhat)
            v = vhat
        return w - (m * alpha) / (jnp.sqrt(v) + n["epsilon"]), out

    @staticmethod
    def _rmsprop(f, n, w, g, slots, lr, t, dtype):
        import jax.numpy as jnp

        rho, one_minus_rho = n["rho"], n["one_minus_rho"]
        slots = list(slots)
        velocity = rho * slots.pop(0) + one_minus_rho * jnp.square(g)
        out = [velocity]
        momentum = slots.pop(0) if f["momentum"] else None
        if f["centered"]:
            average = rho * slots.pop(0) + one_minus_rho * g
            denominator = velocity - jnp.square(average) + n["epsilon"]
        else:
            denominator = velocity + n["epsilon"]
        increment = (lr * g) / jnp.sqrt(denominator)
        if momentum is not None:
            momentum = n["momentum"] * momentum + increment
            out.append(momentum)
            w = w - momentum
        else:
            w = w - increment
        if f["centered"]:
            out.append(average)
        return w, out

    @staticmethod
    def _adagrad(f, n, w, g, slots, lr, t, dtype):
        import jax.numpy as jnp

        (acc,) = slots
        acc = acc + jnp.square(g)
        return w - (lr * g) / jnp.sqrt(acc + n["epsilon"]), [acc]

    @staticmethod
    def _adadelta(f, n, w, g, slots, lr, t, dtype):
        import jax.numpy as jnp

        rho, one_minus_rho, eps = n["rho"], n["one_minus_rho"], n["epsilon"]
        acc_grad, acc_delta = slots
        acc_grad = rho * acc_grad + one_minus_rho * jnp.square(g)
        delta = -((jnp.sqrt(acc_delta + eps) * g) / jnp.sqrt(acc_grad + eps))
        acc_delta = rho * acc_delta + one_minus_rho * jnp.square(delta)
        return w + lr * delta, [acc_grad, acc_delta]

    @staticmethod
    def _nadam(f, n, w, g, slots, lr, t, dtype, u_product):
        import jax.numpy as jnp

        local_step = jnp.asarray(t, dtype) + 1
        next_step = jnp.asarray(t, dtype) + 2
        decay = jnp.asarray(0.96, dtype)
        beta_1, beta_2 = n["beta_1"], n["beta_2"]
        u_t = beta_1 * (1.0 - 0.5 * jnp.power(decay, local_step))
        u_t_1 = beta_1 * (1.0 - 0.5 * jnp.power(decay, next_step))
        u_product_t_1 = u_product * u_t_1
        beta_2_power = jnp.power(beta_2, local_step)
        m, v = slots
        m = m + (g - m) * (1 - beta_1)  # in dtype, as Keras (beta_1 is already cast)
        v = v + (jnp.square(g) - v) * (1 - beta_2)
        m_hat = (u_t_1 * m) / (1 - u_product_t_1) + ((1 - u_t) * g) / (1 - u_product)
        v_hat = v / (1 - beta_2_power)
        return w - (m_hat * lr) / (jnp.sqrt(v_hat) + n["epsilon"]), [m, v]

    @staticmethod
    def _adamax(f, n, w, g, slots, lr, t, dtype):
        import jax.numpy as jnp

        local_step = jnp.asarray(t, dtype) + 1
        beta_1_power = jnp.power(n["beta_1"], local_step)
        m, u = slots
        m = m + (g - m) * n["one_minus_beta_1"]
        u = jnp.maximum(n["beta_2"] * u, jnp.abs(g))
        return w - (lr * m) / ((1 - beta_1_power) * (u + n["epsilon"])), [m, u]

    @staticmethod
    def _lion(f, n, w, g, slots, lr, t, dtype):
        import jax.numpy as jnp

        beta_1, beta_2 = n["beta_1"], n["beta_2"]
        (m,) = slots
        w = w - lr * jnp.sign(m * beta_1 + g * (1.0 - beta_1))
        return w, [m * beta_2 + g * (1.0 - beta_2)]

    @staticmethod
    def _schedulefreeadamw(f, n, w, g, slots, lr, t, dtype):
        import jax.numpy as jnp

        local_step = jnp.asarray(t, dtype) + 1
        beta_1, beta_2, epsilon = n["beta_1"], n["beta_2"], n["epsilon"]
        if f["warmup"]:
            lr = lr * jnp.minimum(local_step / n["warmup_steps"], 1.0)
        z_old, v = slots
        bias_correction_2 = 1 - jnp.power(beta_2, local_step)
        v = v + (jnp.square(g) - v) * (1 - beta_2)
        denom = jnp.sqrt(v / bias_correction_2) + epsilon
        z = z_old - (lr * g) / denom
        weight = 1.0 / local_step
        x_old = (w - (1 - beta_1) * z_old) / beta_1
        x_new = (1 - weight) * x_old + weight * z
        return (1 - beta_1) * z + beta_1 * x_new, [z, v]


@dataclasses.dataclass(frozen=True)
class KerasOptimizer:
    """One Keras optimizer configuration as ``init`` / ``apply`` pure functions.

    It is a :attr:`structure` (what the program's operations depend on) and
    :meth:`numbers` (the hyperparameters that are data); ``init``, ``apply`` and
    ``evaluation_params`` run the structure with this configuration's numbers. The state
    is a dict of pytrees shaped like the parameters.
    """

    type: str
    hyper: tuple[tuple[str, Any], ...]

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> KerasOptimizer:
        """From an experiment-file optimizer table (``{"type": "sgd", "momentum": 0.9}``)."""
        config = dict(config)
        kind = config.pop("type", None)
        if kind not in DEFAULTS:
            raise OptimizerUnsupported(
                f"optimizer type {kind!r} is not implemented by the population engine; "
                f'use one of {", ".join(DEFAULTS)} or engine = "keras"'
            )
        if config.get("clipnorm") is not None:
            raise OptimizerUnsupported(
                f"{kind}: clipnorm is not implemented by the population engine; "
                'use engine = "keras"'
            )
        config.pop("clipnorm", None)
        hyper = dict(DEFAULTS[kind])
        for key, value in config.items():
            if key not in hyper:
                raise OptimizerUnsupported(
                    f"{kind}: argument {key!r} is not implemented by the population engine; "
                    f"known: {', '.join(hyper)}"
                )
            hyper[key] = value
        return cls(kind, tuple(sorted(hyper.items())))

    @property
    def h(self) -> dict[str, Any]:
        return dict(self.hyper)

    @property
    def structure(self) -> OptimizerStructure:
        """What the compiled program depends on (configurations with equal structures
        differ only in :meth:`numbers`).

        >>> sgd = [KerasOptimizer.from_config({"type": "sgd", "momentum": m}) for m in (0, .5, .9)]
        >>> [s.structure == sgd[1].structure for s in sgd]
        [False, True, True]
        """
        return OptimizerStructure(self.type, tuple(sorted(_flags(self.type, self.h).items())))

    def numbers(self, dtype: Any = "float32") -> dict[str, np.ndarray]:
        """Every numeric hyperparameter as a scalar of ``dtype`` (the parameters'), rounded
        once from the Python value as Keras casts it; ``one_minus_<name>`` where Keras
        computes ``1 - value`` in Python (float64) before the cast.

        >>> n = KerasOptimizer.from_config({"type": "adam", "beta_2": 0.999}).numbers()
        >>> float(n["one_minus_beta_2"]), float(1 - n["beta_2"])  # not 1 - b in float32
        (0.0010000000474974513, 0.0009999871253967285)
        """
        h = self.h
        values = {k: v for k, v in h.items() if v is not None and not isinstance(v, bool)}
        values.update({f"one_minus_{k}": 1 - h[k] for k in _ONE_MINUS.get(self.type, ())})
        return {k: np.asarray(v, dtype) for k, v in sorted(values.items())}

    def _numbers_for(self, params: Any) -> dict[str, Any]:
        import jax
        import jax.numpy as jnp

        leaves = jax.tree.leaves(params)
        numbers = self.numbers(leaves[0].dtype if leaves else np.float32)
        return {k: jnp.asarray(v) for k, v in numbers.items()}

    @property
    def slots(self) -> tuple[str, ...]:
        """Names of the per-parameter state arrays (for memory estimates)."""
        return self.structure.slots

    def init(self, params: Any) -> dict[str, Any]:
        """The initial state for ``params`` (zeros; adagrad's accumulator at its value)."""
        return self.structure.init(params, self._numbers_for(params))

    def evaluation_params(self, params: Any, state: dict[str, Any]) -> Any:
        """The weights the method is evaluated at: ``params``, except for schedule-free,
        whose averaged weights ``x = (y - (1 - beta_1) z) / beta_1`` are recovered from the
        model's ``y`` and the slot ``z`` (Keras' own formula for ``x_old``).

        >>> import jax.numpy as jnp
        >>> opt = KerasOptimizer.from_config({"type": "schedulefreeadamw", "beta_1": 0.5})
        >>> y, z = jnp.array([2.0]), jnp.array([1.0])
        >>> float(opt.evaluation_params(y, {"momentum": z, "velocity": z})[0])  # (2 - .5)/.5
        3.0
        """
        return self.structure.evaluation_params(params, state, self._numbers_for(params))

    def apply(self, grads: Any, params: Any, state: dict[str, Any], lr: Any, t: Any):
        """One update: ``(params, state)`` after gradient ``grads`` at lr ``lr``, step ``t``."""
        return self.structure.apply(grads, params, state, lr, t, self._numbers_for(params))

    def keras(self, learning_rate: Any):
        """The equivalent ``keras.optimizers`` object (for tests and the Keras engine)."""
        from lrlab.experiments.engines.keras import make_optimizer

        return make_optimizer({"type": self.type, **self.h}, learning_rate)


def per_trial_numbers(optimizers: Sequence[KerasOptimizer], dtype: Any) -> dict[str, np.ndarray]:
    """The trials' :meth:`~KerasOptimizer.numbers` stacked: ``[N]`` arrays, row ``i`` trial
    ``i``'s (what a population's program takes, vmapped). The optimizers must share one
    :attr:`~KerasOptimizer.structure`.

    >>> opts = [KerasOptimizer.from_config({"type": "sgd", "momentum": m}) for m in (.5, .25)]
    >>> per_trial_numbers(opts, "float32")["momentum"].tolist()
    [0.5, 0.25]
    """
    structures = list(dict.fromkeys(o.structure for o in optimizers))
    if len(structures) != 1:
        raise OptimizerUnsupported(
            f"one population needs one optimizer structure, got {len(structures)} "
            f"({'; '.join(map(str, structures))}); train them as separate populations"
        )
    rows = [o.numbers(dtype) for o in optimizers]
    return {k: np.stack([row[k] for row in rows]) for k in rows[0]}
