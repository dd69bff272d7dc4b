"""The population engine's optimizers against Keras 3's own, update by update.

Each case applies the same gradients at a changing lr (so lr-dependent state such as
Keras' SGD momentum is exercised) to the same variables with a real
``keras.optimizers`` object and with :class:`KerasOptimizer`; the weights must agree to
float32 rounding after every update.
"""

from __future__ import annotations

import jax.numpy as jnp
import keras
import numpy as np
import pytest

from lrlab.errors import LrlabError
from lrlab.experiments.engines.population_optim import DEFAULTS, KerasOptimizer, per_trial_numbers

CASES = {
    "sgd": {"type": "sgd"},
    "sgd-momentum": {"type": "sgd", "momentum": 0.8},
    "sgd-nesterov": {"type": "sgd", "momentum": 0.9, "nesterov": True},
    "sgd-weight_decay": {"type": "sgd", "momentum": 0.5, "weight_decay": 0.01},
    "adam": {"type": "adam"},
    "adam-amsgrad": {"type": "adam", "amsgrad": True, "beta_1": 0.8},
    "adamw": {"type": "adamw"},
    "rmsprop": {"type": "rmsprop"},
    "rmsprop-momentum-centered": {"type": "rmsprop", "momentum": 0.9, "centered": True},
    "rmsprop-centered": {"type": "rmsprop", "centered": True, "rho": 0.8},
    "adagrad": {"type": "adagrad"},
    "adagrad-init": {"type": "adagrad", "initial_accumulator_value": 0.5, "epsilon": 1e-3},
    "adadelta": {"type": "adadelta"},
    "nadam": {"type": "nadam"},
    "nadam-weight_decay": {"type": "nadam", "beta_1": 0.8, "weight_decay": 0.01},
    "adamax": {"type": "adamax"},
    "adamax-eps": {"type": "adamax", "beta_2": 0.9, "epsilon": 1e-3},
    "lion": {"type": "lion"},
    "lion-weight_decay": {"type": "lion", "beta_1": 0.5, "weight_decay": 0.1},
    "schedulefreeadamw": {"type": "schedulefreeadamw"},
    "schedulefreeadamw-warmup": {
        "type": "schedulefreeadamw",
        "warmup_steps": 4,
        "beta_1": 0.8,
        "weight_decay": 0.01,
    },
}


@pytest.mark.parametrize("config", list(CASES.values()), ids=list(CASES))
def test_updates_match_keras(config):
    rng = np.random.default_rng(0)
    shapes = [(3, 4), (4,)]
    start = [rng.normal(size=s).astype(np.float32) for s in shapes]
    grads = [[rng.normal(size=s).astype(np.float32) for s in shapes] for _ in range(6)]
    lrs = [0.1, 0.05, 0.2, 0.01, 0.1, 0.3]

    variables = [keras.Variable(w) for w in start]
    reference = KerasOptimizer.from_config(config).keras(learning_rate=lrs[0])
    reference.build(variables)
    ours = KerasOptimizer.from_config(config)
    params = [jnp.asarray(w) for w in start]
    state = ours.init(params)
    for t, (g, lr) in enumerate(zip(grads, lrs, strict=True)):
        reference.learning_rate.assign(lr)
        reference.apply([keras.ops.convert_to_tensor(x) for x in g], variables)
        params, state = ours.apply([jnp.asarray(x) for x in g], params, state, lr, t)
        for mine, theirs in zip(params, variables, strict=True):
            np.testing.assert_allclose(
                np.asarray(mine), keras.ops.convert_to_numpy(theirs), rtol=2e-6, atol=1e-7
            )
        # the weights it is evaluated at: schedule-free's x, from y and Keras' z
        evaluated = ours.evaluation_params(params, state)
        expected = [np.asarray(w) for w in params]
        if config["type"] == "schedulefreeadamw":
            beta_1 = np.float32(reference.beta_1)
            expected = [
                (keras.ops.convert_to_numpy(y) - (1 - beta_1) * keras.ops.convert_to_numpy(z))
                / beta_1
                for y, z in zip(variables, reference._momentums, strict=True)
            ]
        for mine, theirs in zip(evaluated, expected, strict=True):
            np.testing.assert_allclose(np.asarray(mine), theirs, rtol=2e-6, atol=1e-7)


