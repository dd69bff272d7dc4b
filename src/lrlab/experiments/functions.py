"""``module:function`` references in experiment files: model functions and schedule functions.

One resolver for both. A reference names a plain Python function defined in a user
module; it resolves from the experiment file's folder first, then ``sys.path``, so a
``mymod.py`` beside the experiment works without ``PYTHONPATH``. Anything else is refused
before it could run: a builtin (``os:fork``, ``sys:exit``), a class, a callable object,
a function of the standard library or of lrlab itself, or one a module merely imports
from elsewhere. An experiment file runs the code it names, like a Python script.

>>> resolve_function("os:fork", what="model")
Traceback (most recent call last):
...
lrlab.errors.LrlabError: model os:fork: os is part of Python's standard library; name a \
function defined in a module of your own, e.g. mymod:build_model
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.machinery
import importlib.util
import inspect
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from lrlab.errors import LrlabError
from lrlab.schedules import Schedule
from lrlab.schedules.table import Table, function_name, tabulate

__all__ = [
    "FUNCTION_REFERENCE",
    "UserCodeError",
    "function_schedule",
    "is_reference",
    "resolve_function",
    "user_code",
]

#: ``package.module:function``
FUNCTION_REFERENCE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class UserCodeError(LrlabError):
    """What user code raised, as ``<Type>: <first line of its message>``."""


@contextlib.contextmanager
def user_code() -> Iterator[None]:
    """Run user code (a module's top level, a model or schedule function): what it prints
    goes to stderr (lrlab's stdout holds results that pipes read), and whatever it raises
    but Ctrl-C (an exception, ``sys.exit``, a bare ``BaseException``) is one
    :class:`UserCodeError`. lrlab's own errors pass through.

    >>> with user_code():
    ...     raise SystemExit(3)
    Traceback (most recent call last):
    lrlab.experiments.functions.UserCodeError: SystemExit: 3
    """
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    except (KeyboardInterrupt, LrlabError):
        raise
    except BaseException as err:
        text = str(err).strip()
        detail = text.splitlines()[0][:200] if text else ""
        raise UserCodeError(
            f"{type(err).__name__}: {detail}" if detail else type(err).__name__
        ) from None


def is_reference(text: object) -> bool:
    """True when ``text`` has the form ``package.module:function``."""
    return isinstance(text, str) and FUNCTION_REFERENCE.match(text.strip()) is not None


def resolve_function(
    text: str, base: Path | None = None, *, what: str = "function"
) -> Callable[..., Any]:
    """The plain Python function ``text`` (``package.module:function``) names.

    ``base`` (the experiment file's folder) is searched before ``sys.path``. ``what``
    names the reference in errors (``model``, ``schedule function``).

    Raises:
        LrlabError: one line: the reference is malformed, its module cannot be imported,
            or it names anything but a function defined in that (user) module.
    """
    text = text.strip() if isinstance(text, str) else text
    if not is_reference(text):
        raise LrlabError(f"{what} {text!r}: write package.module:function, e.g. mymod:fn")
    module_name, _, attr = text.partition(":")
    top = module_name.split(".")[0]
    if top in sys.stdlib_module_names or top in ("builtins", "lrlab"):
        owner = "lrlab itself" if top == "lrlab" else "Python's standard library"
        raise LrlabError(
            f"{what} {text}: {top} is part of {owner}; name a function defined in a module "
            "of your own, e.g. mymod:build_model"
        )
    module = _import(module_name, top, base, what, text)
    fn = getattr(module, attr, None)
    if fn is None:
        raise LrlabError(f"{what} {text}: {module_name} has no function {attr!r}; check the name")
    if not inspect.isfunction(fn):
        kind = "a class" if inspect.isclass(fn) else type(fn).__name__
        raise LrlabError(
            f"{what} {text} is {kind}, not a function; name a function defined with def"
        )
    if (
        inspect.isgeneratorfunction(fn)
        or inspect.iscoroutinefunction(fn)
        or inspect.isasyncgenfunction(fn)
    ):
        raise LrlabError(f"{what} {text} is a generator or async function; return from a plain def")
    if fn.__module__ != module.__name__:
        raise LrlabError(
            f"{what} {text} is {fn.__module__}:{fn.__qualname__}, imported into "
            f"{module_name}; name a function defined in {module_name} itself"
        )
    return fn


def _import(module_name: str, top: str, base: Path | None, what: str, text: str) -> ModuleType:
    try:
        with user_code():
            if base is not None:
                _load_top_from(top, Path(base))
            return importlib.import_module(module_name)
    except UserCodeError as err:
        where = f"{base}, " if base is not None else ""
        raise LrlabError(
            f"{what} {text}: cannot import {module_name!r} ({err}); put {top}.py in "
            f"{where or 'a folder on '}sys.path or install it"
        ) from None


def _load_top_from(top: str, base: Path) -> None:
    """Make ``top`` the module (or package) of that name in ``base``, when there is one.

    A module of that name already imported from the same file is kept; one imported from
    elsewhere is replaced, so the experiment's folder wins over ``sys.path``.
    """
    spec = importlib.machinery.PathFinder.find_spec(top, [str(base)])
    if spec is None or spec.origin is None:
        return
    loaded = sys.modules.get(top)
    if loaded is not None and getattr(loaded, "__file__", None) == spec.origin:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules[top] = module
    try:
        assert spec.loader is not None
        spec.loader.exec_module(module)
    except BaseException:
        if loaded is not None:
            sys.modules[top] = loaded
        else:
            sys.modules.pop(top, None)
        raise


def function_schedule(
    function: str | Callable[..., Any],
    *,
    epochs: int,
    lr: float | None,
    base: Path | None = None,
) -> tuple[Table, str]:
    """A schedule function (a reference or, from Python, the function) as ``(table, name)``.

    The function is resolved (:func:`resolve_function`) and evaluated once per epoch over
    ``epochs``, as Keras' ``LearningRateScheduler`` calls it
    (:func:`lrlab.schedules.table.tabulate`); ``name`` is its ``module:function``.

    Raises:
        LrlabError: the reference does not resolve, or the function fails at an epoch.
    """
    if isinstance(function, str):
        fn = resolve_function(function, base, what="schedule function")
        name = function.strip()
    elif callable(function) and not isinstance(function, Schedule):
        fn, name = function, function_name(function)
    else:
        raise LrlabError(
            f"a schedule function must be module:function or a Python function, got "
            f"{function!r:.80}"
        )
    try:
        with user_code():
            return tabulate(fn, epochs, unit="epoch", lr=lr, name=name), name
    except UserCodeError as err:
        raise LrlabError(f"{name} raised {err}") from None
