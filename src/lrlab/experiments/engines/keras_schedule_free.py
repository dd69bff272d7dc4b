"""Schedule-free training evaluated at its averaged weights inside Keras ``fit``.

A schedule-free method (Defazio et al. 2024) trains at ``y`` but is meant to be evaluated
at the average ``x``; the reference implementation (``facebookresearch/schedule_free``)
asks for ``optimizer.eval()`` before evaluating. Keras 3.15's ``ScheduleFreeAdamW`` keeps
``y`` in the model's variables and ``z`` in its ``momentum`` slots, never stores ``x``, and
swaps nothing: ``fit``'s validation, ``evaluate`` and ``predict`` all see ``y``.

:class:`ScheduleFreeEvaluation` does the swap, as Keras' own ``SwapEMAWeights`` does for
EMA weights: at ``on_test_begin`` each trainable variable is set to
``x = (y - (1 - beta_1) z) / beta_1`` (Keras' formula for ``x_old`` in its update), and
``y`` is put back at ``on_test_end``, so training is untouched and the epoch's ``val_*``
logs are those of ``x`` — what the population engine computes
(:meth:`~lrlab.experiments.engines.population_optim.KerasOptimizer.evaluation_params`).
"""

from __future__ import annotations

import keras

__all__ = ["ScheduleFreeEvaluation", "is_schedule_free"]


def is_schedule_free(optimizer) -> bool:
    """Whether ``optimizer`` is Keras' schedule-free AdamW (evaluated at ``x``)."""
    return isinstance(optimizer, keras.optimizers.ScheduleFreeAdamW)


class ScheduleFreeEvaluation(keras.callbacks.Callback):
    """Validate a schedule-free model at its averaged weights ``x`` (a no-op otherwise)."""

    def __init__(self):
        super().__init__()
        self._training_values: list | None = None

    def on_test_begin(self, logs=None):
        optimizer = getattr(self.model, "optimizer", None)
        if not is_schedule_free(optimizer) or not optimizer.built:
            return
        ops = keras.ops
        variables = self.model.trainable_variables
        self._training_values = [ops.copy(v.value) for v in variables]
        for variable in variables:
            z = optimizer._momentums[optimizer._get_variable_index(variable)]
            beta_1 = ops.cast(optimizer.beta_1, variable.dtype)
            y = variable.value
            variable.assign(ops.divide(ops.subtract(y, ops.multiply(1 - beta_1, z)), beta_1))

    def on_test_end(self, logs=None):
        if self._training_values is None:
            return
        for variable, value in zip(
            self.model.trainable_variables, self._training_values, strict=True
        ):
            variable.assign(value)
        self._training_values = None