def test_sgd_momentum_is_kerass_not_optaxs():
    """Keras' momentum carries lr-scaled steps: after an lr drop the old lr still acts."""
    opt = KerasOptimizer.from_config({"type": "sgd", "momentum": 0.9})
    w, s = jnp.zeros(1), opt.init(jnp.zeros(1))
    w, s = opt.apply(jnp.ones(1), w, s, 1.0, 0)  # m = -1, w = -1
    w, s = opt.apply(jnp.ones(1), w, s, 0.0, 1)  # m = -0.9, w = -1.9 (optax: -1 - 0*...)
    assert float(w[0]) == pytest.approx(-1.9)


def test_defaults_are_kerass():
    for kind, hyper in DEFAULTS.items():
        made = KerasOptimizer.from_config({"type": kind}).keras(learning_rate=0.01)
        for key, value in hyper.items():
            assert getattr(made, key) == value, (kind, key)


@pytest.mark.parametrize(
    "config, words",
    [
        ({"type": "ftrl"}, "optimizer type 'ftrl'"),
        ({"type": "sgd", "clipnorm": 1.0}, "clipnorm"),
        ({"type": "adam", "beta_3": 0.5}, "argument 'beta_3'"),
    ],
)
def test_unsupported_settings_are_refused(config, words):
    with pytest.raises(LrlabError, match=words) as info:
        KerasOptimizer.from_config(config)
    assert "\n" not in str(info.value)


def test_schedule_free_evaluates_at_the_average_of_its_z_sequence():
    """Keras' weight ``1/(t+1)``: x after T updates is the plain mean of z_1..z_T."""
    opt = KerasOptimizer.from_config({"type": "schedulefreeadamw", "beta_1": 0.7})
    rng = np.random.default_rng(1)
    w = jnp.asarray(rng.normal(size=5).astype(np.float32))
    state, zs = opt.init(w), []
    for t in range(8):
        w, state = opt.apply(jnp.asarray(rng.normal(size=5).astype(np.float32)), w, state, 0.1, t)
        zs.append(np.asarray(state["momentum"]))
    np.testing.assert_allclose(opt.evaluation_params(w, state), np.mean(zs, axis=0), rtol=1e-5)
    assert not np.allclose(np.asarray(w), np.mean(zs, axis=0), rtol=1e-3)  # y is not x


# Trials whose configurations differ only in numbers (a grid over momentum or betas) share
# one structure; under jax.vmap each brings its own row of numbers.
MIXED = {
    "sgd-momentum": [{"type": "sgd", "momentum": m} for m in (0.5, 0.9, 0.99)],
    "sgd-nesterov-weight_decay": [
        {"type": "sgd", "momentum": m, "nesterov": True, "weight_decay": wd}
        for m, wd in ((0.5, 0.01), (0.9, 0.003))
    ],
    "adam-beta_2": [{"type": "adam", "beta_2": b} for b in (0.99, 0.999, 0.98)],
    "adamw-betas": [{"type": "adamw", "beta_1": 0.8, "weight_decay": 0.01}, {"type": "adamw"}],
    "rmsprop": [
        {"type": "rmsprop", "rho": r, "momentum": m, "epsilon": e}
        for r, m, e in ((0.8, 0.5, 1e-7), (0.95, 0.9, 1e-3))
    ],
    "adagrad": [{"type": "adagrad", "initial_accumulator_value": v} for v in (0.1, 0.5)],
    "adadelta": [{"type": "adadelta", "rho": r} for r in (0.95, 0.9)],
    "nadam": [{"type": "nadam", "beta_1": b} for b in (0.9, 0.8)],
    "adamax": [{"type": "adamax", "beta_1": b, "beta_2": c} for b, c in ((0.9, 0.999), (0.7, 0.9))],
    "lion": [{"type": "lion", "beta_1": b} for b in (0.9, 0.5)],
    "schedulefreeadamw": [
        {"type": "schedulefreeadamw", "beta_1": b, "warmup_steps": w}
        for b, w in ((0.9, 4), (0.8, 2))
    ],
}


