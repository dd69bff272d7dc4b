"""Convolutions in the layout XLA's CPU backend runs fast, wherever they sit in a program.

XLA's CPU compiler rewrites a convolution whose dimension numbers are not NHWC / HWIO /
NHWC (e.g. the weight gradient of an NHWC convolution, ``f01b_i01o->01bf``) into that
form with transposes around it, so that Eigen or YNNPACK computes it; but its
``ConvCanonicalization`` pass visits only the program's entry computation. Inside a
``jax.lax.scan`` (a while loop: the population engine's batches) the gradient
convolutions keep their layout and fall to XLA's naive loop emitter, 10-100x slower
(seed 003's CNN: 95 updates/s in a scan against 1000 for the same jitted step called from
Python). :func:`canonical_convs` does the rewrite in JAX, before XLA sees the program:
every convolution of a traced function is computed as ``transpose -> NHWC/HWIO/NHWC
convolution -> transpose``, the same arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["canonical_convs"]


def canonical_convs(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` with each of its convolutions (``lax.conv_general_dilated``, nested jits
    included) computed in the canonical layout: lhs ``[batch, *spatial, feature]``, rhs
    ``[*spatial, in, out]``, output ``[batch, *spatial, feature]``, operands and result
    transposed to and from it. Same values, same output structure; arguments that are not
    arrays (e.g. a ``training`` flag) stay Python values; a function without a convolution
    is ``fn`` itself.

    >>> import jax, jax.numpy as jnp, numpy as np
    >>> x = np.arange(2 * 5 * 5 * 3, dtype=np.float32).reshape(2, 5, 5, 3) / 100
    >>> w = np.ones((3, 3, 3, 4), np.float32) / 10
    >>> def loss(w, x):
    ...     y = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
    ...                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))
    ...     return jnp.sum(y**2)
    >>> grad = jax.grad(loss)  # its weight gradient is a convolution in another layout
    >>> bool(np.allclose(canonical_convs(grad)(w, x), grad(w, x), rtol=1e-6))
    True
    """

    def wrapped(*args: Any) -> Any:
        import jax
        import numpy as np

        leaves, tree = jax.tree.flatten(args)
        arrays = [i for i, a in enumerate(leaves) if isinstance(a, jax.Array | np.ndarray)]

        def on_arrays(*values: Any) -> Any:  # other leaves (e.g. training=True) stay static
            given = list(leaves)
            for i, value in zip(arrays, values, strict=True):
                given[i] = value
            return fn(*jax.tree.unflatten(tree, given))

        values = [leaves[i] for i in arrays]
        closed, shape = jax.make_jaxpr(on_arrays, return_shape=True)(*values)
        if not _has_conv(closed.jaxpr):
            return fn(*args)
        outs = _evaluate(closed.jaxpr, closed.consts, values)
        return jax.tree.unflatten(jax.tree.structure(shape), outs)

    return wrapped


def _has_conv(jaxpr: Any) -> bool:
    from jax import lax
    from jax.extend.core import jaxprs_in_params

    return any(
        eqn.primitive is lax.conv_general_dilated_p
        or any(_has_conv(sub) for sub in jaxprs_in_params(eqn.params))
        for eqn in jaxpr.eqns
    )


def _evaluate(jaxpr: Any, consts: Any, args: list[Any]) -> list[Any]:
    """``jaxpr`` evaluated on ``args`` (as :func:`jax.core.eval_jaxpr`), convolutions
    through :func:`_canonical_conv`, the bodies of nested jits visited too."""
    from jax import lax
    from jax.extend.core import Literal

    env: dict[Any, Any] = {}

    def read(var: Any) -> Any:
        return var.val if isinstance(var, Literal) else env[var]

    env.update(zip(jaxpr.constvars, consts, strict=True))
    env.update(zip(jaxpr.invars, args, strict=True))
    for eqn in jaxpr.eqns:
        values = [read(v) for v in eqn.invars]
        if eqn.primitive is lax.conv_general_dilated_p:
            outs = [_canonical_conv(*values, **eqn.params)]
        elif eqn.primitive.name in ("pjit", "jit"):
            inner = eqn.params["jaxpr"]
            outs = _evaluate(inner.jaxpr, inner.consts, values)
        else:
            outs = eqn.primitive.bind(*values, **eqn.primitive.get_bind_params(eqn.params))
            outs = outs if eqn.primitive.multiple_results else [outs]
        env.update(zip(eqn.outvars, outs, strict=True))
    return [read(v) for v in jaxpr.outvars]


def _canonical_conv(lhs: Any, rhs: Any, *, dimension_numbers: Any, **params: Any) -> Any:
    """One ``conv_general_dilated`` (its jaxpr parameters) in the canonical layout."""
    import jax.numpy as jnp
    from jax import lax

    lhs_spec, rhs_spec, out_spec = dimension_numbers  # (batch/out, feature/in, *spatial)
    nd = len(lhs_spec) - 2
    spatial = tuple(range(1, nd + 1))
    canonical = lax.ConvDimensionNumbers(
        lhs_spec=(0, nd + 1, *spatial),
        rhs_spec=(nd + 1, nd, *range(nd)),
        out_spec=(0, nd + 1, *spatial),
    )
    out = lax.conv_general_dilated_p.bind(
        jnp.transpose(lhs, (lhs_spec[0], *lhs_spec[2:], lhs_spec[1])),
        jnp.transpose(rhs, (*rhs_spec[2:], rhs_spec[1], rhs_spec[0])),
        dimension_numbers=canonical,
        **params,
    )
    back = [0] * (nd + 2)  # the canonical axis that each of the result's axes is
    back[out_spec[0]] = 0
    back[out_spec[1]] = nd + 1
    for i, axis in enumerate(out_spec[2:]):
        back[axis] = 1 + i
    return jnp.transpose(out, back)
