"""Model specs for experiments: ``mlp(...)``, ``cnn(...)`` or ``module:function``.

A model spec is written in lrlab's spec grammar and checked without importing Keras:

- ``mlp(hidden=[34], activation="relu", init="glorot_uniform", dropout=0.0)``: a
  multi-layer perceptron (image inputs are flattened first);
- ``cnn(filters=[16, 32], kernel=3, pool=2, dense=[64], activation="relu", ...)``: small
  convolution blocks (conv, then max-pool) and dense layers; needs image data
  (``(h, w, c)`` rows, e.g. ``digits`` or ``keras:cifar10``);
- ``package.module:function``: a function returning a Keras model; it is called with the
  keyword arguments it accepts among ``input_shape``, ``n_outputs`` and ``task``. It must
  be a plain Python function of a user module (:func:`check_user_function`): a builtin
  (``os:fork``), a standard-library function (``subprocess:run``), a class, or a function
  needing another argument is refused before anything is called, and so is a model
  function that returns anything but a Keras model. Naming a function runs its module's
  code, like running a Python script.

The output layer comes from the task: ``binary`` -> 1 unit with sigmoid and binary
cross-entropy, ``multiclass`` -> ``n`` units with softmax and sparse categorical
cross-entropy, ``regression`` -> 1 linear unit and mean squared error. A
``module:function`` model must end in that layer itself (or set ``from_logits``).

Initialization is seeded per trial: each layer's kernel initializer gets its own seed
derived from the trial's init seed, so the same trial builds the same weights.
``init="normal"`` is the tutorials' Keras 1 ``init='normal'`` (``RandomNormal(0, 0.05)``).

>>> parse_model('mlp(hidden=[34], activation="relu")').options
{'hidden': (34,), 'activation': 'relu', 'init': 'glorot_uniform', 'dropout': 0.0}
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lrlab.errors import LrlabError, SpecError
from lrlab.experiments.functions import UserCodeError, is_reference, resolve_function, user_code

__all__ = [
    "ACTIVATIONS",
    "INITS",
    "ModelError",
    "ModelSpec",
    "check_user_function",
    "head_for",
    "parse_model",
]

ACTIVATIONS = (
    "relu",
    "tanh",
    "sigmoid",
    "elu",
    "selu",
    "gelu",
    "silu",
    "swish",
    "leaky_relu",
    "softplus",
    "linear",
)
INITS = (
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "he_normal",
    "lecun_normal",
    "lecun_uniform",
    "normal",
    "uniform",
)

_DEFAULTS: dict[str, dict[str, Any]] = {
    "mlp": {"hidden": (34,), "activation": "relu", "init": "glorot_uniform", "dropout": 0.0},
    "cnn": {
        "filters": (16, 32),
        "kernel": 3,
        "pool": 2,
        "dense": (64,),
        "activation": "relu",
        "init": "glorot_uniform",
        "dropout": 0.0,
    },
}


class ModelError(LrlabError):
    """A model spec is invalid or a model cannot be built (one line, with the fix)."""


@dataclasses.dataclass(frozen=True)
class Head:
    """The output layer and loss for a task."""

    units: int
    activation: str
    loss: str


def head_for(task: str, n_classes: int) -> Head:
    """The output units, activation and Keras loss name for a task.

    >>> head_for("binary", 2)
    Head(units=1, activation='sigmoid', loss='binary_crossentropy')
    """
    if task == "binary":
        return Head(1, "sigmoid", "binary_crossentropy")
    if task == "multiclass":
        return Head(n_classes, "softmax", "sparse_categorical_crossentropy")
    return Head(1, "linear", "mean_squared_error")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec; :meth:`build` makes the (uncompiled) Keras model."""

    text: str
    kind: str
    options: dict[str, Any]
    function: Callable[..., Any] | None = dataclasses.field(default=None, compare=False)

    def build(self, input_shape: tuple[int, ...], task: str, n_classes: int, seed: int):
        """A fresh Keras model for ``input_shape`` with its weights drawn from ``seed``."""
        import keras

        keras.utils.set_random_seed(int(seed))
        head = head_for(task, n_classes)
        if self.kind == "function":
            return _call_function(self, input_shape, head, task)
        seeds = iter(np.random.SeedSequence([int(seed), 2024]).generate_state(64))
        o = self.options

        def init():
            return _initializer(o["init"], int(next(seeds)) % (2**31 - 1))

        layers: list[Any] = [keras.Input(shape=tuple(input_shape))]
        if self.kind == "cnn":
            if len(input_shape) != 3:
                raise ModelError(
                    f"{self.text}: cnn needs image rows (height, width, channels), "
                    f"the data has rows of shape {tuple(input_shape)}; use mlp(...)"
                )
            for filters in o["filters"]:
                layers.append(
                    keras.layers.Conv2D(
                        filters,
                        o["kernel"],
                        padding="same",
                        activation=o["activation"],
                        kernel_initializer=init(),
                    )
                )
                if o["pool"] > 1:
                    layers.append(keras.layers.MaxPooling2D(o["pool"], padding="same"))
            hidden = o["dense"]
        else:
            hidden = o["hidden"]
        if len(input_shape) > 1:
            layers.append(keras.layers.Flatten())
        for units in hidden:
            layers.append(
                keras.layers.Dense(units, activation=o["activation"], kernel_initializer=init())
            )
            if o["dropout"] > 0:
                layers.append(keras.layers.Dropout(o["dropout"], seed=int(next(seeds)) % 2**31))
        layers.append(
            keras.layers.Dense(head.units, activation=head.activation, kernel_initializer=init())
        )
        return keras.Sequential(layers, name=self.kind)


