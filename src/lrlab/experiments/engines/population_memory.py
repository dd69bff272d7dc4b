"""One trial's costs in the population engine, read from its traced training step.

:func:`trial_costs` traces one training batch (forward and gradient) and one evaluation
batch of one trial and reads from their jaxprs what sets a chunk's size and its calls:

- bytes (:class:`TrialCosts` ``kept`` and ``working``): parameters, optimizer slots,
  gradients, non-trainable state and every intermediate value (an upper bound, XLA reuses
  buffers). :func:`chunk_bytes` turns them into a chunk's bytes: vmapped, every trial of
  a chunk holds its whole working set at once; in sequence only the trials training at
  that moment do, the others keep their state. The chunk size is the memory budget over
  it (:func:`~.population_chunks.chunk_size`);
- multiply-adds of a batch (matrix products and convolutions, the work that dominates),
  from which :meth:`~.population_program.PopulationProgram.chunk_work` counts a chunk's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

__all__ = ["TrialCosts", "chunk_bytes", "jaxpr_bytes", "multiply_adds", "trial_costs"]


class TrialCosts(NamedTuple):
    """One trial's costs: ``kept`` bytes held from the chunk's first call to its last
    (weights and optimizer slots, as given and as carried, non-trainable state), ``working``
    bytes while it trains a batch (gradients, the updated weights and slots, the
    intermediates of a training and an evaluation batch), and the multiply-adds of one
    training batch (``train``, forward and gradient) and one evaluation batch (``evaluate``)."""

    kept: int
    working: int
    train: int
    evaluate: int


def trial_costs(
    forward_loss: Callable[..., Any],
    batch_size: int,
    eval_batch: int,
    slots: int,
    tv: Sequence[Any],
    ntv: Sequence[Any],
    sample_x: np.ndarray,
    sample_y: np.ndarray,
) -> TrialCosts:
    """One trial's :class:`TrialCosts`: ``kept = params * (2 + slots) + 2 * state``,
    ``working = params * (2 + slots)`` plus the intermediates of one training batch
    (``batch_size`` rows, forward and gradient) and one evaluation batch (``eval_batch``
    rows); ``params``/``state``: the bytes of one trial's trainable/non-trainable values.

    ``forward_loss(tv, ntv, x, y, training) -> (loss, aux)``; ``tv``/``ntv``: the
    population's arrays (a leading trial axis); ``sample_x``/``sample_y``: rows of the
    training data (their shapes and dtypes count, not their values).

    >>> import jax.numpy as jnp
    >>> def forward_loss(tv, ntv, x, y, training):
    ...     return jnp.mean((x @ tv[0] - y) ** 2), ()
    >>> tv = [np.zeros((3, 4, 1), np.float32)]  # 3 trials of a 4 -> 1 linear model
    >>> x, y = np.zeros((10, 4), np.float32), np.zeros((10, 1), np.float32)
    >>> costs = trial_costs(forward_loss, 2, 5, 1, tv, [], x, y)
    >>> costs.kept, costs.working > 4 * 4 * 3  # 4 weights: as given, carried, one slot
    (48, True)
    >>> costs.train, costs.evaluate  # x @ w and its gradient for w: 2 rows; 5 rows
    (16, 20)
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

    train = jax.make_jaxpr(train_step)(*one, rows(sample_x, batch_size), rows(sample_y, batch_size))
    evaluate = jax.make_jaxpr(eval_step)(
        *one, rows(sample_x, eval_batch), rows(sample_y, eval_batch)
    )
    inter = jaxpr_bytes(train) + jaxpr_bytes(evaluate)
    weights = params * (2 + slots)
    return TrialCosts(
        kept=weights + 2 * state,
        working=weights + inter,
        train=multiply_adds(train),
        evaluate=multiply_adds(evaluate),
    )


def chunk_bytes(costs: TrialCosts, live: int | None) -> tuple[int, int]:
    """``(per_trial, fixed)``: a chunk of ``n`` trials takes ``n * per_trial + fixed``
    bytes. ``live``: how many of its trials train at the same moment (``None``: all of them,
    vmapped; ``k``: ``k`` at a time in sequence, the others holding only what they keep).

    >>> costs = TrialCosts(kept=10, working=90, train=0, evaluate=0)
    >>> chunk_bytes(costs, None), chunk_bytes(costs, 1), chunk_bytes(costs, 4)
    ((100, 0), (10, 90), (10, 360))
    """
    if live is None:
        return costs.kept + costs.working, 0
    return costs.kept, live * costs.working


def _eqns(closed: Any):
    """Every equation of ``closed`` (a closed jaxpr), those of its sub-jaxprs included."""
    from jax.extend.core import jaxprs_in_params

    stack = [closed.jaxpr]
    while stack:
        jaxpr = stack.pop()
        for eqn in jaxpr.eqns:
            yield eqn
            stack.extend(jaxprs_in_params(eqn.params))


def jaxpr_bytes(closed: Any) -> int:
    """The bytes of every intermediate value of a closed jaxpr (an upper bound of its temps).

    >>> import jax, jax.numpy as jnp
    >>> jaxpr_bytes(jax.make_jaxpr(lambda a: jnp.sin(a) + 1)(np.zeros(10, np.float32)))
    80
    """
    total = 0
    for eqn in _eqns(closed):
        for var in eqn.outvars:
            aval = var.aval
            if hasattr(aval, "shape"):
                total += int(np.prod(aval.shape)) * _itemsize(aval.dtype)
    return total


def multiply_adds(closed: Any) -> int:
    """The multiply-adds of a closed jaxpr's matrix products (``dot_general``: each output
    element sums over the contracted dimensions) and convolutions (each output element sums
    over one output feature's kernel), once per equation (a loop body counts once).

    >>> import jax, jax.numpy as jnp
    >>> a, b = np.zeros((5, 3), np.float32), np.zeros((3, 2), np.float32)
    >>> multiply_adds(jax.make_jaxpr(jnp.matmul)(a, b))  # 5 x 2 outputs of 3 products
    30
    >>> x, k = np.zeros((1, 1, 6, 6), np.float32), np.zeros((4, 1, 3, 3), np.float32)
    >>> conv = jax.make_jaxpr(lambda x, k: jax.lax.conv(x, k, (1, 1), "VALID"))(x, k)
    >>> multiply_adds(conv)  # 4 features x 4 x 4 positions, each over a 3 x 3 kernel
    576
    """
    total = 0
    for eqn in _eqns(closed):
        name = eqn.primitive.name
        out = int(np.prod(eqn.outvars[0].aval.shape))
        if name == "dot_general":
            (contract, _), _ = eqn.params["dimension_numbers"]
            lhs = eqn.invars[0].aval.shape
            total += out * int(np.prod([lhs[d] for d in contract]))
        elif name == "conv_general_dilated":
            kernel = eqn.invars[1].aval.shape
            out_feature = eqn.params["dimension_numbers"].rhs_spec[0]
            total += out * int(np.prod(kernel)) // kernel[out_feature]
    return total


def _itemsize(dtype: Any) -> int:
    """Bytes per element; 8 for dtypes numpy does not know (JAX PRNG keys: two uint32)."""
    try:
        return np.dtype(dtype).itemsize
    except TypeError:
        return 8
