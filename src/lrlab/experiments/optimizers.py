"""The optimizers an experiment may use: type -> Keras class and Keras 3's defaults.

One table for everything that needs it: the config's schema (which arguments a type
takes, and their defaults), the Keras engine (the class to build) and the population
engine (the hyperparameters of its JAX port). Adding an optimizer starts here.

A type is Keras' own string identifier of the class (``keras.optimizers.get(type)``:
``"adamw"``, ``"schedulefreeadamw"``); the defaults are those of Keras 3.15's
``__init__``.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, NamedTuple

__all__ = ["OPTIMIZERS", "OptimizerKind"]


class OptimizerKind(NamedTuple):
    """One optimizer type: its ``keras.optimizers`` class name and its arguments' defaults
    (Keras 3's; every argument but ``learning_rate`` and ``clipnorm``)."""

    keras_class: str
    defaults: MappingProxyType[str, Any]


def _kind(keras_class: str, **defaults: Any) -> OptimizerKind:
    return OptimizerKind(keras_class, MappingProxyType(defaults))


#: optimizer type -> its Keras class and defaults (``weight_decay=None``: no decay)
OPTIMIZERS: dict[str, OptimizerKind] = {
    "sgd": _kind("SGD", momentum=0.0, nesterov=False, weight_decay=None),
    "adam": _kind("Adam", beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, weight_decay=None),
    "adamw": _kind(
        "AdamW", beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, weight_decay=0.004
    ),
    "rmsprop": _kind(
        "RMSprop", rho=0.9, momentum=0.0, epsilon=1e-7, centered=False, weight_decay=None
    ),
    "adagrad": _kind("Adagrad", initial_accumulator_value=0.1, epsilon=1e-7, weight_decay=None),
    "adadelta": _kind("Adadelta", rho=0.95, epsilon=1e-7, weight_decay=None),
    "nadam": _kind("Nadam", beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=None),
    "adamax": _kind("Adamax", beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=None),
    "lion": _kind("Lion", beta_1=0.9, beta_2=0.99, weight_decay=None),
    # schedule-free: evaluated at its averaged weights (see engines.population_optim)
    "schedulefreeadamw": _kind(
        "ScheduleFreeAdamW",
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        warmup_steps=0,
        weight_decay=None,
    ),
}
