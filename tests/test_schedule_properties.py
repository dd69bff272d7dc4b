"""Hypothesis properties of every registered schedule.

``STRATEGIES`` builds valid instances of each class; a test fails when a schedule is
registered without one. Properties: the canonical spec and the dict round-trip; values
finite, >= 0 and <= ``peak`` at any step (up to 2**53); monotone where the docstrings
promise it; the join semantics at warmup/sequence boundaries; and numpy, jax.numpy, torch
and keras.ops agree to float32 rounding.
"""

from __future__ import annotations

import json

import jax.numpy as jnp
import keras
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lrlab import parse
from lrlab.errors import ScheduleError
from lrlab.schedules import (
    REGISTRY,
    Constant,
    Cosine,
    CosineAnnealing,
    CosineRestarts,
    Cyclic,
    ExpDecay,
    Exponential,
    InverseSqrt,
    InverseTime,
    Linear,
    LrRange,
    MultiStep,
    OneCycle,
    Piecewise,
    Plateau,
    Polynomial,
    Scale,
    Schedule,
    Sequence,
    StepDecay,
    Table,
    TimeDecay,
    Warmup,
    WarmupStableDecay,
    from_dict,
)

# --------------------------------------------------------------------------- strategies
lrs = st.floats(0.0, 10.0, allow_subnormal=False)  # subnormal lrs have no relative precision
pos_lrs = st.floats(1e-6, 10.0)
unit = st.floats(0.0, 1.0, allow_subnormal=False)
periods = st.integers(1, 5_000)


def sorted_ints(min_size=1, max_size=5, hi=5_000):
    return st.lists(st.integers(0, hi), min_size=min_size, max_size=max_size).map(sorted)


@st.composite
def piecewise(draw):
    boundaries = draw(sorted_ints())
    values = draw(st.lists(lrs, min_size=len(boundaries) + 1, max_size=len(boundaries) + 1))
    return Piecewise(boundaries=boundaries, values=values)


@st.composite
def cosine(draw):
    warmup_target = draw(st.none() | lrs)
    warmup_steps = 0 if warmup_target is None else draw(st.integers(0, 500))
    return Cosine(
        draw(lrs),
        draw(periods),
        alpha=draw(unit),
        warmup_target=warmup_target,
        warmup_steps=warmup_steps,
    )


@st.composite
def one_cycle(draw):
    total = draw(st.integers(10, 5_000))
    three = draw(st.booleans())
    # keep every phase non-empty, as the constructor demands
    lo, hi = (2.5 / total, 0.49) if three else (1.5 / total, 0.95)
    return OneCycle(
        draw(pos_lrs),
        total,
        pct_start=draw(st.floats(lo, hi)),
        div_factor=draw(st.floats(1.0, 1e3)),
        final_div_factor=draw(st.floats(1.0, 1e5)),
        anneal=draw(st.sampled_from(["cos", "linear"])),
        three_phase=three,
    )


@st.composite
def wsd(draw):
    lr = draw(pos_lrs)
    return WarmupStableDecay(
        lr,
        draw(st.integers(0, 300)),
        draw(st.integers(0, 300)),
        draw(st.integers(0, 300)),
        min_lr=lr * draw(unit),
        decay=draw(st.sampled_from(["cosine", "linear", "sqrt"])),
    )


