"""What a trial's result depends on: its identity, and the first field where two differ.

A trial's identity is everything that determines its result. It has two parts:

- the experiment's shared part (:func:`shared_identity`): the data's fingerprint, the
  data settings (split rule, validation, standardization, target...), the model and the
  fingerprint of the code it names (:func:`code_fingerprint`), the training settings and
  ``vary``. Every stored trial was trained with it, so changing it is refused;
- the config's own part (:func:`config_identity`): the trained schedule's spec (the lr
  is in it: an lr rescales the schedule), its plateau, monitor and unit, the optimizer
  and its arguments. A config is
  known by this part, not by its label: a label that changes (a second optimizer adds
  ``/ sgd`` to every label) keeps its stored trials.

The seed completes the identity. :func:`first_difference` names the first field where
two identities differ, for the one-line refusal.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "CONFIG_FIELDS",
    "code_file",
    "code_fingerprint",
    "config_identity",
    "first_difference",
    "shared_identity",
]

#: The fields of a stored trial's parameters that define its config (not its label/seed).
CONFIG_FIELDS = ("spec", "plateau", "monitor", "unit", "optimizer_params")


def code_fingerprint(obj_or_ref: Any) -> str:
    """sha256 of the source file that defines a function (``"module:function"`` or the object).

    The whole file is hashed: a helper the function calls may live beside it. An object
    without a source file (a builtin, a lambda typed in a REPL) hashes its qualified name.

    >>> code_fingerprint("json:dumps") == code_fingerprint(json.dumps)
    True
    """
    obj = obj_or_ref
    if isinstance(obj_or_ref, str):
        module_name, _, attr = obj_or_ref.partition(":")
        obj = getattr(importlib.import_module(module_name), attr)
    obj = inspect.unwrap(obj)
    try:
        path = inspect.getsourcefile(obj)
    except TypeError:
        path = None
    if path is None or not Path(path).is_file():
        name = f"{getattr(obj, '__module__', '')}:{getattr(obj, '__qualname__', repr(obj))}"
        return hashlib.sha256(name.encode()).hexdigest()
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def code_file(obj_or_ref: Any) -> str:
    """The file that defines a function (``"?"`` when it has none), for messages."""
    obj = obj_or_ref
    if isinstance(obj_or_ref, str):
        module_name, _, attr = obj_or_ref.partition(":")
        obj = getattr(importlib.import_module(module_name), attr, None)
    try:
        return inspect.getsourcefile(inspect.unwrap(obj)) or "?"
    except TypeError:
        return "?"


def shared_identity(
    canonical: Mapping[str, Any], data_fingerprint: str, code: Mapping[str, str]
) -> dict[str, Any]:
    """The part of the identity every trial of the experiment shares (JSON data).

    ``canonical`` is the file's canonical settings (``ExperimentConfig.canonical()``),
    ``code`` maps each ``module:function`` the experiment runs to its
    :func:`code_fingerprint`.

    >>> shared_identity({"data": {"split": "random"}, "model": {"spec": "mlp"},
    ...                  "training": {"epochs": 3}, "experiment": {"vary": ["init"]},
    ...                  "schedules": {}}, "abc", {})["training"]
    {'epochs': 3}
    """
    return {
        "data": dict(canonical.get("data") or {}),
        "data_fingerprint": data_fingerprint,
        "model": dict(canonical.get("model") or {}),
        "code": dict(code),
        "training": dict(canonical.get("training") or {}),
        "vary": list((canonical.get("experiment") or {}).get("vary") or []),
    }


def config_identity(params: Mapping[str, Any]) -> dict[str, Any]:
    """A config's own identity from a trial's parameters (``Trial.params()``, as stored).

    >>> config_identity({"key": "a|seed=0", "config": "a", "seed": 0, "spec": "constant(0.1)",
    ...                  "plateau": None, "monitor": "val_loss", "unit": "step",
    ...                  "optimizer_params": {"type": "sgd"}, "lr": None})["spec"]
    'constant(0.1)'
    """
    return {name: params.get(name) for name in CONFIG_FIELDS}


def first_difference(old: Any, new: Any, path: str = "") -> tuple[str, Any, Any] | None:
    """The first (dotted path, old value, new value) where ``old`` and ``new`` differ.

    >>> first_difference({"training": {"epochs": 3, "batch_size": 32}},
    ...                  {"training": {"epochs": 4, "batch_size": 32}})
    ('training.epochs', 3, 4)
    >>> first_difference({"a": 1}, {"a": 1}) is None
    True
    """
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in sorted(set(old) | set(new), key=str):
            found = first_difference(
                old.get(key), new.get(key), f"{path}.{key}" if path else str(key)
            )
            if found is not None:
                return found
        return None
    if _canon(old) != _canon(new):
        return path, old, new
    return None


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
