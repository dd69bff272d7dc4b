"""How the population engine has XLA compile its programs (the options, and a compile
that falls back to XLA's defaults where a backend lacks them).

On CPU, XLA hands work to YNNPACK: by default the dots, and also reductions together
with their elementwise producers. In a population's update those reductions are small
``[trials, batch]`` sums (the loss, the metrics, the bias gradients), each one a library
call per update; XLA's own fused loops do them with fewer kernel launches.
:data:`COMPILER_OPTIONS` keeps YNNPACK to the dots, one by one: on the seed 002 MLP
(``bench/peers.py``, N = 500) 5-14% more trials per CPU-second, and the hand-written
JAX peer gains 1-3% from the same options. The sums change order, so results move by
float32 rounding (the Keras equivalence tests pass unchanged).
"""

from __future__ import annotations

from typing import Any

__all__ = ["COMPILER_OPTIONS", "compile_lowered"]

#: XLA debug options for the CPU backend (``jax.stages.Lowered.compile(compiler_options=)``)
COMPILER_OPTIONS: dict[str, Any] = {
    "xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"
}


def compile_lowered(lowered: Any) -> Any:
    """``lowered`` (a ``jax.stages.Lowered``) compiled with :data:`COMPILER_OPTIONS` on a
    CPU backend that has them; elsewhere (a GPU, a jaxlib without the option) as is.

    >>> import jax, jax.numpy as jnp
    >>> f = compile_lowered(jax.jit(lambda a: jnp.sum(a * 2.0)).lower(jnp.ones(3)))
    >>> float(f(jnp.ones(3)))
    6.0
    """
    import jax

    if jax.default_backend() != "cpu":
        return lowered.compile()
    try:
        return lowered.compile(compiler_options=COMPILER_OPTIONS)
    except jax.errors.JaxRuntimeError as err:
        if "option" not in str(err):  # "No such compile option", "While setting option"
            raise
        return lowered.compile()