LEAVES: dict[str, st.SearchStrategy[Schedule]] = {
    "constant": st.builds(Constant, lrs),
    "time_decay": st.builds(TimeDecay, lrs, st.floats(0.0, 10.0), cumulative=st.booleans()),
    "inverse_time": st.builds(
        InverseTime, lrs, periods, st.floats(0.0, 100.0), staircase=st.booleans()
    ),
    "exponential": st.builds(
        Exponential, lrs, periods, st.floats(1e-3, 1.0), staircase=st.booleans()
    ),
    "exp_decay": st.builds(ExpDecay, lrs, st.floats(0.0, 1.0)),
    "step_decay": st.builds(
        StepDecay, lrs, st.floats(1e-3, 1.0), periods, offset=st.integers(0, 100)
    ),
    "multistep": st.builds(MultiStep, lrs, sorted_ints(), st.floats(1e-3, 1.0)),
    "piecewise": piecewise(),
    "table": st.builds(
        Table, st.lists(lrs, min_size=1, max_size=60), st.sampled_from(["step", "epoch"])
    ),
    "polynomial": st.builds(
        Polynomial,
        lrs,
        periods,
        end_lr=lrs,
        power=st.floats(0.1, 5.0),
        cycle=st.booleans(),
    ),
    "cosine": cosine(),
    "cosine_annealing": st.builds(CosineAnnealing, lrs, periods, eta_min=lrs),
    "cosine_restarts": st.builds(
        CosineRestarts,
        lrs,
        st.integers(1, 500),
        t_mul=st.sampled_from([1.0, 2.0, 3.0]) | st.floats(1.0, 4.0),
        m_mul=st.floats(0.1, 1.0),
        alpha=unit,
    ),
    "one_cycle": one_cycle(),
    "cyclic": st.builds(
        Cyclic,
        lrs,
        lrs,
        step_size_up=periods,
        step_size_down=st.none() | periods,
        mode=st.sampled_from(["triangular", "triangular2", "exp_range"]),
        gamma=st.floats(0.9, 1.0),
    ),
    "linear": st.builds(Linear, lrs, lrs, periods),
    "inverse_sqrt": st.builds(
        InverseSqrt, lrs, st.integers(0, 1_000), timescale=st.none() | st.integers(1, 10_000)
    ),
    "wsd": wsd(),
    "lr_range": st.builds(
        LrRange, st.floats(1e-8, 1.0), st.floats(1e-8, 10.0), st.integers(2, 5_000)
    ),
}

# Inside combinators, restarts keep integer t_mul (integer restart steps: see
# test_array_namespaces_agree_to_float32 for the fractional case).
_NESTED = {
    **LEAVES,
    "cosine_restarts": LEAVES["cosine_restarts"].filter(lambda s: s.t_mul % 1 == 0),
}
curves: st.SearchStrategy[Schedule] = st.deferred(
    lambda: st.one_of(*_NESTED.values()) | combinators
)


@st.composite
def sequence(draw):
    pieces = draw(st.lists(curves, min_size=1, max_size=3))
    boundaries = draw(sorted_ints(len(pieces) - 1, len(pieces) - 1))
    return Sequence(pieces, boundaries)


COMBINATORS: dict[str, st.SearchStrategy[Schedule]] = {
    "warmup": st.builds(Warmup, st.integers(0, 500), curves, start=lrs),
    "sequence": sequence(),
    "scale": st.builds(Scale, st.floats(0.0, 10.0), curves),
}
combinators = st.one_of(*COMBINATORS.values())

REACTIVE: dict[str, st.SearchStrategy[Schedule]] = {
    "plateau": st.builds(
        Plateau,
        factor=st.floats(0.01, 0.99),
        patience=st.integers(0, 50),
        min_delta=st.floats(0.0, 1.0),
        cooldown=st.integers(0, 50),
        min_lr=st.floats(0.0, 1.0),
        mode=st.sampled_from(["min", "max"]),
    )
}

STRATEGIES = {**LEAVES, **COMBINATORS, **REACTIVE}
CURVE_NAMES = sorted(set(STRATEGIES) - set(REACTIVE))


def test_every_registered_schedule_has_a_strategy():
    missing = set(REGISTRY) - set(STRATEGIES)
    assert not missing, f"add a hypothesis strategy for {sorted(missing)} in {__file__}"
    assert set(STRATEGIES) <= set(REGISTRY)


def test_every_registered_schedule_documents_its_formula_and_reference():
    """scripts/schedule_table.py builds the README table from these."""
    for name, cls in REGISTRY.items():
        assert cls.FORMULA.strip() and cls.REFERENCE.strip(), name
        assert cls.__doc__ and ">>>" in cls.__doc__, f"{name} needs a doctest"


# --------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("name", sorted(STRATEGIES))
@given(data=st.data())
def test_spec_and_dict_round_trip(name, data):
    s = data.draw(STRATEGIES[name])
    assert parse(str(s)) == s
    assert str(parse(str(s))) == str(s)
    assert from_dict(s.to_dict()) == s
    assert from_dict(json.loads(json.dumps(s.to_dict()))) == s


