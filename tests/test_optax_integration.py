"""lrlab.optax: jit/vmap-safe schedules, the lr of every jitted update, and the plateau.

Golden values: the schedules' float64 numpy closed form, SGD's update ``-lr * grad``,
lrlab's PlateauController (the reference semantics) and optax's own
``contrib.reduce_on_plateau`` where the two libraries' semantics coincide.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from optax import contrib

import lrlab
import lrlab.optax
import lrlab.torch
from datafiles import IONOSPHERE_CSV
from lrlab.controllers.plateau import PlateauController
from lrlab.errors import LrlabError
from lrlab.schedules import Constant, Plateau

N = 40


def tolerance(spec: str) -> dict[str, float]:
    """float32 tolerance: relative, plus an absolute part relative to the peak (cancellation
    in ``1 + cos`` near a cosine's end). Cumulative time_decay goes through lgamma, whose
    float32 value loses ~1e-4 relative accuracy (documented in TimeDecay)."""
    s = lrlab.parse(spec)
    rtol = 2e-4 if getattr(s, "cumulative", False) else 2e-6
    return {"rtol": rtol, "atol": 1e-6 * float(np.max(s.curve(N)))}


def test_schedule_under_jit_and_vmap_equals_numpy(schedule_case):
    lr = lrlab.optax.schedule(schedule_case)
    steps = jnp.arange(N)
    expected = lrlab.parse(schedule_case).curve(N)
    for values in (jax.jit(jax.vmap(lr))(steps), jax.vmap(jax.jit(lr))(steps), jax.jit(lr)(steps)):
        assert values.shape == (N,)
        np.testing.assert_allclose(values, expected, **tolerance(schedule_case))
    np.testing.assert_allclose(float(lr(7)), expected[7], **tolerance(schedule_case))


def test_every_schedule_is_the_lr_of_every_jitted_sgd_update(schedule_case):
    opt = lrlab.optax.inject(optax.sgd, schedule_case)
    key = jax.random.PRNGKey(0)
    x = jax.random.normal(key, (16, 3))
    y = x @ jnp.array([1.0, -2.0, 0.5]) + 0.3

    def loss(params):
        return jnp.mean((x @ params["w"] + params["b"] - y) ** 2)

    @jax.jit
    def step(params, state):
        grads = jax.grad(loss)(params)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, updates, grads

    params = {"w": jnp.zeros(3), "b": jnp.zeros(())}
    state = opt.init(params)
    used, implied = [], []
    for _ in range(N):
        params, state, updates, grads = step(params, state)
        lr = float(state.hyperparams["learning_rate"])
        used.append(lr)
        # SGD: the update is exactly -lr * grad
        np.testing.assert_allclose(updates["w"], -lr * grads["w"], rtol=1e-6, atol=1e-12)
        implied.append(float(-updates["b"] / grads["b"]))
    expected = lrlab.parse(schedule_case).curve(N)
    np.testing.assert_allclose(used, expected, **tolerance(schedule_case))
    np.testing.assert_allclose(implied, expected, **tolerance(schedule_case))
    assert int(state.count) == N


def test_inject_passes_other_hyperparameters_and_works_with_adam():
    opt = lrlab.optax.inject(optax.adam, "linear(0.01, 0.0, steps=4)", b1=0.5)
    params = jnp.ones(2)
    state = opt.init(params)
    assert float(state.hyperparams["b1"]) == 0.5
    lrs = []
    for _ in range(5):
        _, state = opt.update(jnp.ones(2), state, params)
        lrs.append(float(state.hyperparams["learning_rate"]))
    np.testing.assert_allclose(lrs, [0.01, 0.0075, 0.005, 0.0025, 0.0], atol=1e-9)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: lrlab.optax.schedule("plateau(patience=3)"), "has no curve"),
        (lambda: lrlab.optax.schedule("cosine(0.1)"), "decay_steps"),
        (
            lambda: lrlab.optax.inject(optax.sgd, "constant(0.1)", learning_rate=0.1),
            "from the spec",
        ),
        (lambda: lrlab.optax.inject(optax.scale_by_adam, "constant(0.1)"), "no learning_rate"),
        (
            lambda: lrlab.optax.inject(optax.sgd, "constant(0.1)", plateau="constant(1)"),
            "must be a plateau",
        ),
    ],
)
def test_bad_arguments_raise_lrlab_errors(call, match):
    with pytest.raises(LrlabError, match=match):
        call()


# --------------------------------------------------------------------------- plateau
# Plateau configurations covering each argument, each run on many random metric
# sequences at once (vmap over sequences, scan over steps: one compilation per config).
CONFIGS = [
    Plateau(factor=0.5, patience=2),
    Plateau(factor=0.1, patience=0, cooldown=2),
    Plateau(factor=0.5, patience=1, cooldown=1, min_delta=0.05),
    Plateau(factor=0.5, patience=3, cooldown=3, min_lr=0.003),
    Plateau(factor=0.5, patience=1, min_lr=0.003, mode="max"),
    Plateau(factor=0.1, patience=2, cooldown=2, min_delta=0.05, mode="max"),
]
METRICS = np.random.default_rng(0).choice([1.0, 0.96, 0.9, 0.8, 1.1, np.nan], size=(64, 25))


def run_plateau_schedule(ps, metrics: np.ndarray):
    """Scales, lrs and the final state of ``ps`` fed each row of ``metrics``, under jit."""

    def one(row):
        def body(state, m):
            return ps.update(state, value=m), (ps(state, value=m), ps.observe(state, m).scale)

        return jax.lax.scan(body, ps.init(), row)

    final, (lrs, scales) = jax.jit(jax.vmap(one))(jnp.asarray(metrics, jnp.float32))
    return np.asarray(scales), np.asarray(lrs), final


@pytest.mark.parametrize("plateau", CONFIGS, ids=str)
def test_jitted_plateau_transition_equals_the_controller(plateau):
    """PlateauSchedule (jnp, under jit and vmap) equals PlateauController.update."""
    schedule = lrlab.parse("exponential(0.1, decay_steps=10, decay_rate=0.5)")
    ps = lrlab.optax.PlateauSchedule(schedule, plateau)
    scales, lrs, final = run_plateau_schedule(ps, METRICS)
    controller = PlateauController(plateau)
    for row, metrics in enumerate(METRICS):
        state, expected = controller.initial(), []
        for t, m in enumerate(metrics):
            state = controller.update(state, m, schedule(t))
            expected.append(state.scale)
        np.testing.assert_allclose(scales[row], expected, rtol=1e-6)
        np.testing.assert_allclose(lrs[row], schedule.curve(len(metrics)) * expected, rtol=1e-5)
        assert int(final.reductions[row]) == state.reductions
        assert (int(final.wait[row]), int(final.cooldown_left[row])) == (
            state.wait,
            state.cooldown_left,
        )
    assert np.all(np.asarray(final.count) == METRICS.shape[1])
    assert (np.asarray(final.reductions) > 0).any()


@pytest.mark.parametrize(
    "plateau", [p for p in CONFIGS if p.mode == "min" and p.min_lr == 0], ids=str
)
def test_plateau_equals_optax_reduce_on_plateau_where_semantics_coincide(plateau):
    """optax's reduce_on_plateau with rtol=0, atol=min_delta, cooldown - 1 (mode min).

    optax ignores ``cooldown`` evaluations after a reduction where lrlab (Keras) ignores
    ``cooldown - 1`` (so lrlab's 0 and 1 are both optax's 0), and counts patience the
    same way (``==`` on a count that resets, i.e. lrlab's ``>=``; lrlab's 0 acts as 1).
    Its tolerance must be positive, so 0 is written as 1e-30.
    """
    ref = contrib.reduce_on_plateau(
        factor=plateau.factor,
        patience=max(plateau.patience, 1),
        rtol=0.0,
        atol=max(plateau.min_delta, 1e-30),
        cooldown=max(plateau.cooldown - 1, 0),
    )

    def one(row):
        def body(state, m):
            _, state = ref.update(jnp.zeros(1), state, value=m)
            return state, state.scale

        return jax.lax.scan(body, ref.init(jnp.zeros(1)), row)[1]

    theirs = jax.jit(jax.vmap(one))(jnp.asarray(METRICS, jnp.float32))
    ours, _, _ = run_plateau_schedule(lrlab.optax.PlateauSchedule(Constant(0.1), plateau), METRICS)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)
    assert (np.asarray(theirs) < 1).any()


SCRIPT = [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95]


@pytest.mark.parametrize(
    "plateau",
    [
        "plateau(factor=0.5, patience=2)",
        "plateau(factor=0.5, patience=2, cooldown=3)",
        "plateau(factor=0.5, patience=1, min_lr=0.02)",
        "plateau(factor=0.1, patience=2, mode='max')",
        "plateau(factor=0.5, patience=2, min_delta=0.07)",
    ],
)
def test_scripted_plateau_gives_the_same_lrs_in_optax_and_torch(plateau):
    """The same metric script gives the same lr sequence through both integrations."""
    import torch

    spec = "cosine(0.1, decay_steps=20, alpha=0.5)"
    opt = lrlab.optax.inject(optax.sgd, spec, plateau=plateau)
    params = jnp.zeros(2)
    state = opt.init(params)
    update = jax.jit(opt.update)
    optax_lrs = []
    for m in SCRIPT:
        # the metric goes with the update it first affects
        _, state = update(jnp.ones(2), state, params, value=m)
        optax_lrs.append(float(state.hyperparams["learning_rate"]))

    w = torch.nn.Parameter(torch.zeros(2))
    torch_opt = torch.optim.SGD([w], lr=1.0)
    sched = lrlab.torch.scheduler(torch_opt, spec, plateau=plateau)
    torch_lrs = []
    for m in SCRIPT:
        sched.observe(m)
        torch_lrs.append(torch_opt.param_groups[0]["lr"])
        torch_opt.step()
        sched.step()
    np.testing.assert_allclose(optax_lrs, torch_lrs, rtol=1e-6)
    assert sched.plateau_state.reductions > 0
    assert int(state.hyperparams_states["learning_rate"].reductions) == (
        sched.plateau_state.reductions
    )


def test_updates_without_a_metric_leave_the_plateau_alone():
    opt = lrlab.optax.inject(optax.sgd, "constant(0.1)", plateau="plateau(factor=0.5, patience=1)")
    params = jnp.zeros(1)
    state = opt.init(params)
    lrs = []
    for value in [1.0, None, 2.0, None, None, 3.0]:
        extra = {} if value is None else {"value": value}
        _, state = opt.update(jnp.ones(1), state, params, **extra)
        lrs.append(float(state.hyperparams["learning_rate"]))
    np.testing.assert_allclose(lrs, [0.1, 0.1, 0.05, 0.05, 0.05, 0.025], rtol=1e-6)


def test_plateau_state_vmaps_over_a_population():
    """A population of runs (vmap over metrics) keeps one plateau state per member."""
    ps = lrlab.optax.PlateauSchedule(Constant(0.1), lrlab.parse("plateau(factor=0.5, patience=1)"))
    metrics = jnp.array([[1.0, 0.9, 0.8], [1.0, 1.0, 1.0]])  # member 1 never improves
    state = jax.vmap(lambda _: ps.init())(jnp.arange(2))
    advance = jax.jit(jax.vmap(lambda s, m: ps.update(s, value=m)))
    for t in range(3):
        state = advance(state, metrics[:, t])
    np.testing.assert_allclose(state.scale, [1.0, 0.25])


# --------------------------------------------------------------------------- example
def test_optax_example_runs_and_trains_with_the_schedule():
    import runpy
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    data = IONOSPHERE_CSV
    main = runpy.run_path(str(root / "examples" / "optax_ionosphere.py"))["main"]
    lrs = main(["--epochs", "4", "--data", f"csv:{data}"])
    # 235 training rows in batches of 28: 9 updates per epoch; no plateau in 4 epochs
    spec = "warmup(3, cosine(0.1, decay_steps=33, alpha=0.1))"
    np.testing.assert_allclose(lrs, lrlab.parse(spec).curve(36), rtol=1e-6, atol=1e-8)


def test_schedule_is_a_plain_optax_schedule_for_any_optimizer():
    """Passed straight to optax.sgd (no inject), SGD's update is -schedule(count) * grad."""
    spec = "warmup(3, exponential(0.1, decay_steps=2, decay_rate=0.5))"
    opt = optax.sgd(learning_rate=lrlab.optax.schedule(spec))
    params = jnp.zeros(2)
    state = opt.init(params)
    update = jax.jit(opt.update)
    steps = []
    for _ in range(8):
        updates, state = update(jnp.full(2, 2.0), state, params)
        steps.append(float(-updates[0] / 2.0))
    np.testing.assert_allclose(steps, lrlab.parse(spec).curve(8), rtol=1e-6)
