"""The population engine's XLA options (lrlab.experiments.engines.xla_options)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lrlab.experiments.engines import xla_options


def _sums():
    """A [trials, batch] sum of an elementwise term, as the loss and metrics make per update."""
    return jax.jit(lambda a: jnp.sum(jnp.log(a + 1.0), axis=1)).lower(jnp.ones((500, 28)))


def _check(compiled):
    out = np.asarray(compiled(jnp.ones((500, 28))))
    np.testing.assert_allclose(out, np.full(500, 28 * np.log(2.0)), rtol=1e-6)


def test_options_keep_the_sums_out_of_ynnpack():
    if jax.default_backend() != "cpu":
        pytest.skip("the options are the CPU backend's")
    if "__ynn_fusion" not in _sums().compile().as_text():
        pytest.skip("this jaxlib does not hand reductions to YNNPACK by default")
    compiled = xla_options.compile_lowered(_sums())
    assert "__ynn_fusion" not in compiled.as_text()
    _check(compiled)


def test_a_backend_without_the_option_compiles_as_is(monkeypatch):
    monkeypatch.setattr(xla_options, "COMPILER_OPTIONS", {"xla_cpu_no_such_option_here": True})
    compiled = xla_options.compile_lowered(_sums())
    _check(compiled)


def test_other_compile_errors_are_not_swallowed(monkeypatch):
    class Broken:
        def compile(self, compiler_options=None):
            raise jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: out of memory")

    if jax.default_backend() != "cpu":
        pytest.skip("the options are the CPU backend's")
    with pytest.raises(jax.errors.JaxRuntimeError, match="out of memory"):
        xla_options.compile_lowered(Broken())