# --------------------------------------------------------------------------- per update
def _lr_table_before_per_update(schedule, epochs, steps_per_epoch, unit):
    """experiments/plan.py's ``schedule_lr_table`` as it was defined before ``per_update``."""
    if unit == "epoch":
        return np.repeat(schedule.curve(epochs), steps_per_epoch)
    return schedule.curve(epochs * steps_per_epoch)


@pytest.mark.parametrize("name", CURVE_NAMES)
@settings(max_examples=20)
@given(
    data=st.data(),
    epochs=st.integers(0, 30),
    steps_per_epoch=st.integers(1, 12),
    unit=st.sampled_from(["step", "epoch"]),
)
def test_per_update_is_the_lr_of_every_update(name, data, epochs, steps_per_epoch, unit):
    s = data.draw(STRATEGIES[name])
    lrs = s.per_update(epochs, steps_per_epoch, unit)
    assert lrs.dtype == np.float64 and lrs.shape == (epochs * steps_per_epoch,)
    old = _lr_table_before_per_update(s, epochs, steps_per_epoch, unit)
    np.testing.assert_array_equal(lrs, old)
    updates = range(epochs * steps_per_epoch)
    index = [t // steps_per_epoch if unit == "epoch" else t for t in updates]
    # one step at a time (Python floats) agrees with the vectorised curve to rounding
    np.testing.assert_allclose(lrs, [s(i) for i in index], rtol=1e-12, atol=0)


@pytest.mark.parametrize(
    "args, message",
    [
        ((3, 2, "epochs"), "unit must be 'step' or 'epoch'"),
        ((-1, 2), "epochs must be an integer >= 0"),
        ((3, 2.5), "steps_per_epoch must be an integer >= 0"),
    ],
)
def test_per_update_rejects_bad_arguments(args, message):
    with pytest.raises(ScheduleError, match=message):
        Constant(0.1).per_update(*args)


# --------------------------------------------------------------------------- value bounds
HUGE_STEPS = np.array([0, 1, 2, 10, 999, 10**6, 10**9, 10**12, 2**53], dtype=np.float64)


@pytest.mark.parametrize("name", CURVE_NAMES)
@settings(max_examples=60)
@given(data=st.data())
def test_values_are_finite_nonnegative_and_below_peak(name, data):
    s = data.draw(STRATEGIES[name])
    steps = np.concatenate(
        [
            np.arange(300.0),
            HUGE_STEPS,
            data.draw(st.lists(st.integers(0, 2**53), max_size=20)),
        ]
    )
    values = s(steps)
    assert values.dtype == np.float64 and values.shape == steps.shape
    assert np.all(np.isfinite(values)), steps[~np.isfinite(values)]
    assert np.all(values >= 0), values[values < 0]
    assert np.all(values <= s.peak * (1 + 1e-12)), (values.max(), s.peak)
    # a Python int gives a Python float, equal to the array evaluation
    for t in (0, 7, 10**9):
        assert isinstance(s(t), float)
        # the same float up to libm differences between numpy's scalar and array paths
        expected = float(s(np.array([float(t)]))[0])
        assert s(t) == pytest.approx(expected, rel=1e-9, abs=1e-12 * s.peak)


def _non_increasing(s: Schedule, steps: np.ndarray) -> None:
    values = s(steps)
    rises = np.diff(values)
    assert np.all(rises <= 1e-12 * max(s.peak, 1e-300)), (
        f"{s} rises by {rises.max()} at step {steps[np.argmax(rises)]}"
    )


MONOTONE_STEPS = np.concatenate([np.arange(2_000.0), np.geomspace(2_000, 2.0**53, 200)])


@given(
    st.one_of(
        LEAVES["constant"],
        LEAVES["time_decay"],
        LEAVES["inverse_time"],
        LEAVES["exponential"],  # decay_rate <= 1 always
        LEAVES["exp_decay"],
        LEAVES["step_decay"],  # drop <= 1 always
        LEAVES["multistep"],  # gamma <= 1 always
        LEAVES["polynomial"].filter(lambda s: not s.cycle and s.lr >= s.end_lr),
        LEAVES["cosine"].filter(lambda s: s.warmup_target is None),
        LEAVES["linear"].filter(lambda s: s.start >= s.end),
        LEAVES["lr_range"].filter(lambda s: s.start >= s.end),
        LEAVES["piecewise"].filter(lambda s: list(s.values) == sorted(s.values, reverse=True)),
    )
)
def test_monotone_non_increasing_where_documented(s):
    _non_increasing(s, MONOTONE_STEPS)


@given(LEAVES["cosine_annealing"].filter(lambda s: s.lr >= s.eta_min))
def test_cosine_annealing_is_periodic_and_falls_over_each_half_period(s):
    steps = np.arange(0.0, s.t_max + 1)
    _non_increasing(s, steps)
    later = steps + 2 * s.t_max * 3
    np.testing.assert_allclose(s(later), s(steps), rtol=1e-9, atol=1e-12 * s.peak)


@given(LEAVES["polynomial"].filter(lambda s: not s.cycle and s.lr < s.end_lr))
def test_polynomial_rises_to_end_lr_when_it_is_above_lr(s):
    values = s(MONOTONE_STEPS)
    assert np.all(np.diff(values) >= -1e-12 * s.peak)
    assert values[-1] == pytest.approx(s.end_lr)


# --------------------------------------------------------------------------- joins
@given(st.integers(1, 500), curves, lrs)
def test_warmup_reaches_the_schedule_start_and_hands_over_its_local_step(steps, inner, start):
    s = Warmup(steps, inner, start=start)
    peak0 = inner(0)
    # the linear ramp, continued to t = steps, lands exactly on the schedule's start
    assert s(0) == pytest.approx(start)
    ramp_at = lambda t: start + (peak0 - start) * t / steps  # noqa: E731
    for t in range(0, steps, max(1, steps // 7)):
        assert s(t) == pytest.approx(ramp_at(t), rel=1e-12, abs=1e-12)
    assert s(steps) == pytest.approx(inner(0), rel=1e-12, abs=1e-12 * s.peak)
    # continuity: the last ramp step is within one ramp increment of the handover value
    assert abs(s(steps) - s(steps - 1)) <= abs(peak0 - start) / steps * (1 + 1e-9) + 1e-12 * s.peak
    for t in (0, 1, 17, 1000, 10**7):
        assert s(steps + t) == pytest.approx(inner(t), rel=1e-12, abs=1e-12 * s.peak)


@given(sequence())
def test_sequence_hands_each_piece_its_local_step(s):
    starts = [0, *s.boundaries]
    ends = [*s.boundaries, None]
    for piece, lo, hi in zip(s.schedules, starts, ends, strict=True):
        if hi is not None and hi <= lo:
            continue  # an empty piece never runs
        for local in (0, 1, 5, 99):
            t = lo + local
            if hi is None or t < hi:
                assert s(t) == pytest.approx(piece(local), rel=1e-12, abs=1e-12 * s.peak)


@given(LEAVES["linear"], curves, st.integers(1, 400))
def test_sequence_of_a_ramp_into_its_target_is_continuous(ramp, after, w):
    """optax's warmup idiom: join([linear(a, b, W), s], [W]) is continuous when s(0) = b."""
    ramp = Linear(ramp.start, after(0), steps=w)
    s = Sequence([ramp, after], [w])
    t = np.arange(0.0, w + 1)
    jumps = np.abs(np.diff(s(t)))
    assert jumps.max() <= abs(ramp.end - ramp.start) / w * (1 + 1e-9) + 1e-12 * s.peak


@given(LEAVES["wsd"])
def test_wsd_is_continuous_at_its_phase_boundaries(s):
    w, st_, d = s.warmup_steps, s.stable_steps, s.decay_steps
    lr, r = s.lr, s.min_lr / s.lr
    if w:
        assert s(w - 1) == pytest.approx(lr * (r + (1 - r) * (w - 1) / w))
    if st_ + d:
        assert s(w) == pytest.approx(lr)  # warmup lands on lr
    if d:
        assert s(w + st_) == pytest.approx(lr)  # decay starts at lr
    assert s(w + st_ + d) == pytest.approx(s.min_lr, abs=1e-12)  # ends at min_lr
    if d:
        per_step = {"linear": 1.0 / d, "cosine": np.pi / (2 * d), "sqrt": 1.0 / np.sqrt(d)}
        bound = (lr - s.min_lr) * per_step[s.decay]
        t = np.arange(w + st_, w + st_ + d + 1.0)
        assert np.abs(np.diff(s(t))).max() <= bound * (1 + 1e-9) + 1e-12 * lr


@given(LEAVES["one_cycle"])
def test_one_cycle_is_continuous_at_its_phase_ends(s):
    for end, _, lr_to in s.phases():
        if end == int(end):
            assert s(end) == pytest.approx(lr_to, rel=1e-9)
    assert s(s.total_steps - 1) == pytest.approx(s.max_lr / s.div_factor / s.final_div_factor)


# --------------------------------------------------------------------------- namespaces
def _eval(s: Schedule, steps: np.ndarray, ns: str) -> np.ndarray:
    if ns == "jax":
        return np.asarray(s(jnp.asarray(steps, dtype=jnp.float32), jnp), dtype=np.float64)
    if ns == "torch":
        return s(torch.tensor(steps, dtype=torch.float32), torch).double().numpy()
    value = s(keras.ops.convert_to_tensor(steps, dtype="float32"), keras.ops)
    return np.asarray(keras.ops.convert_to_numpy(value), dtype=np.float64)


@pytest.mark.parametrize("name", CURVE_NAMES)
@settings(max_examples=25)  # one fixed shape, so JAX compiles each op once
@given(data=st.data())
def test_array_namespaces_agree_to_float32(name, data):
    s = data.draw(STRATEGIES[name])
    extra = data.draw(st.lists(st.integers(0, 100_000), min_size=10, max_size=10))
    steps = np.concatenate([np.arange(0.0, 1_000.0), np.asarray(extra, dtype=np.float64)])
    check_namespaces_agree(s, steps)


def check_namespaces_agree(s: Schedule, steps: np.ndarray) -> None:
    atol = np.full(steps.shape, 2e-6)
    if isinstance(s, CosineRestarts) and s.t_mul % 1:
        # A fractional t_mul puts restarts between steps, where the lr jumps from alpha to
        # the peak; a step within float32 rounding (1e-6 relative) of one may land on
        # either side in float32. Integer t_mul (torch's only choice) is exact.
        q, n = s.t_mul, s.first_decay_steps
        i = np.floor(np.log1p(steps / n * (q - 1)) / np.log(q))
        periods = np.arange(i.max() + 3)
        with np.errstate(over="ignore"):
            starts = n * np.expm1(periods * np.log(q)) / (q - 1)
        gap = np.min(np.abs(steps[:, None] - starts[None, :]), axis=1)
        keep = gap > 1e-6 * steps
        steps, i, atol = steps[keep], i[keep], atol[keep]
        # Float32 knows where a period starts only to ~eps32 * t steps, so the position in
        # a period of P steps moves by ~eps32 * t / P (the cosine's slope is at most pi/2):
        # that much is float32's, not lrlab's.
        atol += 4 * np.pi * 6e-8 * (steps + n) / (n * q**i)
    expected = s(steps)
    for ns in ("jax", "torch", "keras"):
        got = _eval(s, steps, ns)
        assert got.shape == expected.shape
        bound = 2e-5 * np.abs(expected) + atol * max(s.peak, 1e-30)
        bad = np.abs(got - expected) > bound
        assert not bad.any(), (ns, steps[bad][:5], got[bad][:5], expected[bad][:5])


# --------------------------------------------------------------------------- bad steps
@pytest.mark.parametrize("bad", [-1, -0.5, float("nan"), float("inf"), float("-inf")])
def test_negative_or_non_finite_steps_are_a_clear_error(bad):
    s = Constant(0.1)
    with pytest.raises(ScheduleError, match="steps must be finite and >= 0"):
        s(bad)
    with pytest.raises(ScheduleError, match="steps must be finite and >= 0"):
        s(np.array([0.0, 1.0, bad]))
