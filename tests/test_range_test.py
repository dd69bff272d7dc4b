"""The range test's maths (lrlab.range_test): smoothing, suggestions, divergence, batches.
The Keras driver (lrlab.keras.find_lr) is tested in test_keras_integration."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lrlab.errors import LrlabError
from lrlab.range_test import LossWatch, batch_sampler, check_settings, smooth_losses, suggest_lrs


def test_smoothing_and_suggestions_are_pinned():
    b = 0.5
    avg = [0.5 * 2.0]
    avg.append(b * avg[0] + 0.5 * 1.0)
    avg.append(b * avg[1] + 0.5 * 4.0)
    expected = [a / (1 - b ** (i + 1)) for i, a in enumerate(avg)]
    smoothed = smooth_losses(np.array([2.0, 1.0, 4.0]), b)
    np.testing.assert_allclose(smoothed, expected, rtol=1e-15)
    # steepest: most negative d loss / d log lr (central differences); min: argmin / 10
    lrs = np.array([1e-3, 1e-2, 1e-1, 1.0, 10.0])
    loss = np.array([1.0, 0.98, 0.6, 0.5, 3.0])  # slopes: -.02, -.2, -.24, 1.2, 2.5 per decade
    assert suggest_lrs(lrs, loss, skip_begin=0, skip_end=0) == (0.1, 0.1)
    # Lightning's skips: the first 10 points and the last one are not candidates
    many = np.logspace(-5, 0, 16)
    dip = np.r_[np.linspace(2, 1, 10), [1.0, 0.98, 0.7, 0.6, 0.59, 9.0]]  # steepest at 12
    assert suggest_lrs(many, dip) == (many[12], many[14] / 10)
    assert suggest_lrs(many[:11], dip[:11])[0] is None  # no candidate left
    # a wider span averages out batch noise that fools the central difference
    wide = np.logspace(-5, 1, 100)
    descent = np.r_[np.full(60, 50.0), 50.0 - np.arange(40)]  # falls 1 per point after 60
    noisy = descent - 5.0 * (np.arange(100) == 20)  # one noisy batch at 20
    assert suggest_lrs(wide, noisy, span=1)[0] == wide[19]
    assert suggest_lrs(wide, noisy)[0] > wide[60]  # default span 5: the descent
    nonfinite = np.array([np.nan, 1.0, 0.5, 0.2, np.inf])
    assert suggest_lrs(lrs, nonfinite, skip_begin=0, skip_end=0)[1] == 0.1


def test_suggestions_stay_within_the_tested_ramp():
    # the README's drift: min / 10 of a loss lowest at the ramp's start was 1e-6 < 1e-5
    ramp = np.logspace(-5, 1, 100)
    rising = 1.0 + np.linspace(0, 1, 100) ** 2  # lowest at the first lr, falls nowhere
    assert suggest_lrs(ramp, rising) == (None, None)
    early = np.r_[[1.0, 0.9, 0.8], np.linspace(0.85, 5, 97)]  # lowest at ramp[2] < 10 x 1e-5
    steepest, min_over_10 = suggest_lrs(ramp, early)
    assert min_over_10 is None and steepest is None  # rises at every candidate
    later = np.r_[np.linspace(1, 0.5, 30), np.linspace(0.5, 5, 70)]  # lowest at ramp[29]
    assert suggest_lrs(ramp, later)[1] == ramp[29] / 10 >= ramp[0]


@given(st.lists(st.floats(0.01, 100), min_size=3, max_size=120), st.floats(-8, -1))
def test_any_suggestion_is_within_the_ramp(losses, log_start):
    ramp = np.logspace(log_start, log_start + 6, len(losses))
    for value in suggest_lrs(ramp, np.array(losses)):
        assert value is None or ramp[0] <= value <= ramp[-1]


def test_loss_watch_stops_on_divergence_or_a_non_finite_loss():
    watch = LossWatch(smoothing=0.0, diverge=4.0)  # no smoothing: the raw losses
    assert [watch.observe(v) for v in (2.0, 1.0, 3.9)] == [False, False, False]
    assert watch.observe(4.1)  # > 4 x the best (1.0)
    assert LossWatch(0.9, 4.0).observe(float("nan"))


def test_batches_cover_every_row_once_per_pass():
    take = batch_sampler(10, 4, np.random.default_rng(0))
    first_pass = np.concatenate([take(), take()])
    assert len(set(first_pass.tolist())) == 8
    assert len(take()) == 4  # a short tail reshuffles instead of a partial batch
    with pytest.raises(LrlabError, match="x is empty"):
        batch_sampler(0, 4, np.random.default_rng(0))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"smoothing": 1.0}, "smoothing must be in"),
        ({"diverge": 1.0}, "diverge must be > 1"),
        ({"batch_size": 0}, "batch_size must be >= 1"),
    ],
)
def test_bad_settings_are_named(kwargs, message):
    settings = {"start": 1e-5, "end": 1.0, "steps": 10, "batch_size": 8}
    settings |= {"smoothing": 0.98, "diverge": 4.0, **kwargs}
    with pytest.raises(LrlabError, match=message):
        check_settings(**settings)
