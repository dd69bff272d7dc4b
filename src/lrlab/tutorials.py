"""The schedules the seed tutorials teach, as lrlab specs (steps are epochs here).

Each entry names the tutorial and the Keras 2 code it replaces.
"""

from __future__ import annotations

SEED_SCHEDULES: dict[str, str] = {
    # seed 002/003: constant SGD(lr=0.1) baseline
    "constant": "constant(0.1)",
    # seed 002: SGD(lr=0.1, decay=0.1/50) -- Keras 2 applied it per update; per epoch here
    "time-based (Keras 2 decay=0.002)": "time_decay(0.1, decay=0.002)",
    # seed 002's printed table: lr_t = lr_{t-1} / (1 + 0.001 t)
    "time-based table (cumulative)": "time_decay(0.1, decay=0.001, cumulative=true)",
    # seed 000/002/003: initial 0.1, drop 0.5 every 10 epochs, floor((1+epoch)/10)
    "step decay (tutorial)": "step_decay(0.1, drop=0.5, every=10, offset=1)",
    # seed 003: lr0 * exp(-k t), k = 0.1
    "exponential (exp_decay)": "exp_decay(0.1, k=0.1)",
    # seed 001: ExponentialDecay(0.1, decay_steps=10, decay_rate=0.96, staircase=True)
    "ExponentialDecay staircase": (
        "exponential(0.1, decay_steps=10, decay_rate=0.96, staircase=true)"
    ),
    # seed 001: halve every 10 epochs, never at epoch 0
    "custom halving": "step_decay(0.1, drop=0.5, every=10)",
    # seed 001: linear warmup, then constant
    "warmup": "warmup(5, constant(0.1))",
}
