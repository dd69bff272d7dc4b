"""One trial's working set in the population engine, estimated from the traced program.

:func:`trial_bytes` adds parameters, optimizer slots, gradients, non-trainable state and
every intermediate value of one training and one evaluation batch (read from their
jaxprs: an upper bound, XLA reuses buffers); the chunk size is the memory budget over it
(:func:`~.population_chunks.chunk_size`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["jaxpr_bytes", "trial_bytes"]


def trial_bytes(
    forward_loss: Callable[..., Any],
    batch_size: int,
    eval_batch: int,
    slots: int,
    tv: Sequence[Any],
    ntv: Sequence[Any],
    sample_x: np.ndarray,
    sample_y: np.ndarray,
) -> int:
    """An upper estimate of one trial's bytes: ``params * (4 + 2 * slots) + 2 * state``
    plus the intermediates of one training batch (``batch_size`` rows, forward and
    gradient) and one evaluation batch (``eval_batch`` rows).

    ``forward_loss(tv, ntv, x, y, training) -> (loss, aux)``; ``tv``/``ntv``: the
    population's arrays (a leading trial axis); ``sample_x``/``sample_y``: rows of the
    training data (their shapes and dtypes count, not their values).

    >>> import jax.numpy as jnp
    >>> def forward_loss(tv, ntv, x, y, training):
    ...     return jnp.mean((x @ tv[0] - y) ** 2), ()
    >>> tv = [np.zeros((3, 4, 1), np.float32)]  # 3 trials of a 4 -> 1 linear model
    >>> x, y = np.zeros((10, 4), np.float32), np.zeros((10, 1), np.float32)
    >>> trial_bytes(forward_loss, 2, 5, 1, tv, [], x, y) > 4 * 4 * 6
    True
    """
    import jax

    params = sum(int(np.prod(a.shape[1:])) * a.dtype.itemsize for a in tv)
    state = sum(int(np.prod(a.shape[1:])) * a.dtype.itemsize for a in ntv)
    one = ([a[0] for a in tv], [a[0] for a in ntv])

    def train_step(tv_, ntv_, x, y):
        return jax.value_and_grad(forward_loss, has_aux=True)(tv_, ntv_, x, y, True)

    def eval_step(tv_, ntv_, x, y):
        return forward_loss(tv_, ntv_, x, y, False)

    def rows(a: np.ndarray, n: int) -> np.ndarray:
        return np.zeros((n, *a.shape[1:]), a.dtype)

    inter = jaxpr_bytes(
        train_step, *one, rows(sample_x, batch_size), rows(sample_y, batch_size)
    ) + jaxpr_bytes(eval_step, *one, rows(sample_x, eval_batch), rows(sample_y, eval_batch))
    return params * (4 + 2 * slots) + 2 * state + inter


def jaxpr_bytes(fn: Callable[..., Any], *args: Any) -> int:
    """The bytes of every intermediate value in ``fn``'s jaxpr (an upper bound of its temps).

    >>> import jax.numpy as jnp
    >>> jaxpr_bytes(lambda a: jnp.sin(a) + 1, np.zeros(10, np.float32))  # sin, add
    80
    """
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
