"""Register lrlab's Keras classes as soon as Keras is imported, without importing it.

A model compiled with ``lrlab.keras.schedule(...)`` saves the schedule under the
registered name ``lrlab>KerasSchedule``; ``keras.saving.load_model`` finds it only if
the class has been registered in that process. ``import lrlab`` calls :func:`install`,
so a fresh process that did ``import lrlab`` loads such a model with no
``custom_objects``. Importing Keras takes seconds, which the CLI should not pay, so
instead of importing it ``install`` registers right away when Keras is already loaded
and otherwise waits for the first ``import keras`` (a post-import hook on
``sys.meta_path`` that removes itself after it fires once).
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
import warnings
from typing import Any

__all__ = ["install"]


def _register() -> None:
    try:
        import lrlab.keras  # noqa: F401  (its import registers the classes)
    except Exception as err:  # never break the user's `import keras`
        warnings.warn(f"lrlab: could not register its Keras classes: {err}", stacklevel=2)


class _RegisterAfterExec(importlib.abc.Loader):
    """Delegates to Keras' own loader, then registers lrlab's classes."""

    def __init__(self, loader: Any):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        self._loader.exec_module(module)
        _register()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class _KerasImportHook(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname != "keras":
            return None
        _remove_hook()
        spec = importlib.util.find_spec("keras")
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _RegisterAfterExec(spec.loader)
        return spec


_HOOK = _KerasImportHook()


def _remove_hook() -> None:
    if _HOOK in sys.meta_path:
        sys.meta_path.remove(_HOOK)


def install() -> None:
    """Register now if Keras is loaded, else when ``keras`` is first imported."""
    if "keras" in sys.modules:
        _register()
    elif _HOOK not in sys.meta_path:
        sys.meta_path.insert(0, _HOOK)