@pytest.mark.parametrize("configs", list(MIXED.values()), ids=list(MIXED))
def test_a_vmapped_group_of_numbers_gives_each_trial_kerass_numbers_exactly(configs):
    """One structure, per-trial numbers: every trial's weights after every update are
    exactly Keras' for its own configuration (so ``1 - beta`` is Keras' float64 one)."""
    import jax

    opts = [KerasOptimizer.from_config(c) for c in configs]
    assert len({o.structure for o in opts}) == 1
    numbers = per_trial_numbers(opts, np.float32)
    assert all(v.shape == (len(opts),) and v.dtype == np.float32 for v in numbers.values())
    structure = opts[0].structure
    rng = np.random.default_rng(0)
    shapes = [(3, 4), (4,)]
    start = [rng.normal(size=s).astype(np.float32) for s in shapes]
    grads = [[rng.normal(size=s).astype(np.float32) for s in shapes] for _ in range(6)]
    lrs = [0.1, 0.05, 0.2, 0.01, 0.1, 0.3]

    references = []
    for opt in opts:
        variables = [keras.Variable(w) for w in start]
        reference = opt.keras(learning_rate=lrs[0])
        reference.build(variables)
        references.append((reference, variables))
    n = len(opts)
    params = [jnp.asarray(np.stack([w] * n)) for w in start]
    state = jax.vmap(structure.init)(params, numbers)
    apply = jax.vmap(structure.apply, in_axes=(0, 0, 0, None, None, 0))
    for t, (g, lr) in enumerate(zip(grads, lrs, strict=True)):
        for reference, variables in references:
            reference.learning_rate.assign(lr)
            reference.apply([keras.ops.convert_to_tensor(x) for x in g], variables)
        stacked = [jnp.asarray(np.stack([x] * n)) for x in g]
        params, state = apply(stacked, params, state, lr, t, numbers)
        for i, (_, variables) in enumerate(references):
            for mine, theirs in zip(params, variables, strict=True):
                np.testing.assert_array_equal(
                    np.asarray(mine[i]), keras.ops.convert_to_numpy(theirs), err_msg=f"{i}/{t}"
                )


def test_structure_is_what_changes_the_program():
    def structure(**config):
        return KerasOptimizer.from_config(config).structure

    assert structure(type="sgd", momentum=0.5) == structure(type="sgd", momentum=0.9)
    assert structure(type="sgd") != structure(type="sgd", momentum=0.9)  # a momentum slot
    assert structure(type="sgd", nesterov=True) == structure(type="sgd")  # no momentum
    assert structure(type="sgd", weight_decay=0.1) != structure(type="sgd")
    assert structure(type="adam", beta_2=0.99) == structure(type="adam", epsilon=1e-3)
    assert structure(type="adam", amsgrad=True) != structure(type="adam")
    assert structure(type="rmsprop", centered=True) != structure(type="rmsprop")
    sf = "schedulefreeadamw"
    assert structure(type=sf, warmup_steps=3) == structure(type=sf, warmup_steps=9)
    assert structure(type=sf, warmup_steps=3) != structure(type=sf)
    with pytest.raises(LrlabError, match="one optimizer structure") as info:
        per_trial_numbers([KerasOptimizer.from_config({"type": t}) for t in ("sgd", "adam")], "f4")
    assert "\n" not in str(info.value)