def _initializer(name: str, seed: int):
    import keras

    if name == "normal":
        return keras.initializers.RandomNormal(mean=0.0, stddev=0.05, seed=seed)
    if name == "uniform":
        return keras.initializers.RandomUniform(minval=-0.05, maxval=0.05, seed=seed)
    return keras.initializers.get({"class_name": name, "config": {"seed": seed}})


def _call_function(spec: ModelSpec, input_shape, head: Head, task: str):
    import keras

    fn = spec.function
    assert fn is not None
    offered = {"input_shape": tuple(input_shape), "n_outputs": head.units, "task": task}
    params = inspect.signature(fn).parameters
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = {k: v for k, v in offered.items() if takes_all or k in params}
    try:
        with user_code():
            model = fn(**kwargs)
    except UserCodeError as err:
        raise ModelError(f"{spec.text} raised {err}") from None
    if not isinstance(model, keras.Model):
        raise ModelError(
            f"{spec.text} returned {type(model).__name__}, not a keras.Model; return the model"
        )
    _check_shapes(spec.text, model, tuple(input_shape), head, task)
    return model


def _check_shapes(text: str, model: Any, input_shape: tuple[int, ...], head: Head, task: str):
    """A built model takes one input of the data's row shape and gives one output of shape
    ``(batch, units)`` (a subclassed model, not built yet, is checked by its first fit)."""
    inputs, outputs = getattr(model, "inputs", None), getattr(model, "outputs", None)
    if not inputs or not outputs:
        return
    shape = tuple(inputs[0].shape[1:])
    fits = len(shape) == len(input_shape) and all(
        a is None or a == b for a, b in zip(shape, input_shape, strict=True)
    )
    if len(inputs) != 1 or not fits:
        got = ", ".join(str(tuple(i.shape[1:])) for i in inputs)
        raise ModelError(
            f"{text} takes inputs of shape {got}; the data's rows have shape {input_shape}: "
            "build one keras.Input(input_shape) from the input_shape argument"
        )
    out = tuple(outputs[0].shape)
    if len(outputs) != 1 or len(out) != 2:
        raise ModelError(
            f"{text} gives outputs of shape {', '.join(str(tuple(o.shape)) for o in outputs)}; "
            f"the {task} task needs one output of shape (batch, {head.units}): flatten before "
            "the last Dense layer"
        )
    if out[-1] != head.units:
        raise ModelError(
            f"{text} ends in {out[-1]} units; the {task} task needs {head.units} "
            f"({head.activation}); use the n_outputs argument"
        )


