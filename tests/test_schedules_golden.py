"""Golden values: every schedule against the reference library whose numbers it claims.

Each case evaluates the reference implementation itself (keras.optimizers.schedules,
optax, torch.optim.lr_scheduler driving a real SGD optimizer) over hundreds of steps and
compares lrlab's vectorized numpy curve to it at float32 tolerance. transformers is not a
dependency: its two lambdas are reproduced below from its source and driven through torch's
``LambdaLR``. The seed tutorials' printed numbers are pinned last.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import keras
import numpy as np
import optax
import pytest
import torch

from lrlab import parse
from lrlab.schedules import (
    Cosine,
    CosineAnnealing,
    CosineRestarts,
    Cyclic,
    ExpDecay,
    Exponential,
    InverseSqrt,
    InverseTime,
    Linear,
    MultiStep,
    OneCycle,
    Piecewise,
    Polynomial,
    Sequence,
    StepDecay,
    TimeDecay,
    Warmup,
    WarmupStableDecay,
)

N = 400  # steps compared per case

# float32 tolerance: Keras/optax compute in float32; torch's chained (recursive) updates
# drift by a few ulps of float64, far inside this.
RTOL = 2e-6


def assert_curve(ours: np.ndarray, ref, *, rtol: float = RTOL, scale: float | None = None):
    ref = np.asarray(ref, dtype=np.float64)
    assert ours.shape == ref.shape
    atol = 1e-7 * (scale if scale is not None else float(np.max(np.abs(ref))) or 1.0)
    np.testing.assert_allclose(ours, ref, rtol=rtol, atol=atol)


# --------------------------------------------------------------------------- keras
def keras_curve(schedule, n: int = N) -> np.ndarray:
    """Evaluate a Keras schedule (JAX backend) on steps 0..n-1.

    ``jax.vmap`` maps the scalar call over the steps, so schedules that branch with
    ``ops.cond`` (CosineDecay with warmup) run as one traced call, with Keras' own code.
    """
    return np.asarray(jax.vmap(schedule)(jnp.arange(n)), dtype=np.float64)


KS = keras.optimizers.schedules


@pytest.mark.parametrize("staircase", [False, True])
@pytest.mark.parametrize("decay_steps, rate", [(10, 0.96), (7, 0.5), (1, 0.99)])
def test_exponential_matches_keras_exponential_decay(decay_steps, rate, staircase):
    ref = KS.ExponentialDecay(0.1, decay_steps, rate, staircase=staircase)
    ours = Exponential(0.1, decay_steps=decay_steps, decay_rate=rate, staircase=staircase)
    assert_curve(ours.curve(N), keras_curve(ref))


@pytest.mark.parametrize("staircase", [False, True])
@pytest.mark.parametrize("decay_steps, rate", [(10, 0.5), (3, 2.0)])
def test_inverse_time_matches_keras_inverse_time_decay(decay_steps, rate, staircase):
    ref = KS.InverseTimeDecay(0.1, decay_steps, rate, staircase=staircase)
    ours = InverseTime(0.1, decay_steps=decay_steps, decay_rate=rate, staircase=staircase)
    assert_curve(ours.curve(N), keras_curve(ref))


def test_piecewise_matches_keras_piecewise_constant_decay():
    ref = KS.PiecewiseConstantDecay([100, 250, 251], [1.0, 0.5, 0.1, 0.01])
    ours = Piecewise(boundaries=[100, 250, 251], values=[1.0, 0.5, 0.1, 0.01])
    assert_curve(ours.curve(N), keras_curve(ref))
    # Keras changes one step *after* the boundary.
    assert ours(100) == 1.0 and ours(101) == 0.5


@pytest.mark.parametrize("cycle", [False, True])
@pytest.mark.parametrize("power", [0.5, 1.0, 2.0])
def test_polynomial_matches_keras_polynomial_decay(power, cycle):
    ref = KS.PolynomialDecay(0.1, 90, end_learning_rate=0.001, power=power, cycle=cycle)
    ours = Polynomial(0.1, decay_steps=90, end_lr=0.001, power=power, cycle=cycle)
    assert_curve(ours.curve(N), keras_curve(ref))


@pytest.mark.parametrize("alpha", [0.0, 0.1])
def test_cosine_matches_keras_cosine_decay(alpha):
    ref = KS.CosineDecay(0.1, 150, alpha=alpha)
    assert_curve(Cosine(0.1, decay_steps=150, alpha=alpha).curve(N), keras_curve(ref))


@pytest.mark.parametrize(
    "initial, target, warmup, alpha", [(0.0, 0.1, 30, 0.0), (0.01, 0.2, 50, 0.05), (0.1, 0.1, 1, 0)]
)
def test_cosine_warmup_matches_keras_cosine_decay(initial, target, warmup, alpha):
    ref = KS.CosineDecay(initial, 200, alpha=alpha, warmup_target=target, warmup_steps=warmup)
    ours = Cosine(initial, 200, alpha=alpha, warmup_target=target, warmup_steps=warmup)
    assert_curve(ours.curve(300), keras_curve(ref, 300))


@pytest.mark.parametrize(
    "t_mul, m_mul, alpha", [(1.0, 1.0, 0.0), (2.0, 1.0, 0.0), (2.0, 0.8, 0.1), (1.5, 0.9, 0.05)]
)
def test_cosine_restarts_matches_keras_cosine_decay_restarts(t_mul, m_mul, alpha):
    ref = KS.CosineDecayRestarts(0.1, 20, t_mul=t_mul, m_mul=m_mul, alpha=alpha)
    ours = CosineRestarts(0.1, first_decay_steps=20, t_mul=t_mul, m_mul=m_mul, alpha=alpha)
    # Keras computes the position in the period as t / 20 - floor(t / 20) in float32, which
    # loses ~eps32 * t / 20 of it: an absolute error up to ~2e-7 here. lrlab (float64) is
    # pinned exactly against torch's integer bookkeeping below.
    assert_curve(ours.curve(N), keras_curve(ref), scale=0.1 * 40)


# --------------------------------------------------------------------------- optax
def optax_curve(schedule, n: int = N) -> np.ndarray:
    return np.asarray(schedule(jnp.arange(n)), dtype=np.float64)


@pytest.mark.parametrize("staircase", [False, True])
def test_exponential_matches_optax_exponential_decay(staircase):
    ref = optax.exponential_decay(0.1, transition_steps=10, decay_rate=0.9, staircase=staircase)
    ours = Exponential(0.1, decay_steps=10, decay_rate=0.9, staircase=staircase)
    assert_curve(ours.curve(N), optax_curve(ref))


@pytest.mark.parametrize("alpha", [0.0, 0.2])
def test_cosine_matches_optax_cosine_decay_schedule(alpha):
    ref = optax.cosine_decay_schedule(0.1, decay_steps=250, alpha=alpha)
    assert_curve(Cosine(0.1, decay_steps=250, alpha=alpha).curve(N), optax_curve(ref))


@pytest.mark.parametrize("start, end", [(0.1, 0.001), (0.0, 0.05)])
def test_linear_matches_optax_linear_schedule(start, end):
    ref = optax.linear_schedule(start, end, transition_steps=120)
    assert_curve(Linear(start, end, steps=120).curve(N), optax_curve(ref), scale=0.1)


def test_warmup_matches_optax_join_of_linear_and_cosine():
    ref = optax.join_schedules(
        [optax.linear_schedule(0.0, 0.1, 20), optax.cosine_decay_schedule(0.1, 180)], [20]
    )
    assert_curve(parse("warmup(20, cosine(0.1, decay_steps=180))").curve(N), optax_curve(ref))
    # optax's own warmup_cosine_decay_schedule is the same join (decay_steps counts warmup).
    ref2 = optax.warmup_cosine_decay_schedule(0.01, 0.1, 25, 300, end_value=0.001)
    ours2 = Warmup(25, Cosine(0.1, decay_steps=275, alpha=0.01), start=0.01)
    assert_curve(ours2.curve(N), optax_curve(ref2))


def test_sequence_matches_optax_join_schedules():
    ref = optax.join_schedules(
        [
            optax.constant_schedule(0.1),
            optax.exponential_decay(0.05, 10, 0.8),
            optax.linear_schedule(0.02, 0.0, 100),
        ],
        boundaries=[50, 200],
    )
    ours = parse(
        "sequence([constant(0.1), exponential(0.05, decay_steps=10, decay_rate=0.8),"
        " linear(0.02, 0.0, steps=100)], boundaries=[50, 200])"
    )
    assert isinstance(ours, Sequence)
    assert_curve(ours.curve(N), optax_curve(ref))


# --------------------------------------------------------------------------- torch
def torch_curve(make_scheduler, n: int = N, lr: float = 0.1, *, closed_form: bool = False):
    """Drive a real SGD optimizer: the lr update ``t`` used is ``get_last_lr()`` before it.

    With ``closed_form=True`` read ``_get_closed_form_lr()`` instead (torch's own closed
    form, for schedulers whose chained form drifts).
    """
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=lr)
    sched = make_scheduler(opt)
    out = []
    for _ in range(n):
        out.append(sched._get_closed_form_lr()[0] if closed_form else sched.get_last_lr()[0])
        # the lr the optimizer really holds is the one reported
        assert opt.param_groups[0]["lr"] == sched.get_last_lr()[0]
        param.grad = torch.ones(1)
        opt.step()
        sched.step()
    return np.array(out)


LR = torch.optim.lr_scheduler


def test_step_decay_matches_torch_step_lr():
    ref = torch_curve(lambda o: LR.StepLR(o, step_size=30, gamma=0.5))
    assert_curve(StepDecay(0.1, drop=0.5, every=30).curve(N), ref)


def test_multistep_matches_torch_multistep_lr():
    # a repeated milestone applies gamma twice, as in torch
    ref = torch_curve(lambda o: LR.MultiStepLR(o, milestones=[30, 80, 80, 300], gamma=0.5))
    assert_curve(MultiStep(0.1, milestones=[30, 80, 80, 300], gamma=0.5).curve(N), ref)


def test_multistep_milestone_zero_matches_torch():
    ref = torch_curve(lambda o: LR.MultiStepLR(o, milestones=[0, 5], gamma=0.1), n=10)
    assert_curve(MultiStep(0.1, milestones=[0, 5], gamma=0.1).curve(10), ref)


def test_exponential_matches_torch_exponential_lr():
    ref = torch_curve(lambda o: LR.ExponentialLR(o, gamma=0.99))
    assert_curve(Exponential(0.1, decay_steps=1, decay_rate=0.99).curve(N), ref)


def test_cosine_annealing_matches_torch_closed_form_and_chained_form():
    make = lambda o: LR.CosineAnnealingLR(o, T_max=100, eta_min=0.001)  # noqa: E731
    ours = CosineAnnealing(0.1, t_max=100, eta_min=0.001).curve(N)
    assert_curve(ours, torch_curve(make, closed_form=True))
    # the chained form torch really applies agrees over 4 periods (it is periodic too)
    assert_curve(ours, torch_curve(make), rtol=1e-5)
    assert ours[300] == pytest.approx(0.001) and ours[200] == pytest.approx(0.1)


@pytest.mark.parametrize("t_mult", [1, 2, 3])
def test_cosine_restarts_matches_torch_cosine_annealing_warm_restarts(t_mult):
    n = 1000  # periods 20, 60, 180, 540 for T_mult=3: three restarts
    ref = torch_curve(
        lambda o: LR.CosineAnnealingWarmRestarts(o, T_0=20, T_mult=t_mult, eta_min=0.002), n=n
    )
    ours = CosineRestarts(0.1, first_decay_steps=20, t_mul=float(t_mult), alpha=0.02)
    assert_curve(ours.curve(n), ref)


@pytest.mark.parametrize("three_phase", [False, True])
@pytest.mark.parametrize("anneal", ["cos", "linear"])
@pytest.mark.parametrize("total, pct", [(300, 0.3), (97, 0.25)])
def test_one_cycle_matches_torch_one_cycle_lr(total, pct, anneal, three_phase):
    ref = torch_curve(
        lambda o: LR.OneCycleLR(
            o,
            max_lr=0.1,
            total_steps=total,
            pct_start=pct,
            anneal_strategy=anneal,
            three_phase=three_phase,
            div_factor=20.0,
            final_div_factor=100.0,
            cycle_momentum=False,
        ),
        n=total,
    )
    ours = OneCycle(
        0.1,
        total_steps=total,
        pct_start=pct,
        anneal=anneal,
        three_phase=three_phase,
        div_factor=20.0,
        final_div_factor=100.0,
    )
    assert_curve(ours.curve(total), ref)
    # past total_steps torch raises; lrlab holds the final lr
    assert ours(total + 50) == pytest.approx(ref[-1], rel=1e-12)


@pytest.mark.parametrize(
    "mode, down, gamma",
    [
        ("triangular", None, 1.0),
        ("triangular", 30, 1.0),
        ("triangular2", None, 1.0),
        ("triangular2", 13, 1.0),
        ("exp_range", None, 0.995),
        ("exp_range", 7, 0.99),
    ],
)
def test_cyclic_matches_torch_cyclic_lr(mode, down, gamma):
    ref = torch_curve(
        lambda o: LR.CyclicLR(
            o,
            base_lr=0.01,
            max_lr=0.1,
            step_size_up=20,
            step_size_down=down,
            mode=mode,
            gamma=gamma,
            cycle_momentum=False,
        )
    )
    ours = Cyclic(0.01, 0.1, step_size_up=20, step_size_down=down, mode=mode, gamma=gamma)
    assert_curve(ours.curve(N), ref)


@pytest.mark.parametrize("start_factor, end_factor, iters", [(0.1, 1.0, 50), (1.0, 0.05, 120)])
def test_linear_matches_torch_linear_lr(start_factor, end_factor, iters):
    ref = torch_curve(
        lambda o: LR.LinearLR(
            o, start_factor=start_factor, end_factor=end_factor, total_iters=iters
        )
    )
    ours = Linear(0.1 * start_factor, 0.1 * end_factor, steps=iters)
    assert_curve(ours.curve(N), ref)


# --------------------------------------------------------------------------- transformers
# transformers is not installed; these two lambdas are copied from
# huggingface/transformers src/transformers/optimization.py
# (_get_inverse_sqrt_schedule_lr_lambda with get_inverse_sqrt_schedule's default
# ``timescale = num_warmup_steps or 10_000``, and _get_wsd_scheduler_lambda) and driven
# through torch's LambdaLR exactly as transformers does.
def _hf_inverse_sqrt_lambda(current_step, *, num_warmup_steps, timescale=None):
    if timescale is None:
        timescale = num_warmup_steps or 10_000
    if current_step < num_warmup_steps:
        return float(current_step) / float(max(1, num_warmup_steps))
    shift = timescale - num_warmup_steps
    decay = 1.0 / math.sqrt((current_step + shift) / timescale)
    return decay


def _hf_wsd_lambda(
    current_step,
    *,
    num_warmup_steps,
    num_stable_steps,
    num_decay_steps,
    warmup_type="linear",
    decay_type="cosine",
    min_lr_ratio=0.0,
    num_cycles=0.5,
):
    if current_step < num_warmup_steps:
        progress = float(current_step) / float(max(1, num_warmup_steps))
        if warmup_type == "linear":
            factor = progress
        factor = factor * (1.0 - min_lr_ratio) + min_lr_ratio
        return max(0.0, factor)
    if current_step < num_warmup_steps + num_stable_steps:
        return 1.0
    if current_step < num_warmup_steps + num_stable_steps + num_decay_steps:
        progress = float(current_step - num_warmup_steps - num_stable_steps) / float(
            max(1, num_decay_steps)
        )
        if decay_type == "linear":
            factor = 1.0 - progress
        elif decay_type == "cosine":
            factor = 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress))
        elif decay_type == "1-sqrt":
            factor = 1.0 - math.sqrt(progress)
        factor = factor * (1.0 - min_lr_ratio) + min_lr_ratio
        return max(0.0, factor)
    return min_lr_ratio


@pytest.mark.parametrize("warmup, timescale", [(50, None), (0, None), (40, 100), (1, None)])
def test_inverse_sqrt_matches_transformers(warmup, timescale):
    ref = torch_curve(
        lambda o: LR.LambdaLR(
            o,
            lambda t: _hf_inverse_sqrt_lambda(t, num_warmup_steps=warmup, timescale=timescale),
        )
    )
    assert_curve(InverseSqrt(0.1, warmup_steps=warmup, timescale=timescale).curve(N), ref)


@pytest.mark.parametrize(
    "decay, hf_decay, warmup, stable, decay_steps, min_ratio",
    [
        ("cosine", "cosine", 30, 100, 150, 0.0),
        ("linear", "linear", 30, 100, 150, 0.1),
        ("sqrt", "1-sqrt", 0, 50, 200, 0.05),
        ("cosine", "cosine", 10, 0, 1, 0.2),
    ],
)
def test_wsd_matches_transformers(decay, hf_decay, warmup, stable, decay_steps, min_ratio):
    lam = lambda t: _hf_wsd_lambda(  # noqa: E731
        t,
        num_warmup_steps=warmup,
        num_stable_steps=stable,
        num_decay_steps=decay_steps,
        decay_type=hf_decay,
        min_lr_ratio=min_ratio,
    )
    ref = torch_curve(lambda o: LR.LambdaLR(o, lam))
    ours = WarmupStableDecay(0.1, warmup, stable, decay_steps, min_lr=0.1 * min_ratio, decay=decay)
    assert_curve(ours.curve(N), ref)


# --------------------------------------------------------------------------- seed tutorials
def test_time_decay_cumulative_reproduces_the_seed_table():
    """Seed 002 prints epochs 1..5 for lr 0.1, decay 0.001 (lr *= 1/(1 + decay * epoch))."""
    printed = [0.1, 0.0999000999, 0.0997006985, 0.09940249103, 0.09900646517]
    ours = TimeDecay(0.1, decay=0.001, cumulative=True)
    for t, value in enumerate(printed):
        # the table is rounded to its last printed digit
        digits = len(repr(value).split(".")[1])
        assert abs(ours(t) - value) <= 0.5 * 10.0**-digits, (t, ours(t), value)


@pytest.mark.parametrize("decay", [0.001, 0.002, 0.05, 1.0])
def test_time_decay_cumulative_equals_the_recursion_over_500_epochs(decay):
    lr, expected = 0.1, []
    for epoch in range(500):
        lr = lr / (1.0 + decay * epoch)
        expected.append(lr)
    ours = TimeDecay(0.1, decay=decay, cumulative=True).curve(500)
    np.testing.assert_allclose(ours, expected, rtol=1e-9, atol=1e-300)


def test_time_decay_is_keras2_sgd_decay_per_update():
    """Keras 2 SGD: ``lr * (1. / (1. + self.decay * K.cast(self.iterations, ...)))``."""
    decay = 0.1 / 50
    expected = [0.1 * (1.0 / (1.0 + decay * iterations)) for iterations in range(N)]
    assert_curve(TimeDecay(0.1, decay=decay).curve(N), expected)


def test_step_decay_offset_1_is_the_seed_step_decay():
    """Seeds 000/002/003: ``0.1 * math.pow(0.5, math.floor((1 + epoch) / 10.0))``."""
    expected = [0.1 * math.pow(0.5, math.floor((1 + epoch) / 10.0)) for epoch in range(100)]
    ours = StepDecay(0.1, drop=0.5, every=10, offset=1)
    np.testing.assert_array_equal(ours.curve(100), expected)
    # the first drop comes at epoch 9 (0-based), one before torch's StepLR
    assert ours(8) == 0.1 and ours(9) == 0.05
    assert StepDecay(0.1, drop=0.5, every=10)(9) == 0.1


def test_exp_decay_is_the_seed_exp_decay():
    """Seed 003: ``initial_lrate * exp(-k*t)`` with 0.1 and k = 0.1."""
    expected = [0.1 * math.exp(-0.1 * t) for t in range(100)]
    np.testing.assert_allclose(ExpDecay(0.1, k=0.1).curve(100), expected, rtol=1e-12)
