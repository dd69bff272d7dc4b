"""JAX's persistent compilation cache for ``lrlab run`` and ``lrlab demo``.

Every trial of the Keras engine builds a new model, and compiling its train step is most
of a small trial's time; trials that differ only in seed or lr compile to the same
program. With the cache on disk each program compiles once, across trials and across
runs. Results are unchanged: a cached program is the same compiled code.

The cache lives in ``$LRLAB_CACHE/jax`` (default ``~/.cache/lrlab/jax``). Set
``JAX_COMPILATION_CACHE_DIR`` yourself to move it, or to an empty string to turn it off.
It only takes effect before JAX is imported, which is why the CLI calls it first.
"""

from __future__ import annotations

import os

from lrlab.experiments.datasets import cache_dir


def use_compilation_cache() -> None:
    """Point JAX's persistent compilation cache at lrlab's cache (unless already set).

    >>> import os
    >>> use_compilation_cache()
    >>> "JAX_COMPILATION_CACHE_DIR" in os.environ
    True
    """
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(cache_dir() / "jax"))
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