def parse_model(text: str, base: Path | None = None) -> ModelSpec:
    """Parse and check a model spec (no Keras import; a ``module:function`` is imported,
    from ``base`` (the experiment's folder) first, see :mod:`lrlab.experiments.functions`).

    >>> parse_model("cnn(filters=[8])").options["filters"]
    (8,)
    >>> parse_model("mlp(hiden=[3])")
    Traceback (most recent call last):
    ...
    lrlab.experiments.models.ModelError: mlp has no argument 'hiden'; did you mean 'hidden'? \
valid: hidden, activation, init, dropout
    """
    if not isinstance(text, str) or not text.strip():
        raise ModelError("empty model spec; write e.g. mlp(hidden=[34])")
    text = text.strip()
    if is_reference(text):
        return ModelSpec(text, "function", {}, _import_function(text, base))
    from lrlab.spec import parse_call

    try:
        name, args, kwargs = parse_call(text)
    except SpecError as err:
        raise ModelError(str(err).splitlines()[0]) from None
    if name not in _DEFAULTS:
        close = difflib.get_close_matches(name, list(_DEFAULTS), n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise ModelError(
            f"unknown model {name!r}; {hint}use mlp(...), cnn(...) or package.module:function"
        )
    if args:
        raise ModelError(f"{name} takes keyword arguments only, e.g. {name}(hidden=[34])")
    defaults = _DEFAULTS[name]
    options = dict(defaults)
    for key, value in kwargs.items():
        if key not in defaults:
            close = difflib.get_close_matches(key, list(defaults), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ModelError(f"{name} has no argument {key!r}; {hint}valid: {', '.join(defaults)}")
        options[key] = _check_option(name, key, value)
    return ModelSpec(text, name, options)


def _check_option(model: str, key: str, value: Any) -> Any:
    def bad(expected: str) -> ModelError:
        return ModelError(f"{model}: {key} must be {expected}, got {value!r}")

    def positive_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 100_000

    if key in ("hidden", "dense", "filters"):
        if not isinstance(value, list) or not all(positive_int(v) for v in value):
            raise bad("a list of positive integers, e.g. [34]")
        if key == "filters" and not value:
            raise bad("a non-empty list")
        return tuple(value)
    if key in ("kernel", "pool"):
        if not positive_int(value) or value > 64:
            raise bad("an integer from 1 to 64")
        return value
    if key == "activation":
        if value not in ACTIVATIONS:
            raise bad(f"one of {', '.join(ACTIVATIONS)}")
        return value
    if key == "init":
        if value not in INITS:
            raise bad(f"one of {', '.join(INITS)}")
        return value
    if key == "dropout":
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
            raise bad("a number in [0, 1)")
        return float(value)
    raise AssertionError(key)  # pragma: no cover


def _import_function(text: str, base: Path | None) -> Callable[..., Any]:
    try:
        fn = resolve_function(text, base, what="model")
    except LrlabError as err:
        raise ModelError(str(err)) from None
    check_user_function(fn, text, MODEL_ARGUMENTS)
    return fn


#: The keyword arguments a ``module:function`` model may take (it gets those it names).
MODEL_ARGUMENTS = ("input_shape", "n_outputs", "task")


def check_user_function(fn: Any, text: str, offered: tuple[str, ...]) -> None:
    """Refuse ``fn`` (named ``text`` in the file) unless lrlab may call it with ``offered``:
    each parameter it requires must be one of ``offered`` (passed by keyword). Nothing is
    called. That ``fn`` is a plain function of the user's own module (no builtin, class,
    partial, nothing from Python's own library) is :func:`~.functions.resolve_function`'s
    check, made before this one.

    >>> def needs_width(input_shape, width): ...
    >>> check_user_function(needs_width, "mymod:needs_width", MODEL_ARGUMENTS)
    Traceback (most recent call last):
    ...
    lrlab.experiments.models.ModelError: mymod:needs_width needs argument 'width', which \
lrlab does not give; it may take input_shape, n_outputs, task (give the others defaults)
    """
    for name, param in inspect.signature(fn).parameters.items():
        required = param.default is inspect.Parameter.empty
        if param.kind is inspect.Parameter.POSITIONAL_ONLY and required:
            raise ModelError(f"{text}: argument {name!r} is positional-only; make it a keyword")
        keyword = param.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY)
        if keyword and required and name not in offered:
            raise ModelError(
                f"{text} needs argument {name!r}, which lrlab does not give; "
                f"it may take {', '.join(offered)} (give the others defaults)"
            )
